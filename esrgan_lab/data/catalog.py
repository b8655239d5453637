"""Known super-resolution datasets by name, and their checked download and extraction.

:data:`CATALOG` says, for each training and benchmark set the ESRGAN paper uses, where
its archives come from, how to check them (size in bytes and an ``md5:`` / ``sha256:``
digest, as published; ``None`` where nothing is published), which folder each archive
unpacks to and where the HR images then are. Sets without a direct, checkable download
(OST, Manga109) are ``manual``: their instructions say where to get them and where to put
them.

:func:`download_dataset` fetches archives into ``<root>/downloads/`` with
:func:`esrgan_lab.download.download` (resumable, checked) and unpacks
each into a hidden temporary folder under ``<root>`` that is renamed into place only
once complete, so an interrupted extraction is redone and finished work is skipped.
``root`` defaults to ``ESRGAN_LAB_DATA`` (:func:`esrgan_lab.settings.data_dir`).
"""

from __future__ import annotations

import os
import shutil
import sys
import tarfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from .. import settings
from ..errors import ConfigError, DataError

#: The parts an archive can belong to: HR images (always) or bicubic LQ images (optional).
PARTS: tuple[str, ...] = ("hr", "lq")
#: Sub-folder of the data root that holds the downloaded archives.
DOWNLOADS = "downloads"


@dataclass(frozen=True)
class Archive:
    """One downloadable archive of a dataset.

    Attributes:
        url: Direct HTTP(S) download URL.
        filename: File name in ``<root>/downloads/``; ``.zip`` or ``.tar`` (optionally
            compressed) decides how it is unpacked.
        folder: The folder the archive unpacks to, relative to the data root
            (``DIV2K_train_HR``, ``DIV2K_train_LR_bicubic/X4``); its presence means the
            archive is in place.
        size: Size in bytes if published, else ``None``.
        digest: ``"md5:<hex>"`` or ``"sha256:<hex>"`` if published, else ``None``.
        part: ``"hr"`` (downloaded by default) or ``"lq"`` (only with ``--with-lq``).
    """

    url: str
    filename: str
    folder: str
    size: int | None = None
    digest: str | None = None
    part: str = "hr"


@dataclass(frozen=True)
class Dataset:
    """One known dataset.

    Attributes:
        name: Catalog name (lower case: ``div2k``, ``set5``).
        title: The name papers use (``DIV2K``, ``Set5``).
        description: One line: what it holds and how many images.
        role: ``"train"`` or ``"test"``.
        hr_folder: Where its HR images are, relative to the data root.
        homepage: Official page.
        citation: The paper to cite.
        archives: Its downloads (several names may share one archive); empty if manual.
        manual: No direct, checkable download: :attr:`instructions` say what to do.
        instructions: How to get a manual dataset and where to put it.
    """

    name: str
    title: str
    description: str
    role: Literal["train", "test"]
    hr_folder: str
    homepage: str
    citation: str
    archives: tuple[Archive, ...] = ()
    manual: bool = False
    instructions: str | None = None

    def archives_for(self, parts: Sequence[str] = ("hr",)) -> tuple[Archive, ...]:
        """The archives of the selected ``parts`` (HR is always included)."""
        wanted = {"hr", *parts}
        return tuple(a for a in self.archives if a.part in wanted)

    def size(self, parts: Sequence[str] = ("hr",)) -> int | None:
        """Total download size in bytes of ``parts``, or ``None`` if any size is unknown."""
        sizes = [a.size for a in self.archives_for(parts)]
        return None if not sizes or None in sizes else sum(s for s in sizes if s is not None)

    def is_present(self, root: str | os.PathLike[str]) -> bool:
        """Whether its HR images are in place under ``root`` (a folder check): where the
        download puts them, or (a test set) in ``root/<title>`` as evaluation looks it up."""
        root = Path(root)
        own = root / self.title
        if self.role == "test" and own.is_dir() and any(own.iterdir()):
            return True
        folders = [root / a.folder for a in self.archives_for()] + [root / self.hr_folder]
        return all(f.is_dir() for f in folders) and any((root / self.hr_folder).iterdir())


