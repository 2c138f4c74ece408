#!/usr/bin/env bash
# The randomized fault-injection driver (docs/RELIABILITY.md).
#
#   tests/faults/run.sh [--runs N] [--seed S] [--run-seed R] [--kinds K1,K2,...] [--stats FILE]
#
# Each run builds a fresh farm of separate hosts (network namespaces, tests/faults/lib.bash): one
# coordinator and 2-3 workers, submits 1-2 lossless jobs, and injects 1-3 faults at random points
# of the render, one after the other, each healed before the next:
#   kill-worker       kill -9 of a worker, restarted after a random delay
#   kill-coordinator  kill -9 of the coordinator (while planning, rendering or stitching), restarted
#   partition         a worker's link goes down mid-chunk, back up after 0.5-8 s
#   isolate           every worker's link goes down at once (the coordinator alone), back after 0.5-8 s
#   hang              SIGSTOP of a worker (a hung host: no heartbeats, no progress), SIGCONT later
#   clock             kill -9 of the coordinator, restarted on a host whose monotonic and boot
#                     clocks jumped by days forward or hours back (a time namespace)
#   corrupt           a worker reports a corrupt result (--test-fault bad-checksum@N)
#   truncate          a worker returns a chunk one frame short (--test-fault wrong-count@N)
#   bitrot            bytes of a finished chunk's stored result change on the coordinator's disk
# A partition, isolation or hang may overlap the faults after it (1 in 3): it is healed in the
# background while the next ones are injected, e.g. the coordinator killed while a worker is cut off.
# Every job must end done or failed with a reason; every done output must decode to exactly the
# source's frames (SHA-256 of each decoded frame, in order: none lost, none duplicated) and carry
# the source's audio packets; no job may disappear and no job's count of done chunks may go down.
#
# The master seed (--seed, default: from the clock) is printed, and so is each run's own seed:
# `run.sh --run-seed R` replays that run's farm size, jobs, faults and their points exactly (the
# timing of processes is not replayable). Exit status: 0 if every run passed, 1 otherwise, 77 when
# this machine cannot create network namespaces.
source "$(dirname "$0")/lib.bash"

RUNS=3 SEED="" RUN_SEED="" KINDS="kill-worker,kill-coordinator,partition,isolate,hang,clock,corrupt,truncate,bitrot"
STATS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --run-seed) RUN_SEED=$2; RUNS=1; shift 2 ;;
    --kinds) KINDS=$2; shift 2 ;;
    --stats) STATS=$2; shift 2 ;;
    *) echo "usage: run.sh [--runs N] [--seed S] [--run-seed R] [--kinds K,...] [--stats FILE]" >&2; exit 2 ;;
  esac
done
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] || { echo "run.sh: --runs: expected a count >= 1, got '$RUNS'" >&2; exit 2; }
IFS=, read -r -a KIND_LIST <<< "$KINDS"
for k in "${KIND_LIST[@]}"; do
  case "$k" in kill-worker|kill-coordinator|partition|isolate|hang|clock|corrupt|truncate|bitrot) ;;
    *) echo "run.sh: --kinds: unknown fault '$k'" >&2; exit 2 ;; esac
done

faults_require_netns
# Clock jumps need time namespaces (Linux 5.6+, util-linux unshare --time): without them that kind
# is left out, and the series says so.
if [[ ",$KINDS," == *,clock,* ]] && ! unshare --time --fork --monotonic=1 true 2>/dev/null; then
  echo "faults: this kernel or unshare has no time namespaces: fault kind 'clock' left out"
  KINDS=$(tr , '\n' <<< "$KINDS" | grep -vx clock | paste -sd,)
  IFS=, read -r -a KIND_LIST <<< "$KINDS"
fi
[ -n "$SEED" ] || SEED=$(( $(date +%s%N) % 1000000007 ))
echo "faults: master seed $SEED ($RUNS runs, kinds $KINDS)"

