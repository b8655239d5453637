"""Which engine runs a model file: PyTorch, ONNX Runtime or OpenVINO.

``esrgan-lab upscale --weights`` and ``esrgan-lab evaluate --model`` accept any of them:

* a checkpoint (any published layout) or a registry name -> a torch ``RRDBNet``;
* an ONNX file (``esrgan-lab export``, or the int8 QDQ graph ``esrgan-lab quantize``
  writes to a ``NAME.onnx`` output) -> :class:`~esrgan_lab.inference.onnx.OnnxModel`;
* an OpenVINO IR folder or ``.xml`` (``esrgan-lab quantize``'s int8 output for any other
  name) -> :class:`~esrgan_lab.inference.openvino.OpenVinoModel`.

Files are recognised by what they are, not by their names: a folder holding ``model.xml``
is an IR whatever it is called (``lab_int8.onnx/`` included), and an ONNX file is
recognised by its first bytes (:func:`is_onnx`) whatever its suffix.

The compiled models share one contract with torch modules where it matters: an integer
``scale``, ``forward_tensor`` on NCHW float tensors, and calling them on a uint8 BGR image.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def is_compiled(model: Any) -> bool:
    """Whether ``model`` is a compiled engine (ONNX Runtime, OpenVINO), not a torch module."""
    return not isinstance(model, torch.nn.Module) and hasattr(model, "forward_tensor")


#: First field tags of an ONNX ``ModelProto`` after ``ir_version`` (field 1, tag 0x08):
#: producer_name .. opset_import (fields 2-8), in the order protobuf writes them.
_ONNX_NEXT_TAGS = frozenset({0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42})


def is_onnx(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a file that starts like a serialized ONNX model.

    An ONNX file is a protobuf ``ModelProto`` whose first field is ``ir_version`` (tag
    0x08, a small varint) followed by another ``ModelProto`` field. A safetensors file
    starts with an 8-byte header length and ``{``, a ``.pth`` with a zip or pickle magic,
    so neither is mistaken for one. Only the start is read: a truncated or corrupt body
    is found by the engine that loads it (a one-line :class:`ConfigError`).
    """
    p = Path(path)
    if not p.is_file():
        return False
    try:
        with open(p, "rb") as f:
            head = f.read(16)
    except OSError:
        return False
    return (
        len(head) >= 3
        and head[0] == 0x08
        and 0 < head[1] < 0x80
        and head[2] in _ONNX_NEXT_TAGS
        and head[8:9] != b"{"
    )


def load_engine(name_or_path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Any:
    """The model ``name_or_path`` names, on the engine its format needs.

    An OpenVINO IR (folder with ``model.xml``, any name, or the ``.xml``) comes first, then
    an ONNX file (by content, or any file named ``.onnx``), then a checkpoint or registry
    name. A folder that is not an IR is a one-line :class:`~esrgan_lab.errors.ConfigError`.
    """
    from ..errors import ConfigError
    from .openvino import IR_NAME, OpenVinoModel, is_ir

    path = Path(name_or_path)
    if is_ir(path):
        return OpenVinoModel(path)
    if is_onnx(path) or (path.suffix.lower() == ".onnx" and not path.is_dir()):
        from .onnx import OnnxModel

        return OnnxModel(path, threads=torch.get_num_threads())
    if path.is_dir():
        raise ConfigError(
            f"{path}: a folder but not an OpenVINO model (no {IR_NAME} in it); a model is a "
            "checkpoint, an .onnx file or an IR folder"
        )
    from ..weights.loading import load_model

    return load_model(name_or_path, device=device)
