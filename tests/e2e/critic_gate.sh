#!/usr/bin/env bash
# The critic gate (docs/models.md) through real daemons: a 24-frame 128x96 clip in two chunks, its
# frames drawn from the onnx pass's seeded noise (tests/fixtures/onnx-pass/noise.onnx, inputs
# `z=noise`), scored by critic-luma.onnx (a one-channel score map: a frame's score is its mean
# Rec.709 luma).
#   A: threshold 2 - no frame can reach it: every chunk is rendered 1 + max_rerenders = 3 times with
#      seeds 5, 6, 7; the best render is kept and its seed reported
#   B: threshold -1 - every render passes: one render per chunk
# The scores must reach `reelfarm status --json` (per chunk: every render's seed, score, mean and
# frames, and which was kept) and the job's events; A's output must be B's frames re-seeded, i.e.
# differ from B (seed 5) wherever a later seed was kept, and equal it where seed 5 was kept.
source "$(dirname "$0")/lib.bash"
models="$RF_FIXTURES/onnx-pass"
export OPENBLAS_NUM_THREADS=1
ffmpeg -v error -f lavfi -i testsrc=size=128x96:rate=12 -t 2 -c:v libx264 -g 12 -pix_fmt yuv420p \
  "$WORK/in.mp4" || fail "could not make the input"
farm_ports
start_coordinator
start_worker w1

gen="pipeline: [{pass: onnx, role: generate, model: $models/noise.onnx, device: cpu, inputs: 'z=noise'}]"
for job in a:2 b:-1; do
  name=${job%%:*} threshold=${job#*:}
  write_job "$WORK/$name.yaml" in.mp4 "$name.mkv" ffv1 "$gen" "seed: 5" \
    "critic: {model: $models/critic-luma.onnx, threshold: $threshold, max_rerenders: 2, device: cpu}"
  sed -i 's/^chunking: .*/chunking: {split: keyframe, target_seconds: 1, max_seconds: 1}/' "$WORK/$name.yaml"
done
ja=$("$RF_BIN/reelfarm" submit --wait "$WORK/a.yaml") || fail "job A failed: $(tail -5 "$WORK/coordinator.log")"
jb=$("$RF_BIN/reelfarm" submit --wait "$WORK/b.yaml") || fail "job B failed: $(tail -5 "$WORK/coordinator.log")"
"$RF_BIN/reelfarm" status "$ja" --json > "$WORK/a.json"
"$RF_BIN/reelfarm" status "$jb" --json > "$WORK/b.json"
n=$(jq '.chunks | length' "$WORK/a.json")
[ "$n" -ge 2 ] || fail "job A has $n chunks, want at least 2"
for f in a b; do
  [ "$(decoded_frame_count "$WORK/$f.mkv")" = 24 ] || fail "$f.mkv does not decode to 24 frames"
done
ok "both jobs rendered 24 frames in $n chunks"

# A: three renders per chunk, seeds 5, 6, 7, the kept one the best scoring (the first of equals).
jq -e '[.chunks[] | .critic.renders | length == 3] | all' "$WORK/a.json" > /dev/null ||
  fail "job A: not 3 renders per chunk: $(jq -c '[.chunks[].critic]' "$WORK/a.json")"
jq -e '[.chunks[] | [.critic.renders[].seed] == [5, 6, 7]] | all' "$WORK/a.json" > /dev/null ||
  fail "job A: seeds are not 5, 6, 7: $(jq -c '[.chunks[].critic.renders]' "$WORK/a.json")"
jq -e '[.chunks[] | .critic as $c | ([$c.renders[].score] | max) as $best
        | $c.renders[$c.kept].score == $best
          and ([$c.renders[].score] | index($best)) == $c.kept
          and ([$c.renders[] | .frames > 0 and .score <= .mean and .score < 2] | all)] | all' \
  "$WORK/a.json" > /dev/null || fail "job A: the kept render is not the best: $(jq -c '[.chunks[].critic]' "$WORK/a.json")"
ok "job A: 3 renders per chunk (seeds 5, 6, 7), the best kept: $(jq -c '[.chunks[].critic.kept]' "$WORK/a.json")"

