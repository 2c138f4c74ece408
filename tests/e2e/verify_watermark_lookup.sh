#!/usr/bin/env bash
# Watermark -> job: a job rendered by a real coordinator and worker, then re-encoded into a new
# container with every piece of metadata stripped (no C2PA, no XMP, no sidecar), still leads back
# to its job. `verify --coordinator` names it ("watermark: job ID ('NAME')", text and JSON) with
# exit 30; offline, `verify` prints the tag and `jobs --watermark-tag TAG` finds the job; a tag no
# job has is exit 1, a malformed one exit 2; the submit and every lookup are in the audit log;
# a job stored before tags were recorded gets its tag on the coordinator's next start.
source "$(dirname "$0")/lib.bash"
R=$RF_BIN/reelfarm
export XDG_CONFIG_HOME=$WORK/cfg HOME=$WORK/home
farm_ports
start_coordinator
start_worker lw --slots 2
for _ in $(seq 1 100); do "$R" jobs > /dev/null 2>&1 && break; sleep 0.1; done

# The 640x360 demo clip: at 320x180 a chip is under 3 pixels and detection is marginal.
mkdir -p "$WORK/farm"
cp "$(fixture demo)" "$WORK/farm/demo.mp4"
write_job "$WORK/farm/trace-me.yaml" demo.mp4 out.mkv ffv1
id=$("$R" submit --wait --quiet "$WORK/farm/trace-me.yaml") || fail "submit --wait failed"
[ -s "$WORK/farm/out.c2pa" ] || fail "the coordinator wrote no sidecar"
key=$WORK/state/watermark.key

# A copy with nothing but pixels and sound: re-encoded (libx264) into MP4, metadata dropped. CRF
# 10 keeps the mark's sync peak near the lossless file's (about 12 sigma on this short 360p clip;
# CRF 20 leaves about 10.7, at the edge of decoding: robustness is watermark_robustness.sh's job).
ffmpeg -v error -nostdin -y -i "$WORK/farm/out.mkv" -map 0 -map_metadata -1 -c:v libx264 -preset veryfast \
  -crf 10 -c:a aac "$WORK/stripped.mp4"
[ ! -e "$WORK/stripped.c2pa" ] || fail "a sidecar next to the stripped copy"

# Offline: exit 30, the tag printed with how to look it up.
set +e; "$R" verify "$WORK/stripped.mp4" --watermark-key "$key" > "$WORK/off.txt" 2> "$WORK/off.err"; rc=$?; set -e
[ $rc = 30 ] || fail "offline verify of the stripped copy: exit $rc, expected 30: $(cat "$WORK/off.txt" "$WORK/off.err")"
tag=$(sed -n 's/^ *watermark tag \([0-9a-f]\{16\}\): `reelfarm jobs --watermark-tag \1` on the farm names its job$/\1/p' "$WORK/off.txt")
[ -n "$tag" ] || fail "offline verify printed no watermark tag: $(cat "$WORK/off.txt")"
grep -q "^ok  *watermark  *found: key id ${tag:0:4}, job tag ${tag:4}," "$WORK/off.txt" || fail "tag and detection differ: $(cat "$WORK/off.txt")"
! grep -q "^[a-z]* *lookup " "$WORK/off.txt" || fail "offline verify asked a coordinator: $(cat "$WORK/off.txt")"
ok "offline: exit 30, watermark tag $tag printed"

# Online: verify names the job.
set +e; "$R" verify "$WORK/stripped.mp4" --watermark-key "$key" --coordinator "$C" > "$WORK/on.txt" 2> "$WORK/on.err"; rc=$?; set -e
[ $rc = 30 ] || fail "verify --coordinator: exit $rc, expected 30: $(cat "$WORK/on.txt" "$WORK/on.err")"
grep -q "^ *watermark: job $id ('trace-me')$" "$WORK/on.txt" || fail "verify --coordinator did not name the job: $(cat "$WORK/on.txt")"
grep -q "^ *output: $WORK/farm/out.mkv$" "$WORK/on.txt" && grep -q "^ *owner: the farm's local user" "$WORK/on.txt" &&
  grep -q "^ *state: done$" "$WORK/on.txt" || fail "verify --coordinator: the job's lines: $(cat "$WORK/on.txt")"
