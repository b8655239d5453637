"""``esrgan-lab quantize``: int8 static (QDQ) quantization of an fp32 ONNX model."""

from __future__ import annotations

import argparse
from pathlib import Path

_EPILOG = """\
examples:
  esrgan-lab export --weights lab-psnr-x4 -o model.onnx
  esrgan-lab quantize model.onnx -o model_int8.onnx                   # percentile, 8 images
  esrgan-lab quantize model.onnx -o mm.onnx --method minmax --images 16 --protocol standard

Calibration images are drawn from training sets (BSD68, SunHays80 under ESRGAN_LAB_DATA;
else scikit-image samples), checked to share no picture with the evaluation sets (Set5,
Set14), and preprocessed as --protocol feeds the network (seed: whole image to 128x128).
"""


#: Mirrors of esrgan_lab.inference.int8 constants (a test keeps them equal), so that building
#: the CLI parser does not import torch.
CALIBRATION_DATASETS = ("BSD68", "SunHays80")
CALIBRATION_METHODS = ("percentile", "minmax", "entropy")
DEFAULT_PERCENTILE = 99.999


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "quantize",
        help="int8 post-training quantization of an ONNX model (ONNX Runtime, QDQ)",
        description="Quantize an fp32 ONNX graph to int8 (per-channel int8 weights, "
        "calibrated uint8/int8 activations) with ONNX Runtime static quantization.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", type=Path, help="fp32 .onnx file (from esrgan-lab export)")
    p.add_argument("-o", "--output", required=True, type=Path, help="output .onnx file")
    p.add_argument("--method", choices=CALIBRATION_METHODS, default="percentile")
    p.add_argument(
        "--percentile", type=float, default=DEFAULT_PERCENTILE, help="for --method percentile"
    )
    p.add_argument("--images", type=int, default=8, help="calibration images (default 8)")
    p.add_argument(
        "--calib-dataset",
        action="append",
        metavar="NAME",
        help="training set under ESRGAN_LAB_DATA; repeatable "
        f"(default {', '.join(CALIBRATION_DATASETS)})",
    )
    p.add_argument("--protocol", choices=("seed", "standard"), default="seed")
    p.add_argument("--activation-type", choices=("uint8", "int8"), default="uint8")
    p.add_argument("--seed", type=int, default=0, help="which calibration images are drawn")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import time

    from ..errors import ConfigError
    from ..fileio import check_output
    from ..inference.int8 import (
        assert_disjoint,
        calibration_images,
        evaluation_images,
        make_reader,
        quantize_int8,
    )
    from ..inference.onnx import OnnxModel, check_output_path

    check_output_path(args.output, [args.model])
    if not args.model.is_file():
        raise ConfigError(f"{args.model}: no such ONNX file")
    check_output(args.output, force=args.force)
    scale = OnnxModel(args.model).scale
    images = calibration_images(args.images, args.calib_dataset or CALIBRATION_DATASETS, args.seed)
    assert_disjoint(images, evaluation_images())
    reader = make_reader(images, args.protocol, scale)
    start = time.perf_counter()
    out = quantize_int8(
        args.model,
        args.output,
        reader,
        args.method,
        activation_type=args.activation_type,
        percentile=args.percentile,
    )
    names = ", ".join(f"{i.dataset}/{i.name}" for i in images)
    print(f"calibrated on {len(images)} images ({args.protocol} protocol): {names}")
    print(
        f"{out} (int8 {args.method}, {out.stat().st_size / 1e6:.2f} MB, "
        f"{time.perf_counter() - start:.1f} s)"
    )
    return 0
