#!/usr/bin/env bash
# The person-and-script tools of the `reelfarm` command: `passes`, `keygen`, `doctor`, `watch`,
# and where the coordinator endpoint comes from (flag > REELFARM_COORDINATOR > cli.yaml > default).
# A standalone coordinator and worker on private ports (farm_ports) serve the parts that
# need a farm.
source "$(dirname "$0")/lib.bash"
R=$RF_BIN/reelfarm
unset REELFARM_COORDINATOR
export XDG_CONFIG_HOME=$WORK/cfg
export HOME=$WORK/home
mkdir -p "$HOME"

# ---- passes ----------------------------------------------------------------------------------
"$R" passes > "$WORK/passes.txt" || fail "passes exited $?"
grep -q '^deflicker ' "$WORK/passes.txt" || fail "passes: no deflicker: $(cat "$WORK/passes.txt")"
grep -q '^ *strength  *float  *0\.\.1 ' "$WORK/passes.txt" || fail "passes: no strength row"
grep -q '^ *window  *int  *1\.\.120 ' "$WORK/passes.txt" || fail "passes: no window row"
"$R" passes --json > "$WORK/passes.json" || fail "passes --json exited $?"
jq -e '
  (map(select(.name == "deflicker")) | .[0]) as $d
  | $d.roles == ["refine"] and $d.temporal == true and ($d.doc | length > 0)
  and ($d.params | map(select(.key == "strength"))[0] | .type == "float" and .min == 0 and .max == 1 and .default == "0.6" and (.doc | length > 0))
  and ($d.params | map(select(.key == "window"))[0] | .type == "int" and .min == 1 and .max == 120 and .default == "8" and (.doc | length > 0))
' "$WORK/passes.json" > /dev/null || fail "passes --json: $(cat "$WORK/passes.json")"
jq -e '
  (map(select(.name == "color-match")) | .[0].params) as $c
  | ($c | map(select(.key == "reference"))[0].default == "source")
  and ($c | map(select(.key == "strength"))[0].default == "1")
  and ($c | map(select(.key == "scene_ref"))[0] | .internal == true and .required == false)
  and ((map(select(.name == "scale")) | .[0].params) as $s
       | ($s | map(select(.key == "width"))[0].type == "int")
       and ($s | map(select(.key == "filter"))[0].choices == ["lanczos", "bicubic"]))
' "$WORK/passes.json" > /dev/null || fail "passes --json: color-match/scale: $(cat "$WORK/passes.json")"
grep -q '^color-match ' "$WORK/passes.txt" || fail "passes: no color-match"
grep -q '^scale ' "$WORK/passes.txt" || fail "passes: no scale"
! grep -q 'scene_ref' "$WORK/passes.txt" || fail "passes: lists the internal scene_ref"
"$R" passes --bogus 2> /dev/null && fail "passes accepted --bogus"
ok "passes: human table and JSON list deflicker, color-match and scale with their parameters"

# ---- keygen ----------------------------------------------------------------------------------
pub=$("$R" keygen --out "$WORK/keys" --name node1 2> "$WORK/keygen.err") || fail "keygen: $(cat "$WORK/keygen.err")"
[ "$(stat -c %a "$WORK/keys/node1.key")" = 600 ] || fail "node1.key mode $(stat -c %a "$WORK/keys/node1.key")"
[ "$(stat -c %a "$WORK/keys/node1.pub")" = 644 ] || fail "node1.pub mode $(stat -c %a "$WORK/keys/node1.pub")"
z85='[][0-9a-zA-Z.:+=^!/*?&<>(){}@%$#-]\{40\}' # the 85 characters of Z85, 40 of them
echo "$pub" | grep -qx "$z85" || fail "printed public key is not 40 Z85 characters: '$pub'"
grep -qxF "public = \"$pub\"" "$WORK/keys/node1.key" || fail "node1.key lacks the public line"
grep -qx "secret = \"$z85\"" "$WORK/keys/node1.key" || fail "node1.key lacks a Z85 secret line"
grep -qxF "public = \"$pub\"" "$WORK/keys/node1.pub" || fail "node1.pub lacks the public line"
! grep -q '^secret' "$WORK/keys/node1.pub" || fail "node1.pub holds the secret key"
set +e
"$R" keygen --out "$WORK/keys" --name node1 > /dev/null 2> "$WORK/keygen2.err"; rc=$?
set -e
[ $rc = 2 ] || fail "keygen over an existing pair exited $rc, expected 2"
grep -q "already exists.*--force" "$WORK/keygen2.err" || fail "keygen refusal unclear: $(cat "$WORK/keygen2.err")"
grep -qxF "public = \"$pub\"" "$WORK/keys/node1.pub" || fail "refused keygen changed the files"
pub2=$("$R" keygen --out "$WORK/keys" --name node1 --force 2> /dev/null) || fail "keygen --force failed"
[ "$pub2" != "$pub" ] && grep -qxF "public = \"$pub2\"" "$WORK/keys/node1.pub" || fail "--force did not replace the pair"
[ "$(stat -c %a "$WORK/keys/node1.key")" = 600 ] || fail "replaced node1.key mode is not 600"
# The default folder: $XDG_CONFIG_HOME/reelfarm/keys/client.{key,pub}
"$R" keygen > /dev/null 2>&1 || fail "keygen with defaults failed"
[ -f "$XDG_CONFIG_HOME/reelfarm/keys/client.key" ] && [ -f "$XDG_CONFIG_HOME/reelfarm/keys/client.pub" ] ||
  fail "keygen did not write to \$XDG_CONFIG_HOME/reelfarm/keys"
