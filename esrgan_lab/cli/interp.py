"""``esrgan-lab interp``: network interpolation between a PSNR and a GAN model."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..fileio import check_output


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "interp",
        help="interpolate two networks: (1 - alpha) * A + alpha * B",
        description="Network interpolation (ESRGAN Sec. 3.4): theta = (1 - alpha) * "
        "theta_A + alpha * theta_B. Pass the PSNR-oriented model as A and the GAN model as B; "
        "alpha is the weight of B (0 gives A, 1 gives B; the paper shows 0.8).",
    )
    p.add_argument("a", metavar="A", help="first network (PSNR model): file or registry name")
    p.add_argument("b", metavar="B", help="second network (GAN model): file or registry name")
    p.add_argument("--alpha", type=float, required=True, help="weight of B, in [0, 1] (e.g. 0.8)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output .safetensors/.pth")
    p.add_argument(
        "--layout",
        choices=("basicsr", "esrgan", "old"),
        default="basicsr",
        help="key layout to write (default: basicsr)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..weights.checkpoints import interpolate, load_checkpoint, save_checkpoint
    from ..weights.loading import resolve_weights

    path_a, path_b = resolve_weights(args.a), resolve_weights(args.b)
    check_output(args.output, [path_a, path_b], force=args.force)
    state = interpolate(load_checkpoint(path_a), load_checkpoint(path_b), args.alpha)
    save_checkpoint(state, args.output, layout=args.layout)
    print(f"(1 - {args.alpha:g}) * {path_a} + {args.alpha:g} * {path_b} -> {args.output}")
    return 0
