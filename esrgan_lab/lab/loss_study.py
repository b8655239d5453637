"""The ESRGAN losses, measured (Wang et al. 2018, Sec. 3.2-3.3): reusable code of 03_losses.

* Perceptual features *before* activation (paper Sec. 3.3, Fig. 6): :func:`active_fraction`
  (the share of positive pre-activations, i.e. of neurons a ReLU lets through, per VGG19
  conv layer) and :func:`before_after` (feature maps before and after the ReLU).
* Relativistic average GAN versus the standard GAN (paper Sec. 3.2, Eq. 1-2):
  :func:`gan_loss_terms` evaluates both losses on the same discriminator logits and the
  generator's gradient with respect to the fake logits, split into the RaGAN's real and
  fake terms; :func:`gradient_sweep` shows how each behaves as the fakes improve.
* The generator objective ``L_G = L_percep + lambda L_G^Ra + eta L_1`` (paper Eq. 3,
  :data:`PAPER_WEIGHTS`) and a short stage-2 ablation (:func:`train_stage2`,
  :data:`STAGE2_VARIANTS`) scored by PSNR and NIQE (:func:`score_sr`).
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.datasets import PairedImageSet, PairedPatchDataset
from ..losses.backbones import RANDOM_INIT, VGG19_LAYERS, VGGFeatureExtractor
from ..losses.basic import GANLoss, PerceptualLoss
from ..training.trainer import y_psnr
from .bn_study import batch_at, super_resolve

#: Loss weights of the paper's GAN stage (Eq. 3): perceptual 1, lambda = 5e-3, eta = 1e-2.
PAPER_WEIGHTS: dict[str, float] = {"perceptual": 1.0, "gan": 5e-3, "pixel": 1e-2}

#: The 16 conv layers of VGG19 (outputs before activation).
VGG19_CONVS: tuple[str, ...] = tuple(n for n in VGG19_LAYERS if n.startswith("conv"))

# --------------------------------------------------------------------------- VGG features


def study_vgg(
    weights: str | None = "imagenet", layers: Sequence[str] = VGG19_CONVS
) -> VGGFeatureExtractor:
    """A frozen VGG19 returning ``layers``; falls back to a (seeded) random network.

    The fallback warning is swallowed here because :func:`weights_label` states it
    (notebooks put that label on every figure that depends on the weights).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return VGGFeatureExtractor(list(layers), weights=weights, allow_random_init=True)


def weights_label(vgg: VGGFeatureExtractor) -> str:
    """``"ImageNet VGG19 (<file>)"`` or a loud notice that the network is random."""
    if vgg.weights_source == RANDOM_INIT:
        return "RANDOM-init VGG19 (ImageNet weights unavailable: not the paper's network)"
    return f"ImageNet VGG19 ({vgg.weights_source})"


@torch.no_grad()
def active_fraction(vgg: VGGFeatureExtractor, images: torch.Tensor) -> dict[str, float]:
    """Fraction of positive pre-activation values per conv layer (``convB_K`` names).

    A ReLU passes exactly the positive values, so this is the fraction of *active*
    neurons after activation. The paper's observation (Sec. 3.3, Fig. 6) for an
    ImageNet-trained VGG19: it falls with depth, the deep features after activation
    are very sparse - hence the perceptual loss on ``conv5_4`` *before* activation.

    Args:
        vgg: Extractor returning (at least) the wanted ``convB_K`` layers.
        images: ``(N, 3, H, W)`` RGB on [0, 1].

    Returns:
        ``{layer: fraction in [0, 1]}`` for every conv layer the extractor returns.
    """
    feats = vgg(images)
    return {n: float((f > 0).float().mean()) for n, f in feats.items() if n.startswith("conv")}


