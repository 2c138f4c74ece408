#!/usr/bin/env bash
# `reelfarm verify`: a lossless render verifies (exit 0 with its farm CA as trust anchor, every
# media check ok, its sidecar manifest valid; the watermark "not checked" without the farm key, found
# with it, exit 30 once the metadata is stripped); tampered copies
# made with ffmpeg (no manifest) fail with the check named and exit 1: one frame dropped (frames),
# the audio re-encoded (audio), one frame's pixels changed (lossless only; else exit 40, nothing
# found). Usage errors and an unreadable source are exit 2. (C2PA itself: c2pa_wasm.sh.)
source "$(dirname "$0")/lib.bash"
R=$RF_BIN/reelfarm
src=$(fixture h264-aac-300)
cp "$src" "$WORK/in.mp4"
write_job "$WORK/v.yaml" in.mp4 out.mkv ffv1
"$R" render "$WORK/v.yaml" --signing-dir "$WORK/keys" --quiet > /dev/null 2> "$WORK/render.err" || fail "render: $(cat "$WORK/render.err")"
out=$WORK/out.mkv
# No farm watermark key where verify looks by default (render's own is in --signing-dir): the
# watermark is "not checked" below until --watermark-key names it.
export HOME=$WORK/home XDG_CONFIG_HOME=$WORK/home/.config
mkdir -p "$HOME"

"$R" verify "$out" --trust "$WORK/keys/ca.pem" --source "$WORK/in.mp4" --lossless > "$WORK/good.txt" 2> "$WORK/good.err" || fail "verify of a good render exited $?: $(cat "$WORK/good.txt" "$WORK/good.err")"
for check in media frames duration audio timestamps lossless; do
  grep -q "^ok  *$check " "$WORK/good.txt" || fail "good render: check $check not ok: $(cat "$WORK/good.txt")"
done
grep -q "^ok  *c2pa  *assertion.dataHash.match" "$WORK/good.txt" || fail "the sidecar's hash is not checked: $(cat "$WORK/good.txt")"
grep -q "^skip  *watermark  *not checked" "$WORK/good.txt" || fail "verify does not say the watermark is not checked"
grep -q "valid C2PA manifest signed by a trusted farm key (exit 0)" "$WORK/good.txt" || fail "verify's summary: $(cat "$WORK/good.txt")"
[ ! -s "$WORK/good.err" ] || fail "good render: stderr: $(cat "$WORK/good.err")"
"$R" verify "$out" --trust "$WORK/keys/ca.pem" --source "$WORK/in.mp4" --lossless --json > "$WORK/good.json" || fail "verify --json exited $?"
jq -e '.ok == true and .provenance_checked == true and .exit_code == 0 and .source != null
  and ([.checks[] | select(.status == "ok" and .check != "c2pa") | .check] == ["media","frames","duration","audio","timestamps","lossless"])
  and ([.checks[] | select(.check == "watermark")][0].status == "skip")
  and .provenance.verdict == "trusted" and .provenance.embedded == false
  and all(.checks[]; keys == ["check","detail","status"])' "$WORK/good.json" > /dev/null || fail "verify --json: $(cat "$WORK/good.json")"
ok "a lossless render verifies: every media check ok, its sidecar manifest trusted, the watermark reported as not checked"

# With the farm's watermark key: the mark is found (the job tag printed); with the metadata gone
# (remuxed without the sidecar) the watermark alone is exit 30; another farm's key finds nothing.
# On the 640x360 demo clip: at 320x180 a chip is under 3 pixels and detection is marginal.
cp "$(fixture demo)" "$WORK/demo.mp4"
write_job "$WORK/wm.yaml" demo.mp4 wm.mkv ffv1
"$R" render "$WORK/wm.yaml" --signing-dir "$WORK/keys" --quiet > /dev/null 2> "$WORK/render-wm.err" || fail "render: $(cat "$WORK/render-wm.err")"
wmout=$WORK/wm.mkv
"$R" verify "$wmout" --trust "$WORK/keys/ca.pem" --watermark-key "$WORK/keys/watermark.key" > "$WORK/wm.txt" ||
  fail "verify with the watermark key exited $?: $(cat "$WORK/wm.txt")"
