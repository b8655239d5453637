"""The BN-removal ablation of ESRGAN (Wang et al. 2018, Sec. 3.1 and the supplement).

The paper removes every BatchNorm layer from the generator because "BN layers tend to
bring artifacts" when "the statistics of training and testing datasets differ a lot",
and because removing them saves computation and memory. It then needs residual scaling
(beta = 0.2) and a 0.1-scaled MSRA init to train the deep BN-free trunk. This module
holds the reusable pieces of notebook ``02_bn_removal_ablation``:

* :func:`train_variants` trains *matched* small generators - same seed (so the same conv
  weights at start: BatchNorm layers draw no random numbers), the same batches in the same
  order, the same iterations, L1 loss and Adam - differing only in ``norm``,
  ``res_scale`` or ``init_scale``. It is a thin loop over the package's
  :class:`~esrgan_lab.data.datasets.PairedPatchDataset`, because the package trainer's config has
  no ``norm`` key (the BN variants exist only for this ablation).
* :class:`Shift` and :func:`shift_study` evaluate every model on inputs whose statistics
  differ from training (gain, gamma, another dataset), with PSNR relative to bicubic.
* :func:`bn_input_stats` compares each BN layer's running statistics with the batch
  statistics of a given input; :func:`super_resolve` can run BN with batch statistics.
* :func:`fold_batchnorm`, :func:`time_call`, :func:`saved_tensor_bytes` and
  :func:`peak_activation_bytes` measure what removing BN saves.
"""

from __future__ import annotations

import copy
import math
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ..data.datasets import NamedImage, PairedImageSet, PairedPatchDataset, load_source
from ..model.rrdbnet import Norm, RRDBNet
from ..training.trainer import tensor_to_uint8, y_psnr

# --------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
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


#: The three generators of the BN comparison (paper Sec. 3.1, supplement Exp_BNinHR).
BN_VARIANTS: tuple[Variant, ...] = (
    Variant("no BN (ESRGAN)", None),
    Variant("BN in LR trunk (SRGAN)", "batch"),
    Variant("BN also in HR (Exp_BNinHR)", "batch_hr"),
)

#: Training a deeper BN-free trunk (supplement): plain MSRA init without residual
#: scaling, the 0.1-scaled init, residual scaling 0.2, and both (ESRGAN's choice).
INIT_VARIANTS: tuple[Variant, ...] = (
    Variant("MSRA init, beta 1", None, res_scale=1.0, init_scale=1.0),
    Variant("init x0.1, beta 1", None, res_scale=1.0, init_scale=0.1),
    Variant("MSRA init, beta 0.2", None, res_scale=0.2, init_scale=1.0),
    Variant("init x0.1, beta 0.2 (ESRGAN)", None, res_scale=0.2, init_scale=0.1),
)


def build_generator(
    variant: Variant,
    *,
    num_feat: int,
    num_block: int,
    num_grow_ch: int,
    scale: int = 4,
    seed: int = 0,
) -> RRDBNet:
    """An :class:`RRDBNet` for ``variant``, initialised from ``seed``.

    BatchNorm layers are initialised without random numbers, so every variant built
    with the same seed and sizes starts from the *same* conv weights (up to
    ``init_scale``); only the inserted BN layers and the scalings differ.
    """
    torch.manual_seed(seed)
    return RRDBNet(
        scale=scale,
        num_feat=num_feat,
        num_block=num_block,
        num_grow_ch=num_grow_ch,
        norm=variant.norm,
        res_scale=variant.res_scale,
        init_scale=variant.init_scale,
    )


# --------------------------------------------------------------------------- data


#: Gray images scikit-image ships; replicated to RGB they are the fallback "other dataset".
SKIMAGE_OTHER = ("camera", "moon", "brick")


def skimage_images(names: Sequence[str] = SKIMAGE_OTHER) -> list[NamedImage]:
    """scikit-image sample images as RGB uint8 (gray ones replicated to three channels)."""
    import skimage.data

    out = []
    for name in names:
        img = np.asarray(getattr(skimage.data, name)())
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        out.append(NamedImage(name, np.ascontiguousarray(img[..., :3].astype(np.uint8))))
    return out


