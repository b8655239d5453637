"""The ``esrgan-lab`` command line.

Each subcommand lives in ``esrgan_lab/cli/<name>.py`` and provides
``register(subparsers) -> argparse.ArgumentParser``; the parser's ``func`` default takes
the parsed arguments and returns an exit code. Errors a user can cause are raised as
:class:`~esrgan_lab.errors.EsrganLabError` and printed here as one line.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ..errors import EsrganLabError

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS: list[str] = [
    "info",
    "interp",
    "convert",
    "weights",
    "evaluate",
    "datasets",
    "prepare_data",
    "train",
    "upscale",
    "export",
    "quantize",
]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="esrgan-lab",
        description="ESRGAN explained, reproduced and measured.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f".{name}", __package__)
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 success, 1 failure, 2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except EsrganLabError as exc:
        print(f"esrgan-lab {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("esrgan-lab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
