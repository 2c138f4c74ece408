#!/usr/bin/env bash
# CURVE and the ZAP allow-list on all three coordinator sockets (docs/SECURITY.md), checked from a
# real peer (tests/e2e/zprobe.py, pyzmq) that watches its own handshake: allow-listed keys are
# accepted where their role may go; an unknown key is refused on the worker, client and blob
# sockets alike (libzmq with no ZAP handler would accept it: the "refused" checks are what fails if
# the handler is missing or lets everything through); a worker key is refused on the client socket
# and a client key on the worker socket; a plaintext CLI gets exit 4 with a message. SIGHUP reloads
# the allow-list: a key added is let in, a key removed is refused again. The denials are counted
# in /metrics.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
"$PY" -c 'import zmq' 2> /dev/null || fail "python3-zmq is missing (scripts/install-deps installs it)"
PROBE="$(dirname "$0")/zprobe.py"
farm_ports

K=$WORK/keys; A=$WORK/allow
for n in coordinator w1 alice root mallory; do
  "$RF_BIN/reelfarm" keygen --out "$K" --name "$n" > /dev/null 2>&1 || fail "keygen $n"
done
mkdir -p "$A/workers" "$A/clients" "$A/admins"
cp "$K/w1.pub" "$A/workers/"; cp "$K/alice.pub" "$A/clients/"; cp "$K/root.pub" "$A/admins/"
start_coordinator --key "$K/coordinator.key" --authorized-keys "$A"
grep -q "CURVE on the worker, client and blob sockets" "$WORK/coordinator.log" ||
  fail "the coordinator did not say it uses CURVE: $(tail -3 "$WORK/coordinator.log")"
url=$(http_url)

probe() { "$PY" "$PROBE" handshake "$1" "$K/coordinator.pub" "$K/$2.key"; }
expect() { # ENDPOINT-NAME ENDPOINT KEY VERDICT
  local got; got=$(probe "$2" "$3")
  [ "$got" = "$4" ] || fail "$3's key on the $1 socket: expected '$4', got '$got'"
  ok "$3's key on the $1 socket: $got"
}
expect workers "$W" w1 accepted
expect clients "$C" alice accepted
expect blobs "$B" w1 accepted
expect blobs "$B" alice accepted
expect workers "$W" root accepted
expect clients "$C" root accepted
for s in workers:$W clients:$C blobs:$B; do expect "${s%%:*}" "${s#*:}" mallory "refused 400"; done
expect workers "$W" alice "refused 400"
expect clients "$C" w1 "refused 400"

# The CLI: a client key works, none and an unknown one exit 4 naming the reason.
mkdir -p "$WORK/cli-alice" "$WORK/cli-none" "$WORK/cli-mallory"
cp "$K/coordinator.pub" "$WORK/cli-alice/"; cp "$K/alice.key" "$WORK/cli-alice/client.key"
cp "$K/coordinator.pub" "$WORK/cli-mallory/"; cp "$K/mallory.key" "$WORK/cli-mallory/client.key"
REELFARM_KEYS=$WORK/cli-alice "$RF_BIN/reelfarm" jobs > /dev/null 2> "$WORK/alice.err" ||
  fail "alice's CLI was refused: $(cat "$WORK/alice.err")"
ok "the CLI with alice's key lists jobs"
rc=0; REELFARM_KEYS=$WORK/cli-none "$RF_BIN/reelfarm" jobs > /dev/null 2> "$WORK/none.err" || rc=$?
[ $rc = 4 ] && grep -q "requires CURVE keys and this client has none" "$WORK/none.err" ||
  fail "a CLI without keys: exit $rc, $(cat "$WORK/none.err")"
ok "a CLI without keys: exit 4, '$(cut -c1-80 "$WORK/none.err")...'"
rc=0; REELFARM_KEYS=$WORK/cli-mallory "$RF_BIN/reelfarm" jobs > /dev/null 2> "$WORK/mallory.err" || rc=$?
[ $rc = 4 ] && grep -q "refused this client's CURVE key" "$WORK/mallory.err" ||
  fail "a CLI with an unknown key: exit $rc, $(cat "$WORK/mallory.err")"
ok "a CLI with an unknown key: exit 4"

# The denials are in the metrics (the ZAP handler counts them per socket).
sleep 1
curl -sf "$url/metrics" > "$WORK/metrics" || fail "GET /metrics failed"
for s in workers clients blobs; do
  n=$(sed -n "s/^reelfarm_auth_total{socket=\"$s\",result=\"denied\"} //p" "$WORK/metrics")
  [ "${n:-0}" -ge 1 ] || fail "reelfarm_auth_total{socket=\"$s\",result=\"denied\"} is '${n:-missing}'"
done
ok "denials counted: $(grep -c 'result="denied"' "$WORK/metrics") series"

# SIGHUP: add mallory as a client, then take it away again.
cp "$K/mallory.pub" "$A/clients/"
kill -HUP "$COORD"
for _ in $(seq 1 50); do grep -q "1 worker, 2 client, 1 admin keys" "$WORK/coordinator.log" && break; sleep 0.1; done
expect clients "$C" mallory accepted
rm "$A/clients/mallory.pub"
kill -HUP "$COORD"
for _ in $(seq 1 50); do [ "$(grep -c "1 worker, 1 client, 1 admin keys" "$WORK/coordinator.log")" -ge 2 ] && break; sleep 0.1; done
expect clients "$C" mallory "refused 400"
ok "SIGHUP reloads the allow-list both ways"
kill -0 "$COORD" || fail "the coordinator died"
