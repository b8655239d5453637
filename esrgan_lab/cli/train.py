"""``esrgan-lab train``: run a training config (PSNR stage, GAN stage, or both)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train RRDBNet: PSNR-oriented and/or ESRGAN GAN stage from a YAML config",
        description="Train the ESRGAN generator from a YAML config (see configs/). Runs the "
        "config's stages in order, writing logs, checkpoints and net_g.safetensors into the "
        "output folder. Under torchrun it trains with DistributedDataParallel.",
    )
    p.add_argument("--config", required=True, type=Path, help="YAML config file")
    p.add_argument("--out", type=Path, default=None, help="output folder (default runs/<name>)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue each stage from its latest checkpoint in the output folder",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set psnr.total_iter=100 (repeatable)",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..training.config import load_config, parse_overrides
    from ..training.trainer import train

    cfg = load_config(args.config, parse_overrides(args.overrides))
    results = train(cfg, args.out, resume=args.resume)
    for stage, m in results.items():
        psnr = m.get("val_psnr_y")
        shown = f"{psnr:.2f} dB" if psnr is not None else "n/a"
        print(f"[{stage}] {m['iterations']} iterations, val Y-PSNR {shown}")
    return 0
