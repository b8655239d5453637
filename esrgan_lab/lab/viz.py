"""Plot helpers for the notebooks, and the one function that writes figures.

Every figure in ``figures/`` is written by :func:`savefig`: PNG, fixed dpi, no
timestamp or software-version metadata, atomically, so that regenerating a figure with
the same inputs gives the same bytes and a failed run never leaves half a file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

if os.environ.get("MPLBACKEND") is None and not os.environ.get("DISPLAY"):
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..data.images import tensor_to_array  # noqa: E402
from ..errors import ConfigError  # noqa: E402
from ..fileio import atomic_path  # noqa: E402
from ..settings import figures_dir  # noqa: E402

if TYPE_CHECKING:
    from .findings import Finding

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
        if target.is_file() and same_picture(tmp, target):
            # Why: CPUs with and without AVX512 round the last bit of some activations
            # differently, which moves a handful of pixels by one level; keeping the stored
            # file then leaves a fresh clone's checkout clean after `make figures`.
            tmp.write_bytes(target.read_bytes())
    return target


#: :func:`same_picture`'s tolerance: at most this many levels (of 255) on at most this
#: fraction of the pixel values.
SAME_PICTURE_LEVELS = 1
SAME_PICTURE_FRACTION = 1e-3


def same_picture(a: str | Path, b: str | Path) -> bool:
    """Whether two PNG files show the same picture up to last-bit rounding: equal shapes and
    at most :data:`SAME_PICTURE_LEVELS` levels of difference on at most
    :data:`SAME_PICTURE_FRACTION` of the values."""
    import cv2

    x = cv2.imread(str(a), cv2.IMREAD_UNCHANGED)
    y = cv2.imread(str(b), cv2.IMREAD_UNCHANGED)
    if x is None or y is None or x.shape != y.shape:
        return False
    diff = np.abs(x.astype(np.int16) - y.astype(np.int16))
    return bool(diff.max() <= SAME_PICTURE_LEVELS and (diff > 0).mean() <= SAME_PICTURE_FRACTION)


def to_rgb8(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """Any image of the project -> ``(H, W, 3)`` RGB uint8 for display.

    Args:
        image: An OpenCV array as :func:`esrgan_lab.data.images.read_image` returns it
            (``(H, W)`` gray, ``(H, W, 3)`` BGR or ``(H, W, 4)`` BGRA; uint8 or uint16;
            alpha is dropped), or an RGB float tensor ``(1, 3, H, W)`` / ``(3, H, W)``
            (or one gray channel) with values in ``[0, 1]``.
    """
    arr = tensor_to_array(image) if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.dtype == np.uint16:
        arr = np.round(arr.astype(np.float64) / 257.0).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise ConfigError(f"expected a uint8/uint16 OpenCV array or a tensor, got {arr.dtype}")
    if arr.ndim == 2:
        return np.ascontiguousarray(np.repeat(arr[:, :, None], 3, axis=2))
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        return np.ascontiguousarray(arr[:, :, 2::-1])
    raise ConfigError(f"unsupported image shape {arr.shape}")


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
        rgb = to_rgb8(images[name])
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
    ax.imshow(to_rgb8(image), interpolation="nearest")
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


# --- studies: one colour per variant, seeds as a band --------------------------------

#: Colours of the variants of a study, in order; every panel of a study uses the same.
PALETTE: tuple[str, ...] = (
    "#1b6ca8",  # blue: the paper's choice comes first in every study
    "#d1495b",
    "#edae49",
    "#66a182",
    "#8d6a9f",
    "#00798c",
    "#2e4057",  # dark slate and brown: for plots with seven or eight series
    "#a0522d",
)
#: Reference lines (bicubic and other baselines).
REFERENCE_COLOR = "#555555"


def seed_curves(
    ax: plt.Axes,
    runs: dict[str, list[dict]],
    key: str,
    *,
    colors: dict[str, str] | None = None,
    smooth: int = 1,
) -> None:
    """Per variant, the mean over seeds of curve ``key`` and a band from its min to max.

    Args:
        ax: Where to draw.
        runs: ``{variant: [run record per seed]}``, each with ``curves[key] = [[it, v], ...]``
            (see :func:`esrgan_lab.lab.runs.run_record`).
        key: Curve name, e.g. ``"val_psnr"`` or ``"l_pix"``.
        colors: ``{variant: colour}``; default :data:`PALETTE` in order.
        smooth: Trailing moving-average window applied to each seed's curve first.
    """
    colors = colors or {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(runs)}
    for variant, recs in runs.items():
        curves = [np.asarray(r["curves"].get(key, []), dtype=np.float64) for r in recs]
        curves = [c for c in curves if len(c)]
        if not curves:
            continue
        n = min(len(c) for c in curves)
        iters = curves[0][:n, 0]
        vals = np.stack([_moving_average(c[:n, 1], smooth) for c in curves])
        label = variant if len(curves) == 1 else f"{variant} ({len(curves)} seeds)"
        ax.plot(iters, np.nanmean(vals, 0), color=colors[variant], lw=1.6, label=label)
        if len(curves) > 1:
            lo, hi = np.nanmin(vals, 0), np.nanmax(vals, 0)
            ax.fill_between(iters, lo, hi, color=colors[variant], alpha=0.2, lw=0)


def loss_and_validation(
    runs: dict[str, list[dict]],
    *,
    bicubic_val: float,
    title: str,
    smooth: int = 5,
    val_title: str = "validation",
    val_bottom: float | None = None,
) -> plt.Figure:
    """Two panels per study: the L1 training loss (moving average, log axis) and the
    validation Y-PSNR against bicubic's, each arm's seed mean with its min-max band.

    Args:
        runs: ``{arm: [run record per seed]}`` with ``l_pix`` and ``val_psnr`` curves
            (:func:`seed_curves`); colours follow :data:`PALETTE` in the arms' order.
        bicubic_val: Bicubic's validation Y-PSNR, drawn dashed.
        title: The figure's title (name the study, its size and where the results come from).
        smooth: Moving-average window of the loss curves.
        val_title: Title of the validation panel (say how the networks were evaluated).
        val_bottom: Lower limit of the validation axis (default: matplotlib's), e.g. to keep
            a collapsed seed's band from flattening the others.
    """
    colors = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(runs)}
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11.5, 3.8))
    seed_curves(ax0, runs, "l_pix", colors=colors, smooth=smooth)
    seed_curves(ax1, runs, "val_psnr", colors=colors)
    ax1.axhline(bicubic_val, color=REFERENCE_COLOR, ls="--", lw=1, label="bicubic")
    ax0.set(xlabel="iteration", ylabel="L1 loss (moving average)", yscale="log")
    ax0.set_title("training loss")
    ax1.set(xlabel="iteration", ylabel="validation Y-PSNR (dB)", title=val_title)
    if val_bottom is not None:
        ax1.set_ylim(val_bottom, None)
    ax1.legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1:
        return values
    out = np.empty_like(values)
    for i in range(len(values)):
        seg = values[max(0, i - window + 1) : i + 1]
        seg = seg[np.isfinite(seg)]
        out[i] = seg.mean() if len(seg) else np.nan
    return out


def seed_points(
    ax: plt.Axes,
    values: dict[str, list[float]],
    *,
    colors: dict[str, str] | None = None,
    reference: float | None = None,
    reference_label: str = "bicubic",
) -> None:
    """One column per variant: every seed's value as a dot and their mean as a bar tick.

    Showing each seed (rather than a mean alone) lets the reader judge the spread.
    """
    colors = colors or {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(values)}
    for x, (variant, vals) in enumerate(values.items()):
        ax.scatter([x] * len(vals), vals, color=colors[variant], s=28, zorder=3)
        ax.hlines(np.mean(vals), x - 0.25, x + 0.25, color=colors[variant], lw=2.5)
    if reference is not None:
        ax.axhline(reference, color=REFERENCE_COLOR, ls="--", lw=1, label=reference_label)
        ax.legend(fontsize=8, loc="best")
    ax.set_xticks(range(len(values)))
    ax.set_xticklabels([wrap(v) for v in values], fontsize=8)


#: Colour of each verdict outcome (blue/orange/grey: distinct with red-green colour blindness;
#: the outcome is also written beside each row).
OUTCOME_COLORS: dict[str, str] = {
    "reproduced": "#2166ac",
    "contradicted": "#d6604d",
    "inconclusive": "#777777",
}


def paired_effects(findings: Sequence[Finding], *, title: str) -> plt.Figure:
    """The verdicts of a study as the statistics see them: per claim, each seed's paired
    difference ``A - B`` (dots), their mean (diamond) and 95 % t interval (bar), and 0.

    A verdict is *reproduced* when the bar lies wholly on the predicted side of 0 (shaded)
    and *contradicted* when wholly on the other (:mod:`esrgan_lab.lab.stats`). Each claim
    gets its own axis around 0, so that an effect of a tenth of a dB is as readable as one
    of several dB: compare magnitudes by the numbers written beside each row, not by
    length. A claim whose optional arm was not trained reads "not run". An event-rate
    endpoint is decided by its exact McNemar test, whose p-value is written instead of the
    interval; its t interval is then drawn dashed, as a description only.

    Args:
        findings: From :func:`esrgan_lab.lab.findings.study_findings`.
        title: The figure's title (name the study and where its results come from).
    """
    fig, axes = plt.subplots(
        len(findings), 1, figsize=(10, 0.95 * len(findings) + 0.9), squeeze=False
    )
    for i, (ax, f) in enumerate(zip(axes[:, 0], findings)):
        a, b = f.claim.arms
        unit = f.claim.endpoint.unit
        shift = f.claim.endpoint.shift
        label = f"{wrap(a, 34)}\nminus {wrap(b, 34)}" + (f"\nshift: {shift}" if shift else "")
        ax.set_yticks([0])
        ax.set_yticklabels([label], fontsize=8)
        ax.set_ylim(-0.5, 0.5)
        ax.axvline(0, color=REFERENCE_COLOR, ls="--", lw=1)
        if f.effect is None:
            ax.set_xlim(-1, 1)
            ax.set_xticks([])
            ax.text(
                1.01,
                0,
                "not run",
                transform=ax.get_yaxis_transform(),
                va="center",
                fontsize=8,
                color=REFERENCE_COLOR,
            )
            continue
        e = f.effect
        color = OUTCOME_COLORS.get(str(f.outcome), REFERENCE_COLOR)
        values = [v for v in (*e.differences, e.low, e.high, 0.0) if np.isfinite(v)]
        lo, hi = min(values), max(values)
        pad = 0.12 * (hi - lo or 1.0)
        ax.set_xlim(lo - pad, hi + pad)
        # The side of 0 the registration predicts.
        if f.claim.direction == "higher":
            ax.axvspan(0, hi + pad, color=OUTCOME_COLORS["reproduced"], alpha=0.07, lw=0)
        else:
            ax.axvspan(lo - pad, 0, color=OUTCOME_COLORS["reproduced"], alpha=0.07, lw=0)
        jitter = np.linspace(-0.18, 0.18, len(e.differences))
        ax.scatter(e.differences, jitter, s=16, color=color, alpha=0.65, zorder=3)
        # An event-rate endpoint is decided by the exact McNemar test; its t interval is
        # then only descriptive, and drawn thin and dashed.
        rate = f.rate_test is not None
        ax.hlines(0, e.low, e.high, color=color, lw=1.2 if rate else 3, ls="--" if rate else "-")
        ax.plot(e.mean, 0, "D", color=color, ms=6, zorder=4)
        basis = (
            f"McNemar p = {f.rate_test.p_value:.3f}" if rate else f"[{e.low:+.3f}, {e.high:+.3f}]"
        )
        ax.text(
            1.01,
            0,
            f"{f.outcome}\n{e.mean:+.3f} {unit}".rstrip() + f"\n{basis}",
            transform=ax.get_yaxis_transform(),
            va="center",
            fontsize=8,
            color=color,
        )
        ax.tick_params(axis="x", labelsize=8)
        following = findings[i + 1].claim.endpoint if i + 1 < len(findings) else None
        if following is None or following.metric != f.claim.endpoint.metric:
            units = f" ({unit})" if unit else ""
            ax.set_xlabel(
                f"{f.claim.endpoint.metric}: A - B per seed{units}; predicted side shaded",
                fontsize=8,
            )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def wrap(text: str, width: int = 16) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def crop_row(crops: dict[str, np.ndarray], *, title: str = "", panel: float = 2.2) -> plt.Figure:
    """Crops side by side at the same zoom, each titled (e.g. a study's gallery)."""
    fig, axes = plt.subplots(1, len(crops), figsize=(panel * len(crops), panel + 0.5))
    for ax, (name, crop) in zip(np.atleast_1d(axes), crops.items()):
        ax.imshow(to_rgb8(crop), interpolation="nearest")
        ax.set_title(wrap(name, 22), fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
