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

from ..data.degrade import imresize, modcrop, standard_pair
from ..data.images import array_to_tensor, quantize, tensor_to_array
from ..data.paired import ImagePair
from ..data.seed import seed_pair
from ..data.sources import ImageRecord, list_images, read_gt, resolve_dataset
from ..errors import ConfigError, DataError
from ..fileio import atomic_write_text
from .psnr_ssim import MetricUnavailable, calculate_psnr, calculate_ssim

Protocol = Literal["standard", "seed"]

#: Published values this implementation reproduces (the tests assert them): x4, Y
#: channel, crop 4. Bicubic as in the SR tables (e.g. EDSR, RCAN); the ESRGAN paper's
#: Fig. 7 for its own baboon output; MATLAB R2021a's NIQE of Set14 baboon (as quoted by
#: BasicSR's ``niqe.py``).
PUBLISHED: dict[str, dict[str, float]] = {
    "Set5 bicubic": {"psnr": 28.42, "ssim": 0.8104},
    "Set14 bicubic": {"psnr": 26.00, "ssim": 0.7027},
    "Set14 baboon, official ESRGAN output": {"psnr": 20.35},
    "Set14 baboon ground truth": {"niqe": 5.72957338},
}
#: Model names handled without a network.
BASELINES = ("bicubic", "nearest", "lanczos")
#: A model as the scoring loop takes it (see :func:`run_model`).
ModelLike = str | torch.nn.Module | Callable[[np.ndarray], np.ndarray]

