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

Issue 28's redesign, registered in ``notebooks/params/01_architecture.yaml`` before any
run: :func:`run_experiment_v2` (``architecture_v2``: block type crossed with beta,
:func:`arms_v2`, the registered stopping rule :func:`stopping_rule` applied before any test
score is read) and :func:`run_deep_experiment` (``deep_trunk_v2``: the four
:data:`INIT_VARIANTS` scored on the test images, arms still rising labelled). Both score
with the standard protocol (:func:`standard_test_sets`) and resume from their run folders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from ..model.complexity import count_flops
from ..model.rrdbnet import count_parameters
from ..model.spec import ModelSpec
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
        spec = ModelSpec(
            num_feat=num_feat,
            num_block=num_block,
            num_grow_ch=num_grow_ch,
            res_scale=v.res_scale,
            init_scale=v.init_scale,
        )
        model = spec.build()
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


# --------------------------------------------------------------------------- issue 28

#: Validation gain (dB) below which a curve counts as flat (registration_v2's stopping
#: rule) and above which a deep arm is labelled "still rising" (registration_deep_v2's).
FLAT_DB = 0.10


def arms_v2(num_feat: int, num_grow_ch: int, num_block: int) -> dict[str, dict]:
    """Every arm ``architecture_v2`` may train: block type crossed with residual scaling.

    The residual-block trunk gets :func:`~esrgan_lab.model.srresnet.matched_residual_blocks`
    blocks (the parameters and FLOPs of ``num_block`` RRDBs). Separating the block from
    beta is the point of the redesign: the stored study compared RRDB at beta 0.2 with
    residual blocks at beta 1 only (issue 28). Both trunks keep the 0.1-scaled init.
    """
    blocks = matched_residual_blocks(num_feat, num_grow_ch, num_block)
    rrdb = {"model.arch": "rrdbnet"}
    res = {"model.arch": "srresnet", "model.num_block": blocks}
    return {
        "RRDB, beta 0.2 (ESRGAN)": rrdb | {"model.res_scale": 0.2},
        "RRDB, beta 1": rrdb | {"model.res_scale": 1.0},
        "residual blocks, beta 1 (SRResNet)": res | {"model.res_scale": 1.0},
        "residual blocks, beta 0.2": res | {"model.res_scale": 0.2},
    }


def arm_plan(
    params: Mapping[str, object], *, optional: bool = True
) -> tuple[dict[str, dict], list[str], list[str]]:
    """The arms ``params["arms"]`` names, in training order, and which are left out.

    Returns:
        ``(arms, optional_arms, not_run)``: ``{name: config overrides}`` with the
        ``params["optional_arms"]`` last (trained after every seed of the others), the
        optional arms that are trained, and those that are not (``optional`` False).

    Raises:
        ConfigError: An arm that :func:`arms_v2` does not define, or an optional arm
            that is not one of the arms.
    """
    from ..errors import ConfigError

    known = arms_v2(*(int(params[k]) for k in ("num_feat", "num_grow_ch", "num_block")))
    names = [str(a) for a in params["arms"]]
    extra = [str(a) for a in params.get("optional_arms", [])]
    for name in names + extra:
        if name not in known:
            raise ConfigError(f"unknown architecture arm {name!r} (known: {list(known)})")
    if not set(extra) <= set(names):
        raise ConfigError(f"optional arms {extra} must be among the arms {names}")
    first = [n for n in names if n not in extra]
    last = [n for n in names if n in extra] if optional else []
    skipped = [n for n in names if n in extra and not optional]
    return {n: known[n] for n in first + last}, last, skipped


def val_curve(record: Mapping) -> dict[int, float]:
    """``{iteration: validation Y-PSNR}`` of a :func:`~esrgan_lab.lab.runs.run_record`."""
    return {int(i): float(v) for i, v in record["curves"].get("val_psnr", [])}


