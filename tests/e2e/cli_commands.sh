#!/usr/bin/env bash
# Every read command against a real coordinator, with --json parsed (jq) and checked against the
# documented schema (docs/CLI.md): submit, status, jobs, workers, logs, pause, resume, cancel,
# retry, plus their human output and the exit codes of an unknown job (2) and a refused action (2).
source "$(dirname "$0")/lib.bash"
R=$RF_BIN/reelfarm
export XDG_CONFIG_HOME=$WORK/cfg HOME=$WORK/home
farm_ports
start_coordinator
start_worker cw --slots 2
for _ in $(seq 1 100); do "$R" jobs > /dev/null 2>&1 && break; sleep 0.1; done
src=$(fixture h264-aac-300)
cp "$src" "$WORK/in.mp4"
write_job "$WORK/a.yaml" in.mp4 out-a.mkv ffv1
id=$("$R" submit --wait --quiet "$WORK/a.yaml") || fail "submit --wait failed"
echo "$id" | grep -qx 'j-[0-9a-f]\{12\}' || fail "submit printed '$id'"

status_keys='["chunks","chunks_done","chunks_failed","chunks_total","fps","frames_done","frames_total","id","message","name","output","state"]'
chunk_keys='["attempts","fps","frame_end","frame_start","frames_done","index","state","worker"]'
"$R" status "$id" --json > "$WORK/status.json" || fail "status --json exited $?"
jq -e --arg id "$id" --argjson sk "$status_keys" --argjson ck "$chunk_keys" --arg out "$WORK/out-a.mkv" '
  (keys == $sk) and .id == $id and .name == "a" and .state == "done" and .output == $out
  and .frames_total == 300 and .frames_done == 300 and .chunks_done == .chunks_total and .chunks_failed == 0
  and (.fps | type == "number") and .message == ""
  and (.chunks | length) == .chunks_total
  and all(.chunks[]; (keys == $ck) and .state == "done" and .attempts >= 1 and (.worker | startswith("cw")) and .frames_done == .frame_end - .frame_start)
  and ([.chunks[] | .frame_end - .frame_start] | add) == 300' "$WORK/status.json" > /dev/null || fail "status --json: $(cat "$WORK/status.json")"
"$R" status "$id" > "$WORK/status.txt"
grep -q "^$id  done  *a  *chunks [0-9]*/[0-9]*  frames 300/300" "$WORK/status.txt" || fail "status: $(cat "$WORK/status.txt")"
ok "status --json: every documented field, chunks covering 300 frames"

"$R" jobs --json > "$WORK/jobs.json" || fail "jobs --json exited $?"
jq -e --arg id "$id" --argjson sk "$status_keys" 'type == "array" and length == 1 and .[0].id == $id
  and (.[0] | keys) == $sk and .[0].chunks == [] and .[0].state == "done"' "$WORK/jobs.json" > /dev/null || fail "jobs --json: $(cat "$WORK/jobs.json")"
ok "jobs --json: an array of status objects with empty chunks"

"$R" workers --json > "$WORK/workers.json" || fail "workers --json exited $?"
jq -e '
  type == "array" and length == 1
  and (.[0] | keys) == ["busy","capabilities","chunks_done","chunks_failed","gpu_model","last_seen_ms_ago","name","slots","state","vram_bytes"]
  and (.[0].name | startswith("cw")) and .[0].state == "ready" and .[0].slots == 2 and .[0].busy == 0
  and .[0].chunks_done >= 1 and .[0].chunks_failed == 0 and (.[0].capabilities | contains("ffv1"))' "$WORK/workers.json" > /dev/null ||
  fail "workers --json: $(cat "$WORK/workers.json")"
"$R" workers | grep -q "^cw.* ready  *2  *0 " || fail "workers: $("$R" workers)"
ok "workers --json: the worker, ready, 2 slots, its chunks and capabilities"

"$R" logs "$id" --json > "$WORK/logs.json" || fail "logs --json exited $?"
[ -s "$WORK/logs.json" ] || fail "logs --json printed nothing"
jq -e -s 'all(.[]; keys == ["id","level","message","ts"] and (.id | type == "number") and (.ts | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T"))
  and (.level | IN("debug","info","warn","error")))
  and ([.[].id] == ([.[].id] | sort)) and any(.[]; .message | test("done|verified|stitch"))' "$WORK/logs.json" > /dev/null ||
  fail "logs --json: $(cat "$WORK/logs.json")"
timeout 20 "$R" logs "$id" --follow > "$WORK/logs.txt" || fail "logs --follow on a done job did not end"
[ "$(wc -l < "$WORK/logs.txt")" = "$(wc -l < "$WORK/logs.json")" ] || fail "logs and logs --json differ in events"
ok "logs --json: one object per line, ids increasing; logs --follow ends with the job"

# pause / resume / cancel on a second job, each --json answering with the job's status.
write_job "$WORK/b.yaml" in.mp4 out-b.mkv ffv1
id2=$("$R" submit "$WORK/b.yaml")
"$R" pause "$id2" --json > "$WORK/pause.json" || fail "pause --json exited $?"
jq -e --arg id "$id2" '.id == $id and (.state | IN("paused","planning"))' "$WORK/pause.json" > /dev/null || fail "pause --json: $(cat "$WORK/pause.json")"
"$R" resume "$id2" --json > "$WORK/resume.json" || fail "resume --json exited $?"
jq -e --arg id "$id2" '.id == $id and (.state != "paused")' "$WORK/resume.json" > /dev/null || fail "resume --json: $(cat "$WORK/resume.json")"
"$R" cancel "$id2" --json > "$WORK/cancel.json" || fail "cancel --json exited $?"
jq -e --arg id "$id2" '.id == $id and (.state | IN("cancelled","done"))' "$WORK/cancel.json" > /dev/null || fail "cancel --json: $(cat "$WORK/cancel.json")"
ok "pause, resume and cancel --json answer with the job's status"

# retry: refused for a done job (exit 2, the reason); an unknown job is exit 2 for every command.
set +e; "$R" retry "$id" --json > /dev/null 2> "$WORK/retry.err"; rc=$?; set -e
[ $rc = 2 ] && grep -q "job $id: cannot retry" "$WORK/retry.err" || fail "retry of a done job: exit $rc $(cat "$WORK/retry.err")"
for cmd in status cancel pause resume retry; do
  set +e; "$R" $cmd j-000000000000 --json > "$WORK/u.out" 2> "$WORK/u.err"; rc=$?; set -e
  [ $rc = 2 ] && grep -q "no job 'j-000000000000'" "$WORK/u.err" && [ ! -s "$WORK/u.out" ] || fail "$cmd of an unknown job: exit $rc $(cat "$WORK/u.err")"
done
ok "retry of a done job is refused (exit 2); an unknown job is exit 2 for status, cancel, pause, resume, retry"
# A host name is resolved by the CLI (bounded by the 2 s connection limit), then connected.
"$R" jobs --json --coordinator "tcp://localhost:${C##*:}" > "$WORK/byname.json" 2> "$WORK/byname.err" || fail "jobs via tcp://localhost:PORT failed: $(cat "$WORK/byname.err")"
jq -e 'length == 2' "$WORK/byname.json" > /dev/null || fail "jobs via localhost: $(cat "$WORK/byname.json")"
ok "a coordinator named by host name (localhost) is reached"
"$R" version | grep -qx 'reelfarm [0-9][0-9.]*' || fail "version: $("$R" version)"
