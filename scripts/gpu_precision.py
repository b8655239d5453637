"""GPU precision table for RRDBNet: fp32 / tf32 / fp16 / bf16 at batch 1-16 on 3x128x128.

Self-contained apart from ``torch`` and this repository's ``esrgan_lab.model.rrdbnet`` /
``esrgan_lab.model.complexity`` (both torch-only). Run it from the repository root on a CUDA
machine; it finishes in well under 90 s on an H100 for the full 23-block model::

    python scripts/gpu_precision.py                      # full model, batches 1,2,4,8,16
    OUT=/some/dir python scripts/gpu_precision.py        # also writes $OUT/gpu_precision.json
    python scripts/gpu_precision.py --dry-run            # tiny model on the CPU (CI check)

Per mode and batch size it reports the median latency (CUDA events), images/s and the
achieved TFLOP/s (``torch.utils.flop_counter`` convention: 2 x conv MACs, 587.43 G per
3x128x128 image for the full model) against the card's dense peak (H100 SXM: fp16/bf16
989 TFLOP/s, tf32 495, fp32 67; override with ``--peak-*``). At batch 1 it also reports
each mode's max and mean abs output difference from fp32 (outputs clamped to [0, 1]).

Modes: ``fp32`` (TF32 off), ``tf32`` (TF32 tensor cores for convs and matmuls),
``fp16`` and ``bf16`` (``torch.autocast``; weights stay fp32, convs run in half). All
use ``channels_last`` on CUDA (the tensor-core layout cuDNN prefers) and
``cudnn.benchmark``. ONNX Runtime is measured too when its CUDA provider is installed
(``--ort``), otherwise skipped with a note.

Weights: random (seed 0) unless ``--weights NAME|PATH`` loads a checkpoint through
``esrgan_lab.weights.loading``. Speed does not depend on the weights; the output differences do
somewhat (a trained model has larger activations).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from esrgan_lab.fileio import atomic_write_text  # noqa: E402
from esrgan_lab.lab.precision_study import AutocastModel  # noqa: E402
from esrgan_lab.model.complexity import complexity_report  # noqa: E402
from esrgan_lab.model.spec import ModelSpec  # noqa: E402
from esrgan_lab.timing import time_runs  # noqa: E402

#: Dense peak TFLOP/s of an H100 SXM (NVIDIA datasheet; the sparse figures are 2x).
H100_PEAK = {"fp16": 989.0, "bf16": 989.0, "tf32": 495.0, "fp32": 67.0}
MODES = ("fp32", "tf32", "fp16", "bf16")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", default="1,2,4,8,16", help="comma-separated batch sizes")
    p.add_argument("--size", type=int, default=128, help="input side (default 128)")
    p.add_argument("--num-block", type=int, default=23)
    p.add_argument("--num-feat", type=int, default=64)
    p.add_argument("--num-grow-ch", type=int, default=32)
    p.add_argument("--modes", default=",".join(MODES), help="subset of fp32,tf32,fp16,bf16")
    p.add_argument("--repeats", type=int, default=10, help="timed iterations per point")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--budget", type=float, default=80.0, help="stop timing after this many s")
    p.add_argument("--weights", default=None, help="checkpoint name or path (default random)")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--ort", action="store_true", help="also time ONNX Runtime's CUDA provider")
    for mode in MODES:
        p.add_argument(f"--peak-{mode}", type=float, default=H100_PEAK[mode], metavar="TFLOPS")
    p.add_argument("--json", default=None, help="JSON path (default $OUT/gpu_precision.json)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="tiny model (1 block, 8 features), 16 px, batches 1,2, on the CPU: checks the script",
    )
    args = p.parse_args(argv)
    if args.dry_run:
        args.num_block, args.num_feat, args.num_grow_ch, args.size = 1, 8, 4, 16
        args.batches, args.repeats, args.warmup = "1,2", 1, 1
        args.device = args.device or "cpu"
    return args


def set_tf32(enabled: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def build_model(args: argparse.Namespace) -> torch.nn.Module:
    if args.weights:
        from esrgan_lab.weights.loading import load_model

        return load_model(args.weights).eval()
    torch.manual_seed(0)
    spec = ModelSpec(num_feat=args.num_feat, num_block=args.num_block, num_grow_ch=args.num_grow_ch)
    return spec.build().eval()


def make_runner(model: torch.nn.Module, mode: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> float32 output`` in ``mode``: fp16/bf16 through the package's
    :class:`~esrgan_lab.lab.precision_study.AutocastModel` (weights stay fp32), fp32 and
    tf32 as the plain model with TF32 set for the call."""
    if mode in ("fp16", "bf16"):
        return AutocastModel(model, torch.float16 if mode == "fp16" else torch.bfloat16)

    def run(x: torch.Tensor) -> torch.Tensor:
        set_tf32(mode == "tf32")
        try:
            return model(x).float()
        finally:
            set_tf32(False)

    return run