def seed_mean_gain(records: list[Mapping], start: int, end: int) -> float:
    """Mean over the seeds of validation Y-PSNR at ``end`` minus at ``start`` (``nan`` when
    a run has no validation at either, e.g. a run that diverged before ``end``)."""
    gains = []
    for r in records:
        curve = val_curve(r)
        gains.append(curve[end] - curve[start] if start in curve and end in curve else np.nan)
    return float(np.mean(gains))


def flatness(runs: Mapping[str, list[Mapping]], iterations: int) -> dict:
    """The stopping rule's check on runs of ``iterations``: each arm's seed-mean validation
    gain over the second half (3,000 to 6,000 for the registered 6,000), flat when below
    :data:`FLAT_DB` for every arm (an undefined gain is not flat)."""
    start = iterations // 2
    gains = {arm: seed_mean_gain(recs, start, iterations) for arm, recs in runs.items()}
    return {
        "iterations": iterations,
        "window": [start, iterations],
        "gains": gains,
        "not_flat": [a for a, g in gains.items() if not g < FLAT_DB],
        "flat": all(g < FLAT_DB for g in gains.values()),
    }


def stopping_rule(
    train: Callable[[int], Mapping[str, list[Mapping]]], iterations: int
) -> tuple[int, list[dict], str | None]:
    """registration_v2's stopping rule, before any test score is read.

    Trains every run at ``iterations`` (``train(iterations)`` returns ``{arm: [run
    record per seed]}``); if any arm is not flat (:func:`flatness`), every run is repeated
    once at twice the length; if that is still not flat, the verdict carries a label.

    The registration gives the window for the first length only (3,000 to 6,000 of 6,000);
    the repeat is checked on its second half too (6,000 to 12,000): "flat at 12,000
    iterations" read as the same rule at the new length.

    Returns:
        ``(iterations used, the checks made, label or None)``.
    """
    checks = []
    for its in (iterations, 2 * iterations):
        check = flatness(train(its), its)
        checks.append(check)
        if check["flat"]:
            return its, checks, None
    return 2 * iterations, checks, f"validation curve not flat at {2 * iterations:,} iterations"


class _Pairs(list):
    """A list of :class:`~esrgan_lab.data.paired.ImagePair` with its ``scale`` and ``names``
    (what :func:`~esrgan_lab.lab.experiments.gallery` reads of a test set)."""

    def __init__(self, pairs, scale: int) -> None:
        super().__init__(pairs)
        self.scale = scale
        self.names = [p.name for p in pairs]


def standard_test_sets(params: Mapping[str, object]) -> dict[str, _Pairs]:
    """``{set name: pairs}`` of ``params["test"]`` as the standard protocol makes them:
    images read as they are (Set14's gray ``bridge`` stays gray and is scored on its gray
    values, as published tables are; :mod:`esrgan_lab.metrics.scoring`), modcrop, MATLAB
    bicubic LQ."""
    from ..data.sources import resolve_dataset
    from ..metrics.scoring import protocol_pairs
    from .experiments import set_name

    scale = int(params["scale"])
    return {
        set_name(s): _Pairs(list(protocol_pairs(resolve_dataset(s), scale, "standard")), scale)
        for s in params["test"]
    }


def val_crops(params: Mapping[str, object]) -> list:
    """The validation pairs the trainer scores (central ``val_crop`` HR crops, degraded)."""
    from ..data.degrade import center_crop
    from ..data.paired import degrade_all
    from ..data.sources import NamedImage, load_source

    crop, pairs = params.get("val_crop"), []
    for src in params["val"]:
        images = load_source(str(src))
        if crop:
            images = [NamedImage(im.name, center_crop(im.image, int(crop))) for im in images]
        pairs += degrade_all(images, int(params["scale"]), str(src))
    return pairs


