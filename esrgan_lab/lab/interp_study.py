"""Network interpolation against pixel interpolation (paper Sec. 3.4 and 4.5, Fig. 8).

``theta = (1 - alpha) theta_PSNR + alpha theta_GAN`` (:func:`esrgan_lab.weights.
checkpoints.interpolate`) against blending the two models' *outputs*
``(1 - alpha) SR_PSNR + alpha SR_GAN``, the baseline the paper compares with. Each is
scored on the perception-distortion plane: Y-PSNR (distortion) and NIQE (perceptual
quality, lower is better), per image and on average, with bicubic and the published
ESRGAN baboon result as reference points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..data.images import quantize
from ..metrics.evaluate import EvaluationReport, run_model, score_outputs
from ..weights.checkpoints import interpolate, load_checkpoint
from ..weights.loading import load_model, model_from_state_dict, resolve_weights

ALPHAS: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(11))


def pixel_blend(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """``(1 - alpha) a + alpha b`` of two uint8 images, rounded back to uint8."""
    return quantize((1.0 - alpha) * a.astype(np.float64) + alpha * b.astype(np.float64))


def _score(outputs, test) -> dict[str, dict[str, list]]:
    per_set = {}
    for name, pairs in test.items():
        report = EvaluationReport("x", "standard", pairs.scale, "")
        items = ((name, p.name, outputs[(name, p.name)], p.gt) for p in pairs)
        score_outputs(items, report, crop_border=pairs.scale, niqe=True)
        per_set[name] = {
            "psnr": [s.psnr for s in report.scores],
            "niqe": [s.niqe for s in report.scores],
        }
    return per_set


def run_experiment(
    params: Mapping[str, object], out: str | Path | None = None, *, progress: bool = False
) -> tuple[dict, dict[str, np.ndarray]]:
    """The alpha sweep of both interpolations between ``params["psnr"]`` and
    ``params["gan"]`` (weights names or files) on the test sets.

    Returns:
        ``(results, images)`` for :func:`esrgan_lab.lab.experiments.save`; ``images`` holds
        crops of ``params["gallery_image"]`` at alpha 0, 0.5 and 1 for both methods.
    """
    from .bn_study import detail_box
    from .experiments import test_sets

    alphas: Sequence[float] = params.get("alphas") or ALPHAS
    test = test_sets(params)
    psnr_sd = load_checkpoint(resolve_weights(str(params["psnr"])))
    gan_sd = load_checkpoint(resolve_weights(str(params["gan"])))
    keys = [(name, p.name) for name, pairs in test.items() for p in pairs]
    lq = {(name, p.name): p.lq for name, pairs in test.items() for p in pairs}
    ends = {}
    for label, path in (("psnr", params["psnr"]), ("gan", params["gan"])):
        model = load_model(str(path))
        ends[label] = {k: run_model(model, lq[k], 4) for k in keys}
    results: dict = {
        "alphas": list(alphas),
        "images": {n: p.names for n, p in test.items()},
        "weights": {"psnr": str(params["psnr"]), "gan": str(params["gan"])},
        "bicubic": _score({k: run_model("bicubic", lq[k], 4) for k in keys}, test),
        "network": [],
        "pixel": [],
    }
    gal_set, gal_name = str(params["gallery_image"]).split("/")
    gal_pair = next(p for p in test[gal_set] if p.name == gal_name)
    y, x, h, w = detail_box(gal_pair.gt, int(params["gallery_box"]))
    results["gallery"] = {"image": params["gallery_image"], "box": [y, x, h, w]}
    images = {"gallery_gt": gal_pair.gt[y : y + h, x : x + w]}
    for alpha in alphas:
        net = model_from_state_dict(interpolate(psnr_sd, gan_sd, alpha))
        net_out = {k: run_model(net, lq[k], 4) for k in keys}
        pix_out = {k: pixel_blend(ends["psnr"][k], ends["gan"][k], alpha) for k in keys}
        results["network"].append(_score(net_out, test))
        results["pixel"].append(_score(pix_out, test))
        if alpha in (0.0, 0.5, 1.0):
            tag = f"{alpha:.1f}".replace(".", "")
            for method, outs in (("network", net_out), ("pixel", pix_out)):
                images[f"{method}_{tag}"] = outs[(gal_set, gal_name)][y : y + h, x : x + w]
        if progress:
            mean = lambda s, key: np.mean([v for d in s.values() for v in d[key] if v])  # noqa: E731
            n, p = results["network"][-1], results["pixel"][-1]
            print(
                f"alpha {alpha:.1f}: network {mean(n, 'psnr'):.2f} dB NIQE {mean(n, 'niqe'):.3f}"
                f" | pixel {mean(p, 'psnr'):.2f} dB NIQE {mean(p, 'niqe'):.3f}",
                flush=True,
            )
    results["published"] = _published_esrgan(test)
    return results, images


def _published_esrgan(test) -> dict | None:
    """The official ESRGAN's baboon output (``esrgan_samples``) scored like the others."""
    from ..data.degrade import modcrop
    from ..data.sources import read_gt
    from ..settings import dataset_dir

    folder = dataset_dir("esrgan_samples")
    pairs = test.get("Set14")
    if folder is None or pairs is None or "baboon" not in pairs.names:
        return None
    gt = next(p.gt for p in pairs if p.name == "baboon")
    sr = modcrop(read_gt(folder / "results_baboon_ESRGAN.png"), 4)
    report = EvaluationReport("official ESRGAN", "standard", 4, "")
    score_outputs([("Set14", "baboon", sr, gt)], report, crop_border=4, niqe=True)
    s = report.scores[0]
    return {"image": "Set14/baboon", "psnr": s.psnr, "niqe": s.niqe}


