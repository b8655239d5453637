"""RRDBNet checkpoints: read, write, recognise and convert every published key layout.

Three key layouts of the same network are in circulation. They differ only in names, never
in tensor shapes, so conversion is a pure renaming:

==================  =========================  ==============================  =====================
part                ``"basicsr"`` (canonical)  ``"esrgan"`` (official repo)    ``"old"`` (2018 arch)
==================  =========================  ==============================  =====================
first conv          ``conv_first``             ``conv_first``                  ``model.0``
dense conv k of     ``body.i.rdbj.convk``      ``RRDB_trunk.i.RDBj.convk``     ``model.1.sub.i.RDBj.
RDB j in RRDB i                                                                convk.0``
trunk conv          ``conv_body``              ``trunk_conv``                  ``model.1.sub.<nb>``
upsampling conv k   ``conv_upk``               ``upconvk``                     ``model.<3k>``
HR conv             ``conv_hr``                ``HRconv``                      ``model.<3n+2>``
last conv           ``conv_last``              ``conv_last``                   ``model.<3n+4>``
==================  =========================  ==============================  =====================

(``nb`` = number of RRDBs, ``n`` = number of upsampling convs: 2 for x4, 3 for x8.) The old
layout is a flattened ``nn.Sequential``: ``model.1`` is the shortcut block around the trunk,
and each upsampling stage is ``[Upsample, Conv, LeakyReLU]``, hence the stride of 3.

Every function here accepts any layout and returns plain ``dict[str, Tensor]``; everything
inside the package works on the BasicSR layout, which is also the name set of
:class:`esrgan_lab.model.rrdbnet.RRDBNet`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..fileio import atomic_path
from ..model.rrdbnet import RES_SCALE, RRDBNet
from ..model.spec import ModelSpec

Layout = Literal["basicsr", "esrgan", "old"]
LAYOUTS: tuple[str, ...] = ("basicsr", "esrgan", "old")
StateDict = dict[str, torch.Tensor]

#: Wrapper keys checked in this order. ``params_ema`` comes first because the EMA weights
#: are the ones BasicSR and Real-ESRGAN evaluate and publish (Real-ESRGAN's inference
#: script makes the same choice).
WRAPPER_KEYS: tuple[str, ...] = ("params_ema", "params", "state_dict")
#: Key prefixes added by ``nn.DataParallel`` / DDP (``module.``) or GAN wrappers.
KEY_PREFIXES: tuple[str, ...] = ("module.", "generator.")
#: Metadata keys written into ``.safetensors`` files.
META_LAYOUT = "esrgan_lab.layout"
META_CONFIG = "esrgan_lab.config"
PTH_SUFFIXES: tuple[str, ...] = (".pth", ".pt", ".ckpt", ".bin")

_TENSOR_SUFFIX = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
_BASICSR_RDB = re.compile(rf"^body\.(\d+)\.rdb([123])\.(conv|bn)([1-5])\.{_TENSOR_SUFFIX}$")
_BASICSR_TOP = re.compile(
    rf"^(conv_first|conv_body|conv_up\d|conv_hr|conv_last|bn_body|bn_up\d|bn_hr)\.{_TENSOR_SUFFIX}$"
)
_ESRGAN_RDB = re.compile(r"^RRDB_trunk\.(\d+)\.RDB([123])\.conv([1-5])\.(weight|bias)$")
_ESRGAN_TOP = re.compile(r"^(conv_first|trunk_conv|upconv\d|HRconv|conv_last)\.(weight|bias)$")
_OLD_RDB = re.compile(r"^model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.(weight|bias)$")
_OLD_TRUNK = re.compile(r"^model\.1\.sub\.(\d+)\.(weight|bias)$")
_OLD_TOP = re.compile(r"^model\.(\d+)\.(weight|bias)$")


# --------------------------------------------------------------------------- unwrapping


def unwrap_state_dict(obj: Any, source: str = "checkpoint") -> StateDict:
    """Return the plain tensor dict inside a loaded checkpoint object.

    Looks inside ``params_ema`` / ``params`` / ``state_dict`` (in that order), strips
    ``module.`` and ``generator.`` prefixes and drops non-tensor entries (iteration
    counters, optimizer names, ...).

    Args:
        obj: What ``torch.load`` or ``safetensors`` returned, or a state dict.
        source: Name used in error messages (usually the file path).

    Raises:
        CheckpointError: When no tensors are found.
    """
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: expected a dict of tensors, got {type(obj).__name__}")
    # Unwrap nested containers (e.g. {"state_dict": {"params_ema": {...}}}) a few levels deep.
    for _ in range(3):
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    state: StateDict = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue  # metadata such as "iter" or "epoch": not part of the network
        name = str(key)
        stripped = True
        while stripped:
            stripped = False
            for prefix in KEY_PREFIXES:
                if name.startswith(prefix):
                    name, stripped = name[len(prefix) :], True
        state[name] = value
    if not state:
        raise CheckpointError(f"{source}: no tensors found (keys: {_preview(obj)})")
    return state


def _preview(obj: Mapping[str, Any], n: int = 5) -> str:
    keys = [str(k) for k in list(obj)[:n]]
    return ", ".join(keys) + (", ..." if len(obj) > n else "") if keys else "none"


# --------------------------------------------------------------------------- layouts


def detect_layout(state: Mapping[str, torch.Tensor]) -> Layout:
    """Which of the three RRDBNet key layouts a (unwrapped) state dict uses.

    Args:
        state: A state dict; wrappers and prefixes are removed first.

    Returns:
        ``"basicsr"``, ``"esrgan"`` or ``"old"``.

    Raises:
        CheckpointError: Naming the first key when the layout is none of them.
    """
    keys = set(unwrap_state_dict(state))
    if "model.0.weight" in keys:
        return "old"
    if "conv_first.weight" in keys:
        if "trunk_conv.weight" in keys or any(k.startswith("RRDB_trunk.") for k in keys):
            return "esrgan"
        if "conv_body.weight" in keys or any(k.startswith("body.") for k in keys):
            return "basicsr"
    first = sorted(keys)[0]
    raise CheckpointError(
        f"unknown checkpoint layout (first key {first!r}): expected RRDBNet keys in the "
        "BasicSR ('conv_first', 'body.0.rdb1.conv1'), official ESRGAN ('RRDB_trunk') "
        "or old ('model.0') layout"
    )


def _to_basicsr_key_esrgan(key: str) -> str | None:
    if m := _ESRGAN_RDB.match(key):
        return f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"
    if m := _ESRGAN_TOP.match(key):
        part = m[1]
        if part == "trunk_conv":
            part = "conv_body"
        elif part == "HRconv":
            part = "conv_hr"
        elif part.startswith("upconv"):
            part = f"conv_up{part[len('upconv') :]}"
        return f"{part}.{m[2]}"
    return None


def _old_to_basicsr(state: StateDict) -> StateDict:
    # The trunk conv sits after the RRDBs in the shortcut's sequential: index = nb.
    rdb_ids = {int(m[1]) for k in state if (m := _OLD_RDB.match(k))}
    num_block = max(rdb_ids) + 1 if rdb_ids else 0
    # Top-level indices other than 0 (conv_first) and 1 (trunk): 3, 6, ..., 3n, 3n+2, 3n+4.
    top = sorted({int(m[1]) for k in state if (m := _OLD_TOP.match(k))} - {0})
    if not top or (top[-1] - 4) % 3 or top[-1] < 10:
        raise CheckpointError(
            f"old-layout checkpoint: cannot place the upsampling/HR/last convs "
            f"(top-level indices {top})"
        )
    num_up = (top[-1] - 4) // 3
    names = {3 * k: f"conv_up{k}" for k in range(1, num_up + 1)}
    names[3 * num_up + 2] = "conv_hr"
    names[3 * num_up + 4] = "conv_last"
    names[0] = "conv_first"
    out: StateDict = {}
    for key, value in state.items():
        if m := _OLD_RDB.match(key):
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = value
        elif (m := _OLD_TRUNK.match(key)) and int(m[1]) == num_block:
            out[f"conv_body.{m[2]}"] = value
        elif (m := _OLD_TOP.match(key)) and int(m[1]) in names:
            out[f"{names[int(m[1])]}.{m[2]}"] = value
        else:
            raise CheckpointError(f"unexpected key {key!r} in old-layout checkpoint")
    return out


def _basicsr_to(state: StateDict, to: Layout) -> StateDict:
    num_up = sum(1 for k in state if re.fullmatch(r"conv_up\d\.weight", k))
    num_block = len({int(m[1]) for k in state if (m := _BASICSR_RDB.match(k))})
    out: StateDict = {}
    for key, value in state.items():
        m = _BASICSR_RDB.match(key)
        if m and m[3] == "conv":
            i, j, c, kind = m[1], m[2], m[4], m[5]
            new = (
                f"RRDB_trunk.{i}.RDB{j}.conv{c}.{kind}"
                if to == "esrgan"
                else f"model.1.sub.{i}.RDB{j}.conv{c}.0.{kind}"
            )
        elif (t := _BASICSR_TOP.match(key)) and not t[1].startswith("bn"):
            part, kind = t[1], t[2]
            if to == "esrgan":
                part = {"conv_body": "trunk_conv", "conv_hr": "HRconv"}.get(part, part)
                if part.startswith("conv_up"):
                    part = f"upconv{part[len('conv_up') :]}"
                new = f"{part}.{kind}"
            else:
                index = {
                    "conv_first": "0",
                    "conv_body": f"1.sub.{num_block}",
                    "conv_hr": str(3 * num_up + 2),
                    "conv_last": str(3 * num_up + 4),
                }.get(part)
                if index is None:  # conv_upK
                    index = str(3 * int(part[len("conv_up") :]))
                new = f"model.{index}.{kind}"
        else:
            raise CheckpointError(
                f"key {key!r} has no equivalent in the {to!r} layout "
                "(BatchNorm variants exist only in the BasicSR layout)"
            )
        out[new] = value
    return out


_SUFFIX_RANK = {"weight": 0, "bias": 1, "running_mean": 2, "running_var": 3}


def _module_order(key: str) -> tuple[int, ...]:
    """Sort key that lists BasicSR keys in RRDBNet's own ``state_dict()`` order."""
    rank = _SUFFIX_RANK.get(key.rsplit(".", 1)[-1], 4)
    if m := _BASICSR_RDB.match(key):
        return (1, int(m[1]), int(m[2]), m[3] == "bn", int(m[4]), rank)
    part = key.split(".", 1)[0]
    if part.startswith(("conv_up", "bn_up")):
        return (3, int(part[-1]), part.startswith("bn"), 0, 0, rank)
    group = {"conv_first": 0, "conv_body": 2, "bn_body": 2, "conv_hr": 4, "bn_hr": 4}
    return (group.get(part, 5), part.startswith("bn"), 0, 0, 0, rank)


