#!/usr/bin/env bash
# The coordinator's HTTP side as real processes and sockets: /metrics scraped during a running job
# (two slowed workers) is valid Prometheus text by Prometheus's own checker (`promtool check
# metrics`) and reports the job, its running chunks, the assignments and the live workers;
# /healthz and /readyz answer; bad requests get one clear 4xx; and the bind rules hold: a
# non-loopback address without a token is refused at start, and with a token every request
# without it (header or ?token=) gets 401.
source "$(dirname "$0")/lib.bash"
PROMTOOL=$(command -v promtool || true)
[ -n "$PROMTOOL" ] || { echo "skip: promtool is not installed (Debian package prometheus; scripts/install-deps)"; exit 77; }
src=$(fixture h264-aac-1001)
cp "$src" "$WORK/in.mp4"
farm_ports
start_coordinator
for name in w1 w2; do start_worker "$name" --test-fault slow:30; done
U=$(http_url)
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

[ "$(curl -fsS "$U/healthz")" = ok ] || fail "/healthz did not answer ok"
deadline=$(( $(date +%s) + 10 ))
until [ "$(code "$U/readyz")" = 200 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "/readyz never became 200"; sleep 0.1
done
ok "/healthz ok, /readyz 200"

write_job "$WORK/m.yaml" in.mp4 m.mkv ffv1
job=$("$RF_BIN/reelfarm" submit "$WORK/m.yaml") || fail "submit failed"
deadline=$(( $(date +%s) + 30 ))
# Both workers busy and reporting progress (a Progress message comes about once a second).
until curl -fsS "$U/metrics" > "$WORK/metrics.txt" && grep -q '^reelfarm_chunks{state="running"} 2$' "$WORK/metrics.txt" &&
      grep -q '^reelfarm_worker_frames_per_second{worker="w1"} [1-9]' "$WORK/metrics.txt" &&
      grep -q '^reelfarm_worker_frames_per_second{worker="w2"} [1-9]' "$WORK/metrics.txt"; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "metrics never showed 2 running chunks: $(grep chunks "$WORK/metrics.txt")"
  sleep 0.2
done
"$PROMTOOL" check metrics < "$WORK/metrics.txt" > "$WORK/promtool.out" 2>&1 || fail "promtool check metrics: $(cat "$WORK/promtool.out")"
ok "promtool check metrics accepts /metrics scraped during the job ($(grep -vc '^#' "$WORK/metrics.txt") samples)"
ct=$(curl -fsS -o /dev/null -w '%{content_type}' "$U/metrics")
[ "$ct" = "text/plain; version=0.0.4; charset=utf-8" ] || fail "metrics content type '$ct'"
for want in 'reelfarm_jobs{state="running"} 1' 'reelfarm_workers{state="live"} 2' 'reelfarm_worker_up{worker="w1"} 1.000' \
            'reelfarm_worker_busy_slots{worker="w2"} 1.000' 'reelfarm_up 1' 'reelfarm_ready 1'; do
  grep -qF "$want" "$WORK/metrics.txt" || fail "metrics lack '$want'"
done
awk '$1=="reelfarm_assignments_total" && $2>=2 {f=1} END{exit !f}' "$WORK/metrics.txt" || fail "assignments_total < 2"
awk '$1=="reelfarm_frames_per_second" && $2>0 {f=1} END{exit !f}' "$WORK/metrics.txt" || fail "frames_per_second not > 0"
grep -q "reelfarm_job_progress_ratio{job=\"$job\"" "$WORK/metrics.txt" || fail "no progress series for job $job"
ok "metrics: 1 running job, 2 running chunks, 2 live busy workers, assignments and frames/s counted"

# Wait for a chunk to be done: the verified-bytes counter moves, and promtool still agrees.
deadline=$(( $(date +%s) + 60 ))
until curl -fsS "$U/metrics" > "$WORK/metrics2.txt" && awk '$1=="reelfarm_result_blob_bytes_total" && $2>0 {f=1} END{exit !f}' "$WORK/metrics2.txt"; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "result bytes never counted"; sleep 0.2
done
"$PROMTOOL" check metrics < "$WORK/metrics2.txt" > "$WORK/promtool.out" 2>&1 || fail "promtool (2nd scrape): $(cat "$WORK/promtool.out")"
ok "verified result bytes counted: $(awk '$1=="reelfarm_result_blob_bytes_total"{print $2}' "$WORK/metrics2.txt")"

# Log records about a chunk carry job, chunk, attempt and worker as JSON fields, on both sides.
grep -q "\"job\":\"$job\",\"chunk\":[0-9]*,\"attempt\":1,\"worker\":\"w[12]\",\"msg\":\"job $job: chunk [0-9]* (frames" "$WORK/coordinator.log" ||
  fail "no assignment record with job/chunk/attempt/worker fields: $(grep -m3 "$job" "$WORK/coordinator.log")"
grep -q "\"job\":\"$job\",\"chunk\":[0-9]*,\"attempt\":1,\"worker\":\"w[12]\",\"msg\":\"job $job: chunk [0-9]* done by" "$WORK/coordinator.log" ||
  fail "no verified-result record with fields"
grep -q "\"job\":\"$job\",\"msg\":\"job $job ('m'): submitted" "$WORK/coordinator.log" || fail "no job event record with a job field"
grep -q "\"worker\":\"w1\",\"msg\":\"worker 'w1' joined" "$WORK/coordinator.log" || fail "no worker record with a worker field"
grep -q "\"job\":\"$job\",\"chunk\":[0-9]*,\"attempt\":1,\"worker\":\"w1\",\"msg\":\"slot 0: chunk" "$WORK/w1.log" ||
  fail "the worker's chunk records lack fields: $(grep -m2 chunk "$WORK/w1.log")"
ok "log records carry job, chunk, attempt and worker fields (coordinator and worker)"

# Bad requests: one clear answer each.
port=${U##*:}
raw() { exec 3<>"/dev/tcp/127.0.0.1/$port"; printf '%b' "$1" >&3; timeout 5 cat <&3 | head -1 | tr -d '\r'; exec 3<&-; }
[ "$(raw 'POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n')" = "HTTP/1.1 405 Method Not Allowed" ] || fail "POST not 405"
[ "$(raw 'GARBAGE\r\n\r\n')" = "HTTP/1.1 400 Bad Request" ] || fail "garbage not 400"
[ "$(raw 'GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello')" = "HTTP/1.1 413 Content Too Large" ] || fail "body not 413"
[ "$(raw "GET /$(head -c 3000 /dev/zero | tr '\0' a) HTTP/1.1\r\n\r\n")" = "HTTP/1.1 414 URI Too Long" ] || fail "long target not 414"
[ "$(raw "GET / HTTP/1.1\r\nX: $(head -c 9000 /dev/zero | tr '\0' a)\r\n\r\n")" = "HTTP/1.1 431 Request Header Fields Too Large" ] || fail "huge headers not 431"
[ "$(code "$U/api/jobs/nope")" = 404 ] || fail "unknown job not 404"
[ "$(code "$U/api/jobs/$job/chunks/99/thumb.jpg")" = 404 ] || fail "unknown chunk not 404"
[ "$(code "$U/api/jobs/$job/frames/1.jpg?from=elsewhere")" = 400 ] || fail "bad 'from' not 400"
[ "$(code "$U/../../etc/passwd")" = 404 ] || fail "path traversal not 404"
[ "$(curl -fsS "$U/healthz")" = ok ] || fail "/healthz failed after the bad requests"
ok "bad requests: 405, 400, 413, 414, 431, 404, 400, 404; the server still answers"

# 100 stalled HTTP clients (half a request each, never finished) hold up neither the server nor
# the coordinator: /healthz answers at once, and 6 s later the snapshot still shows both workers
# heard from within the last 3 s (heartbeats handled on the loop).
stalled=()
for _ in $(seq 1 100); do
  exec {fd}<>"/dev/tcp/127.0.0.1/$port"; printf 'GET /metr' >&"$fd"; stalled+=("$fd")
done
t0=$(date +%s.%N)
[ "$(curl -fsS --max-time 2 "$U/healthz")" = ok ] || fail "/healthz blocked by stalled clients"
awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{exit !(b - a < 1)}' || fail "/healthz took over 1 s with stalled clients"
sleep 6
curl -fsS "$U/api/workers" > /dev/null # a dashboard look: the snapshot is rebuilt every 300 ms
sleep 1
curl -fsS "$U/metrics" > "$WORK/metrics3.txt"
for w in w1 w2; do
  awk -v m="reelfarm_worker_last_seen_seconds{worker=\"$w\"}" '$1==m && $2<3 {f=1} END{exit !f}' "$WORK/metrics3.txt" ||
    fail "$w not heard from recently with stalled http clients: $(grep last_seen "$WORK/metrics3.txt")"
done
grep -qF 'reelfarm_workers{state="live"} 2' "$WORK/metrics3.txt" || fail "workers lost with stalled http clients"
for fd in "${stalled[@]}"; do exec {fd}>&-; done
ok "100 stalled http clients: /healthz answers at once, both workers live and heard from within 3 s"

# Bind rules. Non-loopback without a token: refused at start with a clear message.
set +e
"$RF_BIN/reelfarm-coordinator" --state "$WORK/state2" --listen-workers tcp://127.0.0.1:0 --listen-clients tcp://127.0.0.1:0 \
  --listen-blobs tcp://127.0.0.1:0 --listen-http 0.0.0.0:0 > /dev/null 2> "$WORK/refused.log"
rc=$?
set -e
[ "$rc" != 0 ] || fail "a coordinator listening for http on 0.0.0.0 without a token started"
grep -q "not loopback: set http.token_file" "$WORK/refused.log" || fail "unclear refusal: $(cat "$WORK/refused.log")"
ok "non-loopback http without a token refused: $(head -1 "$WORK/refused.log")"

# With a token: 401 without it, 200 with the header or ?token=; health checks stay open.
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token" > "$WORK/token"
printf 'version: 1\nhttp: {listen: "0.0.0.0:0", token_file: token}\n' > "$WORK/coord2.yaml"
: > "$WORK/coordinator.log"
"$RF_BIN/reelfarm-coordinator" --config "$WORK/coord2.yaml" --state "$WORK/state3" --listen-workers tcp://127.0.0.1:0 \
  --listen-clients tcp://127.0.0.1:0 --listen-blobs tcp://127.0.0.1:0 > /dev/null 2>> "$WORK/coordinator.log" &
PIDS+=("$!")
U2=$(http_url | sed 's#0\.0\.0\.0#127.0.0.1#')
for path in /metrics /api/jobs /api/workers /; do
  [ "$(code "$U2$path")" = 401 ] || fail "$path without the token: $(code "$U2$path"), not 401"
  [ "$(code -H "Authorization: Bearer wrong$token" "$U2$path")" = 401 ] || fail "$path with a wrong token not 401"
  [ "$(code -H "Authorization: Bearer $token" "$U2$path")" = 200 ] || fail "$path with the token not 200"
done
[ "$(code "$U2/metrics?token=$token")" = 200 ] || fail "?token= not accepted"
curl -s -D - -o /dev/null "$U2/metrics" | grep -qi '^WWW-Authenticate: Bearer' || fail "401 without WWW-Authenticate"
[ "$(code "$U2/healthz")" = 200 ] || fail "/healthz needs no token"
ok "token: 401 without it or with a wrong one, 200 with the header or ?token=, /healthz open"

"$RF_BIN/reelfarm" cancel "$job" > /dev/null || true
for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
