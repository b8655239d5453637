"""One optimisation step of each ESRGAN training stage: the only place that calls backward.

* :func:`psnr_step` - stage 1, the PSNR-oriented generator: ``L_1`` only (paper Sec. 4.1).
* :func:`generator_step` and :func:`discriminator_step` - stage 2 (paper Sec. 3.2-3.4):
  the generator minimises ``L_G = L_percep + lambda L_G^Ra + eta L_1`` (Eq. 3) against
  a frozen discriminator, then the discriminator minimises ``L_D^Ra`` on the *detached*
  output; :func:`gan_step` runs the two in this order, as BasicSR's ``ESRGANModel`` does.
* :class:`Ema` - the exponential moving average of the generator weights.

The trainer (:mod:`esrgan_lab.training.trainer`) calls these for every run, and the
notebooks' studies train through the trainer, so every curve in the project comes from
this code. Each step returns detached scalar tensors to log (no host sync).

Gradient accumulation (``accumulate=A``): the batch is split into ``A`` equal micro-batches,
each runs forward and backward with its loss divided by ``A``, and the optimizer steps once.
The gradient is then the mean over the whole batch, as with ``A`` DDP ranks of one
micro-batch each (whose gradients DDP averages); a DDP wrapper all-reduces only on the
last micro-batch (``no_sync``). Per-batch statistics (the relativistic loss's mean logits,
BatchNorm) are per micro-batch, as they are per rank under DDP.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..losses.gan import GANLoss


class Ema:
    """Exponential moving average of a model's parameters (buffers are copied).

    ``theta_ema <- decay * theta_ema + (1 - decay) * theta`` after every step (BasicSR's
    ``ema_decay`` 0.999); the averaged weights are what the PSNR stage exports.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_p = list(self.model.parameters())
        src_p = [p.detach() for p in model.parameters()]
        torch._foreach_mul_(ema_p, self.decay)
        torch._foreach_add_(ema_p, src_p, alpha=1.0 - self.decay)
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)


