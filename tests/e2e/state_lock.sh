#!/usr/bin/env bash
# Never two coordinators on one state folder: a second reelfarm-coordinator pointed at a state
# folder a live one holds (on other ports, as a second Kubernetes pod or a second Slurm job would
# be) refuses to start, names the holder and exits 1, and the first one keeps serving. After the
# holder dies by kill -9 the kernel has released its lock, so a restart is never blocked by a stale
# lock file.
source "$(dirname "$0")/lib.bash"
farm_ports

start_coordinator
first=$COORD
for _ in $(seq 1 100); do "$RF_BIN/reelfarm" jobs --json >/dev/null 2>&1 && break; sleep 0.1; done
"$RF_BIN/reelfarm" jobs --json >/dev/null || fail "first coordinator does not answer: $(cat "$WORK/coordinator.log")"
[ -f "$WORK/state/lock" ] || fail "no lock file in the state folder"
grep -qx "$first" "$WORK/state/lock" || fail "lock file does not name the holder pid $first: $(cat "$WORK/state/lock")"
ok "first coordinator (pid $first) holds $WORK/state/lock"

any='tcp://127.0.0.1:*'
rc=0
timeout 20 "$RF_BIN/reelfarm-coordinator" --state "$WORK/state" --listen-workers "$any" \
  --listen-clients "$any" --listen-blobs "$any" > "$WORK/second.out" 2> "$WORK/second.log" || rc=$?
[ "$rc" = 1 ] || fail "second coordinator on the same state exited $rc, expected 1: $(cat "$WORK/second.log")"
grep -q "in use by another coordinator (pid $first " "$WORK/second.log" ||
  fail "second coordinator's error does not name the holder: $(cat "$WORK/second.log")"
ok "second coordinator refused: $(head -1 "$WORK/second.log")"
kill -0 "$first" 2>/dev/null || fail "first coordinator died"
"$RF_BIN/reelfarm" jobs --json >/dev/null || fail "first coordinator stopped answering"
ok "first coordinator still serving"

# A crash releases the lock: the next coordinator starts on the same folder and ports.
kill -9 "$first"; wait "$first" 2>/dev/null || true
start_coordinator
for _ in $(seq 1 100); do "$RF_BIN/reelfarm" jobs --json >/dev/null 2>&1 && break; sleep 0.1; done
"$RF_BIN/reelfarm" jobs --json >/dev/null || fail "coordinator did not start after the holder was killed: $(tail -3 "$WORK/coordinator.log")"
grep -qx "$COORD" "$WORK/state/lock" || fail "lock file does not name the new holder $COORD"
ok "after kill -9 of the holder a new coordinator (pid $COORD) starts on the same state"
kill -TERM "$COORD"
for _ in $(seq 1 100); do kill -0 "$COORD" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$COORD" 2>/dev/null || fail "coordinator still running 10 s after SIGTERM"
ok "stopped on SIGTERM"
