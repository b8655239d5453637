"""One-line interactive widgets for the notebooks, with a static fallback.

* :func:`architecture_explorer`: sliders for ``num_block``, ``num_feat``, ``num_grow_ch``,
  ``scale`` and the input size; shows parameters, FLOPs in every counting convention
  (:func:`esrgan_lab.model.complexity.complexity_report`), a memory estimate
  (:mod:`esrgan_lab.model.memory`) and per-component bar charts.
* :func:`comparison_slider`: a before/after split of two same-size images (e.g. bicubic
  vs SR) with a movable zoom window.
* :func:`interpolation_slider`: network interpolation (Wang et al. 2018, Sec. 3.4) between
  two generators, one output per alpha step, cached.

**Headless rule.** Each function returns a live widget when the notebook is interactive and
a static :class:`matplotlib.figure.Figure` of the given defaults otherwise. The decision
is explicit, never guessed from the frontend: ``interactive=True/False`` wins; with
``interactive=None`` the widget is static exactly when the environment variable
``ESRGAN_LAB_HEADLESS`` is ``1`` (``make figures`` and ``make test`` set it, ``make lab``
does not). The static figures are not registered with pyplot, so a cell that returns one
shows it once and nothing leaks between cells.

Every picture a live widget shows is rendered here to PNG bytes (matplotlib's Agg canvas,
or OpenCV for plain images) and put in an :class:`ipywidgets.Image`, so the widgets look
the same under any matplotlib backend.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

from ..errors import ConfigError
from ..model.complexity import CONVENTIONS, complexity_report
from ..model.memory import MemoryEstimate, format_bytes, memory_estimate
from ..model.spec import ModelSpec
from .viz import to_rgb8

#: Environment variable that makes every widget fall back to its static figure.
HEADLESS_ENV = "ESRGAN_LAB_HEADLESS"
_TRUE = ("1", "true", "yes", "on")

#: Box colour of the zoom window, and the split line (RGB).
ZOOM_COLOR = (255, 200, 0)
SPLIT_COLOR = (255, 255, 255)

__all__ = [
    "HEADLESS_ENV",
    "ArchitectureExplorer",
    "ComparisonSlider",
    "InterpolationSlider",
    "architecture_explorer",
    "architecture_figure",
    "comparison_slider",
    "compose_comparison",
    "interpolation_slider",
    "is_interactive",
    "to_rgb8",
    "zoom_box",
]


def is_interactive(interactive: bool | None = None) -> bool:
    """The headless rule (see the module docstring): live widgets or a static figure?

    Args:
        interactive: ``True``/``False`` overrides everything; ``None`` reads
            ``ESRGAN_LAB_HEADLESS`` (static when it is ``1``/``true``/``yes``/``on``).
    """
    if interactive is not None:
        return bool(interactive)
    return os.environ.get(HEADLESS_ENV, "").strip().lower() not in _TRUE


# --------------------------------------------------------------------------- rendering


def _new_figure(width: float, height: float) -> Figure:
    # A bare Figure (not plt.figure): not tracked by pyplot, so it is displayed only
    # where it is returned and garbage-collected with its widget.
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _image() -> Any:
    import ipywidgets as w

    # align_self: show a PNG at its own size instead of stretched to the cell's width.
    return w.Image(format="png", layout=w.Layout(max_width="100%", align_self="flex-start"))


def figure_png(fig: Figure, dpi: int = 90) -> bytes:
    """PNG bytes of ``fig`` (Agg canvas, no software metadata)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def rgb_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an ``(H, W, 3)`` RGB uint8 array."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:  # pragma: no cover - cv2 always encodes uint8 BGR
        raise RuntimeError("cv2 could not encode the image as PNG")
    return buf.tobytes()


# --------------------------------------------------------------------------- explorer


@functools.lru_cache(maxsize=256)
def _cost(spec: ModelSpec, size: int) -> tuple[dict, MemoryEstimate]:
    return complexity_report(spec, size=size), memory_estimate(spec, size=size)


