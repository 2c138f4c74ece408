#!/usr/bin/env bash
# Shared storage (docs/deploy.md): the coordinator keeps its blob store in a folder the workers
# mount too (`shared_blobs`). A worker whose mount holds the coordinator's store id reads input
# slices in place and commits results there: this one is given a dead blob socket, so the job can
# only finish if not one byte went over it. A worker whose folder is another store says so and
# uses the blob socket. Both renders must be lossless.
source "$(dirname "$0")/lib.bash"
src=$(fixture h264-aac-300)
cp "$src" "$WORK/in.mp4"
farm_ports
start_coordinator --shared-blobs "$WORK/shared"
[ -s "$WORK/shared/store-id" ] || fail "the coordinator made no store id in its shared blob folder"

# 1. the same store: no blob socket needed
write_job "$WORK/a.yaml" in.mp4 a.mkv ffv1
job=$("$RF_BIN/reelfarm" submit "$WORK/a.yaml") || fail "submit failed"
"$RF_BIN/reelfarm-worker" --coordinator "$W" --blobs tcp://127.0.0.1:9 --name mounted \
  --cache "$WORK/cache-mounted" --slots 1 --shared-blobs "$WORK/shared" 2> "$WORK/mounted.log" &
PIDS+=($!); mounted=$!
timeout 120 "$RF_BIN/reelfarm" watch "$job" > /dev/null || fail "job on shared storage did not complete: $(tail -5 "$WORK/mounted.log")"
grep -q "is the coordinator's store" "$WORK/mounted.log" || fail "the worker did not use the shared store: $(tail -5 "$WORK/mounted.log")"
! grep -q "over the blob socket" "$WORK/mounted.log" || fail "a transfer fell back to the socket: $(grep 'blob socket' "$WORK/mounted.log")"
verify_lossless "$WORK/in.mp4" "$WORK/a.mkv"
ok "shared store: inputs read in place, results committed, lossless"
kill -TERM "$mounted"; wait "$mounted" 2>/dev/null || true

# 2. another store mounted where the coordinator's should be: the socket, with a warning
mkdir -p "$WORK/other"
printf '%032x\n' 12345 > "$WORK/other/store-id"
write_job "$WORK/b.yaml" in.mp4 b.mkv ffv1
job=$("$RF_BIN/reelfarm" submit "$WORK/b.yaml") || fail "submit failed"
start_worker stranger --shared-blobs "$WORK/other"
timeout 120 "$RF_BIN/reelfarm" watch "$job" > /dev/null || fail "job over the socket did not complete: $(tail -5 "$WORK/stranger.log")"
grep -q "holds store 00000000000000000000000000003039, the coordinator's is" "$WORK/stranger.log" ||
  fail "the worker did not say its store is another one: $(grep -i shared "$WORK/stranger.log")"
verify_lossless "$WORK/in.mp4" "$WORK/b.mkv"
[ -z "$(ls -A "$WORK/other" | grep -v '^store-id$')" ] || fail "the stranger wrote into a store that is not the coordinator's: $(ls "$WORK/other")"
ok "another store: blob socket, lossless"
