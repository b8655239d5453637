"""The redesigned losses study ``losses_v2`` (issue 28; paper Sec. 3.2-3.3 and Sec. 4.4).

Registered as ``study_v2`` / ``registration_v2`` of ``notebooks/params/03_losses.yaml``
before any of its runs: the four arms of :func:`matched_variants` trained at the shipped
GAN recipe (``configs/lab_gan.yaml``) from ``lab-psnr-x4``, each run network-interpolated
back toward its start model and scored at every alpha (:func:`run_matched`), so that NIQE
is compared at matched Y-PSNR (:func:`matched_niqe`); brightness consistency
(:func:`brightness_errors`, the paper's second reason for features before activation) and
the active fraction of the perceptual layer on training patches are measured beside it.

The variants, the stage-2 training and the VGG measurements are the stored study's
(:mod:`.loss_study`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.paired import PairedImageSet
from ..training.config import TrainConfig
from .loss_study import MATCHED_ARMS, Stage2Variant, active_fraction, study_vgg
from .runs import make_config

#: Sigma (HR pixels) of the Gaussian low-pass of the second brightness endpoint
#: (03_losses.yaml registration_v2, claim before_activation_brightness).
LOWPASS_SIGMA = 4.0
#: The alphas of arm A at which arm B's NIQE is read (registration_v2 matched_distortion:
#: "each of arm A's alphas 0.2-1.0"); alpha 0 is the start model, the same for every arm.
MATCHED_ALPHA_RANGE = (0.2, 1.0)
#: Training patches the active fraction is measured on (as the recipe's weight was set:
#: configs/lab_gan.yaml, "16 training patches (128 px)").
FRACTION_PATCHES = 16


def matched_variants(params: Mapping[str, Any]) -> list[Stage2Variant]:
    """The registered arms (``params["arms"]``, in that order) on the registered perceptual
    layer (``params["perceptual_layer"]``, before activation; its ReLU for the
    after-activation arm).

    Raises:
        ValueError: An arm name that :data:`MATCHED_ARMS` does not define.
    """
    known = {v.name: v for v in MATCHED_ARMS}
    unknown = [a for a in params["arms"] if a not in known]
    if unknown:
        raise ValueError(f"unknown arm(s) {unknown}; losses_v2 defines {list(known)}")
    layer = str(params["perceptual_layer"])
    return [known[a].at_layer(layer) for a in params["arms"]]


def matched_config(params: Mapping[str, Any]) -> TrainConfig:
    """The GAN-stage config of ``losses_v2``: the shipped recipe (``params["recipe"]``, a
    YAML path relative to the repository) with the study's sizes, data and backbone; every
    field not set here (model, loss weights, discriminator, learning rate, schedule,
    logging cadence) is the recipe's. The start model (``gan.pretrained_g``) and the seed
    are set per run."""
    from ..settings import REPO_ROOT
    from ..training.config import load_config

    recipe = load_config(REPO_ROOT / str(params["recipe"]))
    overrides: dict[str, Any] = {
        "stages": ["gan"],
        "gan.total_iter": int(params["iterations"]),
        "gan.ema_decay": params["ema_decay"],
        "gan.perceptual.backbone": params["backbone"],
        "data.train": list(params["train"]),
        "data.val": list(params["val"]),
        "data.val_crop": params.get("val_crop"),
        "data.gt_size": int(params["gt_size"]),
        "data.batch_size": int(params["batch_size"]),
        "logging.progress": False,
    }
    if "threads" in params:
        overrides["runtime.num_threads"] = int(params["threads"])
    if "amp" in params:  # one precision for all of a study's runs (runs.study_amp)
        overrides["runtime.amp"] = params["amp"]
    return make_config(recipe, **overrides)


def _luma(img: np.ndarray) -> np.ndarray:
    """Y on [0, 255] as the metrics take it: MATLAB ``rgb2ycbcr`` of a BGR image, a gray
    image as it is (:func:`esrgan_lab.metrics.psnr_ssim.calculate_psnr`)."""
    from ..metrics.psnr_ssim import bgr2y

    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return bgr2y(arr)
    return arr.reshape(arr.shape[:2]).astype(np.float64)


def brightness_errors(
    sr: np.ndarray, gt: np.ndarray, crop_border: int, sigma: float = LOWPASS_SIGMA
) -> tuple[float, float]:
    """Brightness consistency with the ground truth (paper Sec. 3.3: features after
    activation "cause inconsistent reconstructed brightness compared with the
    ground-truth image").

    Both on Y (float64, [0, 255], not rounded), ``crop_border`` pixels shaved as for PSNR.

    Args:
        sr, gt: uint8 BGR (or gray) images of equal shape.
        crop_border: Border shaved before averaging (the scale).
        sigma: Gaussian low-pass sigma in HR pixels (applied to the whole image, borders
            mirrored, before the border is shaved).

    Returns:
        ``(mean Y(sr) - mean Y(gt), RMSE of the low-passed Y)`` in grey levels; the
        registered endpoint takes the absolute value of the first.
    """
    from scipy.ndimage import gaussian_filter

    if np.shape(sr) != np.shape(gt):
        raise ValueError(f"image shapes differ: {np.shape(sr)} vs {np.shape(gt)}")
    y_sr, y_gt = _luma(sr), _luma(gt)
    low_sr = gaussian_filter(y_sr, sigma, mode="reflect")
    low_gt = gaussian_filter(y_gt, sigma, mode="reflect")
    c = slice(crop_border, -crop_border) if crop_border else slice(None)
    mean_error = float(y_sr[c, c].mean() - y_gt[c, c].mean())
    rmse = float(np.sqrt(np.mean((low_sr[c, c] - low_gt[c, c]) ** 2)))
    return mean_error, rmse


def score_outputs_v2(
    outputs: Mapping[tuple[str, str], np.ndarray], test: Mapping[str, PairedImageSet]
) -> dict[str, dict[str, list]]:
    """Per test set, per image: Y-PSNR, NIQE (the project's one scoring loop) and the two
    brightness errors (:func:`brightness_errors`) of ``outputs[(set, image)]``."""
    from ..metrics.scoring import EvaluationReport, score_outputs

    per_set: dict[str, dict[str, list]] = {}
    for name, pairs in test.items():
        items = [(name, p.name, outputs[(name, p.name)], p.gt) for p in pairs]
        report = EvaluationReport(name, "standard", pairs.scale, "")
        score_outputs(items, report, crop_border=pairs.scale, niqe=True)
        bright = [brightness_errors(sr, gt, pairs.scale) for _, _, sr, gt in items]
        per_set[name] = {
            "psnr": [s.psnr for s in report.scores],
            "niqe": [s.niqe for s in report.scores],
            "mean_y_error": [m for m, _ in bright],
            "lowpass_rmse": [r for _, r in bright],
        }
    return per_set


def score_model_v2(model: Any, test: Mapping[str, PairedImageSet]) -> dict[str, dict[str, list]]:
    """:func:`score_outputs_v2` of ``model`` (a module, or ``"bicubic"``) on ``test``."""
    from ..evaluation.evaluate import run_model

    if isinstance(model, nn.Module):
        model.eval()
    outputs = {
        (n, p.name): run_model(model, p.lq, pairs.scale) for n, pairs in test.items() for p in pairs
    }
    return score_outputs_v2(outputs, test)


def training_patch_fractions(
    params: Mapping[str, Any], cfg: TrainConfig, start: nn.Module, n: int = FRACTION_PATCHES
) -> dict[str, Any]:
    """Active fraction (:func:`active_fraction`) of every conv layer up to the registered
    perceptual layer, on ``n`` training patches (the trainer's patch stream, seed 0) and on
    the start model's outputs for the same patches (what the loss compares)."""
    from ..data.paired import PairedPatchDataset
    from ..data.sources import load_source

    images = [im for src in cfg.data.train for im in load_source(src)]
    stream = PairedPatchDataset(images, cfg.scale, cfg.data.gt_size, seed=0)
    batch = [stream[i] for i in range(n)]
    gt = torch.stack([b["gt"] for b in batch])
    lq = torch.stack([b["lq"] for b in batch])
    vgg = study_vgg(str(params["backbone"]), layers=[str(params["perceptual_layer"])])
    start.eval()
    with torch.no_grad():
        sr = start(lq).clamp(0, 1)
    return {
        "layer": vgg.layer_map[str(params["perceptual_layer"])],
        "backbone": str(params["backbone"]),
        "patches": n,
        "gt_size": cfg.data.gt_size,
        "ground_truth": active_fraction(vgg, gt),
        "start_output": active_fraction(vgg, sr),
    }


def _cached(path: Path, make: Callable[[], Any]) -> Any:
    """``make()``'s JSON value, stored at ``path`` the first time (atomically) and read
    back on every later call: a study rerun after an interruption repeats nothing stored."""
    import json

    from ..fileio import atomic_write_text

    if path.is_file():
        return json.loads(path.read_text())
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(value, indent=1) + "\n")
    return json.loads(path.read_text())  # what a resumed run reads: the same JSON types


def _alpha_key(alpha: float) -> str:
    return f"{float(alpha):.4f}"


def _matched_run(
    v: Stage2Variant,
    seed: int,
    folder: Path,
    *,
    base: Any,
    start: Path,
    start_sd: dict,
    alphas: Sequence[float],
    reference: Mapping[str, Any],
    test: Mapping[str, Any],
) -> dict:
    """Train one ``losses_v2`` arm (resuming its checkpoints) and score its interpolation
    toward the start model at every alpha (each alpha's scores cached in ``folder/interp``)."""
    from ..weights.checkpoints import interpolate, load_checkpoint
    from ..weights.loading import model_from_state_dict
    from .runs import run_config, run_record

    cfg = make_config(base, seed=seed, **v.overrides(base), **{"gan.pretrained_g": str(start)})
    run = run_config(v.name, cfg, folder, resume=(folder / "gan").is_dir())["gan"]
    rec = run_record(run, seed, keys=("l_pix", "l_percep", "l_gan", "l_d", "val_psnr"))
    rec["layer"] = v.layer
    trained_sd = load_checkpoint(run.weights_file())
    curve = []
    for alpha in alphas:
        if alpha == 0.0:  # the start model itself: scored once, in `reference`
            curve.append(reference["start"])
            continue
        curve.append(
            _cached(
                folder / "interp" / f"alpha_{_alpha_key(alpha)}.json",
                lambda a=alpha: score_model_v2(
                    model_from_state_dict(interpolate(start_sd, trained_sd, a)), test
                ),
            )
        )
    rec["curve"] = curve
    rec["test"] = curve[alphas.index(1.0)]
    return rec


def run_matched(
    params: Mapping[str, Any], out: str | Path, *, progress: bool = False
) -> tuple[dict, dict[str, np.ndarray]]:
    """The redesigned losses study (``losses_v2``, issue 28).

    For every seed (outer) and arm (:func:`matched_variants`), stage 2 of the shipped
    recipe (:func:`matched_config`) trains from ``params["pretrained"]`` into
    ``out/<arm index>_seed<seed>`` (the trainer's checkpoints: an interrupted run
    resumes). The exported generator (EMA) is then interpolated toward the start model,
    ``theta = (1 - alpha) theta_start + alpha theta_run`` (paper Sec. 3.4), and scored on
    the test images at every ``params["alphas"]`` (Y-PSNR, NIQE, brightness errors per
    image). Alpha 0 is the start model itself, scored once for all runs; alpha 1 is the
    trained arm. Each alpha's scores are stored as they are computed, and each run's
    record (``scores.json``) when it is complete, so a rerun repeats no finished training
    or scoring.

    Returns:
        ``(results, images)`` for :func:`esrgan_lab.lab.experiments.save`. ``results``:
        ``alphas``, ``arms`` (= ``variants``), ``layers`` (each arm's perceptual layer),
        ``images``, ``bicubic`` and ``start`` (scores per set), ``active_fraction``,
        ``val`` (the validation images and crop; the runs' curves hold ``val_psnr``), and
        ``runs[arm]``: one record per seed with its training curves, ``curve`` (scores per
        alpha) and ``test`` (the alpha-1 scores).
    """
    from ..weights.checkpoints import load_checkpoint
    from ..weights.loading import load_model
    from .experiments import gallery, pooled_score, study_weights, test_sets
    from .runs import read_run

    out = Path(out)
    alphas = [float(a) for a in params["alphas"]]
    if 0.0 not in alphas or 1.0 not in alphas:
        raise ValueError(f"alphas must include 0 (the start model) and 1 (the run): {alphas}")
    start_file = study_weights(str(params["pretrained"]))
    start_sd = load_checkpoint(start_file)
    base = matched_config(params)
    variants = matched_variants(params)
    test = test_sets({**params, "scale": base.scale})  # the recipe's scale
    reference = _cached(
        out / "reference.json",
        lambda: {
            "bicubic": score_model_v2("bicubic", test),
            "start": score_model_v2(load_model(start_file), test),
            "active_fraction": training_patch_fractions(params, base, load_model(start_file)),
        },
    )
    results: dict[str, Any] = {
        "design": "losses_v2: matched distortion over network interpolation (issue 28)",
        "seeds": list(params["seeds"]),
        "arms": [v.name for v in variants],
        "variants": [v.name for v in variants],
        "layers": {v.name: v.layer for v in variants},
        "alphas": alphas,
        "images": {n: p.names for n, p in test.items()},
        "bicubic": reference["bicubic"],
        "start": reference["start"] | {"weights": str(params["pretrained"])},
        "active_fraction": reference["active_fraction"],
        "val": {"sources": list(params["val"]), "crop": params.get("val_crop")},
        "runs": {},
    }

    shared = dict(base=base, start=start_file, start_sd=start_sd, alphas=alphas)
    shared.update(reference=reference, test=test)
    models: dict[str, nn.Module] = {}
    for seed in params["seeds"]:
        for i, v in enumerate(variants):
            folder = out / f"{i}_seed{seed}"
            rec = _cached(
                folder / "scores.json",
                lambda v=v, s=seed, f=folder: _matched_run(v, s, f, **shared),
            )
            results["runs"].setdefault(v.name, []).append(rec)
            if v.name not in models:
                models[v.name] = read_run(v.name, folder / "gan").model()
            if progress:
                print(
                    f"{v.name:<38} seed {seed}: {rec['seconds']:7.1f} s  alpha 1: "
                    f"{pooled_score(rec['test'], 'psnr'):.2f} dB, NIQE "
                    f"{pooled_score(rec['test'], 'niqe'):.3f}",
                    flush=True,
                )
    images: dict[str, np.ndarray] = {}
    if params.get("gallery_image"):
        results["gallery"], images = gallery(params, test, models)
    return results, images


def interpolation_curve(rec: Mapping[str, Any], reduce=np.mean) -> tuple[np.ndarray, np.ndarray]:
    """``(Y-PSNR, NIQE)`` of one ``losses_v2`` run at every alpha: ``reduce`` (mean or
    median) over every test image."""
    from .experiments import pooled_score

    psnr = np.asarray([pooled_score(s, "psnr", reduce) for s in rec["curve"]])
    niqe = np.asarray([pooled_score(s, "niqe", reduce) for s in rec["curve"]])
    return psnr, niqe


def matched_niqe(
    alphas: Sequence[float], rec_a: Mapping[str, Any], rec_b: Mapping[str, Any]
) -> dict[float, tuple[float, float]]:
    """Arm A's NIQE and arm B's NIQE read at A's Y-PSNR (the registered matched
    distortion of ``losses_v2``), for each of A's alphas in :data:`MATCHED_ALPHA_RANGE`
    whose mean Y-PSNR B's curve spans.

    B's NIQE is linear in Y-PSNR between B's alphas (B's points ordered by Y-PSNR, as
    :func:`esrgan_lab.lab.findings._niqe_at_equal_psnr` reads the pixel curve).

    Returns:
        ``{alpha: (NIQE(A), NIQE(B at A's Y-PSNR))}``; empty when B spans none of them.
    """
    pa, na = interpolation_curve(rec_a)
    pb, nb = interpolation_curve(rec_b)
    order = np.argsort(pb)
    low, high = MATCHED_ALPHA_RANGE
    return {
        float(a): (float(na[k]), float(np.interp(pa[k], pb[order], nb[order])))
        for k, a in enumerate(alphas)
        if low - 1e-9 <= a <= high + 1e-9 and pb.min() <= pa[k] <= pb.max()
    }
