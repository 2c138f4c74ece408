#!/usr/bin/env bash
# gpu-bench.sh - the GPU pipeline benchmark of issue 6 (docs/PERFORMANCE.md, "GPU pipeline").
#
# On a machine with an NVIDIA GPU, for clips synthesised here (lavfi testsrc2, never downloaded):
#   decode     frames/s of NVDEC vs the CPU decoder: H.264 1080p and HEVC 4K
#   pipeline   deflicker + color-match at 1080p and 4K, on the GPU (NVDEC -> the slot's GPU stage)
#              and on the CPU (the CPU slot's path): frames/s of the whole loop and of the pass
#              stage alone, and the GPU's busy fraction, two ways: nvidia-smi's utilization.gpu
#              sampled every 100 ms during the run (averaged), and the CUDA-event device time of
#              the stage's three streams divided by wall time
#   encoder    the encoder's own throughput on the same frames (decoded into memory first), so
#              the reader sees which stage bounds the node
# Without a GPU (or without nvidia-smi) it runs the same cases on small clips (quick mode) and
# prints every GPU line as skipped, with the reason: it checks that the benchmark works, nothing
# more. Prints a Markdown section; with OUT set, also writes it to $OUT/gpu-bench.md and the raw
# "key: value" outputs to $OUT/gpu-bench-raw.txt. Progress goes to stderr.
#
# Environment:
#   RF_BIN              folder with reelfarm-gpu-bench          (default: <repo>/build/bin)
#   RF_BENCH_QUICK      1: small clips (default: 1 without a GPU, 0 with one)
#   RF_BENCH_SECONDS    clip length in seconds at 25 fps         (default: 12, quick: 2)
#   RF_BENCH_ENCODERS   CODEC:PRESET list for the encoder lines  (default: libx264:veryfast)
#   RF_BENCH_CPU_FRAMES frames of the CPU pipeline runs (color-match on one core is slow at 4K)
#                       (default: 8, quick: all)
#   RF_BENCH_DIR        scratch folder (default: mktemp -d, removed at the end)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${RF_BIN:-$root/build/bin}
bench="$bin/reelfarm-gpu-bench"
if [[ ! -x "$bench" ]]; then
    echo "gpu-bench: $bench not found (build the reelfarm-gpu-bench target)" >&2
    exit 2
fi
have_gpu=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    have_gpu=1
fi
quick=${RF_BENCH_QUICK:-$((1 - have_gpu))}
if ((quick)); then
    seconds=${RF_BENCH_SECONDS:-2}
    hd=320x180 uhd=640x360 enc_frames=20 cpu_frames=${RF_BENCH_CPU_FRAMES:-1000000}
else
    seconds=${RF_BENCH_SECONDS:-12}
    hd=1920x1080 uhd=3840x2160 enc_frames=60 cpu_frames=${RF_BENCH_CPU_FRAMES:-8}
fi
encoders=${RF_BENCH_ENCODERS:-libx264:veryfast}
dir=${RF_BENCH_DIR:-$(mktemp -d)}
if [[ -z "${RF_BENCH_DIR:-}" ]]; then
    trap 'rm -rf "$dir"' EXIT
fi
mkdir -p "$dir"
raw="$dir/raw.txt"
: >"$raw"

log() { echo "gpu-bench: $*" >&2; }

# ---- clips -------------------------------------------------------------------------------------
h264="$dir/h264-$hd.mp4"
hevc="$dir/hevc-$uhd.mkv"
log "making clips ($hd H.264, $uhd HEVC, ${seconds} s at 25 fps) in $dir"
"$root/bench/make-bench-clip" "$h264" "$hd" "$seconds" 25 >/dev/null
ffmpeg -nostdin -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=${uhd}:rate=25:duration=${seconds}" \
    -c:v libx265 -preset ultrafast -x265-params log-level=error -g 50 -pix_fmt yuv420p "$hevc"

# key VALUE from a run's output (empty when absent)
val() { sed -n "s/^$2: //p" <<<"$1" | head -1; }

# run LABEL ARGS...: the driver's output, appended to the raw log under a header
run() {
    local label=$1
    shift
    log "$label"
    local out
    out=$("$bench" "$@" 2>&1) || {
        echo "### $label (FAILED)" >>"$raw"
        echo "$out" >>"$raw"
        echo "FAILED: $(tail -1 <<<"$out")"
        return 0
    }
    { echo "### $label"; echo "$out"; } >>"$raw"
    echo "$out"
}

