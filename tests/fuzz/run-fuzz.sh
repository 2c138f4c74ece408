#!/usr/bin/env bash
# run-fuzz.sh BINARY CORPUS WORKDIR [SECONDS] - runs one libFuzzer target for SECONDS (default
# $RF_FUZZ_SECONDS, else 8) from the committed corpus CORPUS. New inputs it finds go to
# WORKDIR/corpus (kept between runs, never into the repository); a crash is written to WORKDIR and
# the run fails, printing how to keep the input as a regression seed.
set -euo pipefail
bin=$1 corpus=$2 work=$3 secs=${4:-${RF_FUZZ_SECONDS:-8}}
[ -x "$bin" ] || { echo "run-fuzz: '$bin' is not an executable" >&2; exit 2; }
[ -d "$corpus" ] || { echo "run-fuzz: no corpus folder '$corpus'" >&2; exit 2; }
[[ "$secs" =~ ^[0-9]+$ ]] || { echo "run-fuzz: seconds must be a whole number, got '$secs'" >&2; exit 2; }
mkdir -p "$work/corpus"
name=$(basename "$bin")
# Leaks in system libraries that are not ours (tests/lsan.supp) are not findings.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$(dirname "$0")/../lsan.supp:print_suppressions=0}"
echo "run-fuzz: $name for ${secs}s (corpus $corpus + $work/corpus)"
rc=0
"$bin" -max_total_time="$secs" -timeout=25 -rss_limit_mb=3072 -max_len=262144 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work/corpus" "$corpus" 2> "$work/last.log" || rc=$?
grep -E '^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+ *DONE)' "$work/last.log" || true
if [ $rc -ne 0 ]; then
  tail -60 "$work/last.log" >&2
  echo "run-fuzz: $name FOUND A FAULT (exit $rc); the input is in $work/ (crash-*, leak-*, timeout-*, oom-*)." >&2
  echo "run-fuzz: after fixing it, keep the input as a regression seed: cp $work/crash-... $corpus/regress-<what>" >&2
  exit 1
fi
echo "run-fuzz: $name: no fault in ${secs}s"
