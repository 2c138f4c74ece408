#!/usr/bin/env bash
# The coordinator is killed with kill -9 in the middle of a job and restarted on the same state:
# the job completes, the chunks that were done before the kill are not rendered again (their
# attempt counts stay 1), and the output is complete and correct. A finished job is in the state
# too when it restarts (finished jobs are loaded without their spec; that once crashed the start).
source "$(dirname "$0")/lib.bash"
src=$(fixture h264-aac-1001)
cp "$src" "$WORK/in.mp4"
farm_ports

start_coordinator
for name in wa wb; do start_worker "$name"; done

write_job "$WORK/small.yaml" in.mp4 small.mkv ffv1 "chunking: {split: keyframe, target_seconds: 20, max_seconds: 60}"
sed -i '/^chunking: {target_seconds: 6/d' "$WORK/small.yaml"
"$RF_BIN/reelfarm" submit --wait --quiet "$WORK/small.yaml" > /dev/null || fail "the first (small) job failed"

write_job "$WORK/job.yaml" in.mp4 out.mp4 libx265
sed -i 's/target_seconds: 6, max_seconds: 10/target_seconds: 4, max_seconds: 6/' "$WORK/job.yaml"
job=$("$RF_BIN/reelfarm" submit "$WORK/job.yaml") || fail "submit failed"

chunk_attempts() { # prints "index state attempts" per chunk
  grep -o '"index":[0-9]*,"state":"[a-z]*","frame_start":[0-9]*,"frame_end":[0-9]*,"attempts":[0-9]*' "$1" |
    sed -E 's/"index":([0-9]+),"state":"([a-z]+)".*"attempts":([0-9]+)/\1 \2 \3/'
}
for _ in $(seq 1 600); do
  "$RF_BIN/reelfarm" status "$job" --json > "$WORK/before.json" 2>/dev/null || true
  [ "$(chunk_attempts "$WORK/before.json" | grep -c ' done ')" -ge 2 ] && break
  sleep 0.1
done
kill -9 "$COORD"
chunk_attempts "$WORK/before.json" | awk '$2=="done"{print $1}' > "$WORK/done-before"
[ "$(wc -l < "$WORK/done-before")" -ge 2 ] || fail "no chunk finished before the kill: $(cat "$WORK/before.json")"
running=$(chunk_attempts "$WORK/before.json" | grep -c ' running ' || true)
ok "killed the coordinator (kill -9) with $(wc -l < "$WORK/done-before") chunks done and $running running"

sleep 1
start_coordinator
state=""
for _ in $(seq 1 1500); do
  "$RF_BIN/reelfarm" status "$job" --json > "$WORK/after.json" 2>/dev/null || true
  state=$(grep -o '^{"id":"[^"]*","name":"[^"]*","state":"[a-z]*"' "$WORK/after.json" | grep -o '[a-z]*"$' | tr -d '"')
  case "$state" in done|failed|cancelled) break ;; esac
  sleep 0.2
done
[ "$state" = done ] || fail "after the restart the job ended '$state': $(cat "$WORK/after.json")"
ok "restarted coordinator finished the job"
while read -r idx; do
  a=$(chunk_attempts "$WORK/after.json" | awk -v i="$idx" '$1==i{print $3}')
  [ "$a" = 1 ] || fail "chunk $idx was done before the kill but has $a attempts now"
done < "$WORK/done-before"
ok "no chunk done before the kill was rendered again"
n=$(video_packet_count "$WORK/out.mp4"); [ "$n" = 1001 ] || fail "output has $n frames"
ffmpeg -v error -xerror -i "$WORK/out.mp4" -f null - || fail "output does not decode"
audio_hashes "$WORK/in.mp4" > "$WORK/a1"; audio_hashes "$WORK/out.mp4" > "$WORK/a2"
cmp -s "$WORK/a1" "$WORK/a2" || fail "audio differs"
check_timestamps "$WORK/out.mp4"
ok "output complete: 1001 frames, decodes, audio identical, timestamps increasing"
grep -q 'still runs chunk' "$WORK/coordinator.log" && ok "a running chunk was adopted after the restart" || true
