# Helpers for the fault-injection suite: the farm's processes as separate hosts, each in a network
# namespace of its own, joined by veth pairs (see docs/RELIABILITY.md).
#
#   coordinator namespace  <-- veth c1 / eth0 -->  worker 1 namespace (10.R.1.2 -> 10.R.1.1)
#                          <-- veth c2 / eth0 -->  worker 2 namespace (10.R.2.2 -> 10.R.2.1) ...
#
# The CLI (submit, status) runs inside the coordinator's namespace and talks to it on loopback.
# Every name created here carries a per-run tag, so scripts that run side by side never meet.
# Builds on tests/e2e/lib.bash: WORK, fail, ok, fixture, frame_hashes, audio_hashes, ...
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.bash"

FAULT_NS=()       # namespaces this script created (deleted on exit)
FAULT_NS_TAG="rff$$"

faults_teardown() {
  local ns pid
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for ns in "${FAULT_NS[@]}"; do
    # Anything left in the namespace (a daemon a wrapper started) dies with it.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  FAULT_NS=()
  local mnt
  for mnt in "${FAULT_MOUNTS[@]}"; do umount -l "$mnt" 2>/dev/null || true; done
  FAULT_MOUNTS=()
}
FAULT_MOUNTS=()
trap 'rc=$?; faults_teardown; (exit $rc); cleanup' EXIT

# Exits 77 (ctest: skipped) with the reason unless this machine lets us create network
# namespaces, veth pairs and move links between them (root with CAP_SYS_ADMIN and CAP_NET_ADMIN).
faults_require_netns() {
  command -v ip > /dev/null || { echo "SKIP: iproute2's 'ip' is not installed" >&2; exit 77; }
  command -v jq > /dev/null || { echo "SKIP: jq is not installed (scripts/install-deps)" >&2; exit 77; }
  [ "$(id -u)" = 0 ] || { echo "SKIP: the fault suite creates network namespaces and needs root" >&2; exit 77; }
  local probe="${FAULT_NS_TAG}probe" out
  if ! out=$(ip netns add "$probe" 2>&1); then
    echo "SKIP: cannot create a network namespace ('ip netns add': $out); a container without CAP_SYS_ADMIN cannot run this suite" >&2
    exit 77
  fi
  if ! out=$(ip link add fp0 netns "$probe" type veth peer name fp1 netns "$probe" 2>&1); then
    ip netns del "$probe" 2>/dev/null || true
    echo "SKIP: cannot create a veth pair ('ip link add ... type veth': $out)" >&2
    exit 77
  fi
  ip netns del "$probe"
}

# Creates the coordinator's namespace NS_C and N worker namespaces NS_W[1..N], each worker linked
# to the coordinator by its own veth pair on 10.$2.i.0/24. Sets COORD_ADDR[i] (the coordinator's
# address as worker i sees it) and LINK[i] (the coordinator-side interface, for partitions).
net_create() { # N NET_OCTET
  local n=$1 oct=$2 i
  NS_C="${FAULT_NS_TAG}-${oct}-c"
  ip netns add "$NS_C"; FAULT_NS+=("$NS_C")
  ip -n "$NS_C" link set lo up
  NS_W=(); COORD_ADDR=(); LINK=()
  for i in $(seq 1 "$n"); do
    NS_W[i]="${FAULT_NS_TAG}-${oct}-w$i"
    ip netns add "${NS_W[i]}"; FAULT_NS+=("${NS_W[i]}")
    ip -n "${NS_W[i]}" link set lo up
    ip link add "c$i" netns "$NS_C" type veth peer name eth0 netns "${NS_W[i]}"
    ip -n "$NS_C" addr add "10.$oct.$i.1/24" dev "c$i"
    ip -n "${NS_W[i]}" addr add "10.$oct.$i.2/24" dev eth0
    ip -n "$NS_C" link set "c$i" up
    ip -n "${NS_W[i]}" link set eth0 up
    COORD_ADDR[i]="10.$oct.$i.1"
    LINK[i]="c$i"
  done
}

# Deletes the namespaces net_create made (processes in them must be gone or are killed).
net_destroy() {
  local ns pid keep=()
  for ns in "${FAULT_NS[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || keep+=("$ns")
  done
  FAULT_NS=("${keep[@]}")
}

