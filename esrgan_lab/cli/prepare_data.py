"""``esrgan-lab prepare-data``: cut training images into sub-images, as BasicSR does.

The command line of :mod:`esrgan_lab.data.prepare`: BasicSR's
``extract_subimages.py`` (HR 480x480 sub-images, step 240) with an optional paired LQ
folder, parallel, resumable, and the meta file of its ``generate_meta_info`` script.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..data.prepare import PrepareSummary

_EPILOG = """\
examples:
  esrgan-lab prepare-data DIV2K_train_HR DIV2K_train_HR_sub
  esrgan-lab prepare-data DIV2K_train_HR DIV2K_train_HR_sub \\
      --lq-src DIV2K_train_LR_bicubic/X4 --lq-out DIV2K_train_LR_bicubic_X4_sub --scale 4

Sub-images are named <stem>_s<index:03d><ext> (0001_s001.png, ...); LQ sub-images take the
name of their HR sub-image, so pairs match by name. LQ images may be named like the HR
image or <stem>x<scale> (0001x4.png). An interrupted run is resumed by running the same
command again: finished sub-images are kept, temporary files removed.
"""

#: Mirrors of esrgan_lab.data.prepare defaults (a test keeps them equal), so that building
#: the CLI parser does not import OpenCV.
DEFAULT_CROP = 480
DEFAULT_STEP = 240
DEFAULT_THRESH = 0
DEFAULT_COMPRESSION = 3
DEFAULT_SCALE = 4
META_NAME = "meta_info.txt"


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "prepare-data",
        help="cut HR (and LQ) training images into sub-images (BasicSR's extract_subimages)",
        description="Cut every image of SRC into overlapping CROPxCROP sub-images in OUT, "
        "with BasicSR's positions, names and PNG settings (the preparation of DIV2K, "
        "Flickr2K and OST for training, paper Sec. 4.1), and write BasicSR's meta file.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", type=Path, help="folder of HR images (or one image)")
    p.add_argument("out", type=Path, help="output folder (created; not inside SRC)")
    p.add_argument(
        "--crop", type=int, default=DEFAULT_CROP, help=f"sub-image side (default {DEFAULT_CROP})"
    )
    p.add_argument(
        "--step",
        type=int,
        default=DEFAULT_STEP,
        help=f"distance between sub-images (default {DEFAULT_STEP})",
    )
    p.add_argument(
        "--thresh-size",
        type=int,
        default=DEFAULT_THRESH,
        help="uncovered edge pixels tolerated without one more sub-image flush with the edge "
        f"(default {DEFAULT_THRESH})",
    )
    p.add_argument(
        "--workers", type=int, default=None, help="processes (default min(4, CPUs); 1: no pool)"
    )
    p.add_argument(
        "--compression",
        type=int,
        default=DEFAULT_COMPRESSION,
        help=f"PNG compression level 0-9 (default {DEFAULT_COMPRESSION})",
    )
    p.add_argument("--lq-src", type=Path, metavar="DIR", help="folder of the LQ images")
    p.add_argument("--lq-out", type=Path, metavar="DIR", help="output folder of LQ sub-images")
    p.add_argument(
        "--scale",
        type=int,
        default=None,
        help=f"HR size / LQ size with --lq-src (default {DEFAULT_SCALE}); crop, step and "
        "thresh size must be multiples of it",
    )
    p.add_argument(
        "--meta",
        default=META_NAME,
        metavar="NAME",
        help=f"meta file written in OUT, BasicSR's format (default {META_NAME}; '': none)",
    )
    p.set_defaults(func=run)
    return p


def _report(summary: PrepareSummary, args: argparse.Namespace) -> None:
    print(
        f"{summary.images} images -> {summary.subimages} sub-images in {args.out} "
        f"({summary.written} written, {summary.existing} already there)"
    )
    if args.lq_src is not None:
        print(
            f"LQ: {summary.lq_written + summary.lq_existing} sub-images in {args.lq_out} "
            f"({summary.lq_written} written, {summary.lq_existing} already there)"
        )
    if summary.small:
        plural = "" if summary.small == 1 else "s"
        print(f"skipped {summary.small} image{plural} smaller than {args.crop}x{args.crop}")
    if summary.meta is not None:
        print(f"meta: {summary.meta}")


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError

    options = dict(
        crop=args.crop,
        step=args.step,
        thresh_size=args.thresh_size,
        compression=args.compression,
        workers=args.workers,
        meta=args.meta or None,
    )
    if (args.lq_src is None) != (args.lq_out is None):
        raise ConfigError("--lq-src and --lq-out go together")
    if args.lq_src is None and args.scale is not None:
        raise ConfigError("--scale applies only with --lq-src")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")

    from ..data.prepare import extract_paired_subimages, extract_subimages

    with _sigterm_as_interrupt():
        if args.lq_src is None:
            summary = extract_subimages(args.src, args.out, **options)
        else:
            scale = DEFAULT_SCALE if args.scale is None else args.scale
            summary = extract_paired_subimages(
                args.src, args.out, args.lq_src, args.lq_out, scale=scale, **options
            )
    _report(summary, args)
    return 0


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill PID``, a scheduler's stop) cleans up like Ctrl-C: the workers are
    ended and no temporary file stays. SIGKILL cannot be caught; the workers then die
    with this process (:class:`esrgan_lab.procs.DieWithParent`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