COMPARISON = {
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


# --------------------------------------------------------------------------- pairing


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
    sr_files = [sr] if sr.is_file() else list_images(sr)
    gt_files = [gt] if gt.is_file() else list_images(gt)
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


@torch.no_grad()
def _torch_forward(model: torch.nn.Module, lq: np.ndarray) -> np.ndarray:
    """Reference inference for scoring: uint8 BGR -> RGB [0, 1] NCHW -> model -> uint8 BGR.

    Deliberately not :func:`esrgan_lab.inference.upscale.upscale`: scores are taken from
    the plain fp32 forward of the whole image in the model's current mode (as the
    official ``test.py`` does), so they do not depend on the engine's speed options
    (channels_last, tiling, bf16), which may move an output pixel by one level.
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    y = model(array_to_tensor(lq).to(device))
    return tensor_to_array(y.float())


def run_model(model: ModelLike, lq: np.ndarray, scale: int) -> np.ndarray:
    """Upscale one LQ image ``(h, w[, 3])`` uint8 BGR/gray -> ``(h*scale, w*scale[, 3])``.

    The one place where a model is called for scoring: baselines by name, torch modules
    (run in their current train/eval mode), a bare ONNX Runtime session, and any
    callable taking and returning a uint8 BGR image (e.g.
    :class:`~esrgan_lab.inference.onnx.OnnxModel`). A gray image runs as three equal
    channels and the output is converted back with ``cv2.COLOR_BGR2GRAY``.
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


def load_evaluation_model(name: str, scale: int, device: str = "cpu") -> ModelLike:
    """A baseline name (returned as is), or any model file or name
    (:func:`esrgan_lab.inference.engines.load`: checkpoints, ``.onnx``, OpenVINO IR)."""
    if name in BASELINES:
        return name
    from ..inference.engines import load

    model = load(name, device=device)
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
        """Mean PSNR / SSIM / NIQE (and median NIQE) per dataset (and ``"all"`` when
        several). NIQE on small images rests on few 96x96 blocks, so one image can move
        a small set's mean: the median is reported beside it."""
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
                "niqe_median": float(np.median(niqes)) if niqes else None,
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


def _progress(items: Iterable[Any], desc: str, enabled: bool, total: int | None) -> Iterable[Any]:
    return tqdm(items, desc=desc, file=sys.stderr, disable=not enabled, leave=False, total=total)


def score_outputs(
    outputs: Iterable[tuple[str, str, np.ndarray, np.ndarray]],
    report: EvaluationReport,
    *,
    crop_border: int,
    y_channel: bool = True,
    niqe: bool = False,
    keep_outputs: dict[str, np.ndarray] | None = None,
) -> EvaluationReport:
    """The project's one scoring loop: ``(dataset, name, sr, reference)`` -> ``report``.

    Every score in the project (``esrgan-lab evaluate``, the trainer's validation, the
    notebooks' studies) goes through here, with :func:`score_pair`'s metrics.

    Args:
        outputs: SR images and their references, uint8 BGR or gray, equal shapes.
        report: Report to append :class:`ImageScore` s to (returned).
        crop_border: Pixels shaved from each border before PSNR/SSIM/NIQE.
        y_channel: PSNR/SSIM on Y (colour images), else on all channels.
        niqe: Also compute NIQE (``None`` entries and a status where unavailable).
        keep_outputs: If given, filled with ``"dataset/name" -> SR``.
    """
    scorer = _NiqeScorer(niqe)
    for dataset, name, sr, ref in outputs:
        if sr.shape != ref.shape:
            raise DataError(f"{dataset}/{name}: output {sr.shape} vs reference {ref.shape}")
        psnr, ssim, nq = score_pair(sr, ref, crop_border, y_channel, scorer)
        report.scores.append(ImageScore(dataset, name, psnr, ssim, nq, sr.shape))
        if keep_outputs is not None:
            keep_outputs[f"{dataset}/{name}"] = sr
    report.niqe_status = scorer.status
    return report


def score_pairs(
    model: ModelLike,
    pairs: Iterable[ImagePair],
    scale: int,
    *,
    protocol: str = "standard",
    niqe: bool = False,
    progress: bool = False,
    keep_outputs: dict[str, np.ndarray] | None = None,
    label: str | None = None,
) -> EvaluationReport:
    """Run ``model`` on every pair's LQ and score the output against its GT.

    Args:
        model: See :func:`run_model`.
        pairs: :class:`~esrgan_lab.data.paired.ImagePair` s (e.g. a
            :class:`~esrgan_lab.data.paired.PairedImageSet`).
        scale: Upscaling factor.
        protocol: ``"standard"`` (Y channel, ``crop_border = scale``) or ``"seed"``
            (RGB, no crop).
        niqe, keep_outputs: See :func:`score_outputs`.
        progress: A tqdm bar on stderr.
        label: Model name in the report.
    """
    if protocol not in COMPARISON or protocol == "folders":
        raise ConfigError(f"unknown protocol {protocol!r} (standard or seed)")
    name = label or (model if isinstance(model, str) else type(model).__name__)
    report = EvaluationReport(str(name), protocol, scale, COMPARISON[protocol])
    total = len(pairs) if hasattr(pairs, "__len__") else None
    outputs = (
        (p.dataset, p.name, run_model(model, p.lq, scale), p.gt)
        for p in _progress(pairs, f"evaluate {name}", progress, total)
    )
    standard = protocol == "standard"
    return score_outputs(
        outputs,
        report,
        crop_border=scale if standard else 0,
        y_channel=standard,
        niqe=niqe,
        keep_outputs=keep_outputs,
    )


def protocol_pairs(
    records: Iterable[ImageRecord], scale: int, protocol: Protocol = "standard"
) -> Iterator[ImagePair]:
    """The ``(gt, lq)`` pairs ``protocol`` makes of ``records``, loaded one at a time."""
    make = standard_pair if protocol == "standard" else seed_pair
    for rec in records:
        gt, lq = make(rec.load(), scale)
        yield ImagePair(rec.dataset, rec.name, gt, lq)


def evaluate_model(
    model: ModelLike,
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
            :func:`esrgan_lab.weights.loading.load_model`), an ``.onnx`` file, an
            ``nn.Module`` mapping RGB [0,1] NCHW to the x``scale`` output, or a callable on
            uint8 BGR images.
        datasets: Source strings (:mod:`esrgan_lab.data.sources`): folders, names under
            ``ESRGAN_LAB_DATA``, ``"skimage"``.
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
    pairs = protocol_pairs(records, scale, protocol)
    return score_pairs(
        model,
        _Sized(pairs, len(records)),
        scale,
        protocol=protocol,
        niqe=niqe,
        progress=progress,
        keep_outputs=keep_outputs,
        label=str(label),
    )


class _Sized:
    """An iterable with a known length (for the progress bar of a generator)."""

    def __init__(self, items: Iterable[Any], length: int) -> None:
        self.items, self.length = items, length

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)

    def __len__(self) -> int:
        return self.length


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

    def outputs() -> Iterator[tuple[str, str, np.ndarray, np.ndarray]]:
        for sr_path, gt_path in _progress(pairs, "evaluate", progress, len(pairs)):
            sr_img = read_gt(sr_path)
            gt_img = modcrop(read_gt(gt_path), scale)
            if sr_img.shape != gt_img.shape:
                raise DataError(
                    f"{sr_path}: size {sr_img.shape[1]}x{sr_img.shape[0]} does not match "
                    f"{gt_path} cropped to x{scale} ({gt_img.shape[1]}x{gt_img.shape[0]})"
                )
            yield gt_path.parent.name, gt_path.stem, sr_img, gt_img

    report = EvaluationReport(str(sr), "folders", scale, COMPARISON["folders"])
    return score_outputs(outputs(), report, crop_border=scale, niqe=niqe)


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
