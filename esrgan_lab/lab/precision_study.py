"""The precision appendix's study: fp32, bf16/fp16 autocast, ONNX fp16 and int8, scored.

The vendor's table reported ESRGAN_x4 (3x128x128, DIV2K) as fp32 19.688 dB / 0.605,
fp16 21.939 / 0.639 and int8 with percentile calibration 18.801 / 0.510 on a vendor
accelerator. This module rebuilds that study with open tools:

* torch **fp32** eager (the reference), torch **bf16** autocast (CPU or CUDA) and torch
  **fp16** autocast (CUDA only: on the CPU it raises :class:`ConfigError`);
* ONNX Runtime **fp32** and **fp16** graphs (:mod:`esrgan_lab.inference.onnx`);
* ONNX Runtime **int8** post-training static quantization in the QDQ format
  (``onnxruntime.quantization.quantize_static``): per-channel int8 weights, uint8 (or
  int8) activations whose ranges are calibrated with ``Percentile`` (the vendor's method),
  ``MinMax`` or ``Entropy`` on a calibration set.

int8 calibration and quantization are core code (:mod:`esrgan_lab.inference.int8`, also
behind ``esrgan-lab quantize``); this module builds the variants side by side and scores
them for the precision appendix (notebook 06).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..inference.int8 import (
    CALIBRATION_METHODS,
    CalibMethod,
    ImageCalibrationReader,
    Protocol,
    evaluation_images,
    preprocess,
    quantize_onnx_int8,
)
from ..timing import time_runs

# --------------------------------------------------------------------------- torch


class AutocastModel(nn.Module):
    """Run ``model`` under ``torch.autocast`` and return float32 (same contract as fp32).

    Args:
        model: The fp32 model (its parameters stay fp32; autocast casts per op).
        dtype: ``torch.bfloat16`` or ``torch.float16``.

    Shapes:
        ``(N, 3, H, W)`` float32 -> ``(N, 3, sH, sW)`` float32.
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.model = model
        self.dtype = dtype
        self.scale = getattr(model, "scale", 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, dtype=self.dtype):
            y = self.model(x)
        return y.float()


def autocast_model(
    model: nn.Module, dtype: Literal["bf16", "fp16"] | torch.dtype, device: str | torch.device
) -> AutocastModel:
    """Wrap ``model`` for bf16/fp16 autocast on ``device``, refusing what it cannot do.

    Raises:
        ConfigError: fp16 on a non-CUDA device (CPU fp16 convolutions are not a
            supported fast path; use bf16 there), or bf16 on a GPU without bf16.
    """
    dev = torch.device(device)
    dt = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(dtype, dtype)  # type: ignore[arg-type]
    if dt not in (torch.bfloat16, torch.float16):
        raise ConfigError(f"autocast dtype must be bf16 or fp16, got {dtype!r}")
    if dt == torch.float16 and dev.type != "cuda":
        raise ConfigError(
            f"fp16 autocast needs a CUDA device (got {dev.type}); use bf16 on the CPU, "
            "or the fp16 ONNX model"
        )
    if dt == torch.bfloat16 and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("this GPU does not support bf16; use fp16")
    return AutocastModel(model.to(dev).eval(), dt).eval()


# --------------------------------------------------------------------------- variants


@dataclass
class PrecisionVariant:
    """One precision variant of the model, ready to run and score.

    Attributes:
        name: Row label, e.g. ``"int8 percentile (ORT)"``.
        precision: ``fp32``, ``bf16``, ``fp16`` or ``int8``.
        runtime: ``"torch"``, ``"onnxruntime"`` or ``"openvino"``.
        runner: An ``nn.Module`` (NCHW float), an :class:`~esrgan_lab.inference.onnx.OnnxModel`
            or an :class:`~esrgan_lab.inference.openvino.OpenVinoModel`; all are accepted by
            :func:`esrgan_lab.evaluation.evaluate.evaluate_model`.
        path: The ONNX file or IR folder, or ``None`` for torch variants.
        size_bytes: File size (ONNX) or parameter bytes at the stored precision (torch).
        seconds: Time it took to build (export, convert, calibrate + quantize).
    """

    name: str
    precision: str
    runtime: str
    runner: Any
    path: Path | None = None
    size_bytes: int = 0
    seconds: float = 0.0

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(N, 3, H, W)`` float32 -> float32 output (not clamped), on the CPU."""
        if isinstance(self.runner, nn.Module):
            param = next(self.runner.parameters())
            with torch.no_grad():
                y = self.runner(torch.from_numpy(x).to(param.device))
            return y.float().cpu().numpy()
        return self.runner.run(x)


def _param_bytes(model: nn.Module, bytes_per: int) -> int:
    return sum(p.numel() for p in model.parameters()) * bytes_per


def _count(n: int, noun: str) -> str:
    """``"1 image"``, ``"2 images"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _onnx_variant(name: str, precision: str, path: Path, seconds: float) -> PrecisionVariant:
    from ..inference.onnx import OnnxModel

    return PrecisionVariant(
        name, precision, "onnxruntime", OnnxModel(path), path, path.stat().st_size, seconds
    )


