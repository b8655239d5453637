"""What a stage trains, built from the configuration: the generator (from scratch or from
pretrained weights), the discriminator and the loss terms.

* :func:`build_generator` - the untrained generator of a config (:attr:`TrainConfig.spec`).
* :func:`pretrained_path` / :func:`load_pretrained` - where a stage's generator starts:
  ``pretrained_g``, or for the GAN stage the PSNR-oriented model (paper Sec. 4.1).
* :func:`gan_parts` - the discriminator and the GAN stage's loss terms.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..model.rrdbnet import RRDBNet
from ..model.spec import ModelSpec
from .config import StageConfig, TrainConfig
from .steps import GanLosses


def build_generator(cfg: TrainConfig) -> RRDBNet:
    """The untrained generator of ``cfg`` (initialised from torch's global RNG)."""
    return cfg.spec.build()


def pretrained_path(cfg: TrainConfig, out: str | os.PathLike[str], name: str) -> Path | None:
    """The weights stage ``name`` starts from, or ``None`` (from scratch).

    Raises:
        ConfigError: the GAN stage without ``pretrained_g`` nor a PSNR stage in ``out``.
    """
    st = cfg.stage(name)
    if st.pretrained_g:
        # A file, or a weights name (``realesrgan-x4plus``, ``lab-psnr-x4``).
        from ..weights.loading import resolve_weights

        return resolve_weights(Path(st.pretrained_g).expanduser())
    if name == "gan":
        # Paper Sec. 4.1: initialise the GAN generator with the PSNR-oriented model
        # (EMA weights when there are some, as BasicSR's param_key_g: params_ema).
        for fname in ("net_g_ema.safetensors", "net_g.safetensors"):
            candidate = Path(out) / "psnr" / fname
            if candidate.is_file():
                return candidate
        raise ConfigError(
            "the gan stage needs a PSNR-oriented generator: set gan.pretrained_g or run "
            "the psnr stage first in the same --out"
        )
    return None


def load_pretrained(net_g: nn.Module, path: Path, want: ModelSpec, stage: str = "psnr") -> None:
    """Load ``path`` into ``net_g`` (strict), built as ``want``.

    Raises:
        ConfigError: the file is a model of another scale or size (names the config key).
        CheckpointError: the weights do not fit ``net_g`` otherwise.
    """
    from ..weights.checkpoints import detect_spec, load_checkpoint

    state = load_checkpoint(path)
    found: dict[str, Any] = {}
    if want.arch == "rrdbnet":
        try:
            found = detect_spec(state).to_config()
        except CheckpointError:
            pass  # not an RRDBNet: load_state_dict below says what does not fit
    wanted = want.to_config()
    # A model of another scale or size: name the config key, not torch's shape dump.
    for key, cfg_key in (
        ("scale", "scale"),
        ("num_feat", "model.num_feat"),
        ("num_block", "model.num_block"),
        ("num_grow_ch", "model.num_grow_ch"),
    ):
        if key in found and found[key] != wanted[key]:
            what = f"x{found[key]}" if key == "scale" else f"{key} {found[key]}"
            raise ConfigError(
                f"config key '{stage}.pretrained_g': {path} is a {what} model but "
                f"config key {cfg_key!r} is {wanted[key]}"
            )
    try:
        net_g.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"{path}: does not fit {want.describe()} ({first})") from None


def gan_parts(
    cfg: TrainConfig, st: StageConfig, *, verbose: bool
) -> tuple[nn.Module | None, GanLosses]:
    """The discriminator (``None`` without a GAN term) and the stage's loss terms."""
    from ..losses.gan import GANLoss
    from ..losses.perceptual import PerceptualLoss
    from ..model.discriminators import build_discriminator

    pc, dc = st.perceptual, st.discriminator
    percep = None
    if pc is not None and pc.weight:
        percep = PerceptualLoss(
            pc.layers,
            weight=pc.weight,
            criterion=pc.criterion,
            backbone=pc.backbone,
            use_input_norm=pc.use_input_norm,
            range_norm=pc.range_norm,
        )
        if verbose:
            print(f"[gan] perceptual loss: {pc.backbone} ({percep.weights_source})")
    net_d = gan_loss = None
    if st.gan_weight:
        net_d = build_discriminator(dc.type, 3, dc.num_feat, cfg.data.gt_size)
        gan_loss = GANLoss(st.gan_type, st.gan_weight)
    return net_d, GanLosses(st.pixel_weight, percep, gan_loss)


def adam(
    net: nn.Module, learning_rate: float, betas: Sequence[float], weight_decay: float
) -> torch.optim.Adam:
    """Adam over ``net``'s parameters (the paper's optimizer for G and D)."""
    return torch.optim.Adam(
        net.parameters(), lr=learning_rate, betas=tuple(betas), weight_decay=weight_decay
    )
