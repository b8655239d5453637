"""``esrgan-lab evaluate``: PSNR / SSIM / NIQE of a model or of existing outputs."""

from __future__ import annotations

import argparse

_EPILOG = """\
examples:
  esrgan-lab evaluate --model bicubic --dataset Set5 --dataset Set14
  esrgan-lab evaluate --model lab-gan-x4 --dataset path/to/HR --json scores.json
  esrgan-lab evaluate --sr results/ --gt Set14/          # pair by file stem
  esrgan-lab evaluate --model bicubic --dataset skimage --protocol vendor

protocols:
  standard  GT modcrop; LQ = MATLAB bicubic; PSNR/SSIM on Y, crop = scale (papers)
  vendor    LQ = whole image resized to 128x128 (INTER_AREA); reference = GT resized
            to the output size; PSNR/SSIM on RGB, no crop (the vendor benchmark)
"""


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "evaluate",
        help="score a model (or SR outputs) with PSNR, SSIM and NIQE",
        description="Score a model or baseline on HR datasets, or a folder of existing "
        "outputs against ground truth. Prints a per-image table and the means.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model",
        metavar="NAME|PATH",
        help="weights name or checkpoint, .onnx file or OpenVINO IR folder (esrgan-lab "
        "quantize), or a baseline: bicubic, nearest, lanczos",
    )
    p.add_argument(
        "--dataset",
        action="append",
        metavar="DIR|NAME",
        help="HR folder, a name under ESRGAN_LAB_DATA (Set5, Set14, ...) or 'skimage'; repeatable",
    )
    p.add_argument("--sr", metavar="PATH", help="SR image or folder to score (with --gt)")
    p.add_argument("--gt", metavar="PATH", help="ground-truth image or folder (with --sr)")
    p.add_argument("--scale", type=int, default=4, help="upscaling factor (default 4)")
    p.add_argument("--protocol", choices=("standard", "vendor"), default="standard")
    p.add_argument("--json", metavar="OUT", help="also write the report as JSON")
    p.add_argument("--csv", metavar="OUT", help="also write per-image scores as CSV")
    p.add_argument(
        "--niqe",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compute NIQE (default on; 'n/a' when the pristine model is missing)",
    )
    p.add_argument("--device", default="cpu", help="torch device for networks (default cpu)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..evaluation.evaluate import evaluate_folders, evaluate_model
    from ..metrics.scoring import write_csv, write_json

    folders = args.sr is not None or args.gt is not None
    if folders and (args.model is not None or args.dataset):
        raise ConfigError("give either --model with --dataset, or --sr with --gt, not both")
    if folders and (args.sr is None or args.gt is None):
        raise ConfigError("--sr and --gt go together")
    if not folders and (args.model is None or not args.dataset):
        raise ConfigError("give --model and at least one --dataset (or --sr and --gt)")
    if folders and args.protocol != "standard":
        raise ConfigError("--protocol vendor needs --model (it defines its own LQ)")
    progress = not args.no_progress
    if folders:
        report = evaluate_folders(
            args.sr, args.gt, scale=args.scale, niqe=args.niqe, progress=progress
        )
    else:
        report = evaluate_model(
            args.model,
            args.dataset,
            scale=args.scale,
            protocol=args.protocol,
            niqe=args.niqe,
            progress=progress,
            device=args.device,
        )
    print(report.format_table())
    if args.json:
        print(f"wrote {write_json(report, args.json)}")
    if args.csv:
        print(f"wrote {write_csv(report, args.csv)}")
    return 0
