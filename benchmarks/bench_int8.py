"""int8 on the CPU: speed against ONNX Runtime fp32, accuracy on Set5/Set14, quantize time,
and the peak memory of a 2000x2000 upscale with no tiling flag, all measured in one run.

Paths, each timed on the paper's 23-block x4 model (nf 64, gc 32) at 128x128 (whole image,
best of 3) and 512x512 (tiled as ``upscale`` tiles it by default, one run):

* ``ORT fp32``: ONNX Runtime, the default CPU engine of ``esrgan-lab upscale`` (reference);
* ``torch fp32``: eager, channels_last (what the Python ``upscale()`` runs by default);
* ``OpenVINO fp32``: the same graph compiled by OpenVINO;
* ``OpenVINO int8``: NNCF post-training quantization (``esrgan-lab quantize``, default);
* ``ORT int8 QDQ``: ONNX Runtime static quantization (``esrgan-lab quantize --engine
  onnxruntime``, percentile calibration);
* ``torch bf16``: autocast, timed only where the CPU computes bf16 natively; its accuracy
  is always reported, from the same numerics emulated in fp32 (every convolution's input,
  weight and output rounded to bf16, accumulation in fp32, as autocast does).

Accuracy: Y-PSNR (``crop_border`` = 4, the standard protocol) on Set5 and Set14 of each
trained model -- the shipped full-size pair ``full-psnr-x4`` / ``full-gan-x4`` and the small
``lab-psnr-x4`` / ``lab-gan-x4`` -- for every precision, as the change from fp32; and NIQE, to
see whether a precision keeps the GAN model's textures.

Quantize time: ``esrgan-lab quantize`` of the 23-block model in a fresh process (imports
included), at the default 64 px calibration crops and at 128 px for comparison (with the
accuracy of each).

Memory: ``esrgan-lab upscale`` of a 2000x2000 photograph (a SunHays80 scene resized, or a
scikit-image sample) by the 23-block int8 model with no ``--tile`` flag; the peak RSS of
that process (its own ``VmHWM``).

Usage::

    make full-weights          # only where data/weights/full-*.safetensors are missing
    python benchmarks/bench_int8.py                   # everything (~30 min on 2 cores)
    python benchmarks/bench_int8.py --quick           # 128 px speed, Set5, no memory run
    python benchmarks/bench_int8.py --sizes 128 --no-cli   # Set5 + Set14, 128 px speed only
    python benchmarks/bench_int8.py --accuracy-paths "OpenVINO int8" "bf16 (numerics)"
    python benchmarks/bench_int8.py --full-weights random   # speed only, untrained model
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from esrgan_lab.data.images import array_to_tensor, tensor_to_array  # noqa: E402
from esrgan_lab.errors import ConfigError  # noqa: E402
from esrgan_lab.evaluation.evaluate import evaluate_model  # noqa: E402
from esrgan_lab.inference.int8 import (  # noqa: E402
    assert_disjoint,
    calibration_images,
    evaluation_images,
    make_reader,
    quantize_onnx_int8,
)
from esrgan_lab.inference.onnx import OnnxModel, export_onnx  # noqa: E402
from esrgan_lab.inference.openvino import OpenVinoModel, convert_onnx, save_ir  # noqa: E402
from esrgan_lab.inference.upscale import prepare_model, upscale  # noqa: E402
from esrgan_lab.model.rrdbnet import RRDBNet  # noqa: E402
from esrgan_lab.settings import REPO_ROOT, provenance  # noqa: E402
from esrgan_lab.timing import fastest  # noqa: E402
from esrgan_lab.training.runtime import native_bf16  # noqa: E402
from esrgan_lab.weights.loading import load_model  # noqa: E402

RESULTS = REPO_ROOT / "benchmarks" / "results" / "bench_int8.json"
#: The trained 23-block model whose speed and accuracy are measured (shipped: `make
#: full-weights`); its GAN partner is scored too (``--small``).
FULL_WEIGHTS = "full-psnr-x4"


# --------------------------------------------------------------------------- models


class Bf16Numerics(nn.Module):
    """``model`` with bf16 autocast's rounding emulated in fp32: each convolution sees its
    input and weight rounded to bf16 and returns a bf16-rounded output (fp32 accumulation,
    as oneDNN's and cuDNN's bf16 convolutions do). Numerics of bf16, speed of fp32."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        # A private copy: prepare_model returns `model` itself when it is already fp32 and
        # in eval mode, and the rounding and hooks below must not reach the caller's model.
        self.model = copy.deepcopy(prepare_model(model, "cpu", torch.float32, channels_last=False))
        self.scale = model.scale
        for conv in self.model.modules():
            if isinstance(conv, nn.Conv2d):
                with torch.no_grad():
                    conv.weight.copy_(conv.weight.bfloat16().float())
                    if conv.bias is not None:
                        conv.bias.copy_(conv.bias.bfloat16().float())
                conv.register_forward_pre_hook(lambda _m, args: (args[0].bfloat16().float(),))
                conv.register_forward_hook(lambda _m, _a, out: out.bfloat16().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


#: Every path :func:`build_paths` can build; ``ORT fp32`` is the reference and always built.
PATHS = (
    "ORT fp32",
    "torch fp32",
    "OpenVINO fp32",
    "OpenVINO int8",
    "ORT int8 QDQ",
    "bf16 (numerics)",
)


def build_paths(
    model: nn.Module,
    folder: Path,
    calibration: list[np.ndarray],
    only: tuple[str, ...] = PATHS,
) -> dict:
    """The precisions of ``model`` named in ``only``: name -> (callable on uint8 BGR for
    scoring, compiled object or module for timing, seconds it took to build)."""
    onnx_path = folder / "fp32.onnx"
    export_onnx(model, onnx_path)
    paths: dict[str, tuple[Any, float]] = {}
    paths["ORT fp32"] = (OnnxModel(onnx_path, threads=torch.get_num_threads()), 0.0)
    if "torch fp32" in only:
        paths["torch fp32"] = (prepare_model(model, "cpu", torch.float32), 0.0)
    if "OpenVINO fp32" in only:
        save_ir(convert_onnx(onnx_path), folder / "ov_fp32", {"precision": "fp32"})
        paths["OpenVINO fp32"] = (OpenVinoModel(folder / "ov_fp32"), 0.0)
    if "OpenVINO int8" in only:
        from esrgan_lab.inference.openvino import quantize_openvino_int8 as ov_quantize

        start = time.perf_counter()
        ov_quantize(onnx_path, folder / "ov_int8", calibration, quiet=True)
        seconds = time.perf_counter() - start
        paths["OpenVINO int8"] = (OpenVinoModel(folder / "ov_int8"), seconds)
    if "ORT int8 QDQ" in only:
        from esrgan_lab.inference.int8 import ImageCalibrationReader

        start = time.perf_counter()
        quantize_onnx_int8(onnx_path, folder / "qdq.onnx", ImageCalibrationReader(calibration))
        paths["ORT int8 QDQ"] = (
            OnnxModel(folder / "qdq.onnx", threads=torch.get_num_threads()),
            time.perf_counter() - start,
        )
    if "bf16 (numerics)" in only:
        paths["bf16 (numerics)"] = (Bf16Numerics(model).eval(), 0.0)
    return paths


def as_bgr_fn(engine: Any) -> Callable[[np.ndarray], np.ndarray]:
    """uint8 BGR in, uint8 BGR out (what scoring calls), for any engine."""
    if isinstance(engine, nn.Module):
        dtype = next(engine.parameters()).dtype  # a bf16 copy takes bf16 input

        @torch.inference_mode()
        def run(img: np.ndarray) -> np.ndarray:
            return tensor_to_array(engine(array_to_tensor(img).to(dtype)).float())

        return run
    return engine


# --------------------------------------------------------------------------- speed


def speed(paths: dict, sizes: list[int], repeat: int, bf16_model: nn.Module | None) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for size in sizes:
        small = rng.random((size // 8, size // 8, 3)).astype(np.float32)
        image = np.rint(cv2.resize(small, (size, size)) * 255).astype(np.uint8)
        timed = {k: v[0] for k, v in paths.items() if k != "bf16 (numerics)"}
        if bf16_model is not None:
            timed["torch bf16"] = bf16_model
        reps = repeat if size <= 128 else 1
        times = {}
        for name, engine in timed.items():
            if size <= 128:
                fn = as_bgr_fn(engine)
                times[name] = fastest(lambda fn=fn, image=image: fn(image), reps)
            else:
                kw = {"dtype": "bf16"} if name == "torch bf16" else {}
                times[name] = fastest(
                    lambda e=engine, kw=kw, image=image: upscale(image, e, **kw), reps
                )
            print(f"  {size}x{size} {name:<16} {times[name]:8.2f} s", flush=True)
        ref = times["ORT fp32"]
        for name, t in times.items():
            rows.append(
                {"size": size, "path": name, "seconds": round(t, 3), "vs_ort_fp32": ref / t}
            )
    return rows


# --------------------------------------------------------------------------- accuracy


def accuracy(label: str, paths: dict, datasets: list[str]) -> list[dict]:
    """Y-PSNR and NIQE of every path on ``datasets``, and their change from ORT fp32: does a
    precision keep fidelity (PSNR) and the GAN's textures (NIQE, lower is more natural)?"""
    rows = []
    ref: dict[str, dict] = {}
    for name, (engine, build_s) in paths.items():
        if name == "torch fp32":
            continue  # same numbers as ORT fp32 within 1e-6
        report = evaluate_model(as_bgr_fn(engine), datasets, niqe=True, progress=False)
        means = report.means()
        for ds in datasets:
            psnr, niqe = means[ds]["psnr"], means[ds]["niqe"]
            if name == "ORT fp32":
                ref[ds] = {"psnr": psnr, "niqe": niqe}
            delta_niqe = None if niqe is None else round(niqe - ref[ds]["niqe"], 3)
            rows.append(
                {
                    "model": label,
                    "path": name,
                    "dataset": ds,
                    "psnr_y": round(psnr, 3),
                    "delta_db": round(psnr - ref[ds]["psnr"], 3),
                    "niqe": None if niqe is None else round(niqe, 3),
                    "delta_niqe": delta_niqe,
                    "build_seconds": round(build_s, 1),
                }
            )
            print(
                f"  {label:<14} {name:<16} {ds:<6} {psnr:7.3f} dB ({psnr - ref[ds]['psnr']:+.3f})"
                f", NIQE {niqe} ({delta_niqe})",
                flush=True,
            )
    return rows


def bicubic(datasets: list[str]) -> dict[str, float]:
    means = evaluate_model("bicubic", datasets, niqe=False, progress=False).means()
    return {ds: round(means[ds]["psnr"], 3) for ds in datasets}


# --------------------------------------------------------------------------- CLI runs


#: Runs the CLI in a fresh interpreter and prints that process's own peak RSS (``VmHWM``,
#: :func:`esrgan_lab.model.memory.process_memory`) on its last stdout line. Not
#: ``ru_maxrss``: on Linux a child's ``ru_maxrss`` also counts the address space it was
#: forked from (the parent's, for a vfork-spawned child), so it reported this benchmark's
#: own peak, not the command's.
_PEAK_CHILD = (
    "import sys\n"
    "from esrgan_lab.cli import main\n"
    "from esrgan_lab.model.memory import process_memory\n"
    "code = main(sys.argv[1:])\n"
    "print('VmHWM', process_memory('VmHWM'))\n"
    "sys.exit(code)\n"
)


def timed_child(args: list[str]) -> tuple[float, int, str]:
    """Run ``esrgan-lab *args`` in a fresh process: its wall time, its own peak RSS in
    bytes (``VmHWM``, 0 where ``/proc`` is missing) and its stdout."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_CHILD, *args], capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"esrgan-lab {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    lines = result.stdout.splitlines()
    peak = int(lines[-1].split()[1]) if lines and lines[-1].startswith("VmHWM") else 0
    return seconds, peak, "\n".join(lines[:-1])


def quantize_cli(onnx_path: Path, folder: Path, patch: int) -> tuple[float, Path]:
    out = folder / f"cli_int8_{patch}"
    cmd = ["quantize", str(onnx_path), "-o", str(out), "--patch", str(patch)]
    seconds, _, _ = timed_child(cmd)
    print(f"  esrgan-lab quantize, {patch} px crops: {seconds:.1f} s (fresh process)", flush=True)
    return seconds, out


def photo_2000(folder: Path) -> Path:
    """A 2000x2000 photograph: a SunHays80 scene (or scikit-image's astronaut) resized."""
    from esrgan_lab.data.sources import resolve_dataset
    from esrgan_lab.settings import dataset_dir

    if dataset_dir("SunHays80") is not None:
        image = resolve_dataset("SunHays80")[0].load()
    else:
        from esrgan_lab.data.samples import skimage_sample

        image = skimage_sample("astronaut")
    photo = cv2.resize(image, (2000, 2000), interpolation=cv2.INTER_CUBIC)
    path = folder / "photo_2000.png"
    cv2.imwrite(str(path), photo)
    return path


def memory_run(model_path: Path, folder: Path) -> dict:
    photo = photo_2000(folder)
    cmd = ["upscale", str(photo), "-o", str(folder / "up"), "--weights"]
    seconds, peak, _ = timed_child([*cmd, str(model_path), "--quiet"])
    out = cv2.imread(str(folder / "up" / "photo_2000_x4.png"))
    row = {
        "input": "2000x2000",
        "model": str(model_path.name),
        "seconds": round(seconds, 1),
        "peak_rss_gb": round(peak / 1e9, 3),
        "output_shape": list(out.shape),
    }
    print(f"  2000x2000 upscale, no tiling flag: {seconds:.0f} s, peak RSS {peak / 1e9:.2f} GB")
    return row


# --------------------------------------------------------------------------- main


def full_model(weights: str) -> tuple[nn.Module, str]:
    """The 23-block model by weights name or file; ``random`` only when asked for by name."""
    if weights == "random":
        torch.manual_seed(0)
        return RRDBNet().eval(), "random (named: speed only)"
    model = load_model(weights).eval()
    if model.num_block != 23 or model.num_feat != 64:
        raise ConfigError(f"{weights}: not a 23-block, 64-feature RRDBNet")
    return model, weights


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="128 px, Set5, no CLI runs")
    p.add_argument("--full-weights", default=str(FULL_WEIGHTS), help="23-block model or 'random'")
    p.add_argument(
        "--small",
        nargs="*",
        default=["full-gan-x4", "lab-psnr-x4", "lab-gan-x4"],
        help="more trained models whose accuracy is scored on every path",
    )
    p.add_argument("--images", type=int, default=8, help="calibration images")
    p.add_argument("--patch", type=int, default=64, help="calibration crop side (LQ px)")
    p.add_argument("--json", type=Path, default=RESULTS)
    p.add_argument(
        "--paths", nargs="+", choices=PATHS, default=list(PATHS), help="paths to build and time"
    )
    p.add_argument("--no-cli", action="store_true", help="skip the fresh-process CLI runs")
    p.add_argument(
        "--accuracy-paths",
        nargs="+",
        choices=PATHS,
        help="paths whose accuracy is scored (default: every path built; ORT fp32 always)",
    )
    p.add_argument(
        "--sizes",
        nargs="+",
        type=int,
        choices=(128, 512),
        help="input sides timed (default 128 and 512; 128 with --quick)",
    )
    args = p.parse_args(argv)
    only = tuple(args.paths)
    threads = int(os.environ.get("ESRGAN_LAB_THREADS", "2"))
    torch.set_num_threads(threads)
    datasets = ["Set5"] if args.quick else ["Set5", "Set14"]
    sizes = args.sizes or ([128] if args.quick else [128, 512])

    images = calibration_images(args.images)
    assert_disjoint(images, evaluation_images())
    calibration = make_reader(images, "standard", 4, args.patch).inputs
    results: dict[str, Any] = {
        "provenance": provenance(),
        "threads": threads,
        "calibration": {
            "images": [f"{i.dataset}/{i.name}" for i in images],
            "patch": args.patch,
        },
        "native_bf16": native_bf16(torch.device("cpu")),
    }
    model, label = full_model(args.full_weights)
    results["full_model"] = label
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"23-block model: {label}", flush=True)
        paths = build_paths(model, folder / "full", calibration, only)
        bf16 = None
        if native_bf16(torch.device("cpu")):
            bf16 = prepare_model(model, "cpu", torch.bfloat16)
        else:
            print("  torch bf16: not timed (this CPU has no native bf16: emulated, slow)")
        print("speed (ratio to ORT fp32 in this run):", flush=True)
        results["speed"] = speed(paths, sizes, 3, bf16)
        print("accuracy (Y-PSNR, standard protocol):", flush=True)
        results["bicubic"] = bicubic(datasets)
        print(f"  bicubic: {results['bicubic']}")
        scored = set(args.accuracy_paths or paths) | {"ORT fp32"}
        only_scored = tuple(path for path in only if path in scored)
        rows = []
        if args.full_weights != "random":
            rows += accuracy(label, {k: v for k, v in paths.items() if k in scored}, datasets)
        for name in args.small:
            small = load_model(name).eval()
            small_paths = build_paths(small, folder / name, calibration, only_scored)
            rows += accuracy(name, small_paths, datasets)
        results["accuracy"] = rows
        results["paths"] = list(paths)
        if not args.quick and not args.no_cli:
            print("esrgan-lab commands (fresh processes):", flush=True)
            onnx_path = folder / "full" / "fp32.onnx"
            results["memory"] = memory_run(folder / "full" / "ov_int8", folder)
            quant = []
            for patch in (64, 128):
                seconds, out = quantize_cli(onnx_path, folder, patch)
                row = {"patch": patch, "seconds": round(seconds, 1)}
                if args.full_weights != "random":
                    scored = accuracy(
                        f"{label}, {patch} px",
                        {
                            "ORT fp32": paths["ORT fp32"],
                            "OpenVINO int8": (OpenVinoModel(out), seconds),
                        },
                        datasets,
                    )
                    row["delta_db"] = {r["dataset"]: r["delta_db"] for r in scored[len(datasets) :]}
                quant.append(row)
            results["quantize_cli"] = quant
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
