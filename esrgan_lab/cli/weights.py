"""``esrgan-lab weights``: list the named pretrained weights and fetch them into the cache."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..weights.registry import WeightsEntry


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "weights",
        help="list or download named pretrained weights",
        description="Named RRDBNet weights: where they come from and whether they are on disk. "
        "Downloads go to the cache folder (ESRGAN_LAB_WEIGHTS) and are checked by SHA-256.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    ls = actions.add_parser("list", help="list the known weights")
    ls.set_defaults(func=run_list)
    fetch = actions.add_parser("fetch", help="download weights into the cache")
    fetch.add_argument("name", help="registry name (see 'esrgan-lab weights list')")
    fetch.add_argument("--force", action="store_true", help="download again even if cached")
    fetch.set_defaults(func=run_fetch)
    return p


def _status(entry: WeightsEntry) -> str:
    present = entry.path.is_file()
    if entry.local:
        return "local" if present else "not shipped"
    if present:
        return "cached"
    if entry.package:
        from ..weights.loading import is_available

        return "installed" if is_available(entry.name) else "not installed"
    return "manual" if entry.url is None else "not cached"


def run_list(args: argparse.Namespace) -> int:
    from ..settings import weights_dir
    from ..weights.registry import list_entries

    entries = list_entries()
    rows = [("NAME", "SCALE", "LAYOUT", "STATUS", "DESCRIPTION")]
    rows += [
        (e.name, f"x{e.scale}" if e.scale else "?", e.layout, _status(e), e.description)
        for e in entries
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4])
    print(f"\ncache: {weights_dir()}")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from ..weights.registry import fetch_weights

    print(fetch_weights(args.name, force=args.force))
    return 0