def convert_state_dict(state: Mapping[str, torch.Tensor], to: Layout = "basicsr") -> StateDict:
    """Rename the keys of an RRDBNet state dict into another layout (tensors are shared).

    Args:
        state: State dict in any layout, possibly wrapped (``params_ema``, ...) or prefixed.
        to: Target layout: ``"basicsr"`` (this package, BasicSR, Real-ESRGAN), ``"esrgan"``
            (official ESRGAN repo, ``RRDB_ESRGAN_x4.pth``) or ``"old"`` (2018 architecture).

    Returns:
        A new dict with the same tensors under the target names, in the order of
        ``RRDBNet.state_dict()``.

    Raises:
        CheckpointError: Unknown layout, or a key with no counterpart (the first is named).
        ConfigError: ``to`` is not a layout name.
    """
    if to not in LAYOUTS:
        raise ConfigError(f"unknown layout {to!r}: choose one of {', '.join(LAYOUTS)}")
    flat = unwrap_state_dict(state)
    layout = detect_layout(flat)
    if layout == "basicsr":
        for key in flat:
            if not (_BASICSR_RDB.match(key) or _BASICSR_TOP.match(key)):
                raise CheckpointError(f"unexpected key {key!r} in BasicSR-layout checkpoint")
        basicsr = flat
    elif layout == "esrgan":
        basicsr = {}
        for key, value in flat.items():
            new = _to_basicsr_key_esrgan(key)
            if new is None:
                raise CheckpointError(f"unexpected key {key!r} in ESRGAN-layout checkpoint")
            basicsr[new] = value
    else:
        basicsr = _old_to_basicsr(flat)
    # Files may store keys in any order (safetensors sorts them): restore the model's order.
    basicsr = {k: basicsr[k] for k in sorted(basicsr, key=_module_order)}
    return basicsr if to == "basicsr" else _basicsr_to(basicsr, to)