def scored_record(run, seed: int, test: Mapping[str, _Pairs]) -> dict:
    """:func:`~esrgan_lab.lab.runs.run_record` with the run's test Y-PSNR per image.

    The scores are kept in the run's folder (``test_scores.json``) as soon as they are
    computed, so that a resumed study does not score a run twice.
    """
    import json

    from ..evaluation.evaluate import score_pairs
    from ..fileio import atomic_write_text

    path = run.folder / "test_scores.json"
    key = {n: p.names for n, p in test.items()}
    stored = json.loads(path.read_text()) if path.is_file() else {}
    if stored.get("images") != key or stored.get("iterations") != run.metrics["iterations"]:
        model = run.model(ema=False).eval()
        scores = {n: score_pairs(model, p, p.scale).scores for n, p in test.items()}
        stored = {
            "images": key,
            "iterations": run.metrics["iterations"],
            "psnr": {n: [s.psnr for s in sc] for n, sc in scores.items()},
            "ssim": {n: [s.ssim for s in sc] for n, sc in scores.items()},
        }
        atomic_write_text(path, json.dumps(stored, indent=1) + "\n")
    return run_record(run, seed) | {"test": stored["psnr"], "test_ssim": stored["ssim"]}


def _bicubic(params: Mapping[str, object], test: Mapping[str, _Pairs]) -> dict:
    from ..evaluation.evaluate import score_pairs

    scale = int(params["scale"])
    val = score_pairs("bicubic", val_crops(params), scale).scores
    return {
        "val": float(np.mean([s.psnr for s in val])),
        "val_images": [s.psnr for s in val],
        **{n: [s.psnr for s in score_pairs("bicubic", p, scale).scores] for n, p in test.items()},
    }


def run_experiment_v2(
    params: Mapping[str, object],
    out: str | Path,
    *,
    progress: bool = False,
    optional: bool = True,
) -> tuple[dict, dict[str, np.ndarray]]:
    """``architecture_v2`` (registration_v2 in ``notebooks/params/01_architecture.yaml``).

    Trains ``params["arms"]`` (:func:`arm_plan`: the optional arms after every seed of the
    others) for ``params["iterations"]`` into ``out/<arm index>_seed<seed>``, applies the
    registered stopping rule (:func:`stopping_rule`; the repeat at twice the length trains
    into ``out/repeat_<iterations>/``, keeping the first runs), and only then scores every
    run of the length used on the test images (:func:`standard_test_sets`). Every run is
    stored by the trainer as it finishes, and a rerun resumes (finished runs are skipped).

    Args:
        params: The ``study_v2`` section (sizes, ``arms``, ``optional_arms``, sources).
        out: The study's run folder.
        progress: Print a line per finished run.
        optional: Train the optional arms (their claims read "not run" otherwise).

    Returns:
        ``(results, images)`` for :func:`esrgan_lab.lab.experiments.save`.
    """
    out = Path(out)
    arms, optional_arms, not_run = arm_plan(params, optional=optional)
    index = {name: i for i, name in enumerate(params["arms"])}
    seeds = [int(s) for s in params["seeds"]]
    first = int(params["iterations"])
    trained: dict[int, dict[str, list]] = {}

    def train(iterations: int) -> dict[str, list[dict]]:
        p = dict(params) | {"iterations": iterations}
        folder = out if iterations == first else out / f"repeat_{iterations}"
        runs: dict[str, list] = {}
        for group in ([a for a in arms if a not in optional_arms], optional_arms):
            grid = {a: arms[a] for a in group}
            if grid:
                runs |= train_grid(
                    grid, study_config(p), folder, seeds=seeds, progress=progress, index=index
                )
        trained[iterations] = runs
        return {a: [run_record(r, s) for s, r in zip(seeds, rs)] for a, rs in runs.items()}

    used, checks, label = stopping_rule(train, first)
    if progress:
        for c in checks:
            gains = ", ".join(f"{a}: {g:+.3f} dB" for a, g in c["gains"].items())
            print(f"validation gain {c['window'][0]}-{c['window'][1]}: {gains}", flush=True)
    # Test scores are read only now, on the runs of the length the rule settled on.
    test = standard_test_sets(params)
    results: dict = {
        "seeds": seeds,
        "variants": list(arms),
        "optional_arms": optional_arms,
        "not_run": not_run,
        "stopping": {"iterations": used, "checks": checks, "label": label},
        "runs_by_length": {},
        "bicubic": _bicubic(params, test),
        "images": {n: p.names for n, p in test.items()},
        "runs": {},
        "cost": {},
    }
    for its, runs in trained.items():
        results["runs_by_length"][str(its)] = {
            a: [run_record(r, s) for s, r in zip(seeds, rs)] for a, rs in runs.items()
        }
    models = {}
    for name, name_runs in trained[used].items():
        results["runs"][name] = [scored_record(r, s, test) for s, r in zip(seeds, name_runs)]
        models[name] = name_runs[0].model(ema=False).eval()
        flops = count_flops(models[name], (1, 3, 32, 32)).totals["flop_counter"]
        results["cost"][name] = {
            "params": count_parameters(models[name]),
            "gflops_32px": flops / 1e9,
            "num_block": models[name].num_block,
        }
    images: dict[str, np.ndarray] = {}
    if params.get("gallery_image"):
        results["gallery"], images = gallery(params, test, models)
    return results, images


