"""OpenVINO: an fp32 engine for the CPU, and int8 post-training quantization with NNCF.

OpenVINO compiles the exported ONNX graph with oneDNN kernels chosen for the CPU it runs on
(AVX2, AVX512, VNNI, AMX). NNCF's post-training quantization inserts int8 fake-quantize
nodes calibrated on training images; OpenVINO then runs the convolutions and the dense
concatenations in int8 where its graph transformations can fuse them, which ONNX Runtime's
QDQ graph does not do as well for RRDBNet's dense blocks (``benchmarks/bench_int8.py``
measures both). The residual additions stay fp32 (:data:`KEEP_FP32_TYPES`).

A model is an OpenVINO IR folder ``<name>/model.xml`` + ``model.bin`` (the ``.xml``
file itself is accepted too) holding the RRDBNet config and the precision in its runtime
info, so ``esrgan-lab upscale --weights`` and ``esrgan-lab evaluate --model`` take it
directly (:func:`esrgan_lab.inference.engines.load_engine`).

Both packages are optional: importing this module works without them, and using it
without them raises a one-line :class:`~esrgan_lab.errors.ConfigError`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..errors import ConfigError
from ..model.spec import ModelSpec

#: Layers left in fp32 by :func:`quantize_openvino_int8`. ``conv_up1`` reads the nearest-upsampled
#: sum of the shallow features and the trunk (Wang et al. 2018, Fig. 4), whose range is wide
#: and long-tailed; quantizing its input alone cost 0.25-0.5 dB Y-PSNR on Set5 for a trained
#: lab model, keeping it (0.8 % of the full model's FLOPs) brings int8 within 0.1 dB of fp32
#: (``benchmarks/bench_int8.py``).
KEEP_FP32: tuple[str, ...] = ("conv_up1",)

#: Operation types NNCF puts no quantizer in front of. The residual additions
#: ``x + 0.2 * f(x)`` (Wang et al. 2018, Fig. 4: three dense blocks and one RRDB skip per
#: RRDB, one skip around the trunk) carry the trunk features through the whole network;
#: quantizing their inputs re-rounds that running sum 93 times in the 23-block model and the
#: error grows with depth: -2.72 dB Y-PSNR on Set5 against fp32 for a trained 23-block
#: model, -0.03 dB with the additions in fp32 (the convolutions, nearly all the FLOPs, stay
#: int8; this project's ``configs/paper_cpu.yaml`` model, 8 calibration images, see
#: ``benchmarks/bench_int8.py``). Leaving the ``* 0.2`` multiplications in fp32 as well
#: changes nothing measurable.
KEEP_FP32_TYPES: tuple[str, ...] = ("Add",)

#: File name of the IR inside a model folder.
IR_NAME = "model.xml"
_INFO = "esrgan_lab"


@contextlib.contextmanager
def keep_sigaltstack() -> Any:
    """Give the calling thread back its signal stack after OpenVINO compiles a model.

    OpenVINO's CPU plugin (2024-2025 releases) installs an alternate signal stack of its own
    on the thread that compiles a model and puts back the one it found when that model is
    freed. Two models freed in the order they were made leave the thread pointing at the
    first model's freed stack, and the next signal with a handler (torch's DataLoader
    installs one for SIGCHLD, so any subprocess ends it) kills the process with SIGSEGV.
    Restoring the stack right after each compile keeps that chain empty. No-op off Linux.
    """
    import ctypes

    class _Stack(ctypes.Structure):
        _fields_ = [
            ("ss_sp", ctypes.c_void_p),
            ("ss_flags", ctypes.c_int),
            ("ss_size", ctypes.c_size_t),
        ]

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        sigaltstack = libc.sigaltstack
    except (OSError, AttributeError):
        yield
        return
    saved = _Stack()
    if sigaltstack(None, ctypes.byref(saved)) != 0:
        yield
        return
    try:
        yield
    finally:
        sigaltstack(ctypes.byref(saved), None)


def _ov() -> Any:
    try:
        import openvino
    except ImportError:
        raise ConfigError("OpenVINO is not installed: pip install openvino nncf") from None
    return openvino


def ir_path(path: str | os.PathLike[str]) -> Path:
    """The ``.xml`` of an IR given as the file or as its folder."""
    p = Path(path)
    if p.is_dir():
        p = p / IR_NAME
    if p.suffix.lower() != ".xml" or not p.is_file():
        raise ConfigError(f"{path}: not an OpenVINO model (a folder with {IR_NAME}, or the .xml)")
    return p


def is_ir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an OpenVINO IR (file or folder)."""
    p = Path(path)
    return (p.is_dir() and (p / IR_NAME).is_file()) or (p.suffix.lower() == ".xml" and p.is_file())