def _giga(report: dict, convention: str) -> float:
    value = report["flops"][convention]
    return value if convention == "vendor" else value / 1e9


def _flops_text(report: dict, convention: str) -> str:
    if convention == "vendor":
        return f"{_giga(report, convention):,.3f} (the vendor's printed 'GFLOPs')"
    return f"{_giga(report, convention):,.2f} G"


def architecture_figure(
    spec: ModelSpec | None = None, *, size: int = 128, convention: str = "flop_counter"
) -> Figure:
    """Static picture of one architecture: FLOPs and parameters per component.

    The title carries the totals: parameters, FLOPs under ``convention`` and the
    inference memory estimate. Counting runs on the meta device (about 0.1-1 s).

    Args:
        spec: The architecture (default: the paper's x4 RRDBNet).
        size: Input side in pixels (input ``1x3xsize x size``).
        convention: FLOPs convention plotted (:data:`esrgan_lab.model.complexity.CONVENTIONS`).

    Returns:
        A figure not registered with pyplot (two bar charts side by side).
    """
    if convention not in CONVENTIONS:
        raise ConfigError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    spec = spec or ModelSpec()
    report, memory = _cost(spec, size)
    flops = report["flops_per_component"][convention]
    params = {k: v for k, v in report["parameters_per_component"].items() if k != "total"}
    unit = 1.0 if convention == "vendor" else 1e9
    fig = _new_figure(10, 3.6)
    ax_f, ax_p = fig.subplots(1, 2)
    names = [n for n in flops if flops[n] > 0]
    values = [flops[n] / unit for n in names]
    ax_f.barh(names, values, color="#e69138")
    ax_f.set_xscale("log")
    ax_f.invert_yaxis()
    ax_f.set_xlabel(f"GFLOPs ({convention}), input 3x{size}x{size}")
    for y, v in enumerate(values):
        ax_f.text(v, y, f" {v:,.2f}", va="center", fontsize=8)
    ax_f.set_xlim(right=max(values) * 10)
    ax_p.barh(list(params), [v / 1e6 for v in params.values()], color="#3d85c6")
    ax_p.set_xscale("log")
    ax_p.invert_yaxis()
    ax_p.set_xlabel("parameters (millions)")
    for y, v in enumerate(params.values()):
        ax_p.text(v / 1e6, y, f" {v:,}", va="center", fontsize=8)
    ax_p.set_xlim(right=max(params.values()) / 1e6 * 10)
    fig.suptitle(
        f"{spec.describe()}: {report['parameters']:,} parameters, "
        f"{_flops_text(report, convention)} FLOPs, "
        f"~{format_bytes(memory.inference)} inference activations",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


class ArchitectureExplorer:
    """Live explorer of RRDBNet's size and cost; see :func:`architecture_explorer`.

    Attributes:
        controls: ``{"num_block", "num_feat", "num_grow_ch", "scale", "size",
            "convention"}`` -> the ipywidgets that set them.
        labels: ``{"parameters", <each convention>, "weights", "inference", "training"}``
            -> :class:`ipywidgets.Label` showing the current value.
        plot: :class:`ipywidgets.Image` with :func:`architecture_figure` as PNG.
        status: Label with the last error (empty when the configuration is valid).
        widget: The whole :class:`ipywidgets.VBox` (what the notebook displays).
    """

    def __init__(
        self, spec: ModelSpec | None = None, *, size: int = 128, convention: str = "flop_counter"
    ) -> None:
        import ipywidgets as w

        spec = spec or ModelSpec()
        num_block, num_feat, num_grow_ch = spec.num_block, spec.num_feat, spec.num_grow_ch
        scale = spec.scale

        style = {"description_width": "110px"}
        # continuous_update=False: recount only when the slider is released (0.1-1 s each).
        self.controls: dict[str, Any] = {
            "num_block": w.IntSlider(
                value=num_block,
                min=1,
                max=max(32, num_block),
                description="num_block",
                continuous_update=False,
                style=style,
            ),
            "num_feat": w.Dropdown(
                options=sorted({16, 32, 48, 64, 96, 128, num_feat}),
                value=num_feat,
                description="num_feat",
                style=style,
            ),
            "num_grow_ch": w.Dropdown(
                options=sorted({8, 16, 24, 32, 48, 64, num_grow_ch}),
                value=num_grow_ch,
                description="num_grow_ch",
                style=style,
            ),
            "scale": w.Dropdown(
                options=sorted({1, 2, 4, 8, scale}),
                value=scale,
                description="scale",
                style=style,
            ),
            "size": w.IntSlider(
                value=size,
                min=16,
                max=max(1024, size),
                step=16,
                description="input side",
                continuous_update=False,
                style=style,
            ),
            "convention": w.Dropdown(
                options=list(CONVENTIONS),
                value=convention,
                description="plotted FLOPs",
                style=style,
            ),
        }
        names = ["parameters", *CONVENTIONS, "weights", "inference", "training"]
        self.labels: dict[str, Any] = {n: w.Label() for n in names}
        captions = {
            "parameters": "parameters",
            "flop_counter": "FLOPs (torch flop_counter)",
            "conv_macs": "conv MACs",
            "thop": "thop 'MACs'",
            "vendor": "vendor 'GFLOPs'",
            "weights": "weights (fp32)",
            "inference": "inference activations",
            "training": "activations kept for backward",
        }
        rows = [
            w.HBox([w.Label(captions[n], layout=w.Layout(width="220px")), self.labels[n]])
            for n in names
        ]
        self.plot = w.Image(
            format="png", layout=w.Layout(max_width="100%", align_self="flex-start")
        )
        self.status = w.Label()
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.widget = w.VBox(
            [
                w.HTML("<b>RRDBNet explorer</b> (counted on the meta device: no memory used)"),
                w.HBox([w.VBox(list(self.controls.values())), w.VBox(rows)]),
                self.status,
                self.plot,
            ]
        )
        self.widget.add_class("esrgan-lab-explorer")
        self.update()

    def config(self) -> dict[str, Any]:
        """The current control values."""
        return {name: control.value for name, control in self.controls.items()}

    def spec(self) -> ModelSpec:
        """The architecture the controls describe.

        Raises:
            ConfigError: The controls describe no valid architecture.
        """
        sizes = ("num_block", "num_feat", "num_grow_ch", "scale")
        return ModelSpec(**{name: self.controls[name].value for name in sizes})

    def _on_change(self, change: dict) -> None:
        self.update()

    def update(self) -> None:
        """Recount for the current controls and refresh labels and plot."""
        size, convention = self.controls["size"].value, self.controls["convention"].value
        try:
            spec = self.spec()
            report, memory = _cost(spec, size)
            self.plot.value = figure_png(
                architecture_figure(spec, size=size, convention=convention)
            )
        except (ValueError, RuntimeError, ConfigError) as exc:
            self.status.value = f"cannot count this configuration: {exc}"
            return
        self.status.value = ""
        self.labels["parameters"].value = f"{report['parameters']:,}"
        for name in CONVENTIONS:
            self.labels[name].value = _flops_text(report, name)
        self.labels["weights"].value = format_bytes(memory.weights)
        self.labels["inference"].value = f"~{format_bytes(memory.inference)}"
        self.labels["training"].value = f"<= {format_bytes(memory.training)} (batch 1)"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def architecture_explorer(
    spec: ModelSpec | None = None,
    *,
    size: int = 128,
    convention: str = "flop_counter",
    interactive: bool | None = None,
) -> ArchitectureExplorer | Figure:
    """Explore parameters, FLOPs and memory of RRDBNet configurations.

    Args:
        spec: Initial architecture (default: the paper's x4 RRDBNet).
        size: Initial input side in pixels (input ``1x3xsize x size``).
        convention: FLOPs convention plotted (:data:`esrgan_lab.model.complexity.CONVENTIONS`).
        interactive: Override the headless rule (see :func:`is_interactive`).

    Returns:
        An :class:`ArchitectureExplorer` (displays as widgets), or in headless mode
        :func:`architecture_figure` of the given values.
    """
    if not is_interactive(interactive):
        return architecture_figure(spec, size=size, convention=convention)
    return ArchitectureExplorer(spec, size=size, convention=convention)


# --------------------------------------------------------------------------- comparison


def zoom_box(
    shape: tuple[int, ...], center: tuple[int, int], size: int
) -> tuple[int, int, int, int]:
    """The ``(y, x, h, w)`` square of side ``size`` centred on ``center = (y, x)``,
    shifted (not shrunk) to lie inside an image of ``shape`` (and cut to its size)."""
    height, width = shape[:2]
    side_h, side_w = min(size, height), min(size, width)
    y = int(np.clip(center[0] - side_h // 2, 0, height - side_h))
    x = int(np.clip(center[1] - side_w // 2, 0, width - side_w))
    return y, x, side_h, side_w


def _outline(rgb: np.ndarray, box: tuple[int, int, int, int], color, width: int = 2) -> None:
    y, x, h, w = box
    y1, x1 = y + h, x + w
    rgb[y : y + width, x:x1] = color
    rgb[max(y1 - width, y) : y1, x:x1] = color
    rgb[y:y1, x : x + width] = color
    rgb[y:y1, max(x1 - width, x) : x1] = color


def compose_comparison(
    before: np.ndarray,
    after: np.ndarray,
    split: int,
    box: tuple[int, int, int, int],
    *,
    zoom_width: int = 192,
) -> tuple[np.ndarray, np.ndarray]:
    """The split view and the zoom panel of :func:`comparison_slider`, as RGB uint8.

    Args:
        before, after: ``(H, W, 3)`` RGB uint8 of one size (see :func:`to_rgb8`).
        split: Columns ``[0, split)`` show ``before``, ``[split, W)`` show ``after``; a
            2-pixel line (columns ``split - 1`` and ``split``) marks the boundary.
        box: Zoom window ``(y, x, h, w)`` (see :func:`zoom_box`), outlined 2 pixels wide.
        zoom_width: Target width of each enlarged crop; crops are enlarged by the
            integer factor ``max(1, zoom_width // w)`` with nearest neighbour, so every
            source pixel stays a sharp square.

    Returns:
        ``(view, zoom)``: the ``(H, W, 3)`` split view, and the two enlarged crops
        (before | after) side by side with a 4-pixel white gap.
    """
    if before.shape != after.shape:
        raise ConfigError(f"before {before.shape} and after {after.shape} differ in size")
    width = before.shape[1]
    split = int(np.clip(split, 0, width))
    view = after.copy()
    view[:, :split] = before[:, :split]
    view[:, max(split - 1, 0) : min(split + 1, width)] = SPLIT_COLOR
    y, x, h, w = box
    _outline(view, box, ZOOM_COLOR)
    factor = max(1, zoom_width // max(w, 1))

    def enlarge(img: np.ndarray) -> np.ndarray:
        crop = img[y : y + h, x : x + w]
        return np.repeat(np.repeat(crop, factor, axis=0), factor, axis=1)

    gap = np.full((h * factor, 4, 3), 255, np.uint8)
    zoom = np.concatenate([enlarge(before), gap, enlarge(after)], axis=1)
    return view, zoom


def _comparison_figure(view, zoom, labels, split, box) -> Figure:
    height, width = view.shape[:2]
    fig = _new_figure(11, 11 * height / (width + zoom.shape[1] * height / zoom.shape[0]) + 0.6)
    ax_v, ax_z = fig.subplots(
        1, 2, gridspec_kw={"width_ratios": [width / height, zoom.shape[1] / zoom.shape[0]]}
    )
    ax_v.imshow(view, interpolation="nearest")
    ax_v.set_title(f"<- {labels[0]} | {labels[1]} ->   (split at x = {split})", fontsize=9)
    ax_z.imshow(zoom, interpolation="nearest")
    y, x, h, w = box
    ax_z.set_title(f"zoom {w}x{h} at (x={x}, y={y}): {labels[0]} | {labels[1]}", fontsize=9)
    for ax in (ax_v, ax_z):
        ax.axis("off")
    fig.tight_layout()
    return fig


class ComparisonSlider:
    """Live before/after comparison; see :func:`comparison_slider`.

    Attributes:
        before, after: The two images as RGB uint8 (:func:`to_rgb8`).
        controls: ``{"split", "zoom_x", "zoom_y", "zoom_size"}`` -> IntSliders (pixels;
            the zoom position is the window's centre).
        view, zoom: :class:`ipywidgets.Image` of the split view and of the zoom panel.
        widget: The whole :class:`ipywidgets.VBox`.
    """

    def __init__(
        self,
        before: np.ndarray | torch.Tensor,
        after: np.ndarray | torch.Tensor,
        *,
        labels: tuple[str, str] = ("bicubic", "SR"),
        split: float = 0.5,
        zoom: tuple[int, int] | None = None,
        zoom_size: int = 64,
    ) -> None:
        import ipywidgets as w

        self.before, self.after = _pair(before, after)
        self.labels = labels
        height, width = self.before.shape[:2]
        cy, cx = zoom if zoom is not None else (height // 2, width // 2)
        self.controls: dict[str, Any] = {
            "split": w.IntSlider(
                value=int(round(split * width)),
                min=0,
                max=width,
                description="split",
            ),
            "zoom_x": w.IntSlider(value=cx, min=0, max=width - 1, description="zoom x"),
            "zoom_y": w.IntSlider(value=cy, min=0, max=height - 1, description="zoom y"),
            "zoom_size": w.IntSlider(
                value=min(zoom_size, height, width),
                min=min(8, height, width),
                max=min(height, width),
                description="zoom size",
            ),
        }
        self.view = w.Image(
            format="png", layout=w.Layout(max_width="100%", align_self="flex-start")
        )
        self.zoom = w.Image(
            format="png", layout=w.Layout(max_width="100%", align_self="flex-start")
        )
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.controls["split"].layout.width = f"{min(width, 900) + 100}px"
        zoom_column = [self.controls[k] for k in ("zoom_x", "zoom_y", "zoom_size")]
        self.widget = w.VBox(
            [
                w.HTML(f"<b>&larr; {labels[0]}</b> | <b>{labels[1]} &rarr;</b>"),
                self.controls["split"],
                w.HBox([self.view, w.VBox([*zoom_column, w.Label("zoom window:"), self.zoom])]),
            ]
        )
        self.widget.add_class("esrgan-lab-comparison")
        self.update()

    def box(self) -> tuple[int, int, int, int]:
        """The current zoom window ``(y, x, h, w)``."""
        c = self.controls
        return zoom_box(
            self.before.shape, (c["zoom_y"].value, c["zoom_x"].value), c["zoom_size"].value
        )

    def _on_change(self, change: dict) -> None:
        self.update()

    def update(self) -> None:
        """Recompose both pictures for the current slider values."""
        view, zoom = compose_comparison(
            self.before, self.after, self.controls["split"].value, self.box()
        )
        self.view.value = rgb_png(view)
        self.zoom.value = rgb_png(zoom)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _pair(before, after) -> tuple[np.ndarray, np.ndarray]:
    a, b = to_rgb8(before), to_rgb8(after)
    if a.shape != b.shape:
        raise ConfigError(
            f"before {a.shape[1]}x{a.shape[0]} and after {b.shape[1]}x{b.shape[0]} must have "
            "one size (upscale the low-resolution image first, e.g. bicubic)"
        )
    return a, b


def comparison_slider(
    before: np.ndarray | torch.Tensor,
    after: np.ndarray | torch.Tensor,
    *,
    labels: tuple[str, str] = ("bicubic", "SR"),
    split: float = 0.5,
    zoom: tuple[int, int] | None = None,
    zoom_size: int = 64,
    interactive: bool | None = None,
) -> ComparisonSlider | Figure:
    """Compare two images of one size with a movable split and a zoom window.

    Args:
        before, after: OpenCV arrays (gray/BGR/BGRA, uint8/uint16) or RGB ``[0, 1]``
            tensors, same height and width (e.g. bicubic and SR at the output size).
        labels: Names shown for ``before`` and ``after``.
        split: Initial split position as a fraction of the width.
        zoom: Initial centre ``(y, x)`` of the zoom window (default: image centre).
        zoom_size: Initial side of the zoom window in pixels.
        interactive: Override the headless rule (see :func:`is_interactive`).

    Returns:
        A :class:`ComparisonSlider`, or in headless mode a figure of the initial view.

    Raises:
        ConfigError: The images differ in size or are not images.
    """
    if not is_interactive(interactive):
        a, b = _pair(before, after)
        height, width = a.shape[:2]
        split_px = int(round(split * width))
        box = zoom_box(a.shape, zoom if zoom is not None else (height // 2, width // 2), zoom_size)
        view, zoomed = compose_comparison(a, b, split_px, box)
        return _comparison_figure(view, zoomed, labels, split_px, box)
    return ComparisonSlider(
        before, after, labels=labels, split=split, zoom=zoom, zoom_size=zoom_size
    )


# --------------------------------------------------------------------------- interpolation

StateLike = Mapping[str, torch.Tensor] | nn.Module


def _state(obj: StateLike) -> Mapping[str, torch.Tensor]:
    return obj.state_dict() if isinstance(obj, nn.Module) else obj


class InterpolationSlider:
    """Live network interpolation; see :func:`interpolation_slider`.

    Attributes:
        controls: ``{"alpha"}`` -> the FloatSlider (``alpha`` = weight of the second
            network, as :func:`esrgan_lab.weights.loading.interpolate`).
        outputs: ``{alpha rounded to 6 digits: upscaled image}``, filled on demand; each
            alpha runs the network once.
        view: :class:`ipywidgets.Image` of the current output; ``caption``: its Label.
        widget: The whole :class:`ipywidgets.VBox`.
    """

    def __init__(
        self,
        model_a_state: StateLike,
        model_b_state: StateLike,
        lq: np.ndarray | torch.Tensor,
        *,
        alpha: float = 0.8,
        steps: int = 11,
        labels: tuple[str, str] = ("PSNR", "GAN"),
        tile: int | None = None,
    ) -> None:
        import ipywidgets as w

        from ..weights.loading import model_from_state_dict

        if steps < 2:
            raise ConfigError(f"steps must be at least 2, got {steps}")
        self._a, self._b = _state(model_a_state), _state(model_b_state)
        self.lq, self.labels, self.tile = lq, labels, tile
        self.model = model_from_state_dict(self._a)
        self.outputs: dict[float, np.ndarray | torch.Tensor] = {}
        self.controls: dict[str, Any] = {
            "alpha": w.FloatSlider(
                value=alpha,
                min=0.0,
                max=1.0,
                step=1.0 / (steps - 1),
                description="alpha",
                readout_format=".2f",
                continuous_update=False,
            )
        }
        self.caption = w.Label()
        self.view = w.Image(
            format="png", layout=w.Layout(max_width="100%", align_self="flex-start")
        )
        self.controls["alpha"].observe(self._on_change, names="value")
        self.widget = w.VBox([self.controls["alpha"], self.caption, self.view])
        self.widget.add_class("esrgan-lab-interpolation")
        self.update()

    def output(self, alpha: float) -> np.ndarray | torch.Tensor:
        """The upscaled ``lq`` for weights ``(1 - alpha) * a + alpha * b`` (cached)."""
        from ..inference.upscale import upscale
        from ..weights.checkpoints import convert_state_dict, interpolate

        key = round(float(alpha), 6)
        if key not in self.outputs:
            state = convert_state_dict(interpolate(self._a, self._b, key), "basicsr")
            self.model.load_state_dict(state)
            self.outputs[key] = upscale(self.lq, self.model, tile=self.tile)
        return self.outputs[key]

    def _on_change(self, change: dict) -> None:
        self.update()

    def update(self) -> None:
        """Show the output for the current alpha (computing it once)."""
        alpha = self.controls["alpha"].value
        self.view.value = rgb_png(to_rgb8(self.output(alpha)))
        self.caption.value = _alpha_caption(alpha, self.labels)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _alpha_caption(alpha: float, labels: tuple[str, str]) -> str:
    return f"alpha = {alpha:.2f}: {1 - alpha:.2f} x {labels[0]} + {alpha:.2f} x {labels[1]}"


def interpolation_slider(
    model_a_state: StateLike,
    model_b_state: StateLike,
    lq: np.ndarray | torch.Tensor,
    *,
    alpha: float = 0.8,
    steps: int = 11,
    labels: tuple[str, str] = ("PSNR", "GAN"),
    tile: int | None = None,
    interactive: bool | None = None,
) -> InterpolationSlider | Figure:
    """Network interpolation with a slider: ``theta = (1 - alpha) theta_a + alpha theta_b``.

    ESRGAN (Sec. 3.4) blends a PSNR-oriented generator with its GAN fine-tuned version to
    trade fidelity for texture without retraining; the paper's figures use ``alpha=0.8``.

    Args:
        model_a_state, model_b_state: State dicts (any layout) or modules of one
            architecture; ``a`` is the PSNR model (``alpha = 0``), ``b`` the GAN model.
        lq: Low-resolution input: an OpenCV array or an RGB ``[0, 1]`` tensor, as
            :func:`esrgan_lab.inference.upscale.upscale` takes it.
        alpha: Initial weight of ``b``.
        steps: Slider positions from 0 to 1 (11: steps of 0.1).
        labels: Names of ``a`` and ``b``.
        tile: Tile size passed to :func:`~esrgan_lab.inference.upscale.upscale` (``None``:
            whole image).
        interactive: Override the headless rule (see :func:`is_interactive`).

    Returns:
        An :class:`InterpolationSlider`, or in headless mode a figure of the outputs at
        ``0``, ``alpha`` and ``1``.
    """
    if not is_interactive(interactive):
        from ..weights.checkpoints import interpolate
        from ..weights.loading import model_from_state_dict

        a, b = _state(model_a_state), _state(model_b_state)
        model = model_from_state_dict(a)
        from ..inference.upscale import upscale
        from ..weights.checkpoints import convert_state_dict

        alphas = sorted({0.0, round(float(alpha), 6), 1.0})
        fig = _new_figure(3.4 * len(alphas), 3.8)
        for ax, value in zip(fig.subplots(1, len(alphas), squeeze=False)[0], alphas):
            model.load_state_dict(convert_state_dict(interpolate(a, b, value), "basicsr"))
            ax.imshow(to_rgb8(upscale(lq, model, tile=tile)), interpolation="nearest")
            ax.set_title(_alpha_caption(value, labels), fontsize=8)
            ax.axis("off")
        fig.tight_layout()
        return fig
    return InterpolationSlider(
        model_a_state, model_b_state, lq, alpha=alpha, steps=steps, labels=labels, tile=tile
    )
