#!/usr/bin/env bash
# Our C2PA manifests checked by an independent verifier: the reference implementation (c2pa-rs)
# built to WebAssembly, npm's @contentauth/c2pa-wasm (pinned), run offline in Node. The demo job's
# output (config/examples/demo.yaml, as `make demo` renders it) must read as Valid without trust settings and as Trusted with our farm CA as trust anchor;
# `reelfarm verify` must agree (exit 10, then 0). One flipped byte of video data, one edited byte of
# an assertion and one of the claim must make both report tampering (exit 20, Invalid). A copy
# remuxed by FFmpeg (metadata stripped) has no mark: exit 40 and the notice. An MKV output carries
# the sidecar only: verified by `reelfarm verify` (the wasm reader has no MKV support).
source "$(dirname "$0")/lib.bash"
R=$RF_BIN/reelfarm
WASM_VERSION=0.15.0
NPM_DIR=$(cd "$RF_BIN/.." && pwd)/npm   # under the build folder: git-ignored
MJS=$(dirname "$0")/c2pa-verify.mjs

command -v node > /dev/null && command -v npm > /dev/null ||
  fail "node and npm are needed (scripts/install-deps installs Debian's nodejs and npm)"
node -e 'process.exit(parseInt(process.versions.node) >= 18 ? 0 : 1)' || fail "node $(node --version) is older than 18"
installed=$(node -e "try{console.log(require('$NPM_DIR/node_modules/@contentauth/c2pa-wasm/package.json').version)}catch(e){}")
if [ "$installed" != "$WASM_VERSION" ]; then
  mkdir -p "$NPM_DIR"
  npm install --prefix "$NPM_DIR" --no-audit --no-fund --ignore-scripts --no-save \
    "@contentauth/c2pa-wasm@$WASM_VERSION" > "$WORK/npm.log" 2>&1 ||
    fail "npm install @contentauth/c2pa-wasm@$WASM_VERSION failed: $(tail -5 "$WORK/npm.log")"
fi
ok "@contentauth/c2pa-wasm $WASM_VERSION installed in $NPM_DIR"

# wasm FILE MIME [CA]: prints the verifier's JSON line.
wasm() { node "$MJS" "$NPM_DIR/node_modules" "$@"; }
# rverify FILE [flags]: runs reelfarm verify, prints its exit code.
rverify() { set +e; "$R" verify "$@" > "$WORK/rv.txt" 2> "$WORK/rv.err"; echo $?; set -e; }

src=$(fixture demo)
cp "$src" "$WORK/demo.mp4"
# the demo job as it is, with its model path (relative to demo-output/) made absolute
sed "s#model: \.\./models/#model: $RF_SOURCE_DIR/models/#" "$RF_SOURCE_DIR/config/examples/demo.yaml" > "$WORK/job.yaml"
grep -q "model: $RF_SOURCE_DIR/models/" "$WORK/job.yaml" || fail "demo.yaml names no model under ../models/"
"$R" render "$WORK/job.yaml" --signing-dir "$WORK/keys" > /dev/null 2> "$WORK/render.err" ||
  fail "render: $(cat "$WORK/render.err")"
grep -q "made a farm CA and C2PA signing key in '$WORK/keys'" "$WORK/render.err" ||
  fail "render did not say where it made the signing keys: $(cat "$WORK/render.err")"
[ "$(stat -c %a "$WORK/keys/signer.key")" = 600 ] && [ "$(stat -c %a "$WORK/keys/ca.key")" = 600 ] ||
  fail "secret keys are not mode 0600"
out=$WORK/demo-render.mp4
[ -s "$WORK/demo-render.c2pa" ] || fail "no sidecar demo-render.c2pa beside the output"
ffmpeg -v error -xerror -i "$out" -f null - 2> "$WORK/decode.log" && [ ! -s "$WORK/decode.log" ] ||
  fail "the signed output does not decode cleanly: $(cat "$WORK/decode.log")"
ok "rendered, signed output decodes cleanly; sidecar beside it"

j=$(wasm "$out" video/mp4)
[ "$(jq -r .validation_state <<< "$j")" = Valid ] || fail "wasm without trust: $j"
jq -e '.source_type == "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"' <<< "$j" > /dev/null ||
  fail "wasm: digitalSourceType of the first action: $j"
j=$(wasm "$out" video/mp4 "$WORK/keys/ca.pem")
[ "$(jq -r .validation_state <<< "$j")" = Trusted ] || fail "wasm with our CA as trust anchor: $j"
ok "c2pa-wasm: Valid, and Trusted with the farm CA"

[ "$(rverify "$out")" = 10 ] || fail "reelfarm verify without --trust: exit $(rverify "$out"): $(cat "$WORK/rv.txt")"
[ "$(rverify "$out" --trust "$WORK/keys/ca.pem" --source "$WORK/demo.mp4")" = 0 ] ||
  fail "reelfarm verify --trust: $(cat "$WORK/rv.txt" "$WORK/rv.err")"
grep -q "^ok  *xmp  *xmp.agrees" "$WORK/rv.txt" || fail "XMP not compared: $(cat "$WORK/rv.txt")"
grep -q "finding no mark is no proof that a video is authentic" "$WORK/rv.txt" || fail "no notice"
"$R" verify "$out" --trust "$WORK/keys/ca.pem" --json > "$WORK/v.json" || fail "verify --json exit $?"
jq -e '.exit_code == 0 and .provenance.verdict == "trusted" and .provenance.embedded == true
  and .provenance.xmp.agrees == true and (.provenance.job_id | startswith("j-"))
  and (.notice | test("no proof"))
  and ([.provenance.status[] | select(.failure)] | length == 0)
  and ([.provenance.status[].code] | index("assertion.bmffHash.match") != null)' "$WORK/v.json" > /dev/null ||
  fail "verify --json: $(cat "$WORK/v.json")"
