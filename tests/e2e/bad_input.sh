#!/usr/bin/env bash
# Bad input ends with exactly one clear error line naming the problem, a non-zero exit, and no
# process or temp state left behind: a missing input file, a file that is not video, an unknown
# pass, a wrong type, and YAML that does not parse.
source "$(dirname "$0")/lib.bash"
export TMPDIR="$WORK/tmp"; mkdir -p "$TMPDIR"
src=$(fixture h264-aac-300)
cp "$src" "$WORK/in.mp4"
cp "$(fixture not-video)" "$WORK/notes.mp4"

# case  expected-exit  expected-text  spec-lines...
check() {
  local name=$1 want_exit=$2 want=$3; shift 3
  printf '%s\n' "$@" > "$WORK/$name.yaml"
  set +e
  "$RF_BIN/reelfarm" render "$WORK/$name.yaml" --workers 2 > "$WORK/$name.out" 2> "$WORK/$name.err"
  local rc=$?
  set -e
  [ "$rc" = "$want_exit" ] || fail "$name: exit $rc, expected $want_exit (stderr: $(cat "$WORK/$name.err"))"
  [ "$(wc -l < "$WORK/$name.err")" = 1 ] || fail "$name: expected one error line, got: $(cat "$WORK/$name.err")"
  grep -qF -- "$want" "$WORK/$name.err" || fail "$name: error should mention '$want': $(cat "$WORK/$name.err")"
  [ ! -s "$WORK/$name.out" ] || fail "$name: printed an output path on failure"
  [ -z "$(ls -A "$TMPDIR")" ] || fail "$name: left state behind: $(ls "$TMPDIR")"
  ok "$name: exit $rc: $(cat "$WORK/$name.err")"
}

check missing-input 2 "input '$WORK/nothere.mp4': no such file" \
  "version: 1" "input: nothere.mp4" "output: out.mkv" "encode: {codec: ffv1}"
check not-video 1 "'$WORK/notes.mp4': not a media file" \
  "version: 1" "input: notes.mp4" "output: out.mkv" "encode: {codec: ffv1}"
check unknown-pass 2 "unknown-pass.yaml:5: key 'pipeline[0].pass': unknown pass 'emboss'" \
  "version: 1" "input: in.mp4" "output: out.mkv" "pipeline:" "  - {pass: emboss}" "encode: {codec: ffv1}"
check wrong-type 2 "wrong-type.yaml:4: key 'priority': expected an integer" \
  "version: 1" "input: in.mp4" "output: out.mkv" "priority: high" "encode: {codec: ffv1}"
check bad-yaml 2 "bad-yaml.yaml:" \
  "version: 1" "input: [in.mp4" "output: out.mkv"
check missing-spec-key 2 "key 'output': required key missing" \
  "version: 1" "input: in.mp4" "encode: {codec: ffv1}"
check no-output-folder 2 "output folder '$WORK/nodir': No such file or directory" \
  "version: 1" "input: in.mp4" "output: nodir/out.mkv" "encode: {codec: ffv1}"
[ ! -e "$WORK/out.mkv" ] || fail "an output was written"

# The spec file itself missing, and a usage error.
set +e
"$RF_BIN/reelfarm" render "$WORK/nope.yaml" 2> "$WORK/nospec.err"; rc=$?
"$RF_BIN/reelfarm" render 2> /dev/null; rc2=$?
set -e
[ "$rc" = 2 ] && grep -q "nope.yaml" "$WORK/nospec.err" || fail "missing spec: exit $rc: $(cat "$WORK/nospec.err")"
[ "$rc2" = 2 ] || fail "usage error: exit $rc2"
ok "missing spec file and usage errors exit 2"

# Nothing this test started still runs (other tests may run reelfarm at the same time: match
# our own folder, which every command line above names).
! pgrep -f "$WORK" > /dev/null || fail "a reelfarm process is still running: $(pgrep -af "$WORK")"
ok "no process left"
