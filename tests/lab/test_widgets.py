"""esrgan_lab.lab.widgets: headless rule, callbacks, pictures, memory estimates shown.

Widgets are built with ipywidgets but without a frontend: traitlets observers run
synchronously, so setting a control's ``value`` runs the callback before the next line.
"""

from __future__ import annotations

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import esrgan_lab as lab
from esrgan_lab.errors import ConfigError
from esrgan_lab.lab import widgets
from esrgan_lab.model import memory
from esrgan_lab.model.complexity import CONVENTIONS, complexity_report

TINY_SPEC = lab.ModelSpec(num_block=1, num_feat=16, num_grow_ch=8, scale=4)
SIZE = 32


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> RGB uint8 (the oracle for what an Image widget shows)."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None, "not a PNG"
    return bgr[..., ::-1]


# --------------------------------------------------------------------------- headless rule


@pytest.mark.parametrize(
    ("env", "override", "expected"),
    [
        (None, None, True),
        ("1", None, False),
        ("true", None, False),
        ("0", None, True),
        ("", None, True),
        ("1", True, True),
        (None, False, False),
    ],
)
def test_is_interactive_rule(monkeypatch, env, override, expected):
    if env is None:
        monkeypatch.delenv(widgets.HEADLESS_ENV, raising=False)
    else:
        monkeypatch.setenv(widgets.HEADLESS_ENV, env)
    assert widgets.is_interactive(override) is expected


def test_headless_env_gives_static_figures_not_tracked_by_pyplot(monkeypatch):
    monkeypatch.setenv(widgets.HEADLESS_ENV, "1")
    before = plt.get_fignums()
    fig = widgets.architecture_explorer(TINY_SPEC, size=SIZE)
    assert isinstance(fig, Figure)
    assert plt.get_fignums() == before
    params = complexity_report(TINY_SPEC, size=SIZE)["parameters"]
    assert f"{params:,} parameters" in fig.texts[0].get_text()
    # the override beats the environment
    explorer = widgets.architecture_explorer(TINY_SPEC, size=SIZE, interactive=True)
    assert isinstance(explorer, widgets.ArchitectureExplorer)


# --------------------------------------------------------------------------- explorer


def test_explorer_slider_updates_labels_and_plot():
    explorer = widgets.architecture_explorer(TINY_SPEC, size=SIZE, interactive=True)
    first_plot = explorer.plot.value
    assert decode_png(first_plot).shape[2] == 3

    explorer.controls["num_block"].value = 3
    model = lab.RRDBNet(num_block=3, num_feat=16, num_grow_ch=8, scale=4)
    assert explorer.labels["parameters"].value == f"{lab.count_parameters(model):,}"
    report = complexity_report(TINY_SPEC.replace(num_block=3), size=SIZE)
    flops = report["flops"]["flop_counter"] / 1e9
    assert explorer.labels["flop_counter"].value == f"{flops:,.2f} G"
    assert explorer.labels["vendor"].value.startswith(f"{report['flops']['vendor']:,.3f}")
    assert explorer.plot.value != first_plot
    weights = memory.format_bytes(4 * lab.count_parameters(model))
    assert explorer.labels["weights"].value == weights

    explorer.controls["size"].value = 64  # 4x the pixels -> 4x the FLOPs, same parameters
    assert explorer.labels["parameters"].value == f"{lab.count_parameters(model):,}"
    assert explorer.labels["flop_counter"].value == f"{4 * flops:,.2f} G"
    assert explorer.status.value == ""


def test_explorer_convention_dropdown_changes_plot_only():
    explorer = widgets.ArchitectureExplorer(TINY_SPEC, size=SIZE)
    labels = {k: v.value for k, v in explorer.labels.items()}
    plot = explorer.plot.value
    explorer.controls["convention"].value = "thop"
    assert {k: v.value for k, v in explorer.labels.items()} == labels
    assert explorer.plot.value != plot
    assert set(CONVENTIONS) <= set(explorer.labels)


def test_explorer_displays_as_a_widget():
    explorer = widgets.ArchitectureExplorer(TINY_SPEC, size=SIZE)
    bundle = explorer._repr_mimebundle_()
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == explorer.widget.model_id


# --------------------------------------------------------------------------- comparison


