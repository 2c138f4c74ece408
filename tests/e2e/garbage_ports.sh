#!/usr/bin/env bash
# Garbage at every port (issue 9): random bytes, truncated and oversized envelopes, too many frames,
# empty frames, non-ZMTP bytes and a cut ZMTP greeting to the worker, client and blob sockets, and
# junk to the HTTP port (tests/e2e/zprobe.py). The coordinator must keep serving - a worker renders
# a job afterwards, the CLI answers - and /metrics must count what it refused, by socket and reason
# (reelfarm_bad_messages_total, docs/SECURITY.md). Each counter is read before and after, so a
# counter that does not move fails.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
"$PY" -c 'import zmq' 2> /dev/null || fail "python3-zmq is missing (scripts/install-deps installs it)"
PROBE="$(dirname "$0")/zprobe.py"
src=$(fixture h264-aac-300)
cp "$src" "$WORK/in.mp4"
farm_ports
start_coordinator
url=$(http_url)
start_worker w1

metric() { # SOCKET REASON
  curl -sf "$url/metrics" | sed -n "s/^reelfarm_bad_messages_total{socket=\"$1\",reason=\"$2\"} //p"
}
declare -A before
checks="workers:malformed workers:too_big workers:parts workers:handshake clients:malformed clients:too_big
clients:parts clients:handshake blobs:malformed blobs:parts blobs:handshake http:malformed http:too_big"
for k in $checks; do before[$k]=$(metric "${k%%:*}" "${k#*:}"); [ -n "${before[$k]}" ] || fail "no metric for $k"; done

for ep in "$W" "$C" "$B"; do
  "$PY" "$PROBE" garbage "$ep" > "$WORK/probe.out" 2>&1 || fail "zprobe garbage $ep: $(cat "$WORK/probe.out")"
  kill -0 "$COORD" 2> /dev/null || fail "the coordinator died from garbage on $ep: $(tail -5 "$WORK/coordinator.log")"
done
"$PY" "$PROBE" http "${url#http://}" > "$WORK/probe-http.out" 2>&1 || fail "zprobe http: $(cat "$WORK/probe-http.out")"
kill -0 "$COORD" 2> /dev/null || fail "the coordinator died from HTTP junk"
ok "sent $(cat "$WORK/probe.out" | wc -l) kinds of garbage to each ZeroMQ port and $(wc -l < "$WORK/probe-http.out") to HTTP"

# /metrics is a snapshot rebuilt every 5 s while no dashboard is open: wait up to 12 s for each.
for k in $checks; do
  for _ in $(seq 1 120); do
    now=$(metric "${k%%:*}" "${k#*:}")
    [ "${now:-0}" -gt "${before[$k]}" ] && break
    sleep 0.1
  done
  [ "${now:-0}" -gt "${before[$k]}" ] || fail "reelfarm_bad_messages_total{$k} did not move (${before[$k]} -> ${now:-missing})"
  echo "  $k: ${before[$k]} -> $now"
done
ok "every port's refusals are counted by reason"

write_job "$WORK/job.yaml" in.mp4 out.mkv ffv1
job=$("$RF_BIN/reelfarm" submit "$WORK/job.yaml" --wait --quiet 2> "$WORK/submit.err") ||
  fail "a job after the garbage did not finish: $(cat "$WORK/submit.err")"
[ "$(decoded_frame_count "$WORK/out.mkv")" = 300 ] || fail "the job's output is incomplete"
curl -sf "$url/healthz" > /dev/null || fail "/healthz failed after the junk"
ok "the coordinator keeps serving: job $(echo "$job" | head -1) rendered (300 frames), /healthz ok"
