"""ONNX export of RRDBNet, fp16 conversion, and ONNX Runtime sessions that act like a model.

The vendor benchmark ran ESRGAN_x4 on a vendor accelerator through an exported graph with a fixed
``1 x 3 x 128 x 128`` input. Here the graph is exported with open tools and *dynamic*
batch, height and width, then checked against torch before it is kept:

* :func:`export_onnx` writes ``model.onnx`` (opset >= 17; input ``lq`` NCHW float32 RGB in
  [0, 1], output ``sr``), atomically, and returns the max abs difference from torch on
  random inputs of two different sizes (so a shape frozen into the graph is caught).
* :func:`convert_fp16` turns an fp32 ONNX model into fp16 weights and activations with
  ``onnxconverter-common``, keeping float32 inputs and outputs (``keep_io_types``), so
  callers feed the same arrays to every variant.
* :class:`OnnxModel` wraps an ``onnxruntime.InferenceSession`` (CPU, 2 intra-op threads
  by default): ``run`` maps NCHW float32 to NCHW float32, and calling it on a uint8 BGR
  image returns a uint8 BGR image, which is what
  :func:`esrgan_lab.evaluation.evaluate.evaluate_model` accepts, so every precision is scored by
  the same code.

Exporter choice: torch 2.13 defaults to the ``torch.export``-based ("dynamo") exporter.
It exports RRDBNet correctly, but for the full 23-block model it took 80-120 s on this
project's 2-core CPU machines (graph capture of ~350 convs and ~280 concats, then the
onnxscript optimiser), against ~15 s for the TorchScript exporter, and it only has op
implementations from opset 18 (an opset 17 request is down-converted). Both give graphs
that agree with torch within 1e-7 here. :data:`DEFAULT_EXPORTER` is therefore
``"torchscript"``; ``exporter="dynamo"`` (``--exporter dynamo``) is kept and tested.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..fileio import atomic_path, check_output
from ..model.rrdbnet import RRDBNet
from ..model.spec import ModelSpec

Exporter = Literal["torchscript", "dynamo"]

#: Lowest opset accepted (LeakyRelu, Resize and Conv are all stable there).
MIN_OPSET = 17
DEFAULT_OPSET = 17
DEFAULT_EXPORTER: Exporter = "torchscript"
#: Input and output names of every exported graph.
INPUT_NAME = "lq"
OUTPUT_NAME = "sr"
#: Max abs difference from torch (outputs on ~[0, 1]) an fp32 export must stay within.
FP32_TOLERANCE = 1e-4
#: Tolerance for the fp16 graph against fp32 torch. fp16 has a unit roundoff of
#: 2**-11 ~ 4.9e-4; every conv rounds its output once, and errors add up along the
#: trunk's residual path (5 convs x 3 RDBs per RRDB), so 20x the unit roundoff is a
#: bound that a correct conversion keeps and a wrong one (fp16 overflow, a dropped
#: cast) breaks by orders of magnitude.
FP16_TOLERANCE = 1e-2
#: Intra-op threads of the ONNX Runtime sessions (the project's machines have 2 cores).
DEFAULT_THREADS = 2
#: ``metadata_props`` keys written into exported graphs.
META_PREFIX = "esrgan_lab."


@dataclass
class ExportResult:
    """What :func:`export_onnx` (or :func:`convert_fp16`) wrote and how it was checked.

    Attributes:
        path: The ONNX file.
        opset: Default-domain opset of the saved graph.
        exporter: ``"torchscript"`` or ``"dynamo"``.
        precision: ``"fp32"`` or ``"fp16"``.
        max_abs_diff: Max abs difference from the torch fp32 model over the check inputs
            (``nan`` if not checked).
        check_shapes: The ``(N, C, H, W)`` inputs used for the check.
        tolerance: The bound ``max_abs_diff`` was checked against.
        seconds: Wall time of the export (and conversion).
        size_bytes: File size.
    """

    path: Path
    opset: int
    exporter: str
    precision: str
    max_abs_diff: float = float("nan")
    check_shapes: list[tuple[int, ...]] = field(default_factory=list)
    tolerance: float = FP32_TOLERANCE
    seconds: float = 0.0
    size_bytes: int = 0

    def summary(self) -> str:
        """One line for the CLI and notebooks."""
        shapes = ", ".join("x".join(map(str, s)) for s in self.check_shapes) or "none"
        return (
            f"{self.path} ({self.precision}, opset {self.opset}, {self.exporter} exporter, "
            f"{self.size_bytes / 1e6:.2f} MB, {self.seconds:.1f} s): max |onnx - torch| = "
            f"{self.max_abs_diff:.3g} on {shapes} (tolerance {self.tolerance:g})"
        )


# --------------------------------------------------------------------------- helpers


def check_output_path(
    output: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]] = ()
) -> Path:
    """Validate an ONNX output path: ``.onnx`` suffix, not one of ``inputs``.

    Raises:
        ConfigError: Wrong suffix, or the output is an input file.
    """
    out = Path(output)
    if out.suffix.lower() != ".onnx":
        raise ConfigError(f"{out}: the output must be an .onnx file")
    return check_output(out, inputs)


def model_config(model: nn.Module) -> dict[str, Any]:
    """The generator's :class:`~esrgan_lab.model.spec.ModelSpec` as recorded in the graph
    (only its ``scale``, where it has one, for a model that is not an RRDBNet)."""
    if isinstance(model, RRDBNet):
        return ModelSpec.of(model).to_config()
    scale = getattr(model, "scale", None)
    return {"scale": scale} if isinstance(scale, int) else {}


def _check_multiple(model: nn.Module) -> int:
    """Input sides must be multiples of this (pixel-unshuffle for scale 1 and 2)."""
    return int(getattr(model, "unshuffle", 1))


def default_check_shapes(model: nn.Module) -> list[tuple[int, int, int, int]]:
    """Two inputs of different batch, height and width (dynamic axes are really dynamic)."""
    m = _check_multiple(model)
    ch = int(getattr(model, "num_in_ch", 3))
    return [(1, ch, 6 * m * 4, 8 * m * 4), (2, ch, 5 * m * 4, 7 * m * 4)]


def max_abs_diff_vs_torch(
    path: str | os.PathLike[str],
    model: nn.Module,
    shapes: Sequence[tuple[int, ...]],
    seed: int = 0,
    threads: int = DEFAULT_THREADS,
) -> float:
    """Max abs difference between the ONNX graph and ``model`` (fp32, CPU) on random inputs.

    Args:
        path: ONNX file.
        model: The torch model (run on its own device; outputs are compared on the CPU).
        shapes: ``(N, C, H, W)`` inputs, uniform in [0, 1] from a seeded generator.
        seed: Generator seed.
        threads: ONNX Runtime intra-op threads.
    """
    session = OnnxModel(path, threads=threads)
    gen = torch.Generator().manual_seed(seed)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    worst = 0.0
    was_training = model.training
    model.eval()
    try:
        for shape in shapes:
            x = torch.rand(shape, generator=gen)
            with torch.no_grad():
                ref = model(x.to(device)).float().cpu().numpy()
            out = session.run(x.numpy())
            if out.shape != ref.shape:
                raise ConfigError(
                    f"{path}: output {out.shape} for input {shape}, torch gives {ref.shape}"
                )
            worst = max(worst, float(np.abs(out.astype(np.float64) - ref).max()))
    finally:
        model.train(was_training)
    return worst


def _set_metadata(proto: Any, meta: dict[str, Any]) -> None:
    existing = {p.key: p for p in proto.metadata_props}
    for key, value in meta.items():
        text = value if isinstance(value, str) else json.dumps(value)
        full = META_PREFIX + key
        if full in existing:
            existing[full].value = text
        else:
            entry = proto.metadata_props.add()
            entry.key, entry.value = full, text


def _reason(exc: BaseException) -> str:
    """The first informative line of an exception's message (for one-line errors)."""
    for line in str(exc).splitlines():
        line = line.strip()
        if line and not line.startswith(("Exception from", "Check '")):
            return line
    return type(exc).__name__