# cell OUTPUT: fps, "skipped (why)" or the failure
cell() {
    local out=$1
    if [[ "$out" == FAILED:* ]]; then
        echo "${out}"
    elif [[ -n "$(val "$out" skipped)" ]]; then
        echo "skipped ($(val "$out" skipped))"
    else
        echo "$(val "$out" fps)"
    fi
}

# ---- GPU busy sampling ------------------------------------------------------------------------------
smi_pid=""
smi_start() {
    smi_file="$dir/smi-$1.txt"
    : >"$smi_file"
    if ((have_gpu)); then
        nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -i 0 -lms 100 \
            >"$smi_file" 2>/dev/null &
        smi_pid=$!
    fi
}
smi_stop() {
    if [[ -n "$smi_pid" ]]; then
        kill "$smi_pid" 2>/dev/null || true
        wait "$smi_pid" 2>/dev/null || true
        smi_pid=""
    fi
    awk '$1 ~ /^[0-9]+$/ { s += $1; n++ } END { if (n) printf "%.0f%% (%d samples)", s / n, n; else print "n/a" }' "$smi_file"
}

# ---- runs ---------------------------------------------------------------------------------------
card="none"
if ((have_gpu)); then
    card=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader -i 0 | head -1)
fi

declare -A dec
for clip in "$h264" "$hevc"; do
    for mode in nvdec cpu; do
        dec["$clip/$mode"]=$(run "decode $(basename "$clip") $mode" decode "$clip" "$mode")
    done
done

declare -A pipe busy
for clip in "$h264" "$hevc"; do
    smi_start gpu
    pipe["$clip/gpu"]=$(run "deflicker + color-match $(basename "$clip") gpu" passes "$clip" gpu)
    busy["$clip"]=$(smi_stop)
    pipe["$clip/cpu"]=$(run "deflicker + color-match $(basename "$clip") cpu" passes "$clip" cpu "$cpu_frames")
done

declare -A enc
for clip in "$h264" "$hevc"; do
    for e in $encoders; do
        enc["$clip/$e"]=$(run "encode $(basename "$clip") $e" encode "$clip" "${e%%:*}" "${e#*:}" "$enc_frames")
    done
done

# ---- report -------------------------------------------------------------------------------------
report="$dir/report.md"
{
    echo "### GPU pipeline benchmark — $(date -u +%Y-%m-%d) ($(uname -n))"
    echo
    echo "Command: \`bench/gpu-bench.sh\`$( ((quick)) && echo " (quick mode: small clips, no GPU)" ). GPU: $card. CPU: $(nproc) cores."
    echo
    echo "| decode | NVDEC frames/s | CPU frames/s |"
    echo "|---|---|---|"
    for clip in "$h264" "$hevc"; do
        echo "| $(basename "$clip") | $(cell "${dec[$clip/nvdec]}") | $(cell "${dec[$clip/cpu]}") |"
    done
    echo
    ((quick)) || echo "CPU pipeline runs take the first $cpu_frames frames; GPU runs the whole clip ($((seconds * 25)) frames). \"Loop\" = decode + passes + conversion back, one thread; \"pass stage\" = the passes' part of it."
    ((quick)) || echo
    echo "| deflicker + color-match | GPU loop frames/s | GPU pass stage frames/s | GPU busy (nvidia-smi) | device time / wall (CUDA events) | CPU loop frames/s | CPU pass stage frames/s |"
    echo "|---|---|---|---|---|---|---|"
    for clip in "$h264" "$hevc"; do
        g=${pipe[$clip/gpu]} c=${pipe[$clip/cpu]}
        if [[ -n "$(val "$g" skipped)" || "$g" == FAILED:* ]]; then
            gl=$(cell "$g") gs="—" gb="—" ge="—"
        else
            gl=$(val "$g" fps) gs=$(val "$g" stage_fps) gb=${busy[$clip]} ge=$(val "$g" device_busy_of_wall)
        fi
        echo "| $(basename "$clip") | $gl | $gs | $gb | $ge | $(cell "$c") | $(val "$c" stage_fps) |"
    done
    echo
    echo "| encoder (own throughput, frames in memory) | frames/s |"
    echo "|---|---|"
    for clip in "$h264" "$hevc"; do
        for e in $encoders; do
            echo "| $e, $(basename "$clip") | $(cell "${enc[$clip/$e]}") |"
        done
    done
} >"$report"
cat "$report"
if [[ -n "${OUT:-}" ]]; then
    mkdir -p "$OUT"
    cp "$report" "$OUT/gpu-bench.md"
    cp "$raw" "$OUT/gpu-bench-raw.txt"
fi
