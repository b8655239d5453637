"""``esrgan-lab quantize``: int8 post-training quantization of an exported fp32 ONNX model.

Two engines, chosen by the output name unless ``--engine`` is given: ``-o NAME.onnx``
writes an int8 ONNX file (ONNX Runtime's static QDQ quantization, the engine that reads
``.onnx``); any other name is an OpenVINO IR folder (NNCF quantization, the fast CPU
path). ``--engine openvino`` with an ``.onnx`` name is refused up front (an IR is a
folder), as is ``--engine onnxruntime`` with any other name. Either output is accepted by
``esrgan-lab upscale --weights`` and ``esrgan-lab evaluate --model``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

_EPILOG = """\
examples:
  esrgan-lab export --weights lab-psnr-x4 -o model.onnx
  esrgan-lab quantize model.onnx -o model_int8           # no .onnx: OpenVINO IR folder
  esrgan-lab upscale photo.png -o out/ --weights model_int8
  esrgan-lab quantize model.onnx -o qdq.onnx --method minmax   # .onnx: int8 QDQ ONNX file
  esrgan-lab upscale photo.png -o out/ --weights qdq.onnx

The output's name picks the format: NAME.onnx is an int8 ONNX file (ONNX Runtime), any
other name an OpenVINO IR folder (NAME/model.xml + model.bin).

Calibration images are drawn from training sets (BSD68, SunHays80 under ESRGAN_LAB_DATA;
else scikit-image samples), checked to share no picture with the evaluation sets (Set5,
Set14), and preprocessed as --protocol feeds the network.
"""


#: Mirrors of esrgan_lab.inference.int8 constants (a test keeps them equal), so that building
#: the CLI parser does not import torch.
CALIBRATION_DATASETS = ("BSD68", "SunHays80")
CALIBRATION_METHODS = ("percentile", "minmax", "entropy")
DEFAULT_PERCENTILE = 99.999
#: LQ calibration crop side: 64 px keeps ``quantize`` of the full model under a minute on two
#: cores with the same accuracy as 128 px crops (benchmarks/bench_int8.py measures both).
DEFAULT_PATCH = 64


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "quantize",
        help="int8 post-training quantization of an ONNX model (OpenVINO/NNCF or ONNX Runtime)",
        description="Quantize an fp32 ONNX graph to int8, calibrated on training images. "
        "The output name picks the format: -o NAME.onnx is an int8 QDQ .onnx file (ONNX "
        "Runtime), any other name an OpenVINO IR folder (NNCF; the fast path on x86 CPUs). "
        "--engine openvino with an .onnx name is refused.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", type=Path, help="fp32 .onnx file (from esrgan-lab export)")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        help="output: NAME.onnx writes an int8 QDQ .onnx file (onnxruntime); any other "
        "name an OpenVINO IR folder (openvino)",
    )
    p.add_argument(
        "--engine",
        choices=("openvino", "onnxruntime"),
        default=None,
        help="default: from the output name (.onnx -> onnxruntime, else openvino). "
        "openvino: NNCF min-max calibration, an IR folder; onnxruntime: a QDQ graph "
        "calibrated with --method",
    )
    p.add_argument(
        "--method",
        choices=CALIBRATION_METHODS,
        default="percentile",
        help="onnxruntime calibration method (openvino uses NNCF's min-max statistics)",
    )
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
    p.add_argument(
        "--protocol",
        choices=("vendor", "standard"),
        default="standard",
        help="how calibration images become inputs: standard (default: MATLAB-bicubic LQ, "
        "centre crop of --patch px) or vendor (whole image to 128x128)",
    )
    p.add_argument(
        "--patch",
        type=int,
        default=DEFAULT_PATCH,
        metavar="PX",
        help=f"LQ crop side for --protocol standard (default {DEFAULT_PATCH})",
    )
    p.add_argument("--activation-type", choices=("uint8", "int8"), default="uint8")
    p.add_argument("--seed", type=int, default=0, help="which calibration images are drawn")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.set_defaults(func=run)
    return p


def is_onnx_name(path: Path) -> bool:
    """Whether an output name asks for an ONNX file (``.onnx`` suffix, any case)."""
    return path.suffix.lower() == ".onnx"


def check_onnx_input(path: Path) -> None:
    """The input must be an ONNX file, readable and valid as one (not an IR, a checkpoint,
    a truncated or a corrupt file).

    Raises:
        ConfigError: One line naming the file and what it is instead.
    """
    from ..errors import ConfigError
    from ..inference.onnx import load_proto
    from ..inference.openvino import is_ir

    if is_ir(path):
        raise ConfigError(
            f"{path}: an OpenVINO model, already compiled; quantize takes the fp32 .onnx "
            "of esrgan-lab export"
        )
    load_proto(path, check=True)  # missing, truncated or corrupt: one line


def run(args: argparse.Namespace) -> int:
    import time

    from ..errors import ConfigError
    from ..fileio import check_output
    from ..inference.int8 import (
        assert_disjoint,
        calibration_images,
        evaluation_images,
        make_reader,
        quantize_onnx_int8,
    )
    from ..inference.onnx import check_output_path, onnx_file_scale

    engine = args.engine or ("onnxruntime" if is_onnx_name(args.output) else "openvino")
    if engine == "openvino" and is_onnx_name(args.output):
        raise ConfigError(
            f"{args.output}: --engine openvino writes an IR folder, not an .onnx file; name "
            "the output without .onnx, or leave out --engine for an int8 ONNX file"
        )
    check_onnx_input(args.model)
    if engine == "onnxruntime":
        check_output_path(args.output, [args.model])
        check_output(args.output, force=args.force)
    else:
        from ..inference.openvino import check_ir_output

        check_ir_output(args.output, [args.model], force=args.force)
    scale = onnx_file_scale(args.model)
    images = calibration_images(args.images, args.calib_dataset or CALIBRATION_DATASETS, args.seed)
    assert_disjoint(images, evaluation_images())
    reader = make_reader(images, args.protocol, scale, args.patch)
    names = ", ".join(f"{i.dataset}/{i.name}" for i in images)
    print(f"calibrated on {len(images)} images ({args.protocol} protocol): {names}")
    start = time.perf_counter()
    if engine == "openvino":
        from ..inference.openvino import quantize_openvino_int8 as ov_quantize

        calibration = {"protocol": args.protocol, "patch": args.patch, "images": names}
        out = ov_quantize(
            args.model, args.output, reader.inputs, metadata={"calibration": calibration}
        )
        size = sum(f.stat().st_size for f in out.iterdir())
        label = "int8 NNCF, OpenVINO IR"
    else:
        out = quantize_onnx_int8(
            args.model,
            args.output,
            reader,
            args.method,
            activation_type=args.activation_type,
            percentile=args.percentile,
        )
        size = out.stat().st_size
        label = f"int8 {args.method}, ONNX QDQ"
    print(f"{out} ({label}, {size / 1e6:.2f} MB, {time.perf_counter() - start:.1f} s)")
    return 0