@dataclass(frozen=True)
class Sources:
    """Where the ablation's images come from.

    Attributes:
        train: :func:`~esrgan_lab.data.datasets.load_source` string of the training images.
        val: Validation images (PSNR against iteration).
        test: Test sets by name, for the final table.
        other: The "another dataset" of the statistics-shift study.
        fallback: True when no datasets were found and scikit-image images stand in.
    """

    train: str
    val: str
    test: tuple[str, ...]
    other: str
    fallback: bool


def default_sources(max_val: int = 5, max_other: int = 4) -> Sources:
    """BSD68 / Set5 / Set14 / SunHays80 under ``ESRGAN_LAB_DATA``, else scikit-image images.

    With the datasets: train on BSD68, validate on Set5, test on Set5 and Set14, and use
    SunHays80 (scene photographs, larger and differently exposed) as the other dataset.
    Without: train on ``sample:train``, validate/test on ``sample:val``, and use the gray
    scikit-image images (:data:`SKIMAGE_OTHER`) as the other dataset.
    """
    from ..settings import dataset_dir

    names = ("BSD68", "Set5", "Set14", "SunHays80")
    if all(dataset_dir(n) is not None for n in names):
        return Sources(
            train="BSD68",
            val=f"Set5[:{max_val}]",
            test=("Set5", "Set14"),
            other=f"SunHays80[:{max_other}]",
            fallback=False,
        )
    return Sources(
        train="sample:train",
        val="sample:val",
        test=("sample:val",),
        other="skimage:" + ",".join(SKIMAGE_OTHER),
        fallback=True,
    )


def load_images(source: str) -> list[NamedImage]:
    """:func:`~esrgan_lab.data.datasets.load_source` plus ``"skimage:NAME,NAME"`` for sample images."""
    if source.startswith("skimage:"):
        return skimage_images(source.split(":", 1)[1].split(","))
    return load_source(source)


