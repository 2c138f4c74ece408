#!/usr/bin/env bash
# worker-overhead.sh - what the farm path costs on one machine, for the worker issue's 1080p case.
#
# Cases, run interleaved round after round (so a noisy neighbour spreads over all of them), medians
# and ratios against (a) from the same rounds, never a lone absolute time:
#   (a)  ffmpeg -i SRC -c:v libx264 -preset veryfast -crf CRF          the baseline
#   (b)  reelfarm render JOB --workers 1                                same crf and preset
#   (c)  reelfarm render JOB --workers 2                                two local workers
#   (b0), (c0) the same with the binaries in RF_BIN_OLD, when set: before/after in one run
#   (w)  the worker alone: reelfarm-coordinator and one reelfarm-worker as separate processes (shared
#        blob store, as on one host), the job of (b) submitted with `reelfarm submit --wait`; wall is
#        submit to done, CPU is the worker process's own (utime + stime of all its threads, from
#        /proc, between joining and the job's end) - what the issue calls the worker's overhead,
#        without the coordinator's verification and stitching that (b) also pays on these cores
#   (s)  with RF_BENCH_TUNED=1: one worker, set up for throughput - `--verify sample` (the
#        coordinator decodes 3 GOPs per chunk, not every frame), `split: keyframe` (no scene scan
#        when no pass needs scenes) and 1 s GOPs (`gop`: the sample is a small part of a chunk)
# Every output must have the input's video frame and audio packet counts, and every reelfarm output
# must decode without an error (checked outside the timed region).
#
# After the rounds:
#   - the coordinator's share: the coordinator decodes every uploaded chunk once to verify the
#     worker's checksums (rf_media_checksum). The same decode + per-frame SHA-256 of the whole
#     output (ffmpeg framehash, frame threads like rf_decoder) is timed for CPU seconds, to say how
#     much of (b) - (a) that verification is on these shared cores;
#   - a pipeline run (RF_BENCH_PIPELINE, default deflicker + grade) on a shorter clip of the same
#     size, one worker, --verbose: frames/s, and where the time goes from the slot's per-chunk
#     stage lines ("decode busy X s (waited ...)") summed over the chunks.
#
# Prints a Markdown section for docs/PERFORMANCE.md; progress goes to stderr.
#
# Environment:
#   RF_BIN                   folder with the reelfarm binary       (default: <repo>/build/bin)
#   RF_BIN_OLD               a second build to compare against     (default: none)
#   RF_BENCH_RUNS            rounds                                (default: 3)
#   RF_BENCH_SIZE            clip size                             (default: 1920x1080)
#   RF_BENCH_SECONDS         clip length for (a)-(c)               (default: 20)
#   RF_BENCH_CRF             crf of both ffmpeg and the job        (default: 20)
#   RF_BENCH_PIPELINE        job pipeline, a YAML flow list        (default: deflicker + grade)
#   RF_BENCH_PIPELINE_SECONDS clip length for the pipeline run     (default: 6)
#   RF_BENCH_PIPELINE_RUNS   pipeline runs (median fps)            (default: 1)
#   RF_BENCH_DIR             scratch folder (default: mktemp -d, removed at the end)
#   RF_BENCH_KEEP=1          keep the scratch folder
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${RF_BIN:-$root/build/bin}
bin_old=${RF_BIN_OLD:-}
runs=${RF_BENCH_RUNS:-3}
size=${RF_BENCH_SIZE:-1920x1080}
seconds=${RF_BENCH_SECONDS:-20}
crf=${RF_BENCH_CRF:-20}
pipeline=${RF_BENCH_PIPELINE:-"[{pass: deflicker, role: refine, strength: 0.6}, {pass: grade, role: refine, contrast: 1.1, saturation: 1.2}]"}
pseconds=${RF_BENCH_PIPELINE_SECONDS:-6}
pruns=${RF_BENCH_PIPELINE_RUNS:-1}

die() { echo "worker-overhead: $*" >&2; exit 1; }
note() { echo "worker-overhead: $*" >&2; }

[[ -x "$bin/reelfarm" ]] || die "no reelfarm binary in '$bin' (build first, or set RF_BIN)"
[[ -z "$bin_old" || -x "$bin_old/reelfarm" ]] || die "no reelfarm binary in RF_BIN_OLD '$bin_old'"
for tool in ffmpeg ffprobe awk /usr/bin/time; do
    command -v "$tool" >/dev/null || die "'$tool' is not installed"
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "RF_BENCH_RUNS: expected a positive integer, got '$runs'"

if [[ -n "${RF_BENCH_DIR:-}" ]]; then
    work=$RF_BENCH_DIR
    mkdir -p "$work"
