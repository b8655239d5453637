"""Inference engine: upscale any image with any model that has a ``scale`` attribute.

:func:`upscale` takes an array exactly as :func:`esrgan_lab.data.images.read_image` returns it
(gray, BGR or BGRA; uint8 or uint16) and returns the same kind of array, ``scale`` times
larger. What it decides, so callers do not have to:

* **Gray** ``(H, W)`` in -> gray out: the plane is replicated to RGB for the model and
  the *mean* of the three output channels is kept (the network was trained on colour
  images; for a gray input its channels differ only by small colour casts, and the mean
  is the neutral way to fold them back).
* **Alpha** (BGRA): colour goes through the model; alpha goes through the model too
  (replicated to RGB, channel mean kept; ``alpha="model"``) or is resized bicubically
  (``alpha="bicubic"``, ``cv2.INTER_CUBIC``). A constant alpha plane (e.g. fully opaque)
  is just filled in: no model pass is spent on it.
* **Depth**: 16-bit in -> 16-bit out, 8-bit -> 8-bit. Values are scaled by the dtype's
  full scale (65535 or 255), never by the data maximum.
* **Size**: inputs are padded by reflection at the bottom/right to a multiple of what
  the model needs (4 for scale-1, 2 for scale-2 RRDBNets, which pixel-unshuffle) and to
  at least :data:`MIN_SIZE` pixels, and the output is cropped back.
* **Tiling** (``tile=N``): the image is cut into a grid of about ``N x N`` input tiles;
  each runs with ``tile_pad`` extra input pixels of context on every side that is not an
  image border (all tile inputs have one size: see :func:`tile_grid`), and only the kept
  region is copied out, so every output pixel comes from exactly one tile. Only the
  current tile lives on the device; the output is written tile by tile into the final
  integer array on the CPU, so peak memory grows with the output size, not with the
  activations of the whole image. ``tile="auto"`` picks the largest tile whose
  estimated activations fit a memory budget (:func:`auto_tile`) and, on CUDA, halves it
  after an out-of-memory error.
* **Backend**: ``backend="onnxruntime"`` (CPU, fp32) runs the same tiles through an
  ONNX Runtime session of the model's graph, exported once per weights into a cache
  (:func:`esrgan_lab.inference.onnx.cached_onnx`); measured 1.9-2.5x faster than torch eager on
  this CPU, outputs within 1e-7 of torch. ``"auto"`` picks it on the CPU in fp32.
* **Speed / precision**: fp32 by default; bf16 on CPU and fp16/bf16 on CUDA on request.
  On the CPU the model runs in ``channels_last`` memory format under
  ``torch.inference_mode`` -- measured 1.2-1.4x faster than the contiguous layout of the
  official ``test.py`` here (``benchmarks/bench_upscale.py``). ``torch.compile`` is
  deliberately not used (inductor freezing gave wrong outputs on this build).
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.images import array_to_tensor, tensor_to_array
from ..errors import ConfigError
from ..model.memory import activation_bytes_per_pixel
from ..model.rrdbnet import model_scale, size_multiple
from .engines import is_compiled

AlphaMode = Literal["model", "bicubic"]
TileSpec = int | Literal["auto"] | None
Backend = Literal["auto", "torch", "onnxruntime"]

#: Inputs smaller than this (in either dimension) are reflection-padded up to it.
MIN_SIZE = 8
#: Smallest tile :func:`auto_tile` and the CUDA out-of-memory retry go down to.
MIN_TILE = 16
#: Fraction of free memory :func:`auto_tile` lets one tile's activations use.
MEMORY_FRACTION = 0.5
#: Most bytes one tile's activations may use on the CPU, whatever is free. Larger tiles are
#: not faster there (the convolutions are compute-bound at any tile over ~100 px; only the
#: padded border is recomputed), and the cap keeps a 2000x2000 x4 upscale by the full model
#: within 1.5 GB of RSS (benchmarks/bench_int8.py measures it).
CPU_MEMORY_CAP = 768 << 20

_DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
}


# --------------------------------------------------------------------------- devices


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: CUDA if available, else Apple MPS, else the CPU.

    Args:
        device: ``None`` or ``"auto"`` to choose; anything else (``"cpu"``, ``"cuda:1"``)
            is checked and returned.

    Raises:
        ConfigError: An explicitly requested device that is not available.
    """
    if device is None or (isinstance(device, str) and device.lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"unknown device {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError(f"device {device!r} requested but MPS is not available")
    return dev


@functools.cache
def _onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(
    backend: str, device: torch.device, dtype: torch.dtype
) -> Literal["torch", "onnxruntime"]:
    """The engine that runs the model: PyTorch eager or ONNX Runtime.

    ``"auto"`` picks ONNX Runtime on the CPU in fp32 when it is installed: measured
    1.9-2.5x faster than torch eager for RRDBNet here, with outputs within 1e-7 of torch
    (``benchmarks/bench_upscale.py``); everything else runs in torch.

    Raises:
        ConfigError: Unknown backend, or ``"onnxruntime"`` with a non-CPU device, a
            dtype other than fp32, or onnxruntime not installed.
    """
    if backend not in ("auto", "torch", "onnxruntime"):
        raise ConfigError(f"unknown backend {backend!r}; use auto, torch or onnxruntime")
    if backend == "torch":
        return "torch"
    if backend == "auto":
        ok = device.type == "cpu" and dtype == torch.float32 and _onnxruntime_available()
        return "onnxruntime" if ok else "torch"
    if device.type != "cpu":
        raise ConfigError(f"backend onnxruntime runs on the CPU only, not {device}; use torch")
    if dtype != torch.float32:
        name = str(dtype).removeprefix("torch.")
        raise ConfigError(f"backend onnxruntime runs fp32 only, not {name}; use backend torch")
    if not _onnxruntime_available():
        raise ConfigError("backend onnxruntime needs the onnxruntime package (pip install it)")
    return "onnxruntime"


#: ONNX Runtime sessions by (graph file, threads): loading a graph costs ~0.1-1 s.
_SESSIONS: dict[tuple[str, int], Any] = {}
_MAX_SESSIONS = 4


def onnx_runner(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model`` as an ONNX Runtime function: ``(N, 3, H, W)`` float32 CPU tensor in,
    ``(N, 3, sH, sW)`` float32 CPU tensor out (not clamped).

    The graph comes from :func:`esrgan_lab.inference.onnx.cached_onnx` (exported on the first
    call for these weights, then read from the cache); the session is kept for reuse and
    runs with torch's intra-op thread count, so both backends use the same cores.
    """
    from . import onnx as export

    path = export.cached_onnx(model)
    threads = torch.get_num_threads()
    key = (str(path), threads)
    session = _SESSIONS.get(key)
    if session is None:
        session = export.OnnxModel(path, threads=threads)
        while len(_SESSIONS) >= _MAX_SESSIONS:
            _SESSIONS.pop(next(iter(_SESSIONS)))
        _SESSIONS[key] = session

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(x.numpy()))

    return run


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """Check a compute precision against the device.

    Args:
        dtype: ``torch.float32``/``bfloat16``/``float16`` or ``"fp32"``/``"bf16"``/``"fp16"``.
        device: Where the model runs.

    Raises:
        ConfigError: Unknown dtype, or fp16 on the CPU (PyTorch's CPU half-precision
            convolutions are very slow or missing; use bf16 there).
    """
    if isinstance(dtype, str):
        if dtype.lower() not in _DTYPES:
            raise ConfigError(f"unknown dtype {dtype!r}; use fp32, bf16 or fp16")
        dtype = _DTYPES[dtype.lower()]
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ConfigError(f"unsupported compute dtype {dtype}; use fp32, bf16 or fp16")
    if dtype == torch.float16 and device.type == "cpu":
        raise ConfigError(
            "fp16 is not supported on the CPU (slow or missing half-precision kernels); "
            "use --dtype bf16 or fp32 on the CPU, or fp16 on a CUDA device"
        )
    return dtype


# --------------------------------------------------------------------------- model


def _is_channels_last(model: nn.Module) -> bool:
    for p in model.parameters():
        if p.ndim == 4:
            return p.is_contiguous(memory_format=torch.channels_last)
    return True


def default_channels_last(device: torch.device) -> bool:
    """Whether :func:`upscale` uses ``channels_last`` by default on ``device``.

    On CPU (oneDNN) and CUDA (cuDNN) NHWC convolutions are faster; MPS gains nothing.
    """
    return device.type in ("cpu", "cuda")


def prepare_model(
    model: nn.Module,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype = torch.float32,
    channels_last: bool | None = None,
) -> nn.Module:
    """A copy of ``model`` in eval mode on ``device`` in ``dtype`` (and memory format).

    Returns ``model`` itself when it is already in eval mode with every parameter on the
    device, in the dtype and the memory format, so a caller that upscales many images
    prepares once and :func:`upscale` does not copy again. The caller's model is never
    modified.
    """
    dev = pick_device(device)
    dt = resolve_dtype(dtype, dev)
    cl = default_channels_last(dev) if channels_last is None else channels_last
    params = list(model.parameters())
    ready = (
        not model.training
        and all(p.device == dev and p.dtype == dt for p in params)
        and (not cl or _is_channels_last(model))
    )
    if ready:
        return model
    prepared = copy.deepcopy(model).to(device=dev, dtype=dt).eval()
    if cl:
        prepared = prepared.to(memory_format=torch.channels_last)
    return prepared


# --------------------------------------------------------------------------- memory


def memory_budget(device: torch.device) -> int:
    """Bytes one tile's activations may use on ``device``.

    CUDA: :data:`MEMORY_FRACTION` of the free memory. CPU: the same fraction of the
    available RAM (psutil if installed, else ``/proc/meminfo``, else 2 GiB), at most
    :data:`CPU_MEMORY_CAP`. MPS: 2 GiB.
    """
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * MEMORY_FRACTION)
    if device.type == "cpu":
        return min(int(_available_ram() * MEMORY_FRACTION), CPU_MEMORY_CAP)
    return 2 << 30


def _available_ram() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def auto_tile(
    model: nn.Module,
    height: int,
    width: int,
    *,
    tile_pad: int = 10,
    dtype: torch.dtype = torch.float32,
    budget: int | None = None,
    device: torch.device | None = None,
) -> int | None:
    """The largest tile side whose padded tile fits the memory budget.

    Args:
        model: The model (for :func:`activation_bytes_per_pixel`).
        height, width: Input size.
        tile_pad: Context added on each side of a tile.
        dtype: Compute dtype.
        budget: Bytes available; default :func:`memory_budget` of ``device``.
        device: Used for the default budget (default CPU).

    Returns:
        ``None`` when the whole image fits (no tiling needed), else a tile side of at
        least :data:`MIN_TILE`, a multiple of :func:`size_multiple`.
    """
    if budget is None:
        budget = memory_budget(device or torch.device("cpu"))
    per_pixel = activation_bytes_per_pixel(model, dtype)
    if per_pixel * height * width <= budget:
        return None
    side = int(math.sqrt(budget / per_pixel)) - 2 * tile_pad
    mult = size_multiple(model)
    return max(MIN_TILE, side // mult * mult)


# --------------------------------------------------------------------------- tiling


@dataclass(frozen=True)
class Tile:
    """One tile in input pixels: the kept region ``[y0:y1, x0:x1]`` and the padded
    region ``[py0:py1, px0:px1]`` that is fed to the model."""

    y0: int
    y1: int
    x0: int
    x1: int
    py0: int
    py1: int
    px0: int
    px1: int


def _splits(length: int, tile: int, mult: int) -> list[tuple[int, int]]:
    """Cut ``[0, length)`` into near-equal pieces of at most ~``tile``, on ``mult`` steps."""
    count = max(1, math.ceil(length / tile))
    step = math.ceil(length / count / mult) * mult
    return [(start, min(start + step, length)) for start in range(0, length, step)]


def _window(start: int, stop: int, pad: int, size: int, length: int) -> tuple[int, int]:
    """The ``size``-long input window around ``[start, stop)``: ``pad`` pixels of context
    on each side, shifted inwards at the image borders (never shrunk)."""
    lo = min(max(start - pad, 0), length - size)
    return lo, lo + size


def tile_grid(
    height: int, width: int, tile: int | None, tile_pad: int = 10, multiple: int = 1
) -> list[Tile]:
    """The tiles :func:`upscale` runs for an input of ``height x width``.

    Every tile's model input (its padded region) has the same size: the largest kept
    region plus ``tile_pad`` on both sides, moved inwards where it would cross the image
    border, so a border tile gets more context on its inner side instead of a smaller
    input. One input shape for the whole image matters to compiled engines: OpenVINO's
    CPU plugin keeps buffers for (and re-plans) every input shape it runs. With border
    tiles cut short, ``esrgan-lab upscale`` of a 2000x2000 photo by the 23-block int8
    model peaked at 2.29 GB RSS in 130 s here; with one shape, 1.44 GB in 105 s.

    Args:
        height, width: Input size (multiples of ``multiple``).
        tile: Tile side in input pixels; ``None`` for one tile covering the image.
        tile_pad: Context on every side that is not an image border (rounded up to
            ``multiple``).
        multiple: Tile boundaries fall on multiples of this (pixel-unshuffle factor).
    """
    if tile is None or tile >= max(height, width):
        return [Tile(0, height, 0, width, 0, height, 0, width)]
    if tile < 1 or tile_pad < 0:
        raise ConfigError(f"tile must be positive and tile_pad >= 0, got {tile}, {tile_pad}")
    pad = math.ceil(tile_pad / multiple) * multiple
    rows, cols = _splits(height, tile, multiple), _splits(width, tile, multiple)
    win_h = min(max(b - a for a, b in rows) + 2 * pad, height)
    win_w = min(max(b - a for a, b in cols) + 2 * pad, width)
    tiles = []
    for y0, y1 in rows:
        py0, py1 = _window(y0, y1, pad, win_h, height)
        for x0, x1 in cols:
            px0, px1 = _window(x0, x1, pad, win_w, width)
            tiles.append(Tile(y0, y1, x0, x1, py0, py1, px0, px1))
    return tiles


def _pad_reflect(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pad ``(N, C, h, w)`` at the bottom/right to ``height x width`` by reflection.

    Reflection cannot add more than ``size - 1`` pixels at once, so it is repeated;
    a 1-pixel side is replicated.
    """
    while x.shape[-2] < height or x.shape[-1] < width:
        h, w = x.shape[-2:]
        dh, dw = min(height - h, h - 1), min(width - w, w - 1)
        if (height > h and dh == 0) or (width > w and dw == 0):
            x = F.pad(x, (0, max(width - w, 0), 0, max(height - h, 0)), mode="replicate")
        else:
            x = F.pad(x, (0, max(dw, 0), 0, max(dh, 0)), mode="reflect")
    return x


Sink = Callable[[int, int, int, int, torch.Tensor], None]


def _run_tiles(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tiles: list[Tile],
    scale: int,
    sink: Sink,
    *,
    device: torch.device,
    dtype: torch.dtype,
    channels_last: bool,
    bar: Any | None,
) -> None:
    """Run ``model`` on each tile of ``x`` (CPU, float32) and hand the kept output
    (float32, CPU, ``(N, C, h*scale, w*scale)``) to ``sink(oy0, oy1, ox0, ox1, out)``."""
    for t in tiles:
        inp = x[:, :, t.py0 : t.py1, t.px0 : t.px1].to(device=device, dtype=dtype)
        if channels_last:
            inp = inp.contiguous(memory_format=torch.channels_last)
        out = model(inp)
        del inp
        top, left = (t.y0 - t.py0) * scale, (t.x0 - t.px0) * scale
        out = out[:, :, top : top + (t.y1 - t.y0) * scale, left : left + (t.x1 - t.x0) * scale]
        out = out.to(device="cpu", dtype=torch.float32)
        sink(t.y0 * scale, t.y1 * scale, t.x0 * scale, t.x1 * scale, out)
        del out
        if bar is not None:
            bar.update(1)


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    if not isinstance(model, nn.Module):  # a compiled model has no training mode
        yield
        return
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@dataclass
class _Plan:
    model: nn.Module
    run: Callable[[torch.Tensor], torch.Tensor]
    device: torch.device
    dtype: torch.dtype
    channels_last: bool
    scale: int
    multiple: int
    tile: int | None
    tile_pad: int
    auto: bool


def _forward(
    plan: _Plan,
    passes: list[tuple[torch.Tensor, Sink]],
    progress: bool,
) -> None:
    """Run every ``(input, sink)`` pass through the tiled model, retrying on CUDA OOM."""
    _, _, height, width = passes[0][0].shape
    while True:
        tiles = tile_grid(height, width, plan.tile, plan.tile_pad, plan.multiple)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            desc = f"{len(tiles)} tile{'s' if len(tiles) > 1 else ''}" + (
                f" of {plan.tile} px" if plan.tile else " (whole image)"
            )
            bar = tqdm(total=len(tiles) * len(passes), desc=desc, unit="tile", leave=False)
        try:
            with torch.inference_mode(), _eval_mode(plan.model):
                for x, sink in passes:
                    _run_tiles(
                        plan.run,
                        x,
                        tiles,
                        plan.scale,
                        sink,
                        device=plan.device,
                        dtype=plan.dtype,
                        channels_last=plan.channels_last,
                        bar=bar,
                    )
            return
        except torch.cuda.OutOfMemoryError as exc:
            torch.cuda.empty_cache()
            current = plan.tile or max(height, width)
            if not plan.auto or current // 2 < MIN_TILE:
                raise ConfigError(
                    f"out of GPU memory at tile {plan.tile or 'none'} "
                    f"({height}x{width} input); use --tile auto or a smaller --tile"
                ) from exc
            plan.tile = max(MIN_TILE, current // 2 // plan.multiple * plan.multiple)
        finally:
            if bar is not None:
                bar.close()


def _make_plan(
    model: nn.Module,
    height: int,
    width: int,
    tile: TileSpec,
    tile_pad: int,
    dtype: str | torch.dtype,
    device: str | torch.device | None,
    channels_last: bool | None,
    backend: Backend = "torch",
) -> _Plan:
    dev = pick_device(device)
    dt = resolve_dtype(dtype, dev)
    engine = "compiled" if is_compiled(model) else resolve_backend(backend, dev, dt)
    if engine == "compiled":
        # An ONNX or OpenVINO model file (esrgan_lab.inference.engines): it runs as it was
        # compiled (its precision is its own), on the CPU.
        if dev.type != "cpu" or dt != torch.float32:
            raise ConfigError(
                "a compiled model (ONNX, OpenVINO) runs on the CPU in its own precision"
            )
        prepared, cl, run = model, False, model.forward_tensor
    elif engine == "onnxruntime":
        # The graph takes contiguous float32 NCHW on the CPU; the torch model is only
        # used for its attributes (scale, memory estimate), so it is not copied.
        prepared, cl, run = model, False, onnx_runner(model)
    else:
        cl = default_channels_last(dev) if channels_last is None else channels_last
        prepared = prepare_model(model, dev, dt, cl)
        run = prepared
    scale = model_scale(model)
    multiple = size_multiple(model)
    if tile_pad < 0:
        raise ConfigError(f"tile_pad must be >= 0, got {tile_pad}")
    auto = isinstance(tile, str)
    if auto:
        if tile != "auto":
            raise ConfigError(f"tile must be a positive integer, 'auto' or None, got {tile!r}")
        tile_px = auto_tile(prepared, height, width, tile_pad=tile_pad, dtype=dt, device=dev)
    elif tile is None or tile == 0:
        tile_px = None
    elif isinstance(tile, int) and tile > 0:
        tile_px = max(multiple, tile // multiple * multiple)
    else:
        raise ConfigError(f"tile must be a positive integer, 'auto' or None, got {tile!r}")
    return _Plan(prepared, run, dev, dt, cl, scale, multiple, tile_px, tile_pad, auto)


def _padded_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    def up(n: int) -> int:
        return math.ceil(max(n, MIN_SIZE) / multiple) * multiple

    return up(height), up(width)


# --------------------------------------------------------------------------- public API


def upscale(
    image: np.ndarray | torch.Tensor,
    model: nn.Module,
    *,
    tile: TileSpec = None,
    tile_pad: int = 10,
    dtype: str | torch.dtype = torch.float32,
    device: str | torch.device | None = None,
    alpha: AlphaMode = "model",
    progress: bool = False,
    channels_last: bool | None = None,
    backend: Backend = "torch",
) -> np.ndarray | torch.Tensor:
    """Upscale one image with ``model`` (any ``nn.Module`` with an integer ``scale``).

    Args:
        image: Either an OpenCV array as :func:`~esrgan_lab.data.images.read_image` returns
            it -- ``(H, W)`` gray, ``(H, W, 3)`` BGR or ``(H, W, 4)`` BGRA, uint8 or
            uint16 -- or an RGB float tensor ``(N, 3, H, W)`` (or ``(N, 1, H, W)`` gray)
            with values in ``[0, 1]``.
        model: E.g. :class:`~esrgan_lab.model.rrdbnet.RRDBNet`. Not modified: it is copied
            when it is not already on ``device`` / in ``dtype`` (see :func:`prepare_model`).
        tile: ``None`` (or 0) runs the whole image at once; ``N`` cuts it into tiles of
            about ``N x N`` input pixels; ``"auto"`` picks the largest tile that fits
            the memory budget (see :func:`auto_tile`).
        tile_pad: Input pixels of context around each tile (ignored when untiled).
        dtype: Compute precision: ``torch.float32`` (default), ``torch.bfloat16``
            (CPU and CUDA) or ``torch.float16`` (CUDA only), or ``"fp32"``/``"bf16"``/
            ``"fp16"``.
        device: ``None``/``"auto"`` (see :func:`pick_device`) or an explicit device.
        alpha: How a BGRA input's alpha is upscaled: ``"model"`` or ``"bicubic"``.
        progress: Show a tqdm bar over tiles.
        channels_last: Run in NHWC memory format; ``None`` picks
            :func:`default_channels_last` for the device (torch backend only).
        backend: ``"torch"`` (default) runs the module eagerly; ``"onnxruntime"``
            (CPU, fp32 only) runs its ONNX graph, exported on the first call for these
            weights into ``<weights_dir>/onnx`` and reused afterwards, also by later
            processes (:func:`esrgan_lab.inference.onnx.cached_onnx`); ``"auto"`` picks
            onnxruntime on the CPU in fp32 when it is installed (:func:`resolve_backend`).
            Tiling, padding, gray/alpha and 16-bit handling are the same for both.

    Returns:
        For an array: same layout and dtype, ``(H * scale, W * scale[, C])``. For a
        tensor: float32 on the CPU, ``(N, C, H * scale, W * scale)``, clamped to
        ``[0, 1]``.

    Raises:
        ConfigError: Bad option (e.g. fp16 on CPU), bad input shape or dtype.
    """
    if alpha not in ("model", "bicubic"):
        raise ConfigError(f"alpha must be 'model' or 'bicubic', got {alpha!r}")
    if isinstance(image, torch.Tensor):
        return _upscale_tensor(
            image, model, tile, tile_pad, dtype, device, progress, channels_last, backend
        )
    if not isinstance(image, np.ndarray):
        raise ConfigError(f"expected a numpy array or torch tensor, got {type(image).__name__}")
    return _upscale_array(
        image, model, tile, tile_pad, dtype, device, alpha, progress, channels_last, backend
    )


def _upscale_tensor(
    image: torch.Tensor,
    model: nn.Module,
    tile: TileSpec,
    tile_pad: int,
    dtype: str | torch.dtype,
    device: str | torch.device | None,
    progress: bool,
    channels_last: bool | None,
    backend: Backend,
) -> torch.Tensor:
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4 or image.shape[1] not in (1, 3) or not image.is_floating_point():
        raise ConfigError(
            f"expected a float (N, 3, H, W) or (N, 1, H, W) tensor, got {image.dtype} "
            f"{tuple(image.shape)}"
        )
    n, channels, height, width = image.shape
    plan = _make_plan(model, height, width, tile, tile_pad, dtype, device, channels_last, backend)
    s = plan.scale
    out = torch.empty((n, channels, height * s, width * s), dtype=torch.float32)
    ph, pw = _padded_size(height, width, plan.multiple)
    for i in range(n):
        x = image[i : i + 1].detach().to("cpu", torch.float32)
        if channels == 1:
            x = x.expand(1, 3, height, width)
        x = _pad_reflect(x, ph, pw)

        def sink(y0: int, y1: int, x0: int, x1: int, t: torch.Tensor, i: int = i) -> None:
            y1, x1 = min(y1, height * s), min(x1, width * s)
            if y1 <= y0 or x1 <= x0:
                return
            t = t[0, :, : y1 - y0, : x1 - x0].clamp_(0, 1)
            out[i, :, y0:y1, x0:x1] = t.mean(0, keepdim=True) if channels == 1 else t

        _forward(plan, [(x, sink)], progress)
    return out


def _upscale_array(
    image: np.ndarray,
    model: nn.Module,
    tile: TileSpec,
    tile_pad: int,
    dtype: str | torch.dtype,
    device: str | torch.device | None,
    alpha: AlphaMode,
    progress: bool,
    channels_last: bool | None,
    backend: Backend,
) -> np.ndarray:
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ConfigError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got {image.shape}")
    if image.dtype not in (np.uint8, np.uint16):
        raise ConfigError(f"expected a uint8 or uint16 image, got {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ConfigError(f"empty image {image.shape}")
    height, width = image.shape[:2]
    plan = _make_plan(model, height, width, tile, tile_pad, dtype, device, channels_last, backend)
    s = plan.scale
    out_h, out_w = height * s, width * s
    out_shape = (out_h, out_w) if image.ndim == 2 else (out_h, out_w, image.shape[2])
    out = np.empty(out_shape, dtype=image.dtype)
    ph, pw = _padded_size(height, width, plan.multiple)
    planes = array_to_tensor(image)  # (1, C, H, W): gray, RGB or RGBA

    def as_input(t: torch.Tensor) -> torch.Tensor:
        """(1, 1|3, H, W) -> padded (1, 3, H, W): a gray plane runs as three equal ones."""
        return _pad_reflect(t.expand(1, 3, height, width), ph, pw)

    def clip(y0: int, y1: int, x0: int, x1: int) -> tuple[int, int]:
        return min(y1, out_h) - y0, min(x1, out_w) - x0

    def color_sink(y0: int, y1: int, x0: int, x1: int, t: torch.Tensor) -> None:
        h, w = clip(y0, y1, x0, x1)
        if h <= 0 or w <= 0:  # a tile entirely in the bottom/right padding
            return
        t = t[0, :, :h, :w]
        if image.ndim == 2:
            out[y0 : y0 + h, x0 : x0 + w] = tensor_to_array(t.mean(0, keepdim=True), out.dtype)
        else:
            out[y0 : y0 + h, x0 : x0 + w, :3] = tensor_to_array(t, out.dtype)

    def alpha_sink(y0: int, y1: int, x0: int, x1: int, t: torch.Tensor) -> None:
        h, w = clip(y0, y1, x0, x1)
        if h <= 0 or w <= 0:
            return
        plane = t[0, :, :h, :w].mean(0, keepdim=True)
        out[y0 : y0 + h, x0 : x0 + w, 3] = tensor_to_array(plane, out.dtype)

    passes = [(as_input(planes[:, : 1 if image.ndim == 2 else 3]), color_sink)]
    if image.ndim == 3 and image.shape[2] == 4:
        plane = image[:, :, 3]
        lo, hi = plane.min(), plane.max()
        if lo == hi:  # constant alpha (e.g. fully opaque): nothing to upscale
            out[:, :, 3] = lo
        elif alpha == "bicubic":
            out[:, :, 3] = cv2.resize(plane, (out_w, out_h), interpolation=cv2.INTER_CUBIC)
        else:
            passes.append((as_input(planes[:, 3:4]), alpha_sink))
    _forward(plan, passes, progress)
    return out


def resize_output(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an upscaled array to ``height x width``: Lanczos-4 when enlarging, area
    averaging when shrinking (which avoids aliasing)."""
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    shrink = height * width < h * w
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4
    return cv2.resize(image, (width, height), interpolation=interp)