@torch.no_grad()
def before_after(
    vgg: VGGFeatureExtractor, image: torch.Tensor, layer: str, channels: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Feature maps of ``layer`` (a ``convB_K``) before and after its ReLU.

    Args:
        vgg: Extractor that returns ``layer``.
        image: ``(1, 3, H, W)`` RGB on [0, 1].
        layer: A conv layer name, e.g. ``"conv5_4"``.
        channels: Channel indices to return.

    Returns:
        ``(before, after)``, each ``(len(channels), h, w)`` float32; ``after = max(before, 0)``.
    """
    if not layer.startswith("conv"):
        raise ValueError(f"layer must be a convB_K name, got {layer!r}")
    before = vgg(image)[layer][0, list(channels)].float()
    return before.numpy(), F.relu(before).numpy()


# --------------------------------------------------------------------------- GAN losses


@dataclass
class GanTerms:
    """Both adversarial losses on one pair of logit batches, and the generator's gradient.

    Attributes:
        d_ragan, g_ragan: :class:`~esrgan_lab.losses.basic.GANLoss` ``"ragan"`` values.
        d_vanilla, g_vanilla: The standard GAN's values.
        grad_vanilla: ``dL_G/dC(x_f)`` of the standard GAN, per fake sample ``(N,)``.
        grad_ragan: ``dL_G^Ra/dC(x_f)``, per fake sample ``(N,)``.
        grad_ragan_real_term: The part of ``grad_ragan`` that comes from the *real*
            term ``-E[log(1 - D_Ra(x_r, x_f))]`` (through ``E[C(x_f)]``).
        grad_ragan_fake_term: The part from the fake term ``-E[log D_Ra(x_f, x_r)]``.
    """

    d_ragan: float
    g_ragan: float
    d_vanilla: float
    g_vanilla: float
    grad_vanilla: np.ndarray
    grad_ragan: np.ndarray
    grad_ragan_real_term: np.ndarray
    grad_ragan_fake_term: np.ndarray


def _grad(loss_fn, fake: torch.Tensor) -> np.ndarray:
    x = fake.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss_fn(x), x)
    return g.double().numpy().reshape(-1)


def gan_loss_terms(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> GanTerms:
    """Evaluate RaGAN and standard GAN losses (weight 1) on the same logits.

    The RaGAN generator loss is split as the paper writes it (Eq. 2, halved as in
    :class:`~esrgan_lab.losses.basic.GANLoss`): ``L_G^Ra = (BCE(C(x_r) - E C(x_f), 0) +
    BCE(C(x_f) - E C(x_r), 1)) / 2``. The first (real) term depends on the generator
    only through ``E[C(x_f)]``: it is the gradient that real data contribute, absent in
    the standard GAN.

    Args:
        real_logits: ``(N, ...)`` discriminator logits ``C(x_r)`` on real images.
        fake_logits: ``(M, ...)`` logits on generated images.
    """
    real = real_logits.detach().float().reshape(-1)
    fake = fake_logits.detach().float().reshape(-1)
    ra, va = GANLoss("ragan"), GANLoss("vanilla")

    def bce(x: torch.Tensor, t: float) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(x, torch.full_like(x, t))

    return GanTerms(
        d_ragan=float(ra.discriminator_loss(real, fake)),
        g_ragan=float(ra.generator_loss(real, fake)),
        d_vanilla=float(va.discriminator_loss(real, fake)),
        g_vanilla=float(va.generator_loss(real, fake)),
        grad_vanilla=_grad(lambda f: va.generator_loss(real, f), fake),
        grad_ragan=_grad(lambda f: ra.generator_loss(real, f), fake),
        grad_ragan_real_term=_grad(lambda f: bce(real - f.mean(), 0.0) / 2, fake),
        grad_ragan_fake_term=_grad(lambda f: bce(f - real.mean(), 1.0) / 2, fake),
    )


def gradient_sweep(real_logits: torch.Tensor, offsets: Sequence[float]) -> dict[str, np.ndarray]:
    """Mean ``|dL_G/dC(x_f)|`` when the fake logits are ``real_logits + offset``.

    Negative offsets: D finds the fakes clearly less real; 0: indistinguishable;
    positive: the fakes look *more* real than the reals.

    Returns:
        ``{"offset", "vanilla", "ragan", "ragan_real_term", "ragan_fake_term"}`` arrays.
    """
    rows = {k: [] for k in ("vanilla", "ragan", "ragan_real_term", "ragan_fake_term")}
    real = real_logits.detach().float().reshape(-1)
    for off in offsets:
        t = gan_loss_terms(real, real + off)
        rows["vanilla"].append(np.abs(t.grad_vanilla).mean())
        rows["ragan"].append(np.abs(t.grad_ragan).mean())
        rows["ragan_real_term"].append(np.abs(t.grad_ragan_real_term).mean())
        rows["ragan_fake_term"].append(np.abs(t.grad_ragan_fake_term).mean())
    out = {k: np.asarray(v) for k, v in rows.items()}
    out["offset"] = np.asarray(list(offsets), dtype=np.float64)
    return out


# --------------------------------------------------------------------------- stage 2


@dataclass(frozen=True)
class Stage2Variant:
    """Loss terms of one short GAN-stage run: weights of L1, perceptual and RaGAN."""

    name: str
    pixel: float
    perceptual: float
    gan: float


#: The stage-2 ablation: L1 only, + perceptual, + RaGAN (the paper's full Eq. 3).
STAGE2_VARIANTS: tuple[Stage2Variant, ...] = (
    Stage2Variant("L1 only", PAPER_WEIGHTS["pixel"], 0.0, 0.0),
    Stage2Variant("L1 + perceptual", PAPER_WEIGHTS["pixel"], PAPER_WEIGHTS["perceptual"], 0.0),
    Stage2Variant(
        "L1 + perceptual + RaGAN",
        PAPER_WEIGHTS["pixel"],
        PAPER_WEIGHTS["perceptual"],
        PAPER_WEIGHTS["gan"],
    ),
)


@dataclass
class Stage2Result:
    """A generator after a short stage-2 run and what was logged.

    Attributes:
        log: Per iteration: ``l_pix``, ``l_percep``, ``l_gan`` (weighted, as in ``L_G``),
            ``l_d`` and the mean real/fake logits ``d_real``, ``d_fake`` (GAN runs).
        gan_terms: :func:`gan_loss_terms` on the logits of each iteration (GAN runs).
        last_logits: ``(real, fake)`` logits of the last iteration's D step.
    """

    variant: Stage2Variant
    model: nn.Module
    log: dict[str, list[float]] = field(default_factory=dict)
    gan_terms: list[GanTerms] = field(default_factory=list)
    last_logits: tuple[torch.Tensor, torch.Tensor] | None = None
    seconds: float = 0.0


def train_stage2(
    variant: Stage2Variant,
    generator: nn.Module,
    dataset: PairedPatchDataset,
    *,
    iterations: int,
    batch_size: int,
    perceptual: PerceptualLoss | None = None,
    discriminator: nn.Module | None = None,
    learning_rate: float = 1e-4,
    seed: int = 0,
) -> Stage2Result:
    """A short GAN stage (paper Sec. 4.1) from a copy of ``generator``.

    ``L_G = w_p L_percep + w_g L_G^Ra + w_1 L_1`` with the variant's weights; when
    ``w_g > 0`` a copy of ``discriminator`` is trained with ``L_D^Ra`` after every
    generator step (Adam 1e-4, betas 0.9/0.99 for both, as in the paper). The batches are
    the same :func:`~esrgan_lab.lab.bn_study.batch_at` stream for every variant.

    Args:
        variant: Loss weights.
        generator: The PSNR-oriented generator to start from (not modified).
        dataset: Patch source (``gt_size`` must suit the discriminator).
        iterations: Generator steps.
        batch_size: Patches per step.
        perceptual: Loss for ``w_p > 0`` (its ``weight`` should be 1; ``w_p`` scales it).
        discriminator: Untrained discriminator for ``w_g > 0`` (copied).
        learning_rate: Generator and discriminator step size.
        seed: Seeds torch before training (discriminator sampling has none, but be safe).
    """
    if variant.perceptual and perceptual is None:
        raise ValueError(f"{variant.name}: a perceptual loss is needed")
    if variant.gan and discriminator is None:
        raise ValueError(f"{variant.name}: a discriminator is needed")
    torch.manual_seed(seed)
    net_g = copy.deepcopy(generator).train()
    opt_g = torch.optim.Adam(net_g.parameters(), lr=learning_rate, betas=(0.9, 0.99))
    net_d = opt_d = None
    gan = GANLoss("ragan", variant.gan)
    if variant.gan:
        net_d = copy.deepcopy(discriminator).train()
        opt_d = torch.optim.Adam(net_d.parameters(), lr=learning_rate, betas=(0.9, 0.99))
    res = Stage2Result(variant, net_g)
    keys = ["l_pix", "l_percep", "l_gan", "l_d", "d_real", "d_fake"]
    res.log = {k: [] for k in keys}
    start = time.perf_counter()
    for it in range(iterations):
        lq, gt = batch_at(dataset, it, batch_size)
        # -- generator step (D frozen)
        opt_g.zero_grad(set_to_none=True)
        sr = net_g(lq)
        l_pix = variant.pixel * F.l1_loss(sr, gt)
        l_total = l_pix
        row = {k: float("nan") for k in keys}
        row["l_pix"] = float(l_pix.detach())
        if variant.perceptual:
            l_percep = variant.perceptual * perceptual(sr, gt)
            l_total = l_total + l_percep
            row["l_percep"] = float(l_percep.detach())
        if variant.gan:
            for p in net_d.parameters():
                p.requires_grad_(False)
            with torch.no_grad():
                real_logits = net_d(gt)
            fake_logits = net_d(sr)
            l_gan = gan.generator_loss(real_logits, fake_logits)
            l_total = l_total + l_gan
            row["l_gan"] = float(l_gan.detach())
        l_total.backward()
        opt_g.step()
        # -- discriminator step on the detached SR
        if variant.gan:
            for p in net_d.parameters():
                p.requires_grad_(True)
            opt_d.zero_grad(set_to_none=True)
            real_d = net_d(gt)
            fake_d = net_d(sr.detach())
            l_d = gan.discriminator_loss(real_d, fake_d)
            l_d.backward()
            opt_d.step()
            row.update(
                l_d=float(l_d.detach()),
                d_real=float(real_d.detach().mean()),
                d_fake=float(fake_d.detach().mean()),
            )
            res.gan_terms.append(gan_loss_terms(real_d, fake_d))
            res.last_logits = (real_d.detach().clone(), fake_d.detach().clone())
        for k in keys:
            res.log[k].append(row[k])
    res.seconds = time.perf_counter() - start
    net_g.eval()
    return res


@dataclass
class SrScore:
    """Mean Y-PSNR and NIQE of a model on a set; ``niqe`` is ``None`` with a reason."""

    psnr: float
    niqe: float | None
    niqe_note: str = ""


def score_sr(model: nn.Module | None, pairs: PairedImageSet, niqe: bool = True) -> SrScore:
    """PSNR (Y, crop_border = scale) and NIQE (lower = more natural) of ``model``'s outputs.

    ``model=None`` scores bicubic upsampling. NIQE needs the pristine model file
    (:func:`esrgan_lab.settings.niqe_params_path`); without it ``niqe`` is ``None`` and
    ``niqe_note`` says why. Images smaller than one 96x96 NIQE block are skipped for NIQE.
    """
    from ..data.degrade import bicubic_upscale
    from ..metrics.niqe import BLOCK_SIZE, calculate_niqe
    from ..metrics.psnr_ssim import MetricUnavailable

    psnrs, niqes = [], []
    note = "" if niqe else "not requested"
    for _, gt, lq in pairs:
        sr = bicubic_upscale(lq, pairs.scale) if model is None else super_resolve(model, lq)
        psnrs.append(y_psnr(sr, gt, pairs.scale))
        if not niqe or note:
            continue
        if min(sr.shape[:2]) - 2 * pairs.scale < BLOCK_SIZE:
            continue
        try:
            niqes.append(calculate_niqe(sr[..., ::-1], crop_border=pairs.scale))
        except MetricUnavailable as exc:
            note = str(exc)
    if niqe and not note and not niqes:
        note = f"no image has a {BLOCK_SIZE}x{BLOCK_SIZE} NIQE block"
    value = float(np.mean(niqes)) if niqes and not note else None
    return SrScore(float(np.mean(psnrs)), value, note)


def image_batch(images: Sequence, size: int) -> torch.Tensor:
    """Centre ``size x size`` crops of RGB uint8 images (``NamedImage`` or arrays).

    Returns:
        ``(N, 3, size, size)`` float32 on [0, 1]; images smaller than ``size`` are
        cropped to their smaller side and all crops to the smallest.
    """
    arrays = [np.asarray(getattr(im, "image", im)) for im in images]
    size = min([size] + [min(a.shape[:2]) for a in arrays])
    crops = []
    for a in arrays:
        top, left = (a.shape[0] - size) // 2, (a.shape[1] - size) // 2
        crop = a[top : top + size, left : left + size, :3]
        crops.append(torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))).float() / 255)
    return torch.stack(crops)
