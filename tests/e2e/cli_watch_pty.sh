#!/usr/bin/env bash
# `reelfarm watch` on a terminal and through a pipe. On an 80x24 pseudo-terminal (script(1), with
# `stty cols 80 rows 24` inside it) it redraws a block of bars in place: no rendered line is wider
# than 80 columns, chunk bars appear while chunks run, and the last block drawn shows the job done
# at 100%. Through a pipe it prints plain lines only, one per update, in the documented formats.
source "$(dirname "$0")/lib.bash"
R=$RF_BIN/reelfarm
command -v script > /dev/null || fail "script(1) (util-linux/bsdutils) is required"
export XDG_CONFIG_HOME=$WORK/cfg HOME=$WORK/home
farm_ports
start_coordinator
# Slow frames (15 ms each) so that chunks run for a few seconds and watch draws them moving.
start_worker pw --slots 2 --test-fault slow:15
for _ in $(seq 1 100); do "$R" jobs > /dev/null 2>&1 && break; sleep 0.1; done
src=$(fixture h264-aac-300)
cp "$src" "$WORK/in.mp4"

# ---- a pseudo-terminal of 80 columns --------------------------------------------------------
write_job "$WORK/t.yaml" in.mp4 out-t.mkv ffv1 "chunking: {target_seconds: 3, max_seconds: 5}"
sed -i '/^chunking: {target_seconds: 6/d' "$WORK/t.yaml"
id=$("$R" submit "$WORK/t.yaml") || fail "submit failed"
export RF_WATCH_BIN=$R RF_WATCH_JOB=$id
# What the terminal receives is script's stdout (its typescript file gets a header line: unused).
timeout 120 script -qfec 'stty cols 80 rows 24; "$RF_WATCH_BIN" watch "$RF_WATCH_JOB"; echo "watch-exit=$?"' /dev/null < /dev/null > "$WORK/tty.raw" 2>&1 ||
  fail "script/watch failed or hung: $(tail -c 400 "$WORK/tty.raw" 2>/dev/null | cat -v)"
grep -a -q "watch-exit=0" "$WORK/tty.raw" || fail "watch on a terminal did not exit 0: $(tail -c 400 "$WORK/tty.raw" | cat -v)"
grep -a -q $'\033\\[[0-9]*A' "$WORK/tty.raw" || fail "watch on a terminal did not redraw in place (no cursor-up)"
# The screen lines: split at CR and LF, drop the escape sequences (CSI ... letter), measure.
tr '\r' '\n' < "$WORK/tty.raw" | sed -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' > "$WORK/tty.lines"
awk 'length($0) > 80 {print NR ": " length($0) ": " $0; bad=1} END {exit bad}' "$WORK/tty.lines" > "$WORK/wide.txt" ||
  fail "lines wider than 80 columns: $(head -3 "$WORK/wide.txt")"
widest=$(awk '{ if (length($0) > m) m = length($0) } END {print m}' "$WORK/tty.lines")
grep -a -q "^  chunk [0-9]* *\[[#.]\{5,30\}\] [0-9]*/[0-9]* frames [0-9]*-[0-9]*  [0-9.]* fps  pw$" "$WORK/tty.lines" ||
  fail "no whole chunk bar line was drawn: $(grep -a chunk "$WORK/tty.lines" | head -5)"
last=$(grep -a "^$id " "$WORK/tty.lines" | tail -1)
# Done, a full bar, and nothing cut off: the line ends with its fps.
echo "$last" | grep -q "^$id done  *\[#\{5,30\}\] 100% 300/300 frames  chunks \([0-9]*\)/\1  [0-9.]* fps$" ||
  fail "last job line is not a whole 'done at 100%' line: '$last'"
ok "80-column pty: widest line $widest columns, chunk bars drawn, last block: '$last'"

# ---- piped: plain lines, one per update -----------------------------------------------------
write_job "$WORK/p.yaml" in.mp4 out-p.mkv ffv1
id2=$("$R" submit "$WORK/p.yaml") || fail "submit failed"
set +e; timeout 120 "$R" watch "$id2" 2> "$WORK/pipe.err" | cat > "$WORK/pipe.txt"; rc=${PIPESTATUS[0]}; set -e
[ "$rc" = 0 ] || fail "piped watch exited $rc: $(cat "$WORK/pipe.err")"
! grep -q $'\033' "$WORK/pipe.txt" || fail "piped watch wrote terminal escapes"
! grep -q $'\r' "$WORK/pipe.txt" || fail "piped watch wrote carriage returns"
job_re="^$id2 [a-z]*: [0-9]*% [0-9]*/[0-9]* frames, chunks [0-9]*/[0-9]*, [0-9.]* fps$"
chunk_re='^  chunk [0-9]* [a-z]*: [0-9]*/[0-9]* frames ([0-9]*-[0-9]*), [0-9.]* fps, worker [a-z0-9-]*$'
bad=$(grep -v -e "$job_re" -e "$chunk_re" "$WORK/pipe.txt" || true)
[ -z "$bad" ] || fail "piped watch: lines in no documented format: $bad"
# One line per update: the same line never twice in a row (a job line repeats only as the 5 s
# heartbeat, which this short job with changing chunk counts does not need).
dups=$(uniq -d "$WORK/pipe.txt" | grep -v "^$id2 " || true)
[ -z "$dups" ] || fail "piped watch repeated a chunk line: $dups"
tail -1 "$WORK/pipe.txt" | grep -q "^$id2 done: 100% 300/300 frames" ||
  grep -q "^$id2 done: 100% 300/300 frames" "$WORK/pipe.txt" || fail "piped watch: no done line: $(tail -3 "$WORK/pipe.txt")"
grep -q "$chunk_re" "$WORK/pipe.txt" || fail "piped watch: no chunk progress line"
ok "piped: $(wc -l < "$WORK/pipe.txt") plain lines, each a job or chunk update, ending done"