def micro_batches(
    lq: torch.Tensor, gt: torch.Tensor, accumulate: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Split a batch into ``accumulate`` equal micro-batches (in order)."""
    if accumulate < 1 or lq.shape[0] % accumulate:
        raise ValueError(f"batch of {lq.shape[0]} does not split into {accumulate} micro-batches")
    return list(zip(lq.chunk(accumulate), gt.chunk(accumulate)))


def _sync(net: nn.Module, last: bool) -> contextlib.AbstractContextManager:
    """DDP all-reduces gradients on the last micro-batch only."""
    no_sync = getattr(net, "no_sync", None)
    return contextlib.nullcontext() if last or no_sync is None else no_sync()


@dataclass
class GanLosses:
    """The loss terms of the GAN stage (paper Eq. 3), each optional for ablations.

    Attributes:
        pixel_weight: ``eta`` (1e-2 in the paper); 0 drops ``L_1``.
        perceptual: A :class:`~esrgan_lab.losses.perceptual.PerceptualLoss` (its own
            weight inside), or ``None`` for no perceptual term.
        gan: A :class:`~esrgan_lab.losses.gan.GANLoss` (``lambda`` as its weight), or
            ``None`` for no adversarial term (and no discriminator step).
    """

    pixel_weight: float = 1e-2
    perceptual: nn.Module | None = None
    gan: GANLoss | None = None


@dataclass
class StepResult:
    """What one step produced: scalar losses to log, and the discriminator's logits.

    Attributes:
        losses: Detached 0-d tensors (``l_pix``, ``l_percep``, ``l_gan``, ``l_g_total``,
            ``l_d``, ``d_real``, ``d_fake``, as the stage has them).
        logits: ``(C(x_r), C(x_f))`` of the discriminator step, detached, or ``None``.
    """

    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    logits: tuple[torch.Tensor, torch.Tensor] | None = None


def psnr_step(
    net_g: nn.Module,
    opt_g: torch.optim.Optimizer,
    lq: torch.Tensor,
    gt: torch.Tensor,
    *,
    pixel_weight: float = 1.0,
    autocast: Any = None,
    accumulate: int = 1,
) -> StepResult:
    """Stage 1: one Adam step on ``pixel_weight * L_1(G(lq), gt)``.

    Args:
        net_g: Generator (or its DDP wrapper), in train mode.
        opt_g: Its optimizer.
        lq: ``(N, 3, h, w)`` inputs; gt: ``(N, 3, h*s, w*s)`` targets.
        pixel_weight: Loss weight.
        autocast: A ``torch.autocast`` context for the forward (``None``: fp32).
        accumulate: Micro-batches ``N`` is split into (module docstring).
    """
    opt_g.zero_grad(set_to_none=True)
    parts = micro_batches(lq, gt, accumulate)
    total = lq.new_zeros((), dtype=torch.float32)
    for k, (lq_k, gt_k) in enumerate(parts):
        with _sync(net_g, k == accumulate - 1):
            with autocast or contextlib.nullcontext():
                sr = net_g(lq_k)
            l_pix = pixel_weight * F.l1_loss(sr.float(), gt_k)
            (l_pix / accumulate).backward()
        total = total + l_pix.detach()
    opt_g.step()
    return StepResult({"l_pix": total / accumulate})


def generator_step(
    net_g: nn.Module,
    net_d: nn.Module | None,
    opt_g: torch.optim.Optimizer,
    lq: torch.Tensor,
    gt: torch.Tensor,
    losses: GanLosses,
    *,
    autocast: Any = None,
    accumulate: int = 1,
) -> tuple[torch.Tensor, StepResult]:
    """Stage 2, generator: one step on ``L_G = L_percep + lambda L_G^Ra + eta L_1``.

    The discriminator is frozen (``requires_grad`` off, called without a DDP wrapper), so
    the backward neither computes nor all-reduces D's gradients. Its logits on the GT
    are constants: in ``L_G^Ra`` real data enter only through ``C(x_r)``, and the
    generator's gradient flows through ``C(x_f)`` in both terms (paper Eq. 2).

    Returns:
        ``(sr, result)``: the generator output (with its graph freed) for the
        discriminator step, and the logged losses.
    """
    use_gan = losses.gan is not None and net_d is not None
    if use_gan:
        for p in net_d.parameters():
            p.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    ctx = autocast or contextlib.nullcontext()
    outputs: list[torch.Tensor] = []
    sums: dict[str, torch.Tensor] = {}
    for k, (lq_k, gt_k) in enumerate(micro_batches(lq, gt, accumulate)):
        with _sync(net_g, k == accumulate - 1):
            with ctx:
                sr = net_g(lq_k)
            terms: dict[str, torch.Tensor] = {}
            l_total = sr.new_zeros((), dtype=torch.float32)
            if losses.pixel_weight:
                terms["l_pix"] = losses.pixel_weight * F.l1_loss(sr.float(), gt_k)
                l_total = l_total + terms["l_pix"]
            if losses.perceptual is not None:
                with ctx:
                    terms["l_percep"] = losses.perceptual(sr, gt_k).float()
                l_total = l_total + terms["l_percep"]
            if use_gan:
                with ctx:
                    with torch.no_grad():
                        real_logits = net_d(gt_k)
                    fake_logits = net_d(sr)
                terms["l_gan"] = losses.gan.generator_loss(real_logits, fake_logits)
                l_total = l_total + terms["l_gan"]
            (l_total / accumulate).backward()
        terms["l_g_total"] = l_total
        for key, value in terms.items():
            sums[key] = sums.get(key, 0) + value.detach()
        outputs.append(sr.detach())
    opt_g.step()
    sr_all = outputs[0] if accumulate == 1 else torch.cat(outputs)
    return sr_all, StepResult({k: v / accumulate for k, v in sums.items()})


def discriminator_step(
    net_d: nn.Module,
    opt_d: torch.optim.Optimizer,
    gt: torch.Tensor,
    sr: torch.Tensor,
    gan_loss: GANLoss,
    *,
    autocast: Any = None,
    accumulate: int = 1,
) -> StepResult:
    """Stage 2, discriminator: one step on ``L_D^Ra`` (paper Eq. 1).

    ``sr`` must be detached from the generator (the detach convention: the D step
    never moves G). Inside the relativistic loss each side's mean logit is a constant
    for the other side (see :class:`~esrgan_lab.losses.gan.GANLoss`).

    Args:
        net_d: Discriminator (or its DDP wrapper), in train mode.
        opt_d: Its optimizer.
        gt, sr: ``(N, 3, H, W)`` real and generated images.
        gan_loss: The adversarial loss (its weight applies to G only).
        accumulate: Micro-batches ``N`` is split into (module docstring).
    """
    params = list(net_d.parameters())
    for p in params:
        p.requires_grad_(True)
    opt_d.zero_grad(set_to_none=True)
    total = gt.new_zeros((), dtype=torch.float32)
    reals, fakes = [], []
    for k, (gt_k, sr_k) in enumerate(micro_batches(gt, sr, accumulate)):
        with _sync(net_d, k == accumulate - 1):
            with autocast or contextlib.nullcontext():
                real_d = net_d(gt_k)
                fake_d = net_d(sr_k.detach())
            l_d = gan_loss.discriminator_loss(real_d, fake_d)
            (l_d / accumulate).backward()
        total = total + l_d.detach()
        reals.append(real_d.detach().float())
        fakes.append(fake_d.detach().float())
    opt_d.step()
    real_d, fake_d = torch.cat(reals), torch.cat(fakes)
    return StepResult(
        {"l_d": total / accumulate, "d_real": real_d.mean(), "d_fake": fake_d.mean()},
        logits=(real_d, fake_d),
    )


def gan_step(
    g_train: nn.Module,
    net_d: nn.Module | None,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer | None,
    lq: torch.Tensor,
    gt: torch.Tensor,
    losses: GanLosses,
    *,
    d_train: nn.Module | None = None,
    autocast: Any = None,
    accumulate: int = 1,
) -> StepResult:
    """Stage 2: :func:`generator_step`, then (with a GAN term) :func:`discriminator_step`.

    Args:
        g_train: Generator as trained (possibly DDP-wrapped).
        net_d: The bare discriminator (frozen in the G step), or ``None``.
        d_train: The discriminator as trained in the D step (default ``net_d``).
        accumulate: Micro-batches per step (module docstring).
    """
    sr, result = generator_step(
        g_train, net_d, opt_g, lq, gt, losses, autocast=autocast, accumulate=accumulate
    )
    if losses.gan is not None and net_d is not None and opt_d is not None:
        d_result = discriminator_step(
            d_train or net_d, opt_d, gt, sr, losses.gan, autocast=autocast, accumulate=accumulate
        )
        result.losses.update(d_result.losses)
        result.logits = d_result.logits
    return result
