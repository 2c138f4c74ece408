#!/usr/bin/env bash
# The coordinator's disk fills up (DESIGN §7, docs/RELIABILITY.md). Its state folder is a small
# tmpfs; workers are separate hosts (network namespaces). A first job finishes; a second is in
# flight when a ballast file fills the disk to the last byte. Then:
#   - a new submit is refused with a clear error that names the state folder and the free space;
#   - the finished job stays done and its output intact; the coordinator keeps answering;
#   - the job in flight waits (or fails with a reason), and once space returns it finishes;
#   - state.db passes SQLite's integrity check, and after a kill -9 and restart every job is
#     still there in the same state; every done output decodes to exactly the source's frames;
#   - with less than the 32 MiB reserve free (but not full), a submit is refused before anything
#     is written, naming the folder and the space.
source "$(dirname "$0")/lib.bash"
faults_require_netns
FARM=$WORK/farm; mkdir -p "$FARM/state" "$FARM/out"
if ! out=$(mount -t tmpfs -o size=96m tmpfs "$FARM/state" 2>&1); then
  echo "SKIP: cannot mount a tmpfs for the coordinator's state folder: $out" >&2; exit 77
fi
FAULT_MOUNTS+=("$FARM/state")
src=$(fixture h264-aac-1001)
cp "$src" "$WORK/in.mp4"
frame_hashes "$WORK/in.mp4" > "$WORK/ref.hash"

net_create 2 $(( 20 + $$ % 200 ))
cat > "$FARM/coordinator.yaml" <<YAML
version: 1
state_dir: $FARM/state
listen: {workers: "tcp://*:7600", clients: "tcp://127.0.0.1:7601", blobs: "tcp://*:7602"}
http: {listen: ""}
heartbeat_ms: 500
liveness: 4
task_timeout_s: 10
YAML
coord_start
kill -0 "$COORD" 2>/dev/null || fail "the coordinator did not start: $(tail -3 "$FARM/coordinator.log")"
worker_start 1 slow:25
worker_start 2 slow:25

job_spec() { # NAME
  write_job "$FARM/$1.yaml" "$WORK/in.mp4" "$FARM/out/$1.mkv" ffv1
  sed -i 's/^chunking: .*/chunking: {split: keyframe, target_seconds: 2, max_seconds: 6}/' "$FARM/$1.yaml"
}
wait_end() { # JOB SECONDS -> prints the final state
  local st="" t0=$SECONDS
  while [ $((SECONDS - t0)) -lt "$2" ]; do
    st=$(job_field "$1" .state)
    case "$st" in done|failed|cancelled) break ;; esac
    sleep 0.2
  done
  echo "$st"
}
verify_out() { # FILE
  frame_hashes "$1" > "$FARM/out.hash"
  cmp -s "$WORK/ref.hash" "$FARM/out.hash" || fail "$1: decoded frames differ from the source's ($(wc -l < "$FARM/out.hash") frames)"
}
free_kib() { df -k --output=avail "$FARM/state" | tail -1 | tr -d ' '; }

# 1. A job that finishes before the disk fills.
job_spec a
A=$(rf_cli submit "$FARM/a.yaml") || fail "submit a failed"
[ "$(wait_end "$A" 120)" = done ] || fail "job a did not finish: $(rf_cli status "$A" --json)"
verify_out "$FARM/out/a.mkv"
sha_a=$(sha256sum < "$FARM/out/a.mkv")
ok "job a done, 1001 frames identical to the source's"

# 2. A job in flight when the disk fills to the last byte.
job_spec b
B=$(rf_cli submit "$FARM/b.yaml") || fail "submit b failed"
for _ in $(seq 1 300); do
  [ "$(job_field "$B" .chunks_done)" -ge 3 ] 2>/dev/null && break
  sleep 0.1
done
dd if=/dev/zero of="$FARM/state/ballast" bs=1M 2>/dev/null || true
[ "$(free_kib)" -lt 1024 ] || fail "the ballast did not fill the state folder ($(free_kib) KiB free)"
ok "state folder full ($(free_kib) KiB free) while job b renders ($(job_field "$B" .chunks_done) chunks done)"
sleep 3