else
    work=$(mktemp -d /tmp/rf-wbench.XXXXXX)
    [[ "${RF_BENCH_KEEP:-0}" == 1 ]] || trap 'rm -rf "$work"' EXIT
fi
log="$work/bench.log"
: >"$log"

count_packets() {
    ffprobe -v error -count_packets -select_streams "$1:0" -show_entries stream=nb_read_packets \
        -of csv=p=0 "$2" | head -n1
}

note "making a $size ${seconds} s clip and a ${pseconds} s one in '$work'"
input=$("$root/bench/make-bench-clip" "$work/in.mp4" "$size" "$seconds")
pinput=$("$root/bench/make-bench-clip" "$work/in-pipeline.mp4" "$size" "$pseconds")
in_frames=$(count_packets v "$input")
in_audio=$(count_packets a "$input")
pframes=$(count_packets v "$pinput")

spec() { # spec NAME INPUT OUTPUT [PIPELINE]
    if [[ "$1" == bench-s ]]; then
        cat <<SPEC
version: 1
name: $1
input: $2
output: $3
chunking: {split: keyframe, target_seconds: 4, max_seconds: 8}
encode: {codec: libx264, crf: $crf, preset: veryfast, gop: 25}
SPEC
    else
        cat <<SPEC
version: 1
name: $1
input: $2
output: $3
chunking: {target_seconds: 4, max_seconds: 8}
encode: {codec: libx264, crf: $crf, preset: veryfast}
SPEC
    fi
    [[ -z "${4:-}" ]] || echo "pipeline: $4"
}

kinds=(a b c w)
[[ -z "$bin_old" ]] || kinds+=(b0 c0)
[[ "${RF_BENCH_TUNED:-0}" != 1 ]] || kinds+=(s)
for kind in b c b0 c0 s w; do
    spec "bench-$kind" "$input" "out-$kind.mkv" >"$work/job-$kind.yaml"
done
spec bench-pipeline "$pinput" out-pipeline.mkv "$pipeline" >"$work/job-pipeline.yaml"

out_of() { [[ "$1" == a ]] && echo "$work/ffmpeg.mp4" || echo "$work/out-$1.mkv"; }

# CPU seconds (user + system, every thread, live or exited) of a running process.
proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"; }

# (w): coordinator and worker daemons; prints "wall cpu" like run_case.
run_daemons() {
    local out=$1 base=$((20000 + RANDOM % 9000)) state="$work/wstate" cpid wpid before after start end
    rm -rf "$state" "$work/wcache"
    "$bin/reelfarm-coordinator" --state "$state" --listen-workers "tcp://127.0.0.1:$base" \
        --listen-clients "tcp://127.0.0.1:$((base + 1))" --listen-blobs "tcp://127.0.0.1:$((base + 2))" \
        --listen-http "" --shared-blobs "$state/blobs" 2>>"$log" &
    cpid=$!
    "$bin/reelfarm-worker" --coordinator "tcp://127.0.0.1:$base" --blobs "tcp://127.0.0.1:$((base + 2))" \
        --slots 1 --name bench --cache "$work/wcache" --shared-blobs "$state/blobs" 2>"$work/worker.log" &
    wpid=$!
    for _ in $(seq 1 100); do grep -q "inputs and results go through it" "$work/worker.log" && break; sleep 0.1; done
    grep -q "inputs and results go through it" "$work/worker.log" || die "(w): the worker never joined (see $work/worker.log)"
    before=$(proc_cpu "$wpid")
    start=$(date +%s.%N)
    REELFARM_COORDINATOR="tcp://127.0.0.1:$((base + 1))" "$bin/reelfarm" submit "$work/job-w.yaml" \
        --wait --quiet >"$work/stdout" 2>>"$log" || die "(w) failed (see $log)"
    end=$(date +%s.%N)
    after=$(proc_cpu "$wpid")
    kill -TERM "$wpid" "$cpid" 2>/dev/null || true
    wait "$wpid" "$cpid" 2>/dev/null || true
    cat "$work/worker.log" >>"$log"
    awk -v s="$start" -v e="$end" -v b="$before" -v a="$after" 'BEGIN { printf "%.3f %.2f", e - s, a - b }' >"$work/cpu"
}

