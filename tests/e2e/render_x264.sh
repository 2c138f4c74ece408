#!/usr/bin/env bash
# The same job encoded with libx264 into MP4: plays start to end, has the source's frame count and
# its duration within half a frame.
source "$(dirname "$0")/lib.bash"
src=$(fixture h264-aac-1001)
cp "$src" "$WORK/in.mp4"
write_job "$WORK/job.yaml" in.mp4 out.mp4 libx264 
sed -i 's/encode: {codec: libx264}/encode: {codec: libx264, crf: 20, preset: veryfast}/' "$WORK/job.yaml"
"$RF_BIN/reelfarm" render "$WORK/job.yaml" --workers 3 --quiet > /dev/null 2> "$WORK/stderr" ||
  { cat "$WORK/stderr" >&2; fail "render failed"; }
ffmpeg -v error -xerror -i "$WORK/out.mp4" -f null - 2> "$WORK/decode.log" || { cat "$WORK/decode.log" >&2; fail "output does not decode cleanly"; }
[ ! -s "$WORK/decode.log" ] || { cat "$WORK/decode.log" >&2; fail "decoder complained"; }
ok "plays start to end without a decoder message"
n_src=$(decoded_frame_count "$WORK/in.mp4"); n_out=$(decoded_frame_count "$WORK/out.mp4")
[ "$n_src" = "$n_out" ] || fail "decoded frames: source $n_src, output $n_out"
ok "decoded frame count $n_out"
d_src=$(video_duration "$WORK/in.mp4"); d_out=$(video_duration "$WORK/out.mp4")
awk -v a="$d_src" -v b="$d_out" 'BEGIN{d=a-b; if(d<0)d=-d; exit !(d <= 0.5*1001/24000)}' ||
  fail "duration: source $d_src s, output $d_out s (more than half a frame apart)"
ok "duration $d_out s (source $d_src s)"
[ "$(ffprobe -v error -select_streams v:0 -show_entries stream=codec_name -of csv=p=0 "$WORK/out.mp4")" = h264 ] || fail "not H.264"
audio_hashes "$WORK/in.mp4" > "$WORK/a1"; audio_hashes "$WORK/out.mp4" > "$WORK/a2"
cmp -s "$WORK/a1" "$WORK/a2" || fail "audio packets differ"
ok "audio packets identical"
check_timestamps "$WORK/out.mp4"
ok "timestamps strictly increasing"
