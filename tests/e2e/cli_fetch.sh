#!/usr/bin/env bash
# `reelfarm fetch`: a rendered job's output comes back over the blob socket byte-identical to the
# coordinator's file (cmp), written atomically (no FILE.part left), and its C2PA sidecar with it
# (FILE's base name + .c2pa, byte-identical), so the fetched MKV verifies as signed by the farm;
# --json names the path, size and SHA-256 of both; an -o name the sidecar would overwrite is exit
# 2; an unknown job is exit 2 and an unfinished one exit 1, each with one clear line and no file
# written.
source "$(dirname "$0")/lib.bash"
R=$RF_BIN/reelfarm
export XDG_CONFIG_HOME=$WORK/cfg HOME=$WORK/home
farm_ports
start_coordinator
start_worker fw --slots 2
for _ in $(seq 1 100); do "$R" jobs > /dev/null 2>&1 && break; sleep 0.1; done

src=$(fixture h264-aac-300)
mkdir -p "$WORK/farm" "$WORK/here"
cp "$src" "$WORK/farm/in.mp4"
write_job "$WORK/farm/f.yaml" in.mp4 out.mkv ffv1
id=$("$R" submit --wait --quiet "$WORK/farm/f.yaml") || fail "submit --wait failed"
[ -s "$WORK/farm/out.mkv" ] || fail "no output on the coordinator side"

timeout 60 "$R" fetch "$id" -o "$WORK/here/got.mkv" > "$WORK/fetch.out" 2> "$WORK/fetch.err" || fail "fetch exited $?: $(cat "$WORK/fetch.err")"
[ "$(cat "$WORK/fetch.out")" = "$WORK/here/got.mkv" ] || fail "fetch printed '$(cat "$WORK/fetch.out")'"
cmp "$WORK/farm/out.mkv" "$WORK/here/got.mkv" || fail "fetched output differs from the coordinator's file"
[ ! -e "$WORK/here/got.mkv.part" ] || fail "a .part file was left behind"
ok "fetch -o: $(stat -c %s "$WORK/here/got.mkv") bytes, byte-identical to the coordinator's output"
[ -s "$WORK/farm/out.c2pa" ] || fail "the coordinator wrote no sidecar beside its output"
cmp "$WORK/farm/out.c2pa" "$WORK/here/got.c2pa" || fail "the sidecar was not fetched as got.c2pa, byte-identical"
[ ! -e "$WORK/here/got.c2pa.part" ] || fail "a sidecar .part file was left behind"
[ ! -s "$WORK/fetch.err" ] || fail "fetch -o: stderr: $(cat "$WORK/fetch.err")"
"$R" verify "$WORK/here/got.mkv" --trust "$WORK/state/signing/ca.pem" > "$WORK/verify.txt" 2>&1 ||
  fail "the fetched output does not verify with its fetched sidecar: exit $?: $(cat "$WORK/verify.txt")"
grep -q "^ok  *c2pa  *assertion.dataHash.match" "$WORK/verify.txt" || fail "verify of the fetched output: $(cat "$WORK/verify.txt")"
ok "fetch -o: the sidecar as got.c2pa, byte-identical; the fetched MKV verifies as signed by the farm"

# Default name (the output's file name, in the current folder), --json, and a second fetch of the
# same output (the blob is already in the store).
(cd "$WORK/here" && timeout 60 "$R" fetch "$id" --json > "$WORK/fetch.json" 2> "$WORK/fetch2.err") || fail "fetch --json: $(cat "$WORK/fetch2.err")"
cmp "$WORK/farm/out.mkv" "$WORK/here/out.mkv" || fail "fetch without -o: differs"
cmp "$WORK/farm/out.c2pa" "$WORK/here/out.c2pa" || fail "fetch without -o: the sidecar differs"
sha=$(sha256sum "$WORK/farm/out.mkv" | cut -d' ' -f1)
ssha=$(sha256sum "$WORK/farm/out.c2pa" | cut -d' ' -f1)
jq -e --arg id "$id" --arg sha "$sha" --arg out "$WORK/farm/out.mkv" --argjson size "$(stat -c %s "$WORK/farm/out.mkv")" \
  --arg ssha "$ssha" --argjson ssize "$(stat -c %s "$WORK/farm/out.c2pa")" \
  '.id == $id and .sha256 == $sha and .size == $size and .output == $out and .path == "out.mkv"
   and .sidecar == {"path": "out.c2pa", "size": $ssize, "sha256": $ssha}' "$WORK/fetch.json" > /dev/null ||
  fail "fetch --json: $(cat "$WORK/fetch.json")"
ok "fetch --json: id, output, path, size, sha256 and the sidecar's path, size and sha256 as documented"

# An -o name that is its own sidecar name: refused before anything is written.
set +e; timeout 20 "$R" fetch "$id" -o "$WORK/here/x.c2pa" > /dev/null 2> "$WORK/clash.err"; rc=$?; set -e
[ $rc = 2 ] && [ "$(wc -l < "$WORK/clash.err")" = 1 ] && grep -q "its C2PA sidecar would be written to the same name" "$WORK/clash.err" ||
  fail "fetch -o x.c2pa: exit $rc: $(cat "$WORK/clash.err")"
[ ! -e "$WORK/here/x.c2pa" ] || fail "fetch -o x.c2pa wrote a file"
ok "fetch -o FILE.c2pa: exit 2, nothing written"

# The blob endpoint from REELFARM_BLOBS (and a wrong flag value loses to nothing: flag wins).
REELFARM_BLOBS=$B timeout 60 "$R" fetch "$id" -o "$WORK/here/env.mkv" > /dev/null 2>&1 || fail "fetch with REELFARM_BLOBS failed"
cmp -s "$WORK/farm/out.mkv" "$WORK/here/env.mkv" || fail "fetch with REELFARM_BLOBS: differs"
ok "fetch with REELFARM_BLOBS"

# An unknown job: exit 2, one line, nothing written.
set +e; timeout 20 "$R" fetch j-000000000000 -o "$WORK/here/none.mkv" > /dev/null 2> "$WORK/unknown.err"; rc=$?; set -e
[ $rc = 2 ] || fail "fetch of an unknown job: exit $rc, expected 2"
[ "$(wc -l < "$WORK/unknown.err")" = 1 ] && grep -q "no job 'j-000000000000'" "$WORK/unknown.err" || fail "unknown job message: $(cat "$WORK/unknown.err")"
[ ! -e "$WORK/here/none.mkv" ] || fail "fetch of an unknown job wrote a file"
# An unfinished (paused) job: exit 1, the message says it is not done.
write_job "$WORK/farm/p.yaml" in.mp4 out-p.mkv ffv1
id2=$("$R" submit "$WORK/farm/p.yaml")
"$R" pause "$id2" > /dev/null
set +e; timeout 20 "$R" fetch "$id2" -o "$WORK/here/p.mkv" > /dev/null 2> "$WORK/unfinished.err"; rc=$?; set -e
[ $rc = 1 ] || fail "fetch of an unfinished job: exit $rc, expected 1"
[ "$(wc -l < "$WORK/unfinished.err")" = 1 ] && grep -q "job $id2 ('p') is [a-z]*, not done: it has no output to fetch" "$WORK/unfinished.err" ||
  fail "unfinished job message: $(cat "$WORK/unfinished.err")"
[ ! -e "$WORK/here/p.mkv" ] || fail "fetch of an unfinished job wrote a file"
"$R" cancel "$id2" > /dev/null
ok "fetch: unknown job exit 2, unfinished job exit 1, one line each, no file"
