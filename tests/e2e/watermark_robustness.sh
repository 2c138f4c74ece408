#!/usr/bin/env bash
# A short run of bench/watermark-robustness.c (the full measurement is in docs/PROVENANCE.md,
# "Watermark"): one 10-second 1280x720 clip with motion and texture (a zooming fractal), marked
# with a fresh key and payload and attacked four ways - libx264 CRF 28, a 50% downscale, a 10% crop,
# all three together - must give back the exact payload every time, with every marked frame at
# PSNR-Y >= 40 dB against the unmarked one; and 2000 detections of its CRF 28 copy with other
# random keys must find nothing. The bench exits 1 when any of that fails. (Unmarked clips against
# random keys: tests/media/test_watermark.c.)
source "$(dirname "$0")/lib.bash"
bench=$RF_BIN/reelfarm-wm-bench
[ -x "$bench" ] || fail "$bench not built"
rc=0
"$bench" --trials 1 --seconds 10 --size 1280x720 --fp-clips 0 --wrong-keys 2000 --seed "$$" --work "$WORK" \
  > "$WORK/bench.txt" 2>&1 || rc=$?
cat "$WORK/bench.txt"
[ "$rc" = 0 ] || fail "watermark bench exited $rc"
for attack in crf28 scale50 crop10 all; do
  grep -q "^| $attack | 1/1 |" "$WORK/bench.txt" || fail "attack $attack: payload not recovered"
done
grep -q '^false positives: 0 in 2000 trials' "$WORK/bench.txt" || fail "false positives"
ok "payload recovered after every attack; no false positive in 2000 other-key trials"
