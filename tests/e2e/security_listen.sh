#!/usr/bin/env bash
# The listen policy without keys (DESIGN §9, docs/SECURITY.md): a coordinator with no CURVE key
# binds loopback and says so; asked to listen on a non-loopback address it refuses to start
# (exit 1, naming the endpoint and --insecure) unless given --insecure, and then it logs a warning
# per exposed socket. With keys, any address is fine.
source "$(dirname "$0")/lib.bash"
farm_ports
port=${W##*:}
any_w=tcp://0.0.0.0:$port

start_coordinator
grep -q "no CURVE keys configured (security.key): listening on loopback only" "$WORK/coordinator.log" ||
  fail "a keyless coordinator did not say it is loopback only: $(tail -3 "$WORK/coordinator.log")"
"$RF_BIN/reelfarm" jobs > /dev/null || fail "a keyless loopback farm refused the CLI"
ok "no keys: loopback only, said so, the CLI works as before"
kill "$COORD"; wait "$COORD" 2> /dev/null || true

rc=0
"$RF_BIN/reelfarm-coordinator" --state "$WORK/state2" --listen-workers "$any_w" --listen-clients "$C" \
  --listen-blobs "$B" --listen-http "" > /dev/null 2> "$WORK/refused.log" || rc=$?
[ $rc = 1 ] || fail "a keyless coordinator on $any_w exited $rc, expected 1: $(cat "$WORK/refused.log")"
grep -q "listen.workers '$any_w' is not a loopback address and no CURVE key is configured" "$WORK/refused.log" &&
  grep -q -- "--insecure" "$WORK/refused.log" || fail "unclear refusal: $(cat "$WORK/refused.log")"
ok "no keys, 0.0.0.0: refused ($(cut -c1-90 "$WORK/refused.log")...)"

: > "$WORK/coordinator.log"
start_coordinator --listen-workers "$any_w" --insecure
kill -0 "$COORD" 2> /dev/null || fail "--insecure did not start: $(tail -3 "$WORK/coordinator.log")"
grep -q '"level":"warn".*INSECURE: listen.workers' "$WORK/coordinator.log" ||
  fail "no warning for the exposed socket: $(cat "$WORK/coordinator.log")"
"$RF_BIN/reelfarm" jobs > /dev/null || fail "the CLI failed against an --insecure coordinator"
ok "--insecure: starts, warns about listen.workers"
kill "$COORD"; wait "$COORD" 2> /dev/null || true

K=$WORK/keys; mkdir -p "$WORK/allow/admins"
"$RF_BIN/reelfarm" keygen --out "$K" --name coordinator > /dev/null 2>&1 || fail keygen
: > "$WORK/coordinator.log"
start_coordinator --listen-workers "$any_w" --key "$K/coordinator.key" --authorized-keys "$WORK/allow"
kill -0 "$COORD" 2> /dev/null || fail "a coordinator with keys did not start on $any_w: $(tail -3 "$WORK/coordinator.log")"
! grep -q INSECURE "$WORK/coordinator.log" || fail "a warning with keys"
ok "with keys: $any_w is fine"

# A key without an allow-list is refused: it would let every key in.
rc=0
"$RF_BIN/reelfarm-coordinator" --state "$WORK/state3" --listen-workers "$W" --listen-clients "$C" \
  --listen-blobs "$B" --listen-http "" --key "$K/coordinator.key" > /dev/null 2> "$WORK/noallow.log" || rc=$?
[ $rc = 1 ] && grep -q "security.authorized_keys is not" "$WORK/noallow.log" ||
  fail "a key with no allow-list: exit $rc, $(cat "$WORK/noallow.log")"
ok "a key with no allow-list: refused"
