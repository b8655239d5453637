"""Training speed on the CPU: fp32 eager against the trainer's fast path, in one run.

For the lab model (nf 32, nb 3, gc 16) and the paper's 23-block model, one PSNR-stage step
(:func:`esrgan_lab.training.steps.psnr_step`: forward, L1, backward, Adam) is timed

* ``fp32 eager``: contiguous NCHW, no autocast (the reference);
* ``fast path``: what ``runtime: {amp: auto, channels_last: true}`` resolves to on this
  machine (:func:`esrgan_lab.training.runtime.resolve_amp`): bf16 autocast where the CPU
  computes bf16 natively (AVX512-BF16 / AMX), fp32 elsewhere, and channels_last;
* ``bf16 autocast`` alone where it is native (skipped, with the reason, where not).

It prints iterations per second and the ratio to fp32 eager, measured in this run, and
checks that the fast path's loss curve matches fp32 eager's over the same batches (same
init, same data) within noise. Results go to ``benchmarks/results/bench_training.json``.

Usage::

    python benchmarks/bench_training.py            # both models, batch 16 / 8, 128 px GT
    python benchmarks/bench_training.py --quick    # fewer steps
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from esrgan_lab.model.rrdbnet import RRDBNet  # noqa: E402
from esrgan_lab.settings import provenance  # noqa: E402
from esrgan_lab.training.runtime import autocast_context, native_bf16, resolve_amp  # noqa: E402
from esrgan_lab.training.steps import psnr_step  # noqa: E402

MODELS = {
    "lab (nf 32, nb 3)": dict(num_feat=32, num_block=3, num_grow_ch=16),
    "paper (nf 64, nb 23)": dict(num_feat=64, num_block=23, num_grow_ch=32),
}


def batches(n: int, batch: int, gt_size: int, seed: int = 0) -> list[tuple[torch.Tensor, ...]]:
    """Smooth random GT patches and their bicubic-ish LQ (area downscale): a stand-in for
    real patches with the same statistics every run."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        small = torch.rand(batch, 3, gt_size // 8, gt_size // 8, generator=gen)
        gt = torch.nn.functional.interpolate(small, size=gt_size, mode="bilinear")
        lq = torch.nn.functional.avg_pool2d(gt, 4)
        out.append((lq, gt))
    return out


def run(cfg: dict, path: dict, data, warmup: int) -> tuple[float, list[float]]:
    """Seconds per step (median after warmup) and the loss of every step."""
    torch.manual_seed(0)
    model = RRDBNet(**cfg).train()
    fmt = torch.channels_last if path["channels_last"] else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.9, 0.99))
    cpu = torch.device("cpu")
    losses, times = [], []
    for i, (lq, gt) in enumerate(data):
        lq, gt = lq.contiguous(memory_format=fmt), gt.contiguous(memory_format=fmt)
        ctx = autocast_context(cpu, path["dtype"]) if path["dtype"] else contextlib.nullcontext()
        start = time.perf_counter()
        result = psnr_step(model, opt, lq, gt, autocast=ctx)
        loss = float(result.losses["l_pix"])
        if i >= warmup:
            times.append(time.perf_counter() - start)
        losses.append(loss)
    return float(np.median(times)), losses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 timed steps instead of 8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    fast_dtype = resolve_amp("auto", cpu)
    paths = {
        "fp32 eager": {"dtype": None, "channels_last": False},
        "fast path": {"dtype": fast_dtype, "channels_last": True},
    }
    if native_bf16(cpu):
        paths["bf16 autocast"] = {"dtype": torch.bfloat16, "channels_last": False}
    skipped = (
        None
        if native_bf16(cpu)
        else f"bf16: no native bf16 on this CPU ({torch.backends.cpu.get_cpu_capability()})"
    )
    steps, warmup = (4 if args.quick else 8), 2
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}, {args.threads} threads")
    print(f"fast path here: amp {'bf16' if fast_dtype else 'none (fp32)'}, channels_last")
    if skipped:
        print(f"skipped: {skipped}")
    results = {"provenance": provenance(), "skipped": skipped, "models": {}}
    for label, cfg in MODELS.items():
        batch = 16 if "lab" in label else 8
        data = batches(steps + warmup, batch, 128)
        rows = {}
        for name, path in paths.items():
            sec, losses = run(cfg, path, data, warmup)
            rows[name] = {"s_per_it": sec, "it_per_s": 1 / sec, "losses": losses}
        ref = rows["fp32 eager"]
        for row in rows.values():
            row["speedup"] = ref["s_per_it"] / row["s_per_it"]
            diff = np.abs(np.subtract(row["losses"], ref["losses"])) / np.asarray(ref["losses"])
            row["max_rel_loss_diff"] = float(diff.max())
        results["models"][label] = {"batch": batch, "gt_size": 128, "paths": rows}
        print(f"\n{label}: batch {batch}, 128 px GT, {steps} timed steps")
        for name, row in rows.items():
            print(
                f"  {name:<14} {row['it_per_s']:6.3f} it/s  x{row['speedup']:.2f} vs fp32 eager"
                f"  max relative loss difference {row['max_rel_loss_diff']:.1e}"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_training.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
