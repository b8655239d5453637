"""Pretrained weights in one place: load any RRDBNet checkpoint by name or path.

This module is the public face of :mod:`esrgan_lab.weights.checkpoints` (file formats, key
layouts, conversion, interpolation) and :mod:`esrgan_lab.weights.registry` (named weights and the
hash-checked downloader), plus :func:`load_model`, which ties them to
:class:`~esrgan_lab.model.rrdbnet.RRDBNet`.

Example::

    import esrgan_lab as lab
    model = lab.load_model("realesrgan-x4plus")          # downloads once, then cached
    psnr, gan = lab.load_checkpoint("a.pth"), lab.load_checkpoint("b.safetensors")
    lab.save_checkpoint(lab.interpolate(psnr, gan, 0.8), "interp_08.safetensors")
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..model.rrdbnet import RRDBNet
from .checkpoints import (
    LAYOUTS,
    META_CONFIG,
    PTH_SUFFIXES,
    Layout,
    StateDict,
    convert_state_dict,
    detect_layout,
    infer_config,
    interpolate,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
    unwrap_state_dict,
)
from .registry import (
    REGISTRY,
    WeightsEntry,
    download_file,
    fetch_weights,
    get_entry,
    list_entries,
    local_weights_dir,
)

__all__ = [
    "LAYOUTS",
    "REGISTRY",
    "Layout",
    "StateDict",
    "WeightsEntry",
    "convert_state_dict",
    "detect_layout",
    "download_file",
    "fetch_weights",
    "get_entry",
    "infer_config",
    "interpolate",
    "list_entries",
    "load_checkpoint",
    "load_model",
    "local_weights_dir",
    "model_from_state_dict",
    "read_checkpoint",
    "resolve_weights",
    "save_checkpoint",
    "stored_config",
    "unwrap_state_dict",
]


def resolve_weights(name_or_path: str | os.PathLike[str]) -> Path:
    """A checkpoint file from a path or a registry name (fetched into the cache if needed).

    Args:
        name_or_path: An existing file, or a name from :data:`REGISTRY` / ``data/weights``.

    Raises:
        CheckpointError: A path-like argument (with a checkpoint suffix or a folder part)
            that does not exist.
        ConfigError: Neither a file nor a known name.
        DownloadError: The named weights cannot be fetched.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    text = str(name_or_path)
    if path.suffix.lower() in (*PTH_SUFFIXES, ".safetensors") or os.sep in text or "/" in text:
        raise CheckpointError(f"{path}: no such checkpoint file")
    return fetch_weights(text)


def model_from_state_dict(
    state: Mapping[str, torch.Tensor], stored: Mapping[str, Any] | None = None
) -> RRDBNet:
    """Build the RRDBNet that a state dict describes and load it with ``strict=True``.

    Args:
        state: State dict in any layout (wrapped or prefixed is fine).
        stored: Config recorded with the weights (see :func:`stored_config`): supplies
            ``res_scale`` (beta, invisible in the shapes; default 0.2) and settles the
            scale of scale-1/2 models whose input and output channels differ.

    Returns:
        The model in eval mode on the CPU.

    Raises:
        CheckpointError: Naming the first missing, unexpected or mis-shaped key.
    """
    sd = convert_state_dict(state, "basicsr")
    config: dict[str, Any] = infer_config(sd, hint=stored)
    if stored and isinstance(stored.get("res_scale"), (int, float)):
        config["res_scale"] = float(stored["res_scale"])
    model = RRDBNet(**config)
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key not in sd:
            raise CheckpointError(f"missing key {key!r} for RRDBNet({_describe(config)})")
        if sd[key].shape != tensor.shape:
            raise CheckpointError(
                f"shape mismatch at key {key!r}: checkpoint {tuple(sd[key].shape)}, "
                f"RRDBNet({_describe(config)}) expects {tuple(tensor.shape)}"
            )
    for key in sd:
        if key not in expected:
            raise CheckpointError(f"unexpected key {key!r} for RRDBNet({_describe(config)})")
    model.load_state_dict(sd, strict=True)
    return model.eval()


def stored_config(metadata: Mapping[str, str]) -> dict[str, Any]:
    """The RRDBNet config that :func:`save_checkpoint` recorded in safetensors metadata.

    Returns an empty dict for files without (readable) metadata, e.g. every ``.pth``.
    """
    try:
        stored = json.loads(metadata.get(META_CONFIG, "{}"))
    except json.JSONDecodeError:
        return {}
    return stored if isinstance(stored, dict) else {}


def _describe(config: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.items() if k != "norm" or v is not None)


def load_model(name_or_path: str | os.PathLike[str], device: str | torch.device = "cpu") -> RRDBNet:
    """Load pretrained weights into a matching :class:`~esrgan_lab.model.rrdbnet.RRDBNet`.

    The architecture (channels, scale, blocks, BatchNorm) is inferred from the tensor
    shapes, so any published RRDBNet checkpoint loads without arguments.

    Args:
        name_or_path: A checkpoint file (any layout, ``.pth`` or ``.safetensors``) or a
            registry name such as ``"realesrgan-x4plus"`` or ``"lab-gan-x4"``.
        device: Where to put the model.

    Returns:
        The model in eval mode.

    Raises:
        CheckpointError, ConfigError, DownloadError: With a one-line message.
    """
    path = resolve_weights(name_or_path)
    state, metadata = read_checkpoint(path)
    try:
        model = model_from_state_dict(state, stored_config(metadata))
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return model.to(device)
