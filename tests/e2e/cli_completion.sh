#!/usr/bin/env bash
# Shell completion and the man page, both generated from the command table (cli/cmdtable.c): the
# bash completion, sourced in bash, completes command names and each command's flags; the man page
# names every command and every flag that `reelfarm CMD --help` lists, and groff renders it without
# a warning. Usage errors name the flag and print the command's own usage line. No farm needed.
source "$(dirname "$0")/lib.bash"
R=$RF_BIN/reelfarm

# The commands, from the overview (`reelfarm help`): "  NAME OPERANDS  summary".
"$R" help > "$WORK/help.txt" || fail "help exited $?"
mapfile -t cmds < <(sed -n 's/^  \([a-z]\+\) .*/\1/p' "$WORK/help.txt")
[ "${#cmds[@]}" -ge 15 ] || fail "help lists only ${#cmds[@]} commands: $(cat "$WORK/help.txt")"
for c in render submit status jobs cancel pause resume retry workers logs watch passes keygen doctor completion man version; do
  printf '%s\n' "${cmds[@]}" | grep -qx "$c" || fail "help does not list '$c'"
done

# ---- bash completion -------------------------------------------------------------------------
"$R" completion bash > "$WORK/reelfarm.bash" || fail "completion bash exited $?"
bash -n "$WORK/reelfarm.bash" || fail "the bash completion does not parse"
# complete_words WORD... : runs the completion function on the command line "reelfarm WORD..."
# (the last word is the one being completed) and prints the candidates, one per line.
complete_words() {
  bash -c '
    source "$1"; shift
    COMP_WORDS=(reelfarm "$@"); COMP_CWORD=$#
    COMP_LINE="reelfarm $*"; COMP_POINT=${#COMP_LINE}
    _reelfarm reelfarm "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf "%s\n" "${COMPREPLY[@]}"' _ "$WORK/reelfarm.bash" "$@"
}
out=$(complete_words "")
for c in "${cmds[@]}"; do echo "$out" | grep -qx "$c" || fail "bash completion of '' lacks '$c': $out"; done
[ "$(complete_words wa)" = watch ] || fail "'reelfarm wa<TAB>' gave '$(complete_words wa)', expected watch"
[ "$(complete_words re | sort | tr '\n' ' ')" = "render resume retry " ] || fail "'re<TAB>': $(complete_words re)"
# Every flag that --help lists completes after "--", and a prefix narrows it.
for c in "${cmds[@]}"; do
  "$R" "$c" --help > "$WORK/help-$c.txt" || fail "$c --help exited $?"
  head -1 "$WORK/help-$c.txt" | grep -q "^usage: reelfarm $c\b" || fail "$c --help: bad usage line: $(head -1 "$WORK/help-$c.txt")"
  mapfile -t flags < <(grep -o -- '--[a-z][a-z0-9-]*' "$WORK/help-$c.txt" | sort -u)
  got=$(complete_words "$c" --)
  for f in "${flags[@]}"; do
    echo "$got" | grep -qx -- "$f" || fail "bash completion of '$c --' lacks $f (got: $got)"
  done
  echo "$got" | grep -qx -- --help || fail "'$c --' does not complete --help"
done
[ "$(complete_words status --j)" = --json ] || fail "'status --j<TAB>': $(complete_words status --j)"
[ "$(complete_words logs --f)" = --follow ] || fail "'logs --f<TAB>': $(complete_words logs --f)"
[ -z "$(complete_words watch --j)" ] || fail "'watch --j' completes a flag watch does not have"
[ "$(complete_words completion z)" = zsh ] || fail "'completion z<TAB>': $(complete_words completion z)"
touch "$WORK/tmpl-one.yaml"
(cd "$WORK" && [ "$(complete_words submit --openjd tmpl-)" = tmpl-one.yaml ]) || fail "'submit --openjd tmpl-<TAB>' does not complete the file"
ok "bash completion: command names, every command's flags, prefixes, files after --openjd"

# ---- zsh completion --------------------------------------------------------------------------
"$R" completion zsh > "$WORK/_reelfarm" || fail "completion zsh exited $?"
head -1 "$WORK/_reelfarm" | grep -qx '#compdef reelfarm' || fail "zsh completion lacks #compdef"
for c in "${cmds[@]}"; do
  grep -q "^        '$c:" "$WORK/_reelfarm" || fail "zsh completion lacks command $c"
  grep -q "^    $c)$" "$WORK/_reelfarm" || fail "zsh completion lacks a case for $c"
done
grep -q "'--openjd=\[" "$WORK/_reelfarm" || fail "zsh completion lacks --openjd"
command -v zsh > /dev/null || fail "zsh is needed to check the zsh completion (scripts/install-deps installs it)"
zsh -n "$WORK/_reelfarm" || fail "the zsh completion does not parse"
set +e; "$R" completion fish > /dev/null 2> "$WORK/fish.err"; rc=$?; set -e
[ $rc = 2 ] && grep -q "unknown shell 'fish'" "$WORK/fish.err" || fail "completion fish: exit $rc, $(cat "$WORK/fish.err")"
ok "zsh completion: every command with its flags; an unknown shell is exit 2"

# ---- man page --------------------------------------------------------------------------------
"$R" man > "$WORK/reelfarm.1" || fail "man exited $?"
groff -man -Tutf8 -ww -z "$WORK/reelfarm.1" 2> "$WORK/groff.err" || fail "groff failed: $(cat "$WORK/groff.err")"
[ ! -s "$WORK/groff.err" ] || fail "groff warns: $(cat "$WORK/groff.err")"
for c in "${cmds[@]}"; do
  grep -q "^\.SS \"$c\b" "$WORK/reelfarm.1" || fail "man page has no section for '$c'"
  grep -q "^\.B reelfarm $c$" "$WORK/reelfarm.1" || fail "man page SYNOPSIS lacks '$c'"
  for f in $(grep -o -- '--[a-z][a-z0-9-]*' "$WORK/help-$c.txt" | sort -u); do
    [ "$f" = --help ] && continue
    roff=$(printf '%s' "$f" | sed 's/-/\\\\-/g')
    # The flag's own entry inside this command's section (between its .SS and the next one).
    awk -v c="$c" '/^\.SS /{insec = ($0 ~ "^\\.SS \"" c "( |\")")} insec' "$WORK/reelfarm.1" |
      grep -q "^\\(\\\\fB\\\\-[a-z]\\\\fR, \\)\\?\\\\fB$roff\\\\fR" || fail "man page: '$c' lacks its flag $f"
  done
done
groff -man -Tascii -P-cbou "$WORK/reelfarm.1" > "$WORK/reelfarm.txt" 2> /dev/null
grep -q "EXIT STATUS" "$WORK/reelfarm.txt" || fail "rendered man page lacks EXIT STATUS"
ok "man page: every command and flag of --help, rendered by groff without warnings"

# ---- usage errors name the flag and show the command's usage line ----------------------------
usage_error() { # EXPECTED-MESSAGE ARGS...
  local want=$1; shift
  set +e; "$R" "$@" > /dev/null 2> "$WORK/u.err"; local rc=$?; set -e
  [ $rc = 2 ] || fail "reelfarm $*: exit $rc, expected 2"
  [ "$(wc -l < "$WORK/u.err")" = 2 ] || fail "reelfarm $*: expected 2 lines: $(cat "$WORK/u.err")"
  head -1 "$WORK/u.err" | grep -qF "reelfarm $1: $want" || fail "reelfarm $*: first line: $(head -1 "$WORK/u.err")"
  [ "$(tail -1 "$WORK/u.err")" = "$(head -1 "$WORK/help-$1.txt")" ] || fail "reelfarm $*: usage line '$(tail -1 "$WORK/u.err")'"
}
usage_error "unknown flag '--bogus'" status --bogus j-1
usage_error "unknown flag '-x'" jobs -x
usage_error "flag '--workers' needs a value (N)" render --workers
usage_error "flag '--workers': expected 1..64, got '0'" render --workers 0 job.yaml
usage_error "missing JOB_ID" status
usage_error "unexpected argument 'b'" cancel a b
usage_error "flag '--coordinator' needs a value (EP)" jobs --coordinator
usage_error "unknown flag '--json'" watch --json j-1
usage_error "flag '--json' given twice" jobs --json --json
usage_error "flag '--name': '.x' is not 1..64 letters" keygen --name .x
usage_error "flag '--out' needs a folder" keygen --out ""
usage_error "flag '--lossless' needs '--source SRC'" verify out.mkv --lossless
usage_error "missing JOB.yaml (or '--openjd TEMPLATE.yaml')" submit
usage_error "missing SHELL" completion
set +e; "$R" frobnicate > /dev/null 2> "$WORK/u.err"; rc=$?; set -e
[ $rc = 2 ] && grep -q "unknown command 'frobnicate'" "$WORK/u.err" || fail "unknown command: exit $rc"
ok "usage errors: exit 2, the flag or operand named, the command's usage line"