_DIV2K = "http://data.vision.ee.ethz.ch/cvl/DIV2K/"
_EDSR = "https://cv.snu.ac.kr/research/EDSR/"
_EDSR_HOME = "https://github.com/sanghyun-son/EDSR-PyTorch"
_BENCHMARK = Archive(
    url=_EDSR + "benchmark.tar",
    filename="benchmark.tar",
    folder="benchmark",
    size=250112000,
    digest="sha256:80c21c333bbf6ceb5308b7243761f8284478274413a97b96f1d63e9045fd93e8",
)


def _benchmark(name: str, title: str, folder: str, description: str, citation: str) -> Dataset:
    return Dataset(
        name=name,
        title=title,
        description=description + " (from EDSR's benchmark archive)",
        role="test",
        hr_folder=f"benchmark/{folder}/HR",
        homepage=_EDSR_HOME,
        citation=citation,
        archives=(_BENCHMARK,),
    )


def _catalog(*datasets: Dataset) -> dict[str, Dataset]:
    return {d.name: d for d in datasets}


#: Known datasets by name.
CATALOG: dict[str, Dataset] = _catalog(
    Dataset(
        name="div2k",
        title="DIV2K",
        description="800 train + 100 validation 2K images (NTIRE 2017); x4 bicubic LQ optional",
        role="train",
        hr_folder="DIV2K_train_HR",
        homepage="https://data.vision.ee.ethz.ch/cvl/DIV2K/",
        citation="E. Agustsson, R. Timofte, NTIRE 2017 Challenge on Single Image "
        "Super-Resolution: Dataset and Study, CVPR Workshops 2017",
        archives=(
            Archive(
                url=_DIV2K + "DIV2K_train_HR.zip",
                filename="DIV2K_train_HR.zip",
                folder="DIV2K_train_HR",
                digest="md5:bdc2d9338d4e574fe81bf7d158758658",
            ),
            Archive(
                url=_DIV2K + "DIV2K_valid_HR.zip",
                filename="DIV2K_valid_HR.zip",
                folder="DIV2K_valid_HR",
                digest="md5:9fcdda83005c5e5997799b69f955ff88",
            ),
            Archive(
                url=_DIV2K + "DIV2K_train_LR_bicubic_X4.zip",
                filename="DIV2K_train_LR_bicubic_X4.zip",
                folder="DIV2K_train_LR_bicubic/X4",
                digest="md5:76c43ec4155851901ebbe8339846d93d",
                part="lq",
            ),
            Archive(
                url=_DIV2K + "DIV2K_valid_LR_bicubic_X4.zip",
                filename="DIV2K_valid_LR_bicubic_X4.zip",
                folder="DIV2K_valid_LR_bicubic/X4",
                digest="md5:21962de700c8d368c6ff83314480eff0",
                part="lq",
            ),
        ),
    ),
    Dataset(
        name="flickr2k",
        title="Flickr2K",
        description="2650 2K images from Flickr (EDSR authors); with DIV2K it makes DF2K",
        role="train",
        hr_folder="Flickr2K/Flickr2K_HR",
        homepage="https://github.com/LimBee/NTIRE2017",
        citation="B. Lim, S. Son, H. Kim, S. Nah, K. M. Lee, Enhanced Deep Residual Networks "
        "for Single Image Super-Resolution, CVPR Workshops 2017",
        archives=(
            Archive(
                url=_EDSR + "Flickr2K.tar",
                filename="Flickr2K.tar",
                folder="Flickr2K",
                digest="md5:5d3f39443d5e9489bff8963f8f26cb03",
            ),
        ),
    ),
    Dataset(
        name="ost",
        title="OST",
        description="OutdoorSceneTraining: outdoor images in 7 categories (SFTGAN); "
        "ESRGAN's third training set",
        role="train",
        hr_folder="OST",
        homepage="http://mmlab.ie.cuhk.edu.hk/projects/SFTGAN/",
        citation="X. Wang, K. Yu, C. Dong, C. C. Loy, Recovering Realistic Texture in Image "
        "Super-resolution by Deep Spatial Feature Transform, CVPR 2018",
        manual=True,
        instructions="download OutdoorSceneTraining from the project page "
        "http://mmlab.ie.cuhk.edu.hk/projects/SFTGAN/ and place its image folders under "
        "$ESRGAN_LAB_DATA/OST",
    ),
    Dataset(
        name="benchmark",
        title="benchmark",
        description="EDSR's archive of Set5, Set14, B100 (BSD100) and Urban100, "
        "HR and LR_bicubic/X2..X4",
        role="test",
        hr_folder="benchmark",
        homepage=_EDSR_HOME,
        citation="B. Lim, S. Son, H. Kim, S. Nah, K. M. Lee, Enhanced Deep Residual Networks "
        "for Single Image Super-Resolution, CVPR Workshops 2017 (archive of the sets below)",
        archives=(_BENCHMARK,),
    ),
    _benchmark(
        "set5",
        "Set5",
        "Set5",
        "5 test images",
        "M. Bevilacqua, A. Roumy, C. Guillemot, M.-L. Alberi Morel, Low-Complexity "
        "Single-Image Super-Resolution based on Nonnegative Neighbor Embedding, BMVC 2012",
    ),
    _benchmark(
        "set14",
        "Set14",
        "Set14",
        "14 test images",
        "R. Zeyde, M. Elad, M. Protter, On Single Image Scale-Up Using "
        "Sparse-Representations, Curves and Surfaces 2010",
    ),
    _benchmark(
        "bsd100",
        "BSD100",
        "B100",
        "100 test images of the Berkeley Segmentation Dataset",
        "D. Martin, C. Fowlkes, D. Tal, J. Malik, A Database of Human Segmented Natural "
        "Images and its Application to Evaluating Segmentation Algorithms and Measuring "
        "Ecological Statistics, ICCV 2001",
    ),
    _benchmark(
        "urban100",
        "Urban100",
        "Urban100",
        "100 urban scenes",
        "J.-B. Huang, A. Singh, N. Ahuja, Single Image Super-Resolution from Transformed "
        "Self-Exemplars, CVPR 2015",
    ),
    Dataset(
        name="manga109",
        title="Manga109",
        description="109 manga volumes (academic use, on request)",
        role="test",
        hr_folder="Manga109",
        homepage="http://www.manga109.org/en/download.html",
        citation="Y. Matsui, K. Ito, Y. Aramaki, A. Fujimoto, T. Ogawa, T. Yamasaki, "
        "K. Aizawa, Sketch-based Manga Retrieval using Manga109 Dataset, Multimedia Tools "
        "and Applications 2017",
        manual=True,
        instructions="Manga109 is available on request only, for academic use: apply at "
        "http://www.manga109.org/en/download.html and place the images under "
        "$ESRGAN_LAB_DATA/Manga109",
    ),
)