src=$(fixture h264-aac-1001) # 1001 frames at 24000/1001, AAC audio, closed GOPs of 48 frames
cp "$src" "$WORK/in.mp4"
frame_hashes "$WORK/in.mp4" > "$WORK/ref.hash"
audio_hashes "$WORK/in.mp4" > "$WORK/ref.audio"
SRC_FRAMES=$(wc -l < "$WORK/ref.hash")
[ "$SRC_FRAMES" = 1001 ] || fail "could not hash the source's frames ($SRC_FRAMES)"

declare -A INJECTED=()    # fault kind -> times injected
T_RUNS=0 T_FAILED_RUNS=0 T_JOBS=0 T_DONE=0 T_JOB_FAILED=0 T_FRAMES=0 T_RESTARTS=0
FAILED_SEEDS=()

# ---- one run ---------------------------------------------------------------------------------

RUN_ERR=""
run_fail() { RUN_ERR="$*"; echo "  FAIL: $*" >&2; return 1; }

# Polls every job once: records terminal states, checks that no job vanished from a coordinator
# that answers and that no job's done-chunk count went down. Returns 1 (RUN_ERR set) on a breach.
poll_jobs() {
  local j out st cd
  for j in "${JOBS[@]}"; do
    out=$(rf_cli status "$j" --json 2>/dev/null) || {
      # A coordinator that is up must know every job it accepted.
      if [ -n "${COORD_UP:-}" ] && rf_cli jobs --json > "$FARM/jobs.json" 2>/dev/null && ! grep -q "\"$j\"" "$FARM/jobs.json"; then
        run_fail "job $j is missing from the coordinator's job list"; return 1
      fi
      continue
    }
    st=$(jq -r .state <<< "$out"); cd=$(jq -r .chunks_done <<< "$out")
    STATE[$j]=$st
    # Only a stored result found damaged (fault bitrot) may take a done chunk back, and the
    # coordinator must have said so in the job's events.
    if [ "$cd" -lt "${MAXDONE[$j]:-0}" ] && ! grep "$j" "$FARM/coordinator.log" | grep -q "is damaged or missing"; then
      run_fail "job $j: chunks done went down from ${MAXDONE[$j]} to $cd (a finished chunk was lost)"; return 1
    fi
    MAXDONE[$j]=$cd
    PROGRESS[$j]=$(jq -r 'if .frames_total > 0 then (.frames_done * 100 / .frames_total | floor) else 0 end' <<< "$out")
  done
}

all_ended() {
  local j
  for j in "${JOBS[@]}"; do case "${STATE[$j]:-}" in done|failed|cancelled) ;; *) return 1 ;; esac; done
}

# Waits until the first job reaches AT: a percentage of frames done, "planning" (now) or
# "stitching". Returns 1 if every job ended first (the fault then has no point left to hit).
wait_point() { # AT
  local at=$1 t0=$SECONDS j=${JOBS[0]}
  [ "$at" = planning ] && return 0
  while [ $((SECONDS - t0)) -lt 300 ]; do
    poll_jobs || return 2
    all_ended && return 1
    if [ "$at" = stitching ]; then
      [ "${STATE[$j]:-}" = stitching ] && return 0
      case "${STATE[$j]:-}" in done|failed|cancelled) return 1 ;; esac
    elif [ "${PROGRESS[$j]:-0}" -ge "$at" ]; then
      return 0
    fi
    sleep 0.1
  done
  run_fail "job $j never reached '$at' in 300 s (state ${STATE[$j]:-?})"; return 2
}

coord_up() { coord_start "$@"; COORD_UP=1; }
coord_down() { COORD_UP=""; coord_kill; }

# Heals a partition, isolation or hang.
heal() { # KIND WORKER PID
  local w
  case "$1" in
    partition) net_heal "$2" ;;
    isolate) for w in $(seq 1 "$NW"); do net_heal "$w"; done ;;
    hang) kill -CONT "$3" 2>/dev/null || true ;;
  esac
}