def check_ir_output(
    folder: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]] = (),
    *,
    force: bool = False,
) -> Path:
    """Check that ``folder`` may receive an IR: not an input, not inside one's folder
    being replaced, not an existing file, and replaced only with ``force``.

    Raises:
        ConfigError: One line saying why.
    """
    out = Path(folder)
    resolved = out.resolve()
    for src in inputs:
        src_path = Path(src).resolve()
        if resolved == src_path or resolved in src_path.parents:
            raise ConfigError(f"{out}: the output would replace the input {src}")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder (an IR is a folder)")
    if out.exists() and not force:
        raise ConfigError(f"{out}: exists; pass --force to replace it")
    return out


def save_ir(ov_model: Any, folder: str | os.PathLike[str], metadata: dict[str, Any]) -> Path:
    """Write ``ov_model`` as ``folder/model.xml`` (+ ``.bin``) with ``metadata`` in its
    runtime info; the folder is written under a temporary name and moved into place."""
    ov = _ov()
    folder = Path(folder)
    for key, value in metadata.items():
        text = value if isinstance(value, str) else json.dumps(value)
        ov_model.set_rt_info(text, [_INFO, key])
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        ov.save_model(ov_model, str(tmp / IR_NAME), compress_to_fp16=False)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def convert_onnx(onnx_path: str | os.PathLike[str]) -> Any:
    """Read an exported ONNX graph (:func:`esrgan_lab.inference.onnx.export_onnx`) as an
    OpenVINO model, keeping its dynamic batch, height and width."""
    return _ov().convert_model(str(onnx_path))


def quantize_openvino_int8(
    onnx_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    inputs: Sequence[np.ndarray],
    *,
    bias_correction: Literal["fast", "full", "none"] = "none",
    keep_fp32: Sequence[str] = KEEP_FP32,
    keep_fp32_types: Sequence[str] = KEEP_FP32_TYPES,
    metadata: dict[str, Any] | None = None,
    quiet: bool = False,
) -> Path:
    """Static int8 post-training quantization with NNCF, calibrated on ``inputs``.

    Weights are int8, symmetric, per output channel; activations 8-bit per tensor and
    asymmetric (NNCF's ``MIXED`` preset: LeakyReLU outputs are mostly positive, and a
    symmetric range would spend half its levels on a short negative tail), with ranges from
    NNCF's min-max statistics over the calibration inputs. No bias correction by default:
    measured on Set5 / Set14 (8 calibration images), NNCF's fast bias correction moved
    Y-PSNR by at most 0.16 dB (lab-gan-x4: +0.08 with, -0.08 without; the 23-block
    ``configs/paper_cpu.yaml`` model: -0.031 / -0.025 with, -0.029 / -0.022 without) and
    doubled the quantize time of the full model (37 s against 18 s here).

    Args:
        onnx_path: fp32 ONNX graph.
        out: Output IR folder (written atomically).
        inputs: Calibration inputs, each ``(1, 3, h, w)`` float32 RGB on [0, 1] (as
            :func:`esrgan_lab.inference.int8.preprocess` makes them).
        bias_correction: ``"none"`` (default), ``"fast"`` (NNCF's fast bias
            correction: one short run per quantized layer) or ``"full"`` (NNCF's
            layer-by-layer bias correction: 761 s for the full model here, no better).
        keep_fp32: Module names (``RRDBNet`` attribute paths) whose convolutions stay fp32.
        keep_fp32_types: OpenVINO operation types whose inputs get no quantizer
            (default :data:`KEEP_FP32_TYPES`: the residual additions).
        metadata: Extra runtime info (the RRDBNet config is copied from the ONNX file).
        quiet: Hide NNCF's progress bars.

    Returns:
        The IR folder.
    """
    try:
        import nncf
    except ImportError:
        raise ConfigError("int8 with OpenVINO needs NNCF: pip install nncf") from None
    from .onnx import read_metadata

    if not inputs:
        raise ConfigError("calibration set is empty")
    model = convert_onnx(onnx_path)
    dataset = nncf.Dataset([np.ascontiguousarray(x, dtype=np.float32) for x in inputs])
    # NNCF logs every layer it leaves alone at INFO; keep warnings and errors only.
    level = nncf.common.logging.nncf_logger.level
    nncf.set_log_level(logging.WARNING)
    try:
        with (
            contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext(),
            keep_sigaltstack(),
        ):
            quantized = nncf.quantize(
                model,
                dataset,
                preset=nncf.QuantizationPreset.MIXED,
                subset_size=len(inputs),
                fast_bias_correction=bias_correction != "full",
                advanced_parameters=nncf.AdvancedQuantizationParameters(
                    disable_bias_correction=bias_correction == "none"
                ),
                ignored_scope=nncf.IgnoredScope(
                    patterns=[f".*/{name}/.*" for name in keep_fp32],
                    types=list(keep_fp32_types),
                    validate=False,
                ),
            )
    finally:
        nncf.set_log_level(level)
    meta = {k: v for k, v in read_metadata(onnx_path).items() if k == "config"}
    meta.update(
        {
            "precision": "int8-nncf",
            "calibration_images": str(len(inputs)),
            "fp32_layers": ",".join(keep_fp32),
            "fp32_op_types": ",".join(keep_fp32_types),
            "bias_correction": bias_correction,
        }
    )
    meta.update(metadata or {})
    return save_ir(quantized, out, meta)


