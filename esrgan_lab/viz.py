"""Plot helpers for the notebooks, and the one function that writes figures.

Every figure in ``figures/`` is written by :func:`savefig`: PNG, fixed dpi, no
timestamp or software-version metadata, atomically, so that regenerating a figure with
the same inputs gives the same bytes and a failed run never leaves half a file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

if os.environ.get("MPLBACKEND") is None and not os.environ.get("DISPLAY"):
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .settings import figures_dir  # noqa: E402

#: Resolution of every saved figure.
DPI = 110


def savefig(fig: plt.Figure, name: str, *, directory: str | Path | None = None) -> Path:
    """Save ``fig`` as ``<figures>/<name>.png`` at :data:`DPI`, atomically.

    Args:
        fig: The matplotlib figure.
        name: File stem, e.g. ``"01_rrdb_structure"`` (a ``.png`` suffix is optional).
        directory: Override the folder (default :func:`esrgan_lab.settings.figures_dir`).

    Returns:
        The path written.
    """
    folder = Path(directory) if directory is not None else figures_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stem = name[:-4] if name.endswith(".png") else name
    target = folder / f"{stem}.png"
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=".png", dir=folder)
    os.close(fd)
    try:
        # metadata={"Software": None} drops the matplotlib version, so the bytes only
        # change when the picture does.
        fig.savefig(tmp, dpi=DPI, format="png", metadata={"Software": None})
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def to_display(image: np.ndarray) -> np.ndarray:
    """HWC BGR uint8 (cv2) or CHW/NCHW RGB float tensor-like array -> HWC RGB for imshow."""
    arr = np.asarray(image)
    if arr.ndim == 4:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3, 4):
        arr = np.transpose(arr, (1, 2, 0))
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0.0, 1.0)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return arr
