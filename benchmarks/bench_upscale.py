"""Benchmark :func:`esrgan_lab.inference.upscale.upscale` against the official ``test.py`` loop.

Measured in one run, on the same random-weight RRDBNet and the same inputs:

* ``reference``: the loop of the official ``test.py`` (whole image, eager fp32,
  contiguous NCHW, ``torch.no_grad``,
  ``model(img_LR).data.squeeze().float().cpu().clamp_(0, 1).numpy()``, then BGR uint8);
* ``upscale``: the default path (channels_last + inference_mode on the CPU), called with
  the raw model as a user would, so its model copy is included;
* ``upscale contiguous``: the same engine with ``channels_last=False``;
* ``upscale bf16``: ``dtype="bf16"`` (not the default: a precision change), only where the
  CPU computes bf16 natively;
* ``onnxruntime``: the model exported to ONNX by the package (``export_onnx``: TorchScript
  exporter, dynamic H/W) and run by its ONNX Runtime wrapper (``OnnxModel``, CPU provider)
  without the upscale engine around it (export time reported separately);
* ``upscale onnxruntime``: ``upscale(backend="onnxruntime")`` with a warm cache (the
  engine's own cached export, in a temporary ``ESRGAN_LAB_WEIGHTS``; the cold first
  call, which exports, is timed once and printed separately). Per call it still hashes
  the weights to find the cached graph.

Then the peak memory (``VmHWM`` of a fresh subprocess) of upscaling a large input
(default 2000x2000) with tiling, against :func:`esrgan_lab.model.memory.estimate_memory` for
running the same model untiled. The memory run uses a small trained model (default the
shipped ``lab-psnr-x4``, ``--memory-weights``) so that 2000x2000 finishes in minutes on
a CPU; ``--memory-weights none`` uses a random RRDBNet of ``--memory-num-block`` blocks.

Usage::

    python benchmarks/bench_upscale.py            # full model (23 blocks), 128 and 512 px
    python benchmarks/bench_upscale.py --quick    # 2 blocks, 64 and 128 px, 500 px memory run
    python benchmarks/bench_upscale.py --quick --memory-size 2000   # quick speed, 2000 px memory
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from esrgan_lab.inference.upscale import upscale  # noqa: E402
from esrgan_lab.model.memory import estimate_memory, process_memory  # noqa: E402
from esrgan_lab.model.rrdbnet import RRDBNet  # noqa: E402
from esrgan_lab.timing import fastest_interleaved  # noqa: E402
from esrgan_lab.training.runtime import native_bf16  # noqa: E402


def make_model(num_block: int) -> RRDBNet:
    torch.manual_seed(0)
    return RRDBNet(num_block=num_block).eval()


def make_image(size: int) -> np.ndarray:
    """A smooth random BGR uint8 picture (noise upsampled bilinearly)."""
    import cv2

    rng = np.random.default_rng(0)
    small = rng.random((max(size // 8, 2), max(size // 8, 2), 3)).astype(np.float32)
    return np.rint(cv2.resize(small, (size, size)) * 255).astype(np.uint8)


def reference_loop(model: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    """The official ESRGAN test.py, minus file I/O."""
    img = image * 1.0 / 255
    img = torch.from_numpy(np.transpose(img[:, :, [2, 1, 0]], (2, 0, 1))).float()
    img_lr = img.unsqueeze(0)
    with torch.no_grad():
        output = model(img_lr).data.squeeze().float().cpu().clamp_(0, 1).numpy()
    output = np.transpose(output[[2, 1, 0], :, :], (1, 2, 0))
    return (output * 255.0).round().astype(np.uint8)


def onnx_runner(model: torch.nn.Module, path: Path) -> tuple[float, Callable]:
    """The package's ONNX path without the engine: :func:`~esrgan_lab.inference.onnx.export_onnx`
    (unchecked here: every variant's output is compared with the reference below) and
    :class:`~esrgan_lab.inference.onnx.OnnxModel` at this process's thread count, around the
    project's one array<->tensor conversion. Returns ``(export seconds, image -> image)``."""
    from esrgan_lab.data.images import array_to_tensor, tensor_to_array
    from esrgan_lab.inference.onnx import OnnxModel, export_onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = export_onnx(model, path, check=False)
    session = OnnxModel(path, threads=torch.get_num_threads())

    def run(image: np.ndarray) -> np.ndarray:
        out = session.run(array_to_tensor(image).numpy())
        return tensor_to_array(torch.from_numpy(out))

    return exported.seconds, run


def speed(num_block: int, sizes: list[int], repeat: int, onnx: bool) -> list[dict]:
    if not onnx:
        return _speed(num_block, sizes, repeat, onnx)
    import tempfile

    # The engine's ONNX cache lives under ESRGAN_LAB_WEIGHTS: keep the random-weight
    # benchmark model out of the user's cache.
    saved = os.environ.get("ESRGAN_LAB_WEIGHTS")
    with tempfile.TemporaryDirectory(prefix="bench_upscale_") as cache:
        os.environ["ESRGAN_LAB_WEIGHTS"] = cache
        try:
            return _speed(num_block, sizes, repeat, onnx)
        finally:
            if saved is None:
                os.environ.pop("ESRGAN_LAB_WEIGHTS", None)
            else:
                os.environ["ESRGAN_LAB_WEIGHTS"] = saved


def _speed(num_block: int, sizes: list[int], repeat: int, onnx: bool) -> list[dict]:
    model = make_model(num_block)
    rows = []
    run_onnx = None
    if onnx:
        t0 = time.perf_counter()
        upscale(make_image(16), model, backend="onnxruntime")
        print(
            f'upscale(backend="onnxruntime") cold first call (export + cache, {num_block} '
            f"blocks): {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_rrdbnet_nb{num_block}.onnx"
        try:
            seconds, run_onnx = onnx_runner(model, path)
            print(f"ONNX export ({num_block} blocks): {seconds:.1f} s", flush=True)
        except Exception as exc:  # noqa: BLE001 - report and go on without it
            print(f"ONNX export failed: {type(exc).__name__}: {exc}", flush=True)
    for size in sizes:
        image = make_image(size)
        fns: dict[str, Callable[[], np.ndarray]] = {
            "reference": lambda image=image: reference_loop(model, image),
            "upscale": lambda image=image: upscale(image, model),
            "upscale contiguous": lambda image=image: upscale(image, model, channels_last=False),
        }
        if native_bf16(torch.device("cpu")):  # emulated bf16 is ~400x slower than fp32
            fns["upscale bf16"] = lambda image=image: upscale(image, model, dtype="bf16")
        if run_onnx is not None:
            fns["onnxruntime"] = lambda image=image: run_onnx(image)
        if onnx:
            fns["upscale onnxruntime"] = lambda image=image: upscale(
                image, model, backend="onnxruntime"
            )
        ref = reference_loop(model, image)  # also the warm-up
        diffs = {}
        for name, fn in fns.items():
            diffs[name] = int(np.abs(fn().astype(int) - ref).max())  # warm-up + check
        times = fastest_interleaved(fns, repeat)
        for name, seconds in times.items():
            row = {
                "size": size,
                "num_block": num_block,
                "variant": name,
                "seconds": round(seconds, 3),
                "speedup_vs_reference": round(times["reference"] / seconds, 2),
                "max_abs_diff_vs_reference": diffs[name],
            }
            rows.append(row)
            print(
                f"{size:>5}px  {name:<21} {seconds:8.3f} s   x{row['speedup_vs_reference']:.2f}"
                f" vs reference   max|diff| {diffs[name]}",
                flush=True,
            )
    return rows


def memory_model(weights: str, num_block: int) -> tuple[torch.nn.Module, str]:
    """The memory-run model and a one-line description of it.

    Args:
        weights: A name or file for :func:`esrgan_lab.weights.loading.load_model`, or ``"none"``
            for a random full-width RRDBNet of ``num_block`` blocks.
        num_block: Blocks of the random model (ignored with weights).
    """
    if weights.lower() == "none":
        model = make_model(num_block)
        label = "random RRDBNet"
    else:
        from esrgan_lab.weights.loading import load_model

        model = load_model(weights).eval()
        label = weights
    blocks = len(getattr(model, "body", ()))
    feat = getattr(model, "num_feat", "?")
    grow = getattr(model, "num_grow_ch", "?")
    return model, f"{label} (num_feat={feat}, num_block={blocks}, num_grow_ch={grow})"


def memory_child(size: int, tile: int | str | None, num_block: int, weights: str) -> None:
    """Run in a fresh process: print JSON with the peak RSS of one upscale."""
    torch.set_num_threads(torch.get_num_threads())
    model, described = memory_model(weights, num_block)
    image = make_image(size)
    upscale(make_image(16), model)  # load the kernels before the baseline
    base = process_memory("VmRSS")
    t0 = time.perf_counter()
    out = upscale(image, model, tile=tile)
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "size": size,
                "tile": tile,
                "model": described,
                "seconds": round(seconds, 1),
                "baseline_rss": base,
                "peak_rss": process_memory("VmHWM"),
                "output_bytes": int(out.nbytes),
                "input_float_bytes": int(image.size * 4),
                "estimate_untiled": estimate_memory(model, size, size),
                "estimate_one_tile": (
                    estimate_memory(model, tile + 20, tile + 20) if isinstance(tile, int) else None
                ),
            }
        )
    )


