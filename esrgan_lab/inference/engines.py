"""Which engine runs a model file: PyTorch, ONNX Runtime or OpenVINO.

``esrgan-lab upscale --weights`` and ``esrgan-lab evaluate --model`` accept any of them:

* a checkpoint (any published layout) or a registry name -> a torch ``RRDBNet``;
* an ``.onnx`` file (``esrgan-lab export``, or the int8 QDQ graph of
  ``esrgan-lab quantize --engine onnxruntime``) -> :class:`~esrgan_lab.inference.onnx.OnnxModel`;
* an OpenVINO IR folder or ``.xml`` (``esrgan-lab quantize``'s default int8 output)
  -> :class:`~esrgan_lab.inference.openvino.OpenVinoModel`.

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


def load(name_or_path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Any:
    """The model ``name_or_path`` names, on the engine its format needs."""
    from .openvino import OpenVinoModel, is_ir

    path = Path(name_or_path)
    if path.suffix.lower() == ".onnx":
        from .onnx import OnnxModel

        return OnnxModel(path, threads=torch.get_num_threads())
    if is_ir(path):
        return OpenVinoModel(path)
    from ..weights.loading import load_model

    return load_model(name_or_path, device=device)
