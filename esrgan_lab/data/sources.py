"""Where images come from: dataset folders, named sets, scikit-image samples.

One naming scheme serves evaluation (``esrgan-lab evaluate --dataset``), training configs
(``data.train``/``data.val``) and the notebooks. A *source* string is one of:

* an existing folder of images;
* a dataset name under ``ESRGAN_LAB_DATA`` (``"Set5"``, ``"BSD68"``, ...);
* ``"skimage"`` (:data:`SKIMAGE_IMAGES`) or ``"skimage:NAME,NAME"``: images scikit-image
  ships, for machines without datasets;
* ``"sample:train"`` / ``"sample:val"`` / ``"sample:all"``: disjoint scikit-image splits
  for smoke runs (:data:`SAMPLE_TRAIN`, :data:`SAMPLE_VAL`);

optionally followed by a Python slice over the images in name order: ``"BSD68[:-4]"``
(all but the last four), ``"BSD68[-4:]"`` (the last four); or a dataset name and a named
part of the studies' common split (:mod:`esrgan_lab.data.splits`): ``"Urban100:val"``,
``"Urban100:test"``.

Arrays are what OpenCV reads (BGR, or 2-D gray; see :mod:`esrgan_lab.data.images`):
:class:`ImageRecord` loads evaluation images as they are (gray stays gray, as the
published evaluation scripts score it), :func:`load_source` gives training images as
3-channel 8-bit BGR (gray replicated).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import settings
from ..errors import DataError, ImageReadError
from . import splits
from .images import IMAGE_EXTENSIONS, read_image
from .samples import skimage_sample

#: Images scikit-image ships, scored by ``--dataset skimage`` when no dataset is set.
SKIMAGE_IMAGES: tuple[str, ...] = ("astronaut", "chelsea", "coffee", "rocket")
#: Colour scikit-image images for smoke training runs ...
SAMPLE_TRAIN: tuple[str, ...] = ("astronaut", "chelsea", "coffee", "rocket")
#: ... and the one held out from them for validation.
SAMPLE_VAL: tuple[str, ...] = ("immunohistochemistry",)
#: Named benchmark sets looked up under ``ESRGAN_LAB_DATA`` (any folder name works).
BENCHMARKS: tuple[str, ...] = ("Set5", "Set14", "BSD68", "SunHays80")

_SLICE = re.compile(r"(.+)\[(-?\d*):(-?\d*)\]")


@dataclass(frozen=True)
class ImageRecord:
    """One image of a source: where it came from and how to read it."""

    dataset: str
    name: str
    path: Path | None
    loader: Callable[[], np.ndarray]

    def load(self) -> np.ndarray:
        """The image as evaluation reads it (:func:`read_gt`): ``(H, W, 3)`` uint8 BGR or
        ``(H, W)`` uint8 gray."""
        return self.loader()


@dataclass(frozen=True)
class NamedImage:
    """An in-memory training image: ``(H, W, 3)`` uint8 BGR and its name."""

    name: str
    image: np.ndarray


def read_gt(path: str | Path) -> np.ndarray:
    """Read an 8-bit ground-truth image: ``(H, W, 3)`` BGR, or ``(H, W)`` if gray.

    Decoding is :func:`esrgan_lab.data.images.read_image`; an alpha channel is dropped
    (the metrics are defined on colour only).

    Raises:
        ImageReadError: Missing, unreadable, not an image, or not 8-bit.
    """
    img = read_image(path)
    if img.dtype != np.uint8:
        raise ImageReadError(f"{path}: evaluation takes 8-bit images, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 4:
        img = np.ascontiguousarray(img[..., :3])
    return img


def list_images(folder: Path) -> list[Path]:
    """Image files of ``folder`` sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def _skimage_records(names: tuple[str, ...] | list[str], label: str) -> list[ImageRecord]:
    return [ImageRecord(label, n, None, lambda n=n: skimage_sample(n)) for n in names]


