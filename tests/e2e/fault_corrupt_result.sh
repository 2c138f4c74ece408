#!/usr/bin/env bash
# A worker that returns a corrupt result, as real processes: reelfarm-worker --test-fault makes one
# worker report a digest with one bit flipped (bad-checksum@1), then, for a second job, another
# report one frame more than it encoded (wrong-count@1). Each time the coordinator's verification
# (decode + frame count + digest) rejects the result, names the bad worker in the job's events and
# renders the chunk again on the good worker; the output is still lossless.
source "$(dirname "$0")/lib.bash"
src=$(fixture h264-aac-300) # 300 frames at 25 fps: two chunks of 6 s
cp "$src" "$WORK/in.mp4"
farm_ports

# RF_E2E_VERIFY=sample runs the same cases with the coordinator's sampled verification
# (fault_corrupt_result_sampled.sh).
start_coordinator ${RF_E2E_VERIFY:+--verify "$RF_E2E_VERIFY"}

wait_connected() { # NAME
  for _ in $(seq 1 200); do grep -q '"msg":"connected to' "$WORK/$1.log" 2>/dev/null && return 0; sleep 0.1; done
  fail "worker $1 did not connect: $(tail -5 "$WORK/$1.log")"
}
job_state() { grep -o '^{"id":"[^"]*","name":"[^"]*","state":"[a-z]*"' "$1" | grep -o '[a-z]*"$' | tr -d '"'; }
stop_pid() { # PID: SIGTERM, then it must exit within 10 s
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  fail "process $1 still running 10 s after SIGTERM"
}

# One case: both workers connected before the job is planned, so each of the two chunks goes to
# one of them at once and the bad worker surely renders one (its first, the corrupted one).
run_case() { # FAULT BAD GOOD
  local fault=$1 bad=$2 good=$3 job state
  start_worker "$bad" --test-fault "$fault@1"; local bad_pid=$LAST_PID
  wait_connected "$bad"
  grep -q "test fault '$fault@1' is active" "$WORK/$bad.log" || fail "$bad does not warn that its test fault is active"
  start_worker "$good"; local good_pid=$LAST_PID
  wait_connected "$good"
  write_job "$WORK/$fault.yaml" in.mp4 "$fault.mkv" ffv1
  job=$("$RF_BIN/reelfarm" submit "$WORK/$fault.yaml") || fail "submit failed: $(tail -5 "$WORK/coordinator.log")"
  local t0; t0=$(date +%s)
  while [ $(( $(date +%s) - t0 )) -lt 30 ]; do
    "$RF_BIN/reelfarm" status "$job" --json > "$WORK/st.json" 2>/dev/null || true
    state=$(job_state "$WORK/st.json")
    case "$state" in done|failed|cancelled) break ;; esac
    sleep 0.1
  done
  [ "$state" = done ] || fail "$fault: job ended '$state': $(cat "$WORK/st.json")"
  grep -q "test fault '$fault@1' applies to chunk" "$WORK/$bad.log" || fail "$fault: worker $bad never rendered a chunk"
  [ "$(grep -c "test fault '$fault@1' applies" "$WORK/$bad.log")" = 1 ] || fail "$fault: the fault hit more than one chunk"
  grep -q '"attempts":2' "$WORK/st.json" || fail "$fault: no chunk was rendered a second time: $(cat "$WORK/st.json")"
  grep "$job" "$WORK/coordinator.log" | grep "'$bad'" | grep -q "failed verification" ||
    fail "$fault: no event names worker '$bad' and 'failed verification': $(grep "$job" "$WORK/coordinator.log" | tail -5)"
  ok "$fault: the result of '$bad' failed verification, the chunk was rendered again, the job is done"
  # The kept result of the re-rendered chunk is the good worker's.
  grep -o '"attempts":2,"worker":"[^"]*"' "$WORK/st.json" | grep -q "\"worker\":\"$good\"" ||
    fail "$fault: the chunk's second attempt was not kept from '$good': $(cat "$WORK/st.json")"
  verify_lossless "$WORK/in.mp4" "$WORK/$fault.mkv"
  stop_pid "$bad_pid"; stop_pid "$good_pid"
}

run_case bad-checksum bad good
run_case wrong-count bad2 good2
grep "failed verification" "$WORK/coordinator.log" | grep "'bad2'" | grep -q "frame" ||
  fail "wrong-count: the rejection does not mention frames: $(grep "failed verification" "$WORK/coordinator.log" | tail -1)"
ok "wrong-count: rejected for its frame count"

if [ "${RF_E2E_VERIFY:-full}" = sample ]; then
  grep -q "sampled check: [0-9] GOPs decoded" "$WORK/coordinator.log" || fail "no chunk was verified by sampling"
  ! grep -q "every frame checked" "$WORK/coordinator.log" || fail "a chunk was fully decoded in sample mode"
  ok "every accepted chunk was verified by sampling"
else
  grep -q "every frame checked" "$WORK/coordinator.log" || fail "full verification did not run"
fi

stop_pid "${PIDS[0]}"
ok "coordinator stopped on SIGTERM"
# Released blobs are deleted after a grace period, or when the coordinator stops.
left=$(find "$WORK/state/blobs" -maxdepth 1 -type f | wc -l)
[ "$left" = 0 ] || fail "$left blobs left in the store after both jobs finished"