class OpenVinoModel:
    """A compiled OpenVINO model that behaves like a super-resolution model.

    The same contract as :class:`esrgan_lab.inference.onnx.OnnxModel`: ``run`` on NCHW
    float arrays, ``forward_tensor`` on tensors, and calling it on a uint8 BGR image (the
    evaluation contract).

    Args:
        path: IR folder or ``.xml``.
        threads: CPU inference threads (default: torch's).
        precision: ``"f32"`` pins fp32 arithmetic (OpenVINO would otherwise use bf16 on
            CPUs that have it); ``None`` keeps OpenVINO's default.

    Attributes:
        scale, num_feat, num_grow_ch, unshuffle: From the stored config (for tiling).
        metadata: The ``esrgan_lab`` runtime info.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        threads: int | None = None,
        precision: str | None = "f32",
    ) -> None:
        ov = _ov()
        self.path = ir_path(path)
        from .onnx import _reason

        core = ov.Core()
        try:
            model = core.read_model(str(self.path))
        except Exception as exc:  # OpenVINO raises RuntimeError with a multi-line trace
            raise ConfigError(
                f"{path}: not a readable OpenVINO model (empty, truncated or missing "
                f"{self.path.with_suffix('.bin').name}: {_reason(exc)})"
            ) from None
        self.metadata = {}
        if model.has_rt_info([_INFO]):
            info = model.get_rt_info()[_INFO]
            self.metadata = {str(k): v.astype(str) for k, v in info.items()}
        config: dict[str, Any] = {
            "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads()),
            "PERFORMANCE_HINT": "LATENCY",
        }
        if precision:
            config["INFERENCE_PRECISION_HINT"] = precision
        try:
            with keep_sigaltstack():
                self.compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:
            raise ConfigError(
                f"{path}: OpenVINO cannot compile this model ({_reason(exc)})"
            ) from None
        self.request = self.compiled.create_infer_request()
        #: The generator the graph was exported from (paper defaults where not recorded).
        self.spec = ModelSpec.from_config(json.loads(self.metadata.get("config", "{}")))
        self.scale, self.unshuffle = self.spec.scale, self.spec.unshuffle
        self.num_feat, self.num_grow_ch = self.spec.num_feat, self.spec.num_grow_ch

    def run(self, x: np.ndarray) -> np.ndarray:
        """``(N, 3, H, W)`` float32 RGB [0, 1] -> ``(N, 3, sH, sW)`` float32 (not clamped)."""
        result = self.request.infer([np.ascontiguousarray(x, dtype=np.float32)])
        return np.asarray(next(iter(result.values())), dtype=np.float32)

    def forward_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Torch-tensor convenience: NCHW in, NCHW float32 out (on the input's device)."""
        return torch.from_numpy(self.run(x.detach().cpu().float().numpy())).to(x.device)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """uint8 BGR ``(h, w, 3)`` -> uint8 BGR ``(h*s, w*s, 3)``: the evaluation contract."""
        from ..data.images import array_to_tensor, tensor_to_array

        return tensor_to_array(torch.from_numpy(self.run(array_to_tensor(image).numpy())))

    def __repr__(self) -> str:
        return f"OpenVinoModel({str(self.path)!r}, precision={self.metadata.get('precision', '?')})"