# Injects one fault now; returns when it is healed (EXTRA "bg": at once, healed in the background).
inject() { # KIND WORKER DUR_MS EXTRA
  local kind=$1 i=$2 dur=$3 extra=$4 s w
  s=$(printf '%d.%03d' $((dur / 1000)) $((dur % 1000)))
  if [ "$extra" = bg ]; then
    case "$kind" in
      partition) net_cut "$i"; echo "  worker w$i cut off the network for ${s}s, overlapping the next faults" ;;
      isolate) for w in $(seq 1 "$NW"); do net_cut "$w"; done; echo "  every worker cut off for ${s}s, overlapping the next faults" ;;
      hang) kill -STOP "${WPID[i]}"; echo "  worker w$i stopped (SIGSTOP) for ${s}s, overlapping the next faults" ;;
    esac
    ( sleep "$s"; heal "$kind" "$i" "${WPID[i]}" ) &
    BG+=($!); PIDS+=($!)
    INJECTED[$kind]=$(( ${INJECTED[$kind]:-0} + 1 ))
    return 0
  fi
  case "$kind" in
    isolate)
      for w in $(seq 1 "$NW"); do net_cut "$w"; done; echo "  every worker cut off the network for ${s}s"
      sleep "$s"; heal isolate ;;
    kill-worker)
      worker_kill "$i"; echo "  kill -9 worker w$i; back in ${s}s"
      sleep "$s"; worker_start "$i" "slow:$SLOW"; T_RESTARTS=$((T_RESTARTS + 1)) ;;
    kill-coordinator)
      coord_down; echo "  kill -9 coordinator; back in ${s}s"
      sleep "$s"; coord_up; T_RESTARTS=$((T_RESTARTS + 1)) ;;
    clock)
      coord_down; echo "  kill -9 coordinator; back in ${s}s with its clocks moved ${extra}s"
      sleep "$s"; coord_up "$extra"; T_RESTARTS=$((T_RESTARTS + 1)) ;;
    partition)
      net_cut "$i"; echo "  worker w$i cut off the network for ${s}s"
      sleep "$s"; net_heal "$i" ;;
    hang)
      kill -STOP "${WPID[i]}"; echo "  worker w$i stopped (SIGSTOP) for ${s}s"
      sleep "$s"; kill -CONT "${WPID[i]}" ;;
    bitrot)
      # A finished chunk's result, as the coordinator stored it, changes on its disk.
      local blob f size
      blob=$(sqlite3 "file:$FARM/state/state.db?mode=ro" \
        "SELECT result_blob FROM chunks WHERE state = 'done' AND result_blob != '' ORDER BY idx LIMIT 1 OFFSET $((RANDOM % 3))" 2>/dev/null) || true
      f="$FARM/state/blobs/$blob"
      if [ -z "$blob" ] || [ ! -f "$f" ]; then echo "  (bitrot not injected: no stored result yet)"; return 0; fi
      size=$(stat -c %s "$f")
      printf '\x5a\xa5\x5a\xa5' | dd of="$f" bs=1 seek=$((size / 3 + RANDOM % (size / 3))) conv=notrunc 2>/dev/null
      echo "  4 bytes of stored result ${blob:0:12}... changed on the coordinator's disk"
      BITROT+=("$blob") ;;
  esac
  INJECTED[$kind]=$(( ${INJECTED[$kind]:-0} + 1 ))
}