grep -q "^ok  *lookup  *watermark tag $tag: job $id ('trace-me')" "$WORK/on.txt" || fail "no lookup check: $(cat "$WORK/on.txt")"
[ ! -s "$WORK/on.err" ] || fail "verify --coordinator: stderr: $(cat "$WORK/on.err")"
set +e; "$R" verify "$WORK/stripped.mp4" --watermark-key "$key" --coordinator "$C" --json > "$WORK/on.json"; rc=$?; set -e
[ $rc = 30 ] || fail "verify --coordinator --json: exit $rc"
jq -e --arg id "$id" --arg tag "$tag" --arg out "$WORK/farm/out.mkv" '.exit_code == 30 and .provenance.verdict == "watermark-only"
  and .provenance.watermark.found and .provenance.watermark.tag == $tag
  and (.provenance.watermark.jobs | length == 1)
  and (.provenance.watermark.jobs[0] | .id == $id and .name == "trace-me" and .owner == "" and .output == $out
       and .state == "done" and .watermark_tag == $tag and (.submitted | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T")))' \
  "$WORK/on.json" > /dev/null || fail "verify --coordinator --json: $(cat "$WORK/on.json")"
ok "verify --coordinator: exit 30, 'watermark: job $id ('trace-me')' in text and JSON"

# The same through `jobs --watermark-tag` (either case).
"$R" jobs --watermark-tag "${tag^^}" > "$WORK/jobs.txt" || fail "jobs --watermark-tag exited $?"
head -1 "$WORK/jobs.txt" | grep -qx "watermark: job $id ('trace-me')" || fail "jobs --watermark-tag: $(cat "$WORK/jobs.txt")"
"$R" jobs --watermark-tag "$tag" --json > "$WORK/jobs.json"
jq -e --arg id "$id" 'length == 1 and .[0].id == $id and .[0].name == "trace-me"' "$WORK/jobs.json" > /dev/null ||
  fail "jobs --watermark-tag --json: $(cat "$WORK/jobs.json")"
other=$(printf '%s%012x' "${tag:0:4}" $(( (0x${tag:4} + 1) % (1 << 48) )))
set +e; "$R" jobs --watermark-tag "$other" > "$WORK/none.txt" 2> "$WORK/none.err"; rc1=$?
"$R" jobs --watermark-tag 12345 > /dev/null 2> "$WORK/bad.err"; rc2=$?; set -e
[ $rc1 = 1 ] && [ ! -s "$WORK/none.txt" ] && grep -q "no job of the coordinator at $C carries watermark tag $other" "$WORK/none.err" ||
  fail "a tag no job has: exit $rc1: $(cat "$WORK/none.txt" "$WORK/none.err")"
[ $rc2 = 2 ] && grep -q "flag '--watermark-tag' needs the 16 hex digits" "$WORK/bad.err" || fail "a malformed tag: exit $rc2: $(cat "$WORK/bad.err")"
ok "jobs --watermark-tag: the job (text, JSON); exit 1 for a tag no job has, 2 for a malformed one"

# The audit log: the tag at submit, each lookup (three answered above) with the job.
grep -P "\tsubmit\tclient\t$id\t.*; watermark_tag=$tag\t" "$WORK/state/audit.log" > /dev/null || fail "no watermark tag in the submit record"
[ "$(grep -cP "\tlookup\tclient\t$id\twatermark_tag=$tag\t" "$WORK/state/audit.log")" = 4 ] ||
  fail "lookup records: $(grep -P '\tlookup\t' "$WORK/state/audit.log" || true)"
"$R" audit verify "$WORK/state/audit.log" > /dev/null || fail "the audit log no longer verifies"
ok "audit log: the tag in the submit record, one lookup record per answer"

# A job stored before tags were recorded: the coordinator fills its tag in on its next start.
kill "$COORD"; wait "$COORD" 2> /dev/null || true
sqlite3 "$WORK/state/state.db" "UPDATE jobs SET wm_tag = '' WHERE id = '$id'"
start_coordinator
for _ in $(seq 1 100); do "$R" jobs > /dev/null 2>&1 && break; sleep 0.1; done
"$R" jobs --watermark-tag "$tag" > "$WORK/again.txt" || fail "after a restart: jobs --watermark-tag exited $?"
head -1 "$WORK/again.txt" | grep -qx "watermark: job $id ('trace-me')" || fail "after a restart: $(cat "$WORK/again.txt")"
grep -q "recorded the watermark tags of 1 jobs stored before tags were" "$WORK/coordinator.log" || fail "the coordinator did not log the tags it filled in"
ok "a job without a recorded tag gets it back on the coordinator's start"
