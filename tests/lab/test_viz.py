"""The notebook layer's shared figures draw what their arguments hold."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from esrgan_lab.lab import viz  # noqa: E402


def _record(offset: float) -> dict:
    its = list(range(0, 101, 10))
    return {
        "curves": {
            "l_pix": [[i, 0.1 / (1 + i) + offset] for i in its],
            "val_psnr": [[i, 20.0 + i / 50 + offset] for i in its],
        }
    }


def test_loss_and_validation_draws_each_arm_and_bicubic() -> None:
    runs = {"A": [_record(0.0), _record(0.01)], "B": [_record(0.5)]}
    fig = viz.loss_and_validation(runs, bicubic_val=19.5, title="study X")
    loss_ax, val_ax = fig.axes
    assert loss_ax.get_yscale() == "log"
    labels = [line.get_label() for line in val_ax.get_lines()]
    assert labels == ["A (2 seeds)", "B", "bicubic"]
    a_line = val_ax.get_lines()[0]
    np.testing.assert_allclose(a_line.get_ydata()[-1], 22.005)  # the seed mean at 100
    assert val_ax.get_lines()[2].get_ydata()[0] == 19.5
    assert fig._suptitle.get_text() == "study X"
    # colours follow the palette in the arms' order, the same in both panels
    assert loss_ax.get_lines()[1].get_color() == val_ax.get_lines()[1].get_color() == viz.PALETTE[1]


def test_loss_and_validation_names_the_panel_and_keeps_the_floor() -> None:
    runs = {"A": [_record(0.0)]}
    fig = viz.loss_and_validation(
        runs, bicubic_val=19.5, title="t", val_title="validation (eval mode)", val_bottom=15.0
    )
    val_ax = fig.axes[1]
    assert val_ax.get_title() == "validation (eval mode)"
    assert val_ax.get_ylim()[0] == 15.0 and val_ax.get_ylim()[1] > 22.0
    default = viz.loss_and_validation(runs, bicubic_val=19.5, title="t").axes[1]
    assert default.get_title() == "validation" and default.get_ylim()[0] > 15.0
