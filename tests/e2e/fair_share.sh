#!/usr/bin/env bash
# Three concurrent jobs of priorities 80, 40 and 20 on 7 slots share them in proportion to their
# priority (weights 81:41:21, about 4:2:1); pausing the first hands its slots to the others and
# resuming takes them back; every job still ends with a complete, lossless output. Also checks
# `reelfarm workers` and `reelfarm logs`.
source "$(dirname "$0")/lib.bash"
src=$(fixture h264-aac-1001)
cp "$src" "$WORK/in.mp4"
base=$(( $(port_base) + 7000 ))
W=tcp://127.0.0.1:$base; C=tcp://127.0.0.1:$((base + 1)); B=tcp://127.0.0.1:$((base + 2))
export REELFARM_COORDINATOR=$C
"$RF_BIN/reelfarm-coordinator" --state "$WORK/state" --listen-workers "$W" --listen-clients "$C" \
  --listen-blobs "$B" > /dev/null 2> "$WORK/coordinator.log" &
PIDS+=("$!")
# slow:40 sleeps 15 ms per frame: chunk times no longer depend on this machine's 2 cores.
"$RF_BIN/reelfarm-worker" --coordinator "$W" --blobs "$B" --name farm --slots 7 --cache "$WORK/cache" \
  --test-fault slow:40 > /dev/null 2> "$WORK/worker.log" &
PIDS+=("$!")

ids=()
for p in 20 40 80; do
  write_job "$WORK/p$p.yaml" in.mp4 "out-$p.mkv" ffv1 "priority: $p"
  sed -i 's/target_seconds: 6, max_seconds: 10/target_seconds: 1, max_seconds: 2/' "$WORK/p$p.yaml"
  ids+=("$("$RF_BIN/reelfarm" submit "$WORK/p$p.yaml")")
done
running_of() { { grep -o '"state":"running","frame_start"' "$1" || true; } | wc -l; }
sample() { # prints running chunks of the three jobs
  local line=""
  for id in "${ids[@]}"; do
    "$RF_BIN/reelfarm" status "$id" --json > "$WORK/s.json" 2>/dev/null || true
    line="$line $(running_of "$WORK/s.json")"
  done
  echo "$line"
}
sleep 2 # past the first chunks, which the first-submitted job grabbed alone
for _ in $(seq 1 12); do sample; sleep 0.1; done > "$WORK/samples"
read -r r20 r40 r80 < <(awk '{a+=$1; b+=$2; c+=$3} END{printf "%.2f %.2f %.2f\n", a/NR, b/NR, c/NR}' "$WORK/samples")
ok "mean running chunks: priority 20: $r20, 40: $r40, 80: $r80 (expected about 1, 2, 4 of 7)"
awk -v a="$r20" -v b="$r40" -v c="$r80" 'BEGIN{exit !(c > b && b > a && c >= 2.8 && a <= 1.6 && a > 0)}' ||
  fail "slots not shared by priority: $r20 / $r40 / $r80; samples: $(tr '\n' ';' < "$WORK/samples")"

"$RF_BIN/reelfarm" pause "${ids[2]}" > /dev/null || fail "pause failed"
sleep 2
"$RF_BIN/reelfarm" status "${ids[2]}" --json > "$WORK/p.json"
grep -q '"state":"paused"' "$WORK/p.json" || fail "paused job does not say paused"
[ "$(running_of "$WORK/p.json")" = 0 ] || fail "a paused job still runs chunks: $(cat "$WORK/p.json")"
ok "paused job runs nothing; its slots went to the others"
"$RF_BIN/reelfarm" resume "${ids[2]}" > /dev/null || fail "resume failed"

for id in "${ids[@]}"; do
  for _ in $(seq 1 900); do
    "$RF_BIN/reelfarm" status "$id" --json > "$WORK/s.json" 2>/dev/null || true
    grep -q '^{"id":"[^"]*","name":"[^"]*","state":"done"' "$WORK/s.json" && break
    grep -q '^{"id":"[^"]*","name":"[^"]*","state":"\(failed\|cancelled\)"' "$WORK/s.json" && fail "job $id: $(cat "$WORK/s.json")"
    sleep 0.2
  done
done
for p in 20 40 80; do verify_lossless "$WORK/in.mp4" "$WORK/out-$p.mkv" > /dev/null; done
ok "all three jobs done, each output lossless"

"$RF_BIN/reelfarm" workers > "$WORK/workers.txt"
grep -q '^farm .* ready .* 7 ' "$WORK/workers.txt" || fail "workers: $(cat "$WORK/workers.txt")"
"$RF_BIN/reelfarm" logs "${ids[2]}" > "$WORK/logs.txt"
grep -q 'paused' "$WORK/logs.txt" && grep -q 'resumed' "$WORK/logs.txt" && grep -q 'done:' "$WORK/logs.txt" ||
  fail "logs lack pause/resume/done: $(cat "$WORK/logs.txt")"
ok "workers and logs report the farm and the job's history"
