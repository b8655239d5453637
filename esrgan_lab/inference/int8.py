"""int8 post-training quantization of an exported ONNX graph, calibrated on training images.

ONNX Runtime static quantization in the QDQ format
(``onnxruntime.quantization.quantize_static``): per-channel int8 weights, uint8 (or int8)
activations whose ranges are calibrated with ``Percentile`` (the vendor's method),
``MinMax`` or ``Entropy``.

Calibration data comes from *training* images (BSD68 / SunHays80 under
``ESRGAN_LAB_DATA``, else scikit-image samples other than the evaluation ones), never
from the evaluation sets (Set5 / Set14): :func:`assert_disjoint` compares pixel content,
not names, and raises :class:`DataError` on any overlap (scikit-image's ``cat()`` *is*
``chelsea()``, for example). Calibration inputs are preprocessed exactly as the protocol
under evaluation feeds the network (vendor: whole image to 128x128 with ``INTER_AREA``,
:func:`esrgan_lab.data.vendor.get_image_data`).

Weights are quantized with 7 bits by default (``reduce_range``). On x86 CPUs without VNNI
(AVX2 only) ONNX Runtime multiplies uint8 activations by int8 weights with ``vpmaddubsw``,
whose int16 pair sums saturate with full 8-bit weights: on an AVX2 Zen 2 host the
``lab-psnr-x4`` min-max int8 model lost 5.4 dB on Set5 with 8-bit weights (0.11 dB where
VNNI is present). A file does not know where it will run, so the default is safe everywhere
at the cost of one bit of weight precision.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from .. import settings
from ..data.degrade import standard_pair
from ..data.images import array_to_tensor
from ..data.samples import skimage_sample
from ..data.sources import read_gt, resolve_dataset
from ..data.vendor import VENDOR_INPUT_SIZE, get_image_data, vendor_pair
from ..errors import ConfigError, DataError

Protocol = Literal["vendor", "standard"]
CalibMethod = Literal["percentile", "minmax", "entropy"]

#: Calibration methods in the order tables list them (the vendor benchmark used percentile).
CALIBRATION_METHODS: tuple[CalibMethod, ...] = ("percentile", "minmax", "entropy")
#: Training sets calibration images are drawn from (``$ESRGAN_LAB_DATA/<name>``).
CALIBRATION_DATASETS: tuple[str, ...] = ("BSD68", "SunHays80")
#: Evaluation sets the calibration set must never overlap.
EVALUATION_DATASETS: tuple[str, ...] = ("Set5", "Set14")
#: scikit-image samples used for calibration when no training set is available. None of
#: them is in :data:`esrgan_lab.data.sources.SKIMAGE_IMAGES` (the evaluation fallback).
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
#: Percentile of |activation| kept by Percentile calibration (ONNX Runtime's default).
DEFAULT_PERCENTILE = 99.999
#: Side of the LQ centre crop used to calibrate for the standard protocol.
STANDARD_PATCH = 128


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
            CalibrationImage(files[i][0], files[i][1].stem, files[i][1], read_gt(files[i][1]))
            for i in sorted(picks)
        ]
    return [
        CalibrationImage("skimage", name, None, skimage_sample(name))
        for name in SKIMAGE_CALIBRATION[:count]
    ]


def evaluation_images(
    datasets: Sequence[str] = EVALUATION_DATASETS, max_images: int | None = None
) -> list[CalibrationImage]:
    """The evaluation images (``Set5``/``Set14`` or the scikit-image fallback), loaded."""
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


def preprocess(
    img: CalibrationImage,
    protocol: Protocol = "vendor",
    scale: int = 4,
    patch: int = STANDARD_PATCH,
) -> np.ndarray:
    """The ``(1, 3, h, w)`` float32 RGB [0, 1] network input ``protocol`` makes of ``img``.

    ``vendor``: the vendor's :func:`esrgan_lab.data.vendor.get_image_data` (whole image to 128x128,
    ``INTER_AREA``) for 3-channel files; the identical steps on the pixels otherwise
    (gray images become three equal channels, as the evaluation feeds them).
    ``standard``: the MATLAB-bicubic LQ of the modcropped image
    (:func:`esrgan_lab.data.degrade.standard_pair`), centre-cropped to at most
    ``patch`` pixels a side.
    """
    if patch < 8:
        raise ConfigError(f"calibration patch must be >= 8 pixels, got {patch}")

    if protocol == "vendor":
        if img.path is not None and img.image.ndim == 3:
            size = VENDOR_INPUT_SIZE
            return get_image_data(img.path, (1, 3, size, size))[1]
        _, lq = vendor_pair(img.image, scale)
    elif protocol == "standard":
        _, lq = standard_pair(img.image, scale)
        h, w = lq.shape[:2]
        ph, pw = min(h, patch), min(w, patch)
        top, left = (h - ph) // 2, (w - pw) // 2
        lq = lq[top : top + ph, left : left + pw]
    else:
        raise ConfigError(f"unknown protocol {protocol!r} (vendor or standard)")
    return array_to_tensor(_as_bgr(lq)).numpy()


class ImageCalibrationReader:
    """An ONNX Runtime ``CalibrationDataReader`` over preprocessed calibration inputs.

    (A structural one: ``CalibrationDataReader``'s ``__subclasshook__`` accepts any class
    with ``get_next``, so onnxruntime is not imported until quantization runs.)

    It supports ``set_range``, which :func:`quantize_onnx_int8` uses (``CalibStridedMinMax=1``)
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
    images: Sequence[CalibrationImage],
    protocol: Protocol = "vendor",
    scale: int = 4,
    patch: int = STANDARD_PATCH,
) -> ImageCalibrationReader:
    """A calibration reader over ``images`` preprocessed with ``protocol`` (``patch``: the
    standard protocol's LQ crop side)."""
    return ImageCalibrationReader([preprocess(i, protocol, scale, patch) for i in images])


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


def quantize_onnx_int8(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    reader: ImageCalibrationReader,
    method: CalibMethod = "percentile",
    *,
    activation_type: Literal["uint8", "int8"] = "uint8",
    per_channel: bool = True,
    reduce_range: bool = True,
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
        reduce_range: 7-bit weights (ONNX Runtime's ``reduce_range``; see the module
            docstring for why it is the default).
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
    from .onnx import check_output_path, write_metadata

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
                reduce_range=reduce_range,
                activation_type=types[activation_type],
                weight_type=QuantType.QInt8,
                calibrate_method=methods[method],
                extra_options=extra,
            )
        calibration = {"method": method, "images": len(reader)}
        calibration.update(activation_type=activation_type, reduce_range=reduce_range)
        calibration.update(per_channel=per_channel)
        if method == "percentile":
            calibration["percentile"] = percentile
        write_metadata(tmp, {"precision": f"int8-{method}", "calibration": calibration})
    return out