# Cuts worker i off the network (its veth goes down on the coordinator's side: packets in flight
# are lost, TCP connections stay open on both ends, as with a pulled cable), and brings it back.
net_cut() { ip -n "$NS_C" link set "${LINK[$1]}" down; }
net_heal() { ip -n "$NS_C" link set "${LINK[$1]}" up; }

# The reelfarm CLI, run in the coordinator's namespace against its loopback client socket.
rf_cli() { ip netns exec "$NS_C" env REELFARM_COORDINATOR=tcp://127.0.0.1:7601 "$RF_BIN/reelfarm" "$@"; }

# Flags the coordinator needs to bind its worker and blob sockets on every address of its
# namespace. Builds that require keys for a non-loopback bind accept --insecure for that.
coord_bind_flags() {
  if "$RF_BIN/reelfarm-coordinator" --help 2>&1 | grep -q -- '--insecure'; then echo --insecure; fi
}

# Starts the coordinator in NS_C with config $FARM/coordinator.yaml (written by the caller) and its
# log appended to $FARM/coordinator.log. MONO (seconds, optional) runs it in a time namespace whose
# CLOCK_MONOTONIC and CLOCK_BOOTTIME are shifted by that much: a host whose clocks jumped.
# Sets COORD (the daemon's own PID, which kill -9 hits) and COORD_WRAP (what to wait for).
coord_start() { # [MONO]
  local mono=${1:-} flags
  flags=$(coord_bind_flags)
  if [ -n "$mono" ]; then
    # shellcheck disable=SC2086
    ip netns exec "$NS_C" unshare --time --fork --kill-child=SIGKILL --monotonic="$mono" --boottime="$mono" \
      "$RF_BIN/reelfarm-coordinator" --config "$FARM/coordinator.yaml" $flags \
      >> "$FARM/coordinator.out" 2>> "$FARM/coordinator.log" &
    COORD_WRAP=$!; PIDS+=("$COORD_WRAP")
    COORD=""
    local _
    for _ in $(seq 1 50); do
      COORD=$(pgrep -P "$COORD_WRAP" 2>/dev/null | head -1) && [ -n "$COORD" ] && break
      sleep 0.05
    done
    [ -n "$COORD" ] || fail "the coordinator did not start in its time namespace"
    PIDS+=("$COORD")
  else
    # shellcheck disable=SC2086
    ip netns exec "$NS_C" "$RF_BIN/reelfarm-coordinator" --config "$FARM/coordinator.yaml" $flags \
      >> "$FARM/coordinator.out" 2>> "$FARM/coordinator.log" &
    COORD=$!; COORD_WRAP=$COORD; PIDS+=("$COORD")
  fi
  local _
  for _ in $(seq 1 150); do # accepting on the client port, or exited
    kill -0 "$COORD" 2>/dev/null || return 0
    ip netns exec "$NS_C" bash -c 'exec 3<> /dev/tcp/127.0.0.1/7601' 2>/dev/null && return 0
    sleep 0.1
  done
}

# (Braces around kill and wait keep bash's "Killed" job notice out of the output.)
coord_kill() { { kill -9 "$COORD"; wait "$COORD_WRAP"; } 2>/dev/null || true; }

# Starts worker i in its namespace (name w$i, cache $FARM/cache-w$i, log appended to
# $FARM/w$i.log) with the test fault FAULT if given. Sets WPID[i].
worker_start() { # I [FAULT]
  local i=$1 fault=${2:-} extra=()
  [ -n "$fault" ] && extra=(--test-fault "$fault")
  ip netns exec "${NS_W[i]}" "$RF_BIN/reelfarm-worker" --coordinator "tcp://${COORD_ADDR[i]}:7600" \
    --blobs "tcp://${COORD_ADDR[i]}:7602" --name "w$i" --cache "$FARM/cache-w$i" --slots 1 \
    "${extra[@]}" >> "$FARM/w$i.out" 2>> "$FARM/w$i.log" &
  WPID[i]=$!; PIDS+=("${WPID[i]}")
}

worker_kill() { { kill -9 "${WPID[$1]}"; wait "${WPID[$1]}"; } 2>/dev/null || true; }

# Field of a job's status (jq path, e.g. .state), or "" when the coordinator does not answer.
job_field() { rf_cli status "$1" --json 2>/dev/null | jq -r "$2" 2>/dev/null || true; }