# Checks one ended job; prints what it found. Returns 1 on a breach.
check_job() { # JOB OUTPUT
  local j=$1 out=$2 st msg n
  rf_cli status "$j" --json > "$FARM/final-$j.json" 2>/dev/null || { run_fail "job $j: no final status"; return 1; }
  st=$(jq -r .state "$FARM/final-$j.json"); msg=$(jq -r .message "$FARM/final-$j.json")
  case "$st" in
    done)
      [ -s "$out" ] || { run_fail "job $j is done but its output $out is missing"; return 1; }
      frame_hashes "$out" > "$FARM/out.hash"
      n=$(wc -l < "$FARM/out.hash")
      [ "$n" = "$SRC_FRAMES" ] || { run_fail "job $j: output has $n frames, the source $SRC_FRAMES"; return 1; }
      cmp -s "$WORK/ref.hash" "$FARM/out.hash" ||
        { run_fail "job $j: decoded frames differ from the source's (first at frame $(cmp "$WORK/ref.hash" "$FARM/out.hash" | awk '{print $NF}'))"; return 1; }
      audio_hashes "$out" > "$FARM/out.audio"
      cmp -s "$WORK/ref.audio" "$FARM/out.audio" || { run_fail "job $j: audio packets differ from the source's"; return 1; }
      echo "  job $j done: $n frames identical to the source's, audio identical"
      T_DONE=$((T_DONE + 1)); T_FRAMES=$((T_FRAMES + n)) ;;
    failed)
      [ -n "$msg" ] && [ "$msg" != null ] || { run_fail "job $j failed without a reason"; return 1; }
      echo "  job $j failed with a reason: $msg"
      T_JOB_FAILED=$((T_JOB_FAILED + 1)) ;;
    *) run_fail "job $j ended '$st'"; return 1 ;;
  esac
}

run_one() { # RUN_SEED INDEX
  local rs=$1 r=$2 nw njobs i j f k
  RANDOM=$rs
  FARM="$WORK/run-$r"; mkdir -p "$FARM"
  nw=$((2 + RANDOM % 2)); njobs=$((1 + RANDOM % 2))
  SLOW=$((15 + RANDOM % 25))  # ms per frame: a 48-frame chunk takes 0.7-2 s, so faults land mid-chunk
  local target=$(( (1 + RANDOM % 3) * 2 ))
  # One worker may return one or more bad results (corrupt or one frame short) before behaving.
  local badw=0 badfault="" want_bad=()
  for k in "${KIND_LIST[@]}"; do case "$k" in corrupt|truncate) want_bad+=("$k") ;; esac; done
  if [ ${#want_bad[@]} -gt 0 ] && [ $((RANDOM % 2)) = 0 ]; then
    badw=$((1 + RANDOM % nw))
    k=${want_bad[RANDOM % ${#want_bad[@]}]}
    badfault="$([ "$k" = corrupt ] && echo bad-checksum || echo wrong-count)@$((1 + RANDOM % 2))"
  fi
  # The plan: 1-3 faults from the kinds that act on processes or links.
  local act=() plan=()
  for k in "${KIND_LIST[@]}"; do case "$k" in corrupt|truncate) ;; *) act+=("$k") ;; esac; done
  if [ ${#act[@]} -gt 0 ]; then
    local nf=$((1 + RANDOM % 3))
    for f in $(seq 1 "$nf"); do
      k=${act[RANDOM % ${#act[@]}]}
      local at=$((RANDOM % 90)) dur=$((500 + RANDOM % 7500)) wi=$((1 + RANDOM % nw)) extra=0
      case "$k" in
        kill-coordinator|clock)
          case $((RANDOM % 6)) in 0) at=planning ;; 1) at=stitching ;; esac
          dur=$((RANDOM % 2000)) ;;
        kill-worker) dur=$((RANDOM % 3000)) ;;
      esac
      if [ "$k" = clock ]; then
        # Forward by 1-30 days, or back by up to an hour (a monotonic clock cannot go below 0).
        if [ $((RANDOM % 2)) = 0 ]; then extra=$(( (1 + RANDOM % 30) * 86400 )); else extra=-$((60 + RANDOM % 3540)); fi
      fi
      [ "$k" = bitrot ] && dur=0
      case "$k" in partition|isolate|hang) [ $((RANDOM % 3)) = 0 ] && extra=bg ;; esac
      plan+=("$k $wi $dur $extra $at")
    done
    # In the order the render reaches their points: planning, then by progress, stitching last.
    local sorted; sorted=$(for f in "${plan[@]}"; do set -- $f
      case "$5" in planning) echo "-1 $f" ;; stitching) echo "1000 $f" ;; *) echo "$5 $f" ;; esac; done | sort -n -s -k1,1 | cut -d' ' -f2-)
    mapfile -t plan <<< "$sorted"
  fi
  echo "run $r: seed $rs: $nw workers (slow:$SLOW), $njobs job(s) of ${target}s chunks$([ -n "$badfault" ] && echo ", w$badw has $badfault")"
  for f in "${plan[@]}"; do set -- $f; echo "  planned: $1 $([ "$1" = kill-worker ] || [ "$1" = partition ] || [ "$1" = hang ] && echo "w$2 ")at $5$([ "$5" = planning ] || [ "$5" = stitching ] || echo "%") for $3 ms$([ "$1" = clock ] && echo ", clocks $4 s")$([ "$4" = bg ] && echo ", overlapping")"; done

  NW=$nw; BG=()
  net_create "$nw" $((20 + r % 200))
  cat > "$FARM/coordinator.yaml" <<YAML
