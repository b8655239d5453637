"""The BN-removal ablation of ESRGAN (Wang et al. 2018, Sec. 3.1 and the supplement).

The paper removes every BatchNorm layer from the generator because "BN layers tend to
bring artifacts" when "the statistics of training and testing datasets differ a lot",
and because removing them saves computation and memory. It then needs residual scaling
(beta = 0.2) and a 0.1-scaled MSRA init to train the deep BN-free trunk. This module
holds the study code of notebook ``02_bn_removal_ablation``:

* :func:`train_variants` trains *matched* generators through the project's trainer -
  same seed (so the same conv weights at start: BatchNorm layers draw no random
  numbers), the same batches in the same order, the same iterations, L1 loss and Adam -
  differing only in ``model.norm``, ``model.res_scale`` or ``model.init_scale``.
* :class:`Shift` and :func:`shift_study` evaluate every model on inputs whose statistics
  differ from training (gain, gamma, another dataset), with PSNR relative to bicubic.
* :func:`bn_input_stats` compares each BN layer's running statistics with the batch
  statistics of a given input; :func:`batch_stats_copy` runs BN with batch statistics.
* :func:`worst_case` finds, by PSNR alone, the BN run and validation image where BN did
  most harm against the BN-free model of the same seed (:func:`worst_validation` keeps
  its outputs and colour casts): where the paper's "BN artifacts" would show.
* :func:`fold_batchnorm` and :func:`measure_cost` measure what removing BN saves.
* :func:`run_experiment` is the stored study ``bn_removal`` (BN scored after precise BN).

The redesigned ``bn_removal_v2`` of issue 28 is in :mod:`.bn_study_v2`; it trains and
scores with the pieces above.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.paired import PairedImageSet
from ..data.sources import NamedImage
from ..evaluation.evaluate import score_pairs
from ..model.memory import peak_activation_bytes, saved_activation_bytes
from ..model.rrdbnet import Norm, RRDBNet
from ..timing import fastest
from ..training.config import TrainConfig
from .experiments import gallery, study_config, test_sets
from .runs import Run, make_config, train_grid

# --------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class GeneratorVariant:
    """One generator of the ablation: an RRDBNet that differs only in these fields.

    Attributes:
        name: Label in tables and plots.
        norm: ``None`` (ESRGAN), ``"batch"`` (BN in the LR trunk, SRGAN-style) or
            ``"batch_hr"`` (BN also after the upsampling convs, the supplement's
            Exp_BNinHR).
        res_scale: Residual scaling ``beta`` (0.2 in the paper, 1.0 = none).
        init_scale: Multiplier of the MSRA init of the dense convs (0.1 in the paper).
    """

    name: str
    norm: Norm = None
    res_scale: float = 0.2
    init_scale: float = 0.1

    def overrides(self) -> dict[str, object]:
        """The config keys this variant sets."""
        return {
            "model.norm": self.norm,
            "model.res_scale": self.res_scale,
            "model.init_scale": self.init_scale,
        }


#: The three generators of the BN comparison (paper Sec. 3.1, supplement Exp_BNinHR).
BN_VARIANTS: tuple[GeneratorVariant, ...] = (
    GeneratorVariant("no BN (ESRGAN)", None),
    GeneratorVariant("BN in LR trunk (SRGAN)", "batch"),
    GeneratorVariant("BN also in HR (Exp_BNinHR)", "batch_hr"),
)


def build_generator(variant: GeneratorVariant, cfg: TrainConfig) -> RRDBNet:
    """The untrained generator the trainer starts ``variant`` from (same seeding).

    The trainer seeds with ``cfg.seed`` (+ the stage index, 0 for the PSNR stage) before
    building the generator, so this is exactly its initial network.
    """
    cfg = make_config(cfg, **variant.overrides())
    torch.manual_seed(cfg.seed)
    return cfg.spec.build()


def train_variants(
    variants: Sequence[GeneratorVariant],
    base: TrainConfig,
    out: str | Path,
    *,
    seeds: Sequence[int] = (0,),
    progress: bool = False,
) -> dict[str, list[Run]]:
    """Train every variant with every seed under identical conditions (module docstring):
    :func:`esrgan_lab.lab.runs.train_grid` over the variants' model fields.

    Returns:
        ``{variant.name: [Run per seed]}`` in the order given.
    """
    grid = {v.name: v.overrides() for v in variants}
    return train_grid(grid, base, out, seeds=seeds, progress=progress)


# --------------------------------------------------------------------------- evaluation


def batch_stats_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose BatchNorms normalise with the statistics of each input
    (train-mode BN) instead of the running statistics gathered in training; the
    original's running statistics are left untouched."""
    return copy.deepcopy(model).train()


