#!/usr/bin/env bash
# A real single-node Slurm (Debian's slurmctld, slurmd and munged, started here as the current user
# with a private config under $WORK) runs reelfarm the way deploy/slurm/ tells users to:
#   1. the coordinator through deploy/slurm/coordinator.sbatch;
#   2. two workers through deploy/slurm/submit-workers (a job array, --gres=gpu:1 on fake GPU
#      device files, so the GRES path of the script is exercised);
#   3. a job is rendered by those workers; mid-job one array task gets SIGTERM from Slurm
#      (scancel --batch --signal=TERM: the signal the time limit's --signal=B:TERM@LEAD sends), the
#      worker drains and hands its running chunk back, Slurm records the task as COMPLETED, and a
#      third worker is started by Slurm mid-job;
#   4. the output has every frame exactly once (ffprobe), the handed-back chunk was rendered once
#      more elsewhere and no chunk was lost or rendered twice to completion.
# Skipped (exit 77) only when Slurm is not installed or its daemons cannot start here.
source "$(dirname "$0")/lib.bash"
DEPLOY=$RF_SOURCE_DIR/deploy/slurm

skip() { echo "SKIP: $*" >&2; exit 77; }
for tool in slurmctld slurmd sbatch squeue scancel scontrol sinfo munged mungekey ss; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] ||
    skip "$tool not installed (scripts/install-deps installs slurmctld, slurmd, slurm-client and munge)"
done
export PATH=$PATH:/usr/sbin

SB=$WORK/slurm   # not B: lib.bash uses B for the blob endpoint
mkdir -p "$SB"/{etc,state,spool,log,munge,dev,run}
chmod 755 "$SB" "$SB/munge"
me=$(id -un); host=$(hostname -s)
getent hosts "$host" >/dev/null || skip "host name '$host' does not resolve (slurmd needs it)"

# Free TCP ports: no socket on this machine uses them (ss), in 10000-19999, below the e2e
# scripts' ports (lib.bash, 20000 and up) and the kernel's ephemeral range.
port_free() { [ -z "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ]; }
pick_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 10000 + RANDOM % 9999 ))
    if port_free "$p" && port_free "$((p + 1))"; then echo "$p"; return; fi
  done
  fail "no free port pair"
}
ctld_port=$(pick_port)

