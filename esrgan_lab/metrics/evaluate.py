"""Evaluation runner: score a model (or a folder of outputs) with PSNR, SSIM and NIQE.

Two protocols, made explicit because they give very different numbers for the same
network:

``standard`` (the SR literature; ESRGAN paper Sec. 4.1, BasicSR):
    GT is ``modcrop``-ed to a multiple of ``scale``; LQ is MATLAB bicubic ``1/scale``
    of it, quantised to uint8 (:func:`esrgan_lab.data.degrade.bicubic_degrade`); SR is the
    model output quantised to uint8. PSNR and SSIM are computed on the Y channel
    (MATLAB BT.601) with ``crop_border = scale``. NIQE is computed on SR with the same
    crop. The ``bicubic`` baseline upsamples LQ with the same MATLAB ``imresize``;
    ``nearest`` and ``lanczos`` use ``cv2.resize``.

``seed`` (what the seed benchmark did; reproduced, not recommended):
    LQ is the *whole* image squashed to 128x128 with ``cv2.resize(INTER_AREA)`` (the
    seed's ``get_image_data``; aspect ratio is not kept), SR the ``128*scale`` square
    output. The seed did not say what it compared against; the most plausible reading,
    used here, is: **reference = the GT squashed to the output size with
    ``cv2.resize(INTER_AREA)``; PSNR/SSIM on all three colour channels, no border
    crop**. The seed reported 19.688 dB for ESRGAN_x4. That number is not comparable
    with paper tables, and is low for these reasons: (1) ESRGAN is a perceptual (GAN)
    model that trades PSNR for texture by design - even under the standard protocol
    the published ESRGAN output of baboon scores 20.32 dB against 22.44 dB for plain
    bicubic; (2) the reference is itself a resampled image, not the ground truth, and
    squashing a non-square image distorts it differently at 128 px and at 512 px;
    (3) the LQ is an area-averaged downscale, not the bicubic one the model was trained
    on, so its hallucinated detail lands in the wrong places; (4) PSNR on RGB without
    a border crop counts chroma and border errors that Y PSNR with ``crop = scale``
    leaves out. (For smooth baselines the seed protocol is *not* systematically
    lower: bicubic on Set14 gives 25.93 dB seed vs 26.00 dB standard.)

Image files are read as uint8 BGR, or 2-D for gray files such as Set14's
``bridge.png``. Gray images are scored on their gray values (no Y conversion), as the
MATLAB evaluation scripts behind published tables do (``if size(im, 3) > 1, rgb2ycbcr``):
with it, Set14 x4 bicubic gives the published 26.00 dB; reading ``bridge`` as three
equal channels and taking Y instead would add ~1.3 dB to that image (Y squeezes
[0, 255] into [16, 235]). A network sees a gray image as three equal channels and its
output is converted back with ``cv2.COLOR_BGR2GRAY``.

Pairing rule for ``--sr DIR --gt DIR`` (:func:`pair_outputs`): each SR file is paired
with the GT file whose stem equals the SR stem after removing, in this order, a
leading ``results_`` and then one trailing ``_<tag>`` (``_ESRGAN``, ``_x4``, ``_rlt``,
...) if the full stem has no match. Every SR file must find exactly one GT; GT files
without an SR are not scored.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from .. import settings
from ..data import images
from ..data.degrade import bicubic_degrade, imresize, modcrop, quantize
from ..data.samples import skimage_sample
from ..errors import ConfigError, DataError, ImageReadError
from ..fileio import atomic_write_text
from .psnr_ssim import MetricUnavailable, calculate_psnr, calculate_ssim

Protocol = Literal["standard", "seed"]
#: Model names handled without a network.
BASELINES = ("bicubic", "nearest", "lanczos")
#: Images scikit-image ships, used when no dataset folder is available.
SKIMAGE_IMAGES = ("astronaut", "chelsea", "coffee", "rocket")
#: Input side of the seed's fixed ``1 x 3 x 128 x 128`` network input.
SEED_INPUT_SIZE = 128
IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")

_COMPARISON = {
    "standard": (
        "GT modcropped to scale; LQ = MATLAB bicubic 1/scale, uint8; SR uint8; "
        "PSNR/SSIM on Y (MATLAB BT.601) with crop_border = scale; NIQE on SR, same crop"
    ),
    "seed": (
        "LQ = whole GT resized to 128x128 (cv2 INTER_AREA, aspect not kept); "
        "reference = whole GT resized to the SR size (cv2 INTER_AREA); "
        "PSNR/SSIM on RGB (3 channels), no border crop; NIQE on SR, no crop"
    ),
    "folders": (
        "given SR vs GT modcropped to scale; PSNR/SSIM on Y (MATLAB BT.601) with "
        "crop_border = scale; NIQE on SR, same crop"
    ),
}


# --------------------------------------------------------------------------- data


@dataclass
class ImageRecord:
    """One ground-truth image: where it came from and how to read it."""

    dataset: str
    name: str
    path: Path | None
    loader: Callable[[], np.ndarray]

    def load(self) -> np.ndarray:
        """The image as ``(H, W, 3)`` uint8 BGR or ``(H, W)`` uint8 gray."""
        return self.loader()


def read_image(path: str | Path) -> np.ndarray:
    """Read an 8-bit image file as ``(H, W, 3)`` uint8 BGR, or ``(H, W)`` if gray.

    Decoding is :func:`esrgan_lab.data.images.read_image`; an alpha channel is then dropped
    (metrics are defined on colour only).

    Raises:
        ImageReadError: missing, unreadable, not an image, or not 8-bit.
    """
    img = images.read_image(path)
    if img.dtype != np.uint8:
        raise ImageReadError(f"{path}: evaluation takes 8-bit images, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 4:
        img = np.ascontiguousarray(img[..., :3])
    return img


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def resolve_dataset(name_or_dir: str | Path) -> list[ImageRecord]:
    """Images of a dataset given as a folder, a name under ``ESRGAN_LAB_DATA`` or ``skimage``.

    Args:
        name_or_dir: An existing folder of images, a dataset name such as ``"Set5"``
            (resolved by :func:`esrgan_lab.settings.dataset_dir`), or ``"skimage"`` for
            a few images scikit-image ships (:data:`SKIMAGE_IMAGES`).

    Raises:
        DataError: the name cannot be resolved, or the folder holds no image.
    """
    text = str(name_or_dir)
    path = Path(text).expanduser()
    if path.is_dir():
        folder, label = path, path.name
    elif text.lower() == "skimage":
        return [
            ImageRecord("skimage", n, None, lambda n=n: skimage_sample(n)) for n in SKIMAGE_IMAGES
        ]
    else:
        found = settings.dataset_dir(text)
        if found is None:
            where = settings.data_dir()
            hint = f"not in {where}" if where is not None else "ESRGAN_LAB_DATA is not set"
            raise DataError(
                f"dataset {text!r} not found ({hint}); give a folder, or use 'skimage' "
                "for the images scikit-image ships (see data/README.md)"
            )
        folder, label = found, text
    files = _list_images(folder)
    if not files:
        raise DataError(f"{folder}: no image files")
    return [ImageRecord(label, f.stem, f, lambda f=f: read_image(f)) for f in files]


def _candidate_stems(stem: str) -> list[str]:
    out = [stem]
    base = stem[len("results_") :] if stem.startswith("results_") else stem
    if base != stem:
        out.append(base)
    if "_" in base:
        out.append(base.rsplit("_", 1)[0])
    return out


def pair_outputs(sr: str | Path, gt: str | Path) -> list[tuple[Path, Path]]:
    """Pair SR files with GT files by stem (see the module docstring for the rule).

    Args:
        sr: An SR image file or a folder of them.
        gt: A GT image file or a folder of them.

    Returns:
        ``[(sr_path, gt_path), ...]`` sorted by SR name.

    Raises:
        DataError: a folder is missing or empty, or an SR file has no (or two) GT files.
    """
    sr, gt = Path(sr), Path(gt)
    for p, what in ((sr, "--sr"), (gt, "--gt")):
        if not p.exists():
            raise DataError(f"{p}: {what} path does not exist")
    sr_files = [sr] if sr.is_file() else _list_images(sr)
    gt_files = [gt] if gt.is_file() else _list_images(gt)
    if not sr_files:
        raise DataError(f"{sr}: no image files")
    if not gt_files:
        raise DataError(f"{gt}: no image files")
    by_stem: dict[str, list[Path]] = {}
    for g in gt_files:
        by_stem.setdefault(g.stem, []).append(g)
    pairs = []
    for s in sr_files:
        if gt.is_file():
            pairs.append((s, gt))
            continue
        match = next((by_stem[c] for c in _candidate_stems(s.stem) if c in by_stem), None)
        if match is None:
            raise DataError(f"{s}: no ground truth in {gt} (missing pair)")
        if len(match) > 1:
            raise DataError(f"{s}: ambiguous ground truth {[m.name for m in match]}")
        pairs.append((s, match[0]))
    return pairs


# --------------------------------------------------------------------------- models


def _torch_forward(model: torch.nn.Module, lq: np.ndarray) -> np.ndarray:
    """Reference inference for scoring: BGR uint8 HWC -> RGB [0,1] NCHW -> model -> uint8.

    Deliberately not :func:`esrgan_lab.inference.upscale.upscale`: scores are taken from the plain
    eager fp32 forward of the whole image (as the official ``test.py`` does), so they do
    not depend on the engine's speed options (channels_last, tiling, bf16), which may
    move an output pixel by one level.
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.from_numpy(np.ascontiguousarray(lq[..., ::-1].transpose(2, 0, 1)))
    x = x.to(device=device, dtype=torch.float32).div(255.0).unsqueeze(0)
    with torch.no_grad():
        y = model(x)
    out = y[0].clamp(0, 1).to("cpu", torch.float64).numpy().transpose(1, 2, 0)[..., ::-1]
    return quantize(out, data_range=1.0)


