"""esrgan-lab: ESRGAN explained, reproduced and measured.

Conventions (written down once, used everywhere):

* Tensors are RGB, float32 in [0, 1], NCHW.
* Arrays at the file boundary are as OpenCV reads them (BGR / BGRA / gray, uint8 or
  uint16); :mod:`esrgan_lab.images` converts them once.
* Metrics work in float64 on [0, 255], on the Y channel (MATLAB BT.601 ``rgb2ycbcr``),
  with ``crop_border = scale`` pixels shaved from each border, as BasicSR documents.
* The seed's ``get_image_data`` / ``postprocess`` keep their own cv2/BGR contract.
* Image names: ``lq`` (low quality input), ``gt`` (ground truth), ``sr`` (output).

Public names are imported lazily, so ``import esrgan_lab as lab`` is cheap and
``lab.RRDBNet`` loads only the model module.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    # model
    "RRDBNet": "rrdbnet",
    "RRDB": "rrdbnet",
    "ResidualDenseBlock": "rrdbnet",
    "count_parameters": "rrdbnet",
    # seed pipeline
    "get_image_data": "seed",
    "postprocess": "seed",
    # complexity
    "complexity_report": "complexity",
    "count_flops": "complexity",
    "parameter_table": "complexity",
    # figures
    "savefig": "viz",
    # training
    "PairedPatchDataset": "data",
    "PairedImageSet": "data",
    "StreamSampler": "data",
    "sample_hr_images": "data",
    "dataset_images": "data",
    "load_source": "data",
    "PixelLoss": "losses",
    "PerceptualLoss": "losses",
    "GANLoss": "losses",
    "VGGFeatureExtractor": "vgg",
    "VGGStyleDiscriminator": "discriminators",
    "UNetDiscriminatorSN": "discriminators",
    "build_discriminator": "discriminators",
    "TrainConfig": "train_config",
    "load_config": "train_config",
    "Trainer": "train",
    "run_training": "train",
    # errors
    "EsrganLabError": "errors",
    "ImageReadError": "errors",
    "CheckpointError": "errors",
    "DownloadError": "errors",
    "ConfigError": "errors",
    "DataError": "errors",
    # weights
    "load_checkpoint": "weights",
    "load_model": "weights",
    "save_checkpoint": "weights",
    "convert_state_dict": "weights",
    "detect_layout": "weights",
    "infer_config": "weights",
    "interpolate": "weights",
    "fetch_weights": "weights",
    "REGISTRY": "weights",
    # degradation and metrics
    "imresize": "degrade",
    "modcrop": "degrade",
    "bicubic_degrade": "degrade",
    "quantize": "degrade",
    "calculate_psnr": "metrics",
    "calculate_ssim": "metrics",
    "psnr_torch": "metrics",
    "ssim_torch": "metrics",
    "MetricUnavailable": "metrics",
    "calculate_niqe": "niqe",
    "frechet_distance": "fid",
    "evaluate_model": "evaluate",
    "evaluate_folders": "evaluate",
    # image files and inference
    "read_image": "images",
    "write_image": "images",
    "array_to_tensor": "images",
    "tensor_to_array": "images",
    "upscale": "infer",
    "pick_device": "infer",
    "auto_tile": "infer",
    "estimate_memory": "infer",
    "best_available_weights": "infer",
    # ONNX export and precision variants
    "export_onnx": "export",
    "OnnxModel": "export",
    "quantize_int8": "precision",
    "select_weights": "precision",
    # interactive widgets (static figures when ESRGAN_LAB_HEADLESS=1)
    "architecture_explorer": "widgets",
    "comparison_slider": "widgets",
    "interpolation_slider": "widgets",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'esrgan_lab' has no attribute {name!r}")
    module = importlib.import_module(f".{module_name}", __name__)
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
