"""``esrgan-lab export``: write an RRDBNet as an ONNX graph, checked against torch."""

from __future__ import annotations

import argparse
from pathlib import Path

_EPILOG = """\
examples:
  esrgan-lab export --weights lab-psnr-x4 -o lab-psnr-x4.onnx
  esrgan-lab export --weights RRDB_ESRGAN_x4.pth -o esrgan.onnx --opset 18 --fp16
  esrgan-lab export --weights random -o model.onnx    # an untrained paper-size RRDBNet

The graph takes 'lq' (N x 3 x H x W, float32 RGB in [0, 1]) with dynamic N, H and W and
returns 'sr'. After writing it, the command runs torch and ONNX Runtime on two random
inputs of different sizes and prints the max abs difference (must be <= 1e-4 for fp32,
<= 1e-2 for fp16); on failure no file is kept.
"""


#: Mirrors of esrgan_lab.inference.onnx.DEFAULT_OPSET / DEFAULT_EXPORTER (a test keeps them equal),
#: so that building the CLI parser does not import torch.
DEFAULT_OPSET = 17
DEFAULT_EXPORTER = "torchscript"


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "export",
        help="export an RRDBNet to ONNX (dynamic batch/H/W), checked against torch",
        description="Export weights to an ONNX graph with dynamic batch, height and width, "
        "check it against torch with ONNX Runtime, and write it atomically.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--weights",
        required=True,
        metavar="NAME|PATH",
        help="weights name or checkpoint file; 'random' exports an untrained RRDBNet of the "
        "paper's size (only when named)",
    )
    p.add_argument("-o", "--output", required=True, type=Path, help="output .onnx file")
    p.add_argument(
        "--opset",
        type=int,
        default=DEFAULT_OPSET,
        help=f"ONNX opset (>= 17, default {DEFAULT_OPSET})",
    )
    p.add_argument("--fp16", action="store_true", help="fp16 weights/activations, float32 I/O")
    p.add_argument(
        "--exporter",
        choices=("torchscript", "dynamo"),
        default=DEFAULT_EXPORTER,
        help="torch exporter (default torchscript: ~8x faster on RRDBNet, same graph quality)",
    )
    p.add_argument("--no-check", action="store_true", help="skip the comparison with torch")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..fileio import check_output
    from ..inference.onnx import check_output_path, export_onnx
    from ..weights.loading import RANDOM, load_model, resolve_weights, select_weights

    inputs: list[Path] = []
    if args.weights == RANDOM:
        choice = select_weights(RANDOM)
        model, label = choice.model, choice.label
        print(f"exporting an untrained network: {label}")
    else:
        source = resolve_weights(args.weights)
        inputs.append(source)
        check_output_path(args.output, inputs)
        model, label = load_model(source), str(args.weights)
    check_output_path(args.output, inputs)
    check_output(args.output, force=args.force)
    result = export_onnx(
        model,
        args.output,
        opset=args.opset,
        exporter=args.exporter,
        fp16=args.fp16,
        check=not args.no_check,
        metadata={"weights": label},
        inputs=inputs,
    )
    print(result.summary())
    return 0
