#!/usr/bin/env bash
# An unreachable coordinator is exit 3 within about 2 s, for every command that talks to one, and
# never a hang: each call runs under `timeout`, so a hang fails this test (exit 124) instead of
# stalling CI. Also: a coordinator that binds a moment after the command started is still reached
# (the connection is retried within the 2 s), and a coordinator that comes back after a restart is
# reached again by a long-running `watch`.
source "$(dirname "$0")/lib.bash"
R=$RF_BIN/reelfarm
unset REELFARM_COORDINATOR
export XDG_CONFIG_HOME=$WORK/cfg HOME=$WORK/home

# Port 1 on loopback: privileged (no test daemon can bind it) and closed, so connect() is refused.
closed=tcp://127.0.0.1:1
if (exec 3<> /dev/tcp/127.0.0.1/1) 2> /dev/null; then echo "something listens on 127.0.0.1:1" >&2; exit 77; fi
# A name that does not resolve behaves the same. (No black-hole address: sandboxes and CI runners
# may proxy outgoing TCP, so a connection there can succeed.)
for ep in "$closed" tcp://no-such-host.invalid:7601; do
  for cmd in "jobs" "workers" "status j-1" "cancel j-1" "pause j-1" "logs j-1" "logs j-1 --follow" "watch j-1" "fetch j-1" "status j-1 --json"; do
    # shellcheck disable=SC2086 # cmd is split on purpose
    t0=$(date +%s%N)
    set +e; timeout 10 "$R" $cmd --coordinator "$ep" > "$WORK/out" 2> "$WORK/err"; rc=$?; set -e
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ $rc != 124 ] || fail "reelfarm $cmd against $ep hung (killed after 10 s)"
    [ $rc = 3 ] || fail "reelfarm $cmd against $ep: exit $rc, expected 3 ($(cat "$WORK/err"))"
    [ $ms -lt 4000 ] || fail "reelfarm $cmd against $ep took $ms ms (expected about 2 s)"
    [ "$(wc -l < "$WORK/err")" = 1 ] && grep -qF "cannot reach the coordinator at '$ep'" "$WORK/err" ||
      fail "reelfarm $cmd against $ep: message: $(cat "$WORK/err")"
    [ ! -s "$WORK/out" ] || fail "reelfarm $cmd against $ep printed on stdout: $(cat "$WORK/out")"
  done
  ok "unreachable $ep: every command exits 3 in under 4 s with one line naming the endpoint"
done
# submit checks the spec first, then fails to reach the coordinator.
src=$(fixture h264-aac-300)
cp "$src" "$WORK/in.mp4"
write_job "$WORK/j.yaml" in.mp4 out.mkv ffv1
t0=$(date +%s%N)
set +e; timeout 10 "$R" submit "$WORK/j.yaml" --wait --coordinator "$closed" > /dev/null 2> "$WORK/err"; rc=$?; set -e
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc = 3 ] && [ $ms -lt 4000 ] || fail "submit --wait against a closed port: exit $rc after $ms ms ($(cat "$WORK/err"))"
# doctor only warns (render needs no coordinator), within its own 2 s.
t0=$(date +%s%N)
set +e; timeout 20 "$R" doctor --coordinator "$closed" > "$WORK/doctor.txt" 2> /dev/null; rc=$?; set -e
[ $rc != 124 ] || fail "doctor hung against a closed port"
grep -q "^warn  *coordinator .*cannot reach" "$WORK/doctor.txt" || fail "doctor: $(cat "$WORK/doctor.txt")"
ok "submit --wait exits 3 in $ms ms; doctor warns"

# A coordinator that binds while the command is already trying: reached, exit 0.
farm_ports
"$R" jobs --json --coordinator "$C" > "$WORK/late.json" 2> "$WORK/late.err" &
cli=$!
sleep 0.5
start_coordinator
set +e; timeout 15 bash -c "while kill -0 $cli 2>/dev/null; do sleep 0.1; done"; wait $cli; rc=$?; set -e
[ $rc = 0 ] || fail "jobs started 0.5 s before the coordinator: exit $rc ($(cat "$WORK/late.err"))"
[ "$(jq -c . "$WORK/late.json")" = "[]" ] || fail "jobs --json: $(cat "$WORK/late.json")"
ok "a coordinator that binds 0.5 s after the command started is reached"

# watch keeps one client across calls: the coordinator restarts under it (its connection drops),
# and the next call reconnects on a fresh socket instead of failing or hanging.
start_worker uw
id=$("$R" submit "$WORK/j.yaml") || fail "submit failed"
"$R" pause "$id" > /dev/null
timeout 60 "$R" watch "$id" > "$WORK/watch.txt" 2> "$WORK/watch.err" &
wpid=$!
sleep 1
kill "$COORD"; wait "$COORD" 2> /dev/null || true
sleep 0.3
start_coordinator
for _ in $(seq 1 50); do "$R" resume "$id" > /dev/null 2>&1 && break; sleep 0.2; done
set +e; wait $wpid; rc=$?; set -e
[ $rc = 0 ] || fail "watch across a coordinator restart: exit $rc ($(cat "$WORK/watch.err"))"
grep -q "^$id done: 100% 300/300 frames" "$WORK/watch.txt" || fail "watch: no final line: $(tail -3 "$WORK/watch.txt")"
ok "watch reconnects after a coordinator restart and follows the job to done"