ok "keygen: 0600 secret and 0644 public files, 40-char Z85 keys, refuses to overwrite, --force replaces"

# ---- doctor without a coordinator ------------------------------------------------------------
farm_ports
unset REELFARM_COORDINATOR # this script sets it only where it tests the precedence
set +e
"$R" doctor --coordinator "$C" > "$WORK/doctor0.txt" 2> "$WORK/doctor0.err"; rc=$?
set -e
[ $rc = 0 ] || [ $rc = 1 ] || fail "doctor exited $rc"
grep -q "^warn  *coordinator .*cannot reach.*start reelfarm-coordinator or set --coordinator/REELFARM_COORDINATOR" "$WORK/doctor0.txt" ||
  fail "doctor without a coordinator: no warn line: $(cat "$WORK/doctor0.txt")"
grep -q '^ok  *encoder  *libx264 opens' "$WORK/doctor0.txt" || fail "doctor: libx264 not ok: $(cat "$WORK/doctor0.txt")"
grep -q '^ok  *keys ' "$WORK/doctor0.txt" || fail "doctor: the key pair made above not found"
ok "doctor without a coordinator warns how to reach one (exit $rc)"

# ---- a farm ----------------------------------------------------------------------------------
start_coordinator
start_worker cliw --slots 2
worker_pid=$LAST_PID
for _ in $(seq 1 100); do "$R" jobs --coordinator "$C" > /dev/null 2>&1 && break; sleep 0.1; done

set +e
"$R" doctor --coordinator "$C" > "$WORK/doctor.txt" 2> /dev/null; rc=$?
set -e
[ $rc = 0 ] || [ $rc = 1 ] || fail "doctor exited $rc"
grep -q "^ok  *coordinator  *$C answers: 0 jobs" "$WORK/doctor.txt" || fail "doctor: coordinator not ok: $(cat "$WORK/doctor.txt")"
grep -q '^ok  *encoder  *libx264 opens' "$WORK/doctor.txt" || fail "doctor: libx264 not ok"
for lib in libavformat libavcodec libzmq libuv sqlite libsodium libfyaml curve tmpdir; do
  grep -q "^[a-z]*  *$lib " "$WORK/doctor.txt" || fail "doctor: no $lib line"
done
grep -q '^\(ok\|warn\)  *gpu ' "$WORK/doctor.txt" || fail "doctor: no gpu line"
"$R" doctor --json --coordinator "$C" > "$WORK/doctor.json" 2> /dev/null || true
jq -e '
  (.ok | type == "boolean")
  and all(.checks[]; (.status | IN("ok", "warn", "fail")) and (keys == ["check", "detail", "fix", "status"]))
  and any(.checks[]; .check == "coordinator" and .status == "ok")
  and any(.checks[]; .check == "encoder" and .detail == "libx264 opens" and .status == "ok")
' "$WORK/doctor.json" > /dev/null || fail "doctor --json: $(cat "$WORK/doctor.json")"
ok "doctor with a coordinator: every check reported, coordinator and libx264 ok (exit $rc)"

