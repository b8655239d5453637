"""Training-set preparation: HR (and paired LQ) images cut into sub-images, as BasicSR does.

The paper trains on DIV2K, Flickr2K and OST (ESRGAN paper Sec. 4.1). BasicSR, whose
recipe the published models follow, first cuts every HR training image into overlapping
480x480 sub-images with step 240 (``scripts/data_preparation/extract_subimages.py``) and
the x4 LQ images into the matching 120x120 ones with step 60, so that a random training
patch costs decoding a small file instead of a 2K image. This module implements that step
with the same positions, names, pixel content and PNG settings:

* :func:`subimage_positions` / :func:`subimage_grid` / :func:`subimage_names` - where the
  crops go along one side and what they are called (``<stem>_s<index:03d><ext>``);
* :func:`extract_subimages` - one folder of images in, one folder of sub-images out;
* :func:`extract_paired_subimages` - the same with the LQ images cut at the HR positions
  divided by the scale, each LQ sub-image named like its HR one so pairs match by name;
* :func:`write_meta_info` - the meta file of BasicSR's ``generate_meta_info`` script, one
  ``<name> (<h>,<w>,<c>)`` line per sub-image, sorted by name.

Unlike BasicSR's script, images smaller than the crop are skipped and counted (BasicSR
stops with an ``IndexError``), and the writes are resumable: each sub-image is encoded to
a temporary name in the output folder and moved into place with ``os.replace``, so it
exists whole or not at all; a rerun removes leftover temporaries and skips the sub-images
already on disk. ``esrgan-lab prepare-data`` is the command line.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import ConfigError, DataError
from ..fileio import atomic_write_text
from ..procs import DieWithParent
from .images import IMAGE_EXTENSIONS, read_image

#: BasicSR's settings for the DIV2K HR images (``extract_subimages.py``).
DEFAULT_CROP = 480
DEFAULT_STEP = 240
DEFAULT_THRESH = 0
#: ``cv2.IMWRITE_PNG_COMPRESSION`` level BasicSR writes with (0-9; ignored by other formats).
DEFAULT_COMPRESSION = 3
#: Scale of the LQ images in the paired mode (DIV2K ``X4`` folders).
DEFAULT_SCALE = 4
#: File name of the meta file, written in the output folder.
META_NAME = "meta_info.txt"

#: Temporary files this module writes: ``.<stem>_s<index>.tmp<ext>``.
_TEMP = re.compile(r"^\..+_s\d+\.tmp\.[^.]+$")


def default_workers() -> int:
    """Worker processes used when none are given: ``min(4, os.cpu_count())``."""
    return min(4, os.cpu_count() or 1)


class SubImage(NamedTuple):
    """One crop of an image: its file name and its top-left corner."""

    name: str
    top: int
    left: int


@dataclass(frozen=True)
class PrepareSummary:
    """What one preparation run did.

    Attributes:
        images: Source images read.
        written: HR sub-images encoded in this run.
        existing: HR sub-images already on disk, kept as they were.
        small: Source images smaller than the crop in a dimension, skipped.
        lq_written: LQ sub-images encoded in this run (paired mode).
        lq_existing: LQ sub-images already on disk (paired mode).
        meta: The meta file written, or ``None``.
    """

    images: int
    written: int
    existing: int
    small: int
    lq_written: int = 0
    lq_existing: int = 0
    meta: Path | None = None

    @property
    def subimages(self) -> int:
        """HR sub-images the sources give (written now or before)."""
        return self.written + self.existing


def _check_geometry(crop: int, step: int, thresh: int) -> None:
    if crop <= 0:
        raise ConfigError(f"crop size must be positive, got {crop}")
    if step <= 0:
        raise ConfigError(f"step must be positive, got {step}")
    if thresh < 0:
        raise ConfigError(f"thresh size must be >= 0, got {thresh}")


def subimage_positions(length: int, crop: int, step: int, thresh: int = 0) -> list[int]:
    """Start offsets of the crops along one side of an image, as BasicSR places them.

    Offsets ``0, step, 2 * step, ...`` while a whole crop fits; then one more crop flush
    with the far edge (``length - crop``) if the pixels left uncovered exceed ``thresh``.

    Args:
        length: Image height or width in pixels.
        crop: Crop side.
        step: Distance between consecutive crops.
        thresh: Uncovered pixels at the far edge tolerated without an extra crop.

    Returns:
        The offsets in increasing order; empty if ``length < crop`` (no crop fits).

    Raises:
        ConfigError: ``crop`` or ``step`` is not positive, or ``thresh`` is negative.
    """
    _check_geometry(crop, step, thresh)
    if length < crop:
        return []
    positions = list(range(0, length - crop + 1, step))
    if length - (positions[-1] + crop) > thresh:
        positions.append(length - crop)
    return positions


def subimage_grid(
    stem: str, ext: str, h: int, w: int, crop: int, step: int, thresh: int = 0
) -> list[SubImage]:
    """The crops of an ``h x w`` image with their names, in BasicSR's order.

    Rows outer, columns inner; the index counts from 1 and is written with at least three
    digits: ``0001_s001.png``, ``0001_s002.png``, ...

    Args:
        stem: Source file name without extension.
        ext: Source extension with the dot (kept as it is, so the format is kept).
        h: Image height.
        w: Image width.
        crop: Crop side.
        step: Distance between crops.
        thresh: See :func:`subimage_positions`.

    Returns:
        One :class:`SubImage` per crop; empty if the image is smaller than ``crop``.
    """
    rows = subimage_positions(h, crop, step, thresh)
    cols = subimage_positions(w, crop, step, thresh)
    grid = []
    for top in rows:
        for left in cols:
            grid.append(SubImage(f"{stem}_s{len(grid) + 1:03d}{ext}", top, left))
    return grid


def subimage_names(
    stem: str, ext: str, h: int, w: int, crop: int, step: int, thresh: int = 0
) -> list[str]:
    """File names of the crops of an ``h x w`` image (see :func:`subimage_grid`)."""
    return [sub.name for sub in subimage_grid(stem, ext, h, w, crop, step, thresh)]


# --------------------------------------------------------------------------- one image


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs to cut one source image (picklable)."""

    src: Path
    out: Path
    crop: int
    step: int
    thresh: int
    compression: int
    lq_src: Path | None = None
    lq_out: Path | None = None
    scale: int = 1


