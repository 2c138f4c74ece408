#!/usr/bin/env bash
# render-vs-ffmpeg.sh - wall-clock time of `reelfarm render` against a single ffmpeg encode.
#
# For one input and the same encoder settings it times
#   (a) ffmpeg -i in.mp4 ... -c:v CODEC ... -c:a copy    the baseline everybody knows,
#   (b) reelfarm render JOB.yaml --workers 1             the whole farm path with one worker,
#   (c) reelfarm render JOB.yaml --workers N             N = nproc workers,
# for libx264 (crf 20, veryfast) and for ffv1 (lossless). ffv1 encodes cheaply, so its (b) - (a)
# is mostly what chunking costs: planning, slicing, shipping chunks over loopback ZeroMQ, the
# coordinator's verification decode and the stitch.
#
# Runs are interleaved, round after round (x264 a,b,c then ffv1 a,b,c, R times), so a noisy
# neighbour or a thermal dip spreads over all cases instead of landing on one; we report medians
# and ratios against (a) measured in the same run, never a lone absolute time.
# Timing is plain `date +%s.%N` around each command, not hyperfine: hyperfine runs one command's
# repetitions back to back and cannot interleave different commands, which is the point here.
#
# Every output is checked before its time counts: the video packet count (ffprobe -count_packets)
# and audio packet count must equal the input's, and each reelfarm output must decode without an
# error, so a fast but broken render can never look like a win.
#
# Prints a Markdown section ready to paste into docs/PERFORMANCE.md; progress goes to stderr.
#
# Environment:
#   RF_BIN            folder with the reelfarm binary            (default: <repo>/build/bin)
#   RF_BENCH_RUNS     repetitions per case, R                    (default: 3)
#   RF_BENCH_WORKERS  workers for case (c), N                    (default: nproc)
#   RF_BENCH_SIZE     clip size when the clip is generated      (default: 1280x720)
#   RF_BENCH_SECONDS  clip length in seconds                     (default: 20)
#   RF_BENCH_INPUT    use this clip instead of generating one
#   RF_BENCH_DIR      scratch folder (default: a fresh mktemp -d, removed at the end)
#   RF_BENCH_KEEP=1   keep the scratch folder (outputs and logs) for inspection
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${RF_BIN:-$root/build/bin}
runs=${RF_BENCH_RUNS:-3}
workers=${RF_BENCH_WORKERS:-$(nproc)}
size=${RF_BENCH_SIZE:-1280x720}
seconds=${RF_BENCH_SECONDS:-20}
reelfarm="$bin/reelfarm"

die() { echo "render-vs-ffmpeg: $*" >&2; exit 1; }
note() { echo "render-vs-ffmpeg: $*" >&2; }

[[ -x "$reelfarm" ]] || die "no reelfarm binary at '$reelfarm' (build first, or set RF_BIN)"
for tool in ffmpeg ffprobe awk; do
    command -v "$tool" >/dev/null || die "'$tool' is not installed"
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "RF_BENCH_RUNS: expected a positive integer, got '$runs'"
[[ "$workers" =~ ^[1-9][0-9]*$ ]] || die "RF_BENCH_WORKERS: expected a positive integer, got '$workers'"

if [[ -n "${RF_BENCH_DIR:-}" ]]; then
    work=$RF_BENCH_DIR
    mkdir -p "$work"
else
    work=$(mktemp -d /tmp/rf-bench.XXXXXX)
    [[ "${RF_BENCH_KEEP:-0}" == 1 ]] || trap 'rm -rf "$work"' EXIT
fi
log="$work/bench.log"
: >"$log"

# ---- input --------------------------------------------------------------------------------------
if [[ -n "${RF_BENCH_INPUT:-}" ]]; then
    [[ -s "$RF_BENCH_INPUT" ]] || die "RF_BENCH_INPUT '$RF_BENCH_INPUT' does not exist or is empty"
    input=$(cd "$(dirname "$RF_BENCH_INPUT")" && pwd)/$(basename "$RF_BENCH_INPUT")
else
    note "making a ${size} ${seconds} s clip in '$work'"
    input=$("$root/bench/make-bench-clip" "$work/in.mp4" "$size" "$seconds")
fi

