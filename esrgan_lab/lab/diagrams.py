"""Architecture diagrams drawn by code (matplotlib), so they never go stale."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ..model.rrdbnet import RES_SCALE, RRDBNet


def _box(ax, x: float, y: float, w: float, h: float, text: str, color: str) -> None:
    ax.add_patch(
        FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", fc=color, ec="0.2", lw=1.0)
    )
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8)


def _arrow(ax, xy0: tuple[float, float], xy1: tuple[float, float], **kw) -> None:
    style = kw.pop("connectionstyle", "arc3")
    ax.add_patch(
        FancyArrowPatch(
            xy0,
            xy1,
            arrowstyle="-|>",
            mutation_scale=9,
            lw=0.9,
            connectionstyle=style,
            color=kw.pop("color", "0.2"),
            **kw,
        )
    )


def draw_architecture(model: RRDBNet | None = None) -> plt.Figure:
    """Three-row figure: the generator, one RRDB, and one residual dense block.

    Channel counts and the number of blocks are read from ``model`` (default: the
    official x4 configuration), so the diagram always matches the code.
    """
    model = model if model is not None else RRDBNet(num_block=23)
    nf, gc, nb = model.num_feat, model.num_grow_ch, model.num_block
    fig, axes = plt.subplots(3, 1, figsize=(10, 7.4))
    for ax in axes:
        ax.set_xlim(0, 10)
        ax.set_ylim(-0.6, 2)  # room below the residual arcs for their labels
        ax.axis("off")

    # Row 1: the generator
    ax = axes[0]
    ax.set_title(f"RRDBNet (x{model.scale}): {nb} RRDBs, nf={nf}, gc={gc}", fontsize=10)
    stages = [
        ("LQ", "#eeeeee"),
        ("conv_first", "#cfe2f3"),
        (f"body\n{nb} x RRDB", "#f9cb9c"),
        ("conv_body", "#cfe2f3"),
        ("+", "#ffffff"),
        ("up x2\nconv_up1", "#d9ead3"),
        ("up x2\nconv_up2", "#d9ead3"),
        ("conv_hr", "#cfe2f3"),
        ("conv_last", "#cfe2f3"),
        ("SR", "#eeeeee"),
    ]
    w, gap = 0.82, 0.18
    for i, (label, color) in enumerate(stages):
        _box(ax, 0.05 + i * (w + gap), 0.7, w, 0.6, label, color)
        if i:
            _arrow(ax, (0.05 + i * (w + gap) - gap, 1.0), (0.05 + i * (w + gap), 1.0))
    _arrow(
        ax,
        (0.05 + 1 * (w + gap) + w / 2, 0.7),
        (0.05 + 4 * (w + gap) + w / 2, 0.7),
        connectionstyle="arc3,rad=0.35",
    )
    ax.text(3.0, -0.4, "global residual (no scaling)", fontsize=7, ha="center")

    # Row 2: RRDB = three RDBs in a residual, scaled by beta
    ax = axes[1]
    ax.set_title("RRDB: residual in residual", fontsize=10)
    labels = ["x", "RDB", "RDB", "RDB", f"x {RES_SCALE}", "+", "out"]
    for i, label in enumerate(labels):
        color = "#fce5cd" if label == "RDB" else "#ffffff" if label in "+x" else "#eeeeee"
        _box(ax, 0.3 + i * 1.4, 0.7, 1.0, 0.6, label, color)
        if i:
            _arrow(ax, (0.3 + i * 1.4 - 0.4, 1.0), (0.3 + i * 1.4, 1.0))
    _arrow(ax, (0.8, 0.7), (0.3 + 5 * 1.4 + 0.5, 0.7), connectionstyle="arc3,rad=0.15")
    ax.text(
        4.5, -0.4, f"beta = {RES_SCALE}: residual scaling (paper Sec. 3.1)", fontsize=7, ha="center"
    )

    # Row 3: residual dense block
    ax = axes[2]
    ax.set_title("Residual dense block: every conv sees all earlier features", fontsize=10)
    convs = [f"conv{k}\n{nf + (k - 1) * gc}->{gc if k < 5 else nf}" for k in range(1, 6)]
    for i, label in enumerate(["x"] + convs + [f"x {RES_SCALE} +x"]):
        color = "#cfe2f3" if label.startswith("conv") else "#eeeeee"
        _box(ax, 0.1 + i * 1.4, 0.9, 1.1, 0.6, label, color)
        if i:
            _arrow(ax, (0.1 + i * 1.4 - 0.3, 1.2), (0.1 + i * 1.4, 1.2))
    for src in range(0, 4):  # dense connections: output k feeds every later conv
        for dst in range(src + 2, 6):
            _arrow(
                ax,
                (0.65 + src * 1.4, 0.9),
                (0.65 + dst * 1.4, 0.9),
                connectionstyle="arc3,rad=0.25",
                color="0.6",
                alpha=0.6,
            )
    ax.text(
        5.0,
        -0.5,
        "LeakyReLU(0.2) after conv1-4; no BatchNorm; conv init MSRA x 0.1",
        fontsize=7,
        ha="center",
    )
    fig.tight_layout()
    return fig