version: 1
state_dir: $FARM/state
listen: {workers: "tcp://*:7600", clients: "tcp://127.0.0.1:7601", blobs: "tcp://*:7602"}
http: {listen: ""}
heartbeat_ms: 500
liveness: 4
task_timeout_s: 10
YAML
  coord_up
  kill -0 "$COORD" 2>/dev/null || { run_fail "the coordinator did not start: $(tail -3 "$FARM/coordinator.log")"; return 1; }
  WPID=()
  for i in $(seq 1 "$nw"); do
    if [ "$i" = "$badw" ]; then worker_start "$i" "$badfault"; else worker_start "$i" "slow:$SLOW"; fi
  done
  JOBS=(); BITROT=(); declare -gA STATE=() MAXDONE=() PROGRESS=() OUTPUT=()
  for j in $(seq 1 "$njobs"); do
    write_job "$FARM/job$j.yaml" "$WORK/in.mp4" "$FARM/out$j.mkv" ffv1
    sed -i "s/^chunking: .*/chunking: {split: keyframe, target_seconds: $target, max_seconds: $((target + 4))}/" "$FARM/job$j.yaml"
    local id
    id=$(rf_cli submit "$FARM/job$j.yaml" 2>> "$FARM/submit.err") || { run_fail "submit failed: $(cat "$FARM/submit.err")"; return 1; }
    JOBS+=("$id"); OUTPUT[$id]="$FARM/out$j.mkv"
  done
  T_JOBS=$((T_JOBS + njobs))
  echo "  submitted ${JOBS[*]}"

  local rc
  for f in "${plan[@]}"; do
    set -- $f
    rc=0; wait_point "$5" || rc=$?
    [ $rc = 2 ] && return 1
    if [ $rc = 1 ]; then echo "  ($1 not injected: every job ended first)"; continue; fi
    inject "$1" "$2" "$3" "$4"
  done
  local p
  for p in "${BG[@]}"; do wait "$p" 2>/dev/null || true; done

  local t0=$SECONDS
  while ! all_ended; do
    [ $((SECONDS - t0)) -lt 300 ] || { run_fail "jobs not ended 300 s after the last fault: $(for j in "${JOBS[@]}"; do printf '%s=%s ' "$j" "${STATE[$j]:-?}"; done)"; return 1; }
    poll_jobs || return 1
    sleep 0.2
  done
  # The bad worker's fault counts only if it really hit a chunk.
  if [ -n "$badfault" ]; then
    local hits; hits=$(grep -c "test fault '$badfault' applies" "$FARM/w$badw.log" || true)
    k=$([ "${badfault%%@*}" = bad-checksum ] && echo corrupt || echo truncate)
    INJECTED[$k]=$(( ${INJECTED[$k]:-0} + hits ))
    echo "  w$badw's $badfault hit $hits chunk(s)"
    if [ "$hits" -gt 0 ] && ! grep -q "'w$badw'.*failed verification" "$FARM/coordinator.log"; then
      run_fail "w$badw returned $hits bad result(s) and the coordinator never rejected one"; return 1
    fi
  fi
  for j in "${JOBS[@]}"; do check_job "$j" "${OUTPUT[$j]}" || return 1; done
  # What became of each damaged result (the frame check above is what guarantees the outputs):
  # caught by a stitch, or replaced by a later upload of the same content (another job's identical
  # chunk, renamed over it), or never stitched (its chunk was rendered again for another reason).
  local b f
  for b in "${BITROT[@]}"; do
    f="$FARM/state/blobs/$b"
    if grep -q "stored result ${b:0:12}... is damaged" "$FARM/coordinator.log"; then
      echo "  the damaged result ${b:0:12}... was caught before a stitch and rendered again"
    elif [ -f "$f" ] && [ "$(sha256sum < "$f" | cut -d' ' -f1)" = "$b" ]; then
      echo "  the damaged result ${b:0:12}... was replaced by a later upload of the same content"
    else
      echo "  the damaged result ${b:0:12}... was reported by no stitch (every output's frames are checked above)"
    fi
  done
  rf_cli jobs --json > "$FARM/jobs.json" || { run_fail "jobs --json failed"; return 1; }
  for j in "${JOBS[@]}"; do grep -q "\"$j\"" "$FARM/jobs.json" || { run_fail "job $j is not listed"; return 1; }; done
}