def _run_model(model: str | torch.nn.Module | Callable, lq: np.ndarray, scale: int) -> np.ndarray:
    """Upscale one LQ image ``(h, w[, 3])`` uint8 BGR/gray -> ``(h*scale, w*scale[, 3])``.

    The one place where a model is called: baselines by name, torch modules, and any
    callable taking and returning a uint8 BGR image (e.g. an ONNX session wrapper).
    """
    h, w = lq.shape[:2]
    if isinstance(model, str):
        if model == "bicubic":
            return quantize(imresize(lq, float(scale)))
        interp = {"nearest": cv2.INTER_NEAREST, "lanczos": cv2.INTER_LANCZOS4}.get(model)
        if interp is None:
            raise ConfigError(f"unknown baseline {model!r} (choose from {BASELINES})")
        return cv2.resize(lq, (w * scale, h * scale), interpolation=interp)
    gray = lq.ndim == 2
    rgb_in = cv2.cvtColor(lq, cv2.COLOR_GRAY2BGR) if gray else lq
    if isinstance(model, torch.nn.Module):
        out = _torch_forward(model, rgb_in)
    elif hasattr(model, "get_inputs") and hasattr(model, "get_providers"):
        # A bare onnxruntime.InferenceSession (an OnnxModel is a plain callable below).
        from ..inference.onnx import OnnxModel

        out = OnnxModel.from_session(model)(rgb_in)
    else:
        out = np.asarray(model(rgb_in))
    if gray and out.ndim == 3:
        out = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
    if out.shape[:2] != (h * scale, w * scale):
        raise ConfigError(
            f"model output {out.shape[:2]} is not x{scale} of its input {lq.shape[:2]} "
            "(check --scale)"
        )
    return out