# B: one render per chunk (seed 5, kept).
jq -e '[.chunks[] | .critic.kept == 0 and (.critic.renders | length) == 1 and .critic.renders[0].seed == 5] | all' \
  "$WORK/b.json" > /dev/null || fail "job B: not one render per chunk: $(jq -c '[.chunks[].critic]' "$WORK/b.json")"
ok "job B: one render per chunk"

# A's seed-5 render of a chunk is B's render of it: scores equal, and its frames too when kept.
for i in $(seq 0 $((n - 1))); do
  sa=$(jq ".chunks[$i].critic.renders[0].score" "$WORK/a.json"); sb=$(jq ".chunks[$i].critic.renders[0].score" "$WORK/b.json")
  [ "$sa" = "$sb" ] || fail "chunk $i: seed 5 scored $sa in A and $sb in B"
done
frame_hashes "$WORK/a.mkv" > "$WORK/a.hash"; frame_hashes "$WORK/b.mkv" > "$WORK/b.hash"
for i in $(seq 0 $((n - 1))); do
  kept=$(jq ".chunks[$i].critic.kept" "$WORK/a.json")
  s=$(jq ".chunks[$i].frame_start" "$WORK/a.json"); e=$(jq ".chunks[$i].frame_end" "$WORK/a.json")
  same=$(cmp -s <(sed -n "$((s + 1)),${e}p" "$WORK/a.hash") <(sed -n "$((s + 1)),${e}p" "$WORK/b.hash") && echo yes || echo no)
  if [ "$kept" = 0 ]; then
    [ "$same" = yes ] || fail "chunk $i kept seed 5 but its frames differ from B's"
  else
    [ "$same" = no ] || fail "chunk $i kept seed $((5 + kept)) but its frames equal B's (seed 5)"
  fi
done
ok "the kept renders are the seeds' renders (frames equal B's where seed 5 was kept, differ elsewhere)"

# The models travelled as blobs: each fetched once into the worker's file cache (both jobs and
# every chunk use them), verified.
for m in noise critic-luma; do
  sha=$(sha256sum "$models/$m.onnx" | cut -d' ' -f1)
  [ -f "$WORK/cache-w1/files/$sha.onnx" ] || fail "$m.onnx is not in the worker's cache: $(ls "$WORK/cache-w1/files" 2>&1)"
  cmp -s "$WORK/cache-w1/files/$sha.onnx" "$models/$m.onnx" || fail "the cached $m.onnx differs from the file"
  [ "$(grep -c "fetched file ${sha:0:12}" "$WORK/w1.log")" = 1 ] ||
    fail "want one fetch of $m.onnx, got: $(grep -c "fetched file ${sha:0:12}" "$WORK/w1.log")"
done
ok "each model was fetched once as a blob and reused by $((2 * n)) chunks"

# The events tell each chunk's scores and the choice.
"$RF_BIN/reelfarm" logs "$ja" > "$WORK/a.events"
[ "$(grep -c 'critic .*kept seed' "$WORK/a.events")" = "$n" ] ||
  fail "job A: want one critic event per chunk: $(grep critic "$WORK/a.events")"
grep -q 'below it: no re-render left, the best was kept' "$WORK/a.events" || fail "job A: the events do not say the threshold was missed"
ok "the job's events carry the scores: $(grep -m1 -o 'critic .*' "$WORK/a.events")"

# A model the coordinator cannot read fails the job at planning, naming the key.
write_job "$WORK/c.yaml" in.mp4 c.mkv ffv1 "$gen" \
  "critic: {model: $WORK/missing-critic.onnx, threshold: 0, device: cpu}"
"$RF_BIN/reelfarm" submit --wait "$WORK/c.yaml" > /dev/null 2>&1 && fail "job C with a missing critic model succeeded"
msg=$("$RF_BIN/reelfarm" jobs --json | jq -r '.[] | select(.name == "c") | .message')
case "$msg" in *"critic.model '$WORK/missing-critic.onnx'"*) ;; *) fail "job C: message '$msg' does not name critic.model" ;; esac
ok "a missing model fails the job at planning: $msg"
