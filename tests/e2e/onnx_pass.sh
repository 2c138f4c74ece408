#!/usr/bin/env bash
# The onnx pass through real daemons: the `scenes` fixture (320x180, 366 frames) through two onnx
# passes - a temporal model (tests/fixtures/onnx-pass/diff.onnx: cur - prev, inputs bound as
# `cur=frame, prev=frame-1`, output range [-1, 1]) and a x2 upscaler (upscale2.onnx: 1x1 conv +
# DepthToSpace) - rendered twice, losslessly (ffv1), chunked differently:
#   A: split keyframe, 1-2 s chunks, no context frames asked for (the planner must add the one
#      frame-1 needs)
#   B: split scene, 5-8 s chunks
# Both outputs must be 640x360 (the encoder follows the model's size), 366 frames, and every
# decoded frame of A must equal B's: frame-K history crosses chunk boundaries through context frames.
source "$(dirname "$0")/lib.bash"
src=$(fixture scenes)
cp "$src" "$WORK/in.mp4"
models="$RF_FIXTURES/onnx-pass"
# One BLAS thread per worker: two workers share this machine's cores, and OpenBLAS threads that
# spin waiting for work would take them from each other.
export OPENBLAS_NUM_THREADS=1
farm_ports
start_coordinator
for name in w1 w2; do start_worker "$name"; done

pipeline="pipeline: [{pass: onnx, role: refine, model: $models/diff.onnx, device: cpu, inputs: 'cur=frame, prev=frame-1', output_min: -1, output_max: 1}, {pass: onnx, role: generate, model: $models/upscale2.onnx, device: cpu}]"
write_job "$WORK/a.yaml" in.mp4 a.mkv ffv1 "$pipeline" \
  "chunking: {split: keyframe, target_seconds: 1, max_seconds: 2}"
write_job "$WORK/b.yaml" in.mp4 b.mkv ffv1 "$pipeline" \
  "chunking: {split: scene, target_seconds: 5, max_seconds: 8}"
sed -i '/^chunking: {target_seconds: 6/d' "$WORK/a.yaml" "$WORK/b.yaml"
ja=$("$RF_BIN/reelfarm" submit --wait "$WORK/a.yaml") || fail "job A failed: $(tail -5 "$WORK/coordinator.log")"
jb=$("$RF_BIN/reelfarm" submit --wait "$WORK/b.yaml") || fail "job B failed: $(tail -5 "$WORK/coordinator.log")"
na=$("$RF_BIN/reelfarm" status "$ja" --json | jq '.chunks_total'); nb=$("$RF_BIN/reelfarm" status "$jb" --json | jq '.chunks_total')
[ "$na" -gt "$nb" ] || fail "the two chunkings should differ: A has $na chunks, B $nb"
ok "rendered with $na and $nb chunks"
for f in a b; do
  size=$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=p=0 "$WORK/$f.mkv")
  [ "$size" = "640,360" ] || fail "$f.mkv is $size, want 640,360"
  [ "$(decoded_frame_count "$WORK/$f.mkv")" = 366 ] || fail "$f.mkv does not decode to 366 frames"
done
ok "both 640x360 (x2 by the model), 366 frames"
frame_hashes "$WORK/a.mkv" > "$WORK/a.hash"; frame_hashes "$WORK/b.mkv" > "$WORK/b.hash"
cmp -s "$WORK/a.hash" "$WORK/b.hash" || fail "chunking changed the output (first differing frame: $(cmp "$WORK/a.hash" "$WORK/b.hash" | awk '{print $NF}'))"
ok "all 366 frames identical across the two chunkings (frame-1 history crosses chunk boundaries)"
# The frames are differences: a still source would give flat grey (0.5 before the x2 model, whose
# four gains average 0.625, so about 0.31: limited-range luma 16 + 219 * 0.3125 = 84); the output
# must not be the plain upscaled source, and its mean luma must sit near 84.
ffmpeg -v error -i "$WORK/in.mp4" -vf scale=640:360:flags=neighbor -c:v ffv1 -y "$WORK/plain.mkv"
frame_hashes "$WORK/plain.mkv" > "$WORK/plain.hash"
! cmp -s "$WORK/a.hash" "$WORK/plain.hash" || fail "the output equals the upscaled source: the passes did nothing"
mean=$(ffmpeg -v quiet -i "$WORK/a.mkv" -vf "format=gray,signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=-" -f null - 2>/dev/null |
  awk -F= '/YAVG/{s+=$2; n++} END{printf "%d\n", s/n}')
[ "$mean" -ge 70 ] && [ "$mean" -le 100 ] || fail "mean luma $mean: frame differences through the x2 gains should average near 84"
ok "the output is frame differences (mean luma $mean, 84 expected for a static picture)"
