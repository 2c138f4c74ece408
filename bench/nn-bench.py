#!/usr/bin/python3
"""nn-bench.py - the PyTorch side of bench/nn-bench.sh (docs/models.md, "The GPU backend").

    python3 bench/nn-bench.py OUTDIR [RUNS]

Exports the two reference networks of the GPU research notes with random weights (fixed seed) to
OUTDIR as ONNX (opset 13, dynamic height and width): SRVGGNetCompact x4 (64 features, 16 convs,
PReLU, PixelShuffle, nearest x4 residual) as srvgg-x4.onnx and the CycleGAN ResNet generator
(ngf 64, 9 blocks, reflection pads, InstanceNorm) as cyclegan.onnx. Then times PyTorch on the GPU
the way the notes' anchor did (fp16, channels_last, cudnn.benchmark, batch 1; CUDA events around
RUNS forward passes after 5 warm-up passes; input already on the device) and prints
"torch_<model>_ms: X" lines. Exits 2 when torch, onnx or a CUDA device is missing.

With RF_BENCH_DEVICE=cpu (bench/nn-cpu-bench.sh) it exports the same networks for the CPU shapes
RF_BENCH_SRVGG_HW and RF_BENCH_CYCLEGAN_HW ("H W"; default 135 240 and 256 256) and times PyTorch
on the CPU instead: fp32, RF_BENCH_THREADS threads (default: the machine's cores), one warm-up
pass, then RUNS timed passes.
"""
import os
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import onnx  # noqa: F401  (torch.onnx.export needs it)
except ImportError as e:
    print(f"nn-bench.py: {e}", file=sys.stderr)
    sys.exit(2)


class SRVGG(nn.Module):
    def __init__(self, nf=64, nc=16, scale=4):
        super().__init__()
        self.scale = scale
        layers = [nn.Conv2d(3, nf, 3, 1, 1), nn.PReLU(nf)]
        for _ in range(nc):
            layers += [nn.Conv2d(nf, nf, 3, 1, 1), nn.PReLU(nf)]
        layers += [nn.Conv2d(nf, 3 * scale * scale, 3, 1, 1), nn.PixelShuffle(scale)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x) + F.interpolate(x, scale_factor=self.scale, mode="nearest")


class ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.b = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.InstanceNorm2d(c), nn.ReLU(True),
                               nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.InstanceNorm2d(c))

    def forward(self, x):
        return x + self.b(x)


class CycleGAN(nn.Module):
    def __init__(self, ngf=64, nb=9):
        super().__init__()
        m = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
        for i in range(2):
            c = ngf * 2**i
            m += [nn.Conv2d(c, 2 * c, 3, 2, 1), nn.InstanceNorm2d(2 * c), nn.ReLU(True)]
        m += [ResBlock(ngf * 4) for _ in range(nb)]
        for i in range(2):
            c = ngf * 2**(2 - i)
            m += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(c // 2),
                  nn.ReLU(True)]
        m += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.m = nn.Sequential(*m)

    def forward(self, x):
        return self.m(x)


def export(model, path, h, w):
    x = torch.rand(1, 3, h, w)
    kw = dict(opset_version=13, input_names=["input"], output_names=["output"],
              dynamic_axes={"input": {2: "h", 3: "w"}, "output": {2: "oh", 3: "ow"}})
    try:  # the TorchScript exporter (torch >= 2.9 defaults to dynamo, which emits newer opsets)
        torch.onnx.export(model, x, path, dynamo=False, **kw)
    except TypeError:
        torch.onnx.export(model, x, path, **kw)


def time_torch(model, h, w, runs):
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    m = model.to(dev).half().to(memory_format=torch.channels_last).eval()
    x = torch.rand(1, 3, h, w, device=dev).half().to(memory_format=torch.channels_last)
    with torch.no_grad():
        for _ in range(5):
            m(x)
        torch.cuda.synchronize()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(runs):
            m(x)
        b.record()
        torch.cuda.synchronize()
    return a.elapsed_time(b) / runs


def time_torch_cpu(model, h, w, runs, threads):
    torch.set_num_threads(threads)
    m = model.eval()
    x = torch.rand(1, 3, h, w)
    with torch.no_grad():
        m(x)
        t = time.perf_counter()
        for _ in range(runs):
            m(x)
    return (time.perf_counter() - t) * 1000.0 / runs


def hw(var, default):
    h, w = os.environ.get(var, default).split()
    return int(h), int(w)


def main():
    out = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    cpu = os.environ.get("RF_BENCH_DEVICE") == "cpu"
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    if cpu:
        cases = [("srvgg-x4", SRVGG()) + hw("RF_BENCH_SRVGG_HW", "135 240"),
                 ("cyclegan", CycleGAN()) + hw("RF_BENCH_CYCLEGAN_HW", "256 256")]
    else:
        cases = [("srvgg-x4", SRVGG(), 540, 960), ("cyclegan", CycleGAN(), 1080, 1920)]
    for name, model, h, w in cases:
        model.eval()
        export(model, os.path.join(out, name + ".onnx"), 64, 64)
        print(f"onnx_{name}: {os.path.join(out, name + '.onnx')} 1 3 {h} {w}", flush=True)
    if cpu:
        threads = int(os.environ.get("RF_BENCH_THREADS", os.cpu_count() or 1))
        print(f"torch_version: {torch.__version__}")
        print(f"torch_device: cpu, {threads} threads")
        for name, model, h, w in cases:
            print(f"torch_{name}_ms: {time_torch_cpu(model, h, w, runs, threads):.3f}", flush=True)
        return
    if not torch.cuda.is_available():
        print("nn-bench.py: no CUDA device for torch", file=sys.stderr)
        sys.exit(2)
    print(f"torch_version: {torch.__version__}")
    print(f"torch_device: {torch.cuda.get_device_name(0)}")
    for name, model, h, w in cases:
        print(f"torch_{name}_ms: {time_torch(model, h, w, runs):.3f}", flush=True)


if __name__ == "__main__":
    main()