def mode_supported(mode: str, device: torch.device) -> str | None:
    """``None`` if ``mode`` can run on ``device``, else the reason it is skipped."""
    if device.type != "cuda":
        if mode == "fp16":
            return "fp16 autocast is CUDA-only here"
        if mode == "tf32":
            return "TF32 is a CUDA tensor-core mode"
        return None
    if mode == "bf16" and not torch.cuda.is_bf16_supported():
        return "this GPU has no bf16"
    return None


def output_differences(
    model: torch.nn.Module, x: torch.Tensor, modes: list[str]
) -> dict[str, dict[str, float]]:
    """Abs difference of each mode's output from fp32 (TF32 off).

    ``max_abs_diff`` / ``mean_abs_diff`` compare outputs clamped to [0, 1] (what reaches
    the image); ``raw_*`` compare the unclamped outputs (a random model's outputs are
    mostly outside [0, 1], where clamping hides every difference).
    """
    ref_raw = make_runner(model, "fp32")(x).double()
    ref = ref_raw.clamp(0, 1)
    out = {}
    for mode in modes:
        y_raw = make_runner(model, mode)(x).double()
        d = (y_raw.clamp(0, 1) - ref).abs()
        d_raw = (y_raw - ref_raw).abs()
        out[mode] = {
            "max_abs_diff": float(d.max()),
            "mean_abs_diff": float(d.mean()),
            "raw_max_abs_diff": float(d_raw.max()),
            "raw_mean_abs_diff": float(d_raw.mean()),
            "reference_std": float(ref_raw.std()),
        }
    return out