run_case() { # run_case KIND: prints wall seconds and CPU (user + system) seconds
    local kind=$1 out start end rfbin=$bin workers=1 extra=()
    out=$(out_of "$kind")
    [[ "$kind" == s ]] && extra=(--verify sample)
    rm -f "$out"
    [[ "$kind" == *0 ]] && rfbin=$bin_old
    [[ "$kind" == c* ]] && workers=2
    start=$(date +%s.%N)
    if [[ "$kind" == w ]]; then
        run_daemons "$out"
        start=0
        end=0
    elif [[ "$kind" == a ]]; then
        /usr/bin/time -f "%U %S" -o "$work/cpu" ffmpeg -nostdin -hide_banner -y -i "$input" \
            -map 0:v -map 0:a -c:v libx264 -crf "$crf" -preset veryfast -c:a copy "$out" \
            >>"$log" 2>&1 || die "ffmpeg failed (see $log)"
    else
        /usr/bin/time -f "%U %S" -o "$work/cpu" "$rfbin/reelfarm" render "$work/job-$kind.yaml" \
            --workers "$workers" --quiet "${extra[@]}" >"$work/stdout" 2>>"$log" || die "reelfarm ($kind) failed (see $log)"
    fi
    end=$(date +%s.%N)
    [[ -s "$out" ]] || die "$kind: no output"
    [[ "$(count_packets v "$out")" == "$in_frames" ]] || die "$kind: wrong frame count"
    [[ "$(count_packets a "$out")" == "$in_audio" ]] || die "$kind: wrong audio packet count"
    if [[ "$kind" != a ]]; then
        local errors
        errors=$(ffmpeg -nostdin -v error -xerror -i "$out" -map 0:v:0 -f null - 2>&1) ||
            die "$kind: output does not decode: $errors"
        [[ -z "$errors" ]] || die "$kind: decoding reported: $errors"
    fi
    if [[ "$kind" == w ]]; then
        cat "$work/cpu"
    else
        awk -v s="$start" -v e="$end" '{ printf "%.3f %.2f", e - s, $1 + $2 }' "$work/cpu"
    fi
}

# CPU seconds are the steadier number on a shared machine: other people's load stretches the wall
# clock of every case, but hardly the CPU time each one needs.
declare -A times cpus
for ((r = 1; r <= runs; r++)); do
    for kind in "${kinds[@]}"; do
        result=$(run_case "$kind")
        read -r t c <<<"$result"
        times[$kind]="${times[$kind]:-} $t"
        cpus[$kind]="${cpus[$kind]:-} $c"
        note "round $r/$runs $kind: $t s wall, $c s CPU (load $(cut -d' ' -f1 /proc/loadavg))"
    done
done

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END {
    if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v x="$1" -v y="$2" 'BEGIN { printf "%.3f", x / y }'; }

# ---- the coordinator's verification decode, in CPU seconds ---------------------------------------
cpu_of() { # cpu_of CMD...: user+sys seconds
    /usr/bin/time -f "%U %S" -o "$work/time" "$@" >/dev/null 2>>"$log" || die "'$*' failed"
    awk '{ printf "%.2f", $1 + $2 }' "$work/time"
}
verify_cpu=$(cpu_of ffmpeg -nostdin -v error -i "$work/out-b.mkv" -map 0:v:0 -f framehash -hash sha256 -)
decode_cpu=$(cpu_of ffmpeg -nostdin -v error -i "$work/out-b.mkv" -map 0:v:0 -f null -)
encode_cpu=$(cpu_of ffmpeg -nostdin -v error -y -i "$input" -map 0:v -c:v libx264 -crf "$crf" \
    -preset veryfast -f null -)

# ---- a pipeline with passes -------------------------------------------------------------------------
ptimes=""
for ((r = 1; r <= pruns; r++)); do
    rm -f "$work/out-pipeline.mkv"
    start=$(date +%s.%N)
    "$bin/reelfarm" render "$work/job-pipeline.yaml" --workers 1 --verbose >"$work/stdout" \
        2>"$work/pipeline.log" || die "pipeline render failed (see $work/pipeline.log)"
    end=$(date +%s.%N)
    [[ "$(count_packets v "$work/out-pipeline.mkv")" == "$pframes" ]] || die "pipeline: wrong frame count"
    ptimes="$ptimes $(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }')"