def load_proto(path: str | os.PathLike[str], *, check: bool = False) -> Any:
    """Read an ONNX file as a ``ModelProto`` (external data not loaded).

    Args:
        path: The file.
        check: Also run ``onnx.checker.check_model`` (a graph that parses but is cut short,
            e.g. a node reading an initializer that is not there, fails it).

    Raises:
        ConfigError: One line: missing, a folder, not ONNX, truncated or corrupt.
    """
    import onnx

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such ONNX file")
    try:
        proto = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError, OSError, ...
        raise ConfigError(
            f"{p}: not a readable ONNX model (truncated or corrupt: {_reason(exc)})"
        ) from None
    if check:
        try:
            onnx.checker.check_model(proto)
        except Exception as exc:
            raise ConfigError(f"{p}: not a valid ONNX model ({_reason(exc)})") from None
        if not proto.graph.node:
            raise ConfigError(f"{p}: not a valid ONNX model (its graph is empty)")
    return proto


def read_metadata(path_or_proto: str | os.PathLike[str] | Any) -> dict[str, str]:
    """``esrgan_lab.*`` metadata of an ONNX file (prefix removed).

    Raises:
        ConfigError: The file is missing, truncated or corrupt (:func:`load_proto`).
    """
    proto = path_or_proto
    if isinstance(path_or_proto, (str, os.PathLike)):
        proto = load_proto(path_or_proto)
    return {
        p.key[len(META_PREFIX) :]: p.value
        for p in proto.metadata_props
        if p.key.startswith(META_PREFIX)
    }


