"""Network interpolation against pixel interpolation (paper Sec. 3.4 and 4.5).

``theta = (1 - alpha) theta_PSNR + alpha theta_GAN`` (:func:`esrgan_lab.weights.
checkpoints.interpolate`) against blending the two models' *outputs*
``(1 - alpha) SR_PSNR + alpha SR_GAN``, the baseline the paper compares with. Each is
scored on the perception-distortion plane: Y-PSNR (distortion) and NIQE (perceptual
quality, lower is better), per image and on average, with bicubic and the published
ESRGAN baboon result as reference points.

The sweep runs for one PSNR model and several GAN stages trained from it with different
seeds (``params["gan"]``: a weights name, or a list of ``{"seed", "weights"}``), so the
comparison of the two methods carries the spread of the GAN training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..data.images import round_to_uint
from ..evaluation.evaluate import run_model
from ..metrics.scoring import EvaluationReport, score_outputs
from ..weights.checkpoints import interpolate, load_checkpoint
from ..weights.loading import load_model, model_from_state_dict

ALPHAS: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(11))


def pixel_blend(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """``(1 - alpha) a + alpha b`` of two uint8 images, rounded back to uint8."""
    return round_to_uint((1.0 - alpha) * a.astype(np.float64) + alpha * b.astype(np.float64))


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


def gan_ends(params: Mapping[str, object]) -> list[dict]:
    """``params["gan"]`` as ``[{"seed": int, "weights": str}, ...]``, the first being the
    pair the figures and crops show (a plain weights name is seed 0 alone)."""
    gan = params["gan"]
    if isinstance(gan, str):
        return [{"seed": 0, "weights": gan}]
    ends = [{"seed": int(g["seed"]), "weights": str(g["weights"])} for g in gan]
    if not ends or len({e["seed"] for e in ends}) != len(ends):
        raise ValueError(f"params['gan'] needs one entry per distinct seed, got {gan!r}")
    return ends


def run_experiment(
    params: Mapping[str, object], out: str | Path | None = None, *, progress: bool = False
) -> tuple[dict, dict[str, np.ndarray]]:
    """The alpha sweep of both interpolations between ``params["psnr"]`` and each GAN model
    of ``params["gan"]`` (:func:`gan_ends`; weights names or files) on the test sets.

    Returns:
        ``(results, images)`` for :func:`esrgan_lab.lab.experiments.save`. ``results``
        holds every GAN model's sweep in ``"pairs"`` (``seed``, ``weights``, ``network``,
        ``pixel``), and the first pair's weights in ``"weights"``; ``images`` holds crops
        of ``params["gallery_image"]`` at alpha 0, 0.5 and 1 for both methods (first pair).
    """
    from .bn_study import detail_box
    from .experiments import pooled_score, study_weights, test_sets

    alphas: Sequence[float] = params.get("alphas") or ALPHAS
    scale = int(params.get("scale", 4))
    test = test_sets(params)
    val = test_sets({"test": params["val"], "scale": scale}) if params.get("val") else {}
    ends = gan_ends(params)
    psnr_file = study_weights(str(params["psnr"]))
    psnr_sd = load_checkpoint(psnr_file)
    keys = [(name, p.name) for name, pairs in test.items() for p in pairs]
    lq = {(name, p.name): p.lq for name, pairs in test.items() for p in pairs}
    psnr_model = load_model(psnr_file)
    psnr_out = {k: run_model(psnr_model, lq[k], scale) for k in keys}
    # Validation images (held out from training and testing): each end's margin over
    # bicubic, reported by validation_margins beside the verdict.
    val_lq = {(name, p.name): p.lq for name, pairs in val.items() for p in pairs}

    def on_val(model) -> dict:
        return _score({k: run_model(model, x, scale) for k, x in val_lq.items()}, val)

    results: dict = {
        "alphas": list(alphas),
        "images": {n: p.names for n, p in test.items()},
        "bicubic": _score({k: run_model("bicubic", lq[k], scale) for k in keys}, test),
        "val": {
            "images": {n: p.names for n, p in val.items()},
            "bicubic": on_val("bicubic"),
            "psnr": on_val(psnr_model),
        },
        "pairs": [],
    }
    gal_set, gal_name = str(params["gallery_image"]).split("/")
    gal_pair = next(p for p in test[gal_set] if p.name == gal_name)
    y, x, h, w = detail_box(gal_pair.gt, int(params["gallery_box"]))
    results["gallery"] = {"image": params["gallery_image"], "box": [y, x, h, w]}
    images = {"gallery_gt": gal_pair.gt[y : y + h, x : x + w]}
    for i, end in enumerate(ends):
        gan_file = study_weights(end["weights"])
        gan_sd = load_checkpoint(gan_file)
        gan_model = load_model(gan_file)
        gan_out = {k: run_model(gan_model, lq[k], scale) for k in keys}
        pair = {**end, "val": on_val(gan_model), "network": [], "pixel": []}
        for alpha in alphas:
            net = model_from_state_dict(interpolate(psnr_sd, gan_sd, alpha))
            net_out = {k: run_model(net, lq[k], scale) for k in keys}
            pix_out = {k: pixel_blend(psnr_out[k], gan_out[k], alpha) for k in keys}
            pair["network"].append(_score(net_out, test))
            pair["pixel"].append(_score(pix_out, test))
            if i == 0 and alpha in (0.0, 0.5, 1.0):
                tag = f"{alpha:.1f}".replace(".", "")
                for method, outs in (("network", net_out), ("pixel", pix_out)):
                    images[f"{method}_{tag}"] = outs[(gal_set, gal_name)][y : y + h, x : x + w]
            if progress:
                n, p = pair["network"][-1], pair["pixel"][-1]
                print(
                    f"GAN seed {end['seed']}, alpha {alpha:.1f}: network "
                    f"{pooled_score(n, 'psnr'):.2f} dB NIQE {pooled_score(n, 'niqe'):.3f} | "
                    f"pixel {pooled_score(p, 'psnr'):.2f} dB NIQE {pooled_score(p, 'niqe'):.3f}",
                    flush=True,
                )
        results["pairs"].append(pair)
    results["weights"] = {"psnr": str(params["psnr"]), "gan": ends[0]["weights"]}
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


def curve(
    results: Mapping, method: str, reduce=np.mean, pair: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(psnr, niqe)`` of ``method`` ("network" or "pixel") at every alpha for the GAN model
    ``results["pairs"][pair]``: ``reduce`` (mean or median) over every test image."""
    from .experiments import pooled_score

    sweep = results["pairs"][pair][method]
    psnr = np.asarray([pooled_score(per_set, "psnr", reduce) for per_set in sweep])
    niqe = np.asarray([pooled_score(per_set, "niqe", reduce) for per_set in sweep])
    return psnr, niqe