@dataclass(frozen=True)
class _Done:
    written: int = 0
    existing: int = 0
    small: bool = False
    lq_written: int = 0
    lq_existing: int = 0
    shapes: dict[str, tuple[int, int, int]] = field(default_factory=dict)


def _temp_path(target: Path) -> Path:
    """The temporary name of ``target``; the real extension stays last for the encoder."""
    return target.with_name(f".{target.stem}.tmp{target.suffix}")


def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (one function, so tests can interrupt it)."""
    with open(path, "wb") as fh:
        fh.write(data)


def _save_crop(
    image: np.ndarray, top: int, left: int, size: int, target: Path, compression: int
) -> bool:
    """Encode one crop to ``target`` unless it is already there; ``True`` if written."""
    if target.is_file() and target.stat().st_size > 0:
        return False
    crop = np.ascontiguousarray(image[top : top + size, left : left + size, ...])
    try:
        ok, encoded = cv2.imencode(target.suffix, crop, [cv2.IMWRITE_PNG_COMPRESSION, compression])
    except cv2.error as exc:
        raise DataError(f"{target}: OpenCV cannot encode this image ({exc.err})") from exc
    if not ok:
        raise DataError(f"{target}: OpenCV failed to encode the image as {target.suffix}")
    tmp = _temp_path(target)
    try:
        _write_file(tmp, encoded.tobytes())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


def _channels(image: np.ndarray) -> int:
    return 1 if image.ndim == 2 else int(image.shape[2])


def _cut_one(job: _Job) -> _Done:
    """Cut one source image (and its LQ image) into sub-images."""
    image = read_image(job.src)
    h, w = image.shape[:2]
    grid = subimage_grid(job.src.stem, job.src.suffix, h, w, job.crop, job.step, job.thresh)
    if not grid:
        return _Done(small=True)
    lq = None
    if job.lq_src is not None:
        lq = read_image(job.lq_src)
        want = (h // job.scale, w // job.scale)
        if lq.shape[:2] != want:
            raise DataError(
                f"{job.lq_src}: LQ image is {lq.shape[1]}x{lq.shape[0]}, expected "
                f"{want[1]}x{want[0]} ({job.src.name} is {w}x{h}, scale {job.scale})"
            )
    written = existing = lq_written = lq_existing = 0
    size = job.crop // job.scale
    for sub in grid:
        if _save_crop(image, sub.top, sub.left, job.crop, job.out / sub.name, job.compression):
            written += 1
        else:
            existing += 1
        if lq is not None and job.lq_out is not None:
            top, left = sub.top // job.scale, sub.left // job.scale
            if _save_crop(lq, top, left, size, job.lq_out / sub.name, job.compression):
                lq_written += 1
            else:
                lq_existing += 1
    shape = (job.crop, job.crop, _channels(image))
    return _Done(
        written=written,
        existing=existing,
        lq_written=lq_written,
        lq_existing=lq_existing,
        shapes={sub.name: shape for sub in grid},
    )


def _run_jobs(jobs: Sequence[_Job], workers: int, progress: bool) -> list[_Done]:
    """Run the jobs in-process (``workers == 1``) or on a process pool, with a bar."""
    bar = tqdm(
        total=len(jobs),
        unit="img",
        desc="prepare-data",
        file=sys.stderr,
        disable=None if progress else True,
    )
    done: list[_Done] = []
    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                done.append(_cut_one(job))
                bar.update()
            return done
        # Workers die with this process (SIGKILL included) and leave Ctrl-C to it.
        pool = ProcessPoolExecutor(
            max_workers=min(workers, len(jobs)), initializer=DieWithParent(os.getpid())
        )
        try:
            futures = [pool.submit(_cut_one, job) for job in jobs]
            for future in as_completed(futures):
                done.append(future.result())
                bar.update()
        except BaseException:
            _stop_pool(pool)
            raise
        pool.shutdown()
        return done
    finally:
        bar.close()


def _stop_pool(pool: ProcessPoolExecutor, timeout: float = 5.0) -> None:
    """Cancel what has not started, end the workers now and wait for them to be gone."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(timeout)
        if proc.is_alive():  # pragma: no cover - a worker that ignores SIGTERM
            proc.kill()
            proc.join(timeout)


