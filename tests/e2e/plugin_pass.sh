#!/usr/bin/env bash
# A pass from a plugin, as real processes: a worker started with --pass-dir loads the example
# plugin (tests/worker/plugin_invert.c, built into build/plugins/good), advertises "invert", and is
# the only worker given chunks of a job whose pipeline names it with `plugin: true`; a worker
# without the plugin gets none. The output is the negative of the source (checked against ffmpeg's
# negate filter by PSNR). A job with a parameter the plugin refuses fails for good, with a message
# naming the pass and the parameter. A worker whose pass folder holds a broken plugin refuses to
# start, saying why.
source "$(dirname "$0")/lib.bash"
PLUGINS="$RF_BIN/../plugins"
[ -f "$PLUGINS/good/invert.so" ] || fail "example plugin not built ($PLUGINS/good/invert.so)"

# A broken plugin stops the worker at start, with the reason.
rc=0
"$RF_BIN/reelfarm-worker" --coordinator tcp://127.0.0.1:9 --pass-dir "$PLUGINS/abi99" \
  > "$WORK/bad.out" 2> "$WORK/bad.err" || rc=$?
[ "$rc" = 2 ] || fail "worker with a broken plugin exited $rc: $(cat "$WORK/bad.err")"
grep -q "invert_abi99.so': pass ABI 99, this worker loads" "$WORK/bad.err" ||
  fail "no reason given: $(cat "$WORK/bad.err")"
ok "a worker with a broken plugin refuses to start: $(cat "$WORK/bad.err")"

src=$(fixture h264-aac-300)
cp "$src" "$WORK/in.mp4"
farm_ports
start_coordinator
start_worker plain
start_worker plug --pass-dir "$PLUGINS/good"
for _ in $(seq 1 100); do grep -q "pass plugin 'invert' loaded" "$WORK/plug.log" && break; sleep 0.1; done
grep -q "pass plugin 'invert' loaded" "$WORK/plug.log" || fail "plugin not loaded: $(tail -5 "$WORK/plug.log")"

write_job "$WORK/neg.yaml" in.mp4 neg.mkv ffv1 \
  "pipeline: [{pass: invert, plugin: true, amount: 1}]"
"$RF_BIN/reelfarm" submit --wait --quiet "$WORK/neg.yaml" > "$WORK/neg.id" ||
  fail "submit --wait exited $?: $(tail -5 "$WORK/coordinator.log")"
job=$(cat "$WORK/neg.id")
"$RF_BIN/reelfarm" status "$job" --json > "$WORK/st.json"
! grep -q '"worker":"plain"' "$WORK/st.json" || fail "worker without the plugin got a chunk: $(cat "$WORK/st.json")"
grep -q '"worker":"plug"' "$WORK/st.json" || fail "no chunk on the plugin worker: $(cat "$WORK/st.json")"
ok "only the worker with the plugin rendered chunks"
n=$(video_packet_count "$WORK/neg.mkv"); [ "$n" = 300 ] || fail "output has $n frames"
psnr=$(ffmpeg -v info -i "$WORK/neg.mkv" -i "$WORK/in.mp4" \
  -lavfi "[1:v]format=gbrp,negate,format=yuv420p[n];[0:v]format=yuv420p[o];[o][n]psnr" -f null - 2>&1 |
  grep -o 'average:[0-9.inf]*' | cut -d: -f2)
awk -v p="$psnr" 'BEGIN{exit !(p == "inf" || p + 0 > 30)}' || fail "output is not the negative: PSNR $psnr dB"
ok "output is the negative of the source (PSNR $psnr dB against ffmpeg's negate)"

# A parameter the plugin refuses: the coordinator passes it through, the worker's create() fails,
# and the chunk is not retried (the job fails with the pass's message).
write_job "$WORK/badp.yaml" in.mp4 badp.mkv ffv1 \
  "pipeline: [{pass: invert, plugin: true, amount: 2}]"
rc=0
"$RF_BIN/reelfarm" submit --wait --quiet "$WORK/badp.yaml" > "$WORK/badp.id" 2> "$WORK/badp.err" || rc=$?
[ "$rc" != 0 ] || fail "a job with amount 2 succeeded"
"$RF_BIN/reelfarm" status "$(head -1 "$WORK/badp.id")" --json > "$WORK/st2.json" 2>&1 || true
grep -q "pass 'invert': parameter 'amount': expected a number in 0..1, got '2'" "$WORK/st2.json" "$WORK/badp.err" ||
  fail "failure does not name the pass and parameter: $(cat "$WORK/badp.err" "$WORK/st2.json")"
ok "a bad plugin parameter fails the job, naming pass and parameter"
