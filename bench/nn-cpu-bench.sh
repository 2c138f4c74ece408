#!/usr/bin/env bash
# nn-cpu-bench.sh - the ONNX executor's CPU backend (the reference the GPU backend is tested
# against, and what CPU-only workers run) against PyTorch on the CPU of the same machine, same
# run: SRVGGNetCompact x4 (64 features, 16 convs, PReLU) and the CycleGAN ResNet generator (ngf 64,
# 9 blocks, reflect pads, InstanceNorm) with random weights, batch 1, fp32.
#
#   bench/nn-cpu-bench.sh          (from the repository root; needs Debian's python3-torch and
#                                   python3-onnx, and the reelfarm-nn-bench target built)
#
# bench/nn-bench.py (RF_BENCH_DEVICE=cpu) exports both networks to ONNX and times PyTorch; then
# reelfarm-nn-bench times our CPU plan on the same ONNX file and shape, host copies included.
# Rounds alternate the two (PyTorch, then ours) so drift on a noisy machine hits both; the table
# gives each side's median over the rounds and the ratio ours / PyTorch (below 1: ours is faster).
#
# Environment:
#   RF_BIN               folder with reelfarm-nn-bench (default: <repo>/build/bin)
#   RF_BENCH_ROUNDS      rounds (default 3)
#   RF_BENCH_RUNS        timed passes per side per round (default 3)
#   RF_BENCH_THREADS     threads for both sides (default: the machine's cores; OpenBLAS and torch)
#   RF_BENCH_SRVGG_HW, RF_BENCH_CYCLEGAN_HW   input "H W" (default "135 240", "256 256")
#   OUT                  also write the table to $OUT/nn-cpu-bench.md, raw outputs beside it
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${RF_BIN:-$root/build/bin}
bench="$bin/reelfarm-nn-bench"
[[ -x "$bench" ]] || { echo "nn-cpu-bench: $bench not found (build the reelfarm-nn-bench target)" >&2; exit 2; }
py=/usr/bin/python3 # Debian's, where python3-torch lives
[[ -x "$py" ]] || py=python3
rounds=${RF_BENCH_ROUNDS:-3}
runs=${RF_BENCH_RUNS:-3}
threads=${RF_BENCH_THREADS:-$(nproc)}
export RF_BENCH_DEVICE=cpu RF_BENCH_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
raw="$dir/raw.txt"
: >"$raw"

for ((r = 1; r <= rounds; r++)); do
    "$py" "$root/bench/nn-bench.py" "$dir" "$runs" >"$dir/torch.txt" 2>"$dir/torch-stderr.txt" ||
        { echo "nn-cpu-bench: PyTorch side failed: $(tail -1 "$dir/torch-stderr.txt")" >&2; exit 2; }
    { echo "== round $r: torch"; cat "$dir/torch.txt"; } >>"$raw"
    while read -r key path n c h w; do
        name=${key#onnx_}
        name=${name%:}
        sed -n "s/^torch_${name}_ms: //p" "$dir/torch.txt" >>"$dir/$name.torch"
        "$bench" "$path" "$n" "$c" "$h" "$w" "$runs" cpu >"$dir/$name.out" 2>&1 ||
            { echo "nn-cpu-bench: reelfarm-nn-bench failed on $name" >&2; cat "$dir/$name.out" >&2; exit 1; }
        { echo "== round $r: ours $name"; cat "$dir/$name.out"; } >>"$raw"
        sed -n 's/^ms_per_frame: //p' "$dir/$name.out" >>"$dir/$name.ours"
        echo "${h}x${w}" >"$dir/$name.shape"
    done < <(grep '^onnx_' "$dir/torch.txt")
done

median() { sort -g "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
{
echo "## ONNX executor on the CPU vs PyTorch ($(date -u +%Y-%m-%d), $(nproc) cores, $threads threads each, $(sed -n 's/^torch_version: //p' "$dir/torch.txt" | head -1))"
echo
echo "| model | input | ours ms/frame | PyTorch ms/frame | ours / PyTorch |"
echo "|---|---|---|---|---|"
for name in srvgg-x4 cyclegan; do
    [[ -f "$dir/$name.ours" ]] || continue
    o=$(median "$dir/$name.ours")
    t=$(median "$dir/$name.torch")
    awk -v n="$name" -v s="$(cat "$dir/$name.shape")" -v o="$o" -v t="$t" \
        'BEGIN { printf "| %s | %s | %.1f | %.1f | %.2f |\n", n, s, o, t, o / t }'
done
echo
echo "Medians of $rounds alternating rounds, $runs timed passes per side per round."
} | tee "$dir/table.md"
if [[ -n "${OUT:-}" ]]; then
    mkdir -p "$OUT"
    cp "$dir/table.md" "$OUT/nn-cpu-bench.md"
    cp "$raw" "$OUT/nn-cpu-bench-raw.txt"
fi
