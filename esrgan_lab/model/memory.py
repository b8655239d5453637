"""Memory of an RRDBNet: estimated from shapes (closed forms), and measured (one place each).

Estimates, for the architecture explorer and the tiler:

=======================  ===============================================================
``MemoryEstimate`` field what it estimates
=======================  ===============================================================
``weights``              the parameters (``count_parameters * bytes per element``).
``inference``            peak activation memory of one forward pass without autograd:
                         :func:`estimate_memory`, the estimate the tiler of
                         :func:`esrgan_lab.inference.upscale.upscale` uses, calibrated on
                         the process's peak RSS on the CPU.
``training``             activations that autograd keeps for the backward pass of one
                         forward: every ``Conv2d`` input and every ``LeakyReLU`` output
                         (the only ops of RRDBNet that save tensors; ``cat``, ``mul`` by
                         beta, ``add`` and nearest upsampling save none), in closed
                         form (:func:`saved_activation_elements`; the tests check it
                         against the measurement :func:`saved_activation_bytes`).
                         Gradients, optimizer state and workspaces come on top.
=======================  ===============================================================

Measurements, for any module and input: :func:`saved_activation_bytes` (what autograd
saves for backward, through ``saved_tensors_hooks``; works on the meta device) and
:func:`peak_activation_bytes` (the peak of live tensors in an inference forward); for a
whole process, :func:`process_memory` (its resident and peak resident memory).

Why the trunk is cheap and the upsampler is not (Wang et al. 2018, Fig. 4): the trunk's
tensors live at the input resolution, the upsampler's ``num_feat``-channel tensors at
``scale**2`` times as many pixels.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ..errors import ConfigError
from .rrdbnet import RRDB, count_parameters, model_scale, size_multiple
from .spec import ModelSpec


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes for one ``(1, C, height, width)`` input; see the module docstring.

    Attributes:
        weights: Parameter bytes.
        inference: Peak activation bytes of an inference forward pass.
        training: Activation bytes saved for the backward pass (batch of one).
    """

    weights: int
    inference: int
    training: int


#: Peak activation elements per trunk (LR) pixel, in units of ``num_feat + 4 num_grow_ch``
#: (the widest concatenation inside a dense block; several such tensors are alive at once).
LR_FACTOR = 2.5
#: Peak activation elements per *output* pixel, in units of ``num_feat``: the upsampled
#: features, the conv output and oneDNN scratch buffers. Calibrated on RRDBNet (nf 32/64,
#: scale 1/2/4) from the process's peak RSS: measured 9.2 KB (channels_last) to 14.7 KB
#: (contiguous) per input pixel for the x4 model in fp32; this factor gives 16.3 KB.
HR_FACTOR = 3.5


def activation_bytes_per_pixel(model: nn.Module, dtype: torch.dtype = torch.float32) -> float:
    """Estimated peak activation memory of one forward pass, in bytes per *input* pixel.

    For RRDBNet (Wang et al. 2018, Fig. 4) the widest tensors are the dense-block
    concatenations, ``num_feat + 4 num_grow_ch`` channels at trunk resolution, and the
    ``num_feat``-channel features of the upsampler and HR convs at output resolution;
    :data:`LR_FACTOR` and :data:`HR_FACTOR` account for the several copies alive at once.
    Models without ``num_feat`` / ``num_grow_ch`` are assumed to be ESRGAN-sized (64 / 32).
    """
    num_feat = int(getattr(model, "num_feat", 64))
    num_grow = int(getattr(model, "num_grow_ch", 32))
    scale = model_scale(model)
    unshuffle = size_multiple(model)
    elements = (
        LR_FACTOR * (num_feat + 4 * num_grow) / unshuffle**2 + HR_FACTOR * num_feat * scale**2
    )
    return elements * torch.empty((), dtype=dtype).element_size()


def estimate_memory(
    model: nn.Module, height: int, width: int, dtype: torch.dtype = torch.float32
) -> int:
    """Estimated peak activation bytes of running ``model`` on an ``height x width`` input."""
    return int(activation_bytes_per_pixel(model, dtype) * height * width)


