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
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
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

    @property
    def path(self) -> Path:
        """Where the file is (or will be) on disk."""
        return (local_weights_dir() if self.local else settings.weights_dir()) / self.filename

    @property
    def source(self) -> str:
        """``download``, ``manual`` or ``local``."""
        return "local" if self.local else ("download" if self.url else "manual")


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
        filename="RealESRGAN_x4plus.pth",
        scale=4,
        layout="basicsr",
        description="Real-ESRGAN x4plus: RRDBNet trained on synthetic real-world degradations",
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
    if path.is_file() and not force:
        return path
    if entry.url is None:
        raise DownloadError(
            f"{name!r} has no direct download (Google Drive only): download {entry.filename} "
            f"from {entry.manual_url} and put it at {path} "
            "(set ESRGAN_LAB_WEIGHTS to use another cache folder)"
        )
    return download_file(entry.url, path, entry.sha256, progress=progress)


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
        except urllib.error.HTTPError as exc:
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise DownloadError(
                f"cannot reach {url} ({exc.reason}); check the network connection"
            ) from None
        except (http.client.IncompleteRead, ConnectionError) as exc:
            raise DownloadError(
                f"{url}: connection lost after {received} bytes ({type(exc).__name__})"
            ) from None
        except TimeoutError:
            raise DownloadError(f"{url}: timed out after {received} bytes") from None
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
