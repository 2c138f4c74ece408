#!/usr/bin/env bash
# A finished chunk's stored result changes on the coordinator's disk (bit rot, a stray write)
# before the stitch: the stitch hashes every stored result again (they are content-addressed),
# finds the damaged one, deletes it, renders that chunk again and only then writes the output,
# which decodes to exactly the source's frames. Without the check the damaged chunk went into a
# "done" output (found by tests/faults/run.sh, fault bitrot).
source "$(dirname "$0")/lib.bash"
faults_require_netns
FARM=$WORK/farm; mkdir -p "$FARM"
cp "$(fixture h264-aac-1001)" "$WORK/in.mp4"
frame_hashes "$WORK/in.mp4" > "$WORK/ref.hash"
net_create 2 $(( 20 + $$ % 200 ))
cat > "$FARM/coordinator.yaml" <<YAML
version: 1
state_dir: $FARM/state
listen: {workers: "tcp://*:7600", clients: "tcp://127.0.0.1:7601", blobs: "tcp://*:7602"}
http: {listen: ""}
heartbeat_ms: 500
liveness: 4
YAML
coord_start
kill -0 "$COORD" 2>/dev/null || fail "the coordinator did not start: $(tail -3 "$FARM/coordinator.log")"
worker_start 1 slow:30
worker_start 2 slow:30
write_job "$FARM/j.yaml" "$WORK/in.mp4" "$FARM/out.mkv" ffv1
sed -i 's/^chunking: .*/chunking: {split: keyframe, target_seconds: 2, max_seconds: 6}/' "$FARM/j.yaml"
J=$(rf_cli submit "$FARM/j.yaml") || fail "submit failed"
for _ in $(seq 1 600); do [ "$(job_field "$J" .chunks_done)" -ge 2 ] 2>/dev/null && break; sleep 0.1; done
read -r idx blob < <(sqlite3 -separator ' ' "file:$FARM/state/state.db?mode=ro" \
  "SELECT idx, result_blob FROM chunks WHERE job_id = '$J' AND state = 'done' ORDER BY idx LIMIT 1")
f="$FARM/state/blobs/$blob"
[ -n "$blob" ] && [ -f "$f" ] || fail "no stored result to damage: $(rf_cli status "$J" --json)"
size=$(stat -c %s "$f")
printf '\x5a\xa5\x5a\xa5' | dd of="$f" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
[ "$(sha256sum "$f" | cut -d' ' -f1)" != "$blob" ] || fail "the damage did not change the blob"
ok "chunk $idx's stored result ${blob:0:12}... damaged (4 bytes at $((size / 2)) of $size)"

st=""
for _ in $(seq 1 1200); do
  st=$(job_field "$J" .state)
  case "$st" in done|failed|cancelled) break ;; esac
  sleep 0.2
done
[ "$st" = done ] || fail "job ended '$st': $(rf_cli status "$J" --json)"
grep "$J" "$FARM/coordinator.log" | grep -q "chunk $idx: its stored result ${blob:0:12}... is damaged or missing" ||
  fail "no event says chunk $idx's stored result is damaged: $(grep "$J" "$FARM/coordinator.log" | tail -3)"
attempts=$(job_field "$J" ".chunks[$idx].attempts")
[ "$attempts" -ge 2 ] || fail "chunk $idx was not rendered again (attempts $attempts)"
ok "the stitch caught the damage; chunk $idx rendered again (attempt $attempts)"
frame_hashes "$FARM/out.mkv" > "$FARM/out.hash"
cmp -s "$WORK/ref.hash" "$FARM/out.hash" ||
  fail "output frames differ from the source's ($(wc -l < "$FARM/out.hash") frames; first difference at line $(cmp "$WORK/ref.hash" "$FARM/out.hash" | awk '{print $NF}'))"
ok "output: 1001 decoded frames identical to the source's"