#: Public name of :func:`_run_model` (for notebooks and scripts).
run_model = _run_model


def load_evaluation_model(name: str, scale: int, device: str = "cpu") -> str | torch.nn.Module:
    """A baseline name (returned as is), an ``.onnx`` file (an ONNX Runtime model), or a
    network from :func:`esrgan_lab.weights.loading.load_model`."""
    if name in BASELINES:
        return name
    if name.lower().endswith(".onnx"):
        # ONNX Runtime on the CPU, 2 intra-op threads (esrgan_lab.inference.onnx.OnnxModel).
        from ..inference.onnx import OnnxModel

        onnx_model = OnnxModel(name)
        if onnx_model.scale != scale:
            raise ConfigError(f"model {name!r} is x{onnx_model.scale} but --scale is {scale}")
        return onnx_model
    from ..weights.loading import load_model  # lazy: only models that need weights import it

    model = load_model(name, device=device)
    model_scale = getattr(model, "scale", scale)
    if model_scale != scale:
        raise ConfigError(f"model {name!r} is x{model_scale} but --scale is {scale}")
    return model


# --------------------------------------------------------------------------- scoring


@dataclass
class ImageScore:
    """Scores of one image. ``niqe`` is ``None`` when not computed or not available."""

    dataset: str
    image: str
    psnr: float
    ssim: float
    niqe: float | None = None
    sr_shape: tuple[int, ...] = ()