def saved_activation_bytes(model: nn.Module, x: torch.Tensor | tuple[int, ...]) -> int:
    """Bytes autograd keeps for the backward pass of one training-mode forward of ``model``.

    Every tensor saved for backward is recorded by
    :func:`torch.autograd.graph.saved_tensors_hooks`; storages are counted once, and
    parameters are excluded (they exist anyway). This is the activation memory of
    training, where BatchNorm adds its inputs (and per-channel statistics). Works on the
    meta device too: pass a model built under ``torch.device("meta")`` and an input
    shape to count without memory or compute.

    Args:
        model: Any module.
        x: An input tensor, or an input shape (zeros on the model's device).
    """
    if not isinstance(x, torch.Tensor):
        param = next(model.parameters())
        x = torch.zeros(x, device=param.device, dtype=param.dtype)
    # StorageImpl addresses identify storages on every device, meta included.
    params = {p.untyped_storage()._cdata for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        key = st._cdata
        if key not in params:
            seen[key] = max(seen.get(key, 0), st.nbytes())
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


def process_memory(key: str = "VmHWM") -> int:
    """This process's resident memory in bytes, as Linux reports it in ``/proc/self/status``.

    Args:
        key: ``"VmHWM"`` (peak resident set since the process started) or ``"VmRSS"``
            (resident now).

    Returns:
        The bytes, or 0 where ``/proc`` is missing (not Linux). Not ``ru_maxrss``: a child's
        ``ru_maxrss`` also counts the address space it was forked from.
    """
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    match = re.search(rf"^{re.escape(key)}:\s+(\d+)\s+kB", text, re.MULTILINE)
    if match is None:
        raise ValueError(f"{key!r} is not a field of /proc/self/status")
    return int(match.group(1)) * 1024


def saved_activation_elements(spec: ModelSpec, height: int, width: int) -> int:
    """Closed form of :func:`saved_activation_bytes` for an RRDBNet, in elements.

    With ``P`` trunk pixels (``height * width / unshuffle**2``) and ``U = 4**num_up``
    (16 for x1/x2/x4, 64 for x8):

    * ``conv_first`` input: ``num_in_ch * height * width``;
    * each of the ``3 * num_block`` dense blocks: conv inputs ``nf, nf + gc, ..., nf + 4 gc``
      plus four LeakyReLU outputs of ``gc``: ``(5 nf + 14 gc) P``;
    * ``conv_body`` input: ``nf P``;
    * upsampling stage ``k``: conv input and LeakyReLU output, ``2 nf 4**k P``;
    * the HR convs: ``nf U P``. ``conv_hr``'s input *is* the last in-place LeakyReLU's
      output and ``conv_last``'s input is ``conv_hr``'s LeakyReLU output, so autograd
      saves each of those storages once.

    Exact for BN-free RRDBNets: the tests compare it with :func:`saved_activation_bytes`.

    Raises:
        ConfigError: ``spec`` is not a BN-free RRDBNet (the closed form does not hold).
    """
    if spec.arch != "rrdbnet" or spec.norm is not None:
        raise ConfigError(f"the closed form covers BN-free RRDBNets, not {spec.describe()}")
    unshuffle, num_up = spec.unshuffle, spec.num_up
    trunk = (height // unshuffle) * (width // unshuffle)
    nf, gc = spec.num_feat, spec.num_grow_ch
    per_trunk_pixel = (
        3 * spec.num_block * (5 * nf + 14 * gc)
        + nf
        + sum(2 * nf * 4**k for k in range(1, num_up + 1))
        + nf * 4**num_up
    )
    return spec.num_in_ch * height * width + per_trunk_pixel * trunk


def memory_estimate(
    spec: ModelSpec | None = None, *, size: int | tuple[int, int] = 128
) -> MemoryEstimate:
    """Weights, inference and training activation memory of an fp32 RRDBNet.

    Args:
        spec: The architecture (a BN-free RRDBNet); ``None`` for ESRGAN's.
        size: Input side, or ``(height, width)``.

    Returns:
        A :class:`MemoryEstimate` in bytes (float32: 4 bytes per element).
    """
    spec = spec or ModelSpec()
    height, width = (size, size) if isinstance(size, int) else size
    # The inference estimate reads only num_feat, num_grow_ch, scale and the unshuffle
    # factor, and the trunk's parameters are num_block copies of one RRDB, so a trunk-less
    # model plus one RRDB on the meta device stand in for the whole network (building 23
    # blocks would cost ~0.5 s per slider move for nothing).
    with torch.device("meta"):
        stand_in = spec.replace(num_block=0).build()
        block = RRDB(spec.num_feat, spec.num_grow_ch)
    parameters = count_parameters(stand_in) + spec.num_block * count_parameters(block)
    return MemoryEstimate(
        weights=int(4 * parameters),
        inference=int(estimate_memory(stand_in, height, width)),
        training=int(4 * saved_activation_elements(spec, height, width)),
    )


def format_bytes(n: float) -> str:
    """``1536 -> '1.5 KiB'``: binary units, three significant digits (``1000 B`` is shown
    as ``0.977 KiB``, never as four digits)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:,.3g} TiB" if abs(value) < 1000 else f"{value:,.0f} TiB"