# --------------------------------------------------------------------------- reading


def curve(results: Mapping, method: str, reduce=np.mean) -> tuple[np.ndarray, np.ndarray]:
    """``(psnr, niqe)`` of ``method`` ("network" or "pixel") at every alpha: ``reduce``
    (mean or median) over every test image."""
    psnr, niqe = [], []
    for per_set in results[method]:
        psnr.append(reduce([v for s in per_set.values() for v in s["psnr"]]))
        niqe.append(reduce([v for s in per_set.values() for v in s["niqe"] if v is not None]))
    return np.asarray(psnr), np.asarray(niqe)


def reference(results: Mapping, key: str = "bicubic", reduce=np.mean) -> tuple[float, float]:
    per_set = results[key]
    return (
        float(reduce([v for s in per_set.values() for v in s["psnr"]])),
        float(reduce([v for s in per_set.values() for v in s["niqe"] if v is not None])),
    )


def findings(results: Mapping) -> dict[str, str]:
    """The sweep's results as sentences, every number computed from ``results``."""
    alphas = results["alphas"]
    net_p, net_n = curve(results, "network")
    pix_p, pix_n = curve(results, "pixel")
    bic_p, bic_n = reference(results)
    w = results["weights"]
    lines = {
        "ends": (
            f"Alpha 0 is `{w['psnr']}`: Y-PSNR {net_p[0]:.2f} dB, NIQE {net_n[0]:.3f}; alpha 1 is "
            f"`{w['gan']}`: {net_p[-1]:.2f} dB, NIQE {net_n[-1]:.3f}; bicubic {bic_p:.2f} dB, "
            f"NIQE {bic_n:.3f} (means over {sum(len(v) for v in results['images'].values())} "
            "test images)."
        )
    }
    # At the PSNR each network-interpolated model reaches, the pixel blend's NIQE (linear
    # interpolation along the pixel curve, which is monotone in alpha).
    gaps = []
    order = np.argsort(pix_p)
    for a, p, n in zip(alphas, net_p, net_n):
        if 0 < a < 1 and pix_p.min() <= p <= pix_p.max():
            gaps.append((a, n - float(np.interp(p, pix_p[order], pix_n[order]))))
    if gaps:
        better = sum(g < 0 for _, g in gaps)
        lines["versus pixel"] = (
            f"At the same Y-PSNR, network interpolation has the lower NIQE at {better} of "
            f"{len(gaps)} intermediate alphas (NIQE difference network minus pixel: "
            + ", ".join(f"{g:+.3f} at alpha {a:.1f}" for a, g in gaps)
            + ")."
        )
        wins = [f"{a:.1f}" for a, g in gaps if g < 0]
        verdict = (
            "Reproduced at this scale (every intermediate alpha)"
            if len(wins) == len(gaps)
            else "Not reproduced at this scale (no intermediate alpha)"
            if not wins
            else f"Partly reproduced at this scale (alpha {', '.join(wins)}: "
            f"{len(wins)} of {len(gaps)})"
        )
        lines["claim"] = (
            "Paper: network interpolation balances perceptual quality and fidelity better than "
            f"interpolating the outputs (Sec. 3.4, Fig. 8). {verdict}; one PSNR/GAN pair, so "
            "no seed spread."
        )
    within = [a for a, p in zip(alphas, net_p) if p >= bic_p - 1.0]
    if within:
        k = alphas.index(max(within))
        lines["budget"] = (
            f"The largest alpha within 1 dB of bicubic's Y-PSNR is {alphas[k]:.1f}: "
            f"{net_p[k]:.2f} dB, NIQE {net_n[k]:.3f}."
        )
    pub = results.get("published")
    if pub:
        lines["published"] = (
            f"The official ESRGAN's output for {pub['image']}: Y-PSNR {pub['psnr']:.2f} dB, "
            f"NIQE {pub['niqe']:.3f}."
        )
    return lines