def ort_points(
    model: torch.nn.Module, args: argparse.Namespace, batches: list[int], flops1: float
) -> tuple[list[dict[str, Any]], str]:
    """ONNX Runtime CUDA fp32 timings, or ``([], reason)`` when it cannot run."""
    try:
        import onnxruntime as ort
    except ImportError:
        return [], "onnxruntime not installed"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return [], "onnxruntime has no CUDAExecutionProvider (onnxruntime-gpu not installed)"
    import tempfile

    from esrgan_lab.inference.onnx import OnnxModel, export_onnx

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export_onnx(model.cpu(), path, check=False)
        sess = OnnxModel(path, providers=["CUDAExecutionProvider"])
        for b in batches:
            x = torch.rand(b, 3, args.size, args.size).numpy()
            run = lambda x=x: sess.run(x)  # noqa: E731
            times = time_runs(run, args.repeats, args.warmup).tolist()
            med = sorted(times)[len(times) // 2]
            rows.append(
                {
                    "mode": "ort-fp32",
                    "batch": b,
                    "latency_ms": med * 1e3,
                    "images_per_s": b / med,
                    "tflops": flops1 * b / med / 1e12,
                }
            )
    return rows, "measured (includes host<->device copies)"


def timed_points(
    model: torch.nn.Module,
    runnable: list[str],
    batches: list[int],
    args: argparse.Namespace,
    flops1: float,
    peaks: dict[str, float],
    diffs: dict[str, dict[str, float]],
    deadline: float,
    gen: torch.Generator,
) -> tuple[list[dict[str, Any]], bool]:
    """Time every (mode, batch) point until ``deadline`` (a ``perf_counter`` value), drawing
    the inputs from ``gen``.

    Returns:
        The rows printed and stored, and whether the time budget stopped the loop.
    """
    device = next(model.parameters()).device
    points: list[dict[str, Any]] = []
    for mode in runnable:
        runner = make_runner(model, mode)
        for b in batches:
            if time.perf_counter() > deadline:
                return points, True
            x = torch.rand(b, 3, args.size, args.size, generator=gen).to(device)
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            try:
                sync = torch.cuda.synchronize if device.type == "cuda" else None
                run = lambda x=x, runner=runner: runner(x)  # noqa: E731
                times = time_runs(run, args.repeats, args.warmup, sync).tolist()
            except torch.cuda.OutOfMemoryError:
                print(f"{mode:<6} {b:>5}  out of memory")
                torch.cuda.empty_cache()
                continue
            med = sorted(times)[len(times) // 2]
            tflops = flops1 * b / med / 1e12
            points.append(
                {
                    "mode": mode,
                    "batch": b,
                    "latency_ms": med * 1e3,
                    "images_per_s": b / med,
                    "tflops": tflops,
                    "peak_tflops": peaks[mode],
                    "fraction_of_peak": tflops / peaks[mode],
                    **diffs[mode],
                }
            )
            print(
                f"{mode:<6} {b:>5} {med * 1e3:9.2f} {b / med:9.1f} {tflops:9.2f} "
                f"{100 * tflops / peaks[mode]:6.1f}% {diffs[mode]['max_abs_diff']:9.2e} "
                f"{diffs[mode]['mean_abs_diff']:9.2e} {diffs[mode]['raw_max_abs_diff']:9.2e}"
            )
    return points, False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    modes = [m for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        print(f"unknown modes {unknown}; choose from {MODES}", file=sys.stderr)
        return 2
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.set_grad_enabled(False)
    model = build_model(args).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    spec = ModelSpec.of(model)
    flops1 = complexity_report(spec, size=args.size)["flops"]["flop_counter"]
    peaks = {m: getattr(args, f"peak_{m}") for m in MODES}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(f"device: {name or device.type} | torch {torch.__version__}")
    print(
        f"model: {spec.describe()} | input 3x{args.size}x{args.size} | "
        f"{flops1 / 1e9:.2f} GFLOP/image (flop_counter)"
    )
    skipped = {m: r for m in modes if (r := mode_supported(m, device))}
    runnable = [m for m in modes if m not in skipped]
    gen = torch.Generator().manual_seed(0)
    x1 = torch.rand(1, 3, args.size, args.size, generator=gen).to(device)
    if device.type == "cuda":
        x1 = x1.contiguous(memory_format=torch.channels_last)
    diffs = output_differences(model, x1, runnable)
    header = (
        f"{'mode':<6} {'batch':>5} {'ms':>9} {'img/s':>9} {'TFLOP/s':>9} {'% peak':>7} "
        f"{'max|d|':>9} {'mean|d|':>9} {'raw max':>9}"
    )
    print(header)
    deadline = t_start + args.budget
    points, out_of_time = timed_points(
        model, runnable, batches, args, flops1, peaks, diffs, deadline, gen
    )
    for mode, reason in skipped.items():
        print(f"{mode:<6} skipped: {reason}")
    if out_of_time:
        print(f"stopped: time budget of {args.budget:.0f} s reached (--budget)")
    ort_rows, ort_note = ([], "not requested (--ort)")
    if args.ort and not out_of_time:
        ort_rows, ort_note = ort_points(model, args, batches, flops1)
        for r in ort_rows:
            print(
                f"{r['mode']:<6} {r['batch']:>5} {r['latency_ms']:9.2f} "
                f"{r['images_per_s']:9.1f} {r['tflops']:9.2f}"
            )
    print(f"onnxruntime: {ort_note}")
    elapsed = time.perf_counter() - t_start
    print(f"total {elapsed:.1f} s")
    result = {
        "device": name or device.type,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "model": spec.to_config(),
        "weights": args.weights or "random (seed 0)",
        "input": [3, args.size, args.size],
        "gflop_per_image": flops1 / 1e9,
        "flop_convention": "flop_counter (2 x conv MACs)",
        "peaks_tflops": peaks,
        "channels_last": device.type == "cuda",
        "points": points,
        "output_difference_vs_fp32": diffs,
        "skipped": skipped,
        "onnxruntime": {"note": ort_note, "points": ort_rows},
        "seconds": elapsed,
        "dry_run": bool(args.dry_run),
    }
    target = args.json or (
        str(Path(os.environ["OUT"]) / "gpu_precision.json") if os.environ.get("OUT") else None
    )
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(result, indent=2) + "\n"
        print(f"wrote {atomic_write_text(target, text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
