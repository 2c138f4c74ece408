#!/usr/bin/env bash
# Three concurrent jobs of priorities 80, 40 and 20 on 7 slots share them in proportion to their
# priority (weights 81:41:21, about 4:2:1); pausing the first hands its slots to the others and
# resuming takes them back; every job still ends with a complete, lossless output. Also checks
# `reelfarm workers` and `reelfarm logs`.
source "$(dirname "$0")/lib.bash"
src=$(fixture h264-aac-1001)
cp "$src" "$WORK/in.mp4"
farm_ports
start_coordinator
# slow:40 sleeps 40 ms per frame: chunk times no longer depend on this machine's 2 cores.
start_worker farm --slots 7 --test-fault slow:40

ids=()
for p in 20 40 80; do
  write_job "$WORK/p$p.yaml" in.mp4 "out-$p.mkv" ffv1 "priority: $p"
  sed -i 's/target_seconds: 6, max_seconds: 10/target_seconds: 1, max_seconds: 2/' "$WORK/p$p.yaml"
  id=$("$RF_BIN/reelfarm" submit "$WORK/p$p.yaml") || fail "submit failed"
  # Held until all three are planned: planning (a scene scan) takes seconds on a loaded machine,
  # and a job planned early could otherwise finish before the last one starts.
  "$RF_BIN/reelfarm" pause "$id" > /dev/null || fail "pause failed"
  ids+=("$id")
done
deadline=$(( $(date +%s) + 180 ))
for id in "${ids[@]}"; do
  until "$RF_BIN/reelfarm" status "$id" --json 2>/dev/null | grep -q '"chunks_total":[1-9]'; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "job $id was not planned in 180 s: $(tail -5 "$WORK/coordinator.log")"
    sleep 0.2
  done
done
for id in "${ids[@]}"; do "$RF_BIN/reelfarm" resume "$id" > /dev/null || fail "resume failed"; done
# Wait until each of the three has had a chunk assigned (the coordinator's own record: polling
# `status` can miss a low-priority job's one short chunk), let the shares settle, then pause the
# first.
deadline=$(( $(date +%s) + 60 ))
for id in "${ids[@]}"; do
  until grep -q "job $id: chunk [0-9]* (frames [0-9]*-[0-9]*) -> farm slot" "$WORK/coordinator.log"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "the three jobs never ran at the same time: job $id got no chunk"
    sleep 0.1
  done
done
sleep 6

"$RF_BIN/reelfarm" pause "${ids[2]}" > /dev/null || fail "pause failed"
# Shares from the coordinator's own record: frames assigned per job (slot time: 40 ms a frame)
# from the second turnover of the slots after all three had one, until the pause (the first
# three pause lines are the holds before planning ended).
read -r a20 a40 a80 < <(grep -o '"msg":"[^"]*"' "$WORK/coordinator.log" | awk -v j1="${ids[0]}" -v j2="${ids[1]}" -v j3="${ids[2]}" '
  /\): resumed/ { resumed++; next }
  /paused: running chunks finish/ { if (resumed >= 3) exit; next }
  /-> farm slot/ {
    k = index($0, "job " j1 ":") ? 1 : index($0, "job " j2 ":") ? 2 : index($0, "job " j3 ":") ? 3 : 0
    if (!k) next
    seen[k] = 1
    # Count from the second turnover of the 7 slots on: the first jobs to be planned start with
    # more than their share and give it back as their chunks end.
    # Weighted by the frames of each chunk: slot time is frames x 40 ms, whatever the chunk lengths.
    if (seen[1] && seen[2] && seen[3] && ++after > 7 && match($0, /frames [0-9]+-[0-9]+/)) {
      split(substr($0, RSTART + 7, RLENGTH - 7), r, "-")
      n[k] += r[2] - r[1] + 1
    }
  }
  END { printf "%d %d %d\n", n[1], n[2], n[3] }')
ok "frames assigned while all three ran: priority 20: $a20, 40: $a40, 80: $a80 (expected about 1:2:4)"
awk -v a="$a20" -v b="$a40" -v c="$a80" 'BEGIN{exit !(a > 0 && b >= 1.4 * a && c >= 1.4 * b && c >= 2.5 * a && c <= 6 * a)}' ||
  fail "slots not shared by priority: $a20 / $a40 / $a80 frames assigned"
sleep 2
"$RF_BIN/reelfarm" status "${ids[2]}" --json > "$WORK/p.json"
grep -q '"state":"paused"' "$WORK/p.json" || fail "paused job does not say paused"
! grep -q '"state":"running","frame_start"' "$WORK/p.json" || fail "a paused job still runs chunks: $(cat "$WORK/p.json")"
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