def psnr_list(model: nn.Module | None, pairs: PairedImageSet) -> list[float]:
    """Y-PSNR (crop_border = scale) of ``model`` on every pair; ``None`` model = bicubic.

    Scores with the project's one scoring loop
    (:func:`esrgan_lab.evaluation.evaluate.score_pairs`). The model runs in its current
    mode: eval mode uses BN's running statistics, :func:`batch_stats_copy` the input's.
    """
    report = score_pairs("bicubic" if model is None else model, pairs, pairs.scale)
    return [s.psnr for s in report.scores]


def mean_psnr(model: nn.Module | None, pairs: PairedImageSet) -> float:
    """Mean of :func:`psnr_list`."""
    return float(np.mean(psnr_list(model, pairs)))


@torch.no_grad()
def precise_bn(model: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Re-estimate every BatchNorm's running statistics as the plain average of the batch
    statistics over ``batches`` ("precise BN", Wu & Johnson 2021), in place.

    Why: training keeps an exponential average with momentum 0.1, so at the end of a short
    run the running statistics follow the last ten or so batches; in this study that moved
    a BN model's validation PSNR by more than half a dB between validations taken while
    the learning rate was already near zero. Averaging over many batches with the weights
    fixed removes that estimation noise, not the train/test mismatch the paper is about.

    Args:
        model: Generator with BatchNorm layers (a model without them is left unchanged).
        batches: LQ training batches, each ``(N, 3, h, w)`` RGB float32 on [0, 1].

    Returns:
        ``model``, in eval mode.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return model.eval()
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches seen
    model.train()
    for lq in batches:
        model(lq)
    for m, momentum in zip(bns, momenta, strict=True):
        m.momentum = momentum
    return model.eval()


def patch_batches(
    images: Sequence[NamedImage], params: Mapping[str, object], count: int, seed: int
) -> Iterator[torch.Tensor]:
    """``count`` LQ batches of the study's training patches (its ``gt_size`` and
    ``batch_size``, flips and rotations), from a stream seeded apart from training's."""
    from ..data.paired import PairedPatchDataset

    scale, size, batch = int(params["scale"]), int(params["gt_size"]), int(params["batch_size"])
    stream = PairedPatchDataset(images, scale, size, seed=seed)
    for b in range(count):
        yield torch.stack([stream[b * batch + i]["lq"] for i in range(batch)])


# --------------------------------------------------------------------------- shifts


@dataclass(frozen=True)
class Shift:
    """A change of image statistics: ``gain * (x / 255) ** gamma`` on the HR image.

    The HR image is changed first and the LR input is degraded from it, so the target is
    the shifted image and only the *statistics* differ from training.
    """

    name: str
    gain: float = 1.0
    gamma: float = 1.0

    def apply(self, img: np.ndarray) -> np.ndarray:
        """uint8 image -> uint8 image with the shift applied (clipped, rounded)."""
        x = img.astype(np.float64) / 255.0
        x = self.gain * np.power(x, self.gamma)
        return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


#: Statistics shifts of the study: none, darker (gain 0.5), brighter (gamma 0.5).
SHIFTS: tuple[Shift, ...] = (
    Shift("original"),
    Shift("dark (gain 0.5)", gain=0.5),
    Shift("bright (gamma 0.5)", gamma=0.5),
)


def shifted_pairs(images: Sequence[NamedImage], shift: Shift, scale: int) -> PairedImageSet:
    """:class:`PairedImageSet` of ``images`` after ``shift``."""
    return PairedImageSet([NamedImage(im.name, shift.apply(im.image)) for im in images], scale)


def shift_study(
    models: Mapping[str, nn.Module],
    sets: Mapping[str, PairedImageSet],
    use_batch_stats: bool = False,
) -> dict[str, dict[str, float]]:
    """PSNR gain over bicubic, ``{model: {set: mean(PSNR_model - PSNR_bicubic)}}``.

    PSNR itself moves with the image content (a darker image has smaller errors), so
    each model is compared with bicubic upsampling on the same inputs: the drop of this
    gain from the ``original`` set is what the statistics shift costs the model.
    """
    bic = {name: np.asarray(psnr_list(None, pairs)) for name, pairs in sets.items()}
    out: dict[str, dict[str, float]] = {}
    for mname, model in models.items():
        net = batch_stats_copy(model) if use_batch_stats else model.eval()
        out[mname] = {
            sname: float(np.mean(np.asarray(psnr_list(net, pairs)) - bic[sname]))
            for sname, pairs in sets.items()
        }
    return out


# --------------------------------------------------------------------------- BN statistics


@dataclass
class BNStats:
    """Running statistics of one BatchNorm layer vs the statistics of its input now.

    Attributes:
        name: Module name (``body.0.rdb1.bn1``, ``bn_body``, ``bn_up1`` ...).
        running_mean, running_var: ``(C,)`` statistics gathered during training.
        batch_mean, batch_var: ``(C,)`` per-channel mean/variance of the layer's input
            on the given images (over N, H, W; biased variance, as BN normalises).
    """

    name: str
    running_mean: np.ndarray
    running_var: np.ndarray
    batch_mean: np.ndarray
    batch_var: np.ndarray

    @property
    def mean_shift(self) -> float:
        """Mean over channels of ``|batch_mean - running_mean| / sqrt(running_var)``."""
        sd = np.sqrt(self.running_var + 1e-5)
        return float(np.mean(np.abs(self.batch_mean - self.running_mean) / sd))

    @property
    def log_var_ratio(self) -> float:
        """Mean over channels of ``|log(batch_var / running_var)|``."""
        return float(np.mean(np.abs(np.log((self.batch_var + 1e-5) / (self.running_var + 1e-5)))))


@torch.no_grad()
def bn_input_stats(model: nn.Module, lq: torch.Tensor) -> list[BNStats]:
    """Compare every BatchNorm layer's running statistics with those of ``lq``'s features.

    The model runs in eval mode (running statistics used, none updated); forward hooks
    record the input statistics of each BN layer.

    Args:
        model: A generator with BatchNorm layers.
        lq: ``(N, 3, h, w)`` input batch.

    Returns:
        One :class:`BNStats` per BatchNorm layer, in forward order.
    """
    records: list[BNStats] = []
    handles = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.BatchNorm2d):

            def hook(
                m: nn.BatchNorm2d, inputs: tuple, output: torch.Tensor, name: str = name
            ) -> None:
                x = inputs[0].double()
                records.append(
                    BNStats(
                        name,
                        m.running_mean.double().numpy().copy(),
                        m.running_var.double().numpy().copy(),
                        x.mean(dim=(0, 2, 3)).numpy(),
                        x.var(dim=(0, 2, 3), unbiased=False).numpy(),
                    )
                )

            handles.append(mod.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        model(lq)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return records


# --------------------------------------------------------------------------- cost


#: ``conv name -> BN name`` pairs of RRDBNet (the BN always directly follows its conv).
def _conv_bn_pairs(model: nn.Module) -> list[tuple[nn.Module, str, str]]:
    pairs = []
    for parent in model.modules():
        children = dict(parent.named_children())
        for name, bn in children.items():
            if not isinstance(bn, nn.BatchNorm2d):
                continue
            conv_name = name.replace("bn", "conv", 1)
            conv = children.get(conv_name)
            if isinstance(conv, nn.Conv2d):
                pairs.append((parent, conv_name, name))
    return pairs


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every eval-mode BatchNorm folded into the conv before it.

    In eval mode BN is the affine map ``gamma * (y - mu) / sqrt(var + eps) + beta`` of
    the conv output ``y = W x + b``, so it can be merged into the conv:
    ``W' = W * gamma / sqrt(var + eps)``, ``b' = (b - mu) * gamma / sqrt(var + eps) +
    beta``. The folded model computes the same function at the cost of the BN-free one;
    this is why the *inference* saving of removing BN is small - the saving that matters
    is in training, where BN must use batch statistics and cannot be folded.
    """
    folded = copy.deepcopy(model).eval()
    for parent, conv_name, bn_name in _conv_bn_pairs(folded):
        conv: nn.Conv2d = getattr(parent, conv_name)
        bn: nn.BatchNorm2d = getattr(parent, bn_name)
        factor = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        new = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            bias=True,
        )
        new.weight.copy_(conv.weight * factor.view(-1, 1, 1, 1))
        new.bias.copy_((bias - bn.running_mean) * factor + bn.bias)
        setattr(parent, conv_name, new)
        setattr(parent, bn_name, nn.Identity())
    return folded


@dataclass
class Cost:
    """Measured cost of one generator (see :func:`measure_cost`)."""

    name: str
    params: int
    eval_seconds: float
    train_seconds: float
    eval_peak_bytes: int | None
    train_saved_bytes: int | None


def measure_cost(
    name: str,
    model: nn.Module,
    input_shape: tuple[int, int, int, int],
    repeats: int = 5,
    *,
    memory: bool = True,
) -> Cost:
    """Eval forward time, training-step time and memory of ``model``.

    The training step is the project's :func:`~esrgan_lab.training.steps.psnr_step`
    (forward, L1 backward, optimizer step) with a zero-rate SGD optimizer, so the
    weights stay as they are. Times are the fastest of ``repeats`` runs (they depend on the
    machine and its load); the byte counts are exact for the given shape, and ``None``
    when ``memory`` is off (they take two more forward passes and never change).
    """
    from ..training.steps import psnr_step

    torch.manual_seed(0)
    x = torch.rand(input_shape)
    scale = getattr(model, "scale", 4)
    target = torch.rand(
        input_shape[0], input_shape[1], input_shape[2] * scale, input_shape[3] * scale
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.0)

    def fwd() -> None:
        with torch.no_grad():
            model(x)

    def fwd_bwd() -> None:
        psnr_step(model, opt, x, target)

    was_training = model.training
    try:
        model.eval()
        eval_s = fastest(fwd, repeats)
        model.train()
        state = copy.deepcopy(model.state_dict())  # train-mode BN updates running stats
        train_s = fastest(fwd_bwd, repeats)
        model.load_state_dict(state)
        model.zero_grad(set_to_none=True)
        peak = saved = None
        if memory:
            peak = peak_activation_bytes(model, x)
            saved = saved_activation_bytes(model, x)
            model.load_state_dict(state)
    finally:
        model.train(was_training)
    return Cost(name, sum(p.numel() for p in model.parameters()), eval_s, train_s, peak, saved)


def format_mib(n: float) -> str:
    """Bytes as ``"12.34 MiB"``."""
    return f"{n / 2**20:.2f} MiB"


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average (window ``min(window, i+1)``), NaN-safe, for loss curves."""
    arr = np.asarray(values, dtype=np.float64)
    out = np.empty_like(arr)
    for i in range(len(arr)):
        seg = arr[max(0, i - window + 1) : i + 1]
        seg = seg[np.isfinite(seg)]
        out[i] = seg.mean() if len(seg) else math.nan
    return out


def _best_box(score: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """The ``size x size`` box (stride ``size // 2``) with the largest sum of ``score``."""
    h, w = score.shape
    size = min(size, h, w)
    step = max(1, size // 2)
    integral = np.pad(score.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    best, box = -np.inf, (0, 0, size, size)
    for y in list(range(0, h - size + 1, step)) + [h - size]:
        for x in list(range(0, w - size + 1, step)) + [w - size]:
            s = (
                integral[y + size, x + size]
                - integral[y, x + size]
                - integral[y + size, x]
                + integral[y, x]
            )
            if s > best:
                best, box = s, (y, x, size, size)
    return box


def detail_box(gt: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """Where a gallery zooms: the ``size x size`` box of the *ground truth* with the most
    detail (largest sum of |Laplacian| of the gray image).

    A rule fixed before any output is looked at, so the zoom shows where all models are
    challenged, not where one of them happens to be worst.

    Returns:
        ``(y, x, h, w)``.
    """
    import cv2

    gray = gt if gt.ndim == 2 else cv2.cvtColor(gt, cv2.COLOR_BGR2GRAY)
    return _best_box(np.abs(cv2.Laplacian(gray.astype(np.float64), cv2.CV_64F)), size)


def artifact_box(
    gt: np.ndarray, reference: np.ndarray, test: np.ndarray, size: int
) -> tuple[int, int, int, int]:
    """The ``size x size`` box where ``test`` is worse than ``reference`` the most
    (``sum |test - gt| - sum |reference - gt|`` on the gray level): a diagnostic, not a
    gallery rule (see :func:`detail_box`).

    Returns:
        ``(y, x, h, w)``.
    """
    err = np.abs(test.astype(np.float64) - gt).mean(2) - np.abs(
        reference.astype(np.float64) - gt
    ).mean(2)
    return _best_box(err, size)


# --------------------------------------------------------------------------- experiment


def run_experiment(
    params: Mapping[str, object], out: str | Path, *, progress: bool = False
) -> tuple[dict, dict[str, np.ndarray]]:
    """The BN-removal study at the size ``params`` set (see ``notebooks/params``).

    Trains :data:`BN_VARIANTS` with every seed, then measures on the test sets: PSNR per
    image, the gain over bicubic under each :data:`SHIFTS` and on another dataset (with
    running and with batch statistics), the BN statistics mismatch per layer (first
    seed), a gallery at :func:`detail_box`, and the cost of each variant.

    Returns:
        ``(results, images)`` for :func:`esrgan_lab.lab.experiments.save`.
    """
    from ..data.sources import load_source
    from .runs import run_record

    out = Path(out)
    scale = int(params["scale"])
    runs = train_variants(
        BN_VARIANTS,
        study_config(params),
        out / "train",
        seeds=params["seeds"],
        progress=progress,
    )
    val = PairedImageSet([im for s in params["val"] for im in load_source(s)], scale)
    test = test_sets(params)
    shift_images = [im for pairs in test.values() for im in pairs.images]
    shift_sets = {sh.name: shifted_pairs(shift_images, sh, scale) for sh in SHIFTS}
    shift_sets["other dataset"] = PairedImageSet(load_source(params["other"]), scale)
    results: dict = {
        "variants": [v.name for v in BN_VARIANTS],
        "seeds": list(params["seeds"]),
        "bicubic": {
            "val": mean_psnr(None, val),
            **{n: psnr_list(None, p) for n, p in test.items()},
        },
        # Per validation image (the bicubic mean above is over the same images).
        "val_images": {"names": val.names, "bicubic": psnr_list(None, val)},
        "images": {n: p.names for n, p in test.items()},
        "shift_sets": list(shift_sets),
        "runs": {},
    }
    train_images = [im for s in params["train"] for im in load_source(s)]
    n_precise = int(params.get("precise_bn_batches", 0))
    results["precise_bn_batches"] = n_precise
    every: dict[tuple[str, int], nn.Module] = {}
    for v in BN_VARIANTS:
        for seed, run in zip(params["seeds"], runs[v.name]):
            model = run.model(ema=False).eval()
            rec = run_record(run, seed)
            # The last value the trainer logged, then the model as evaluated below (with
            # its BN statistics re-estimated when ``precise_bn_batches`` is set).
            rec["val_final_trainer"] = rec["val_final"]
            if v.norm and n_precise:
                precise_bn(model, patch_batches(train_images, params, n_precise, 10_000 + seed))
            rec["val_images"] = psnr_list(model, val)
            rec["val_final"] = float(np.mean(rec["val_images"]))
            rec["test"] = {name: psnr_list(model, pairs) for name, pairs in test.items()}
            rec["shift_gain"] = shift_study({"m": model}, shift_sets)["m"]
            if v.norm:
                rec["shift_gain_batch_stats"] = shift_study(
                    {"m": model}, shift_sets, use_batch_stats=True
                )["m"]
            results["runs"].setdefault(v.name, []).append(rec)
            every[(v.name, seed)] = model
    # The first seed's models: the BN statistics probe and the gallery.
    models = {v.name: every[(v.name, params["seeds"][0])] for v in BN_VARIANTS}
    probe = {name: next(iter(pairs)).lq for name, pairs in shift_sets.items()}
    results["bn_stats"] = {}
    for v in BN_VARIANTS[1:]:
        from ..data.images import array_to_tensor

        per_set = {}
        for name, lq in probe.items():
            stats = bn_input_stats(models[v.name], array_to_tensor(lq))
            per_set[name] = {
                "layers": [st.name for st in stats],
                "mean_shift": [st.mean_shift for st in stats],
                "log_var_ratio": [st.log_var_ratio for st in stats],
            }
        results["bn_stats"][v.name] = per_set
    results["gallery"], images = gallery(params, test, models)
    results["worst"], worst_images = worst_validation(results, val, every)
    images.update(worst_images)
    results["cost"] = _costs(params)
    return results, images


def worst_case(results: Mapping) -> dict:
    """Where BN did most harm on the validation images, by a rule fixed in advance.

    Among every BN run and validation image, the pair whose Y-PSNR falls furthest below
    the BN-free model trained with the same seed (same initial convs, same batches). Why:
    the paper (Sec. 3.1 and supplement) says BN "tends to bring artifacts" on some images
    and some iterations, so a mean over images and seeds can hide them; this picks the
    single worst case by PSNR alone, not by looking at the outputs.

    Returns:
        ``{"variant", "seed", "image", "index", "deficit"}`` (deficit in dB, positive when
        the BN run is worse), from ``results["runs"][*][*]["val_images"]``.
    """
    names = results["variants"]
    plain = {r["seed"]: r["val_images"] for r in results["runs"][names[0]]}
    best: dict = {"deficit": -math.inf}
    for name in names[1:]:
        for r in results["runs"][name]:
            for i, (a, b) in enumerate(zip(plain[r["seed"]], r["val_images"], strict=True)):
                if a - b > best["deficit"]:
                    best = {
                        "variant": name,
                        "seed": r["seed"],
                        "image": results["val_images"]["names"][i],
                        "index": i,
                        "deficit": a - b,
                    }
    return best


def worst_validation(
    results: Mapping, val: PairedImageSet, models: Mapping[tuple[str, int], nn.Module]
) -> tuple[dict, dict[str, np.ndarray]]:
    """:func:`worst_case`'s image: the ground truth, the BN-free output and the BN output
    (same seed) at half size, the box of :func:`artifact_box` in half-size pixels, and
    each output's mean colour minus the ground truth's (a BN colour cast shows there).

    Returns:
        ``(record, images)``: :func:`worst_case`'s record with ``box``, ``color_shift``
        (``{label: [B, G, R]}``, 0-255) and ``names``; images ``worst_<key>``.
    """
    import cv2

    from ..evaluation.evaluate import run_model

    worst = worst_case(results)
    pair = list(val)[worst["index"]]
    plain = results["variants"][0]
    outs = {
        "gt": pair.gt,
        "plain": run_model(models[(plain, worst["seed"])], pair.lq, val.scale),
        "bn": run_model(models[(worst["variant"], worst["seed"])], pair.lq, val.scale),
    }
    gt = pair.gt.astype(np.float64)
    shift = {k: (o.astype(np.float64) - gt).mean((0, 1)).tolist() for k, o in outs.items()}
    # The zoom: 96 px at full size, where the BN output is worse than the BN-free one most.
    y, x, h, w = artifact_box(gt, outs["plain"], outs["bn"], 96)
    size = (pair.gt.shape[1] // 2, pair.gt.shape[0] // 2)
    half = {
        f"worst_{k}": cv2.resize(o, size, interpolation=cv2.INTER_AREA) for k, o in outs.items()
    }
    names = {"gt": "ground truth", "plain": plain, "bn": worst["variant"]}
    record = {
        **worst,
        "box": [y // 2, x // 2, h // 2, w // 2],
        "color_shift": {names[k]: v for k, v in shift.items() if k != "gt"},
        "names": names,
    }
    return record, half


def _costs(params) -> list[dict]:
    """Time and memory of each variant at the cost configuration (and BN folded)."""
    cfg = make_config(
        {
            "model": {
                "num_feat": params["cost_num_feat"],
                "num_block": params["cost_num_block"],
                "num_grow_ch": params["cost_num_grow_ch"],
            }
        }
    )
    size = int(params["cost_size"])
    shape = (1, 3, size, size)
    models = {v.name: build_generator(v, cfg).eval() for v in BN_VARIANTS}
    models["BN in HR, folded (eval only)"] = fold_batchnorm(models[BN_VARIANTS[2].name])
    # Rounds that visit every model in turn, fastest per model: a slow spell of the
    # machine (seen here for seconds at a time) then costs every model a round rather
    # than all the runs of one model. The exact byte counts come from the first round.
    rounds = [
        [measure_cost(n, m, shape, repeats=1, memory=r == 0) for n, m in models.items()]
        for r in range(int(params["cost_repeats"]))
    ]
    costs = [
        dataclasses.replace(
            runs[0],
            eval_seconds=min(c.eval_seconds for c in runs),
            train_seconds=min(c.train_seconds for c in runs),
        )
        for runs in zip(*rounds, strict=True)
    ]
    return [c.__dict__ for c in costs]


# --------------------------------------------------------------------------- reading


def test_means(results: Mapping, variant: str) -> list[float]:
    """Per seed: the mean test PSNR over every test image (all test sets pooled)."""
    return [
        float(np.mean([v for s in r["test"].values() for v in s])) for r in results["runs"][variant]
    ]


def shift_drops(results: Mapping, variant: str, key: str = "shift_gain") -> dict[str, list[float]]:
    """Per shifted set and seed: the change of the gain over bicubic from the original."""
    out: dict[str, list[float]] = {}
    for r in results["runs"][variant]:
        gains = r.get(key)
        if not gains:
            continue
        for name, g in gains.items():
            if name != "original":
                out.setdefault(name, []).append(g - gains["original"])
    return out


def late_drop(record: Mapping) -> float:
    """The largest fall of validation Y-PSNR between consecutive validations in the second
    half of a run (0 when it never falls), in dB.

    Why: the paper's supplement reports that BN artifacts "occasionally appear among
    iterations"; with the learning rate decaying, a stable model's validation score only
    creeps up in the second half, so a fall there measures that instability.
    """
    points = record["curves"]["val_psnr"]
    half = points[-1][0] / 2
    late = [v for it, v in points if it >= half]
    return max([0.0] + [a - b for a, b in zip(late, late[1:])])


def _validation_lines(results: Mapping) -> dict[str, str]:
    """Each variant's margin over bicubic on the validation images (with the trainer's
    running statistics too, when precise BN was used). Reported, never used to leave a run
    out: a BN run below bicubic is what the paper's claims are about."""
    from .experiments import Spread

    names = results["variants"]
    bic_val = results["bicubic"]["val"]
    lines: dict[str, str] = {}
    margins = {n: [r["val_final"] - bic_val for r in results["runs"][n]] for n in names}
    below = [
        f"{n!r} " + _below_run(results, r, x)
        for n in names
        for r, x in zip(results["runs"][n], margins[n], strict=True)
        if x <= 0
    ]
    lines["bicubic"] = (
        "Margin over bicubic on the validation images, in dB (no run left out): "
        + "; ".join(f"{n}: {Spread.of(m)}" for n, m in margins.items())
        + (f". Below bicubic: {'; '.join(below)}" if below else "")
        + "."
    )
    n_precise = results.get("precise_bn_batches", 0)
    if n_precise:
        trainer = {
            n: [r["val_final_trainer"] - bic_val for r in results["runs"][n]]
            for n in names
            if "val_final_trainer" in results["runs"][n][0] and n != names[0]
        }
        lines["precise bn"] = (
            f"The BN variants are scored with running statistics re-estimated over "
            f"{n_precise} training batches with the weights fixed (precise BN); with the "
            "trainer's running statistics their margins were "
            + "; ".join(f"{n}: {Spread.of(m)}" for n, m in trainer.items())
            + "."
        )
    return lines


def _below_run(results: Mapping, record: Mapping, margin: float) -> str:
    """One run below bicubic in words: its seed, its margin and, when per-image scores were
    stored, the validation image where it falls furthest below bicubic."""
    text = f"seed {record['seed']} {margin:+.2f} dB"
    per_image, val = record.get("val_images"), results.get("val_images")
    if per_image and val:
        gaps = [m - b for m, b in zip(per_image, val["bicubic"], strict=True)]
        k = int(np.argmin(gaps))
        text += f", {gaps[k]:+.2f} dB on image {val['names'][k]}"
    return text


def description(results: Mapping) -> dict[str, str]:
    """The study's results as descriptive sentences, every number computed from
    ``results``, every run included; the verdicts on the registered claims come from
    :mod:`esrgan_lab.lab.findings`."""
    from .experiments import compare

    names = results["variants"]
    lines = _validation_lines(results)
    plain = test_means(results, names[0])
    for other in names[1:]:
        lines[f"test {other}"] = compare(
            test_means(results, other),
            plain,
            f"Test PSNR of '{other}' minus '{names[0]}'",
        )
    steady = [late_drop(r) for r in results["runs"][names[0]]]
    for other in names[1:]:
        jumpy = [late_drop(r) for r in results["runs"][other]]
        lines[f"stability {other}"] = compare(
            jumpy,
            steady,
            f"Largest fall of validation PSNR between consecutive validations in the "
            f"second half of training, '{other}' minus '{names[0]}'",
        )
    for other in names[1:]:
        drops, base = shift_drops(results, other), shift_drops(results, names[0])
        for shift in drops:
            lines[f"shift {other} {shift}"] = compare(
                drops[shift],
                base[shift],
                f"'{shift}': change of the gain over bicubic, '{other}' minus '{names[0]}'",
            )
    for other in names[1:]:
        run0 = results["runs"][other]
        orig_run = [r["shift_gain"]["original"] for r in run0]
        orig_batch = [r["shift_gain_batch_stats"]["original"] for r in run0]
        lines[f"batch {other}"] = compare(
            orig_batch,
            orig_run,
            f"'{other}' with batch instead of running statistics (original set)",
        )
    if results.get("worst"):
        lines["worst"] = _worst_line(results)
    if results.get("cost"):
        lines["cost"] = _cost_line(results)
    return lines


def _worst_line(results: Mapping) -> str:
    """:func:`worst_case` in words: the run, the image, its margins and colour casts."""
    w = results["worst"]
    i, bic = w["index"], results["val_images"]["bicubic"]
    run = next(r for r in results["runs"][w["variant"]] if r["seed"] == w["seed"])
    here = run["val_images"][i] - bic[i]
    others = [f"{m - b:+.2f}" for k, (m, b) in enumerate(zip(run["val_images"], bic)) if k != i]
    rgb = "; ".join(
        f"'{name}' ({', '.join(f'{c:+.1f}' for c in bgr[::-1])})"
        for name, bgr in w["color_shift"].items()
    )
    return (
        f"Worst case (the BN run and validation image furthest below the BN-free model of "
        f"the same seed, chosen by PSNR alone): '{w['variant']}', seed {w['seed']}, on image "
        f"{w['image']}: {w['deficit']:.2f} dB below '{results['variants'][0]}' and "
        f"{here:+.2f} dB against bicubic there (on the other validation images: "
        f"{', '.join(others)} dB). Mean colour of the output minus the ground truth's "
        f"(R, G, B, on 0-255): {rgb}."
    )


def _cost_line(results: Mapping) -> str:
    """What the BN variants cost against the BN-free model, with the timing noise."""
    names = results["variants"]
    cost = {c["name"]: c for c in results["cost"]}
    base = cost[names[0]]
    parts = []
    for n in names[1:]:
        c = cost[n]
        parts.append(
            f"'{n}': training step x{c['train_seconds'] / base['train_seconds']:.2f} the time, "
            f"x{c['train_saved_bytes'] / base['train_saved_bytes']:.2f} the saved activations, "
            f"inference x{c['eval_seconds'] / base['eval_seconds']:.2f}"
        )
    folded = next((c for k, c in cost.items() if "folded" in k), None)
    noise = ""
    if folded:
        ev = folded["eval_seconds"] / base["eval_seconds"]
        tr = folded["train_seconds"] / base["train_seconds"]
        parts.append(f"with BN folded into the convs, inference x{ev:.2f}")
        # The folded model has the BN-free architecture, so its time ratios would be
        # 1.00 on a quiet machine: how far they are from 1 is the timing noise here.
        noise = (
            f" The folded model has the BN-free architecture: its ratios (inference "
            f"x{ev:.2f}, training step x{tr:.2f}) show the timing noise of this machine; "
            "the activation bytes are exact."
        )
    return "Against the BN-free model: " + "; ".join(parts) + "." + noise