def memory(size: int, tile: int, num_block: int, weights: str) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--memory-child",
        str(size),
        str(tile),
        str(num_block),
        weights,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    row = json.loads(result.stdout.strip().splitlines()[-1])
    gb = 1e9
    growth = row["peak_rss"] - row["baseline_rss"]
    row["estimate_untiled_over_peak_rss"] = round(row["estimate_untiled"] / row["peak_rss"], 2)
    one_tile = row["estimate_one_tile"]
    print(
        f"memory: {size}x{size} input, tile {tile}, model {row['model']}, {row['seconds']} s\n"
        f"  tiled peak RSS (VmHWM, fresh process) {row['peak_rss'] / gb:.2f} GB "
        f"(+{growth / gb:.2f} GB over the loaded model)\n"
        f"  output array {row['output_bytes'] / gb:.3f} GB"
        + (f", estimated one tile {one_tile / gb:.2f} GB" if one_tile else "")
        + "\n"
        f"  estimate_memory untiled, same model: {row['estimate_untiled'] / gb:.1f} GB "
        f"= x{row['estimate_untiled_over_peak_rss']:.1f} the tiled peak RSS",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--num-block",
        type=int,
        default=None,
        help="RRDB blocks of the timed model (default 23, --quick 2)",
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=None,
        help="square input sizes (default 128 512, --quick 64 128)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="timed runs per variant, best kept (default 2, --quick 3)",
    )
    parser.add_argument("--quick", action="store_true", help="small model and sizes")
    parser.add_argument("--no-onnx", action="store_true", help="skip ONNX Runtime")
    parser.add_argument(
        "--memory-size",
        type=int,
        default=None,
        help="input side for the peak-memory run (default 2000, --quick 500); 0 skips it",
    )
    parser.add_argument("--memory-tile", type=int, default=256, help="tile for the memory run")
    parser.add_argument(
        "--memory-num-block",
        type=int,
        default=1,
        help="blocks of the random memory-run model with --memory-weights none "
        "(activation memory does not depend on the block count; time does)",
    )
    parser.add_argument(
        "--memory-weights",
        default="lab-psnr-x4",
        metavar="NAME",
        help="weights of the memory-run model (name or file for esrgan_lab.weights.loading."
        "load_model; default the shipped lab-psnr-x4); 'none': random RRDBNet",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument("--memory-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        size, tile, nb, weights = args.memory_child
        memory_child(int(size), int(tile) if tile.isdigit() else tile, int(nb), weights)
        return 0
    num_block = args.num_block or (2 if args.quick else 23)
    sizes = args.sizes or ([64, 128] if args.quick else [128, 512])
    repeat = args.repeat or (3 if args.quick else 2)
    mem_size = args.memory_size if args.memory_size is not None else (500 if args.quick else 2000)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU", flush=True)
    from esrgan_lab.settings import provenance

    results = {"provenance": provenance()}
    results["speed"] = speed(num_block, sizes, repeat, not args.no_onnx)
    if mem_size:
        results["memory"] = memory(
            mem_size, args.memory_tile, args.memory_num_block, args.memory_weights
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
