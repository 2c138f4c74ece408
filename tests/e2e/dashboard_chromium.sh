#!/usr/bin/env bash
# The dashboard in a real browser (Debian's headless Chromium) during a running job: short chunks
# (2 s, about 20 of them) and two workers slowed down on purpose (--test-fault slow:50) keep the
# job running for tens of seconds, even when Chromium itself is slow to start on a loaded machine. The DOM
# is read after the page's JavaScript ran (--dump-dom with a virtual time budget) at two moments,
# and the chunk cells' states must have changed between them (more chunks done); opening a done
# chunk through the URL fragment (#/jobs/ID/chunks/N) must show its thumbnail <img> loaded from a
# JPEG the coordinator made from the chunk's verified result (checked again with ffprobe); and a
# screenshot of the page must not be blank (luma variance of a 64x64 downscale with FFmpeg).
source "$(dirname "$0")/lib.bash"
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "skip: chromium is not installed (scripts/install-deps installs it)"; exit 77; }
src=$(fixture h264-aac-1001) # 1001 frames, a keyframe every 48
cp "$src" "$WORK/in.mp4"
farm_ports
start_coordinator
for name in w1 w2; do start_worker "$name" --test-fault slow:50; done
printf 'version: 1\nname: dash\ninput: in.mp4\noutput: dash.mkv\nchunking: {target_seconds: 2, max_seconds: 4}\nencode: {codec: ffv1}\n' > "$WORK/dash.yaml"
U=$(http_url)
deadline=$(( $(date +%s) + 20 ))
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$U/readyz")" = 200 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "/readyz never became 200"; sleep 0.1
done
job=$("$RF_BIN/reelfarm" submit "$WORK/dash.yaml" 2> "$WORK/submit.err") || fail "submit failed: $(cat "$WORK/submit.err")"
ok "dashboard at $U, job $job"

browser() { # browser OUTPUT-FLAG URL [budget ms]: one headless Chromium run, 90 s at most
  timeout 90 "$CHROMIUM" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --no-first-run --no-default-browser-check --hide-scrollbars --user-data-dir="$WORK/chrome" \
    --window-size=1400,1100 --virtual-time-budget="${3:-4000}" "$1" "$2" 2>> "$WORK/chromium.log"
}
chunk_states() { grep -o 'data-index="[0-9]*" data-state="[a-z]*"' "$1" | sed 's/data-index="\([0-9]*\)" data-state="\([a-z]*\)"/\1:\2/' | sort -n; }
api_done() { curl -fsS "$U/api/jobs/$job" | grep -o '"chunks_done":[0-9]*' | cut -d: -f2; }

# Moment 1: at least one chunk done, the job still running.
deadline=$(( $(date +%s) + 60 ))
until [ "$(api_done 2>/dev/null || echo 0)" -ge 1 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "no chunk done within 60 s: $(curl -s "$U/api/jobs/$job")"
  sleep 0.2
done
browser --dump-dom "$U/#/jobs/$job" > "$WORK/dom1.html" || fail "chromium failed: $(tail -5 "$WORK/chromium.log")"
chunk_states "$WORK/dom1.html" > "$WORK/states1"
total=$(curl -fsS "$U/api/jobs/$job" | grep -o '"chunks_total":[0-9]*' | cut -d: -f2)
[ "$total" -ge 10 ] || fail "the job has $total chunks; the test needs at least 10 to stay running"
[ "$(wc -l < "$WORK/states1")" = "$total" ] || fail "the page shows $(wc -l < "$WORK/states1") chunk cells, not $total: $(head -c 2000 "$WORK/dom1.html")"
grep -q ':running$' "$WORK/states1" || fail "no running chunk on the page: $(tr '\n' ' ' < "$WORK/states1")"
done1=$(grep -c ':done$' "$WORK/states1" || true)
ok "moment 1: $(tr '\n' ' ' < "$WORK/states1")"

# Moment 2: wait until the coordinator reports more chunks done, then look again.
deadline=$(( $(date +%s) + 90 ))
until [ "$(api_done)" -gt "$done1" ]; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "no further chunk done within 90 s"
  sleep 0.2
done
browser --dump-dom "$U/#/jobs/$job" > "$WORK/dom2.html" || fail "chromium failed: $(tail -5 "$WORK/chromium.log")"
chunk_states "$WORK/dom2.html" > "$WORK/states2"
done2=$(grep -c ':done$' "$WORK/states2" || true)
! cmp -s "$WORK/states1" "$WORK/states2" || fail "chunk states did not change on the page: $(tr '\n' ' ' < "$WORK/states2")"
[ "$done2" -gt "$done1" ] || fail "the page shows $done2 done chunks, before $done1"
ok "moment 2: $(tr '\n' ' ' < "$WORK/states2") ($done1 -> $done2 done)"

# Open a done chunk by URL fragment: its detail panel shows the thumbnail, loaded.
n=$(grep ':done$' "$WORK/states2" | head -1 | cut -d: -f1)
browser --dump-dom "$U/#/jobs/$job/chunks/$n" > "$WORK/dom3.html" || fail "chromium failed"
img=$(grep -o '<img id="chunk-thumb"[^>]*>' "$WORK/dom3.html" || true)
[ -n "$img" ] || fail "chunk $n opened without a thumbnail: $(grep -o '<div id="chunk-detail".\{0,600\}' "$WORK/dom3.html")"
grep -q "chunks/$n/thumb.jpg" <<< "$img" || fail "the thumbnail is not chunk $n's: $img"
grep -q 'data-loaded="1"' <<< "$img" || fail "the thumbnail did not load in the browser: $img"
curl -fsS -o "$WORK/thumb.jpg" "$U/api/jobs/$job/chunks/$n/thumb.jpg" || fail "thumbnail request failed"
[ "$(ffprobe -v error -show_entries stream=codec_name,width -of csv=p=0 "$WORK/thumb.jpg")" = "mjpeg,320" ] ||
  fail "thumbnail is not a 320 px JPEG: $(ffprobe -v error -show_entries stream=codec_name,width -of csv=p=0 "$WORK/thumb.jpg")"
ok "chunk $n opened: thumbnail <img> loaded, a 320 px JPEG"

# Screenshot, checked not blank: the variance of a 64x64 grey downscale.
browser --screenshot="$WORK/dashboard.png" "$U/#/jobs/$job/chunks/$n" 5000 > /dev/null || fail "screenshot failed: $(tail -5 "$WORK/chromium.log")"
[ -s "$WORK/dashboard.png" ] || fail "no screenshot written"
var=$(ffmpeg -v error -i "$WORK/dashboard.png" -vf scale=64:64,format=gray -f rawvideo - | od -An -tu1 -v |
  awk '{for(i=1;i<=NF;i++){s+=$i; q+=$i*$i; n++}} END{m=s/n; printf "%.1f", q/n-m*m}')
awk -v v="$var" 'BEGIN{exit !(v > 100)}' || fail "the screenshot looks blank (luma variance $var)"
ok "screenshot $(ffprobe -v error -show_entries stream=width,height -of csv=p=0:s=x "$WORK/dashboard.png") not blank (luma variance $var)"
if [ -n "${RF_SCREENSHOT_DIR:-}" ]; then cp "$WORK/dashboard.png" "$RF_SCREENSHOT_DIR/"; fi

"$RF_BIN/reelfarm" cancel "$job" > /dev/null || true
for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
