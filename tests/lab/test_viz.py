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


def test_paired_effects_draws_each_verdict_from_its_interval() -> None:
    """On the stored deep_trunk_v2 findings: one axis per claim, the mean and the 95 %
    interval drawn where the statistics put them, 0 and every seed's difference in view,
    the outcome written beside the row in its colour; a claim not run says so."""
    import dataclasses

    from matplotlib.collections import LineCollection

    from esrgan_lab.lab import findings

    found = findings.study_findings("deep_trunk_v2")
    skipped = dataclasses.replace(found[0], effect=None, outcome="not run")
    fig = viz.paired_effects([*found, skipped], title="t")
    axes = fig.axes
    assert len(axes) == len(found) + 1
    for ax, f in zip(axes, found):
        e = f.effect
        (mean_line,) = [ln for ln in ax.lines if ln.get_marker() == "D"]
        assert mean_line.get_xdata()[0] == e.mean
        (bar,) = [c for c in ax.collections if isinstance(c, LineCollection)]
        segments = bar.get_segments()
        assert np.allclose(segments[0][:, 0], [e.low, e.high])
        lo, hi = ax.get_xlim()
        assert lo < min(0.0, *e.differences) and hi > max(0.0, *e.differences)
        (label,) = [t for t in ax.texts]
        assert label.get_text().startswith(f.outcome)
        assert label.get_color() == viz.OUTCOME_COLORS[f.outcome]
    assert [f.outcome for f in found].count("contradicted") == 1
    assert axes[-1].texts[0].get_text() == "not run"


def test_paired_effects_shows_a_rate_endpoint_by_its_mcnemar_test() -> None:
    """An event-rate claim is decided by the exact McNemar test: its p-value is written and
    the t interval drawn thin, as a description."""
    import dataclasses

    from matplotlib.collections import LineCollection

    from esrgan_lab.lab import findings
    from esrgan_lab.lab.stats import McNemar

    plain = findings.study_findings("deep_trunk_v2")[0]
    rated = dataclasses.replace(plain, rate_test=McNemar(3, 0, 1, 1, 0.25))
    fig = viz.paired_effects([plain, rated], title="t")
    widths = []
    for ax in fig.axes:
        (bar,) = [c for c in ax.collections if isinstance(c, LineCollection)]
        widths.append(bar.get_linewidth()[0])
    assert widths[1] < widths[0]
    assert fig.axes[1].texts[0].get_text().endswith("McNemar p = 0.250")
    assert fig.axes[0].texts[0].get_text().endswith("]")


def test_paired_effects_names_a_shifted_endpoint_and_a_unitless_metric() -> None:
    """Claims that differ only by their shifted test data are told apart by their labels,
    and a metric without a unit (NIQE) gets no empty brackets."""
    import dataclasses

    from esrgan_lab.lab import findings

    plain = findings.study_findings("deep_trunk_v2")[0]
    endpoint = dataclasses.replace(plain.claim.endpoint, shift="dark (gain 0.5)", unit="")
    shifted = dataclasses.replace(plain, claim=dataclasses.replace(plain.claim, endpoint=endpoint))
    ax = viz.paired_effects([shifted], title="t").axes[0]
    assert ax.get_yticklabels()[0].get_text().endswith("\nshift: dark (gain 0.5)")
    assert "()" not in ax.get_xlabel() and ax.get_xlabel().endswith(
        "per seed; predicted side shaded"
    )
    assert ax.texts[0].get_text().split("\n")[1] == f"{plain.effect.mean:+.3f}"


def test_savefig_keeps_a_stored_figure_that_differs_by_last_bit_rounding(tmp_path) -> None:
    """A figure redrawn on another CPU may move a few pixels by one level: the stored file is
    kept (the checkout stays clean); a real change replaces it."""
    import cv2
    import matplotlib.pyplot as plt

    from esrgan_lab.lab import viz

    def draw(value: float):
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.imshow(np.full((8, 8), value), cmap="gray", vmin=0, vmax=1)
        return fig

    target = viz.savefig(draw(0.5), "f", directory=tmp_path)
    drawn = cv2.imread(str(target), cv2.IMREAD_UNCHANGED)
    nudged = drawn.copy()
    nudged[0, :3] = np.clip(nudged[0, :3].astype(int) + 1, 0, 255).astype(np.uint8)
    cv2.imwrite(str(target), nudged)
    stored = target.read_bytes()
    viz.savefig(draw(0.5), "f", directory=tmp_path)
    assert target.read_bytes() == stored  # kept: three values off by one level
    assert viz.same_picture(target, target)
    viz.savefig(draw(0.9), "f", directory=tmp_path)
    assert target.read_bytes() != stored  # replaced: the picture changed
    back = cv2.imread(str(target), cv2.IMREAD_UNCHANGED)
    assert not np.array_equal(back, nudged) and back.shape == drawn.shape
    plt.close("all")
