#!/usr/bin/env bash
# Standalone daemons as real processes: reelfarm-coordinator, reelfarm-worker and `reelfarm submit`.
# A worker is killed with kill -9 while it renders a chunk: its lease expires (5 missed heartbeats),
# the chunk is rendered again elsewhere, and the job still ends with a complete, correct output.
# Then a second job goes through `submit --wait`, and SIGTERM stops every daemon.
source "$(dirname "$0")/lib.bash"
src=$(fixture h264-aac-1001)
cp "$src" "$WORK/in.mp4"
farm_ports

start_coordinator
start_worker wa; victim=$LAST_PID

# libx265 at this size is slow enough that the victim is surely inside a chunk when it dies.
write_job "$WORK/slow.yaml" in.mp4 slow.mp4 libx265
job=$("$RF_BIN/reelfarm" submit "$WORK/slow.yaml") || fail "submit failed: $(cat "$WORK/coordinator.log")"
[[ "$job" =~ ^j-[0-9a-f]{12}$ ]] || fail "submit printed '$job', not a job id"
ok "submitted $job"

for _ in $(seq 1 300); do
  "$RF_BIN/reelfarm" status "$job" --json > "$WORK/st.json" 2>/dev/null || true
  grep -q '"state":"running","frame_start":[0-9]*,"frame_end":[0-9]*,"attempts":1,"worker":"wa"' "$WORK/st.json" && break
  sleep 0.1
done
grep -q '"worker":"wa"' "$WORK/st.json" || fail "worker wa never got a chunk: $(cat "$WORK/st.json")"
kill -9 "$victim"
ok "killed worker wa (kill -9) while it rendered a chunk"
start_worker wb
start_worker wc

state=""
for _ in $(seq 1 1200); do
  "$RF_BIN/reelfarm" status "$job" --json > "$WORK/st.json" 2>/dev/null || true
  state=$(grep -o '^{"id":"[^"]*","name":"[^"]*","state":"[a-z]*"' "$WORK/st.json" | grep -o '[a-z]*"$' | tr -d '"')
  case "$state" in done|failed|cancelled) break ;; esac
  sleep 0.2
done
[ "$state" = done ] || fail "job ended '$state': $(cat "$WORK/st.json")"
grep -q '"attempts":2' "$WORK/st.json" || fail "no chunk was rendered a second time: $(cat "$WORK/st.json")"
ok "job done; the lost chunk was rendered again"
n=$(video_packet_count "$WORK/slow.mp4"); [ "$n" = 1001 ] || fail "output has $n frames"
ffmpeg -v error -xerror -i "$WORK/slow.mp4" -f null - || fail "output does not decode"
audio_hashes "$WORK/in.mp4" > "$WORK/a1"; audio_hashes "$WORK/slow.mp4" > "$WORK/a2"
cmp -s "$WORK/a1" "$WORK/a2" || fail "audio differs"
check_timestamps "$WORK/slow.mp4"
ok "output complete: 1001 frames, decodes, audio identical, timestamps increasing"

# A second job through submit --wait: exit 0 and a lossless output.
write_job "$WORK/quick.yaml" in.mp4 quick.mkv ffv1
"$RF_BIN/reelfarm" submit --wait --quiet "$WORK/quick.yaml" > "$WORK/quick.id" || fail "submit --wait exited $?"
verify_lossless "$WORK/in.mp4" "$WORK/quick.mkv"

# The job list knows both; SIGTERM stops every daemon cleanly.
"$RF_BIN/reelfarm" jobs --json | grep -q "\"id\":\"$job\"" || fail "jobs does not list $job"
for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for pid in "${PIDS[@]}"; do
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  ! kill -0 "$pid" 2>/dev/null || fail "process $pid still running 10 s after SIGTERM"
done
ok "all daemons stopped on SIGTERM"
# Finished jobs leave no slices or chunk results behind: released blobs are deleted after a grace
# period (another job's identical result may be on its way), or when the coordinator stops.
left=$(find "$WORK/state/blobs" -maxdepth 1 -type f | wc -l)
[ "$left" = 0 ] || fail "$left blobs left in the store after both jobs finished"
ok "blob store emptied"