# count_packets STREAM FILE: packets of the first STREAM (v or a) stream, read without decoding.
count_packets() {
    ffprobe -v error -count_packets -select_streams "$1:0" -show_entries stream=nb_read_packets \
        -of csv=p=0 "$2" | head -n1
}
in_frames=$(count_packets v "$input")
in_audio=$(count_packets a "$input")
[[ "$in_frames" =~ ^[0-9]+$ && "$in_frames" -gt 0 ]] || die "cannot count the input's video packets"
[[ "$in_audio" =~ ^[0-9]+$ && "$in_audio" -gt 0 ]] || die "the input needs an audio stream (-map 0:a)"
in_desc=$(ffprobe -v error -select_streams v:0 \
    -show_entries stream=codec_name,width,height,avg_frame_rate -of csv=p=0 "$input")

# ---- cases --------------------------------------------------------------------------------------
# A case is "codec:kind" with kind a (ffmpeg), b (reelfarm, 1 worker), c (reelfarm, N workers).
codecs=(x264 ffv1)
kinds=(a b c)
declare -A cmdline times

enc_args() { # the encoder settings shared by ffmpeg and the job spec
    case "$1" in
        x264) echo "-c:v libx264 -crf 20 -preset veryfast" ;;
        ffv1) echo "-c:v ffv1" ;;
    esac
}
spec_encode() {
    case "$1" in
        x264) echo "{codec: libx264, crf: 20, preset: veryfast}" ;;
        ffv1) echo "{codec: ffv1}" ;;
    esac
}
ffmpeg_out() { case "$1" in x264) echo "$work/ffmpeg-x264.mp4" ;; ffv1) echo "$work/ffmpeg-ffv1.mkv" ;; esac; }
nworkers() { case "$1" in b) echo 1 ;; c) echo "$workers" ;; esac; }

for codec in "${codecs[@]}"; do
    for kind in b c; do
        n=$(nworkers "$kind")
        cat >"$work/job-$codec-$kind.yaml" <<SPEC
version: 1
name: bench-$codec-$n
input: $input
output: out-$codec-$kind.mkv
chunking: {target_seconds: 4, max_seconds: 8}
encode: $(spec_encode "$codec")
SPEC
        cmdline[$codec:$kind]="reelfarm render job-$codec-$kind.yaml --workers $n --quiet"
    done
    cmdline[$codec:a]="ffmpeg -i in.mp4 -map 0:v -map 0:a $(enc_args "$codec") -c:a copy $(basename "$(ffmpeg_out "$codec")")"
done

# run_case CODEC KIND: runs one case, prints its wall-clock seconds and its output's size in bytes.
# Runs in a command substitution: its die() ends the subshell and set -e then ends the script.
run_case() {
    local codec=$1 kind=$2 out start end
    if [[ "$kind" == a ]]; then
        out=$(ffmpeg_out "$codec")
    else
        out="$work/out-$codec-$kind.mkv"
    fi
    rm -f "$out" # a stale file must never pass the checks below
    start=$(date +%s.%N)
    if [[ "$kind" == a ]]; then
        # shellcheck disable=SC2046 # enc_args is meant to split into words
        ffmpeg -nostdin -hide_banner -y -i "$input" -map 0:v -map 0:a $(enc_args "$codec") \
            -c:a copy "$out" >>"$log" 2>&1 || die "ffmpeg $codec failed (see $log)"
    else
        "$reelfarm" render "$work/job-$codec-$kind.yaml" --workers "$(nworkers "$kind")" --quiet \
            >"$work/stdout" 2>>"$log" || die "reelfarm $codec --workers $(nworkers "$kind") failed (see $log)"
    fi
    end=$(date +%s.%N)
    verify "$codec:$kind" "$out"
    awk -v s="$start" -v e="$end" -v b="$(stat -c %s "$out")" 'BEGIN { printf "%.3f %d", e - s, b }'
}

# verify CASE FILE: same frame and audio packet counts as the input; reelfarm outputs must decode.
verify() {
    local name=$1 out=$2 frames audio
    [[ -s "$out" ]] || die "$name: no output at '$out'"
    if [[ "$name" != *:a ]]; then
        [[ "$(cat "$work/stdout")" == "$out" ]] || die "$name: printed '$(cat "$work/stdout")', expected '$out'"
    fi
    frames=$(count_packets v "$out")
    audio=$(count_packets a "$out")
    [[ "$frames" == "$in_frames" ]] || die "$name: $frames video frames, the input has $in_frames"
    [[ "$audio" == "$in_audio" ]] || die "$name: $audio audio packets, the input has $in_audio"
    if [[ "$name" != *:a ]]; then
        local errors
        errors=$(ffmpeg -nostdin -v error -xerror -i "$out" -map 0:v:0 -f null - 2>&1) ||
            die "$name: '$out' does not decode: $errors"
        [[ -z "$errors" ]] || die "$name: decoding '$out' reported: $errors"
    fi
}
declare -A sizes

