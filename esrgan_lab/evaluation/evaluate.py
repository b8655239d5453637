"""Running a model over a data set and scoring it: inference and metrics together.

The model side of evaluation: :func:`run_model` is the one place a model (a baseline
name, a torch module, an ONNX Runtime session, OpenVINO or any callable on uint8 BGR
images) is called for scoring; :func:`score_pairs` runs it over image pairs and scores
the outputs with :func:`esrgan_lab.metrics.scoring.score_outputs`;
:func:`evaluate_model` does so on whole datasets under a protocol
(:mod:`esrgan_lab.metrics.scoring` describes ``standard`` and ``vendor``), and
:func:`evaluate_folders` scores SR images already on disk. ``esrgan-lab evaluate``, the
trainer's validation and the notebooks' studies call these.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.degrade import imresize, modcrop
from ..data.images import array_to_tensor, round_to_uint, tensor_to_array
from ..data.paired import ImagePair
from ..data.sources import read_gt, resolve_dataset
from ..errors import ConfigError, DataError
from ..metrics.scoring import (
    COMPARISON,
    EvaluationReport,
    Protocol,
    pair_outputs,
    protocol_pairs,
    score_outputs,
)

#: Model names handled without a network.
BASELINES = ("bicubic", "nearest", "lanczos")
#: A model as the scoring loop takes it (see :func:`run_model`).
ModelLike = str | torch.nn.Module | Callable[[np.ndarray], np.ndarray]


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
            return round_to_uint(imresize(lq, float(scale)))
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
    (:func:`esrgan_lab.inference.engines.load_engine`: checkpoints, ``.onnx``, OpenVINO IR)."""
    if name in BASELINES:
        return name
    from ..inference.engines import load_engine

    model = load_engine(name, device=device)
    model_scale = getattr(model, "scale", scale)
    if model_scale != scale:
        raise ConfigError(f"model {name!r} is x{model_scale} but --scale is {scale}")
    return model


def _progress(items: Iterable[Any], desc: str, enabled: bool, total: int | None) -> Iterable[Any]:
    return tqdm(items, desc=desc, file=sys.stderr, disable=not enabled, leave=False, total=total)


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
        protocol: ``"standard"`` (Y channel, ``crop_border = scale``) or ``"vendor"``
            (RGB, no crop).
        niqe, keep_outputs: See :func:`score_outputs`.
        progress: A tqdm bar on stderr.
        label: Model name in the report.
    """
    if protocol not in COMPARISON or protocol == "folders":
        raise ConfigError(f"unknown protocol {protocol!r} (standard or vendor)")
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
        protocol: ``"standard"`` or ``"vendor"`` (module docstring).
        niqe: Also compute NIQE of each output (``None`` entries when unavailable).
        progress: Show a tqdm bar on stderr.
        device: Device for networks loaded by name.
        keep_outputs: If given, filled with ``"dataset/image" -> SR`` uint8 BGR arrays.
        max_images: Score only the first ``max_images`` images of each dataset.

    Raises:
        DataError, ImageReadError, ConfigError, CheckpointError: one-line messages.
    """
    if protocol not in ("standard", "vendor"):
        raise ConfigError(f"unknown protocol {protocol!r} (standard or vendor)")
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
