"""``esrgan-lab convert``: rewrite a checkpoint in another key layout or file format."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..fileio import check_output


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "convert",
        help="convert a checkpoint between key layouts and .pth/.safetensors",
        description="Read an RRDBNet checkpoint in any layout (BasicSR, official ESRGAN, old "
        "architecture; wrapped or prefixed) and write it in the chosen layout. The output "
        "format follows its suffix (.pth or .safetensors).",
    )
    p.add_argument("input", help="checkpoint file or registry name")
    p.add_argument("output", type=Path, help="output file (.pth or .safetensors)")
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
    from ..weights.checkpoints import detect_layout, read_checkpoint, save_checkpoint
    from ..weights.loading import resolve_weights, stored_config

    source = resolve_weights(args.input)
    check_output(args.output, [source], force=args.force)
    state, metadata = read_checkpoint(source)
    layout = detect_layout(state)
    # Carry res_scale (not visible in the shapes) over from safetensors metadata.
    extra = {k: v for k, v in stored_config(metadata).items() if k == "res_scale"}
    save_checkpoint(state, args.output, layout=args.layout, config=extra)
    print(f"{source} ({layout}) -> {args.output} ({args.layout})")
    return 0
