#!/usr/bin/env bash
# The refinement passes through real daemons, and the promise that chunking does not change the
# output: the `scenes` fixture (five shots, 366 frames) rendered twice, losslessly (ffv1), through
# deflicker + color-match (reference: source, so the coordinator computes one colour reference per
# scene and sends each chunk those of its scenes) + scale (320x180 -> 256x144, Lanczos):
#   A: split keyframe, 1-2 s chunks, seam_overlap 4 (forced boundaries inside scenes, cross-faded)
#   B: split scene, 5-8 s chunks
# The specs ask for 16 context frames, fewer than the chain needs (deflicker 7 + color-match 12:
# color-match's history is made of frames deflicker rendered with their own history), so the
# planner must raise it to 19 by itself. Every decoded frame of A must equal B's (bit for bit):
# same seed, same frames, however the job is chunked. Both outputs are 256x144 with
# all 366 frames and the source's audio packets.
source "$(dirname "$0")/lib.bash"
src=$(fixture scenes)
cp "$src" "$WORK/in.mp4"
farm_ports
start_coordinator
for name in w1 w2; do start_worker "$name"; done

pipeline='pipeline: [{pass: deflicker, role: refine, strength: 0.5, window: 8}, {pass: color-match, role: refine, reference: source, strength: 0.8}, {pass: scale, role: refine, width: 256}]'
write_job "$WORK/a.yaml" in.mp4 a.mkv ffv1 "$pipeline" \
  "chunking: {split: keyframe, target_seconds: 1, max_seconds: 2, context_frames: 16, seam_overlap: 4}"
write_job "$WORK/b.yaml" in.mp4 b.mkv ffv1 "$pipeline" \
  "chunking: {split: scene, target_seconds: 5, max_seconds: 8, context_frames: 16}"
sed -i '/^chunking: {target_seconds: 6/d' "$WORK/a.yaml" "$WORK/b.yaml"
ja=$("$RF_BIN/reelfarm" submit --wait "$WORK/a.yaml") || fail "job A failed: $(tail -5 "$WORK/coordinator.log")"
jb=$("$RF_BIN/reelfarm" submit --wait "$WORK/b.yaml") || fail "job B failed: $(tail -5 "$WORK/coordinator.log")"
na=$("$RF_BIN/reelfarm" status "$ja" --json | jq '.chunks_total'); nb=$("$RF_BIN/reelfarm" status "$jb" --json | jq '.chunks_total')
[ "$na" -gt "$nb" ] || fail "the two chunkings should differ: A has $na chunks, B $nb"
"$RF_BIN/reelfarm" logs "$ja" | grep -q "[1-9][0-9]* cross-faded seams" || fail "job A has no cross-faded seam"
ok "rendered with $na and $nb chunks"
for f in a b; do
  size=$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=p=0 "$WORK/$f.mkv")
  [ "$size" = "256,144" ] || fail "$f.mkv is $size, want 256,144"
  [ "$(decoded_frame_count "$WORK/$f.mkv")" = 366 ] || fail "$f.mkv does not decode to 366 frames"
  check_timestamps "$WORK/$f.mkv"
done
audio_hashes "$WORK/in.mp4" > "$WORK/a.src"; audio_hashes "$WORK/a.mkv" > "$WORK/a.out"
cmp -s "$WORK/a.src" "$WORK/a.out" || fail "audio differs from the source's"
ok "both 256x144, 366 frames, timestamps increasing, audio identical"
frame_hashes "$WORK/a.mkv" > "$WORK/a.hash"; frame_hashes "$WORK/b.mkv" > "$WORK/b.hash"
cmp -s "$WORK/a.hash" "$WORK/b.hash" || fail "chunking changed the output (first differing frame: $(cmp "$WORK/a.hash" "$WORK/b.hash" | awk '{print $NF}'))"
ok "all 366 frames identical across the two chunkings"
# The passes did something: the output is not just the scaled source.
ffmpeg -v error -i "$WORK/in.mp4" -vf scale=256:144:flags=lanczos -c:v ffv1 -y "$WORK/plain.mkv"
frame_hashes "$WORK/plain.mkv" > "$WORK/plain.hash"
! cmp -s "$WORK/a.hash" "$WORK/plain.hash" || fail "the output equals a plain scale: the passes did nothing"
ok "the passes changed the frames"
