"""The architecture study of notebook ``01_architecture`` (paper Sec. 3.1).

Two questions, each answered by training through the project's trainer with several
seeds:

* **The block.** Does the Residual-in-Residual Dense Block train to a better PSNR than
  SRResNet's residual block at the same parameters and FLOPs? :data:`ARCH_VARIANTS`
  swaps only the trunk (:class:`~esrgan_lab.model.srresnet.SRResNetTrunk`, block count
  from :func:`~esrgan_lab.model.srresnet.matched_residual_blocks`).
* **Residual scaling and the smaller init** (Sec. 3.1, supplement). On a deeper BN-free
  trunk, does plain training (MSRA init, no residual scaling) diverge or slow down, and by
  how much? :data:`INIT_VARIANTS`; plus the trunk's activation growth at initialisation,
  measured without training.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ..model.complexity import count_flops
from ..model.rrdbnet import RRDBNet, count_parameters
from ..model.srresnet import matched_residual_blocks
from .analysis import trunk_activation_std
from .bn_study import GeneratorVariant, psnr_list
from .experiments import gallery, study_config, test_sets
from .runs import run_record, train_grid

#: Training a deeper BN-free trunk (supplement): plain MSRA init without residual
#: scaling, the 0.1-scaled init, residual scaling 0.2, and both (ESRGAN's choice).
INIT_VARIANTS: tuple[GeneratorVariant, ...] = (
    GeneratorVariant("MSRA init, beta 1", None, res_scale=1.0, init_scale=1.0),
    GeneratorVariant("init x0.1, beta 1", None, res_scale=1.0, init_scale=0.1),
    GeneratorVariant("MSRA init, beta 0.2", None, res_scale=0.2, init_scale=1.0),
    GeneratorVariant("init x0.1, beta 0.2 (ESRGAN)", None, res_scale=0.2, init_scale=0.1),
)


def arch_variants(num_feat: int, num_grow_ch: int, num_block: int) -> dict[str, dict]:
    """RRDB trunk (ESRGAN) and a residual-block trunk of the same parameters and FLOPs.

    The residual blocks keep SRResNet's/EDSR-baseline's settings (no residual scaling,
    ``res_scale`` 1) and BasicSR's 0.1 init; the RRDB trunk is ESRGAN's (beta 0.2, 0.1).
    """
    blocks = matched_residual_blocks(num_feat, num_grow_ch, num_block)
    return {
        "RRDB (ESRGAN)": {"model.arch": "rrdbnet"},
        "residual blocks (SRResNet)": {
            "model.arch": "srresnet",
            "model.num_block": blocks,
            "model.res_scale": 1.0,
        },
    }


def growth_at_init(
    num_feat: int, num_grow_ch: int, num_block: int, size: int = 32, seed: int = 0
) -> dict[str, list[float]]:
    """Std of the trunk features after ``conv_first`` and each RRDB, at initialisation,
    for every :data:`INIT_VARIANTS` entry (one smooth random input)."""
    gen = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, size // 4, size // 4, generator=gen)
    lq = torch.nn.functional.interpolate(small, size=size, mode="bilinear")
    out = {}
    for v in INIT_VARIANTS:
        torch.manual_seed(seed)
        model = RRDBNet(
            num_feat=num_feat,
            num_block=num_block,
            num_grow_ch=num_grow_ch,
            res_scale=v.res_scale,
            init_scale=v.init_scale,
        )
        out[v.name] = trunk_activation_std(model, lq)
    return out


def run_experiment(
    params: Mapping[str, object], out: str | Path, *, progress: bool = False
) -> tuple[dict, dict[str, np.ndarray]]:
    """Both questions at the sizes ``params`` sets; see ``notebooks/params``.

    ``params`` holds the block comparison's sizes at the top level (as
    :func:`~esrgan_lab.lab.experiments.study_config` reads them) and the deep-trunk
    comparison's under ``deep``.

    Returns:
        ``(results, images)`` for :func:`esrgan_lab.lab.experiments.save`.
    """
    out = Path(out)
    nf, gc, nb = (int(params[k]) for k in ("num_feat", "num_grow_ch", "num_block"))
    variants = arch_variants(nf, gc, nb)
    base = study_config(params)
    runs = train_grid(variants, base, out / "block", seeds=params["seeds"], progress=progress)
    test = test_sets(params)
    results: dict = {
        "seeds": list(params["seeds"]),
        "variants": list(variants),
        "bicubic": {"val": None, **{n: psnr_list(None, p) for n, p in test.items()}},
        "images": {n: p.names for n, p in test.items()},
        "runs": {},
        "cost": {},
    }
    models = {}
    shape = (1, 3, 32, 32)
    for name, name_runs in runs.items():
        for seed, run in zip(params["seeds"], name_runs):
            model = run.model(ema=False).eval()
            rec = run_record(run, seed)
            rec["test"] = {n: psnr_list(model, pairs) for n, pairs in test.items()}
            results["runs"].setdefault(name, []).append(rec)
            models.setdefault(name, model)
        flops = count_flops(models[name], shape).totals["flop_counter"]
        results["cost"][name] = {
            "params": count_parameters(models[name]),
            "gflops_32px": flops / 1e9,
            "num_block": models[name].num_block,
        }
    from ..data.paired import PairedImageSet
    from ..data.sources import load_source

    val_images = [im for s in params["val"] for im in load_source(s)]
    val = PairedImageSet(val_images, int(params["scale"]))
    results["bicubic"]["val"] = float(np.mean(psnr_list(None, val)))
    results["gallery"], images = gallery(params, test, models)

    deep = dict(params) | dict(params["deep"])
    deep_grid = {v.name: v.overrides() for v in INIT_VARIANTS}
    deep_runs = train_grid(
        deep_grid, study_config(deep), out / "deep", seeds=deep["seeds"], progress=progress
    )
    results["deep"] = {
        "params": dict(params["deep"]),
        "variants": list(deep_grid),
        "runs": {
            name: [run_record(r, s) for s, r in zip(deep["seeds"], rs)]
            for name, rs in deep_runs.items()
        },
        "growth": growth_at_init(
            int(deep["num_feat"]), int(deep["num_grow_ch"]), int(deep["num_block"])
        ),
        "growth_paper_depth": growth_at_init(64, 32, 23),
    }
    return results, images


# --------------------------------------------------------------------------- reading


def test_means(results: Mapping, variant: str, runs_key: str = "runs") -> list[float]:
    """Per seed: the mean test Y-PSNR over every test image."""
    recs = results[runs_key][variant]
    return [float(np.mean([v for s in r["test"].values() for v in s])) for r in recs]


def _val_margin(results: Mapping, recs: list[dict]) -> list[float]:
    return [r["val_final"] - results["bicubic"]["val"] for r in recs if r["val_final"] is not None]


def growth_factor(stds: list[float]) -> float:
    """How much the trunk's activation std grows per block, on average (geometric)."""
    return float((stds[-1] / stds[0]) ** (1 / max(1, len(stds) - 1)))