# 3. New work is refused with a clear error; the coordinator keeps answering.
job_spec c
rc=0; rf_cli submit "$FARM/c.yaml" > "$FARM/c.out" 2> "$FARM/c.err" || rc=$?
[ $rc != 0 ] || fail "a submit on a full disk was accepted: $(cat "$FARM/c.out")"
grep -qi "space\|disk\|full" "$FARM/c.err" || fail "the refusal does not say the disk is full: $(cat "$FARM/c.err")"
ok "submit refused (exit $rc): $(head -1 "$FARM/c.err")"
kill -0 "$COORD" 2>/dev/null || fail "the coordinator died on a full disk: $(tail -5 "$FARM/coordinator.log")"
[ "$(job_field "$A" .state)" = done ] || fail "job a is no longer done: $(rf_cli status "$A" --json)"
rf_cli jobs --json > "$FARM/jobs.json" || fail "jobs --json failed on a full disk"
ok "the coordinator still answers; job a still done"
# While nothing can be recorded, nothing final is decided: the job in flight is not failed.
st_b=$(job_field "$B" .state)
case "$st_b" in failed|cancelled) fail "job b ended '$st_b' while the disk was full: $(rf_cli status "$B" --json)" ;; esac
ok "job b is '$st_b' while the disk is full (not failed)"

# 4. Space returns: the job in flight finishes (or failed with a reason), new work is accepted.
rm -f "$FARM/state/ballast"
ok "space back ($(free_kib) KiB free)"
st=$(wait_end "$B" 240)
case "$st" in
  done) verify_out "$FARM/out/b.mkv"; ok "job b done after the disk was full, 1001 frames identical to the source's" ;;
  failed) msg=$(job_field "$B" .message); [ -n "$msg" ] || fail "job b failed without a reason"
          ok "job b failed with a reason: $msg" ;;
  *) fail "job b ended '$st' 240 s after space returned: $(rf_cli status "$B" --json)" ;;
esac
C=$(rf_cli submit "$FARM/c.yaml") || fail "submit c failed after space returned: $(tail -3 "$FARM/coordinator.log")"
[ "$(wait_end "$C" 120)" = done ] || fail "job c did not finish: $(rf_cli status "$C" --json)"
verify_out "$FARM/out/c.mkv"
ok "job c accepted and done once space returned"

# 5. Below the reserve (32 MiB free) but not full: refused before anything is written.
sleep 1
dd if=/dev/zero of="$FARM/state/ballast" bs=1M count=$(( $(free_kib) / 1024 - 8 )) 2>/dev/null || true
rc=0; rf_cli submit "$FARM/c.yaml" > "$FARM/c.out" 2> "$FARM/c.err" || rc=$?
[ $rc != 0 ] || fail "a submit with $(free_kib) KiB free was accepted"
grep -q "state folder '$FARM/state' has [0-9.]* MiB free and needs 32 MiB" "$FARM/c.err" ||
  fail "the refusal does not name the state folder and its free space: $(cat "$FARM/c.err")"
ok "with $(free_kib) KiB free: $(head -1 "$FARM/c.err")"
rm -f "$FARM/state/ballast"

# 6. Nothing corrupt, nothing forgotten across a kill -9.
[ "$(sqlite3 "$FARM/state/state.db" 'PRAGMA integrity_check')" = ok ] || fail "state.db fails its integrity check"
coord_kill
coord_start
for j in "$A" "$B" "$C"; do
  want=$( [ "$j" = "$B" ] && echo "$st" || echo done )
  got=$(job_field "$j" .state)
  [ "$got" = "$want" ] || fail "after a restart job $j is '$got', was '$want'"
done
[ "$(sha256sum < "$FARM/out/a.mkv")" = "$sha_a" ] || fail "job a's output changed"
ok "state.db intact; after kill -9 and restart every job is still in its state"
