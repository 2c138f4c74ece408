#!/usr/bin/env bash
# Cancel mid-job, as real processes: two workers slowed down on purpose (--test-fault slow:30, 30 ms
# per frame, so a chunk takes seconds) each render a chunk when `reelfarm cancel` is run. Each worker
# must hear the Cancel and its slot must stop the chunk within 1 s (timestamps of the workers' JSON
# log lines against the moment of the cancel, both UTC); the job ends cancelled with no running
# chunk, no work file or cached slice is left on the workers, no blob in the coordinator's store,
# and SIGTERM then stops every process.
source "$(dirname "$0")/lib.bash"
src=$(fixture h264-aac-1001) # 1001 frames at 23.976 fps: 7 chunks of about 144 frames
cp "$src" "$WORK/in.mp4"
farm_ports

start_coordinator
for name in w1 w2; do start_worker "$name" --test-fault slow:30; done
job_state() { grep -o '^{"id":"[^"]*","name":"[^"]*","state":"[a-z]*"' "$1" | grep -o '[a-z]*"$' | tr -d '"'; }

write_job "$WORK/cancel.yaml" in.mp4 cancel.mkv ffv1
job=$("$RF_BIN/reelfarm" submit "$WORK/cancel.yaml") || fail "submit failed: $(tail -5 "$WORK/coordinator.log")"

# Wait until both workers render a chunk that has made some progress: at most 60 s, as planning and
# the workers' start take seconds on a loaded machine (what is timed is the cancel, below).
deadline=$(( $(date +%s) + 60 ))
while :; do
  "$RF_BIN/reelfarm" status "$job" --json > "$WORK/st.json" 2>/dev/null || true
  running=$(grep -o '"state":"running","frame_start":[0-9]*,"frame_end":[0-9]*,"attempts":[0-9]*,"worker":"w[12]","frames_done":[1-9][0-9]*' "$WORK/st.json" |
    grep -o '"worker":"w[12]"' | sort -u | wc -l) || true
  [ "$running" = 2 ] && break
  [ "$(date +%s)" -lt "$deadline" ] || fail "the two workers never ran a chunk at once: $(cat "$WORK/st.json")
coordinator: $(grep -v '"debug"' "$WORK/coordinator.log" | tail -8)
w1: $(tail -5 "$WORK/w1.log")
w2: $(tail -5 "$WORK/w2.log")"
  sleep 0.1
done
ok "both workers render a chunk"

t_cancel=$(date -u +%s.%3N)
"$RF_BIN/reelfarm" cancel "$job" > "$WORK/cancel.out" || fail "reelfarm cancel exited $?"
# The checks below compare the log lines' own timestamps with the cancel's (1 s allowed); wait
# until both workers have logged both lines (up to 15 s on a loaded machine) before reading them.
for _ in $(seq 1 150); do
  n=0
  for name in w1 w2; do
    grep -q "of job $job failed (cancelled)" "$WORK/$name.log" 2>/dev/null && n=$((n + 1))
  done
  [ $n = 2 ] && break
  sleep 0.1
done
sleep 0.5 # and the files time to settle

# ts of the first JSON log line of FILE matching PATTERN, as seconds since the epoch.
log_time() {
  local ts
  ts=$(grep -- "$2" "$1" | head -1 | grep -o '^{"ts":"[^"]*"' | cut -d'"' -f4)
  [ -n "$ts" ] || return 1
  date -u -d "$ts" +%s.%3N
}
for name in w1 w2; do
  t_heard=$(log_time "$WORK/$name.log" "cancel chunk [0-9]*: job cancelled") ||
    fail "$name never heard the Cancel: $(tail -5 "$WORK/$name.log")"
  t_stop=$(log_time "$WORK/$name.log" "of job $job failed (cancelled)") ||
    fail "$name's slot never stopped its chunk: $(tail -5 "$WORK/$name.log")"
  awk -v c="$t_cancel" -v h="$t_heard" -v s="$t_stop" 'BEGIN { exit !(h - c <= 1.0 && s - c <= 1.0 && s >= h) }' ||
    fail "$name: cancel at $t_cancel, heard at $t_heard, chunk stopped at $t_stop: over 1 s"
  ok "$name heard the Cancel after $(awk -v c="$t_cancel" -v h="$t_heard" 'BEGIN{printf "%.3f", h-c}') s and stopped its chunk after $(awk -v c="$t_cancel" -v s="$t_stop" 'BEGIN{printf "%.3f", s-c}') s"
done

"$RF_BIN/reelfarm" status "$job" --json > "$WORK/st.json" || fail "status failed"
[ "$(job_state "$WORK/st.json")" = cancelled ] || fail "job is '$(job_state "$WORK/st.json")', not cancelled: $(cat "$WORK/st.json")"
! grep -q '"state":"running"' "$WORK/st.json" || fail "chunks still running after the cancel: $(cat "$WORK/st.json")"
ok "job cancelled, no chunk running"

for name in w1 w2; do
  left=$(find "$WORK/cache-$name" -type f 2>/dev/null | head -5 || true)
  [ -z "$left" ] || fail "$name left files behind: $left"
done
ok "no work files or input slices left on the workers"
[ ! -e "$WORK/cancel.mkv" ] || fail "a cancelled job wrote its output"

for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for pid in "${PIDS[@]}"; do
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  ! kill -0 "$pid" 2>/dev/null || fail "process $pid still running 10 s after SIGTERM"
done
left=$(pgrep -f "$WORK" || true)
[ -z "$left" ] || fail "processes left behind: $(ps -o pid,args -p "$(echo $left | tr ' ' ,)")"
ok "all daemons stopped on SIGTERM, no process left"
# Released blobs are deleted after a grace period, or when the coordinator stops.
left=$(find "$WORK/state/blobs" -mindepth 1 -not -path "$WORK/state/blobs/tmp" 2>/dev/null | head -5 || true)
[ -z "$left" ] || fail "blobs left in the coordinator's store after the cancel: $left"
ok "no blobs left in the coordinator's store"