# --------------------------------------------------------------------------- configuration


def detect_spec(
    state: Mapping[str, torch.Tensor], hint: Mapping[str, Any] | None = None
) -> ModelSpec:
    """The :class:`~esrgan_lab.model.spec.ModelSpec` of an RRDBNet checkpoint.

    ``num_feat`` is the out-channels of ``conv_first``, ``num_grow_ch`` the out-channels of
    ``body.0.rdb1.conv1``, ``num_block`` the number of RRDBs and ``num_out_ch`` the
    out-channels of ``conv_last``. The scale comes from the upsampler: three upsampling convs
    mean x8; with two, the input was pixel-unshuffled (scale 1 or 2) when the in-channels of
    ``conv_first`` are 16x or 4x ``num_out_ch``, and x4 otherwise.

    Note:
        Shapes alone cannot separate "x4 with ``c`` input channels" from "x2 with ``c / 4``"
        or "x1 with ``c / 16``": the rule above assumes that scale-1/2 models have as many
        input as output channels (true of every published one). A ``hint`` (the config that
        :func:`save_checkpoint` stores in ``.safetensors`` metadata) settles the other cases.

    Args:
        state: State dict in any layout.
        hint: A previously stored config; its ``scale`` and ``num_in_ch`` are used when they
            agree with the shapes, its ``res_scale`` (beta, which leaves no trace in the
            shapes) always; without one beta is the paper's 0.2.

    Returns:
        The spec; ``init_scale`` is the default (it says nothing about trained weights).

    Raises:
        CheckpointError: Missing essential keys or an unsupported number of upsampling convs.
    """
    sd = convert_state_dict(state, "basicsr")
    for key in ("conv_first.weight", "conv_body.weight", "conv_hr.weight", "conv_last.weight"):
        if key not in sd:
            raise CheckpointError(f"missing key {key!r}: not a complete RRDBNet checkpoint")
        if sd[key].ndim != 4:
            shape = tuple(sd[key].shape)
            raise CheckpointError(f"key {key!r}: expected a 4-D conv weight, got shape {shape}")
    num_feat, first_in = sd["conv_first.weight"].shape[:2]
    num_out_ch = sd["conv_last.weight"].shape[0]
    blocks = sorted({int(m[1]) for k in sd if (m := _BASICSR_RDB.match(k))})
    if blocks != list(range(len(blocks))):
        missing = sorted(set(range(max(blocks) + 1)) - set(blocks))[0]
        raise CheckpointError(
            f"missing key 'body.{missing}.rdb1.conv1.weight': the RRDB indices have a gap"
        )
    num_grow_ch = sd["body.0.rdb1.conv1.weight"].shape[0] if blocks else 32
    ups = sorted(int(m[1]) for k in sd if (m := re.fullmatch(r"conv_up(\d)\.weight", k)))
    if ups not in ([1, 2], [1, 2, 3]):
        raise CheckpointError(
            f"unsupported upsampler: upsampling convs {[f'conv_up{u}' for u in ups]} "
            "(RRDBNet supports 2 for scales 1/2/4 and 3 for scale 8)"
        )
    if len(ups) == 3:
        scale, num_in_ch = 8, first_in
    elif first_in == 16 * num_out_ch:
        scale, num_in_ch = 1, num_out_ch  # pixel_unshuffle(4): 16x the channels
    elif first_in == 4 * num_out_ch:
        scale, num_in_ch = 2, num_out_ch  # pixel_unshuffle(2): 4x the channels
    else:
        scale, num_in_ch = 4, first_in
    if hint and len(ups) == 2:
        h_scale, h_in = hint.get("scale"), hint.get("num_in_ch")
        if h_scale in (1, 2, 4) and isinstance(h_in, int):
            if h_in * {1: 16, 2: 4, 4: 1}[h_scale] == first_in:
                scale, num_in_ch = h_scale, h_in
    norm = None
    if "bn_body.weight" in sd or "body.0.rdb1.bn1.weight" in sd:
        norm = "batch_hr" if "bn_hr.weight" in sd else "batch"
    beta = (hint or {}).get("res_scale")
    return ModelSpec(
        num_in_ch=int(num_in_ch),
        num_out_ch=int(num_out_ch),
        scale=scale,
        num_feat=int(num_feat),
        num_block=len(blocks),
        num_grow_ch=int(num_grow_ch),
        norm=norm,
        res_scale=float(beta) if isinstance(beta, (int, float)) else RES_SCALE,
    )