def write_metadata(path: str | os.PathLike[str], meta: dict[str, Any]) -> None:
    """Add or replace ``esrgan_lab.*`` metadata in the ONNX file at ``path``, in place
    (the counterpart of :func:`read_metadata`; callers write into a temporary file)."""
    import onnx

    proto = onnx.load(str(path))
    _set_metadata(proto, meta)
    onnx.save(proto, str(path))


def metadata_scale(metadata: dict[str, str]) -> int | None:
    """The upscaling factor recorded in ``esrgan_lab.config`` metadata, if any."""
    config = metadata.get("config")
    if not config:
        return None
    try:
        return int(json.loads(config)["scale"])
    except (ValueError, KeyError, TypeError):
        return None


def onnx_file_scale(path: str | os.PathLike[str]) -> int:
    """Upscaling factor of an ONNX file: from its metadata without building an inference
    session, else from a probe run (:attr:`OnnxModel.scale`)."""
    scale = metadata_scale(read_metadata(path))
    return scale if scale is not None else OnnxModel(path).scale


def graph_opset(path: str | os.PathLike[str]) -> int:
    """Default-domain opset version of an ONNX file."""
    proto = load_proto(path)
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


# --------------------------------------------------------------------------- export


def _export_raw(model: nn.Module, tmp: Path, opset: int, exporter: Exporter) -> None:
    """Write the fp32 graph of ``model`` (CPU float32 copy) to ``tmp``."""
    m = _check_multiple(model)
    ch = int(getattr(model, "num_in_ch", 3))
    example = (torch.rand(1, ch, 8 * m, 8 * m),)
    if exporter == "torchscript":
        with warnings.catch_warnings():
            # The deprecation warning of the TorchScript exporter: chosen deliberately (speed).
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                model,
                example,
                str(tmp),
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={
                    INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                    OUTPUT_NAME: {0: "batch", 2: "sr_height", 3: "sr_width"},
                },
                do_constant_folding=True,
            )
    elif exporter == "dynamo":
        # Sides are multiples of m; Dim.AUTO lets torch.export derive the relation.
        dims = {0: torch.export.Dim.AUTO, 2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                example,
                dynamo=True,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({**dims},),
                verbose=False,
            )
            program.save(str(tmp), external_data=False)
    else:
        raise ConfigError(f"unknown exporter {exporter!r} (torchscript or dynamo)")


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    exporter: Exporter = DEFAULT_EXPORTER,
    fp16: bool = False,
    check: bool = True,
    check_shapes: Sequence[tuple[int, ...]] | None = None,
    tolerance: float | None = None,
    metadata: dict[str, Any] | None = None,
    inputs: Sequence[str | os.PathLike[str]] = (),
) -> ExportResult:
    """Export ``model`` to ONNX with dynamic batch/height/width, check it, write atomically.

    Args:
        model: An RRDBNet (or any module mapping NCHW [0, 1] to NCHW); exported from a
            CPU float32 copy in eval mode, the module itself is left untouched.
        path: Output ``.onnx`` file (replaced atomically; never one of ``inputs``).
        opset: Default-domain opset (>= :data:`MIN_OPSET`).
        exporter: ``"torchscript"`` (default, fast) or ``"dynamo"`` (module docstring).
        fp16: Convert weights and activations to fp16 (float32 I/O), see :func:`convert_fp16`.
        check: Compare the graph with torch on ``check_shapes`` (default: two sizes).
        check_shapes: ``(N, C, H, W)`` check inputs.
        tolerance: Max abs difference allowed (default :data:`FP32_TOLERANCE`, or
            :data:`FP16_TOLERANCE` with ``fp16``).
        metadata: Extra ``esrgan_lab.*`` metadata (e.g. the weights name).
        inputs: Files that must not be overwritten (e.g. the weights file).

    Returns:
        An :class:`ExportResult`; the file is only kept if the check passed.

    Raises:
        ConfigError: Bad opset/exporter/path, or the check failed (the difference is named).
    """
    import onnx

    out = check_output_path(path, inputs)
    if opset < MIN_OPSET:
        raise ConfigError(f"opset {opset} is too old: use {MIN_OPSET} or later")
    start = time.perf_counter()
    cpu_model = _cpu_float_copy(model)
    with atomic_path(out, suffix=".onnx") as tmp:
        _export_raw(cpu_model, tmp, opset, exporter)
        proto = onnx.load(str(tmp))
        meta: dict[str, Any] = {"config": model_config(cpu_model), "precision": "fp32"}
        meta["exporter"] = exporter
        meta.update(metadata or {})
        if fp16:
            proto = _to_fp16(proto)
            meta["precision"] = "fp16"
        _set_metadata(proto, meta)
        onnx.save(proto, str(tmp))
        result = ExportResult(
            path=out,
            opset=graph_opset(tmp),
            exporter=exporter,
            precision="fp16" if fp16 else "fp32",
            tolerance=tolerance
            if tolerance is not None
            else (FP16_TOLERANCE if fp16 else FP32_TOLERANCE),
        )
        if check:
            shapes = list(check_shapes or default_check_shapes(cpu_model))
            result.max_abs_diff = max_abs_diff_vs_torch(tmp, cpu_model, shapes)
            result.check_shapes = [tuple(s) for s in shapes]
            if not result.max_abs_diff <= result.tolerance:
                raise ConfigError(
                    f"{out}: exported graph differs from torch by {result.max_abs_diff:.3g} "
                    f"(> {result.tolerance:g}); file not written"
                )
    result.seconds = time.perf_counter() - start
    result.size_bytes = out.stat().st_size
    return result


