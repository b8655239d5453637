"""Benchmark every precision variant of RRDBNet in one run, with ratios to eager fp32.

Variants (built by :func:`esrgan_lab.lab.precision_study.build_variants`, same random weights):

* ``fp32 (torch)``: eager, contiguous NCHW, ``torch.no_grad`` -- the reference;
* ``bf16 autocast (torch)``: ``torch.autocast`` on the CPU (fast only where the CPU has
  AVX512-BF16/AMX; otherwise emulated and slower than fp32);
* ``fp32 (ORT)``, ``fp16 (ORT)``: ONNX Runtime CPU provider, 2 intra-op threads. x86 CPUs
  have no fp16 convolution kernels in ONNX Runtime's default build, so the fp16 graph
  mostly measures the cost of casting -- it is about storage, not speed, on a CPU;
* ``int8 <method> (ORT)``: QDQ static quantization (per-channel int8 weights, uint8
  activations), calibrated on training images (:mod:`esrgan_lab.lab.precision_study`).

With CUDA: torch fp32 / fp16 / bf16 autocast throughput at batch 1, 2, 4, 8, 16 with the
achieved TFLOP/s (``flop_counter`` convention, :func:`esrgan_lab.model.complexity.count_flops`)
against the card's peak (H100 SXM dense fp16/bf16: 989 TFLOP/s; ``--peak`` overrides).
``scripts/gpu_precision.py`` is the self-contained GPU table (adds tf32).

Usage::

    python benchmarks/bench_precision.py            # full model (23 blocks) at 3x128x128
    python benchmarks/bench_precision.py --quick    # 2 blocks, 32 features, 3x64x64
    python benchmarks/bench_precision.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from esrgan_lab.lab.precision_study import (  # noqa: E402
    Variant,
    assert_disjoint,
    autocast_model,
    build_variants,
    calibration_images,
    evaluation_images,
    make_reader,
    measure_latency,
)
from esrgan_lab.model.complexity import count_flops  # noqa: E402
from esrgan_lab.model.rrdbnet import RRDBNet  # noqa: E402

H100_PEAK_HALF = 989.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small model and input (CI size)")
    p.add_argument("--num-block", type=int, default=None)
    p.add_argument("--num-feat", type=int, default=None)
    p.add_argument("--size", type=int, default=None, help="input side")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--calib-images", type=int, default=4)
    p.add_argument("--methods", default="percentile", help="int8 calibration methods")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--batches", default="1,2,4,8,16", help="CUDA batch sizes")
    p.add_argument(
        "--peak", type=float, default=H100_PEAK_HALF, help="fp16/bf16 peak TFLOP/s of the GPU"
    )
    p.add_argument("--json", default=None, help="also write the results as JSON")
    args = p.parse_args(argv)
    quick = {"num_block": 2, "num_feat": 32, "size": 64, "repeats": 3}
    full = {"num_block": 23, "num_feat": 64, "size": 128, "repeats": 3}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def cpu_table(args: argparse.Namespace, model: torch.nn.Module, work: Path) -> list[dict]:
    images = calibration_images(args.calib_images)
    assert_disjoint(images, evaluation_images())
    reader = make_reader(images, "vendor")
    methods = [m for m in args.methods.split(",") if m]
    variants: list[Variant] = build_variants(
        model, work, reader, methods=methods, log=lambda m: print(f"  {m}")
    )
    x = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)
    flops = count_flops(model, (1, 3, args.size, args.size)).totals["flop_counter"]
    rows = []
    for v in variants:
        t = measure_latency(v, x, repeats=args.repeats)
        rows.append(
            {
                "variant": v.name,
                "latency_ms": t["median_s"] * 1e3,
                "min_ms": t["min_s"] * 1e3,
                "images_per_s": 1.0 / t["median_s"],
                "gflops": flops / t["median_s"] / 1e9,
                "size_mb": v.size_bytes / 1e6,
                "build_s": v.seconds,
            }
        )
    base = rows[0]["latency_ms"]
    print(
        f"\nCPU, batch 1, 3x{args.size}x{args.size}, {torch.get_num_threads()} torch threads, "
        f"ORT 2 intra-op threads; {flops / 1e9:.2f} GFLOP per image"
    )
    print(f"{'variant':<24} {'ms':>9} {'img/s':>8} {'GFLOP/s':>8} {'speedup':>8} {'MB':>7}")
    for r in rows:
        r["speedup_vs_fp32_eager"] = base / r["latency_ms"]
        print(
            f"{r['variant']:<24} {r['latency_ms']:9.1f} {r['images_per_s']:8.2f} "
            f"{r['gflops']:8.1f} {r['speedup_vs_fp32_eager']:7.2f}x {r['size_mb']:7.2f}"
        )
    return rows


def cuda_table(args: argparse.Namespace, model: torch.nn.Module) -> list[dict]:
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    model = model.to(device).to(memory_format=torch.channels_last)
    flops1 = count_flops(model, (1, 3, args.size, args.size)).totals["flop_counter"]
    runners = {
        "fp32": model,
        "fp16": autocast_model(model, "fp16", device),
        "bf16": autocast_model(model, "bf16", device),
    }
    rows = []
    print(f"\nCUDA {torch.cuda.get_device_name()}: peak {args.peak:g} TFLOP/s (fp16/bf16)")
    print(f"{'mode':<6} {'batch':>5} {'ms':>9} {'img/s':>9} {'TFLOP/s':>8} {'% peak':>7}")
    for mode, runner in runners.items():
        for b in [int(s) for s in args.batches.split(",") if s]:
            x = torch.rand(b, 3, args.size, args.size, device=device).contiguous(
                memory_format=torch.channels_last
            )
            v = Variant(mode, mode, "torch", runner)
            t = measure_latency(v, x.cpu().numpy(), repeats=args.repeats, warmup=2)
            tflops = flops1 * b / t["median_s"] / 1e12
            rows.append(
                {
                    "mode": mode,
                    "batch": b,
                    "latency_ms": t["median_s"] * 1e3,
                    "images_per_s": b / t["median_s"],
                    "tflops": tflops,
                    "fraction_of_peak": tflops / args.peak,
                }
            )
            print(
                f"{mode:<6} {b:>5} {t['median_s'] * 1e3:9.2f} {b / t['median_s']:9.1f} "
                f"{tflops:8.2f} {100 * tflops / args.peak:6.1f}%"
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    torch.manual_seed(0)
    model = RRDBNet(num_feat=args.num_feat, num_block=args.num_block).eval()
    print(
        f"RRDBNet num_feat={args.num_feat} num_block={args.num_block} (random weights, seed 0); "
        f"calibration: {args.calib_images} training images, methods {args.methods}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = {"config": vars(args), "cpu": cpu_table(args, model, Path(tmp))}
    if torch.cuda.is_available():
        result["cuda"] = cuda_table(args, model)
    else:
        print("\nno CUDA device: GPU throughput table skipped (see scripts/gpu_precision.py)")
    result["seconds"] = time.perf_counter() - start
    print(f"total {result['seconds']:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
