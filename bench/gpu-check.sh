#!/usr/bin/env bash
# gpu-check.sh - everything issue 6 still needs from a machine with an NVIDIA GPU, in one call.
#
#   bench/gpu-check.sh            (from the repository root; OUT=DIR to collect the results)
#
# 1. builds what it runs (cmake --preset default, when build/ has no configured tree, then only
#    the targets below), and records nvidia-smi and the CUDA probe;
# 2. runs the ctests labelled gpu (worker/test_gpu: the probe and self-test kernel;
#    worker/test_gpu_passes: every CUDA pass, the colour conversion and the frame ring against the
#    CPU reference within docs/passes.md's tolerances) and the tests whose device branch only a
#    GPU machine takes (media/test_decode_mode: NVDEC frames equal the CPU decoder's;
#    worker/test_slot: a chunk on a GPU slot within one code of the same chunk on a CPU slot;
#    worker/test_cudaemu: the emulated device, as a control); the ONNX executor's GPU backend is in
#    the gpu label too (worker/test_nn_gpu: every fixture of tests/fixtures/nn on the device, own
#    kernels or cuDNN, CUDA graphs, against the CPU reference), with worker/test_nn_cudaemu (the
#    same on the emulated device) as its control;
# 3. runs bench/gpu-bench.sh (full size: H.264 1080p and HEVC 4K) and bench/nn-bench.sh (the
#    executor's ms per frame, cuDNN and own kernels, fp16 and fp32, against PyTorch on the same
#    card when torch imports).
# Writes to $OUT (default build/gpu-check): summary.txt, nvidia-smi.txt, ctest-*.txt,
# gpu-bench.md (the section for docs/PERFORMANCE.md), gpu-bench-raw.txt, bench-stderr.txt,
# nn-bench.md, nn-bench-raw.txt, nn-bench-stderr.txt.
# Exits 1 when a test failed (the benchmark still runs), 0 otherwise. Takes about 5 minutes on a
# 16-core H100/H200 node from a configured build tree.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${OUT:-$root/build/gpu-check}
mkdir -p "$out"
summary="$out/summary.txt"
: >"$summary"
note() { echo "$*" | tee -a "$summary" >&2; }
jobs=$(nproc)

note "gpu-check: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n), $jobs cores"
have_gpu=0
if nvidia-smi >"$out/nvidia-smi.txt" 2>&1; then
    have_gpu=1
    note "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader -i 0)"
else
    note "GPU: none (nvidia-smi: $(head -1 "$out/nvidia-smi.txt")); GPU tests will skip"
fi

targets=(worker_test_gpu worker_test_gpu_passes worker_test_cudaemu worker_test_slot
         media_test_decode_mode reelfarm-gpu-bench worker_test_nn_gpu worker_test_nn_cudaemu
         reelfarm-nn-bench)
if [[ ! -f build/CMakeCache.txt ]]; then
    cmake --preset default >"$out/cmake.txt" 2>&1 || { note "cmake failed (see cmake.txt)"; exit 1; }
fi
cuda=$(sed -n 's/^CMAKE_CUDA_COMPILER:[A-Z]*=//p' build/CMakeCache.txt)
note "CUDA in the build: ${cuda:-no (nvcc not found: every GPU test will skip)}"
if ! cmake --build build -j"$jobs" --target "${targets[@]}" >"$out/build.txt" 2>&1; then
    note "build failed (see build.txt):"
    tail -20 "$out/build.txt" >&2
    exit 1
fi

failed=0
ctest --test-dir build -L gpu --output-on-failure -V >"$out/ctest-gpu.txt" 2>&1 || failed=1
note "ctest -L gpu: $(grep -E 'tests passed|tests failed' "$out/ctest-gpu.txt" | tail -1)"
grep -E "^[0-9]+: (device|[a-z-]+ +[0-9]+x[0-9]+|[a-z0-9]+ +to RGB|stage, ring|.* cases on the GPU backend|FAIL |residual )" "$out/ctest-gpu.txt" \
    | sed 's/^[0-9]*: /  /' | tee -a "$summary" >&2
grep -E "Skipped|\*\*\*Failed" "$out/ctest-gpu.txt" | sed 's/^/  /' | tee -a "$summary" >&2
if ((have_gpu)) && grep -q "Skipped" "$out/ctest-gpu.txt"; then
    note "FAILED: a gpu test skipped on a machine where nvidia-smi sees a GPU"
    failed=1
fi
ctest --test-dir build -R 'media/test_decode_mode|worker/test_cudaemu|worker/test_slot|worker/test_nn_cudaemu' \
    --output-on-failure -V >"$out/ctest-related.txt" 2>&1 || failed=1
note "decode mode, emulation, slot: $(grep -E 'tests passed|tests failed' "$out/ctest-related.txt" | tail -1)"
grep -E "frames, (NVDEC|CPU)|why not NVDEC|GPU slot vs CPU slot|cases on the GPU backend" "$out/ctest-related.txt" \
    | sed 's/^[0-9]*: /  /' | tee -a "$summary" >&2

OUT="$out" bench/gpu-bench.sh >"$out/bench-stdout.md" 2>"$out/bench-stderr.txt" ||
    note "gpu-bench.sh failed (see bench-stderr.txt)"
note "benchmark: $out/gpu-bench.md"
OUT="$out" bench/nn-bench.sh >"$out/nn-bench-stdout.md" 2>"$out/nn-bench-stderr.txt" ||
    note "nn-bench.sh failed (see nn-bench-stderr.txt)"
grep -E "^\| " "$out/nn-bench-stdout.md" | tee -a "$summary" >&2
note "ONNX executor benchmark: $out/nn-bench.md"
exit "$failed"
