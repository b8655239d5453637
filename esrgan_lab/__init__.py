"""esrgan-lab: ESRGAN explained, reproduced and measured.

Conventions (written down once, used everywhere):

* Tensors are RGB, float32 in [0, 1], NCHW.
* Arrays at the file boundary are as OpenCV reads them (BGR / BGRA / gray, uint8 or
  uint16); :mod:`esrgan_lab.data.images` converts them once.
* Metrics work in float64 on [0, 255], on the Y channel (MATLAB BT.601 ``rgb2ycbcr``),
  with ``crop_border = scale`` pixels shaved from each border, as BasicSR documents.
* The vendor's ``get_image_data`` / ``postprocess`` keep their own cv2/BGR contract.
* Image names: ``lq`` (low quality input), ``gt`` (ground truth), ``sr`` (output).

Public names are imported lazily, so ``import esrgan_lab as lab`` is cheap and
``lab.RRDBNet`` loads only the model module. The face exports the core only: the
notebook layer (plots, ``savefig``, widgets, the studies) is ``esrgan_lab.lab``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    # model
    "RRDBNet": "model.rrdbnet",
    "RRDB": "model.rrdbnet",
    "ResidualDenseBlock": "model.rrdbnet",
    "count_parameters": "model.rrdbnet",
    "ModelSpec": "model.spec",
    # vendor pipeline
    "get_image_data": "data.vendor",
    "postprocess": "data.vendor",
    # complexity
    "complexity_report": "model.complexity",
    "count_flops": "model.complexity",
    "parameter_table": "model.complexity",
    # training
    "PairedPatchDataset": "data.paired",
    "PairedImageSet": "data.paired",
    "StreamSampler": "data.paired",
    "sample_hr_images": "data.sources",
    "dataset_images": "data.sources",
    "load_source": "data.sources",
    "PixelLoss": "losses.pixel",
    "PerceptualLoss": "losses.perceptual",
    "GANLoss": "losses.gan",
    "VGGFeatureExtractor": "losses.backbones",
    "VGGStyleDiscriminator": "model.discriminators",
    "UNetDiscriminatorSN": "model.discriminators",
    "build_discriminator": "model.discriminators",
    "TrainConfig": "training.config",
    "load_config": "training.config",
    "Trainer": "training.trainer",
    "train": "training.trainer",
    # the former name of `train` (kept so that existing code keeps working)
    "run_training": "training.trainer",
    # errors
    "EsrganLabError": "errors",
    "ImageReadError": "errors",
    "CheckpointError": "errors",
    "DownloadError": "errors",
    "ConfigError": "errors",
    "DataError": "errors",
    # weights
    "load_checkpoint": "weights.checkpoints",
    "load_model": "weights.loading",
    "save_checkpoint": "weights.checkpoints",
    "convert_state_dict": "weights.checkpoints",
    "detect_layout": "weights.checkpoints",
    "detect_spec": "weights.checkpoints",
    "interpolate": "weights.checkpoints",
    "fetch_weights": "weights.registry",
    "REGISTRY": "weights.registry",
    # degradation and metrics
    "imresize": "data.degrade",
    "modcrop": "data.degrade",
    "bicubic_degrade": "data.degrade",
    "round_to_uint": "data.images",
    "calculate_psnr": "metrics.psnr_ssim",
    "calculate_ssim": "metrics.psnr_ssim",
    "psnr_torch": "metrics.psnr_ssim",
    "ssim_torch": "metrics.psnr_ssim",
    "MetricUnavailable": "metrics.psnr_ssim",
    "calculate_niqe": "metrics.niqe",
    "frechet_distance": "metrics.fid",
    "evaluate_model": "evaluation.evaluate",
    "evaluate_folders": "evaluation.evaluate",
    # image files and inference
    "read_image": "data.images",
    "write_image": "data.images",
    "array_to_tensor": "data.images",
    "tensor_to_array": "data.images",
    "upscale": "inference.upscale",
    "pick_device": "inference.upscale",
    "auto_tile": "inference.upscale",
    "estimate_memory": "model.memory",
    "memory_estimate": "model.memory",
    "best_available_weights": "weights.loading",
    # ONNX export and precision variants
    "export_onnx": "inference.onnx",
    "OnnxModel": "inference.onnx",
    "quantize_onnx_int8": "inference.int8",
    "quantize_openvino_int8": "inference.openvino",
    "select_weights": "weights.loading",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


#: Public names whose definition has another name in its module.
_RENAMED: dict[str, str] = {"run_training": "train"}


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'esrgan_lab' has no attribute {name!r}")
    module = importlib.import_module(f".{module_name}", __name__)
    return getattr(module, _RENAMED.get(name, name))


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