def batch_at(
    dataset: PairedPatchDataset, iteration: int, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(lq, gt)`` batch of ``iteration``: stream positions ``[i*B, (i+1)*B)``.

    The same positions as :class:`~esrgan_lab.data.datasets.StreamSampler` on one process, so
    every model of an ablation sees exactly the same patches in the same order.

    Shapes:
        ``lq: (B, 3, gt_size/scale, gt_size/scale)``, ``gt: (B, 3, gt_size, gt_size)``
    """
    items = [dataset[iteration * batch_size + k] for k in range(batch_size)]
    return torch.stack([it["lq"] for it in items]), torch.stack([it["gt"] for it in items])


def batches(
    dataset: PairedPatchDataset, iterations: int, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """:func:`batch_at` for iterations ``0 .. iterations-1``."""
    for it in range(iterations):
        yield batch_at(dataset, it, batch_size)


# --------------------------------------------------------------------------- evaluation


def _to_input(lq: np.ndarray) -> torch.Tensor:
    return (
        torch.from_numpy(np.ascontiguousarray(lq.transpose(2, 0, 1))).float().div_(255).unsqueeze(0)
    )


@torch.no_grad()
def super_resolve(model: nn.Module, lq: np.ndarray, use_batch_stats: bool = False) -> np.ndarray:
    """Run ``model`` on one RGB uint8 ``(h, w, 3)`` image -> RGB uint8 ``(h*s, w*s, 3)``.

    Args:
        model: The generator (its train/eval mode is restored afterwards).
        lq: Low-resolution input.
        use_batch_stats: Normalise every BatchNorm with the statistics of *this input*
            (train-mode BN) instead of the running statistics gathered in training; the
            running statistics are left untouched (a copy of the model runs).
    """
    was_training = model.training
    net = model
    if use_batch_stats:
        net = copy.deepcopy(model).train()
    else:
        model.eval()
    try:
        sr = net(_to_input(lq))[0]
    finally:
        model.train(was_training)
    return tensor_to_uint8(sr)


def psnr_list(
    model: nn.Module | None, pairs: PairedImageSet, use_batch_stats: bool = False
) -> list[float]:
    """Y-PSNR (crop_border = scale) of ``model`` on every pair; ``None`` model = bicubic."""
    from ..data.degrade import bicubic_upscale

    out = []
    for _, gt, lq in pairs:
        if model is None:
            sr = bicubic_upscale(lq, pairs.scale)
        else:
            sr = super_resolve(model, lq, use_batch_stats)
        out.append(y_psnr(sr, gt, pairs.scale))
    return out


def mean_psnr(
    model: nn.Module | None, pairs: PairedImageSet, use_batch_stats: bool = False
) -> float:
    """Mean of :func:`psnr_list`."""
    return float(np.mean(psnr_list(model, pairs, use_batch_stats)))


# --------------------------------------------------------------------------- training


@dataclass
class History:
    """What one training run logged.

    Attributes:
        loss: L1 loss of every iteration (``nan`` once diverged).
        val_iters: Iterations at which validation ran (0 = before training).
        val_psnr: Mean validation Y-PSNR at those iterations.
        seconds: Wall-clock time of the training loop (validation excluded).
        diverged: The loss became non-finite; training stopped there.
    """

    loss: list[float] = field(default_factory=list)
    val_iters: list[int] = field(default_factory=list)
    val_psnr: list[float] = field(default_factory=list)
    seconds: float = 0.0
    diverged: bool = False


def train_l1(
    model: nn.Module,
    dataset: PairedPatchDataset,
    *,
    iterations: int,
    batch_size: int,
    learning_rate: float = 2e-4,
    val_pairs: PairedImageSet | None = None,
    val_every: int = 0,
) -> History:
    """The PSNR-oriented stage in miniature: L1 loss, Adam(0.9, 0.99) (paper Sec. 4.1).

    Args:
        model: Generator, trained in place.
        dataset: Patch source; batches come from :func:`batch_at` (same for every model).
        iterations: Optimizer steps.
        batch_size: Patches per step.
        learning_rate: Adam step size (2e-4 in the paper, no decay at this length).
        val_pairs: Validation images; with ``val_every > 0`` PSNR is measured at
            iteration 0, every ``val_every`` iterations and at the end.
        val_every: Validation period in iterations (0: only at the end, if ``val_pairs``).

    Returns:
        The :class:`History`; a non-finite loss stops training (``diverged``).
    """
    hist = History()
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate, betas=(0.9, 0.99))

    def validate(it: int) -> None:
        if val_pairs is not None:
            hist.val_iters.append(it)
            hist.val_psnr.append(mean_psnr(model, val_pairs))

    if val_every:
        validate(0)
    elapsed = 0.0
    for it, (lq, gt) in enumerate(batches(dataset, iterations, batch_size), start=1):
        start = time.perf_counter()
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = F.l1_loss(model(lq), gt)
        if not torch.isfinite(loss):
            hist.diverged = True
            hist.loss.append(float("nan"))
            break
        loss.backward()
        opt.step()
        elapsed += time.perf_counter() - start
        hist.loss.append(float(loss.detach()))
        if val_every and it % val_every == 0 and it != iterations:
            validate(it)
    hist.seconds = elapsed
    if not hist.diverged and (val_every or val_pairs is not None):
        validate(iterations)
    model.eval()
    return hist


@dataclass
class Trained:
    """A trained generator of the ablation and its log."""

    variant: Variant
    model: RRDBNet
    history: History


def train_variants(
    variants: Sequence[Variant],
    dataset: PairedPatchDataset,
    *,
    num_feat: int,
    num_block: int,
    num_grow_ch: int,
    iterations: int,
    batch_size: int,
    learning_rate: float = 2e-4,
    val_pairs: PairedImageSet | None = None,
    val_every: int = 0,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Trained]:
    """Train one generator per variant under identical conditions (see module docstring).

    Returns:
        ``{variant.name: Trained}`` in the order given.
    """
    out: dict[str, Trained] = {}
    for v in variants:
        model = build_generator(
            v,
            num_feat=num_feat,
            num_block=num_block,
            num_grow_ch=num_grow_ch,
            scale=dataset.scale,
            seed=seed,
        )
        hist = train_l1(
            model,
            dataset,
            iterations=iterations,
            batch_size=batch_size,
            learning_rate=learning_rate,
            val_pairs=val_pairs,
            val_every=val_every,
        )
        if progress:
            last = f"{hist.val_psnr[-1]:.2f} dB" if hist.val_psnr else "-"
            print(
                f"{v.name:<30} {hist.seconds:6.1f} s  val PSNR {last}"
                f"{'  (diverged)' if hist.diverged else ''}"
            )
        out[v.name] = Trained(v, model, hist)
    return out


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
        """RGB uint8 -> RGB uint8 with the shift applied (clipped, rounded)."""
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
        out[mname] = {
            sname: float(np.mean(np.asarray(psnr_list(model, pairs, use_batch_stats)) - bic[sname]))
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


def time_call(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def saved_tensor_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes autograd keeps for the backward pass of one training-mode forward of ``model``.

    Every tensor saved for backward is recorded by
    :func:`torch.autograd.graph.saved_tensors_hooks`; storages are counted once, and
    parameters are excluded (they exist anyway). This is the activation memory of
    training, where BatchNorm adds its inputs (and per-channel statistics).
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        ptr = st.data_ptr()
        if ptr not in params:
            seen[ptr] = max(seen.get(ptr, 0), st.nbytes())
        return t

    was_training = model.training
    model.train()
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(x)
        del out
    finally:
        model.train(was_training)
    return int(sum(seen.values()))


class _LiveBytes(TorchDispatchMode):
    """Tracks the bytes of tensors created by ops while they are alive; keeps the peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, list[int]] = {}  # storage ptr -> [refs, nbytes]
        self.current = 0
        self.peak = 0

    def _release(self, ptr: int) -> None:
        entry = self.live.get(ptr)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] == 0:
            self.current -= entry[1]
            del self.live[ptr]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        for t in outs:
            if not isinstance(t, torch.Tensor) or t.device.type == "meta":
                continue
            st = t.untyped_storage()
            ptr = st.data_ptr()
            if ptr == 0:
                continue
            entry = self.live.get(ptr)
            if entry is None:
                entry = self.live[ptr] = [0, st.nbytes()]
                self.current += entry[1]
                self.peak = max(self.peak, self.current)
            entry[0] += 1
            weakref.finalize(t, self._release, ptr)
        return out


