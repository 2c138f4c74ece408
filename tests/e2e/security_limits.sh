#!/usr/bin/env bash
# Each input limit of the coordinator config (docs/SECURITY.md, "Limits") hit on purpose, with the
# error that names it; and media roots with a symlink and '..' out of the root. Limits are set low
# in a config file so small real inputs reach them.
source "$(dirname "$0")/lib.bash"
src=$(fixture h264-aac-300) # 300 frames at 25 fps: 12 s
mkdir -p "$WORK/media/out" "$WORK/elsewhere"
cp "$src" "$WORK/media/in.mp4"
cp "$src" "$WORK/elsewhere/secret.mp4"
ln -s ../elsewhere/secret.mp4 "$WORK/media/link.mp4"
farm_ports
cat > "$WORK/coordinator.yaml" <<YAML
version: 1
max_attempts: 1
media_roots: [$WORK/media]
limits:
  message_bytes: 65536
  spec_bytes: 4096
  chunks_per_job: 2
  jobs_per_client: 1
  blob_bytes: 2000
YAML
start_coordinator --config "$WORK/coordinator.yaml"
R=$RF_BIN/reelfarm

expect_submit() { # SPEC MESSAGE...
  local spec=$1 rc=0; shift
  "$R" submit "$spec" > "$WORK/submit.out" 2> "$WORK/submit.err" || rc=$?
  [ $rc != 0 ] || fail "$(basename "$spec") was accepted: $(cat "$WORK/submit.out")"
  for m in "$@"; do grep -qF -- "$m" "$WORK/submit.err" || fail "$(basename "$spec"): exit $rc, '$(cat "$WORK/submit.err")' lacks '$m'"; done
  ok "$(basename "$spec"): exit $rc, $(cut -c1-150 "$WORK/submit.err")"
}
pad() { head -c "$1" /dev/zero | tr '\0' '#' | fold -w 100 | sed 's/^/# /'; }

# spec_bytes: 5 KB of comments
write_job "$WORK/media/big-spec.yaml" in.mp4 out/a.mkv ffv1
pad 5000 >> "$WORK/media/big-spec.yaml"
size=$(stat -c %s "$WORK/media/big-spec.yaml")
expect_submit "$WORK/media/big-spec.yaml" "the spec is $size bytes, over limits.spec_bytes (4096)"

# message_bytes: the submit request itself over 64 KiB (the spec's own limit is not reached first
# only because the message check comes before it)
write_job "$WORK/media/huge.yaml" in.mp4 out/a.mkv ffv1
pad 70000 >> "$WORK/media/huge.yaml"
expect_submit "$WORK/media/huge.yaml" "over limits.message_bytes (65536)"

# media roots: a symlink out of the root, '..' out of it, an output outside
write_job "$WORK/media/link.yaml" link.mp4 out/a.mkv ffv1
expect_submit "$WORK/media/link.yaml" "key 'input': '$WORK/media/link.mp4' resolves to '$(realpath "$WORK/elsewhere/secret.mp4")'" \
  "outside the coordinator's media roots ('$WORK/media')"
write_job "$WORK/media/dotdot.yaml" ../elsewhere/secret.mp4 out/a.mkv ffv1
expect_submit "$WORK/media/dotdot.yaml" "key 'input'" "outside the coordinator's media roots"
write_job "$WORK/media/outside.yaml" in.mp4 ../elsewhere/out.mkv ffv1
expect_submit "$WORK/media/outside.yaml" "key 'output'" "outside the coordinator's media roots"

# chunks_per_job: 12 s in chunks of about 1 s is far more than 2 (no worker runs yet)
write_job "$WORK/media/many.yaml" in.mp4 out/many.mkv ffv1
sed -i 's/^chunking:.*/chunking: {split: keyframe, target_seconds: 1, max_seconds: 2}/' "$WORK/media/many.yaml"
job=$("$R" submit "$WORK/media/many.yaml") || fail "submit many.yaml failed"
for _ in $(seq 1 100); do
  "$R" status "$job" --json > "$WORK/st.json"
  grep -q '"state":"failed"' "$WORK/st.json" && break
  sleep 0.1
done
grep -q "over limits.chunks_per_job (2)" "$WORK/st.json" || fail "job $job: $(cat "$WORK/st.json")"
ok "chunks_per_job: the job failed with '$(grep -o 'planned [0-9]* chunks, over limits.chunks_per_job (2)' "$WORK/st.json")'"

# jobs_per_client: with no worker, the first job stays unfinished; the second is refused
write_job "$WORK/media/one.yaml" in.mp4 out/one.mkv ffv1
job1=$("$R" submit "$WORK/media/one.yaml") || fail "the first job was refused: $(tail -2 "$WORK/coordinator.log")"
write_job "$WORK/media/two.yaml" in.mp4 out/two.mkv ffv1
expect_submit "$WORK/media/two.yaml" "already has 1 unfinished jobs, the most limits.jobs_per_client allows (1)"

# blob_bytes: a worker's result (an FFV1 chunk, far over 2000 bytes) is refused by the blob socket
start_worker w1
for _ in $(seq 1 300); do
  "$R" status "$job1" --json > "$WORK/st1.json"
  grep -q '"state":"failed"' "$WORK/st1.json" && break
  sleep 0.1
done
"$R" logs "$job1" > "$WORK/logs1.txt" 2>&1 || true
grep -q "over limits.blob_bytes (2000)" "$WORK/logs1.txt" "$WORK/st1.json" ||
  fail "job $job1 did not fail on limits.blob_bytes: $(cat "$WORK/st1.json") $(tail -5 "$WORK/logs1.txt")"
ok "blob_bytes: the result upload was refused ('$(grep -oh 'blob of [0-9]* bytes over limits.blob_bytes (2000)' "$WORK/logs1.txt" "$WORK/st1.json" | head -1)')"

# the refusals were counted
url=$(http_url)
sleep 5.5 # one idle /metrics refresh
curl -sf "$url/metrics" > "$WORK/metrics"
n=$(sed -n 's/^reelfarm_bad_messages_total{socket="clients",reason="too_big"} //p' "$WORK/metrics")
[ "${n:-0}" -ge 1 ] || fail "the too-big request was not counted: ${n:-missing}"
n=$(sed -n 's/^reelfarm_bad_messages_total{socket="blobs",reason="too_big"} //p' "$WORK/metrics")
[ "${n:-0}" -ge 1 ] || fail "the too-big blob was not counted: ${n:-missing}"
ok "counted: clients too_big, blobs too_big"