# --------------------------------------------------------------------------- files


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[StateDict, dict[str, str]]:
    """Read a checkpoint file without converting it: ``(unwrapped state, metadata)``.

    ``.pth``/``.pt``/``.ckpt``/``.bin`` go through ``torch.load(weights_only=True)``, which
    never runs pickled code; ``.safetensors`` through the safetensors package (its string
    metadata is returned; ``.pth`` files have none).

    Raises:
        CheckpointError: Missing, unreadable, or not a weights-only file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = dict(f.metadata() or {})
                obj = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(
                f"{path}: not a readable safetensors file ({_one_line(exc)})"
            ) from exc
        return unwrap_state_dict(obj, str(path)), metadata
    if suffix in PTH_SUFFIXES:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
            raise CheckpointError(
                f"{path}: cannot load with torch.load(weights_only=True): corrupt, or it "
                f"pickles objects other than tensors ({_one_line(exc)})"
            ) from exc
        return unwrap_state_dict(obj, str(path)), {}
    raise CheckpointError(
        f"{path}: unknown checkpoint format {suffix!r} (expected .pth, .pt or .safetensors)"
    )


def _one_line(exc: BaseException) -> str:
    """First sentence of an exception message, without ANSI colour codes."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
    first = text[0].split(". ")[0].rstrip(". ") if text else ""
    return first[:200] or type(exc).__name__


