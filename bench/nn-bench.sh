#!/usr/bin/env bash
# nn-bench.sh - the ONNX executor's GPU backend against PyTorch on the same card (docs/models.md,
# "The GPU backend"; the research notes' anchor: SRVGG x4 at 960x540 and CycleGAN at 1080p).
#
#   bench/nn-bench.sh          (from the repository root, on a machine with an NVIDIA GPU)
#
# When python3 imports torch and onnx there, bench/nn-bench.py exports SRVGGNetCompact x4 and the
# CycleGAN ResNet generator (random weights) and times PyTorch (fp16, channels_last,
# cudnn.benchmark); then reelfarm-nn-bench times our executor on the same ONNX files and shapes:
# cuDNN (fp16 in NHWC with padded channels, the default, and in NCHW) and our own kernels, fp16 and
# fp32 (host copies through the plan's pinned buffers included, CUDA graph replay). Without torch
# it times models/sr2x-compact.onnx at 960x540 alone. Prints a Markdown section; with OUT set,
# also writes it to $OUT/nn-bench.md and the raw outputs to $OUT/nn-bench-raw.txt.
#
# Environment:
#   RF_BIN          folder with reelfarm-nn-bench (default: <repo>/build/bin)
#   RF_BENCH_RUNS   timed runs per configuration (default 20)
#   RF_BENCH_DIR    scratch folder (default: mktemp -d, removed at the end)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${RF_BIN:-$root/build/bin}
bench="$bin/reelfarm-nn-bench"
[[ -x "$bench" ]] || { echo "nn-bench: $bench not found (build the reelfarm-nn-bench target)" >&2; exit 2; }
runs=${RF_BENCH_RUNS:-20}
dir=${RF_BENCH_DIR:-}
if [[ -z "$dir" ]]; then
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
fi
raw="$dir/raw.txt"
: >"$raw"
export RF_NN_CACHE_DIR="$dir"

cases=()
if python3 "$root/bench/nn-bench.py" "$dir" "$runs" >"$dir/torch.txt" 2>"$dir/torch-stderr.txt"; then
    cat "$dir/torch.txt" >>"$raw"
else
    echo "nn-bench: PyTorch side skipped: $(tail -1 "$dir/torch-stderr.txt")" >&2
    cat "$dir/torch.txt" >>"$raw" 2>/dev/null || true
fi
while read -r key path n c h w; do
    cases+=("${key#onnx_}|$path|$n $c $h $w")
done < <(grep '^onnx_' "$dir/torch.txt" 2>/dev/null || true)
if ((${#cases[@]} == 0)); then
    cases=("sr2x-compact|$root/models/sr2x-compact.onnx|1 3 540 960")
fi

{
echo "## ONNX executor on the GPU ($(date -u +%Y-%m-%d), $(nvidia-smi --query-gpu=name --format=csv,noheader -i 0 2>/dev/null || echo 'no GPU'))"
echo
echo "| model | input | config | ms/frame | plan ms | PyTorch fp16 ms |"
echo "|---|---|---|---|---|---|"
for cs in "${cases[@]}"; do
    IFS='|' read -r name path shape <<<"$cs"
    torch_ms=$(sed -n "s/^torch_${name}_ms: //p" "$dir/torch.txt" 2>/dev/null || true)
    # shellcheck disable=SC2086
    "$bench" "$path" $shape "$runs" >"$dir/$name.txt" 2>"$dir/$name-stderr.txt" || true
    { echo "== $name"; cat "$dir/$name.txt" "$dir/$name-stderr.txt"; } >>"$raw"
    awk -v name="$name" -v shape="${shape// /x}" -v torch="${torch_ms:--}" '
        /^config: / { cfg = $2 }
        /^plan_ms: / { plan = $2 }
        /^ms_per_frame: / { printf "| %s | %s | %s | %s | %s | %s |\n", name, shape, cfg, $2, plan, torch }
        /: error: / { sub(/: error: /, " | "); printf "| %s | %s | %s | - | %s |\n", name, shape, $0, torch }
    ' "$dir/$name.txt"
done
} | tee "$dir/table.md"
if [[ -n "${OUT:-}" ]]; then
    mkdir -p "$OUT"
    cp "$dir/table.md" "$OUT/nn-bench.md"
    cp "$raw" "$OUT/nn-bench-raw.txt"
fi