# ---- the runs ---------------------------------------------------------------------------------

# The figures so far (after every run, so a series cut short still has them): to FILE if given.
STATS_NOW="$WORK/stats.txt"
write_stats() { # [FILE]
  local kinds_line="" k
  for k in kill-worker kill-coordinator partition isolate hang clock corrupt truncate bitrot; do
    kinds_line+="$k=${INJECTED[$k]:-0} "
  done
  {
    echo "runs=$T_RUNS failed_runs=$T_FAILED_RUNS jobs=$T_JOBS done=$T_DONE failed_with_reason=$T_JOB_FAILED frames_verified=$T_FRAMES restarts=$T_RESTARTS seconds=$((SECONDS - t_start)) seed=$SEED"
    echo "injected: $kinds_line"
    [ ${#FAILED_SEEDS[@]} = 0 ] || echo "failed run seeds: ${FAILED_SEEDS[*]}"
  } > "$STATS_NOW"
  [ -z "${1:-}" ] || cp "$STATS_NOW" "$1"
}

t_start=$SECONDS
for r in $(seq 1 "$RUNS"); do
  if [ -n "$RUN_SEED" ]; then rs=$RUN_SEED; else rs=$(( (SEED * 7919 + r * 104729) % 2147483647 )); fi
  T_RUNS=$((T_RUNS + 1))
  RUN_ERR=""
  if run_one "$rs" "$r"; then
    echo "run $r: ok"
  else
    T_FAILED_RUNS=$((T_FAILED_RUNS + 1)); FAILED_SEEDS+=("$rs")
    echo "run $r: FAILED (seed $rs; replay: tests/faults/run.sh --run-seed $rs): $RUN_ERR" >&2
    echo "  logs kept in $FARM" >&2
  fi
  for pid in "${PIDS[@]}"; do { kill -9 "$pid"; wait "$pid"; } 2>/dev/null || true; done
  PIDS=()
  net_destroy
  [ -z "$RUN_ERR" ] && rm -rf "$FARM"
  write_stats "$STATS"
done

write_stats "$STATS"
echo "faults: $(head -1 "$STATS_NOW")"
echo "faults: $(sed -n 2p "$STATS_NOW")"
[ "$T_FAILED_RUNS" = 0 ] || { echo "faults: $T_FAILED_RUNS of $T_RUNS runs failed (seeds ${FAILED_SEEDS[*]})" >&2; RF_KEEP=1; exit 1; }
