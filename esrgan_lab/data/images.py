"""Image files in and out, and the one conversion between OpenCV arrays and tensors.

Arrays at the file boundary are exactly what ``cv2.imread(path, cv2.IMREAD_UNCHANGED)``
returns:

* ``(H, W)`` grayscale, ``(H, W, 3)`` BGR or ``(H, W, 4)`` BGRA;
* ``uint8`` or ``uint16`` (16-bit PNG / TIFF keep their depth).

Tensors inside the project are RGB ``float32`` in ``[0, 1]``, ``NCHW``. The conversion
divides by the *dtype's* maximum (255 or 65535), never by the data's maximum, so a dark
16-bit image stays dark and a round trip is exact.

Reading goes through ``np.fromfile`` + ``cv2.imdecode`` rather than ``cv2.imread`` because
``imread`` cannot open non-ASCII paths on Windows and silently returns ``None`` on every
kind of failure; here each failure raises :class:`~esrgan_lab.errors.ImageReadError`
naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import torch

from ..errors import ConfigError, ImageReadError
from ..fileio import atomic_path

#: File extensions treated as images when a folder is given (lower case, with dot).
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".tif",
    ".tiff",
    ".webp",
    ".bmp",
)

#: Formats that store 16 bits per channel (others get 8-bit data).
_SIXTEEN_BIT_EXTS = (".png", ".tif", ".tiff")
#: Formats that store an alpha channel.
_ALPHA_EXTS = (".png", ".tif", ".tiff", ".webp")

#: Value of full intensity for each supported array dtype.
DTYPE_MAX: dict[np.dtype, float] = {
    np.dtype(np.uint8): 255.0,
    np.dtype(np.uint16): 65535.0,
}


def dtype_max(dtype: np.dtype | type) -> float:
    """Full-scale value of an image dtype: 255 for uint8, 65535 for uint16.

    Raises:
        ConfigError: For any other dtype.
    """
    key = np.dtype(dtype)
    if key not in DTYPE_MAX:
        raise ConfigError(f"unsupported image dtype {key}; expected uint8 or uint16")
    return DTYPE_MAX[key]


def is_image_file(path: str | Path) -> bool:
    """``True`` if ``path`` has one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as OpenCV does with ``IMREAD_UNCHANGED``.

    Args:
        path: PNG, JPEG, TIFF, WebP or BMP file. Non-ASCII paths work.

    Returns:
        ``(H, W)`` gray, ``(H, W, 3)`` BGR or ``(H, W, 4)`` BGRA array, ``uint8`` or
        ``uint16``. A single-channel ``(H, W, 1)`` decode is squeezed to ``(H, W)``.

    Raises:
        ImageReadError: The file is missing, a folder, empty, unreadable, corrupt, not an
            image, or has a sample type other than 8/16-bit unsigned.
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image file")
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if data.size == 0:
        raise ImageReadError(f"{path}: empty file")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # some decoders raise instead of returning None
        raise ImageReadError(f"{path}: corrupt or not an image ({exc.err})") from exc
    if image is None or image.size == 0:
        raise ImageReadError(f"{path}: corrupt or not an image (OpenCV cannot decode it)")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ImageReadError(f"{path}: unsupported layout {image.shape}")
    if image.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(
            f"{path}: unsupported sample type {image.dtype} (only 8- and 16-bit unsigned)"
        )
    return image


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def fit_to_format(image: np.ndarray, ext: str) -> np.ndarray:
    """Convert ``image`` to what the format ``ext`` can store.

    JPEG and BMP store 8-bit without alpha, WebP 8-bit with alpha: 16-bit data is
    rounded to 8 bits (divide by 257) and alpha is dropped where the format has none.

    Args:
        image: ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``, uint8 or uint16.
        ext: Target extension with or without dot, e.g. ``".jpg"``.
    """
    ext = "." + ext.lower().lstrip(".")
    if image.dtype == np.uint16 and ext not in _SIXTEEN_BIT_EXTS:
        image = np.clip(np.rint(image.astype(np.float32) / 257.0), 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 4 and ext not in _ALPHA_EXTS:
        image = np.ascontiguousarray(image[:, :, :3])
    return image


def can_store(image: np.ndarray, ext: str) -> bool:
    """Whether format ``ext`` keeps ``image``'s depth and alpha without conversion."""
    ext = "." + ext.lower().lstrip(".")
    if image.dtype == np.uint16 and ext not in _SIXTEEN_BIT_EXTS:
        return False
    return not (image.ndim == 3 and image.shape[2] == 4 and ext not in _ALPHA_EXTS)


def write_image(
    path: str | Path,
    image: np.ndarray,
    *,
    protect: Iterable[str | Path] = (),
    params: list[int] | None = None,
) -> Path:
    """Write ``image`` to ``path`` atomically (temp file in the same folder + ``os.replace``).

    The format comes from the extension. The data must fit it (see :func:`can_store`):
    call :func:`fit_to_format` first to convert deliberately.

    Args:
        path: Output file; its folder must exist.
        image: ``(H, W)``, ``(H, W, 3)`` BGR or ``(H, W, 4)`` BGRA, uint8 or uint16.
        protect: Paths that must never be overwritten (the inputs of a run).
        params: Extra ``cv2.imencode`` flags, e.g. ``[cv2.IMWRITE_JPEG_QUALITY, 95]``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ConfigError: ``path`` is one of ``protect``, has an unknown extension, or the
            format cannot store the image's depth or alpha.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise ConfigError(f"{path}: unknown image extension {ext!r}")
    for other in protect:
        if _same_file(path, Path(other)):
            raise ConfigError(f"{path}: refusing to overwrite an input file")
    if image.dtype not in (np.uint8, np.uint16):
        raise ConfigError(f"{path}: cannot write dtype {image.dtype}; expected uint8 or uint16")
    if not can_store(image, ext):
        raise ConfigError(
            f"{path}: {ext} cannot store a {image.dtype} image with {_channels(image)} "
            "channels; use .png or .tiff"
        )
    ok, encoded = cv2.imencode(ext, image, params or [])
    if not ok:
        raise ConfigError(f"{path}: OpenCV failed to encode the image as {ext}")
    with atomic_path(path, suffix=f"{ext}.tmp", make_parents=False) as tmp:
        tmp.write_bytes(encoded.tobytes())
    return path


def _channels(image: np.ndarray) -> int:
    return 1 if image.ndim == 2 else image.shape[2]


# --------------------------------------------------------------------------- conversion


def round_to_uint(
    img: np.ndarray | torch.Tensor, data_range: float = 255.0, dtype: np.dtype | type = np.uint8
) -> np.ndarray:
    """Float values -> integer image: scale to the dtype's full range, round, clip.

    The project's one rounding rule: halves round *up* (``floor(x + 0.5)``), as MATLAB's
    ``uint8()`` does, so the bicubic LQ images match MATLAB's byte for byte. Layout is
    kept (no channel reordering).

    Args:
        img: Float array or tensor on ``[0, data_range]``.
        data_range: 255 for values on the 8-bit scale, 1 for ``[0, 1]`` images.
        dtype: ``np.uint8`` or ``np.uint16``.

    Returns:
        An array of ``dtype`` with the shape of ``img``.
    """
    full = dtype_max(dtype)
    if isinstance(img, torch.Tensor):
        t = img.detach().to("cpu", torch.float64 if full > 255 else torch.float32)
        return t.mul(full / data_range).add_(0.5).floor_().clamp_(0, full).numpy().astype(dtype)
    arr = np.asarray(img, dtype=np.float64) * (full / data_range)
    return np.clip(np.floor(arr + 0.5), 0, full).astype(dtype)


def array_to_tensor(image: np.ndarray, *, batch: bool = True) -> torch.Tensor:
    """OpenCV array -> RGB float32 tensor on ``[0, 1]``: the project's one conversion.

    Values are divided by the dtype's full scale (255 or 65535), never by the data's
    maximum. Channels are reordered from OpenCV's BGR(A) to RGB(A).

    Args:
        image: ``(H, W)`` gray, ``(H, W, 3)`` BGR or ``(H, W, 4)`` BGRA; uint8 or uint16.
        batch: Add the leading batch axis.

    Returns:
        ``(1, C, H, W)`` (``(C, H, W)`` without ``batch``) with ``C`` 1 (gray), 3 (RGB)
        or 4 (RGBA).

    Raises:
        ConfigError: Another shape or dtype.
    """
    scale = dtype_max(image.dtype)
    if image.ndim == 2:
        planes = image[:, :, None]
    elif image.ndim == 3 and image.shape[2] == 3:
        planes = image[:, :, ::-1]
    elif image.ndim == 3 and image.shape[2] == 4:
        planes = image[:, :, [2, 1, 0, 3]]
    else:
        raise ConfigError(f"unsupported image shape {image.shape}")
    t = torch.from_numpy(np.ascontiguousarray(planes.transpose(2, 0, 1))).to(torch.float32)
    t = t.div_(scale)
    return t.unsqueeze(0) if batch else t


def tensor_to_array(tensor: torch.Tensor, dtype: np.dtype | type = np.uint8) -> np.ndarray:
    """Inverse of :func:`array_to_tensor`: RGB(A) float tensor -> OpenCV array.

    Values are clipped to ``[0, 1]`` and rounded with :func:`round_to_uint`'s rule.

    Args:
        tensor: ``(1, C, H, W)`` or ``(C, H, W)`` with ``C`` 1 (gray), 3 (RGB) or 4 (RGBA).
        dtype: ``np.uint8`` or ``np.uint16``.

    Returns:
        ``(H, W)``, ``(H, W, 3)`` BGR or ``(H, W, 4)`` BGRA of ``dtype``.

    Raises:
        ConfigError: A batch of more than one image or another channel count.
    """
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise ConfigError(f"tensor_to_array takes one image, got batch {tensor.shape[0]}")
        tensor = tensor[0]
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3, 4):
        raise ConfigError(f"expected a (1|3|4, H, W) tensor, got {tuple(tensor.shape)}")
    order = {1: [0], 3: [2, 1, 0], 4: [2, 1, 0, 3]}[tensor.shape[0]]
    hwc = tensor.detach()[order].permute(1, 2, 0).clamp(0, 1)
    out = round_to_uint(hwc, data_range=1.0, dtype=dtype)
    return np.ascontiguousarray(out[:, :, 0] if out.shape[2] == 1 else out)
