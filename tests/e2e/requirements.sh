#!/usr/bin/env bash
# Capability matching on requirements, as real processes: a job that needs a GPU (`requirements:
# {gpu: true}`) and one that needs 20 GiB of VRAM are submitted to a farm of CPU-only workers
# (this machine has no CUDA device, so the workers' probes report none; a machine with one skips
# this test). Neither gets a chunk assigned, and each says why in its events, while a plain job
# submitted after them renders to completion on the same workers.
source "$(dirname "$0")/lib.bash"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "skip: this machine has a GPU, the workers would advertise it"; exit 77
fi
src=$(fixture h264-aac-300)
cp "$src" "$WORK/in.mp4"
farm_ports
start_coordinator
for name in w1 w2; do start_worker "$name"; done

write_job "$WORK/gpu.yaml" in.mp4 gpu.mkv ffv1 "requirements: {gpu: true}"
write_job "$WORK/vram.yaml" in.mp4 vram.mkv ffv1 "requirements: {vram_mib: 20480}"
write_job "$WORK/cpu.yaml" in.mp4 cpu.mkv ffv1
gpu=$("$RF_BIN/reelfarm" submit "$WORK/gpu.yaml") || fail "submit gpu.yaml failed"
vram=$("$RF_BIN/reelfarm" submit "$WORK/vram.yaml") || fail "submit vram.yaml failed"
"$RF_BIN/reelfarm" submit --wait "$WORK/cpu.yaml" > "$WORK/cpu.out" || fail "the CPU job did not complete: $(tail -5 "$WORK/coordinator.log")"
ok "a plain job completes while the GPU jobs wait"
verify_lossless "$WORK/in.mp4" "$WORK/cpu.mkv"

for job in "$gpu" "$vram"; do
  "$RF_BIN/reelfarm" status "$job" --json > "$WORK/st.json" || fail "status $job failed"
  jq -e '.state == "running" and .chunks_done == 0' "$WORK/st.json" >/dev/null ||
    fail "job $job should wait with no chunk done: $(cat "$WORK/st.json")"
  jq -e '[.chunks[] | select(.attempts > 0)] | length == 0' "$WORK/st.json" >/dev/null ||
    fail "a chunk of $job was assigned to a CPU worker: $(cat "$WORK/st.json")"
  "$RF_BIN/reelfarm" logs "$job" > "$WORK/events.txt" || fail "logs $job failed"
  grep -q "waiting: no live worker has what this job needs" "$WORK/events.txt" ||
    fail "job $job does not say why it waits: $(cat "$WORK/events.txt")"
done
grep -q "a GPU)" <("$RF_BIN/reelfarm" logs "$gpu") || fail "the GPU job's event does not name the GPU"
grep -q "free VRAM >= 20480 MiB" <("$RF_BIN/reelfarm" logs "$vram") || fail "the VRAM job's event does not name the VRAM"
ok "GPU and VRAM jobs wait, each naming what it needs"
for job in "$gpu" "$vram"; do "$RF_BIN/reelfarm" cancel "$job" >/dev/null || fail "cancel $job failed"; done
ok "waiting jobs cancel"