def images(h: int = 40, w: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (
        rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
    )


def test_compose_comparison_pixels():
    before, after = images()
    box = widgets.zoom_box(before.shape, (30, 45), 8)  # centre (30, 45) -> y 26, x 41
    assert box == (26, 41, 8, 8)
    view, zoom = widgets.compose_comparison(before, after, 20, box, zoom_width=32)
    np.testing.assert_array_equal(view[:, :19], before[:, :19])
    assert (view[:, 19:21] == widgets.SPLIT_COLOR).all()
    np.testing.assert_array_equal(view[:26, 21:], after[:26, 21:])
    assert (view[26, 41:49] == widgets.ZOOM_COLOR).all()  # top edge of the zoom box
    crop_b = before[26:34, 41:49]
    crop_a = after[26:34, 41:49]
    np.testing.assert_array_equal(zoom[:, :32], np.kron(crop_b, np.ones((4, 4, 1), np.uint8)))
    np.testing.assert_array_equal(zoom[:, 36:], np.kron(crop_a, np.ones((4, 4, 1), np.uint8)))
    assert (zoom[:, 32:36] == 255).all()


def test_zoom_box_is_shifted_inside_the_image():
    assert widgets.zoom_box((40, 60), (0, 0), 16) == (0, 0, 16, 16)
    assert widgets.zoom_box((40, 60), (39, 59), 16) == (24, 44, 16, 16)
    assert widgets.zoom_box((40, 60), (20, 30), 100) == (0, 0, 40, 60)


def test_comparison_slider_callbacks_render_the_composition():
    before, after = images()
    slider = widgets.comparison_slider(
        before[..., ::-1].copy(),
        after[..., ::-1].copy(),
        interactive=True,  # BGR in
    )
    assert slider.controls["split"].value == 30
    slider.controls["split"].value = 12
    slider.controls["zoom_x"].value = 10
    slider.controls["zoom_size"].value = 10
    box = slider.box()
    assert box == (15, 5, 10, 10)
    view, zoom = widgets.compose_comparison(before, after, 12, box)
    np.testing.assert_array_equal(decode_png(slider.view.value), view)
    np.testing.assert_array_equal(decode_png(slider.zoom.value), zoom)


def test_comparison_accepts_tensors_and_rejects_size_mismatch():
    before, after = images(8, 8)
    tensor = torch.from_numpy(before).permute(2, 0, 1)[None].float() / 255
    np.testing.assert_array_equal(widgets.to_rgb8(tensor), before)
    np.testing.assert_array_equal(widgets.to_rgb8(before[..., ::-1]), before)
    gray16 = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    expected = np.round(gray16 / 257).astype(np.uint8)
    np.testing.assert_array_equal(widgets.to_rgb8(gray16)[..., 1], expected)
    with pytest.raises(ConfigError, match="one size"):
        widgets.comparison_slider(before, after[:4], interactive=True)
    fig = widgets.comparison_slider(tensor, after[..., ::-1].copy(), interactive=False)
    assert isinstance(fig, Figure)


# --------------------------------------------------------------------------- interpolation


@pytest.fixture
def two_models() -> tuple[torch.nn.Module, torch.nn.Module]:
    config = dict(num_block=1, num_feat=8, num_grow_ch=4, scale=4)
    torch.manual_seed(0)
    a = lab.RRDBNet(**config).eval()
    torch.manual_seed(1)
    b = lab.RRDBNet(**config).eval()
    return a, b


def test_interpolation_slider_outputs_match_interpolated_model(two_models):
    a, b = two_models
    lq = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    slider = widgets.interpolation_slider(a.state_dict(), b, lq, alpha=0.0, interactive=True)
    np.testing.assert_array_equal(slider.outputs[0.0], lab.upscale(lq, a))
    np.testing.assert_array_equal(decode_png(slider.view.value), lab.upscale(lq, a)[..., ::-1])

    slider.controls["alpha"].value = 0.3
    oracle = lab.RRDBNet(num_block=1, num_feat=8, num_grow_ch=4, scale=4).eval()
    state = {k: 0.7 * a.state_dict()[k] + 0.3 * b.state_dict()[k] for k in a.state_dict()}
    oracle.load_state_dict(state)
    expected = lab.upscale(lq, oracle)
    got = slider.outputs[0.3]
    assert got.shape == (48, 40, 3)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    assert "0.30" in slider.caption.value

    cached = slider.outputs[0.3]
    slider.controls["alpha"].value = 1.0
    slider.controls["alpha"].value = 0.3
    assert slider.outputs[0.3] is cached  # computed once per alpha step
    assert sorted(slider.outputs) == [0.0, 0.3, 1.0]
    np.testing.assert_array_equal(slider.outputs[1.0], lab.upscale(lq, b))


def test_interpolation_slider_static(two_models, monkeypatch):
    a, b = two_models
    monkeypatch.setenv(widgets.HEADLESS_ENV, "1")
    lq = torch.rand(1, 3, 8, 8)
    fig = widgets.interpolation_slider(a, b, lq, alpha=0.8)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert [t.split(":")[0] for t in titles] == ["alpha = 0.00", "alpha = 0.80", "alpha = 1.00"]
    with pytest.raises(ConfigError):
        widgets.interpolation_slider(a, b, lq, steps=1, interactive=True)