def build_variants(
    model: nn.Module,
    workdir: str | os.PathLike[str],
    reader: ImageCalibrationReader | None,
    methods: Sequence[CalibMethod] = CALIBRATION_METHODS,
    device: str = "cpu",
    activation_type: Literal["uint8", "int8"] = "uint8",
    include: Sequence[str] = (
        "fp32",
        "bf16",
        "fp16",
        "onnx-fp32",
        "onnx-fp16",
        "int8",
        "int8-openvino",
    ),
    log: Callable[[str], None] | None = None,
) -> list[PrecisionVariant]:
    """Every precision variant of ``model``: torch fp32/bf16(/fp16 on CUDA), ORT fp32/fp16/int8,
    and OpenVINO int8 (NNCF, :func:`esrgan_lab.inference.openvino.quantize_openvino_int8`).

    ONNX files go to ``workdir`` (``model_fp32.onnx``, ``model_fp16.onnx``,
    ``model_int8_<method>.onnx``, the IR folder ``model_int8_openvino``). Torch fp16 is
    skipped (not an error) unless ``device`` is CUDA, torch bf16 unless the device computes
    bf16 natively
    (:func:`esrgan_lab.training.runtime.native_bf16`); int8 variants need ``reader``.
    """
    from ..inference.onnx import convert_fp16, export_onnx

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    say = log or (lambda _msg: None)
    model = model.eval()
    out: list[PrecisionVariant] = []
    if "fp32" in include:
        size = _param_bytes(model, 4)
        out.append(PrecisionVariant("fp32 (torch)", "fp32", "torch", model, None, size))
    from ..training.runtime import native_bf16

    dev = torch.device(device)
    if "bf16" in include and not native_bf16(dev):
        say(
            f"bf16 skipped: {dev.type} has no native bf16 here (it would be emulated, ~100x slower)"
        )
    for kind in ("bf16", "fp16"):
        wanted = kind in include and (dev.type == "cuda" if kind == "fp16" else native_bf16(dev))
        if wanted:
            start = time.perf_counter()
            runner = autocast_model(model, kind, device)
            seconds = time.perf_counter() - start
            name = f"{kind} autocast (torch)"
            out.append(
                PrecisionVariant(name, kind, "torch", runner, None, _param_bytes(model, 2), seconds)
            )
    if not any(k in include for k in ("onnx-fp32", "onnx-fp16", "int8", "int8-openvino")):
        return out
    fp32_path = work / "model_fp32.onnx"
    start = time.perf_counter()
    say(export_onnx(model, fp32_path).summary())
    if "onnx-fp32" in include:
        out.append(_onnx_variant("fp32 (ORT)", "fp32", fp32_path, time.perf_counter() - start))
    if "onnx-fp16" in include:
        start = time.perf_counter()
        fp16_path = convert_fp16(fp32_path, work / "model_fp16.onnx")
        out.append(_onnx_variant("fp16 (ORT)", "fp16", fp16_path, time.perf_counter() - start))
    if "int8" in include:
        if reader is None:
            raise ConfigError("int8 variants need a calibration reader")
        for method in methods:
            start = time.perf_counter()
            target = work / f"model_int8_{method}.onnx"
            path = quantize_onnx_int8(
                fp32_path, target, reader, method, activation_type=activation_type
            )
            seconds = time.perf_counter() - start
            say(f"int8 {method}: calibrated on {_count(len(reader), 'image')} in {seconds:.1f} s")
            out.append(_onnx_variant(f"int8 {method} (ORT)", "int8", path, seconds))
    if "int8-openvino" in include:
        from ..inference.openvino import OpenVinoModel
        from ..inference.openvino import quantize_openvino_int8 as ov_quantize

        if reader is None:
            raise ConfigError("int8 variants need a calibration reader")
        start = time.perf_counter()
        folder = ov_quantize(fp32_path, work / "model_int8_openvino", reader.inputs, quiet=True)
        seconds = time.perf_counter() - start
        say(
            f"int8 NNCF (OpenVINO): calibrated on {_count(len(reader), 'image')} in {seconds:.1f} s"
        )
        size = sum(f.stat().st_size for f in folder.iterdir())
        variant = PrecisionVariant(
            "int8 NNCF (OpenVINO)", "int8", "openvino", OpenVinoModel(folder), folder, size, seconds
        )
        out.append(variant)
    return out


# --------------------------------------------------------------------------- measuring


def output_difference(reference: np.ndarray, output: np.ndarray) -> dict[str, float]:
    """Max and mean abs difference of two float outputs, both clamped to [0, 1] first
    (what reaches the image), in units of the [0, 1] range."""
    a = np.clip(np.asarray(reference, np.float64), 0, 1)
    b = np.clip(np.asarray(output, np.float64), 0, 1)
    diff = np.abs(a - b)
    return {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean())}


