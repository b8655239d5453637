"""Fetching and hashing files: the one downloader and the one file hasher.

:func:`download` is a small ``urllib`` + ``tqdm`` loop rather than ``pooch.retrieve``:
BasicSR publishes only an 8-hex SHA-256 *prefix* in its file names (``-ff704c30``), which
pooch cannot check, and hashing while streaming lets a bad file be refused before it ever
has its final name. Bytes go to a part file next to the destination and are moved into
place with ``os.replace`` only after the size and checksum pass.

With ``resume`` (multi-GB dataset archives) the part file is ``<dest>.part``: kept when a
transfer fails and continued with an HTTP ``Range`` request on the next call. Without it
(weights) the part file has a unique name and never outlives the call.

:func:`file_digest` is the one file hasher. Every subpackage that downloads (weights,
data, losses, metrics) imports this module; it imports nothing of theirs.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import string
import sys
import urllib.error
import urllib.request
import warnings
from pathlib import Path

from .errors import ConfigError, DownloadError
from .fileio import atomic_path

_CHUNK = 1 << 16
#: Hex length of each digest algorithm :func:`download` checks (a SHA-256 may be a prefix
#: of at least :data:`MIN_PREFIX` digits, as BasicSR and torchvision put in file names).
DIGEST_LENGTHS: dict[str, int] = {"md5": 32, "sha256": 64}
MIN_PREFIX = 8


def parse_digest(digest: str) -> tuple[str, str]:
    """Split a checksum ``"md5:<32 hex>"`` or ``"sha256:<hex>"`` into its parts.

    A ``sha256`` may be a prefix of the digest (at least :data:`MIN_PREFIX` hex digits).

    Args:
        digest: The checksum with its algorithm prefix (case-insensitive).

    Returns:
        ``(algorithm, lowercase hex digest)``.

    Raises:
        ConfigError: Unknown algorithm, missing prefix, or not the right number of hex digits.
    """
    algorithm, _, hexdigest = digest.strip().partition(":")
    algorithm, hexdigest = algorithm.lower(), hexdigest.lower()
    full = DIGEST_LENGTHS.get(algorithm)
    shortest = MIN_PREFIX if algorithm == "sha256" else full
    if (
        full is None
        or not shortest <= len(hexdigest) <= full
        or not set(hexdigest) <= set(string.hexdigits)
    ):
        raise ConfigError(
            f"bad checksum {digest!r}: expected md5:<32 hex digits> or "
            f"sha256:<{MIN_PREFIX} to 64 hex digits>"
        )
    return algorithm, hexdigest


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Hex digest of a file (``md5`` or ``sha256``), read in chunks."""
    h = hashlib.new(algorithm)
    _hash_into(Path(path), h)
    return h.hexdigest()


def _hash_into(path: Path, h: hashlib._Hash) -> None:
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)


#: What a transfer can fail with; :func:`_transfer_error` turns each into one line.
_TRANSFER_ERRORS = (
    urllib.error.URLError,
    http.client.IncompleteRead,
    ConnectionError,
    TimeoutError,
)