def reference(results: Mapping, key: str = "bicubic", reduce=np.mean) -> tuple[float, float]:
    from .experiments import pooled_score

    return pooled_score(results[key], "psnr", reduce), pooled_score(results[key], "niqe", reduce)


def niqe_gaps(results: Mapping, pair: int = 0) -> dict[float, float]:
    """``{alpha: NIQE of network interpolation minus the pixel blend's at the same mean
    Y-PSNR}`` for the intermediate alphas whose PSNR the pixel curve spans (linear
    interpolation along the pixel curve, which is monotone in alpha). Negative: network
    interpolation is the more natural at equal fidelity (the paper's claim)."""
    net_p, net_n = curve(results, "network", pair=pair)
    pix_p, pix_n = curve(results, "pixel", pair=pair)
    order = np.argsort(pix_p)
    return {
        a: float(n - np.interp(p, pix_p[order], pix_n[order]))
        for a, p, n in zip(results["alphas"], net_p, net_n)
        if 0 < a < 1 and pix_p.min() <= p <= pix_p.max()
    }


def validation_margins(results: Mapping) -> str:
    """Each end of the sweeps against bicubic on the validation images (dB of Y-PSNR, NIQE
    points; positive is better): reported, never used to withhold the comparison."""
    from .experiments import MARGIN_CONVENTION, margins_over_bicubic, pooled_score

    val = results.get("val") or {}
    if not val.get("images"):
        return "The study scored no validation images."
    bic = val["bicubic"]
    ends = {f"`{results['weights']['psnr']}`": val["psnr"]} | {
        f"GAN seed {p['seed']}": p["val"] for p in results["pairs"]
    }
    margins = {name: margins_over_bicubic(s, bic) for name, s in ends.items()}
    n_images = sum(len(v) for v in val["images"].values())
    return (
        f"Ends against bicubic on the {n_images} validation image{'s' if n_images != 1 else ''} "
        f"({', '.join(val['images'])}; bicubic {pooled_score(bic, 'psnr'):.2f} dB, NIQE "
        f"{pooled_score(bic, 'niqe'):.3f}; {MARGIN_CONVENTION}): "
        + "; ".join(f"{n}: {p:+.2f} dB, NIQE {q:+.2f}" for n, (p, q) in margins.items())
        + "."
    )