def _cpu_float_copy(model: nn.Module) -> nn.Module:
    import copy

    clone = copy.deepcopy(model).to("cpu", torch.float32).eval()
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone


def _to_fp16(proto: Any) -> Any:
    try:
        from onnxconverter_common import float16
    except ImportError as exc:  # declared in pyproject; a clear message if it is missing
        raise ConfigError(
            "fp16 ONNX conversion needs onnxconverter-common (pip install onnxconverter-common)"
        ) from exc
    # keep_io_types: the graph takes and returns float32, so callers feed every variant
    # the same arrays; the Cast nodes sit right at the input and output.
    with warnings.catch_warnings():
        # The converter warns once per weight below fp16's range (|w| < ~6e-8, set to
        # +-1e-7): a handful of Kaiming-init weights scaled by 0.1, harmless here.
        warnings.filterwarnings("ignore", message=".*will be truncated to.*")
        return float16.convert_float_to_float16(proto, keep_io_types=True)


def convert_fp16(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Convert an fp32 ONNX file to fp16 (float32 I/O), writing ``dst`` atomically.

    Raises:
        ConfigError: ``dst`` is ``src`` or not ``.onnx``; onnxconverter-common missing.
    """
    import onnx

    out = check_output_path(dst, [src])
    proto = _to_fp16(onnx.load(str(src)))
    _set_metadata(proto, {"precision": "fp16"})
    with atomic_path(out, suffix=".onnx") as tmp:
        onnx.save(proto, str(tmp))
    return out


# --------------------------------------------------------------------------- runtime


class OnnxModel:
    """An ONNX Runtime session that behaves like a super-resolution model.

    Args:
        path: ONNX file (from :func:`export_onnx`, :func:`convert_fp16` or
            :func:`esrgan_lab.inference.int8.quantize_onnx_int8`).
        threads: ``intra_op_num_threads`` (default 2, the project's CPU budget).
        providers: Execution providers (default ``["CPUExecutionProvider"]``).

    Attributes:
        path, session, scale (from the graph metadata, else measured on a probe input),
        metadata (``esrgan_lab.*`` keys).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        threads: int = DEFAULT_THREADS,
        providers: Sequence[str] | None = None,
    ) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"{self.path}: no such ONNX file")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers are noise here
        try:
            session = ort.InferenceSession(
                str(self.path), options, providers=list(providers or ["CPUExecutionProvider"])
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ConfigError(f"{self.path}: cannot load ONNX model ({_reason(exc)})") from None
        self._attach(session, read_metadata(self.path))

    @classmethod
    def from_session(cls, session: Any) -> OnnxModel:
        """Wrap an existing ``onnxruntime.InferenceSession`` (its options are kept)."""
        self = cls.__new__(cls)
        self.path = Path("<session>")
        meta = session.get_modelmeta().custom_metadata_map
        self._attach(
            session,
            {k[len(META_PREFIX) :]: v for k, v in meta.items() if k.startswith(META_PREFIX)},
        )
        return self

    def _attach(self, session: Any, metadata: dict[str, str]) -> None:
        self.session = session
        self.metadata = metadata
        inp = session.get_inputs()[0]
        self.input_name = inp.name
        self.input_dtype = np.float16 if "float16" in inp.type else np.float32
        self._scale: int | None = metadata_scale(metadata)

    @property
    def scale(self) -> int:
        """Upscaling factor (metadata, else output/input size of an 16x16 probe)."""
        if self._scale is None:
            probe = np.zeros((1, 3, 16, 16), np.float32)
            self._scale = int(self.run(probe).shape[-1] // 16)
        return self._scale

    def run(self, x: np.ndarray) -> np.ndarray:
        """``(N, 3, H, W)`` float32 RGB [0, 1] -> ``(N, 3, sH, sW)`` float32 (not clamped)."""
        feed = np.ascontiguousarray(x, dtype=self.input_dtype)
        out = self.session.run(None, {self.input_name: feed})[0]
        return np.asarray(out, dtype=np.float32)

    def forward_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Torch-tensor convenience: NCHW in, NCHW float32 out (on the input's device)."""
        return torch.from_numpy(self.run(x.detach().cpu().float().numpy())).to(x.device)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """uint8 BGR ``(h, w, 3)`` -> uint8 BGR ``(h*s, w*s, 3)``: the evaluation contract.

        The conversion is the one :func:`esrgan_lab.evaluation.evaluate.run_model` uses for
        torch models (:func:`~esrgan_lab.data.images.array_to_tensor` and back), so torch
        and ONNX variants are scored on equal terms.
        """
        from ..data.images import array_to_tensor, tensor_to_array

        return tensor_to_array(torch.from_numpy(self.run(array_to_tensor(image).numpy())))

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r}, precision={self.metadata.get('precision', '?')})"


# --------------------------------------------------------------------------- cache

#: Bumped when the cached graphs change meaning (it is part of every cache key).
CACHE_VERSION = 1


def model_fingerprint(model: nn.Module) -> str:
    """SHA-256 (hex) of what an export of ``model`` depends on.

    Hashes the class name, :func:`model_config`, the torch version, the opset/exporter
    and every ``state_dict`` entry (name, shape, and its bytes as CPU float32 -- the
    precision :func:`export_onnx` exports in, so the same weights in another dtype or
    memory format give the same key). About 0.1 s per 100 MB of weights.
    """
    digest = hashlib.sha256()
    head = {
        "class": type(model).__qualname__,
        "config": model_config(model),
        "torch": torch.__version__,
        "opset": DEFAULT_OPSET,
        "exporter": DEFAULT_EXPORTER,
        "version": CACHE_VERSION,
    }
    digest.update(json.dumps(head, sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach()
        if t.is_floating_point():
            t = t.to("cpu", torch.float32)
        t = t.cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(memoryview(t.numpy()).cast("B"))
    return digest.hexdigest()


def onnx_cache_dir() -> Path:
    """Folder of the cached graphs: ``<weights_dir>/onnx`` (``ESRGAN_LAB_WEIGHTS``)."""
    from ..settings import weights_dir

    return weights_dir() / "onnx"


def cached_onnx(model: nn.Module, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The fp32 ONNX graph of ``model`` (dynamic H/W), exported once and then reused.

    The file is ``<cache_dir>/<class>-<fingerprint[:24]>.onnx`` (see
    :func:`model_fingerprint`), written atomically by :func:`export_onnx` after its
    check against torch, so concurrent processes at worst export twice and a half-written
    file is never seen. Exporting costs seconds (about 15 s for the 23-block ESRGAN on 2
    cores); later calls, also in new processes, only hash the weights.

    Args:
        model: The model (any device/dtype; exported from a CPU float32 copy).
        cache_dir: Default :func:`onnx_cache_dir`.

    Raises:
        ConfigError: The export or its check failed.
    """
    key = model_fingerprint(model)
    folder = Path(cache_dir) if cache_dir is not None else onnx_cache_dir()
    path = folder / f"{type(model).__name__.lower()}-{key[:24]}.onnx"
    if not path.is_file():
        export_onnx(model, path, metadata={"cache_key": key})
    return path