def _transfer_error(exc: BaseException, url: str, received: int, tail: str = "") -> DownloadError:
    """The one-line :class:`DownloadError` for a failed transfer (``tail`` is appended)."""
    if isinstance(exc, urllib.error.HTTPError):
        message = f"{url}: HTTP {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        message = f"cannot reach {url} ({exc.reason}); check the network connection"
    elif isinstance(exc, TimeoutError):
        message = f"{url}: timed out after {received} bytes"
    else:  # IncompleteRead, ConnectionError
        message = f"{url}: connection lost after {received} bytes ({type(exc).__name__})"
    return DownloadError(" ".join((message + tail).split()))


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    digest: str | None = None,
    size: int | None = None,
    resume: bool = False,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Download ``url`` to ``dest``, checked by size and checksum; optionally resumable.

    With ``resume``, bytes go to ``<dest>.part`` and a part file left by an earlier failed
    or interrupted call is continued with ``Range: bytes=N-``: ``206 Partial Content`` is
    appended, ``200`` (a server that ignores ``Range``) starts the file over, and ``416``
    (nothing past byte N) means the part is already complete. Without it, any
    ``<dest>.part`` is discarded and the bytes go to a uniquely named part file that is
    removed on any failure. Only a file that passes the checks is moved to ``dest``.

    Args:
        url: HTTP(S) URL.
        dest: Final file path; its folder is created. An existing file is replaced.
        digest: Expected checksum, ``"md5:<hex>"`` or ``"sha256:<hex or hex prefix>"``;
            ``None`` checks nothing more and warns with the file's SHA-256 so that it can
            be recorded.
        size: Expected size in bytes, or ``None`` when not published.
        resume: Keep ``<dest>.part`` when a transfer fails, and continue it.
        progress: Show a tqdm bar on stderr.
        timeout: Socket timeout in seconds.

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.

    Raises:
        ConfigError: A malformed ``digest``.
        DownloadError: Offline, HTTP error or lost connection (the part file is kept when
            ``resume``), or a size / checksum mismatch (the file is removed); one line.
    """
    dest = Path(dest)
    algorithm, expected = parse_digest(digest) if digest else ("sha256", None)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    check = (url, size, algorithm, expected, progress, timeout)
    if resume:
        _fetch_checked(part, *check, resume=True)
        os.replace(part, dest)
    else:
        part.unlink(missing_ok=True)
        with atomic_path(dest, suffix=".part") as tmp:
            _fetch_checked(tmp, *check, resume=False)
    return dest


def _fetch_checked(
    part: Path,
    url: str,
    size: int | None,
    algorithm: str,
    expected: str | None,
    progress: bool,
    timeout: float,
    *,
    resume: bool,
) -> None:
    """Bring ``part`` to the whole file and check it; a mismatch removes it."""
    hasher = hashlib.new(algorithm)
    _fetch_part(url, part, size, hasher, resume=resume, progress=progress, timeout=timeout)
    got_size = part.stat().st_size
    if size is not None and got_size != size:
        part.unlink()
        raise DownloadError(
            f"{url}: size mismatch, expected {size} bytes, got {got_size}; the file was discarded"
        )
    got = hasher.hexdigest()
    if expected is None:
        warnings.warn(f"{url}: no published checksum to check; its sha256 is {got}", stacklevel=4)
    elif not got.startswith(expected):
        part.unlink()
        raise DownloadError(
            f"{url}: {algorithm} mismatch, expected {expected}, got {got}; the file was discarded"
        )


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``(first byte, total size)`` of a ``Content-Range`` header (``None`` where absent)."""
    unit, _, spec = (value or "").partition(" ")
    if unit.strip().lower() != "bytes":
        return None, None
    span, _, total = spec.partition("/")
    first = span.partition("-")[0].strip()
    return (
        int(first) if first.isdigit() else None,
        int(total) if total.strip().isdigit() else None,
    )


def _fetch_part(
    url: str,
    part: Path,
    size: int | None,
    hasher: hashlib._Hash,
    *,
    resume: bool,
    progress: bool,
    timeout: float,
) -> None:
    """Bring ``part`` to the server's whole file, feeding every byte of it to ``hasher``."""
    from tqdm.auto import tqdm

    offset = part.stat().st_size if part.is_file() else 0
    if size is not None and offset > size:  # not a prefix of this file: start over
        part.unlink()
        offset = 0
    if offset and offset == size:  # completed by an earlier call, not yet checked
        _hash_into(part, hasher)
        return
    headers = {"User-Agent": "esrgan-lab"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        request = urllib.request.Request(url, headers=headers)
    except ValueError as exc:
        raise DownloadError(f"bad download URL {url!r} ({exc})") from None
    tail = "; the partial file is kept, run again to resume" if resume else "; nothing was saved"
    received, start, total = 0, 0, None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if offset and response.status == 206:
                start, whole = _content_range(response.headers.get("Content-Range"))
                if start != offset:
                    part.unlink()
                    raise DownloadError(
                        f"{url}: asked for bytes from {offset}, the server sent from {start}; "
                        "the partial file was discarded, run again"
                    )
                total = whole if whole is not None else (total + offset if total else None)
                _hash_into(part, hasher)
            with (
                open(part, "ab" if start else "wb") as out,
                tqdm(
                    total=total,
                    initial=start,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=part.name.removesuffix(".part"),
                    disable=not progress,
                    file=sys.stderr,
                    leave=False,
                ) as bar,
            ):
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    hasher.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing past the part file: it is complete
            whole = _content_range(exc.headers.get("Content-Range"))[1]
            if whole is not None and whole != offset:
                part.unlink()
                raise DownloadError(
                    f"{url}: the partial file ({offset} bytes) does not match the server's "
                    f"{whole} bytes; it was discarded, run again"
                ) from None
            _hash_into(part, hasher)
            return
        raise _transfer_error(exc, url, received) from None
    except _TRANSFER_ERRORS as exc:
        raise _transfer_error(exc, url, start + received, tail) from None
    if total is not None and start + received != total:
        raise DownloadError(
            f"{url}: truncated download, got {start + received} of {total} bytes{tail}"
        )