def description(results: Mapping) -> dict[str, str]:
    """Both questions' results as descriptive sentences, every number computed from
    ``results``; the verdicts on the registered claims come from
    :mod:`esrgan_lab.lab.findings`, and no run is left out here."""
    from .experiments import Spread, compare

    lines: dict[str, str] = {}
    names = results["variants"]
    cost = results["cost"]
    a, b = names
    lines["cost"] = (
        f"'{b}' has {cost[b]['num_block']} blocks: {cost[b]['params']:,} parameters and "
        f"{cost[b]['gflops_32px']:.3f} GFLOPs per 32 px input, against {cost[a]['params']:,} "
        f"and {cost[a]['gflops_32px']:.3f} for '{a}' ({cost[a]['num_block']} RRDBs)."
    )
    margins = {n: _val_margin(results, results["runs"][n]) for n in names}
    lines["bicubic"] = (
        "Margin over bicubic on the validation images, in dB (reported, no run left out): "
        + "; ".join(f"{n}: {Spread.of(m)}" for n, m in margins.items())
        + "."
    )
    lines["block"] = compare(
        test_means(results, a), test_means(results, b), f"Test Y-PSNR of '{a}' minus '{b}'"
    )
    deep = results["deep"]
    bicubic = results["bicubic"]["val"]
    for name, recs in deep["runs"].items():
        div = [r["seed"] for r in recs if r["diverged_at"] is not None]
        finals = [r["val_final"] for r in recs if r["diverged_at"] is None and r["val_final"]]
        text = f"'{name}': "
        text += f"diverged with seed(s) {div}; " if div else "trained with every seed; "
        if finals:
            margin = Spread.of([f - bicubic for f in finals])
            above = sum(f > bicubic for f in finals)
            seeds = "every seed" if above == len(recs) else f"{above} of {len(recs)} seeds"
            text += (
                f"final validation Y-PSNR {Spread.of(finals)} dB; minus bicubic's "
                f"{bicubic:.2f}: {margin} dB (above it with {seeds})"
            )
        else:
            text += "no finished run"
        lines[f"deep {name}"] = text + "."
    plain, esrgan = deep["variants"][0], deep["variants"][-1]

    def finals(name: str) -> list[float]:
        return [
            r["val_final"] if r["diverged_at"] is None else float("nan") for r in deep["runs"][name]
        ]

    if all(np.isfinite(finals(plain))) and all(np.isfinite(finals(esrgan))):
        lines["deep compare"] = compare(
            finals(esrgan), finals(plain), f"On the deep trunk, '{esrgan}' minus '{plain}'"
        )
    growth = {n: growth_factor(s) for n, s in deep["growth"].items()}
    paper = {n: growth_factor(s) for n, s in deep["growth_paper_depth"].items()}
    lines["growth"] = (
        "At initialisation the trunk's activation std grows per block by "
        + ", ".join(f"x{g:.2f} ('{n}')" for n, g in growth.items())
        + f" at {deep['params']['num_block']} blocks, and at the paper's 23 blocks by "
        + ", ".join(f"x{g:.2f}" for g in paper.values())
        + "."
    )
    return lines
