"""Precision variants of one RRDBNet: fp32, bf16/fp16 autocast, ONNX fp16 and int8 PTQ.

The seed's table reported ESRGAN_x4 (3x128x128, DIV2K) as fp32 19.688 dB / 0.605,
fp16 21.939 / 0.639 and int8 with percentile calibration 18.801 / 0.510 on a vendor
accelerator. This module rebuilds that study with open tools:

* torch **fp32** eager (the reference), torch **bf16** autocast (CPU or CUDA) and torch
  **fp16** autocast (CUDA only: on the CPU it raises :class:`ConfigError`);
* ONNX Runtime **fp32** and **fp16** graphs (:mod:`esrgan_lab.inference.onnx`);
* ONNX Runtime **int8** post-training static quantization in the QDQ format
  (``onnxruntime.quantization.quantize_static``): per-channel int8 weights, uint8 (or
  int8) activations whose ranges are calibrated with ``Percentile`` (the seed's method),
  ``MinMax`` or ``Entropy`` on a calibration set.

Calibration data comes from *training* images (BSD68 / SunHays80 under
``ESRGAN_LAB_DATA``, else scikit-image samples other than the evaluation ones), never
from the evaluation sets (Set5 / Set14): :func:`assert_disjoint` compares pixel content,
not names, and raises :class:`DataError` on any overlap (scikit-image's ``cat()`` *is*
``chelsea()``, for example). Calibration inputs are preprocessed exactly as the protocol
under evaluation feeds the network (seed: whole image to 128x128 with ``INTER_AREA``,
:func:`esrgan_lab.data.seed.get_image_data`).

Note on the name: this module is ``precision``, not ``quantize``, because
``esrgan_lab.quantize`` is already the public uint8 rounding function of
:mod:`esrgan_lab.data.degrade`; a submodule of that name would shadow it once imported.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch
from torch import nn

from .. import settings
from ..errors import ConfigError, DataError

Protocol = Literal["seed", "standard"]
CalibMethod = Literal["percentile", "minmax", "entropy"]

#: Calibration methods in the order tables list them (the seed used percentile).
CALIBRATION_METHODS: tuple[CalibMethod, ...] = ("percentile", "minmax", "entropy")
#: Training sets calibration images are drawn from (``$ESRGAN_LAB_DATA/<name>``).
CALIBRATION_DATASETS: tuple[str, ...] = ("BSD68", "SunHays80")
#: Evaluation sets the calibration set must never overlap.
EVALUATION_DATASETS: tuple[str, ...] = ("Set5", "Set14")
#: scikit-image samples used for calibration when no training set is available. None of
#: them is in :data:`esrgan_lab.metrics.evaluate.SKIMAGE_IMAGES` (the evaluation fallback).
SKIMAGE_CALIBRATION: tuple[str, ...] = (
    "immunohistochemistry",
    "hubble_deep_field",
    "colorwheel",
    "camera",
    "brick",
    "grass",
    "gravel",
    "coins",
    "clock",
    "page",
)
#: Weights tried by :func:`select_weights`, best first: this project's PSNR-oriented
#: model, its GAN model, then the official ESRGAN models if they are in the cache.
WEIGHTS_PREFERENCE: tuple[str, ...] = (
    "lab-psnr-x4",
    "lab-gan-x4",
    "esrgan-x4",
    "esrgan-x4-basicsr",
    "esrgan-psnr-x4",
)
#: Config of the deterministic stand-in when no weights are on disk (CI size).
SMALL_CONFIG: dict[str, int] = {"num_feat": 32, "num_block": 2, "num_grow_ch": 16}
#: Percentile of |activation| kept by Percentile calibration (ONNX Runtime's default).
DEFAULT_PERCENTILE = 99.999
#: Side of the LQ centre crop used to calibrate for the standard protocol.
STANDARD_PATCH = 128


# --------------------------------------------------------------------------- weights


@dataclass
class WeightsChoice:
    """The model a precision study runs on, and how loudly to say what it is.

    Attributes:
        model: The RRDBNet in eval mode on the CPU.
        name: Weights name, or ``None`` for the random stand-in.
        source: ``"project"``, ``"official"`` or ``"random"``.
        note: One sentence for notebooks and logs (upper-case warning for ``random``).
    """

    model: nn.Module
    name: str | None
    source: Literal["project", "official", "random"]
    note: str


def _weights_on_disk(name: str) -> bool:
    from ..errors import EsrganLabError
    from ..weights.registry import get_entry

    try:
        return get_entry(name).path.is_file()
    except EsrganLabError:
        return False


def select_weights(
    prefer: Sequence[str] = WEIGHTS_PREFERENCE,
    fallback_config: dict[str, Any] | None = None,
    seed: int = 0,
) -> WeightsChoice:
    """The best weights on disk for the precision study, or a deterministic random model.

    Nothing is downloaded. The project's own ``lab-psnr-x4`` comes first (small, trained
    here), then the official ESRGAN checkpoints when they are in the cache. Without any,
    an RRDBNet of ``fallback_config`` (default :data:`SMALL_CONFIG`) initialised from
    ``seed`` stands in: its outputs are not super-resolution, but every precision
    comparison (output differences, latency, size) is still meaningful, and the same
    seed gives the same weights on every machine.

    Args:
        prefer: Weights names to try, in order.
        fallback_config: RRDBNet keyword arguments of the stand-in.
        seed: Seed of the stand-in's initialisation (the global RNG is left untouched).
    """
    from ..weights.loading import load_model

    for name in prefer:
        if _weights_on_disk(name):
            source: Literal["project", "official"] = (
                "project" if name.startswith("lab-") else "official"
            )
            return WeightsChoice(
                load_model(name).eval(), name, source, f"loaded the {source} weights {name!r}"
            )
    from ..model.rrdbnet import RRDBNet

    config = dict(SMALL_CONFIG if fallback_config is None else fallback_config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RRDBNet(**config).eval()
    described = ", ".join(f"{k}={v}" for k, v in config.items()) or "paper defaults"
    return WeightsChoice(
        model,
        None,
        "random",
        f"NO TRAINED WEIGHTS FOUND (tried {', '.join(prefer)}): using a RANDOMLY "
        f"INITIALISED RRDBNet ({described}, seed {seed}). Its PSNR/SSIM/NIQE say nothing "
        "about super-resolution; only the differences between precisions mean something.",
    )


# --------------------------------------------------------------------------- calibration


@dataclass
class CalibrationImage:
    """One calibration image: its origin and its pixels (uint8 BGR, or 2-D gray)."""

    dataset: str
    name: str
    path: Path | None
    image: np.ndarray


def _as_bgr(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img


def calibration_images(
    count: int = 8,
    datasets: Sequence[str] = CALIBRATION_DATASETS,
    seed: int = 0,
) -> list[CalibrationImage]:
    """Draw ``count`` training images for int8 calibration (never evaluation images).

    Images are drawn at random (seeded) from the union of ``datasets`` found under
    ``ESRGAN_LAB_DATA``; without any, from :data:`SKIMAGE_CALIBRATION`.

    Raises:
        ConfigError: ``count < 1``.
        DataError: A requested dataset name is an evaluation set.
    """
    from ..metrics.evaluate import read_image, resolve_dataset

    if count < 1:
        raise ConfigError(f"calibration count must be >= 1, got {count}")
    clash = sorted(set(datasets) & set(EVALUATION_DATASETS))
    if clash:
        raise DataError(f"calibration datasets {clash} are evaluation sets; use training images")
    files: list[tuple[str, Path]] = []
    for name in datasets:
        if settings.dataset_dir(name) is not None:
            files += [(name, r.path) for r in resolve_dataset(name) if r.path is not None]
    rng = np.random.default_rng(seed)
    if files:
        picks = rng.permutation(len(files))[:count]
        return [
            CalibrationImage(files[i][0], files[i][1].stem, files[i][1], read_image(files[i][1]))
            for i in sorted(picks)
        ]
    from skimage import data

    out = []
    for name in SKIMAGE_CALIBRATION[:count]:
        arr = getattr(data, name)()
        arr = arr[..., :3][..., ::-1] if arr.ndim == 3 else arr  # RGB(A) -> BGR
        out.append(CalibrationImage("skimage", name, None, np.ascontiguousarray(arr)))
    return out


def evaluation_images(
    datasets: Sequence[str] = EVALUATION_DATASETS, max_images: int | None = None
) -> list[CalibrationImage]:
    """The evaluation images (``Set5``/``Set14`` or the scikit-image fallback), loaded."""
    from ..metrics.evaluate import resolve_dataset

    out = []
    for name in datasets:
        try:
            records = resolve_dataset(name)[:max_images]
        except DataError:
            continue
        out += [CalibrationImage(r.dataset, r.name, r.path, r.load()) for r in records]
    if not out:
        out = [
            CalibrationImage(r.dataset, r.name, None, r.load())
            for r in resolve_dataset("skimage")[:max_images]
        ]
    return out


def image_fingerprint(img: np.ndarray) -> str:
    """SHA-256 of the pixels as 3-channel uint8 (same picture, same digest, any file)."""
    bgr = np.ascontiguousarray(_as_bgr(img))
    return hashlib.sha256(str(bgr.shape).encode() + bgr.tobytes()).hexdigest()


def _thumbnail(img: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(_as_bgr(img), cv2.COLOR_BGR2GRAY)
    return cv2.resize(gray, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32)


def assert_disjoint(
    calibration: Sequence[CalibrationImage],
    evaluation: Sequence[CalibrationImage],
    near_duplicate: float = 2.0,
) -> None:
    """Raise if any calibration image is (nearly) an evaluation image.

    Three checks: the same file path; identical pixels (:func:`image_fingerprint`); a
    near duplicate (mean absolute difference of 16x16 gray thumbnails below
    ``near_duplicate`` grey levels, which catches re-encoded or resized copies).

    Raises:
        DataError: Naming the first overlapping pair.
    """
    eval_paths = {e.path.resolve(): e for e in evaluation if e.path is not None}
    eval_hashes = {image_fingerprint(e.image): e for e in evaluation}
    eval_thumbs = [(e, _thumbnail(e.image)) for e in evaluation]
    for c in calibration:
        twin = None
        if c.path is not None and c.path.resolve() in eval_paths:
            twin = eval_paths[c.path.resolve()]
        twin = twin or eval_hashes.get(image_fingerprint(c.image))
        if twin is None:
            thumb = _thumbnail(c.image)
            twin = next(
                (e for e, t in eval_thumbs if float(np.abs(t - thumb).mean()) < near_duplicate),
                None,
            )
        if twin is not None:
            raise DataError(
                f"calibration image {c.dataset}/{c.name} is evaluation image "
                f"{twin.dataset}/{twin.name}: calibrate on training images only"
            )


def preprocess(img: CalibrationImage, protocol: Protocol = "seed", scale: int = 4) -> np.ndarray:
    """The ``(1, 3, h, w)`` float32 RGB [0, 1] network input ``protocol`` makes of ``img``.

    ``seed``: the seed's :func:`esrgan_lab.data.seed.get_image_data` (whole image to 128x128,
    ``INTER_AREA``) for 3-channel files; the identical steps on the pixels otherwise
    (gray images become three equal channels, as the evaluation feeds them).
    ``standard``: the MATLAB-bicubic LQ of the modcropped image
    (:func:`esrgan_lab.metrics.evaluate.standard_pair`), centre-cropped to at most
    :data:`STANDARD_PATCH` pixels a side.
    """
    from ..data.seed import get_image_data
    from ..metrics.evaluate import SEED_INPUT_SIZE, seed_pair, standard_pair

    if protocol == "seed":
        if img.path is not None and img.image.ndim == 3:
            size = SEED_INPUT_SIZE
            return get_image_data(img.path, (1, 3, size, size))[1]
        _, lq = seed_pair(img.image, scale)
    elif protocol == "standard":
        _, lq = standard_pair(img.image, scale)
        h, w = lq.shape[:2]
        ph, pw = min(h, STANDARD_PATCH), min(w, STANDARD_PATCH)
        top, left = (h - ph) // 2, (w - pw) // 2
        lq = lq[top : top + ph, left : left + pw]
    else:
        raise ConfigError(f"unknown protocol {protocol!r} (seed or standard)")
    rgb = _as_bgr(lq)[..., ::-1].astype(np.float32) / 255.0
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])


class ImageCalibrationReader:
    """An ONNX Runtime ``CalibrationDataReader`` over preprocessed calibration inputs.

    (A structural one: ``CalibrationDataReader``'s ``__subclasshook__`` accepts any class
    with ``get_next``, so onnxruntime is not imported until quantization runs.)

    It supports ``set_range``, which :func:`quantize_int8` uses (``CalibStridedMinMax=1``)
    to calibrate one image at a time: ONNX Runtime's calibrators keep every
    intermediate tensor of every batch in memory before reducing them, which for the
    full 23-block model is gigabytes per 128x128 image.

    Args:
        inputs: ``(1, 3, h, w)`` float32 arrays.
        input_name: Graph input name.
    """

    def __init__(self, inputs: Sequence[np.ndarray], input_name: str = "lq") -> None:
        if not inputs:
            raise DataError("calibration set is empty")
        self.inputs = [np.ascontiguousarray(x, dtype=np.float32) for x in inputs]
        self.input_name = input_name
        self.start, self.end, self.index = 0, len(self.inputs), 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.index >= self.end:
            return None
        self.index += 1
        return {self.input_name: self.inputs[self.index - 1]}

    def __len__(self) -> int:
        return len(self.inputs)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.start, self.index = start_index, start_index
        self.end = min(end_index, len(self.inputs))

    def rewind(self) -> None:
        """Start again from the first input (one reader serves several quantizations)."""
        self.start, self.end, self.index = 0, len(self.inputs), 0

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        while (item := self.get_next()) is not None:
            yield item


def make_reader(
    images: Sequence[CalibrationImage], protocol: Protocol = "seed", scale: int = 4
) -> ImageCalibrationReader:
    """A calibration reader over ``images`` preprocessed with ``protocol``."""
    return ImageCalibrationReader([preprocess(i, protocol, scale) for i in images])


# --------------------------------------------------------------------------- int8


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence ONNX Runtime's quantization prints and pre-processing warnings."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def quantize_int8(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    reader: ImageCalibrationReader,
    method: CalibMethod = "percentile",
    *,
    activation_type: Literal["uint8", "int8"] = "uint8",
    per_channel: bool = True,
    percentile: float = DEFAULT_PERCENTILE,
    symmetric_activations: bool | None = None,
    quiet: bool = True,
) -> Path:
    """Static int8 QDQ quantization of an fp32 ONNX graph, calibrated on ``reader``.

    Weights are int8, symmetric, one scale per output channel (``per_channel``);
    activations ``activation_type`` with ranges from ``method``:

    * ``percentile``: the ``percentile`` of |x| over all calibration values (ONNX
      Runtime's default for this method is symmetric, |x|-based ranges);
    * ``minmax``: the observed min and max (outliers set the scale);
    * ``entropy``: the threshold minimising the KL divergence between the fp32 and
      the quantized histogram.

    Args:
        src: fp32 ONNX file (from :func:`esrgan_lab.inference.onnx.export_onnx`).
        dst: Output ``.onnx`` (atomic write, never ``src``).
        reader: Calibration inputs (rewound before use).
        method: ``"percentile"``, ``"minmax"`` or ``"entropy"``.
        activation_type: ``"uint8"`` (ONNX Runtime's recommended CPU format) or ``"int8"``.
        per_channel: Per-output-channel weight scales.
        percentile: For ``percentile`` only.
        symmetric_activations: Force symmetric (True) or asymmetric (False) activation
            ranges; ``None`` keeps ONNX Runtime's per-method default.
        quiet: Swallow ONNX Runtime's progress prints.

    Returns:
        ``dst``.

    Raises:
        ConfigError: Unknown method/type or bad output path.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from ..fileio import atomic_path
    from ..inference.onnx import _set_metadata, check_output_path

    methods = {
        "percentile": CalibrationMethod.Percentile,
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
    }
    if method not in methods:
        raise ConfigError(f"unknown calibration method {method!r} (choose from {list(methods)})")
    types = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    if activation_type not in types:
        raise ConfigError(f"activation_type must be uint8 or int8, got {activation_type!r}")
    out = check_output_path(dst, [src])
    # One image per calibration step bounds memory (see ImageCalibrationReader).
    extra: dict[str, Any] = {"CalibStridedMinMax": 1}
    if method == "percentile":
        extra["CalibPercentile"] = float(percentile)
    if symmetric_activations is not None:
        extra["CalibTensorRangeSymmetric"] = bool(symmetric_activations)
    reader.rewind()
    with atomic_path(out, suffix=".onnx") as tmp:
        with _quiet() if quiet else contextlib.nullcontext():
            quantize_static(
                str(src),
                str(tmp),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                activation_type=types[activation_type],
                weight_type=QuantType.QInt8,
                calibrate_method=methods[method],
                extra_options=extra,
            )
        import onnx

        proto = onnx.load(str(tmp))
        _set_metadata(
            proto,
            {
                "precision": f"int8-{method}",
                "calibration": {
                    "method": method,
                    "images": len(reader),
                    "activation_type": activation_type,
                    "per_channel": per_channel,
                    **({"percentile": percentile} if method == "percentile" else {}),
                },
            },
        )
        onnx.save(proto, str(tmp))
    return out


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
class Variant:
    """One precision variant of the model, ready to run and score.

    Attributes:
        name: Row label, e.g. ``"int8 percentile (ORT)"``.
        precision: ``fp32``, ``bf16``, ``fp16`` or ``int8``.
        runtime: ``"torch"`` or ``"onnxruntime"``.
        runner: An ``nn.Module`` (NCHW float) or an :class:`~esrgan_lab.inference.onnx.OnnxModel`;
            both are accepted by :func:`esrgan_lab.metrics.evaluate.evaluate_model`.
        path: The ONNX file, or ``None`` for torch variants.
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


def build_variants(
    model: nn.Module,
    workdir: str | os.PathLike[str],
    reader: ImageCalibrationReader | None,
    methods: Sequence[CalibMethod] = CALIBRATION_METHODS,
    device: str = "cpu",
    activation_type: Literal["uint8", "int8"] = "uint8",
    include: Sequence[str] = ("fp32", "bf16", "fp16", "onnx-fp32", "onnx-fp16", "int8"),
    log: Callable[[str], None] | None = None,
) -> list[Variant]:
    """Every precision variant of ``model``: torch fp32/bf16(/fp16 on CUDA), ORT fp32/fp16/int8.

    ONNX files go to ``workdir`` (``model_fp32.onnx``, ``model_fp16.onnx``,
    ``model_int8_<method>.onnx``). Torch fp16 is skipped (not an error) unless
    ``device`` is CUDA; int8 variants need ``reader``.
    """
    from ..inference.onnx import OnnxModel, convert_fp16, export_onnx

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    say = log or (lambda _msg: None)
    model = model.eval()
    out: list[Variant] = []
    if "fp32" in include:
        out.append(Variant("fp32 (torch)", "fp32", "torch", model, None, _param_bytes(model, 4)))
    if "bf16" in include:
        start = time.perf_counter()
        runner = autocast_model(model, "bf16", device)
        out.append(
            Variant(
                "bf16 autocast (torch)",
                "bf16",
                "torch",
                runner,
                None,
                _param_bytes(model, 2),
                time.perf_counter() - start,
            )
        )
    if "fp16" in include and torch.device(device).type == "cuda":
        runner = autocast_model(model, "fp16", device)
        out.append(
            Variant("fp16 autocast (torch)", "fp16", "torch", runner, None, _param_bytes(model, 2))
        )
    need_onnx = any(k in include for k in ("onnx-fp32", "onnx-fp16", "int8"))
    if not need_onnx:
        return out
    fp32_path = work / "model_fp32.onnx"
    start = time.perf_counter()
    res = export_onnx(model, fp32_path)
    say(res.summary())
    if "onnx-fp32" in include:
        out.append(
            Variant(
                "fp32 (ORT)",
                "fp32",
                "onnxruntime",
                OnnxModel(fp32_path),
                fp32_path,
                fp32_path.stat().st_size,
                time.perf_counter() - start,
            )
        )
    if "onnx-fp16" in include:
        start = time.perf_counter()
        fp16_path = convert_fp16(fp32_path, work / "model_fp16.onnx")
        out.append(
            Variant(
                "fp16 (ORT)",
                "fp16",
                "onnxruntime",
                OnnxModel(fp16_path),
                fp16_path,
                fp16_path.stat().st_size,
                time.perf_counter() - start,
            )
        )
    if "int8" in include:
        if reader is None:
            raise ConfigError("int8 variants need a calibration reader")
        for method in methods:
            start = time.perf_counter()
            path = quantize_int8(
                fp32_path,
                work / f"model_int8_{method}.onnx",
                reader,
                method,
                activation_type=activation_type,
            )
            seconds = time.perf_counter() - start
            say(f"int8 {method}: calibrated on {len(reader)} images in {seconds:.1f} s")
            out.append(
                Variant(
                    f"int8 {method} (ORT)",
                    "int8",
                    "onnxruntime",
                    OnnxModel(path),
                    path,
                    path.stat().st_size,
                    seconds,
                )
            )
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
    variant: Variant, x: np.ndarray, repeats: int = 5, warmup: int = 1
) -> dict[str, float]:
    """Median and min wall time of ``variant.forward(x)`` in seconds (CUDA synchronised)."""
    for _ in range(warmup):
        variant.forward(x)
    times = []
    cuda = isinstance(variant.runner, nn.Module) and any(
        p.is_cuda for p in variant.runner.parameters()
    )
    for _ in range(max(1, repeats)):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        variant.forward(x)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
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
    variants: Sequence[Variant],
    datasets: Sequence[str],
    protocols: Sequence[Protocol] = ("seed", "standard"),
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
        protocols: ``"seed"`` and/or ``"standard"`` (:mod:`esrgan_lab.metrics.evaluate`).
        diff_inputs: ``(1, 3, h, w)`` inputs on which float outputs are compared with the
            first variant (default: the seed inputs of the first evaluation images).
        niqe: Also compute NIQE (``None`` where the pristine model is missing).
        max_images: Per dataset.
        latency_repeats: Timed runs at ``1x3x128x128`` per variant.
        keep_outputs: If given, filled with ``variant -> {"protocol/dataset/image": SR}``.

    Returns:
        One :class:`PrecisionRow` per variant.
    """
    from ..metrics.evaluate import evaluate_model

    if not variants:
        return []
    if not diff_inputs:
        images = [
            img
            for d in datasets
            for img in evaluation_images([d], max_images=min(2, max_images or 2))
        ]
        diff_inputs = [preprocess(i, "seed", scale) for i in images[:2]]
    reference = [variants[0].forward(x) for x in diff_inputs]
    probe = np.random.default_rng(0).random((1, 3, 128, 128), dtype=np.float32)
    rows = []
    for v in variants:
        outs = [v.forward(x) for x in diff_inputs]
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
