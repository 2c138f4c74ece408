#!/usr/bin/python3
"""train-sr2x.py - trains and exports models/sr2x-compact.onnx, reelfarm's shipped 2x upscaler.

A small SRVGGNetCompact (Real-ESRGAN's compact architecture: 3x3 convs + PReLU, PixelShuffle,
plus a nearest-upsampled copy of the input) trained on frames the project makes itself with
libavfilter's test sources (ffmpeg -f lavfi), never downloaded. The low-resolution side of every
pair is made the way a real 2x job sees it: the high-resolution frame downscaled by swscale
(bicubic, which filters on downscale) and quantised to 8-bit RGB.

    nice /usr/bin/python3 models/train-sr2x.py [--steps N] [--out models/sr2x-compact.onnx]

Needs Debian 12's python3-torch, python3-onnx and ffmpeg. Deterministic for a given torch build
(fixed seeds, 2 threads). On the 2-core dev machine the default run takes about 8 minutes; it
prints the held-out evaluation (PSNR vs swscale bicubic and Lanczos) that the model card quotes.
"""

import argparse
import io
import os
import subprocess
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

HR_W, HR_H = 384, 288
OPS = {
    "Conv", "ConvTranspose", "BatchNormalization", "InstanceNormalization", "Relu", "LeakyRelu",
    "PRelu", "Sigmoid", "Tanh", "Clip", "Add", "Sub", "Mul", "Div", "Concat", "Pad", "Resize",
    "DepthToSpace", "SpaceToDepth", "Constant", "Identity",
}

# (name, lavfi source, seconds to skip, frames, keep one frame in N). Training and held-out frames
# come from disjoint time ranges; the last two sources are held out entirely.
# Pixel-level generators (life, cellauto, sierpinski) are drawn at a quarter or half of the size and
# enlarged with nearest neighbour: at full size their 1-pixel cells vanish in the 2x downscale and
# cannot be recovered by any upscaler, so they would only teach the model noise.
BIG = f"scale={HR_W}:{HR_H}"
TRAIN = [
    ("testsrc2", f"testsrc2=s={HR_W}x{HR_H}:r=25", 0, 40, 5),
    ("mandelbrot", f"mandelbrot=s={HR_W // 2}x{HR_H // 2}:r=25,{BIG}:flags=lanczos", 0, 30, 8),
    ("cellauto", f"cellauto=s={HR_W // 4}x{HR_H // 4}:r=25:rule=110:random_seed=7,{BIG}:flags=neighbor", 0, 20, 9),
    ("life", f"life=s={HR_W // 4}x{HR_H // 4}:r=25:mold=10:ratio=0.2:random_seed=3:life_color=#e0c020:"
             f"death_color=#2040a0:mold_color=#208040,{BIG}:flags=neighbor", 0, 30, 4),
    ("gradients", f"gradients=s={HR_W}x{HR_H}:r=25:speed=0.05:nb_colors=6:seed=11", 0, 20, 10),
    ("rgbtestsrc", f"rgbtestsrc=s={HR_W}x{HR_H}:r=25", 0, 2, 1),
    ("yuvtestsrc", f"yuvtestsrc=s={HR_W}x{HR_H}:r=25", 0, 2, 1),
    ("smptehdbars", f"smptehdbars=s={HR_W}x{HR_H}:r=25", 0, 2, 1),
]
HELD_OUT = [
    ("testsrc2", f"testsrc2=s={HR_W}x{HR_H}:r=25", 120, 4, 25),
    ("mandelbrot", f"mandelbrot=s={HR_W // 2}x{HR_H // 2}:r=25,{BIG}:flags=lanczos", 60, 4, 25),
    ("life", f"life=s={HR_W // 4}x{HR_H // 4}:r=25:mold=10:ratio=0.2:random_seed=99:life_color=#e0c020:"
             f"death_color=#2040a0:mold_color=#208040,{BIG}:flags=neighbor", 0, 4, 7),
    ("sierpinski*", f"sierpinski=s={HR_W // 2}x{HR_H // 2}:r=25:seed=5,{BIG}:flags=neighbor", 0, 4, 13),
    ("colorchart*", "colorchart=patch_size=48x48:preset=reference:r=25", 0, 1, 1),
]


def ffmpeg_frames(src, skip, frames, every, scale=None):
    """Frames of a lavfi source as uint8 HxWx3 arrays (optionally downscaled by swscale)."""
    vf = f"select=not(mod(n\\,{every}))"
    if scale:
        vf += f",scale={scale}"
    cmd = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", src, "-ss", str(skip), "-vf", vf,
           "-frames:v", str(frames), "-vsync", "0", "-pix_fmt", "rgb24", "-f", "rawvideo", "-"]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    return raw