for ((r = 1; r <= runs; r++)); do
    for codec in "${codecs[@]}"; do
        for kind in "${kinds[@]}"; do
            result=$(run_case "$codec" "$kind") # a plain assignment, so set -e sees a failure
            read -r t bytes <<<"$result"
            sizes[$codec:$kind]=$bytes
            times[$codec:$kind]="${times[$codec:$kind]:-} $t"
            note "round $r/$runs $codec $kind: ${t} s"
        done
    done
done

# ---- report -------------------------------------------------------------------------------------
median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END {
    if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
range() { tr ' ' '\n' | awk 'NF' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f–%.2f", lo, hi }'; }
ratio() { awk -v x="$1" -v y="$2" 'BEGIN { printf "%.2f×", x / y }'; }

cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
ffver=$(ffmpeg -hide_banner -version | awk 'NR == 1 { print $3 }')
rfver=$("$reelfarm" version 2>/dev/null | head -n1 || true)

echo "### reelfarm render vs ffmpeg — $(date -u +%Y-%m-%d)"
echo
echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- Machine: $(nproc) cores (nproc), ${cpu:-unknown CPU}, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr)"
echo "- Software: ffmpeg $ffver, ${rfver:-reelfarm (version unknown)}"
echo "- Input: $in_desc (codec,width,height,fps), $in_frames frames, $in_audio AAC packets"
echo "- Method: $runs interleaved rounds (x264 a,b,c then ffv1 a,b,c), wall clock by \`date +%s.%N\`;" \
    "median of $runs, ratios against (a) from the same rounds; every output's frame and audio" \
    "packet counts checked, every reelfarm output fully decoded (outside the timed region)"
echo
echo "| Codec | Case | Median s | Min–max s | vs ffmpeg | Output MiB |"
echo "|---|---|---:|---:|---:|---:|"
for codec in "${codecs[@]}"; do
    base=$(median <<<"${times[$codec:a]}")
    for kind in "${kinds[@]}"; do
        m=$(median <<<"${times[$codec:$kind]}")
        case "$kind" in
            a) label="(a) ffmpeg, one process" ;;
            b) label="(b) reelfarm, 1 worker" ;;
            c) label="(c) reelfarm, $workers workers" ;;
        esac
        mib=$(awk -v b="${sizes[$codec:$kind]}" 'BEGIN { printf "%.1f", b / 1048576 }')
        echo "| $codec | $label | $m | $(range <<<"${times[$codec:$kind]}") | $(ratio "$m" "$base") | $mib |"
    done
done
echo
a=$(median <<<"${times[ffv1:a]}")
b=$(median <<<"${times[ffv1:b]}")
c=$(median <<<"${times[ffv1:c]}")
awk -v a="$a" -v b="$b" -v c="$c" -v f="$in_frames" -v n="$workers" 'BEGIN {
    printf "Chunk overhead (ffv1, where the encoder is cheap): reelfarm 1 worker − ffmpeg = %+.2f s" \
        " (%+.1f ms/frame); %d workers − ffmpeg = %+.2f s (%+.1f ms/frame).\n",
        b - a, (b - a) * 1000 / f, n, c - a, (c - a) * 1000 / f }'
echo
echo "Ratios: b/a x264 $(ratio "$(median <<<"${times[x264:b]}")" "$(median <<<"${times[x264:a]}")")," \
    "c/a x264 $(ratio "$(median <<<"${times[x264:c]}")" "$(median <<<"${times[x264:a]}")");" \
    "b/a ffv1 $(ratio "$b" "$a"), c/a ffv1 $(ratio "$c" "$a"). Below 1× means reelfarm was faster."
echo
echo "Commands (in the scratch folder; every job-CODEC-CASE.yaml has \`chunking: {target_seconds: 4, max_seconds: 8}\`):"
echo
echo '```'
for codec in "${codecs[@]}"; do
    echo "# $codec, job spec encode: $(spec_encode "$codec")"
    for kind in "${kinds[@]}"; do
        echo "${cmdline[$codec:$kind]}"
    done
done
echo '```'
