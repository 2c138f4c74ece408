#!/usr/bin/env bash
# A chunk handed back by a draining worker does not cost an attempt: a worker that renders slowly
# is stopped with SIGTERM (drain_grace_s 0: it hands its chunk back at once) four times in a row -
# more than max_attempts (3) - and the job still completes on a last, normal worker, with four
# "handed back" events and a lossless output.
source "$(dirname "$0")/lib.bash"
src=$(fixture h264-aac-300)
cp "$src" "$WORK/in.mp4"
farm_ports
start_coordinator
printf 'version: 1\ndrain_grace_s: 0\n' > "$WORK/worker.yaml"
write_job "$WORK/job.yaml" in.mp4 out.mkv ffv1 "chunking: {split: keyframe, target_seconds: 20, max_seconds: 60}"
sed -i '/^chunking: {target_seconds: 6/d' "$WORK/job.yaml"
job=$("$RF_BIN/reelfarm" submit "$WORK/job.yaml") || fail "submit failed"
for round in 1 2 3 4; do
  start_worker "slow$round" --config "$WORK/worker.yaml" --test-fault slow:100
  pid=$LAST_PID
  for _ in $(seq 1 200); do
    "$RF_BIN/reelfarm" status "$job" --json > "$WORK/st.json" 2>/dev/null || true
    jq -e '[.chunks[] | select(.state == "running" and .frames_done > 0)] | length == 1' "$WORK/st.json" > /dev/null && break
    sleep 0.1
  done
  jq -e '[.chunks[] | select(.state == "running" and .frames_done > 0)] | length == 1' "$WORK/st.json" > /dev/null ||
    fail "round $round: the slow worker never rendered: $(cat "$WORK/st.json")"
  kill -TERM "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  ! kill -0 "$pid" 2>/dev/null || fail "round $round: the worker did not exit after SIGTERM with drain_grace_s 0"
  for _ in $(seq 1 50); do "$RF_BIN/reelfarm" logs "$job" | grep -q "on 'slow$round' handed back" && break; sleep 0.1; done
  "$RF_BIN/reelfarm" logs "$job" | grep -q "on 'slow$round' handed back" || fail "round $round: no hand-back event: $("$RF_BIN/reelfarm" logs "$job" | tail -3)"
done
ok "the chunk was handed back 4 times (max_attempts is 3)"
"$RF_BIN/reelfarm" status "$job" --json | jq -e '.state == "running"' > /dev/null || fail "the job did not survive the hand-backs: $("$RF_BIN/reelfarm" status "$job" --json)"
start_worker good
"$RF_BIN/reelfarm" watch "$job" > /dev/null || fail "the job did not complete: $("$RF_BIN/reelfarm" logs "$job" | tail -3)"
verify_lossless "$WORK/in.mp4" "$WORK/out.mkv"
