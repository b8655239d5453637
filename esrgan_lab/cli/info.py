"""``esrgan-lab info``: parameters and FLOPs of an RRDBNet configuration."""

from __future__ import annotations

import argparse
import json

from ..model.complexity import CONVENTIONS, complexity_report
from ..model.spec import ModelSpec

_LABELS = {
    "flop_counter": "torch.utils.flop_counter (2 x conv MACs)",
    "conv_macs": "conv multiply-accumulates",
    "thop": "thop 'MACs' (conv MACs + bias + LeakyReLU)",
    "vendor": "vendor script (thop MACs / 9e8 * 2)",
}


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "info",
        help="parameters and FLOPs of an RRDBNet configuration",
        description="Print parameters and FLOPs (under each counting convention) of an "
        "RRDBNet configuration for one input size.",
    )
    p.add_argument("--num-block", type=int, default=23, help="RRDB blocks (paper: nb=23)")
    p.add_argument("--num-feat", type=int, default=64, help="trunk channels (paper: nf=64)")
    p.add_argument("--num-grow-ch", type=int, default=32, help="growth channels (paper: gc=32)")
    p.add_argument("--scale", type=int, default=4, choices=(1, 2, 4, 8))
    p.add_argument("--in-ch", type=int, default=3, help="input image channels")
    p.add_argument("--out-ch", type=int, default=3, help="output image channels")
    p.add_argument(
        "--size",
        type=int,
        nargs="+",
        default=[128],
        metavar="N",
        help="input size: N (square) or H W (default 128)",
    )
    p.add_argument("--per-component", action="store_true", help="also print each component")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError

    if len(args.size) not in (1, 2) or min(args.size) < 1:
        raise ConfigError("--size takes one or two positive integers (N, or H W)")
    for name in ("num_block", "num_feat", "num_grow_ch", "in_ch", "out_ch"):
        if getattr(args, name) < 1 and not (name == "num_block" and getattr(args, name) == 0):
            raise ConfigError(f"--{name.replace('_', '-')} must be positive")
    size = args.size[0] if len(args.size) == 1 else (args.size[0], args.size[1])
    if args.scale in (1, 2) and any(s % (4 // args.scale * 1) for s in args.size):
        raise ConfigError(f"scale {args.scale} needs a size divisible by {4 // args.scale}")
    spec = ModelSpec(
        num_block=args.num_block,
        num_feat=args.num_feat,
        num_grow_ch=args.num_grow_ch,
        scale=args.scale,
        num_in_ch=args.in_ch,
        num_out_ch=args.out_ch,
    )
    rep = complexity_report(spec, size=size)
    if args.json:
        print(json.dumps(rep, indent=2))
        return 0
    shape = "x".join(str(s) for s in rep["input_shape"][1:])
    print(f"{spec.describe()} on {shape}")
    print(f"parameters: {rep['parameters']:,} ({rep['parameters'] / 1e6:.3f} M)")
    if args.per_component:
        for comp, n in rep["parameters_per_component"].items():
            if comp != "total":
                print(f"  {comp:<24} {n:>12,}")
    print("FLOPs by counting convention:")
    for conv in CONVENTIONS:
        value = rep["flops"][conv]
        giga = value if conv == "vendor" else value / 1e9
        unit = "'GFLOPs' as the vendor printed" if conv == "vendor" else "G"
        print(f"  {conv:<13} {giga:>12.3f} {unit:<28} {_LABELS[conv]}")
        if args.per_component:
            for comp, v in rep["flops_per_component"][conv].items():
                g = v if conv == "vendor" else v / 1e9
                print(f"      {comp:<24} {g:>12.3f}")
    return 0