# ---- cli.yaml precedence ---------------------------------------------------------------------
mkdir -p "$XDG_CONFIG_HOME/reelfarm"
printf 'version: 1\ncoordinator: %s\n' "$C" > "$XDG_CONFIG_HOME/reelfarm/cli.yaml"
"$R" jobs > /dev/null 2> "$WORK/jobs.err" || fail "jobs with cli.yaml only: $(cat "$WORK/jobs.err")"
ok "cli.yaml's coordinator is used with no flag or environment"
dead=tcp://127.0.0.1:1  # privileged and closed: no test daemon can listen there (port_base+3 may be another test's)
set +e
t0=$(date +%s%N)
REELFARM_COORDINATOR=$dead timeout 10 "$R" jobs > /dev/null 2> "$WORK/env.err"; rc=$?
waited_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
set -e
[ $rc = 3 ] && grep -q "$dead" "$WORK/env.err" || fail "REELFARM_COORDINATOR did not override cli.yaml (exit $rc: $(cat "$WORK/env.err"))"
[ "$waited_ms" -lt 8000 ] || fail "an unreachable coordinator took $waited_ms ms to report (expected about 2 s; cli_unreachable checks it closely)"
REELFARM_COORDINATOR=$dead "$R" jobs --coordinator "$C" > /dev/null || fail "--coordinator did not override the environment"
ok "REELFARM_COORDINATOR overrides cli.yaml; --coordinator overrides both"
printf 'version: 1\ncoordinator: %s\ncolour: blue\n' "$C" > "$XDG_CONFIG_HOME/reelfarm/cli.yaml"
set +e
"$R" jobs > /dev/null 2> "$WORK/bad.err"; rc=$?
set -e
[ $rc = 2 ] || fail "a bad cli.yaml: exit $rc, expected 2"
[ "$(wc -l < "$WORK/bad.err")" = 1 ] && grep -q "^reelfarm: $XDG_CONFIG_HOME/reelfarm/cli.yaml:3: key 'colour': unknown key" "$WORK/bad.err" ||
  fail "bad cli.yaml message: $(cat "$WORK/bad.err")"
printf 'version: 2\n' > "$XDG_CONFIG_HOME/reelfarm/cli.yaml"
set +e
"$R" jobs > /dev/null 2> "$WORK/bad2.err"; rc=$?
set -e
[ $rc = 2 ] && grep -q "cli.yaml:1: key 'version'" "$WORK/bad2.err" || fail "version: 2 accepted (exit $rc: $(cat "$WORK/bad2.err"))"
"$R" jobs --coordinator "$C" > /dev/null || fail "a bad cli.yaml blocks --coordinator"
rm "$XDG_CONFIG_HOME/reelfarm/cli.yaml"
ok "a bad cli.yaml is one file:line:key error and exit 2"

# ---- watch -----------------------------------------------------------------------------------
export REELFARM_COORDINATOR=$C
src=$(fixture h264-aac-300)
cp "$src" "$WORK/in.mp4"
write_job "$WORK/w.yaml" in.mp4 out.mkv ffv1
id=$("$R" submit "$WORK/w.yaml") || fail "submit failed"
timeout 300 "$R" watch "$id" > "$WORK/watch.txt" 2> "$WORK/watch.err" || fail "watch exited $?: $(cat "$WORK/watch.err")"
grep -q "^$id done: 100% 300/300 frames" "$WORK/watch.txt" || fail "watch: no final line: $(cat "$WORK/watch.txt")"
grep -q "^$id [a-z]*: [0-9]*% [0-9]*/300 frames, chunks [0-9]*/[0-9]*, " "$WORK/watch.txt" || fail "watch: no progress line"
! grep -q $'\033' "$WORK/watch.txt" || fail "watch wrote terminal escapes to a file"
[ -s "$WORK/out.mkv" ] || fail "no output"
ok "watch follows the job to its end with plain lines ($(wc -l < "$WORK/watch.txt") lines) and exits 0"
# Ctrl-C stops watching and leaves the job alone: watch a job that cannot finish meanwhile (its
# worker is stopped with SIGSTOP; pausing is not enough, running chunks go on), interrupt, check.
kill -STOP "$worker_pid"
write_job "$WORK/w2.yaml" in.mp4 out2.mkv ffv1
id2=$("$R" submit "$WORK/w2.yaml")
"$R" watch "$id2" > "$WORK/watch2.txt" 2> "$WORK/watch2.err" &
wpid=$!
sleep 1.5
kill -INT "$wpid"
set +e
wait "$wpid"; rc=$?
set -e
[ $rc = 130 ] || fail "watch after Ctrl-C exited $rc, expected 130"
"$R" status "$id2" --json | grep -q '"state":"\(running\|planning\)"' || fail "Ctrl-C on watch changed the job: $("$R" status "$id2")"
"$R" cancel "$id2" > /dev/null
set +e
"$R" watch "$id2" > /dev/null 2> "$WORK/watch3.err"; rc=$?
set -e
[ $rc = 1 ] && grep -q "cancelled" "$WORK/watch3.err" || fail "watch on a cancelled job: exit $rc, $(cat "$WORK/watch3.err")"
kill -CONT "$worker_pid"
ok "Ctrl-C stops watching (130) and leaves the job; a cancelled job ends watch with 1"