def resolve_dataset(source: str | Path) -> list[ImageRecord]:
    """The images of a source string (module docstring), in name order.

    Raises:
        DataError: The name cannot be resolved, or the folder holds no image.
    """
    text = str(source)
    match = _SLICE.fullmatch(text)
    part = None
    if match:
        text = match.group(1)
        part = slice(*(int(v) if v else None for v in match.group(2, 3)))
    dataset, _, part_name = text.partition(":")
    if part_name and dataset in splits.PARTS:
        return _split_part(dataset, part_name)
    records = _resolve(text)
    return records[part] if part is not None else records


def _split_part(dataset: str, part: str) -> list[ImageRecord]:
    """The images of a named part of the common split (``"Urban100:test"``), in name order.

    Raises:
        DataError: Unknown part, or an image of the part missing from the dataset.
    """
    parts = splits.PARTS[dataset]
    if part not in parts:
        raise DataError(f"{dataset} has no split part {part!r} (parts: {', '.join(parts)})")
    records = {r.name: r for r in _resolve(dataset)}
    missing = [n for n in parts[part] if n not in records]
    if missing:
        raise DataError(f"{dataset}:{part}: images missing from the dataset: {missing}")
    return [records[n] for n in parts[part]]


def _resolve(text: str) -> list[ImageRecord]:
    path = Path(text).expanduser()
    if text.lower() == "skimage":
        return _skimage_records(SKIMAGE_IMAGES, "skimage")
    if text.startswith("skimage:"):
        return _skimage_records([n for n in text[8:].split(",") if n], "skimage")
    if text == "sample" or text.startswith("sample:"):
        split = text.partition(":")[2] or "train"
        names = {"train": SAMPLE_TRAIN, "val": SAMPLE_VAL, "all": SAMPLE_TRAIN + SAMPLE_VAL}
        if split not in names:
            raise DataError(f"sample split must be train, val or all, got {split!r}")
        return _skimage_records(names[split], f"sample:{split}")
    if path.is_dir():
        folder, label = path, path.name
    elif os.sep in text:
        raise DataError(f"{path}: no such image folder")
    else:
        found = settings.dataset_dir(text)
        if found is None:
            where = settings.data_dir()
            hint = f"not in {where}" if where is not None else "ESRGAN_LAB_DATA is not set"
            raise DataError(
                f"dataset {text!r} not found ({hint}); give a folder, or use 'skimage' "
                "for the images scikit-image ships (see data/README.md)"
            )
        folder, label = found, text
    files = list_images(folder)
    if not files:
        raise DataError(f"{folder}: no image files")
    return [ImageRecord(label, f.stem, f, lambda f=f: read_gt(f)) for f in files]


def as_training_image(img: np.ndarray) -> np.ndarray:
    """Any decoded image -> ``(H, W, 3)`` uint8 BGR (gray replicated, alpha dropped,
    16-bit rounded to 8 bits), the form training works on."""
    if img.dtype == np.uint16:
        img = np.round(img.astype(np.float64) / 257.0).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def load_source(source: str) -> list[NamedImage]:
    """Every image of ``source`` in memory, as training uses them (:func:`as_training_image`).

    Raises:
        DataError: Unknown source or no images.
        ImageReadError: An unreadable file.
    """
    records = resolve_dataset(source)
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:  # cv2 decoding releases the GIL
        arrays = list(
            pool.map(
                lambda r: as_training_image(read_image(r.path) if r.path else r.load()), records
            )
        )
    return [NamedImage(r.name, a) for r, a in zip(records, arrays)]


def sample_hr_images(split: str = "train") -> list[NamedImage]:
    """The scikit-image smoke-run images of ``split`` (``load_source("sample:<split>")``)."""
    return load_source(f"sample:{split}")


def dataset_images(name: str) -> list[NamedImage]:
    """The HR images of a named set under ``ESRGAN_LAB_DATA`` (``load_source(name)``)."""
    return load_source(name)