def description(results: Mapping) -> dict[str, str]:
    """The sweep's results as descriptive sentences, every number computed from
    ``results``; the verdict on the registered claim (paired over the GAN seeds, with its
    interval) comes from :mod:`esrgan_lab.lab.findings`."""
    from .experiments import Spread

    alphas = results["alphas"]
    pairs = results["pairs"]
    seeds = [p["seed"] for p in pairs]
    net_p, net_n = curve(results, "network")
    bic_p, bic_n = reference(results)
    ends = [curve(results, "network", pair=k) for k in range(len(pairs))]
    gan_p = [float(p[-1]) for p, _ in ends]
    gan_n = [float(n[-1]) for _, n in ends]
    w = results["weights"]
    gan_text = (
        f"`{w['gan']}`: {gan_p[0]:.2f} dB, NIQE {gan_n[0]:.3f}"
        if len(pairs) == 1
        else f"the GAN models of seeds {seeds} (first `{w['gan']}`): {Spread.of(gan_p)} dB, "
        f"NIQE {Spread.of(gan_n)}"
    )
    lines = {
        "ends": (
            f"Alpha 0 is `{w['psnr']}`: Y-PSNR {net_p[0]:.2f} dB, NIQE {net_n[0]:.3f}; alpha 1 is "
            f"{gan_text}; bicubic {bic_p:.2f} dB, NIQE {bic_n:.3f} (means over "
            f"{sum(len(v) for v in results['images'].values())} test images)."
        ),
    }
    lines["bicubic"] = validation_margins(results)
    per_pair = [niqe_gaps(results, k) for k in range(len(pairs))]
    shared = [a for a in per_pair[0] if all(a in g for g in per_pair)]
    if shared:
        gaps = {a: [g[a] for g in per_pair] for a in shared}
        wins = [a for a in shared if max(gaps[a]) < 0]
        losses = [a for a in shared if min(gaps[a]) > 0]
        if len(pairs) == 1:
            detail = ", ".join(f"{gaps[a][0]:+.3f} at alpha {a:.1f}" for a in shared)
        else:
            detail = "; ".join(f"alpha {a:.1f}: {Spread.of(gaps[a])}" for a in shared)
        lines["versus pixel"] = (
            f"At the same Y-PSNR, network interpolation has the lower NIQE at {len(wins)} of "
            f"{len(shared)} intermediate alphas"
            + ("" if len(pairs) == 1 else " with every seed")
            + f" and the higher at {len(losses)}"
            + ("" if len(pairs) == 1 else " with every seed")
            + " (NIQE of network minus pixel interpolation: "
            + detail
            + ")."
        )
    within = [a for a, p in zip(alphas, net_p) if p >= bic_p - 1.0]
    if within:
        k = alphas.index(max(within))
        lines["budget"] = (
            f"With `{w['gan']}`, the largest alpha within 1 dB of bicubic's Y-PSNR is "
            f"{alphas[k]:.1f}: {net_p[k]:.2f} dB, NIQE {net_n[k]:.3f}."
        )
    pub = results.get("published")
    if pub:
        lines["published"] = (
            f"The official ESRGAN's output for {pub['image']}: Y-PSNR {pub['psnr']:.2f} dB, "
            f"NIQE {pub['niqe']:.3f}."
        )
    return lines
