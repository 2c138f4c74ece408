#!/usr/bin/env bash
# `reelfarm render --workers 3` on an H.264 source with B-frames, 1001 frames (odd), 24000/1001 fps
# and AAC audio, empty pipeline, FFV1: the output must be the source, frame for frame.
source "$(dirname "$0")/lib.bash"
src=$(fixture h264-aac-1001)
cp "$src" "$WORK/in.mp4"
write_job "$WORK/job.yaml" in.mp4 out.mkv ffv1
rc=0; "$RF_BIN/reelfarm" render "$WORK/job.yaml" --workers 3 --quiet > "$WORK/stdout" 2> "$WORK/stderr" || rc=$?
[ "$rc" = 0 ] || { cat "$WORK/stderr" >&2; fail "render exited $rc"; }
[ "$(cat "$WORK/stdout")" = "$WORK/out.mkv" ] || fail "stdout should be the output path, got '$(cat "$WORK/stdout")'"
[ "$(ffprobe -v error -show_entries stream=r_frame_rate -select_streams v:0 -of csv=p=0 "$WORK/out.mkv")" = "24000/1001" ] ||
  fail "frame rate changed"
verify_lossless "$WORK/in.mp4" "$WORK/out.mkv"
