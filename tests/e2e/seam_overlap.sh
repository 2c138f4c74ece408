#!/usr/bin/env bash
# Seam overlap at forced boundaries, as real processes (coordinator + 2 workers). The source has
# no scene cut and chunks of 2-3 s, so every boundary is forced and gets `seam_overlap: 8`: both
# neighbours render those 8 frames (the earlier one past its end, into a lossless side part), the
# coordinator verifies the side parts with the results, cross-fades them and encodes only those
# frames at stitch time.
#  1. ffv1 with an empty pipeline: both renderings equal the source, so the cross-fade must give
#     the source back exactly: every decoded frame's SHA-256 equals the source's, audio identical.
#  2. x264 with a temporal pass (deflicker, 2 context frames for a window of 8, so the neighbours'
#     renderings really differ): the seams are encoded by the coordinator with the job's settings
#     (the stitcher refuses different headers), the output has every frame, decodes cleanly, and
#     its timestamps and audio are the source's.
source "$(dirname "$0")/lib.bash"
src=$(fixture h264-aac-1001) # 1001 frames at 23.976 fps, GOP 48
cp "$src" "$WORK/in.mp4"
farm_ports
start_coordinator
for name in w1 w2; do start_worker "$name"; done

write_job "$WORK/seam-ffv1.yaml" in.mp4 seam-ffv1.mkv ffv1 \
  "chunking: {split: keyframe, target_seconds: 2, max_seconds: 3, seam_overlap: 8}"
sed -i '/^chunking: {target_seconds: 6/d' "$WORK/seam-ffv1.yaml"
job=$("$RF_BIN/reelfarm" submit --wait "$WORK/seam-ffv1.yaml") || fail "ffv1 job failed: $(tail -5 "$WORK/coordinator.log")"
"$RF_BIN/reelfarm" logs "$job" > "$WORK/ffv1.events" || fail "logs failed"
seams=$(grep -o '[0-9]* cross-faded seams' "$WORK/ffv1.events" | grep -o '^[0-9]*')
[ -n "$seams" ] && [ "$seams" -ge 5 ] || fail "expected at least 5 cross-faded seams: $(tail -3 "$WORK/ffv1.events")"
ok "ffv1 job stitched with $seams cross-faded seams"
verify_lossless "$WORK/in.mp4" "$WORK/seam-ffv1.mkv"

write_job "$WORK/seam-x264.yaml" in.mp4 seam-x264.mp4 libx264 \
  "chunking: {split: keyframe, target_seconds: 2, max_seconds: 3, seam_overlap: 8, context_frames: 2}" \
  "pipeline: [{pass: deflicker, role: refine, strength: 0.8, window: 8}]"
sed -i '/^chunking: {target_seconds: 6/d' "$WORK/seam-x264.yaml"
job=$("$RF_BIN/reelfarm" submit --wait "$WORK/seam-x264.yaml") || fail "x264 job failed: $(tail -5 "$WORK/coordinator.log")"
"$RF_BIN/reelfarm" logs "$job" | grep -q "[1-9][0-9]* cross-faded seams" || fail "no seams in the x264 job"
n=$(decoded_frame_count "$WORK/seam-x264.mp4")
[ "$n" = 1001 ] || fail "x264 output decodes to $n frames, want 1001"
errors=$(ffmpeg -v error -i "$WORK/seam-x264.mp4" -f null - 2>&1 | head -3)
[ -z "$errors" ] || fail "x264 output does not decode cleanly: $errors"
check_timestamps "$WORK/seam-x264.mp4"
audio_hashes "$WORK/in.mp4" > "$WORK/a.src"; audio_hashes "$WORK/seam-x264.mp4" > "$WORK/a.out"
cmp -s "$WORK/a.src" "$WORK/a.out" || fail "audio differs"
ok "x264 + deflicker with seams: 1001 frames, clean decode, timestamps and audio kept"
