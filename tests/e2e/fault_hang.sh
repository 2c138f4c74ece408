#!/usr/bin/env bash
# A worker that hangs, as real processes: reelfarm-worker --test-fault hang stops making progress
# after the first frame of its chunk (its control loop stays alive: heartbeats, progress messages).
# The coordinator's task timeout (task_timeout_s: 10, the minimum) must free the chunk: the lease
# is cancelled, the attempt counts as failed, the chunk is rendered again on the other worker and
# the job completes. The stuck worker hears the Cancel and is still alive afterwards.
source "$(dirname "$0")/lib.bash"
src=$(fixture h264-aac-300) # 300 frames at 25 fps: two chunks of 6 s
cp "$src" "$WORK/in.mp4"
farm_ports

cat > "$WORK/coordinator.yaml" <<YAML
version: 1
state_dir: $WORK/state
listen:
  workers: $W
  clients: $C
  blobs: $B
http: {listen: "127.0.0.1:0"}
task_timeout_s: 10
YAML
"$RF_BIN/reelfarm-coordinator" --config "$WORK/coordinator.yaml" > "$WORK/coordinator.out" \
  2> "$WORK/coordinator.log" &
coord=$!; PIDS+=("$coord")

wait_connected() { # NAME
  for _ in $(seq 1 200); do grep -q '"msg":"connected to' "$WORK/$1.log" 2>/dev/null && return 0; sleep 0.1; done
  fail "worker $1 did not connect: $(tail -5 "$WORK/$1.log")"
}
job_state() { grep -o '^{"id":"[^"]*","name":"[^"]*","state":"[a-z]*"' "$1" | grep -o '[a-z]*"$' | tr -d '"'; }

# Both connected before the job is planned: each of the two chunks goes to one of them at once.
start_worker stuck --test-fault hang; stuck=$LAST_PID
wait_connected stuck
grep -q "test fault 'hang' is active: this worker misbehaves on purpose" "$WORK/stuck.log" ||
  fail "the stuck worker does not warn that its test fault is active"
start_worker ok; okw=$LAST_PID
wait_connected ok

write_job "$WORK/hang.yaml" in.mp4 hang.mkv ffv1
job=$("$RF_BIN/reelfarm" submit "$WORK/hang.yaml") || fail "submit failed: $(tail -5 "$WORK/coordinator.log")"
t0=$(date +%s)
state=""
while [ $(( $(date +%s) - t0 )) -lt 30 ]; do # 10 s of timeout, the 1 s tick, and the re-render
  "$RF_BIN/reelfarm" status "$job" --json > "$WORK/st.json" 2>/dev/null || true
  state=$(job_state "$WORK/st.json")
  case "$state" in done|failed|cancelled) break ;; esac
  sleep 0.2
done
if [ "$state" = running ] && grep -q '"state":"running","frame_start":[0-9]*,"frame_end":[0-9]*,"attempts":1,"worker":"stuck"' "$WORK/st.json"; then
  fail "the task timeout (10 s) never freed the stuck chunk in 30 s: the stuck worker's Progress messages (frames_done unchanged) must not count as progress: $(cat "$WORK/st.json")"
fi
[ "$state" = done ] ||
  fail "job ended '$state' after $(( $(date +%s) - t0 )) s: $(cat "$WORK/st.json"); coordinator: $(grep "$job" "$WORK/coordinator.log" | tail -3)"
ok "job done after $(( $(date +%s) - t0 )) s despite the stuck worker"

line=$(grep -n "test fault 'hang' applies to chunk" "$WORK/stuck.log" | head -1) || fail "worker stuck never got a chunk"
chunk=$(echo "$line" | grep -o 'applies to chunk [0-9]*' | grep -o '[0-9]*$')
grep -o "{\"index\":$chunk,[^}]*}" "$WORK/st.json" | grep -q '"attempts":2,"worker":"ok"' ||
  fail "stuck chunk $chunk was not rendered a second time by 'ok': $(cat "$WORK/st.json")"
ok "stuck chunk $chunk: 2 attempts, kept from 'ok'"
grep "$job" "$WORK/coordinator.log" | grep "chunk $chunk attempt 1 on 'stuck'" | grep "timed out" | grep -q "no progress" ||
  fail "no event says chunk $chunk timed out on 'stuck' with no progress: $(grep "$job" "$WORK/coordinator.log" | tail -5)"
ok "the coordinator's events say the chunk timed out without progress on 'stuck'"
grep -q "cancel chunk $chunk: no progress" "$WORK/stuck.log" || fail "worker stuck never heard the Cancel: $(tail -5 "$WORK/stuck.log")"
grep -q "\"msg\":\"chunk $chunk of job $job failed (cancelled)" "$WORK/stuck.log" ||
  fail "worker stuck did not stop the chunk after the Cancel: $(tail -5 "$WORK/stuck.log")"
kill -0 "$stuck" 2>/dev/null || fail "worker stuck died"
ok "worker stuck received the Cancel, stopped the chunk, and is still alive"
[ -z "$(find "$WORK/cache-stuck" -path '*/leases/*' 2>/dev/null)" ] || fail "the stuck worker left work files: $(find "$WORK/cache-stuck" -path '*/leases/*')"
n=$(video_packet_count "$WORK/hang.mkv"); [ "$n" = 300 ] || fail "output has $n frames"
cmp -s <(frame_hashes "$WORK/in.mp4") <(frame_hashes "$WORK/hang.mkv") || fail "output frames differ from the source"
ok "output lossless: 300 frames bit-identical"

for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for pid in "${PIDS[@]}"; do
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  ! kill -0 "$pid" 2>/dev/null || fail "process $pid still running 10 s after SIGTERM"
done
ok "all daemons stopped on SIGTERM"