def load_checkpoint(path: str | os.PathLike[str]) -> StateDict:
    """Load any RRDBNet checkpoint file as a plain BasicSR-layout state dict.

    Args:
        path: ``.pth`` / ``.pt`` (loaded with ``weights_only=True``) or ``.safetensors``.

    Returns:
        ``{key: tensor}`` with :class:`~esrgan_lab.model.rrdbnet.RRDBNet` key names, on the CPU.

    Raises:
        CheckpointError: Bad file, unknown layout or unexpected key (named in the message).
    """
    state, _ = read_checkpoint(path)
    try:
        return convert_state_dict(state, "basicsr")
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None


def save_checkpoint(
    state_or_model: Mapping[str, torch.Tensor] | nn.Module,
    path: str | os.PathLike[str],
    layout: Layout = "basicsr",
    config: Mapping[str, Any] | None = None,
) -> Path:
    """Write an RRDBNet state dict atomically as ``.pth`` or ``.safetensors``.

    ``.pth`` files hold a plain ``{key: tensor}`` dict (loadable with ``weights_only=True``
    by any tool); ``.safetensors`` files also carry the layout and the inferred RRDBNet
    config as JSON metadata. The file is written to a temporary name in the same folder and
    moved into place, so a crash never leaves half a checkpoint.

    Args:
        state_or_model: A model or a state dict in any layout.
        path: Destination; the suffix picks the format.
        layout: Key layout to write.
        config: Extra RRDBNet arguments to record in ``.safetensors`` metadata, for those
            the shapes cannot tell (``res_scale``); taken from the model when one is given.

    Returns:
        The destination path.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix != ".safetensors" and suffix not in PTH_SUFFIXES:
        raise CheckpointError(
            f"{path}: unknown checkpoint format {suffix!r} (use .pth or .safetensors)"
        )
    model = state_or_model if isinstance(state_or_model, RRDBNet) else None
    # A built model knows its true spec, which shapes alone may not settle (see
    # detect_spec) and which includes res_scale (beta), invisible in the shapes.
    known = ModelSpec.of(model).to_config() if model is not None else {}
    extra = dict(config or {})
    if (known | extra).get("arch", "rrdbnet") != "rrdbnet":
        # Another trunk (the architecture study's residual blocks): no RRDBNet layout to
        # convert, the keys are stored as they are, with the config that rebuilds it.
        return _save_native(unwrap_state_dict(state_or_model), path, known | extra)
    basicsr = convert_state_dict(unwrap_state_dict(state_or_model), "basicsr")
    stored = (known or detect_spec(basicsr).to_config()) | extra
    out = convert_state_dict(basicsr, layout)
    # Own, contiguous CPU copies: safetensors refuses shared or strided storage.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in out.items()}
    with atomic_path(path) as tmp:
        if suffix == ".safetensors":
            from safetensors.torch import save_file

            metadata = {"format": "pt", META_LAYOUT: layout, META_CONFIG: json.dumps(stored)}
            save_file(tensors, str(tmp), metadata=metadata)
        else:
            torch.save(tensors, tmp)
    return path


def _save_native(state: StateDict, path: Path, config: dict[str, Any]) -> Path:
    if path.suffix.lower() != ".safetensors":
        raise CheckpointError(f"{path}: a {config['arch']} model is saved as .safetensors")
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    metadata = {"format": "pt", META_LAYOUT: "native", META_CONFIG: json.dumps(config)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


# --------------------------------------------------------------------------- interpolation


def interpolate(
    state_a: Mapping[str, torch.Tensor],
    state_b: Mapping[str, torch.Tensor],
    alpha: float,
) -> StateDict:
    """Network interpolation: ``(1 - alpha) * a + alpha * b`` for every tensor.

    ESRGAN (Sec. 3.4, Eq. 7) blends a PSNR-oriented generator and its GAN fine-tuned
    version, ``theta_interp = (1 - alpha) * theta_PSNR + alpha * theta_GAN``, to trade
    fidelity for perceptual quality without retraining; the official ``net_interp.py``
    does the same. So pass the PSNR model as ``state_a`` and the GAN model as ``state_b``:
    **alpha is the weight of b** (``alpha=0`` returns ``a``, ``alpha=1`` returns ``b``; the
    paper's figures use ``alpha=0.8``).

    Both dicts may use any (possibly different) layout; the result uses the layout of ``a``.
    Integer tensors (BatchNorm ``num_batches_tracked``) are taken from ``a``.

    Args:
        state_a: The PSNR-oriented weights (``theta_PSNR``).
        state_b: The GAN weights (``theta_GAN``), same architecture.
        alpha: Interpolation weight of ``b`` in ``[0, 1]``.

    Returns:
        The interpolated state dict (new tensors, dtype of ``a``).

    Raises:
        ConfigError: ``alpha`` outside ``[0, 1]``.
        CheckpointError: The two dicts differ in keys or shapes (the first key is named).
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:  # also rejects NaN
        raise ConfigError(f"alpha must be in [0, 1] (weight of the second network), got {alpha}")
    a = unwrap_state_dict(state_a)
    layout_a = detect_layout(a)
    b = convert_state_dict(state_b, layout_a)
    for key in a:
        if key not in b:
            raise CheckpointError(f"key {key!r} of the first network is missing in the second")
    for key in b:
        if key not in a:
            raise CheckpointError(f"key {key!r} of the second network is missing in the first")
    out: StateDict = {}
    for key, ta in a.items():
        tb = b[key]
        if ta.shape != tb.shape:
            raise CheckpointError(
                f"shape mismatch at key {key!r}: {tuple(ta.shape)} vs {tuple(tb.shape)}"
            )
        if not ta.is_floating_point():
            out[key] = ta.clone()
            continue
        out[key] = ((1.0 - alpha) * ta.float() + alpha * tb.float()).to(ta.dtype)
    return out
