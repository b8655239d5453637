"""Where and how a training run computes: process group, device, precision, schedule.

* :func:`init_distributed` joins the ``torchrun`` process group (gloo on CPU, nccl on
  CUDA) and picks the device of this rank.
* :func:`native_bf16` / :func:`resolve_amp` decide mixed precision: bf16 autocast only
  where the hardware computes bf16 natively, fp32 elsewhere.
* :func:`build_scheduler`: the paper's step schedule or cosine annealing.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from ..errors import ConfigError
from .config import StageConfig


def init_distributed(device_pref: str) -> tuple[int, int, torch.device]:
    """Join the process group when launched by ``torchrun``; returns ``(rank, world, device)``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_pref == "auto":
        use_cuda = torch.cuda.is_available()
    elif device_pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"runtime.device {device_pref!r} requested but CUDA is unavailable")
        use_cuda = True
    elif device_pref == "cpu":
        use_cuda = False
    else:
        raise ConfigError(f"runtime.device must be auto, cpu or cuda, got {device_pref!r}")
    if use_cuda:
        if world > 1:
            device = torch.device("cuda", local_rank)
        else:
            device = torch.device("cuda", torch.device(device_pref).index or 0)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return rank, world, device


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (fast), not by emulation.

    CUDA: ``torch.cuda.is_bf16_supported()``. CPU: oneDNN's bf16 support, i.e. AVX512-BF16
    or AMX. On an AVX2-only CPU bf16 matmuls are emulated and run about 400x *slower*
    than fp32 (measured here: 0.3 vs 123 GFLOP/s on 2 cores), so bf16 must not be used.
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # pragma: no cover - very old torch
            return False
    return False


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``runtime.amp`` on ``device`` (``None``: fp32).

    Raises:
        ConfigError: ``amp: bf16`` where bf16 is not native (it would be emulated).
    """
    if amp == "none":
        return None
    native = native_bf16(device)
    if amp == "bf16" and not native:
        raise ConfigError(
            f"runtime.amp 'bf16': {device.type} has no native bf16 (no AVX512-BF16/AMX on "
            "this CPU); use amp: auto (bf16 where native, else fp32) or none"
        )
    return torch.bfloat16 if native else None


def autocast_context(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """``torch.autocast`` for ``dtype`` on ``device``, disabled for fp32."""
    if dtype is None:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=dtype)


def build_scheduler(
    opt: torch.optim.Optimizer, st: StageConfig, milestones: list[int], gamma: float
) -> torch.optim.lr_scheduler.LRScheduler:
    """The stage's learning-rate schedule for ``opt`` (stepped once per iteration).

    ``multistep``: multiply by ``gamma`` at each milestone (the paper halves the rate at
    fixed iterations). ``cosine``: anneal from the initial rate to ``eta_min`` over
    ``total_iter`` (the short CPU recipes, which never reach the paper's milestones).
    """
    if st.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, st.total_iter, st.eta_min)
    return torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma)