done
pt=$(median <<<"$ptimes")
# Sums "<stage> busy X s (waited Y s for input, Z s for room)" over the chunks of the last run.
stages=$(grep -o 'frames in [0-9.]* s; [^"]*' "$work/pipeline.log" | awk '
    { n = split($0, parts, "; ")
      for (i = 2; i <= n; i++) {
          split(parts[i], w, " ")
          busy[w[1]] += w[3]; win[w[1]] += w[6]; wout[w[1]] += w[10]
          if (!(w[1] in seen)) { seen[w[1]] = 1; order[++k] = w[1] }
      }
      chunks++; wall += $3 }
    END { for (j = 1; j <= k; j++) printf "| %s | %.2f | %.0f %% | %.2f | %.2f |\n", order[j], busy[order[j]],
              100 * busy[order[j]] / wall, win[order[j]], wout[order[j]]
          printf "CHUNKS %d %.2f\n", chunks, wall }')
chunk_wall=$(awk '/^CHUNKS/ { print $3 }' <<<"$stages")
nchunks=$(awk '/^CHUNKS/ { print $2 }' <<<"$stages")

# ---- report -------------------------------------------------------------------------------------
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
a=$(median <<<"${times[a]}")
echo "### Worker overhead at $size — $(date -u +%Y-%m-%d)"
echo
echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) cores, ${cpu:-unknown CPU}, $(uname -sr); shared with other work (medians of interleaved rounds)"
echo "- Input: \`bench/make-bench-clip in.mp4 $size $seconds\` ($in_frames frames, $in_audio AAC packets); libx264 crf $crf, preset veryfast in both"
echo "- Command: \`RF_BIN=$bin${bin_old:+ RF_BIN_OLD=$bin_old} RF_BENCH_RUNS=$runs bench/worker-overhead.sh\`"
echo
echo "| Case | Median wall s | Rounds wall s | Wall vs ffmpeg | Median CPU s | CPU vs ffmpeg |"
echo "|---|---:|---|---:|---:|---:|"
for kind in "${kinds[@]}"; do
    case "$kind" in
        a) label="(a) ffmpeg -i SRC -c:v libx264 -preset veryfast" ;;
        b) label="(b) reelfarm render, 1 worker" ;;
        c) label="(c) reelfarm render, 2 workers" ;;
        b0) label="(b0) as (b), RF_BIN_OLD" ;;
        c0) label="(c0) as (c), RF_BIN_OLD" ;;
        s) label="(s) 1 worker, --verify sample, split keyframe, 1 s GOPs" ;;
        w) label="(w) daemons: worker process CPU; wall submit to done" ;;
    esac
    m=$(median <<<"${times[$kind]}")
    mc=$(median <<<"${cpus[$kind]}")
    echo "| $label | $m |${times[$kind]} | $(ratio "$m" "$a")× | $mc | $(ratio "$mc" "$(median <<<"${cpus[a]}")")× |"
done
echo
b=$(median <<<"${times[b]}")
echo "- The worker alone (w): its process used $(ratio "$(median <<<"${cpus[w]}")" "$(median <<<"${cpus[a]}")")× ffmpeg's CPU time ($(awk -v x="$(median <<<"${cpus[w]}")" -v y="$(median <<<"${cpus[a]}")" 'BEGIN { printf "%+.1f %%", 100 * (x / y - 1) }'))."
echo "- Worker overhead (b)/(a) − 1: $(awk -v b="$b" -v a="$a" 'BEGIN { printf "%+.1f %%", 100 * (b / a - 1) }'); two workers (c)/(a): $(ratio "$(median <<<"${times[c]}")" "$a")×."
ca=$(median <<<"${cpus[a]}")
cb=$(median <<<"${cpus[b]}")
echo "- CPU: (b) uses $(awk -v x="$cb" -v y="$ca" 'BEGIN { printf "%+.1f", x - y }') CPU s more than (a)."
echo "- One verification decode of the whole result (what the coordinator's \`rf_media_checksum\` does once per chunk, and the worker's verify stage while it encodes): $verify_cpu CPU s with the per-frame SHA-256 (ffmpeg framehash), $decode_cpu CPU s for the decode alone; the encode alone (\`ffmpeg -i SRC -c:v libx264 ... -f null -\`) is $encode_cpu CPU s. ffmpeg's SHA-256 is slower than ours (OpenSSL), so the coordinator's verification is between $(awk -v v="$decode_cpu" -v d="$cb" -v a="$ca" 'BEGIN { g = d - a; if (g > 0) printf "%.0f %%", 100 * v / g; else printf "n/a" }') (decode alone) and $(awk -v v="$verify_cpu" -v d="$cb" -v a="$ca" 'BEGIN { g = d - a; if (g > 0) printf "%.0f %%", 100 * v / g; else printf "n/a" }') of the CPU gap."
echo
echo "Pipeline \`$pipeline\` on \`make-bench-clip $size $pseconds\` ($pframes frames), 1 worker, median of $pruns: $pt s wall, $(awk -v f="$pframes" -v t="$pt" 'BEGIN { printf "%.1f", f / t }') frames/s end to end. Where the slot's time went ($nchunks chunks, $chunk_wall s of chunk wall time; busy = running, not blocked on a queue; stages overlap, so shares add up to more than 100 %):"
echo
echo "| Stage | Busy s | Share of chunk time | Waited for input s | Waited for room s |"
echo "|---|---:|---:|---:|---:|"
grep -v '^CHUNKS' <<<"$stages"