@dataclass
class EvaluationReport:
    """Per-image scores plus everything needed to read them correctly."""

    model: str
    protocol: str
    scale: int
    comparison: str
    scores: list[ImageScore] = field(default_factory=list)
    niqe_status: str = "computed"

    def means(self) -> dict[str, dict[str, float | None]]:
        """Mean PSNR / SSIM / NIQE per dataset (and ``"all"`` when several)."""
        groups: dict[str, list[ImageScore]] = {}
        for s in self.scores:
            groups.setdefault(s.dataset, []).append(s)
        if len(groups) > 1:
            groups["all"] = list(self.scores)
        out: dict[str, dict[str, float | None]] = {}
        for key, items in groups.items():
            niqes = [s.niqe for s in items if s.niqe is not None]
            out[key] = {
                "psnr": float(np.mean([s.psnr for s in items])),
                "ssim": float(np.mean([s.ssim for s in items])),
                "niqe": float(np.mean(niqes)) if niqes else None,
                "count": len(items),
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``inf`` PSNR becomes the string ``"inf"``)."""

        def clean(v: Any) -> Any:
            if isinstance(v, float) and math.isinf(v):
                return "inf"
            return v

        return {
            "model": self.model,
            "protocol": self.protocol,
            "scale": self.scale,
            "comparison": self.comparison,
            "niqe_status": self.niqe_status,
            "images": [
                {k: clean(v) if not isinstance(v, tuple) else list(v) for k, v in asdict(s).items()}
                for s in self.scores
            ],
            "mean": {k: {m: clean(v) for m, v in d.items()} for k, d in self.means().items()},
        }

    def format_table(self) -> str:
        """Per-image table and means, as plain text."""

        def fmt(v: float | None, spec: str) -> str:
            return "n/a" if v is None else format(v, spec)

        lines = [
            f"model {self.model} | protocol {self.protocol} | x{self.scale}",
            f"compare: {self.comparison}",
            f"{'dataset':<10} {'image':<24} {'PSNR':>8} {'SSIM':>7} {'NIQE':>7}",
        ]
        for s in self.scores:
            lines.append(
                f"{s.dataset:<10} {s.image:<24} {s.psnr:8.3f} {s.ssim:7.4f} "
                f"{fmt(s.niqe, '7.3f'):>7}"
            )
        for key, m in self.means().items():
            label = f"mean ({m['count']})"
            lines.append(
                f"{key:<10} {label:<24} {m['psnr']:8.3f} {m['ssim']:7.4f} "
                f"{fmt(m['niqe'], '7.3f'):>7}"
            )
        if self.niqe_status != "computed":
            lines.append(f"NIQE n/a: {self.niqe_status}")
        return "\n".join(lines)


class _NiqeScorer:
    """Computes NIQE until it turns out to be unavailable, then records why."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.status = "computed" if enabled else "disabled (--no-niqe)"

    def __call__(self, img: np.ndarray, crop_border: int) -> float | None:
        if not self.enabled:
            return None
        from .niqe import calculate_niqe

        try:
            return calculate_niqe(img, crop_border)
        except MetricUnavailable as exc:
            self.enabled = False
            self.status = str(exc)
        except ValueError as exc:  # image smaller than one 96x96 block
            self.status = f"not computed for some images ({exc})"
        return None


