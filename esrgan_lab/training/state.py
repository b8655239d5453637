"""What makes a run resumable: RNG states, checkpoints, and the exported generator.

Checkpoint layout of a stage folder::

    checkpoints/iter_XXXXXXXX/{net_g,net_d,net_g_ema}.safetensors + state.pt

``state.pt`` holds only tensors, numbers and dicts (optimizer and scheduler state, the
iteration, RNG states) and is read with ``torch.load(weights_only=True)``. A checkpoint
folder is written under a temporary name and renamed into place, so an interrupted save
never leaves a half-written checkpoint.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, ConfigError

CHECKPOINT_PREFIX = "iter_"


def save_tensors(
    state: dict[str, torch.Tensor], path: Path, meta: dict[str, str] | None = None
) -> None:
    """Write a state dict as safetensors (CPU, contiguous copies)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    save_file(tensors, str(path), metadata=meta or {"format": "pt"})


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors state dict; :class:`CheckpointError` naming the file on failure."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read safetensors file ({exc})") from exc


def rng_state() -> dict[str, Any]:
    """Every RNG state as plain tensors/numbers (loadable with ``weights_only=True``)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
        "numpy_pos": int(np_state[2]),
        "numpy_has_gauss": int(np_state[3]),
        "numpy_cached_gaussian": float(np_state[4]),
        "python": torch.tensor(py_state[1], dtype=torch.int64),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state(
        (
            "MT19937",
            keys,
            state["numpy_pos"],
            state["numpy_has_gauss"],
            state["numpy_cached_gaussian"],
        )
    )
    random.setstate((3, tuple(int(v) for v in state["python"].tolist()), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def accumulate_for(global_batch: int, batch_size: int, world: int) -> int:
    """Micro-batches per step that make ``batch_size`` on ``world`` ranks the checkpoint's
    ``global_batch`` (a run resumed on another world size keeps its batch and so its
    sample stream, :class:`~esrgan_lab.data.paired.StreamSampler`).

    Raises:
        ConfigError: ``batch_size * world`` does not divide ``global_batch``.
    """
    per_step = batch_size * world
    if global_batch % per_step:
        raise ConfigError(
            f"the checkpoint was trained with a global batch of {global_batch}; batch_size "
            f"{batch_size} on {world} rank(s) cannot make it up: set "
            "data.batch_size so that batch_size * world size divides it"
        )
    return global_batch // per_step


class Checkpoints:
    """The checkpoints of one stage folder: list, save (atomically, keeping the last N),
    restore."""

    def __init__(self, stage_dir: Path, keep: int = 2) -> None:
        self.folder = stage_dir / "checkpoints"
        self.keep = max(1, keep)

    def list(self) -> list[tuple[int, Path]]:
        """``[(iteration, folder)]`` of complete checkpoints, oldest first."""
        if not self.folder.is_dir():
            return []
        found = []
        for p in self.folder.iterdir():
            if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX) and (p / "state.pt").is_file():
                try:
                    found.append((int(p.name[len(CHECKPOINT_PREFIX) :]), p))
                except ValueError:
                    continue
        return sorted(found)

    def latest(self) -> tuple[int, Path | None]:
        """``(iteration, folder)`` of the newest checkpoint, or ``(0, None)``."""
        found = self.list()
        return found[-1] if found else (0, None)

    def save(self, iteration: int, nets: dict[str, nn.Module | None], state: dict) -> None:
        """Write ``nets`` (safetensors) and ``state`` (``state.pt``) as one checkpoint."""
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"{CHECKPOINT_PREFIX}{iteration:08d}"
        tmp = Path(tempfile.mkdtemp(dir=self.folder, prefix=".tmp_"))
        try:
            for key, net in nets.items():
                if net is not None:
                    save_tensors(net.state_dict(), tmp / f"{key}.safetensors")
            torch.save(state, tmp / "state.pt")
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        for _, old in self.list()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)

    @staticmethod
    def restore(folder: Path, nets: dict[str, nn.Module | None]) -> dict[str, Any]:
        """Load ``nets`` from a checkpoint folder; returns its ``state.pt``.

        A missing ``net_g_ema`` file (checkpoints of runs without EMA) leaves the EMA
        model as a copy of ``net_g``.
        """
        for key, net in nets.items():
            if net is None:
                continue
            path = folder / f"{key}.safetensors"
            if key == "net_g_ema" and not path.is_file():
                path = folder / "net_g.safetensors"
            net.load_state_dict(load_tensors(path))
        try:
            return torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"{folder / 'state.pt'}: cannot load ({exc})") from exc


def export_generator(
    model: nn.Module, path: Path, config: dict[str, Any], dtype: torch.dtype = torch.float32
) -> None:
    """Write the generator in BasicSR layout with its RRDBNet config in the metadata."""
    from ..weights.checkpoints import save_checkpoint

    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    save_checkpoint(state, path, config=config)
