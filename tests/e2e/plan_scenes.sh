#!/usr/bin/env bash
# Scene-aware planning end to end: the `scenes` fixture (five unrelated shots; the maker lists the
# cut frames in scenes.cuts, none of them on a keyframe) goes through standalone daemons with
# split: scene, target 2 s, max 4 s. Every known cut must start a chunk, no chunk may be longer
# than 4 s, and the FFV1 output must still be the source, frame for frame.
source "$(dirname "$0")/lib.bash"
src=$(fixture scenes)
cuts_file="$RF_FIXTURE_DIR/scenes.cuts"
[ -s "$cuts_file" ] || fail "fixture scenes has no $cuts_file"
cp "$src" "$WORK/in.mp4"
farm_ports

start_coordinator
for name in wa wb; do start_worker "$name"; done

# The fixture's softest cut is a mean luma step of about 0.13: 0.1 finds them all (see test_scene).
cat > "$WORK/job.yaml" <<YAML
version: 1
name: plan-scenes
input: in.mp4
output: out.mkv
chunking: {split: scene, target_seconds: 2, max_seconds: 4, scene_threshold: 0.1}
encode: {codec: ffv1}
YAML
job=$("$RF_BIN/reelfarm" submit --wait --quiet "$WORK/job.yaml") ||
  fail "submit --wait failed: $(tail -5 "$WORK/coordinator.log")"
ok "job $job done"
"$RF_BIN/reelfarm" status "$job" --json > "$WORK/st.json" || fail "status $job failed"

# "frame_start":N,"frame_end":M pairs, one chunk per line
grep -o '"frame_start":[0-9]*,"frame_end":[0-9]*' "$WORK/st.json" | tr -dc '0-9,\n' | sort -t, -k1 -n > "$WORK/chunks"
[ -s "$WORK/chunks" ] || fail "no chunks in status: $(cat "$WORK/st.json")"
fps=$(ffprobe -v error -select_streams v:0 -show_entries stream=r_frame_rate -of csv=p=0 "$src")
max=$(awk -v r="$fps" 'BEGIN { split(r, a, "/"); printf "%d\n", 4 * a[1] / a[2] + 1e-9 }')
awk -F, -v max="$max" '$2 - $1 > max { print "chunk [" $1 ", " $2 ") has " $2 - $1 " frames, over " max; bad = 1 } END { exit bad }' \
  "$WORK/chunks" || fail "a chunk is longer than max_seconds"
ok "$(wc -l < "$WORK/chunks") chunks, none over $max frames: $(tr '\n' ' ' < "$WORK/chunks")"
while read -r cut; do
  grep -q "^$cut," "$WORK/chunks" || fail "known cut $cut starts no chunk (chunks: $(tr '\n' ' ' < "$WORK/chunks"))"
done < "$cuts_file"
ok "every known cut ($(tr '\n' ' ' < "$cuts_file")) starts a chunk"

verify_lossless "$WORK/in.mp4" "$WORK/out.mkv"