def run_deep_experiment(
    params: Mapping[str, object], out: str | Path, *, progress: bool = False
) -> tuple[dict, dict[str, np.ndarray]]:
    """``deep_trunk_v2`` (registration_deep_v2): the deep BN-free trunk as the four
    :data:`INIT_VARIANTS`, a fixed ``params["iterations"]`` each, every run scored on the
    test images (:func:`standard_test_sets`; endpoint ``deep_test_psnr``).

    An arm whose seed-mean validation gain over the second half (1,000 to 2,000 of the
    registered 2,000) exceeds :data:`FLAT_DB` is labelled "still rising"; the length does
    not change. Runs train into ``out/<variant index>_seed<seed>`` and resume there.

    Returns:
        ``(results, images)`` for :func:`esrgan_lab.lab.experiments.save` (no images).
    """
    out = Path(out)
    seeds = [int(s) for s in params["seeds"]]
    grid = {v.name: v.overrides() for v in INIT_VARIANTS}
    runs = train_grid(grid, study_config(params), out, seeds=seeds, progress=progress)
    test = standard_test_sets(params)
    iterations = int(params["iterations"])
    start = iterations // 2
    records = {a: [scored_record(r, s, test) for s, r in zip(seeds, rs)] for a, rs in runs.items()}
    gains = {a: seed_mean_gain(recs, start, iterations) for a, recs in records.items()}
    nf, gc, nb = (int(params[k]) for k in ("num_feat", "num_grow_ch", "num_block"))
    results = {
        "seeds": seeds,
        "variants": list(grid),
        "bicubic": _bicubic(params, test),
        "images": {n: p.names for n, p in test.items()},
        "runs": records,
        "rising": {
            "window": [start, iterations],
            "gains": gains,
            "still_rising": [a for a, g in gains.items() if g > FLAT_DB],
        },
        "growth": growth_at_init(nf, gc, nb),
    }
    return results, {}


def score_finished(params: Mapping[str, object], out: str | Path) -> int:
    """Score every finished run under ``out`` on the test images now (``test_scores.json``
    in its stage folder, as :func:`scored_record` keeps it); returns how many.

    For ``deep_trunk_v2`` only: its registration fixes the length in advance and no rule
    waits on the other runs, so a run scored as soon as it finishes is scored exactly as at
    the end, and its archive (:func:`~esrgan_lab.lab.runs.archive_runs`) can leave the
    weights out. ``architecture_v2`` must not use it: its stopping rule comes first.
    """
    from .runs import finished_stages, read_run

    test = standard_test_sets(params)
    stages = finished_stages(out)
    for stage_dir in stages:
        seed = int(stage_dir.parent.name.rsplit("_seed", 1)[1])
        scored_record(read_run(stage_dir.parent.name, stage_dir), seed, test)
    return len(stages)