# --------------------------------------------------------------------------- folders


def _image_files(folder: Path) -> list[Path]:
    """The image files of ``folder``, sorted by name."""
    images = (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    return sorted((p for p in images if p.is_file()), key=lambda p: p.name)


def _list_images(src: Path, what: str) -> list[Path]:
    """The images of ``src`` (a folder, sorted by name, or one image file)."""
    if not src.exists():
        raise DataError(f"{src}: {what} does not exist")
    if src.is_file():
        if src.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DataError(f"{src}: not an image file ({', '.join(IMAGE_EXTENSIONS)})")
        return [src]
    images = _image_files(src)
    if not images:
        raise DataError(f"{src}: {what} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return images


def _folder_of(src: Path) -> Path:
    return (src.parent if src.is_file() else src).resolve()


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _check_outputs(outputs: Mapping[str, Path], sources: Mapping[str, Path]) -> None:
    """Refuse an output folder that is a file, or is or lies inside a source folder."""
    for label, out in outputs.items():
        if out.exists() and not out.is_dir():
            raise ConfigError(f"{out}: {label} exists and is not a folder")
        for src_label, src in sources.items():
            if _inside(out, _folder_of(src)):
                raise ConfigError(
                    f"{out}: {label} is or lies inside the {src_label} folder {src}; "
                    "choose a folder outside it"
                )


def _match_lq(hr: Sequence[Path], lq_src: Path, scale: int) -> list[Path]:
    """The LQ image of each HR image: same stem, or ``<stem>x<scale>`` (DIV2K's names)."""
    by_stem: dict[str, list[Path]] = {}
    for path in _list_images(lq_src, "LQ source"):
        by_stem.setdefault(path.stem, []).append(path)
    matched = []
    for path in hr:
        found = by_stem.get(path.stem, []) + by_stem.get(f"{path.stem}x{scale}", [])
        if not found:
            raise DataError(
                f"{lq_src}: no LQ image for {path.name} "
                f"(looked for {path.stem}.* and {path.stem}x{scale}.*)"
            )
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise DataError(f"{lq_src}: several LQ images match {path.name}: {names}")
        matched.append(found[0])
    return matched


def _remove_temporaries(folder: Path) -> int:
    """Delete the temporary files an interrupted run left in ``folder``."""
    removed = 0
    if folder.is_dir():
        for path in folder.iterdir():
            if _TEMP.match(path.name) and path.is_file():
                path.unlink()
                removed += 1
    return removed


def _meta_path(folder: Path, name: str) -> Path:
    """``name`` inside ``folder``, unless ``name`` is a path with a folder part."""
    path = Path(name)
    return path if path.is_absolute() or len(path.parts) > 1 else folder / path


def write_meta_info(
    folder: str | os.PathLike[str],
    name: str = META_NAME,
    *,
    shapes: Mapping[str, tuple[int, int, int]] | None = None,
) -> Path:
    """Write BasicSR's meta file for a folder of sub-images, atomically.

    One line per image file of ``folder`` (hidden files aside), sorted by name:
    ``<file name> (<h>,<w>,<c>)``, ``c`` being 1 for gray images - the format of
    BasicSR's ``generate_meta_info`` script and of its ``meta_info_file`` option.

    Args:
        folder: The folder of sub-images.
        name: File name of the meta file, written inside ``folder``; a path with a folder
            part (``../meta.txt``, ``/data/meta.txt``) is used as it is.
        shapes: Known ``(h, w, c)`` by file name; files not in it are read.

    Returns:
        The path of the meta file.
    """
    folder = Path(folder)
    known = dict(shapes or {})
    lines = []
    for path in _image_files(folder):
        if path.name.startswith("."):
            continue
        shape = known.get(path.name)
        if shape is None:
            image = read_image(path)
            shape = (image.shape[0], image.shape[1], _channels(image))
        lines.append(f"{path.name} ({shape[0]},{shape[1]},{shape[2]})\n")
    return atomic_write_text(_meta_path(folder, name), "".join(lines))


def _summarise(done: Iterable[_Done], images: int, meta: Path | None) -> PrepareSummary:
    done = list(done)
    return PrepareSummary(
        images=images,
        written=sum(d.written for d in done),
        existing=sum(d.existing for d in done),
        small=sum(d.small for d in done),
        lq_written=sum(d.lq_written for d in done),
        lq_existing=sum(d.lq_existing for d in done),
        meta=meta,
    )


def _prepare(
    jobs: list[_Job], outs: Sequence[Path], workers: int | None, progress: bool, meta: str | None
) -> PrepareSummary:
    """Create the output folders, clean them, run the jobs, write the meta file last."""
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    for out in outs:
        out.mkdir(parents=True, exist_ok=True)
        _remove_temporaries(out)
    try:
        done = _run_jobs(jobs, workers, progress)
    except BaseException:
        # Interrupted or failed: the workers are gone (_run_jobs); no half-written file
        # stays behind (finished sub-images are whole, a rerun skips them).
        for out in outs:
            _remove_temporaries(out)
        raise
    shapes: dict[str, tuple[int, int, int]] = {}
    for d in done:
        shapes.update(d.shapes)
    meta_path = None if meta is None else write_meta_info(outs[0], meta, shapes=shapes)
    return _summarise(done, len(jobs), meta_path)


def _check_options(crop: int, step: int, thresh: int, compression: int) -> None:
    _check_geometry(crop, step, thresh)
    if not 0 <= compression <= 9:
        raise ConfigError(f"PNG compression level must be 0-9, got {compression}")


def extract_subimages(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    crop: int = DEFAULT_CROP,
    step: int = DEFAULT_STEP,
    thresh_size: int = DEFAULT_THRESH,
    compression: int = DEFAULT_COMPRESSION,
    workers: int | None = None,
    progress: bool = True,
    meta: str | None = META_NAME,
) -> PrepareSummary:
    """Cut every image of ``src`` into sub-images in ``out``, as BasicSR does.

    For each image (read unchanged: gray, BGR or BGRA, 8- or 16-bit) the crops of
    :func:`subimage_grid` are written to ``out/<stem>_s<index:03d><ext>`` with PNG
    compression ``compression``. Sub-images already in ``out`` are kept; temporaries of
    an interrupted run are removed first; the meta file is written last.

    Args:
        src: Folder of images (png, jpg, jpeg, bmp, tif, tiff, webp; sorted by name) or
            one image file.
        out: Output folder, created if missing; must not be or lie inside ``src`` (for
            one image file, inside its folder).
        crop: Sub-image side (BasicSR: 480).
        step: Distance between sub-images (BasicSR: 240).
        thresh_size: Uncovered edge pixels tolerated without an extra crop (BasicSR: 0).
        compression: PNG compression level 0-9 (BasicSR: 3).
        workers: Processes; 1 runs in this process. Default :func:`default_workers`.
        progress: Show a progress bar over source images on stderr (when it is a TTY).
        meta: File name of the meta file in ``out`` (see :func:`write_meta_info`), or
            ``None`` for none.

    Returns:
        The counts of the run; images smaller than ``crop`` are skipped and counted.

    Raises:
        ConfigError: Bad sizes, workers or compression; ``out`` inside ``src``.
        DataError: ``src`` missing or without images.
        ImageReadError: A source image cannot be read.
    """
    _check_options(crop, step, thresh_size, compression)
    src, out = Path(src), Path(out)
    images = _list_images(src, "source")
    _check_outputs({"output": out}, {"source": src})
    jobs = [_Job(path, out, crop, step, thresh_size, compression) for path in images]
    return _prepare(jobs, [out], workers, progress, meta)


def extract_paired_subimages(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    lq_src: str | os.PathLike[str],
    lq_out: str | os.PathLike[str],
    *,
    scale: int = DEFAULT_SCALE,
    crop: int = DEFAULT_CROP,
    step: int = DEFAULT_STEP,
    thresh_size: int = DEFAULT_THRESH,
    compression: int = DEFAULT_COMPRESSION,
    workers: int | None = None,
    progress: bool = True,
    meta: str | None = META_NAME,
) -> PrepareSummary:
    """Cut HR images and their LQ images into sub-images that pair by name.

    The HR images are cut exactly as :func:`extract_subimages` cuts them. The LQ image
    of each (same stem, or ``<stem>x<scale>`` as in DIV2K's ``0001x4.png``) must be
    ``(h // scale, w // scale)``; it is cut at the HR positions divided by ``scale`` into
    ``crop // scale`` squares, and each LQ sub-image gets its HR sub-image's name. When
    the HR sizes are multiples of ``scale`` (DIV2K), these are exactly the crops BasicSR
    cuts from the LQ folder with ``crop``, ``step`` and ``thresh_size`` divided by
    ``scale``; otherwise BasicSR's two independent cuts may even differ in number, while
    these stay paired. The meta file lists the HR sub-images (BasicSR's paired datasets
    read the GT meta file).

    Args:
        src: HR folder (or one HR image).
        out: HR output folder.
        lq_src: LQ folder (or one LQ image).
        lq_out: LQ output folder; distinct from ``out``.
        scale: HR size / LQ size.
        crop: HR sub-image side; ``crop``, ``step`` and ``thresh_size`` must be multiples
            of ``scale``.
        step: HR distance between sub-images.
        thresh_size: See :func:`subimage_positions` (HR pixels).
        compression: PNG compression level 0-9.
        workers: Processes; 1 runs in this process. Default :func:`default_workers`.
        progress: Show a progress bar over source images on stderr (when it is a TTY).
        meta: File name of the meta file in ``out``, or ``None`` for none.

    Returns:
        The counts of the run, LQ counts included.

    Raises:
        ConfigError: Bad sizes or options, sizes not divisible by ``scale``, an output
            folder inside a source folder, or ``lq_out`` equal to ``out``.
        DataError: A folder missing or empty, an LQ image missing, ambiguous or of the
            wrong size.
    """
    _check_options(crop, step, thresh_size, compression)
    if scale < 1:
        raise ConfigError(f"scale must be >= 1, got {scale}")
    sizes = (("crop", crop), ("step", step), ("thresh size", thresh_size))
    bad = [f"{label} {value}" for label, value in sizes if value % scale]
    if bad:
        raise ConfigError(f"{', '.join(bad)} not divisible by the scale {scale}")
    src, out, lq_src, lq_out = Path(src), Path(out), Path(lq_src), Path(lq_out)
    images = _list_images(src, "source")
    lq_images = _match_lq(images, lq_src, scale)
    if out.resolve() == lq_out.resolve():
        raise ConfigError(f"{lq_out}: LQ output folder is the HR output folder")
    _check_outputs({"output": out, "LQ output": lq_out}, {"source": src, "LQ source": lq_src})
    jobs = [
        _Job(path, out, crop, step, thresh_size, compression, lq, lq_out, scale)
        for path, lq in zip(images, lq_images)
    ]
    return _prepare(jobs, [out, lq_out], workers, progress, meta)
