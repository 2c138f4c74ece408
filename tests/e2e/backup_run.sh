#!/usr/bin/env bash
# Backup runs: a job is 90% done and a worker sits idle while one chunk crawls on a slow worker.
# The idle worker renders a backup of that chunk; the first verified result wins, the slow run is
# cancelled, and the output is the source frame for frame.
source "$(dirname "$0")/lib.bash"
src=$(fixture h264-aac-300)
cp "$src" "$WORK/in.mp4"
farm_ports
start_coordinator
start_worker slow --test-fault slow:4000@1      # its first chunk (10 frames) would take 40 s
write_job "$WORK/job.yaml" in.mp4 out.mkv ffv1 
sed -i 's/target_seconds: 6, max_seconds: 10/split: keyframe, target_seconds: 0.4, max_seconds: 0.5/' "$WORK/job.yaml"
job=$("$RF_BIN/reelfarm" submit "$WORK/job.yaml") || fail "submit failed"
for _ in $(seq 1 200); do
  "$RF_BIN/reelfarm" status "$job" --json > "$WORK/s.json" 2>/dev/null || true
  grep -q '"state":"running","frame_start":[0-9]*,"frame_end":[0-9]*,"attempts":1,"worker":"slow"' "$WORK/s.json" && break
  sleep 0.1
done
grep -q '"worker":"slow"' "$WORK/s.json" || fail "the slow worker never got a chunk"
start_worker fast
t0=$(date +%s)
state=""
for _ in $(seq 1 300); do
  "$RF_BIN/reelfarm" status "$job" --json > "$WORK/s.json" 2>/dev/null || true
  state=$(grep -o '^{"id":"[^"]*","name":"[^"]*","state":"[a-z]*"' "$WORK/s.json" | grep -o '[a-z]*"$' | tr -d '"')
  case "$state" in done|failed|cancelled) break ;; esac
  sleep 0.1
done
[ "$state" = done ] || fail "job ended '$state': $(cat "$WORK/s.json")"
took=$(( $(date +%s) - t0 ))
[ "$took" -lt 30 ] || fail "the job waited for the straggler ($took s)"
ok "job done $took s after the fast worker joined (the slow chunk alone would take 40 s)"
grep -q 'backup run of chunk' "$WORK/coordinator.log" || fail "no backup run was made"
grep -q '"worker":"slow"' "$WORK/s.json" && fail "a result from the slow worker was kept: $(cat "$WORK/s.json")"
grep -qi 'cancel' "$WORK/slow.log" || fail "the slow worker was not told to stop"
ok "a backup run on 'fast' won; the slow run was cancelled"
verify_lossless "$WORK/in.mp4" "$WORK/out.mkv"