ffprobe -v error -show_entries format_tags=comment,description -of csv=p=0 "$out" | grep -q "AI-generated" ||
  fail "no comment/description tag for tools that read no C2PA"
ok "reelfarm verify: 10 without trust, 0 with the farm CA; XMP agrees; tags present"

# flip FILE OFFSET DST: a copy with the low bit of one byte flipped.
flip() {
  python3 - "$1" "$2" "$3" << 'EOF'
import sys
src, off, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3]
d = bytearray(open(src, 'rb').read())
d[off] ^= 0x01  # ASCII stays ASCII: the CBOR still decodes, only its meaning changes
open(dst, 'wb').write(d)
EOF
}
# offset_of FILE BYTES_PYTHON_LITERAL [ADD]: offset of the first occurrence plus ADD.
offset_of() { python3 -c "import sys; d=open(sys.argv[1],'rb').read(); i=d.find($2); assert i>=0; print(i+int(sys.argv[2]))" "$1" "${3:-0}"; }
mdat=$(offset_of "$out" "b'mdat'")
cases=(
  "video:$(( mdat + 4 + ($(stat -c %s "$out") - mdat) / 2 ))"
  "assertion:$(offset_of "$out" "b'com.reelfarm.render\\x00'" 40)"
  "claim:$(offset_of "$out" "b'instanceID'" 20)"
)
for c in "${cases[@]}"; do
  what=${c%%:*}; off=${c#*:}
  bad=$WORK/tampered-$what.mp4
  flip "$out" "$off" "$bad"
  rc=$(rverify "$bad" --trust "$WORK/keys/ca.pem")
  [ "$rc" = 20 ] || fail "$what byte $off flipped: reelfarm verify exit $rc: $(cat "$WORK/rv.txt")"
  grep -q "TAMPERED" "$WORK/rv.txt" || fail "$what: no TAMPERED verdict: $(cat "$WORK/rv.txt")"
  j=$(wasm "$bad" video/mp4 "$WORK/keys/ca.pem")
  [ "$(jq -r .validation_state <<< "$j")" = Invalid ] || fail "$what byte $off flipped: wasm says $j"
  case $what in
    video) grep -q "^fail  *c2pa  *assertion.bmffHash.mismatch" "$WORK/rv.txt" && jq -e '.codes | index("assertion.bmffHash.mismatch")' <<< "$j" > /dev/null ;;
    assertion) grep -q "^fail  *c2pa  *assertion.hashedURI.mismatch" "$WORK/rv.txt" && jq -e '.codes | index("assertion.hashedURI.mismatch")' <<< "$j" > /dev/null ;;
    claim) grep -q "^fail  *c2pa  *claimSignature.mismatch" "$WORK/rv.txt" ;;
  esac || fail "$what: the failure is not named as expected: $(cat "$WORK/rv.txt") / $j"
  ok "$what byte flipped: reelfarm verify exit 20 and c2pa-wasm Invalid ($(jq -r '.codes | join(",")' <<< "$j"))"
done

ffmpeg -v error -y -i "$out" -map 0 -c copy "$WORK/stripped.mp4"
rc=$(rverify "$WORK/stripped.mp4" --trust "$WORK/keys/ca.pem")
[ "$rc" = 40 ] || fail "remuxed copy: exit $rc, expected 40: $(cat "$WORK/rv.txt")"
grep -q "no provenance mark found" "$WORK/rv.txt" && grep -q "no proof that a video is authentic" "$WORK/rv.txt" ||
  fail "stripped copy: $(cat "$WORK/rv.txt")"
j=$(wasm "$WORK/stripped.mp4" video/mp4 || true)
[ "$(jq -r .validation_state <<< "$j")" = None ] || fail "wasm found a manifest in the stripped copy: $j"
ok "metadata stripped by a remux: exit 40 with the notice; c2pa-wasm finds no manifest"

write_job "$WORK/mkv.yaml" demo.mp4 out.mkv ffv1
"$R" render "$WORK/mkv.yaml" --signing-dir "$WORK/keys" --quiet > /dev/null 2> "$WORK/render2.err" ||
  fail "render mkv: $(cat "$WORK/render2.err")"
[ -s "$WORK/out.c2pa" ] || fail "no sidecar for the MKV"
[ "$(rverify "$WORK/out.mkv" --trust "$WORK/keys/ca.pem")" = 0 ] || fail "mkv + sidecar: $(cat "$WORK/rv.txt")"
grep -q "assertion.dataHash.match" "$WORK/rv.txt" && grep -q "manifest.sidecar" "$WORK/rv.txt" || fail "mkv: $(cat "$WORK/rv.txt")"
flip "$WORK/out.mkv" $(( $(stat -c %s "$WORK/out.mkv") / 2 )) "$WORK/bad.mkv"
[ "$(rverify "$WORK/bad.mkv" --sidecar "$WORK/out.c2pa" --trust "$WORK/keys/ca.pem")" = 20 ] ||
  fail "mkv flipped: $(cat "$WORK/rv.txt")"
ok "MKV: sidecar with a whole-file data hash: exit 0, and 20 after one flipped byte"

set +e; "$R" verify "$WORK/nope.mp4" > /dev/null 2> "$WORK/u.err"; rc=$?; set -e
[ $rc = 2 ] && grep -q "nope.mp4" "$WORK/u.err" || fail "missing file: exit $rc $(cat "$WORK/u.err")"
ok "a missing file is exit 2"
