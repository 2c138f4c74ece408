#!/usr/bin/env bash
# deploy/docker/healthcheck (the images' HEALTHCHECK and the pods' exec probes) against real
# daemons: healthy while the coordinator answers and the worker is registered as ready; unhealthy
# for a worker the coordinator does not know, and for both once the coordinator is gone.
source "$(dirname "$0")/lib.bash"
HC=$RF_SOURCE_DIR/deploy/docker/healthcheck
export PATH=$RF_BIN:$PATH
farm_ports
start_coordinator
start_worker hc-worker
for _ in $(seq 1 50); do
  reelfarm workers --json 2>/dev/null | grep -q '"name":"hc-worker","state":"ready"' && break; sleep 0.2
done
REELFARM_HEALTH_ENDPOINT=$C "$HC" coordinator || fail "coordinator check failed against a live coordinator"
ok "coordinator: healthy"
REELFARM_COORDINATOR=$C REELFARM_WORKER_NAME=hc-worker "$HC" worker || fail "worker check failed for a registered worker"
ok "worker: healthy when the coordinator lists it as ready"
rc=0; REELFARM_COORDINATOR=$C REELFARM_WORKER_NAME=no-such-worker "$HC" worker 2> "$WORK/hc.err" || rc=$?
[ "$rc" = 1 ] || fail "worker check for an unknown worker exited $rc, expected 1"
grep -q "'no-such-worker' is not listed as ready" "$WORK/hc.err" || fail "no reason given: $(cat "$WORK/hc.err")"
ok "worker: unhealthy when the coordinator does not list it"
rc=0; "$HC" bogus 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "unknown role exited $rc, expected 2"

kill -TERM "$COORD"; wait "$COORD" 2>/dev/null || true
rc=0; REELFARM_HEALTH_ENDPOINT=$C "$HC" coordinator 2>/dev/null || rc=$?
[ "$rc" != 0 ] || fail "coordinator check passed with no coordinator"
ok "coordinator: unhealthy (exit $rc) once it is gone"
rc=0; REELFARM_COORDINATOR=$C REELFARM_WORKER_NAME=hc-worker "$HC" worker 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "worker check exited $rc with no coordinator, expected 1"
ok "worker: unhealthy once the coordinator is gone"