def pairs(src, skip, frames, every):
    """(HR, LR) frame pairs: LR is HR downscaled 2x by swscale's bicubic."""
    hr = np.frombuffer(ffmpeg_frames(src, skip, frames, every), np.uint8)
    w, h = None, None
    # colorchart picks its own size; find it from the byte count by asking ffprobe-free: HR_W x HR_H
    # unless the source sets the size itself.
    if "colorchart" in src:
        w, h = 48 * 6, 48 * 4
    else:
        w, h = HR_W, HR_H
    hr = hr.reshape(-1, h, w, 3)
    lr = np.frombuffer(ffmpeg_frames(src, skip, frames, every,
                                     scale=f"{w // 2}:{h // 2}:flags=bicubic"), np.uint8)
    lr = lr.reshape(-1, h // 2, w // 2, 3)
    n = min(len(hr), len(lr))
    return hr[:n], lr[:n]


def upscale_ffmpeg(lr, flags):
    """Baseline: swscale's 2x upscale of LR frames (uint8 NxHxWx3) with the given flags."""
    n, h, w, _ = lr.shape
    cmd = ["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-i", "-",
           "-vf", f"scale={2 * w}:{2 * h}:flags={flags}", "-pix_fmt", "rgb24", "-f", "rawvideo", "-"]
    out = subprocess.run(cmd, input=lr.tobytes(), check=True, capture_output=True).stdout
    return np.frombuffer(out, np.uint8).reshape(n, 2 * h, 2 * w, 3)


class SR2x(nn.Module):
    """SRVGGNetCompact (realesrgan/archs/srvgg_arch.py), PReLU, x2."""

    def __init__(self, num_feat=24, num_conv=4):
        super().__init__()
        layers = [nn.Conv2d(3, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        layers += [nn.Conv2d(num_feat, 3 * 4, 3, 1, 1)]
        self.body = nn.Sequential(*layers)
        self.up = nn.PixelShuffle(2)

    def forward(self, x):
        return self.up(self.body(x)) + F.interpolate(x, scale_factor=2, mode="nearest")


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(1.0 / mse)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=32, help="LR patch size")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "sr2x-compact.onnx"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(20261127)
    rng = np.random.default_rng(20261127)
    t0 = time.time()

    hr_all, lr_all = [], []
    for name, src, skip, frames, every in TRAIN:
        hr, lr = pairs(src, skip, frames, every)
        hr_all += list(hr)
        lr_all += list(lr)
    print(f"data: {len(hr_all)} training frames from {len(TRAIN)} lavfi sources ({time.time() - t0:.0f} s)",
          flush=True)

    model = SR2x()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps, eta_min=1e-5)
    p = args.patch
    for step in range(1, args.steps + 1):
        xs, ys = [], []
        for _ in range(args.batch):
            i = rng.integers(len(hr_all))
            lr, hr = lr_all[i], hr_all[i]
            y0 = rng.integers(lr.shape[0] - p + 1)
            x0 = rng.integers(lr.shape[1] - p + 1)
            a = lr[y0:y0 + p, x0:x0 + p]
            b = hr[2 * y0:2 * (y0 + p), 2 * x0:2 * (x0 + p)]
            k = rng.integers(8)  # flips and transposes
            if k & 1:
                a, b = a[:, ::-1], b[:, ::-1]
            if k & 2:
                a, b = a[::-1], b[::-1]
            if k & 4:
                a, b = a.transpose(1, 0, 2), b.transpose(1, 0, 2)
            xs.append(np.ascontiguousarray(a))
            ys.append(np.ascontiguousarray(b))
        x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 255
        y = torch.from_numpy(np.stack(ys)).permute(0, 3, 1, 2).float() / 255
        loss = F.l1_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0:
            print(f"step {step}/{args.steps} l1 {loss.item():.4f} ({time.time() - t0:.0f} s)", flush=True)

    model.eval()
    print("held-out PSNR (RGB, 8-bit, dB): source | model | bicubic | lanczos")
    tot = {"model": [], "bicubic": [], "lanczos": []}
    for name, src, skip, frames, every in HELD_OUT:
        hr, lr = pairs(src, skip, frames, every)
        with torch.no_grad():
            x = torch.from_numpy(lr.copy()).permute(0, 3, 1, 2).float() / 255
            out = model(x).clamp(0, 1).permute(0, 2, 3, 1).numpy()
        out8 = np.round(out * 255) / 255
        ref = hr / 255.0
        row = {"model": psnr(out8, ref),
               "bicubic": psnr(upscale_ffmpeg(lr, "bicubic") / 255.0, ref),
               "lanczos": psnr(upscale_ffmpeg(lr, "lanczos") / 255.0, ref)}
        for k in row:
            tot[k].append(row[k])
        print(f"  {name:12s} | {row['model']:.2f} | {row['bicubic']:.2f} | {row['lanczos']:.2f}")
    print(f"  {'mean':12s} | {np.mean(tot['model']):.2f} | {np.mean(tot['bicubic']):.2f} | "
          f"{np.mean(tot['lanczos']):.2f}")

    # Export: opset 13, height and width left symbolic (the worker plans for each frame size).
    buf = io.BytesIO()
    dummy = torch.rand(1, 3, 36, 48)
    torch.onnx.export(model, dummy, buf, opset_version=13, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {2: "height", 3: "width"}, "output": {2: "height2", 3: "width2"}},
                      do_constant_folding=True)
    m = onnx.load_from_string(buf.getvalue())
    m.producer_name = "reelfarm models/train-sr2x.py"
    m.doc_string = ("2x upscaler for RGB frames in [0,1] (NCHW float32); SRVGGNetCompact 24 features, "
                    "4 convs, PReLU; trained on libavfilter test sources. See models/sr2x-compact.md.")
    onnx.checker.check_model(m, full_check=True)
    ops = {nd.op_type for nd in m.graph.node}
    if not ops <= OPS:
        sys.exit(f"export uses ops outside the executor's set: {sorted(ops - OPS)}")
    with open(args.out, "wb") as f:
        f.write(m.SerializeToString())
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes, ops {sorted(ops)}) in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