def peak_activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Peak bytes of the tensors alive during one eval-mode, no-grad forward of ``model``.

    Counts the storages that the forward's own ops allocate (not the input or the
    weights), freeing each when its last tensor dies - the activation memory of
    inference, independent of the allocator and of other processes.
    """
    was_training = model.training
    model.eval()
    mode = _LiveBytes()
    try:
        with torch.no_grad(), mode:
            out = model(x)
            peak = mode.peak
        del out
    finally:
        model.train(was_training)
    return int(peak)


@dataclass
class Cost:
    """Measured cost of one generator (see :func:`measure_cost`)."""

    name: str
    params: int
    eval_seconds: float
    train_seconds: float
    eval_peak_bytes: int
    train_saved_bytes: int


def measure_cost(
    name: str, model: nn.Module, input_shape: tuple[int, int, int, int], repeats: int = 5
) -> Cost:
    """Eval forward time, train-mode forward+backward time and memory of ``model``.

    Times are medians of ``repeats`` runs (they depend on the machine and its load);
    the byte counts are exact for the given shape.
    """
    torch.manual_seed(0)
    x = torch.rand(input_shape)

    def fwd() -> None:
        with torch.no_grad():
            model(x)

    def fwd_bwd() -> None:
        model.zero_grad(set_to_none=True)
        model(x).mean().backward()

    was_training = model.training
    try:
        model.eval()
        eval_s = time_call(fwd, repeats)
        model.train()
        state = copy.deepcopy(model.state_dict())  # train-mode BN updates running stats
        train_s = time_call(fwd_bwd, repeats)
        model.load_state_dict(state)
        model.zero_grad(set_to_none=True)
        peak = peak_activation_bytes(model, x)
        saved = saved_tensor_bytes(model, x)
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


def artifact_box(
    gt: np.ndarray, reference: np.ndarray, test: np.ndarray, size: int
) -> tuple[int, int, int, int]:
    """The ``size x size`` box where ``test`` is worse than ``reference`` the most.

    Scores every box (stride ``size // 2``) by ``sum |test - gt| - sum |reference - gt|``
    on the gray level, so a gallery zooms where e.g. a BN model's artifacts show.

    Args:
        gt, reference, test: ``(H, W, 3)`` uint8 images of the same size.
        size: Box side in pixels (clipped to the image).

    Returns:
        ``(y, x, h, w)``.
    """
    err = np.abs(test.astype(np.float64) - gt).mean(2) - np.abs(
        reference.astype(np.float64) - gt
    ).mean(2)
    h, w = err.shape
    size = min(size, h, w)
    step = max(1, size // 2)
    integral = np.pad(err.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
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
