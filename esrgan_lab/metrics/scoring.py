"""Scoring: PSNR, SSIM and NIQE of SR images against their references, and the protocols.

Functions of images only; running a model over a data set and scoring it is
:mod:`esrgan_lab.evaluation.evaluate`. Two protocols, made explicit because they give
very different numbers for the same network:

``standard`` (the SR literature; ESRGAN paper Sec. 4.1, BasicSR):
    GT is ``modcrop``-ed to a multiple of ``scale``; LQ is MATLAB bicubic ``1/scale``
    of it, quantised to uint8 (:func:`esrgan_lab.data.degrade.bicubic_degrade`); SR is the
    model output quantised to uint8. PSNR and SSIM are computed on the Y channel
    (MATLAB BT.601) with ``crop_border = scale``. NIQE is computed on SR with the same
    crop. The ``bicubic`` baseline upsamples LQ with the same MATLAB ``imresize``;
    ``nearest`` and ``lanczos`` use ``cv2.resize``.

``vendor`` (what the vendor benchmark did; reproduced, not recommended):
    LQ is the *whole* image squashed to 128x128 with ``cv2.resize(INTER_AREA)`` (the
    vendor's ``get_image_data``; aspect ratio is not kept), SR the ``128*scale`` square
    output. The vendor benchmark did not say what it compared against; the most plausible reading,
    used here, is: **reference = the GT squashed to the output size with
    ``cv2.resize(INTER_AREA)``; PSNR/SSIM on all three colour channels, no border
    crop**. The vendor benchmark reported 19.688 dB for ESRGAN_x4. That number is not comparable
    with paper tables, and is low for these reasons: (1) ESRGAN is a perceptual (GAN)
    model that trades PSNR for texture by design - even under the standard protocol
    the published ESRGAN output of baboon scores 20.32 dB against 22.44 dB for plain
    bicubic; (2) the reference is itself a resampled image, not the ground truth, and
    squashing a non-square image distorts it differently at 128 px and at 512 px;
    (3) the LQ is an area-averaged downscale, not the bicubic one the model was trained
    on, so its hallucinated detail lands in the wrong places; (4) PSNR on RGB without
    a border crop counts chroma and border errors that Y PSNR with ``crop = scale``
    leaves out. (For smooth baselines the vendor protocol is *not* systematically
    lower: bicubic on Set14 gives 25.93 dB vendor vs 26.00 dB standard.)

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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..data.degrade import standard_pair
from ..data.paired import ImagePair
from ..data.sources import ImageRecord, list_images
from ..data.vendor import vendor_pair
from ..errors import DataError
from ..fileio import atomic_write_text
from .psnr_ssim import MetricUnavailable, calculate_psnr, calculate_ssim

Protocol = Literal["standard", "vendor"]

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

COMPARISON = {
    "standard": (
        "GT modcropped to scale; LQ = MATLAB bicubic 1/scale, uint8; SR uint8; "
        "PSNR/SSIM on Y (MATLAB BT.601) with crop_border = scale; NIQE on SR, same crop"
    ),
    "vendor": (
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


def protocol_pairs(
    records: Iterable[ImageRecord], scale: int, protocol: Protocol = "standard"
) -> Iterator[ImagePair]:
    """The ``(gt, lq)`` pairs ``protocol`` makes of ``records``, loaded one at a time."""
    make = standard_pair if protocol == "standard" else vendor_pair
    for rec in records:
        gt, lq = make(rec.load(), scale)
        yield ImagePair(rec.dataset, rec.name, gt, lq)


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