def standard_pair(gt: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """``(gt_cropped, lq)`` of the standard protocol, both uint8 BGR."""
    gt = modcrop(gt, scale)
    return gt, bicubic_degrade(gt, scale)


def seed_pair(
    gt: np.ndarray, scale: int, size: int = SEED_INPUT_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """``(reference, lq)`` of the seed protocol, both uint8 BGR.

    ``lq`` is what the seed's ``get_image_data`` feeds the network (whole image,
    ``size x size``, ``INTER_AREA``); ``reference`` the GT squashed the same way to the
    ``size*scale`` square output.
    """
    lq = cv2.resize(gt, (size, size), interpolation=cv2.INTER_AREA)
    ref = cv2.resize(gt, (size * scale, size * scale), interpolation=cv2.INTER_AREA)
    return ref, lq


def score_pair(
    sr: np.ndarray,
    gt: np.ndarray,
    crop_border: int,
    y_channel: bool = True,
    niqe: Callable[[np.ndarray, int], float | None] | None = None,
) -> tuple[float, float, float | None]:
    """``(psnr, ssim, niqe)`` of an SR/GT pair of equal-shaped uint8 BGR (or gray) images."""
    psnr = calculate_psnr(sr, gt, crop_border, test_y_channel=y_channel)
    ssim = calculate_ssim(sr, gt, crop_border, test_y_channel=y_channel)
    return psnr, ssim, (niqe(sr, crop_border) if niqe is not None else None)


def _progress(items: Sequence[Any], desc: str, enabled: bool) -> Iterable[Any]:
    return tqdm(items, desc=desc, file=sys.stderr, disable=not enabled, leave=False)


def evaluate_model(
    model: str | torch.nn.Module | Callable,
    datasets: Sequence[str | Path],
    scale: int = 4,
    protocol: Protocol = "standard",
    niqe: bool = True,
    progress: bool = True,
    device: str = "cpu",
    keep_outputs: dict[str, np.ndarray] | None = None,
    max_images: int | None = None,
) -> EvaluationReport:
    """Score a model or baseline on HR datasets.

    Args:
        model: ``"bicubic"``, ``"nearest"``, ``"lanczos"``, a weights name or path (see
            :func:`esrgan_lab.weights.loading.load_model`), an ``nn.Module`` mapping RGB [0,1]
            NCHW to the x``scale`` output, or a callable on uint8 BGR images.
        datasets: Dataset folders, names under ``ESRGAN_LAB_DATA`` or ``"skimage"``.
        scale: Upscaling factor.
        protocol: ``"standard"`` or ``"seed"`` (module docstring).
        niqe: Also compute NIQE of each output (``None`` entries when unavailable).
        progress: Show a tqdm bar on stderr.
        device: Device for networks loaded by name.
        keep_outputs: If given, filled with ``"dataset/image" -> SR`` uint8 BGR arrays.
        max_images: Score only the first ``max_images`` images of each dataset.

    Raises:
        DataError, ImageReadError, ConfigError, CheckpointError: one-line messages.
    """
    if protocol not in ("standard", "seed"):
        raise ConfigError(f"unknown protocol {protocol!r} (standard or seed)")
    if scale < 1:
        raise ConfigError(f"scale must be a positive integer, got {scale}")
    label = model if isinstance(model, str) else type(model).__name__
    if isinstance(model, str):
        model = load_evaluation_model(model, scale, device)
    records = [r for d in datasets for r in resolve_dataset(d)[:max_images]]
    report = EvaluationReport(str(label), protocol, scale, _COMPARISON[protocol])
    niqe_scorer = _NiqeScorer(niqe)
    for rec in _progress(records, f"evaluate {label}", progress):
        img = rec.load()
        if protocol == "standard":
            ref, lq = standard_pair(img, scale)
            crop, y_channel = scale, True
        else:
            ref, lq = seed_pair(img, scale)
            crop, y_channel = 0, False
        sr = _run_model(model, lq, scale)
        if sr.shape != ref.shape:
            raise DataError(f"{rec.path or rec.name}: output {sr.shape} vs reference {ref.shape}")
        psnr, ssim, nq = score_pair(sr, ref, crop, y_channel, niqe_scorer)
        report.scores.append(ImageScore(rec.dataset, rec.name, psnr, ssim, nq, sr.shape))
        if keep_outputs is not None:
            keep_outputs[f"{rec.dataset}/{rec.name}"] = sr
    report.niqe_status = niqe_scorer.status
    return report


def evaluate_folders(
    sr: str | Path,
    gt: str | Path,
    scale: int = 4,
    niqe: bool = True,
    progress: bool = True,
) -> EvaluationReport:
    """Score existing SR images against ground truth (standard Y / crop protocol).

    The GT is ``modcrop``-ed to ``scale`` before comparison; sizes must then agree.

    Raises:
        DataError: missing pair or size mismatch (naming the file).
        ImageReadError: an unreadable file.
    """
    pairs = pair_outputs(sr, gt)
    report = EvaluationReport(str(sr), "folders", scale, _COMPARISON["folders"])
    niqe_scorer = _NiqeScorer(niqe)
    for sr_path, gt_path in _progress(pairs, "evaluate", progress):
        sr_img = read_image(sr_path)
        gt_img = modcrop(read_image(gt_path), scale)
        if sr_img.shape != gt_img.shape:
            raise DataError(
                f"{sr_path}: size {sr_img.shape[1]}x{sr_img.shape[0]} does not match "
                f"{gt_path} cropped to x{scale} ({gt_img.shape[1]}x{gt_img.shape[0]})"
            )
        psnr, ssim, nq = score_pair(sr_img, gt_img, scale, True, niqe_scorer)
        report.scores.append(
            ImageScore(gt_path.parent.name, gt_path.stem, psnr, ssim, nq, sr_img.shape)
        )
    report.niqe_status = niqe_scorer.status
    return report


# --------------------------------------------------------------------------- output


def write_json(report: EvaluationReport, path: str | Path) -> Path:
    """Write the report as JSON, atomically."""
    return atomic_write_text(path, json.dumps(report.to_dict(), indent=2) + "\n")


def write_csv(report: EvaluationReport, path: str | Path) -> Path:
    """Write one row per image (dataset, image, psnr, ssim, niqe), atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["dataset", "image", "psnr", "ssim", "niqe"])
    for s in report.scores:
        writer.writerow(
            [
                s.dataset,
                s.image,
                f"{s.psnr:.6f}",
                f"{s.ssim:.6f}",
                "" if s.niqe is None else f"{s.niqe:.6f}",
            ]
        )
    return atomic_write_text(path, buf.getvalue())


def iter_records(datasets: Sequence[str | Path]) -> Iterator[ImageRecord]:
    """All images of ``datasets`` in order (for notebooks and scripts)."""
    for d in datasets:
        yield from resolve_dataset(d)
