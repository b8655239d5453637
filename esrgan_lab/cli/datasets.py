"""``esrgan-lab datasets``: list the known datasets, show where they come from, download them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..data.catalog import Dataset

#: Training crops the ESRGAN recipe cuts from the HR images (``prepare-data``).
_PREPARE = "--crop 480 --step 240"


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "datasets",
        help="list, describe or download known datasets",
        description="Known super-resolution datasets (DIV2K, Flickr2K, OST, Set5, Set14, "
        "BSD100, Urban100, Manga109): where they come from and whether they are under the "
        "data folder (ESRGAN_LAB_DATA or --root). Downloads resume after an interruption "
        "and are checked by size and checksum before they are unpacked.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    root_help = "data folder (default: ESRGAN_LAB_DATA)"
    ls = actions.add_parser("list", help="list the known datasets and whether they are present")
    ls.add_argument("--root", type=Path, help=root_help)
    ls.set_defaults(func=run_list)
    info = actions.add_parser("info", help="sources, checksums, citation and next step")
    info.add_argument("name", help="dataset name (see 'esrgan-lab datasets list')")
    info.add_argument("--root", type=Path, help=root_help)
    info.set_defaults(func=run_info)
    dl = actions.add_parser("download", help="download, check and unpack a dataset")
    dl.add_argument("name", help="dataset name (see 'esrgan-lab datasets list')")
    dl.add_argument("--root", type=Path, help=root_help + "; created if missing")
    dl.add_argument(
        "--with-lq", action="store_true", help="also the bicubic x4 LQ archives (DIV2K)"
    )
    dl.add_argument("--force", action="store_true", help="download and unpack again")
    dl.add_argument("--no-progress", action="store_true", help="no progress bar or step lines")
    dl.set_defaults(func=run_download)
    return p


def _root(args: argparse.Namespace) -> Path | None:
    from ..settings import data_dir

    return args.root.expanduser() if args.root is not None else data_dir()


def format_size(size: int | None) -> str:
    """``250.1 MB`` (decimal units), or ``?`` when unknown."""
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError  # pragma: no cover


def _status(entry: Dataset, root: Path | None) -> str:
    if root is not None and root.is_dir() and entry.is_present(root):
        return "present"
    return "absent"


def run_list(args: argparse.Namespace) -> int:
    from ..data.catalog import CATALOG

    root = _root(args)
    rows = [("NAME", "ROLE", "SIZE", "SOURCE", "STATUS", "DESCRIPTION")]
    rows += [
        (
            e.name,
            e.role,
            format_size(e.size()) if not e.manual else "-",
            "manual" if e.manual else "download",
            _status(e, root),
            e.description,
        )
        for e in CATALOG.values()
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths)) + "  " + row[5])
    print(f"\ndata folder: {root if root is not None else 'not set (ESRGAN_LAB_DATA or --root)'}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from ..data.catalog import CATALOG, DOWNLOADS, get_dataset

    entry = get_dataset(args.name)
    root = _root(args)
    shown = root if root is not None else Path("$ESRGAN_LAB_DATA")
    print(f"{entry.title} ({entry.name}, {entry.role}): {entry.description}")
    print(f"homepage: {entry.homepage}")
    print(f"citation: {entry.citation}")
    if entry.manual:
        print(f"manual download: {entry.instructions}")
    for a in entry.archives:
        print(f"archive: {a.url}" + (" (with --with-lq)" if a.part != "hr" else ""))
        print(f"  size: {f'{a.size} bytes' if a.size is not None else 'not published'}")
        print(f"  checksum: {a.digest or 'not published'}")
        print(f"  saved as: {shown / DOWNLOADS / a.filename} (may be deleted once unpacked)")
        print(f"  unpacks to: {shown / a.folder}")
    hr = shown / entry.hr_folder
    status = _status(entry, root)
    print(f"HR images: {hr} ({status})")
    if status == "absent" and not entry.manual:
        print(f"get it: esrgan-lab datasets download {entry.name}")
    sets = [d.name for d in CATALOG.values() if d.hr_folder.startswith(entry.hr_folder + "/")]
    if entry.role == "train":
        print(f"next: esrgan-lab prepare-data {hr} {shown / 'DF2K_OST_sub'} {_PREPARE}")
    elif sets:
        print(f"holds the sets: {', '.join(sets)} (see 'esrgan-lab datasets info NAME')")
    else:
        print(f"evaluate on it: esrgan-lab evaluate --model bicubic --dataset {hr}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from ..data.catalog import download_dataset

    parts = ("hr", "lq") if args.with_lq else ("hr",)
    path = download_dataset(
        args.name, args.root, parts=parts, force=args.force, progress=not args.no_progress
    )
    print(path)
    return 0
