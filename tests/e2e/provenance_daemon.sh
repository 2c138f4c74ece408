#!/usr/bin/env bash
# The standalone coordinator signs every output: without a signing: section it makes a farm CA and
# a signing key in <state>/signing on first start (logging where; secret keys 0600) and keeps them
# across restarts; with `signing: {key, cert, chain}` (from `reelfarm keygen --ca`) it signs with
# those. Outputs verify as trusted against the matching CA only. A configured key that cannot be
# loaded stops the coordinator with the path in the message: there is no unsigned mode.
source "$(dirname "$0")/lib.bash"
R=$RF_BIN/reelfarm
src=$(fixture h264-aac-300)
cp "$src" "$WORK/in.mp4"
farm_ports

start_coordinator
start_worker w1
grep -q "made a farm CA and a C2PA signing key in '$WORK/state/signing'" "$WORK/coordinator.log" ||
  fail "the coordinator did not log where it made its keys: $(cat "$WORK/coordinator.log")"
[ "$(stat -c %a "$WORK/state/signing/signer.key")" = 600 ] || fail "signer.key is not 0600"
ca_sum=$(sha256sum < "$WORK/state/signing/ca.pem")
write_job "$WORK/a.yaml" in.mp4 a.mov libx264
"$R" submit --wait --quiet "$WORK/a.yaml" > /dev/null || fail "job a failed: $(tail -5 "$WORK/coordinator.log")"
set +e; "$R" verify "$WORK/a.mov" --trust "$WORK/state/signing/ca.pem" > "$WORK/va.txt"; rc=$?; set -e
[ $rc = 0 ] || fail "a.mov: verify exit $rc: $(cat "$WORK/va.txt")"
[ -s "$WORK/a.c2pa" ] || fail "no sidecar a.c2pa"
ok "first start made a farm CA in the state dir; the job's MOV output verifies as trusted"

kill -TERM "$COORD"; wait "$COORD" 2> /dev/null || true
start_coordinator
grep -q "C2PA signing with the farm key in '$WORK/state/signing'" "$WORK/coordinator.log" ||
  fail "restart: $(tail -5 "$WORK/coordinator.log")"
[ "$(sha256sum < "$WORK/state/signing/ca.pem")" = "$ca_sum" ] || fail "the CA changed across a restart"
ok "a restart keeps the farm CA"
kill -TERM "$COORD"; wait "$COORD" 2> /dev/null || true

"$R" keygen --ca "$WORK/studio" --org "Test Studio" > "$WORK/keygen.txt" || fail "keygen --ca"
grep -q "$WORK/studio/ca.pem" "$WORK/keygen.txt" || fail "keygen --ca output: $(cat "$WORK/keygen.txt")"
set +e; "$R" keygen --ca "$WORK/studio" > /dev/null 2> "$WORK/kg2.err"; rc=$?; set -e
[ $rc = 2 ] && grep -q "refusing to replace a farm CA" "$WORK/kg2.err" || fail "second keygen --ca: exit $rc $(cat "$WORK/kg2.err")"
set +e; "$R" keygen --ca "$WORK/other" --force > /dev/null 2> "$WORK/kg3.err"; rc=$?; set -e
[ $rc = 2 ] && grep -q "flag '--force' is for CURVE key pairs" "$WORK/kg3.err" || fail "keygen --ca --force: exit $rc $(cat "$WORK/kg3.err")"
ok "keygen --ca makes a CA once, refuses to replace it, rejects CURVE-only flags"

cat > "$WORK/coord.yaml" << EOF
version: 1
signing: {key: studio/signer.key, cert: studio/signer.pem, chain: studio/chain.pem}
EOF
start_coordinator --config "$WORK/coord.yaml"
grep -q "C2PA signing with '$WORK/studio/signer.key'" "$WORK/coordinator.log" || fail "configured key: $(tail -5 "$WORK/coordinator.log")"
write_job "$WORK/b.yaml" in.mp4 b.mp4 libx264
"$R" submit --wait --quiet "$WORK/b.yaml" > /dev/null || fail "job b failed: $(tail -5 "$WORK/coordinator.log")"
set +e
"$R" verify "$WORK/b.mp4" --trust "$WORK/studio/ca.pem" --json > "$WORK/vb.json"; rc1=$?
"$R" verify "$WORK/b.mp4" --trust "$WORK/state/signing/ca.pem" > "$WORK/vb2.txt"; rc2=$?
set -e
[ $rc1 = 0 ] && jq -e '.provenance.signer | test("O=Test Studio")' "$WORK/vb.json" > /dev/null ||
  fail "b.mp4 with the studio CA: exit $rc1 $(cat "$WORK/vb.json")"
[ $rc2 = 10 ] || fail "b.mp4 against another CA: exit $rc2, expected 10 (unknown signer): $(cat "$WORK/vb2.txt")"
ok "configured signing key: trusted with its CA (exit 0), unknown signer with another (exit 10)"
kill -TERM "$COORD"; wait "$COORD" 2> /dev/null || true

cat > "$WORK/bad.yaml" << EOF
version: 1
signing: {key: studio/missing.key, cert: studio/signer.pem}
EOF
set +e
"$RF_BIN/reelfarm-coordinator" --state "$WORK/state2" --config "$WORK/bad.yaml" --listen-workers "$W" \
  --listen-clients "$C" --listen-blobs "$B" --listen-http "" > /dev/null 2> "$WORK/bad.err"; rc=$?
set -e
[ $rc != 0 ] && grep -q "$WORK/studio/missing.key" "$WORK/bad.err" || fail "missing key: exit $rc $(cat "$WORK/bad.err")"
ok "a configured key that cannot be loaded stops the coordinator (exit $rc), naming the file"