SLURM_PIDS=()
slurm_down() {
  if [ -n "${SLURM_CONF:-}" ] && [ -f "$SLURM_CONF" ]; then
    timeout 10 scancel --user="$me" 2>/dev/null || true
    # Let slurmd finish the jobs (and their slurmstepd) before it is told to go.
    for _ in $(seq 1 40); do
      [ -z "$(timeout 5 squeue -h 2>/dev/null)" ] && break
      sleep 0.5
    done
    timeout 10 scontrol shutdown 2>/dev/null || true
  fi
  # Whatever Slurm started for us and is still alive (pids recorded by the job scripts).
  for f in "$SB"/run/*.pid; do
    if [ -f "$f" ]; then kill -9 "$(cat "$f")" 2>/dev/null || true; fi
  done
  for pid in "${SLURM_PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
}
# shellcheck disable=SC2154  # rc is set inside the trap
trap 'rc=$?; slurm_down; (exit $rc); cleanup' EXIT

# --- munge: its own key, socket, pid, log and seed files --------------------------------------
mungekey --create --keyfile="$SB/munge/munge.key" --force >/dev/null 2>&1 ||
  dd if=/dev/urandom of="$SB/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 600 "$SB/munge/munge.key"
auth="AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SB/munge/munge.sock"
if munged --force --key-file="$SB/munge/munge.key" --socket="$SB/munge/munge.sock" \
     --pid-file="$SB/munge/munged.pid" --log-file="$SB/log/munged.log" \
     --seed-file="$SB/munge/munged.seed" 2> "$SB/log/munged.err"; then
  for _ in $(seq 1 50); do [ -S "$SB/munge/munge.sock" ] && break; sleep 0.1; done
  [ -f "$SB/munge/munged.pid" ] && SLURM_PIDS+=("$(cat "$SB/munge/munged.pid")")
  [ -S "$SB/munge/munge.sock" ] || skip "munged started but made no socket: $(cat "$SB/log/munged.log" 2>/dev/null)"
  ok "munged running (socket $SB/munge/munge.sock)"
else
  skip "munged cannot start here: $(cat "$SB/log/munged.err")"
fi

# --- slurm.conf: one node with two fake GPUs (device files are /dev/null) -----------------------
ln -s /dev/null "$SB/dev/nvidia0"; ln -s /dev/null "$SB/dev/nvidia1"
cpus=$(nproc); [ "$cpus" -ge 4 ] || cpus=4   # config_overrides: room for coordinator + 3 workers
cat > "$SB/etc/slurm.conf" <<CONF
ClusterName=reelfarm-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$((ctld_port + 1))
SlurmUser=$me
SlurmdUser=$me
$auth
StateSaveLocation=$SB/state
SlurmdSpoolDir=$SB/spool
SlurmctldPidFile=$SB/slurmctld.pid
SlurmdPidFile=$SB/slurmd.pid
SlurmctldLogFile=$SB/log/slurmctld.log
SlurmdLogFile=$SB/log/slurmd.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerParameters=sched_interval=1
KillWait=30
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=1000 Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
echo "NodeName=$host Name=gpu File=$SB/dev/nvidia[0-1]" > "$SB/etc/gres.conf"
export SLURM_CONF=$SB/etc/slurm.conf

slurmctld -D -i > "$SB/log/slurmctld.out" 2>&1 & SLURM_PIDS+=($!)
slurmd -D > "$SB/log/slurmd.out" 2>&1 & SLURM_PIDS+=($!)
up=""
for _ in $(seq 1 100); do
  state=$(sinfo -h -N -o '%T' 2>/dev/null | head -1) || true
  case "$state" in idle*|mixed*|allocated*) up=1; break ;; esac
  if ! kill -0 "${SLURM_PIDS[-2]}" 2>/dev/null || ! kill -0 "${SLURM_PIDS[-1]}" 2>/dev/null; then break; fi
  sleep 0.2
done
[ -n "$up" ] || skip "Slurm did not come up here (node state '${state:-none}'): $(tail -5 "$SB/log/slurmctld.log" "$SB/log/slurmd.log" "$SB/log/slurmctld.out" "$SB/log/slurmd.out" 2>/dev/null)"
ok "slurmctld + slurmd up: node $host $(sinfo -h -N -o '%T %c CPUs %G')"

# --- the coordinator, as a Slurm job -------------------------------------------------------------
src=$(fixture h264-aac-1001)
cp "$src" "$WORK/in.mp4"
farm_ports
base=${W##*:}
export REELFARM_BIN=$RF_BIN REELFARM_RUN_DIR=$SB/run REELFARM_PORT_BASE=$base \
       REELFARM_BIND_HOST=127.0.0.1 REELFARM_ADVERTISE_HOST=127.0.0.1
coord_job=$(REELFARM_STATE=$WORK/state sbatch --parsable --output="$SB/log/coordinator-%j.log" \
  "$DEPLOY/coordinator.sbatch") || fail "sbatch coordinator.sbatch failed"
# Until it answers, while its Slurm job lives (each unanswered `jobs` takes 5 s), at most 60 s.
deadline=$((SECONDS + 60))
until "$RF_BIN/reelfarm" jobs --json >/dev/null 2>&1; do
  if ! squeue -h -j "$coord_job" 2>/dev/null | grep -q . || [ $SECONDS -ge $deadline ]; then break; fi
  sleep 0.2
done
"$RF_BIN/reelfarm" jobs --json >/dev/null 2>&1 ||
  fail "coordinator job $coord_job does not answer: $(squeue -h -j "$coord_job" -o '%T %R') $(cat "$SB"/log/coordinator-*.log)"
grep -q "^REELFARM_COORDINATOR_WORKERS=$W\$" "$SB/run/coordinator.env" || fail "coordinator.env: $(cat "$SB/run/coordinator.env")"
ok "coordinator running as Slurm job $coord_job on $W"

# --- two workers through the array script, each with --gres=gpu:1 --------------------------------
export REELFARM_DRAIN_GRACE_S=2
# Every worker Slurm starts inherits REELFARM_TEST_FAULT=slow:40 (sbatch exports the
# environment): 40 ms per frame, about 6 s per chunk, so the signalled worker is surely inside one.
export REELFARM_TEST_FAULT=slow:40
array=$(REELFARM_WORKERS=2 REELFARM_GRES=gpu:1 REELFARM_CPUS=1 REELFARM_TIME=00:30:00 \
  "$DEPLOY/submit-workers" --output="$SB/log/worker-%A_%a.log") || fail "submit-workers failed"
[[ "$array" =~ ^[0-9]+$ ]] || fail "submit-workers printed '$array', not a job id"
scontrol show job "$array" | grep -q 'TresPerNode=.*gres:gpu:1' || fail "array $array has no gpu:1 request: $(scontrol show job "$array")"
workers_ready() { "$RF_BIN/reelfarm" workers --json 2>/dev/null | grep -o '"name":"[^"]*","state":"ready"' | grep -c "\"name\":\"${host}-${array}_" || true; }
n=0
for _ in $(seq 1 150); do n=$(workers_ready); [ "$n" -ge 2 ] && break; sleep 0.2; done
[ "$n" -ge 2 ] || fail "$n of 2 Slurm-started workers registered: $(squeue -h -o '%i %T %R') $(cat "$SB"/log/worker-*.log)"
ok "array $array: 2 workers started by Slurm ($(squeue -h -j "$array" -t R -o '%i' | tr '\n' ' ')) registered with the coordinator"

# --- a job; mid-job Slurm signals task 1 and starts a third worker ------------------------------
# Lossless (ffv1), so the output can be compared with the source frame by frame.
write_job "$WORK/job.yaml" in.mp4 out.mkv ffv1
job=$("$RF_BIN/reelfarm" submit "$WORK/job.yaml") || fail "submit failed: $(cat "$SB"/log/coordinator-*.log)"
victim="${host}-${array}_1"
for _ in $(seq 1 600); do
  "$RF_BIN/reelfarm" status "$job" --json > "$WORK/st.json" 2>/dev/null || true
  grep -q "\"state\":\"running\",\"frame_start\":[0-9]*,\"frame_end\":[0-9]*,\"attempts\":1,\"worker\":\"$victim\"" "$WORK/st.json" && break
  sleep 0.1
done
grep -q "\"worker\":\"$victim\"" "$WORK/st.json" || fail "worker $victim never got a chunk: $(cat "$WORK/st.json")"
scancel --batch --signal=TERM "${array}_1" || fail "scancel --signal=TERM failed"
ok "Slurm sent SIGTERM to array task ${array}_1 ($victim) while it rendered a chunk"
third=$(REELFARM_WORKERS=1 REELFARM_GRES=gpu:1 REELFARM_CPUS=1 REELFARM_TIME=00:30:00 \
  "$DEPLOY/submit-workers" --output="$SB/log/worker-%A_%a.log") || fail "submit-workers (third) failed"
ok "a third worker submitted mid-job as array $third"

for _ in $(seq 1 100); do
  squeue -h -j "${array}_1" 2>/dev/null | grep -q . || break; sleep 0.2
done
! squeue -h -j "${array}_1" 2>/dev/null | grep -q . || fail "task ${array}_1 still running 20 s after SIGTERM: $(cat "$SB/log/worker-${array}_1.log")"
grep -q 'draining' "$SB/log/worker-${array}_1.log" || fail "worker $victim did not drain: $(cat "$SB/log/worker-${array}_1.log")"
grep -q 'handing back running chunks' "$SB/log/worker-${array}_1.log" ||
  fail "worker $victim did not hand its chunk back: $(cat "$SB/log/worker-${array}_1.log")"
ok "task ${array}_1 drained, handed its chunk back and left Slurm"

state=""
for _ in $(seq 1 2400); do
  "$RF_BIN/reelfarm" status "$job" --json > "$WORK/st.json" 2>/dev/null || true
  state=$(grep -o '^{"id":"[^"]*","name":"[^"]*","state":"[a-z]*"' "$WORK/st.json" | grep -o '[a-z]*"$' | tr -d '"')
  case "$state" in done|failed|cancelled) break ;; esac
  sleep 0.25
done
[ "$state" = done ] || fail "job ended '$state': $(cat "$WORK/st.json")"
"$RF_BIN/reelfarm" workers --json | grep -q "\"name\":\"${host}-${third}_1\"" || fail "the third worker never registered"

# Every chunk done exactly once; the handed-back one took one more attempt, on another worker.
total=$(grep -o '"chunks_total":[0-9]*' "$WORK/st.json" | cut -d: -f2)
done_n=$(grep -o '"state":"done","frame_start"' "$WORK/st.json" | wc -l)
[ "$done_n" = "$total" ] || fail "$done_n of $total chunks done: $(cat "$WORK/st.json")"
grep -q '"attempts":2' "$WORK/st.json" || fail "no chunk was rendered again after the hand-back: $(cat "$WORK/st.json")"
! grep -q '"attempts":[3-9]' "$WORK/st.json" || fail "a chunk took more than 2 attempts: $(cat "$WORK/st.json")"
"$RF_BIN/reelfarm" logs "$job" > "$WORK/events.txt"
grep -q "on '$victim' handed back" "$WORK/events.txt" || fail "no hand-back event for $victim: $(cat "$WORK/events.txt")"
! grep -q "on '$victim' lost\|expired" "$WORK/events.txt" || fail "the drained worker's chunk was lost, not handed back: $(cat "$WORK/events.txt")"
ok "job done: $total chunks, each done once; the handed-back chunk was rendered again elsewhere"

verify_lossless "$WORK/in.mp4" "$WORK/out.mkv"
ok "output: all 1001 frames exactly once, bit-identical to the source"

# Slurm's view: the signalled task ended by itself (exit 0), not killed.
st=$(scontrol show job "${array}_1" 2>/dev/null | grep -o 'JobState=[A-Z]*' | head -1)
case "$st" in ''|JobState=COMPLETED) ;; *) fail "task ${array}_1 ended as $st, expected COMPLETED" ;; esac
ok "task ${array}_1: ${st:-gone from the controller (completed)}"