def measure_latency(
    variant: PrecisionVariant, x: np.ndarray, repeats: int = 5, warmup: int = 1
) -> dict[str, float]:
    """Median and min wall time of ``variant.forward(x)`` in seconds (CUDA synchronised)."""
    cuda = isinstance(variant.runner, nn.Module) and any(
        p.is_cuda for p in variant.runner.parameters()
    )
    times = time_runs(
        lambda: variant.forward(x), repeats, warmup, torch.cuda.synchronize if cuda else None
    )
    return {"median_s": float(np.median(times)), "min_s": float(np.min(times))}


@dataclass
class PrecisionRow:
    """One row of the precision table (see :func:`precision_table`)."""

    variant: str
    precision: str
    runtime: str
    size_mb: float
    max_abs_diff: float
    mean_abs_diff: float
    latency_ms: float
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "scores"}
        for protocol, s in self.scores.items():
            for metric, value in s.items():
                d[f"{protocol}_{metric}"] = value
        return d


def precision_table(
    variants: Sequence[PrecisionVariant],
    datasets: Sequence[str],
    protocols: Sequence[Protocol] = ("vendor", "standard"),
    diff_inputs: Sequence[np.ndarray] = (),
    niqe: bool = True,
    max_images: int | None = None,
    latency_repeats: int = 3,
    scale: int = 4,
    keep_outputs: dict[str, dict[str, np.ndarray]] | None = None,
) -> list[PrecisionRow]:
    """Score every variant with the same protocols on the same images.

    Args:
        variants: From :func:`build_variants`; the first is the reference for the
            output differences (normally ``fp32 (torch)``).
        datasets: Evaluation datasets (names, folders or ``"skimage"``).
        protocols: ``"vendor"`` and/or ``"standard"`` (:mod:`esrgan_lab.metrics.scoring`).
        diff_inputs: ``(1, 3, h, w)`` inputs on which float outputs are compared with the
            first variant (default: the vendor inputs of the first evaluation images).
        niqe: Also compute NIQE (``None`` where the pristine model is missing).
        max_images: Per dataset.
        latency_repeats: Timed runs at ``1x3x128x128`` per variant.
        keep_outputs: If given, filled with ``variant -> {"protocol/dataset/image": SR}``.

    Returns:
        One :class:`PrecisionRow` per variant.
    """
    from ..evaluation.evaluate import evaluate_model

    if not variants:
        return []
    if not diff_inputs:
        images = [
            img
            for d in datasets
            for img in evaluation_images([d], max_images=min(2, max_images or 2))
        ]
        diff_inputs = [preprocess(i, "vendor", scale) for i in images[:2]]
    reference = [variants[0].forward(x) for x in diff_inputs]
    probe = np.random.default_rng(0).random((1, 3, 128, 128), dtype=np.float32)
    rows = []
    for i, v in enumerate(variants):
        # The first variant is the reference: its outputs are not computed twice.
        outs = reference if i == 0 else [v.forward(x) for x in diff_inputs]
        diffs = [output_difference(r, o) for r, o in zip(reference, outs)]
        row = PrecisionRow(
            v.name,
            v.precision,
            v.runtime,
            v.size_bytes / 1e6,
            max(d["max_abs_diff"] for d in diffs),
            float(np.mean([d["mean_abs_diff"] for d in diffs])),
            measure_latency(v, probe, repeats=latency_repeats)["median_s"] * 1e3,
        )
        for protocol in protocols:
            kept: dict[str, np.ndarray] = {}
            report = evaluate_model(
                v.runner,
                list(datasets),
                scale=scale,
                protocol=protocol,
                niqe=niqe,
                progress=False,
                keep_outputs=kept,
                max_images=max_images,
            )
            means = report.means()
            m = means.get("all") or next(iter(means.values()))
            row.scores[protocol] = {"psnr": m["psnr"], "ssim": m["ssim"], "niqe": m["niqe"]}
            if keep_outputs is not None:
                store = keep_outputs.setdefault(v.name, {})
                store.update({f"{protocol}/{k}": img for k, img in kept.items()})
        rows.append(row)
    return rows


def format_table(rows: Sequence[PrecisionRow]) -> str:
    """Plain-text table of :func:`precision_table` rows."""
    protocols = list(rows[0].scores) if rows else []
    head = f"{'variant':<24} {'size MB':>8} {'max|d|':>8} {'mean|d|':>9} {'ms':>8}"
    for p in protocols:
        head += f" {p + ' PSNR':>14} {'SSIM':>6} {'NIQE':>6}"
    lines = [head]

    def fmt(v: float | None, spec: str) -> str:
        return "n/a" if v is None else format(v, spec)

    for r in rows:
        line = (
            f"{r.variant:<24} {r.size_mb:8.2f} {r.max_abs_diff:8.2e} {r.mean_abs_diff:9.2e} "
            f"{r.latency_ms:8.1f}"
        )
        for p in protocols:
            s = r.scores[p]
            line += f" {fmt(s['psnr'], '14.3f')} {fmt(s['ssim'], '6.3f')} {fmt(s['niqe'], '6.2f')}"
        lines.append(line)
    return "\n".join(lines)
