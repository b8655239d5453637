"""Load any RRDBNet checkpoint by name or path, and choose among the weights on disk.

:func:`load_model` ties :mod:`esrgan_lab.weights.checkpoints` (file formats, key layouts)
and :mod:`esrgan_lab.weights.registry` (named weights, the hash-checked downloader) to
:class:`~esrgan_lab.model.rrdbnet.RRDBNet`. :func:`select_weights` is the project's one
"which weights are at hand" choice: it never downloads, never falls back silently, and
builds a random network only when the name ``"random"`` is asked for.

Example::

    import esrgan_lab as lab
    model = lab.load_model("realesrgan-x4plus")          # downloads once, then cached
    psnr, gan = lab.load_checkpoint("a.pth"), lab.load_checkpoint("b.safetensors")
    lab.save_checkpoint(lab.interpolate(psnr, gan, 0.8), "interp_08.safetensors")
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, EsrganLabError
from ..model.rrdbnet import RRDBNet
from ..model.spec import ModelSpec
from .checkpoints import (
    META_CONFIG,
    PTH_SUFFIXES,
    convert_state_dict,
    detect_spec,
    read_checkpoint,
)
from .registry import fetch_weights, get_entry, list_entries


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
    if stored and stored.get("arch") == "srresnet":
        model = ModelSpec.from_config(stored).build()
        model.load_state_dict(dict(state), strict=True)
        return model.eval()
    sd = convert_state_dict(state, "basicsr")
    spec = detect_spec(sd, hint=stored)
    config = spec.to_config()
    model = spec.build()
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
    # res_scale (beta) is not a shape: it never explains a key that does not fit.
    return ", ".join(
        f"{k}={v}" for k, v in config.items() if k != "res_scale" and (k != "norm" or v)
    )


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


# --------------------------------------------------------------------------- choice

#: The one name that builds a randomly initialised network (see :func:`select_weights`).
RANDOM = "random"

#: Preference orders: the official ESRGAN models when they are in the cache, then this
#: project's own (``data/weights``, always shipped).
PREFERENCE: dict[str, tuple[str, ...]] = {
    "gan": ("esrgan-x4", "esrgan-x4-basicsr", "lab-gan-x4"),
    "psnr": ("esrgan-psnr-x4", "lab-psnr-x4"),
}


def is_available(name: str) -> bool:
    """Whether the named weights are on disk now (never downloads; a package entry counts
    when its package is installed, since converting it needs no network)."""
    try:
        entry = get_entry(name)
        if entry.package:
            from .registry import package_files

            package_files(entry)
            return True
        return entry.path.is_file()
    except EsrganLabError:
        return False


def best_available_weights(kind: str = "gan") -> str | None:
    """The first name of ``PREFERENCE[kind]`` whose file is on disk, or ``None``."""
    return next((n for n in PREFERENCE[kind] if is_available(n)), None)


@dataclass
class WeightsChoice:
    """The network :func:`select_weights` chose and what to call it.

    Attributes:
        model: The RRDBNet in eval mode on the CPU.
        name: The weights name, or ``"random"``.
        label: What figures and tables print beside its outputs.
    """

    model: RRDBNet
    name: str
    label: str


def select_weights(
    names: str | Sequence[str],
    *,
    random_spec: ModelSpec | None = None,
    seed: int = 0,
) -> WeightsChoice:
    """Load the first of ``names`` that is on disk; never downloads, never guesses.

    Args:
        names: Weights names (registry or ``data/weights``) or checkpoint paths, in order
            of preference. ``"random"`` stands for a randomly initialised RRDBNet of
            ``random_spec`` (default: the paper's), seeded with ``seed``: it is used
            only when it is named here.
        random_spec: The random network's architecture.
        seed: Its initialisation seed (the global RNG is left untouched).

    Raises:
        CheckpointError: None of ``names`` is on disk; the message lists what is.
    """
    wanted = [names] if isinstance(names, str) else list(names)
    for name in wanted:
        if name == RANDOM:
            spec = random_spec or ModelSpec()
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = spec.build().eval()
            desc = spec.describe() if random_spec else "paper defaults"
            return WeightsChoice(model, RANDOM, f"RANDOM {desc} (seed {seed})")
        path = Path(name)
        if path.is_file() or is_available(name):
            return WeightsChoice(load_model(name).eval(), str(name), str(name))
    on_disk = [e.name for e in list_entries() if e.path.is_file()]
    raise CheckpointError(
        f"none of the weights {wanted} is on disk (on disk: {', '.join(on_disk) or 'none'}; "
        f"{RANDOM!r} names an untrained network)"
    )