def get_dataset(name: str) -> Dataset:
    """The catalog entry called ``name`` (case-insensitive: ``Set5`` is ``set5``).

    Raises:
        ConfigError: Unknown name (the known names are listed).
    """
    entry = CATALOG.get(name.lower())
    if entry is None:
        raise ConfigError(f"unknown dataset {name!r} (known: {', '.join(CATALOG)})")
    return entry


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """``root`` if given, else the ``ESRGAN_LAB_DATA`` folder.

    Raises:
        DataError: No ``root`` and ``ESRGAN_LAB_DATA`` unset or not a folder.
    """
    if root is not None:
        return Path(root).expanduser()
    found = settings.data_dir()
    if found is None:
        raise DataError(
            "no data folder: set ESRGAN_LAB_DATA to an existing folder or pass --root DIR"
        )
    return found


def download_dataset(
    name: str,
    root: str | os.PathLike[str] | None = None,
    *,
    parts: Sequence[str] = ("hr",),
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Download, check and unpack a known dataset under ``root``; returns its HR folder.

    Archives already unpacked (their folder exists) are skipped, and so are archives
    already downloaded and checked; a download interrupted earlier is resumed.

    Args:
        name: Catalog name (see ``esrgan-lab datasets list``).
        root: Data folder (created if missing); default ``ESRGAN_LAB_DATA``.
        parts: Which archives: ``("hr",)`` or ``("hr", "lq")`` (bicubic LQ too).
        force: Download and unpack again, replacing what is there.
        progress: Progress bars and one line per step on stderr.

    Returns:
        ``<root>/<hr_folder>``.

    Raises:
        ConfigError: Unknown name or part.
        DataError: A manual dataset that is not in place (with its instructions), no data
            root, or a bad archive.
        DownloadError: Offline, HTTP error, size or checksum mismatch.
    """
    from ..download import download

    entry = get_dataset(name)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ConfigError(f"unknown dataset part(s) {unknown} (known: {', '.join(PARTS)})")
    root = data_root(root)
    if entry.manual:
        if entry.is_present(root):
            return root / entry.hr_folder
        raise DataError(f"{entry.title} has no direct download: {entry.instructions}")
    root.mkdir(parents=True, exist_ok=True)
    for archive in entry.archives_for(parts):
        if (root / archive.folder).is_dir() and not force:
            continue
        file = root / DOWNLOADS / archive.filename
        if force or not file.is_file():
            _say(progress, f"downloading {archive.url} -> {file}")
            download(
                archive.url,
                file,
                size=archive.size,
                digest=archive.digest,
                resume=not force,
                progress=progress,
            )
        _say(progress, f"unpacking {file.name} -> {root / archive.folder}")
        extract_archive(file, root, archive.folder)
    hr = root / entry.hr_folder
    if not hr.is_dir():
        raise DataError(
            f"{entry.title}: the archives hold no folder {entry.hr_folder} under {root}"
        )
    return hr


def _say(progress: bool, line: str) -> None:
    if progress:
        print(line, file=sys.stderr, flush=True)


def extract_archive(
    archive: str | os.PathLike[str], root: str | os.PathLike[str], folder: str
) -> Path:
    """Unpack ``folder`` of a zip or tar ``archive`` to ``<root>/<folder>``, atomically.

    Everything is unpacked into ``<root>/.unpack-<archive name>/`` first (a leftover of an
    interrupted run is removed), and ``folder`` is renamed into place only when complete,
    replacing an existing one. Members that would land outside the target (absolute
    paths, ``..``, links out of it, devices) are refused.

    Args:
        archive: A ``.zip`` or a (compressed) ``.tar`` file.
        root: Data folder.
        folder: The archive's folder to keep, relative to ``root`` (``benchmark``).

    Returns:
        ``<root>/<folder>``.

    Raises:
        DataError: Unreadable archive, an unsafe member, or ``folder`` not in the archive.
    """
    archive, root = Path(archive), Path(root)
    work = root / f".unpack-{archive.name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        if archive.suffix.lower() == ".zip":
            _unzip(archive, work)
        elif tarfile.is_tarfile(archive):
            _untar(archive, work)
        elif zipfile.is_zipfile(archive):
            _unzip(archive, work)
        else:
            raise DataError(f"{archive}: neither a zip nor a tar archive; delete it and retry")
        source, target = work / folder, root / folder
        if not source.is_dir():
            raise DataError(f"{archive}: holds no folder {folder!r}; is it the right archive?")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            old = work / ".replaced"
            os.replace(target, old)
        os.replace(source, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _check_member(archive: Path, name: str) -> None:
    """Refuse a member name that is absolute or climbs out of the target with ``..``."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DataError(f"{archive}: unsafe member {name!r} (outside the target); not unpacked")


def _unzip(archive: Path, work: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                _check_member(archive, name)
            zf.extractall(work)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{archive}: corrupt zip archive ({exc}); delete it and retry") from None


#: What the ``data`` extraction filter raises (Python >= 3.11.4); nothing before it.
_FILTER_ERROR: type[Exception] | tuple[()] = getattr(tarfile, "FilterError", ())


def _untar(archive: Path, work: Path) -> None:
    try:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for member in members:
                _check_member(archive, member.name)
                if member.issym() or member.islnk():
                    _check_member(archive, member.linkname)
                elif not (member.isfile() or member.isdir()):
                    raise DataError(f"{archive}: special file {member.name!r}; not unpacked")
            if hasattr(tarfile, "data_filter"):
                tf.extractall(work, members=members, filter="data")
            else:  # pragma: no cover (Python < 3.11.4; members were checked above)
                tf.extractall(work, members=members)
    except _FILTER_ERROR as exc:
        raise DataError(f"{archive}: unsafe member ({exc}); not unpacked") from None
    except (tarfile.TarError, EOFError) as exc:
        raise DataError(f"{archive}: corrupt tar archive ({exc}); delete it and retry") from None
