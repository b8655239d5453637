"""Plot helpers for the notebooks, and the one function that writes figures.

Every figure in ``figures/`` is written by :func:`savefig`: PNG, fixed dpi, no
timestamp or software-version metadata, atomically, so that regenerating a figure with
the same inputs gives the same bytes and a failed run never leaves half a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

if os.environ.get("MPLBACKEND") is None and not os.environ.get("DISPLAY"):
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..fileio import atomic_path  # noqa: E402
from ..settings import figures_dir  # noqa: E402

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
    if not stem or "/" in stem or "\\" in stem or stem.startswith("."):
        raise ValueError(f"figure name must be a plain file stem, got {name!r}")
    target = folder / f"{stem}.png"
    with atomic_path(target, suffix=".png") as tmp:
        # metadata={"Software": None} drops the matplotlib version, so the bytes only
        # change when the picture does.
        fig.savefig(tmp, dpi=DPI, format="png", metadata={"Software": None})
    return target


def to_display(image: np.ndarray) -> np.ndarray:
    """CHW/NCHW or HWC float array in [0, 1] (RGB) -> HWC for imshow, clipped.

    Channel order is kept: pass cv2 (BGR) arrays through :func:`bgr_to_rgb` first.
    """
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


# --- inference figures (04_inference) -----------------------------------------------


def bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    """An OpenCV array (gray, BGR or BGRA; uint8 or uint16) -> RGB float in [0, 1] for imshow.

    Gray becomes a 3-channel gray picture; alpha is dropped.
    """
    arr = np.asarray(image)
    full = 65535.0 if arr.dtype == np.uint16 else 255.0 if arr.dtype == np.uint8 else 1.0
    arr = arr.astype(np.float32) / full
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.clip(arr[:, :, 2::-1], 0.0, 1.0)


def comparison_grid(
    images: dict[str, np.ndarray],
    crops: list[tuple[int, int, int, int]],
    *,
    panel_size: float = 3.0,
    colors: tuple[str, ...] = ("#e6194b", "#3cb44b", "#4363d8", "#f58231"),
) -> plt.Figure:
    """Images side by side with boxes, and below them the boxed regions zoomed.

    Args:
        images: Title -> OpenCV array, all the same height and width (e.g. bicubic, SR,
            ground truth at the output size).
        crops: ``(y, x, h, w)`` boxes in those images' pixels; one zoom row per box.
        panel_size: Inches per panel.
        colors: Box colours, cycled.

    Returns:
        A figure with ``1 + len(crops)`` rows and ``len(images)`` columns.
    """
    from matplotlib.patches import Rectangle

    names = list(images)
    shapes = {images[n].shape[:2] for n in names}
    if len(shapes) != 1:
        raise ValueError(f"images must share one size, got {sorted(shapes)}")
    rows, cols = 1 + len(crops), len(names)
    fig, axes = plt.subplots(
        rows, cols, figsize=(panel_size * cols, panel_size * rows), squeeze=False
    )
    for c, name in enumerate(names):
        rgb = bgr_to_rgb(images[name])
        ax = axes[0, c]
        ax.imshow(rgb, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        for k, (y, x, h, w) in enumerate(crops):
            color = colors[k % len(colors)]
            ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, lw=1.5, ec=color))
            zoom = axes[1 + k, c]
            zoom.imshow(rgb[y : y + h, x : x + w], interpolation="nearest")
            for side in zoom.spines.values():
                side.set_edgecolor(color)
                side.set_linewidth(2)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def tile_overlay(
    image: np.ndarray,
    tiles: list,
    *,
    scale: int = 1,
    ax: plt.Axes | None = None,
    highlight: int | None = 0,
) -> plt.Axes:
    """Draw the tile grid of :func:`esrgan_lab.inference.upscale.tile_grid` over an image.

    Kept regions are solid white boxes; the padded region (with context) of tile
    ``highlight`` is drawn dashed in red.

    Args:
        image: OpenCV array the tiles refer to (or its ``scale`` x upscaled version).
        tiles: :class:`esrgan_lab.inference.upscale.Tile` objects, in input pixels.
        scale: Multiply tile coordinates by this (draw on the output).
        ax: Axes to draw on (default: a new figure).
        highlight: Index of the tile whose padded input region is shown, or ``None``.
    """
    from matplotlib.patches import Rectangle

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(bgr_to_rgb(image), interpolation="nearest")
    for t in tiles:
        ax.add_patch(
            Rectangle(
                (t.x0 * scale - 0.5, t.y0 * scale - 0.5),
                (t.x1 - t.x0) * scale,
                (t.y1 - t.y0) * scale,
                fill=False,
                lw=1.0,
                ec="white",
            )
        )
    if highlight is not None and tiles:
        t = tiles[highlight]
        ax.add_patch(
            Rectangle(
                (t.px0 * scale - 0.5, t.py0 * scale - 0.5),
                (t.px1 - t.px0) * scale,
                (t.py1 - t.py0) * scale,
                fill=False,
                lw=2.0,
                ec="red",
                ls="--",
            )
        )
    ax.set_xticks([])
    ax.set_yticks([])
    return ax
