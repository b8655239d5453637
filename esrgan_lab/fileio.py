"""Writing files safely: atomic replacement and never over an input.

Every file the project writes (images, checkpoints, ONNX graphs, reports, figures,
downloads) goes through :func:`atomic_path`: the content is written to a temporary file
in the destination's folder and moved into place with ``os.replace`` only once it is
complete, so a crash or an error never leaves half a file, and an existing file is
either kept whole or replaced whole.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError


def _file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file (0666 minus umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(
    target: str | os.PathLike[str], *, suffix: str = ".tmp", make_parents: bool = True
) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; move it onto ``target`` on success.

    The parent folder is created unless ``make_parents`` is false. On an exception the
    temporary file is removed and ``target`` is left untouched. The final file gets
    ordinary permissions (``mkstemp`` alone would leave it readable by its owner only).

    Args:
        target: Final path.
        suffix: Suffix of the temporary file (for writers that look at the suffix).
        make_parents: Create missing parent folders (else a missing folder is an error).
    """
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    if make_parents:
        folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, _file_mode())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically; returns ``target`` as a Path."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``target`` atomically."""
    with atomic_path(target) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    return Path(target)


def replace_section(
    target: str | os.PathLike[str], begin: str, end: str, body: str, *, check: bool = False
) -> bool:
    """Replace the text between the markers ``begin`` and ``end`` of a text file with
    ``body`` (the README sections rendered from data), atomically.

    Args:
        target: The file, e.g. ``README.md``.
        begin, end: The marker lines, kept; ``body`` goes on the lines between them.
        body: The new section text.
        check: Only compare: write nothing.

    Returns:
        Whether the section differs from ``body`` (and, unless ``check``, was rewritten).

    Raises:
        ConfigError: A marker is missing.
    """
    path = Path(target)
    text = path.read_text()
    if begin not in text or end not in text:
        raise ConfigError(f"{path.name} has no {begin} ... {end} section")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{begin}\n{body}\n{end}{tail}"
    if new != text and not check:
        atomic_write_text(path, new)
    return new != text


def check_output(
    output: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]] = (),
    *,
    force: bool | None = None,
) -> Path:
    """Refuse an output path that is one of ``inputs`` (also through another spelling).

    Args:
        output: The file about to be written.
        inputs: Files the command reads.
        force: ``False`` also refuses an existing ``output`` ("use --force"); ``None``
            skips that check (the caller decides).

    Raises:
        ConfigError: One line naming ``output``.
    """
    out = Path(output)
    for source in inputs:
        src = Path(source)
        same = out.resolve() == src.resolve()
        if not same and out.exists() and src.exists():
            same = os.path.samefile(out, src)
        if same:
            raise ConfigError(f"{out}: output is the input file; choose another name")
    if force is False and out.exists():
        raise ConfigError(f"{out}: already exists (use --force to replace it)")
    return out