grep -q "^ok  *watermark  *found: key id" "$WORK/wm.txt" || fail "the watermark was not found: $(cat "$WORK/wm.txt")"
ffmpeg -v error -y -i "$wmout" -map 0 -c copy -map_metadata -1 "$WORK/stripped.mkv"
set +e; "$R" verify "$WORK/stripped.mkv" --watermark-key "$WORK/keys/watermark.key" > "$WORK/strip.txt" 2>&1; rc=$?; set -e
[ $rc = 30 ] || fail "stripped copy: exit $rc, expected 30 (watermark only): $(cat "$WORK/strip.txt")"
head -c 32 /dev/urandom > "$WORK/other.key"
set +e; "$R" verify "$WORK/stripped.mkv" --watermark-key "$WORK/other.key" > "$WORK/other.txt" 2>&1; rc=$?; set -e
[ $rc = 40 ] || fail "stripped copy, another farm's key: exit $rc, expected 40: $(cat "$WORK/other.txt")"
grep -q "not found with this farm key" "$WORK/other.txt" || fail "another key: $(cat "$WORK/other.txt")"
ok "the watermark: found with the farm key, exit 30 when it is all that is left, nothing with another key"

# expect_fail FILE CHECK [verify flags...]: exit 1, CHECK marked fail, stderr names it.
expect_fail() {
  local file=$1 check=$2; shift 2
  set +e; "$R" verify "$file" --source "$WORK/in.mp4" "$@" > "$WORK/bad.txt" 2> "$WORK/bad.err"; local rc=$?; set -e
  [ $rc = 1 ] || fail "verify $(basename "$file"): exit $rc, expected 1: $(cat "$WORK/bad.txt" "$WORK/bad.err")"
  grep -q "^fail  *$check " "$WORK/bad.txt" || fail "verify $(basename "$file"): check $check not failed: $(cat "$WORK/bad.txt")"
  [ "$(wc -l < "$WORK/bad.err")" = 1 ] && grep -q "^reelfarm: '$file' failed verification: check '$check': " "$WORK/bad.err" ||
    fail "verify $(basename "$file"): message: $(cat "$WORK/bad.err")"
}
ffmpeg -v error -y -i "$out" -map 0 -vf "select=not(eq(n\,150)),setpts=N/FRAME_RATE/TB" -c:v ffv1 -c:a copy "$WORK/dropped.mkv"
expect_fail "$WORK/dropped.mkv" frames
grep -q "299 video frames, the source has 300" "$WORK/bad.txt" || fail "dropped frame: $(cat "$WORK/bad.txt")"
ok "one frame dropped: check 'frames' fails, exit 1"
ffmpeg -v error -y -i "$out" -map 0 -c:v copy -c:a aac -b:a 96k "$WORK/reencoded.mkv"
expect_fail "$WORK/reencoded.mkv" audio
grep -q "^ok  *frames " "$WORK/bad.txt" || fail "audio re-encoded: frames should still be ok"
ok "audio re-encoded: check 'audio' fails, exit 1"
ffmpeg -v error -y -i "$out" -map 0 -vf "drawbox=x=0:y=0:w=16:h=16:color=red:t=fill:enable='eq(n,42)'" -c:v ffv1 -c:a copy "$WORK/painted.mkv"
set +e; "$R" verify "$WORK/painted.mkv" --source "$WORK/in.mp4" > /dev/null; rc=$?; set -e
[ $rc = 40 ] || fail "one painted frame should pass the media checks without --lossless (exit 40: no mark), got $rc"
expect_fail "$WORK/painted.mkv" lossless --lossless
grep -q "decoded frame 42 differs" "$WORK/bad.txt" || fail "painted frame: $(cat "$WORK/bad.txt")"
ok "one frame's pixels changed: only --lossless catches it (frame 42), exit 1"

set +e
"$R" verify "$out" --lossless > /dev/null 2> "$WORK/u1.err"; rc1=$?
"$R" verify "$out" --source "$WORK/nope.mp4" > /dev/null 2> "$WORK/u2.err"; rc2=$?
"$R" verify > /dev/null 2> "$WORK/u3.err"; rc3=$?
set -e
[ $rc1 = 2 ] && grep -q "flag '--lossless' needs '--source SRC'" "$WORK/u1.err" || fail "--lossless without --source: exit $rc1 $(cat "$WORK/u1.err")"
[ $rc2 = 2 ] && grep -q "nope.mp4" "$WORK/u2.err" || fail "missing source: exit $rc2 $(cat "$WORK/u2.err")"
[ $rc3 = 2 ] && grep -q "missing FILE" "$WORK/u3.err" || fail "no operand: exit $rc3 $(cat "$WORK/u3.err")"
set +e; "$R" verify "$WORK/v.yaml" --source "$WORK/in.mp4" > "$WORK/nm.txt" 2> /dev/null; rc=$?; set -e
[ $rc = 1 ] && grep -q "^fail  *media " "$WORK/nm.txt" || fail "a non-media output: exit $rc $(cat "$WORK/nm.txt")"
ok "usage errors and a missing source exit 2; a non-media output fails check 'media'"
