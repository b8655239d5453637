"""tools/nbtool.py: storing a notebook keeps the checked outputs and every displayed image."""

from __future__ import annotations

from pathlib import Path

import nbformat

from tests.helpers import load_tool

REPO = Path(__file__).resolve().parents[1]


def _nbtool():
    return load_tool("nbtool")


def test_store_notebook_keeps_checked_outputs_and_images(tmp_path, monkeypatch):
    # make test's environment: the store must override both for its kernel
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("ESRGAN_LAB_HEADLESS", raising=False)
    nb = nbformat.v4.new_notebook()
    checked = nbformat.v4.new_code_cell("print(6 * 7)")
    checked.metadata["tags"] = ["nbval-check-output"]
    plot = nbformat.v4.new_code_cell(
        "import os\nimport matplotlib.pyplot as plt\nprint('not pinned')\n"
        "fig, ax = plt.subplots(figsize=(2, 1))\nax.plot([0, 1])\nplt.show()\n"
        "print(os.environ['ESRGAN_LAB_HEADLESS'])"
    )
    returned = nbformat.v4.new_code_cell(
        "from matplotlib.figure import Figure\nfig = Figure(figsize=(2, 1))\nfig.add_subplot()\nfig"
    )
    shown = nbformat.v4.new_code_cell(
        "import sys\nfrom IPython.display import display\nprint('timing')\n"
        "print('warn', file=sys.stderr)\n"
        "display({'text/html': '<pre></pre>', 'text/plain': ''}, raw=True)"  # rich's empty view
    )
    shown.metadata["tags"] = ["store-output"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# title"),
        checked,
        nbformat.v4.new_code_cell("print('not pinned')"),
        plot,
        returned,
        shown,
    ]
    path = tmp_path / "t.ipynb"
    nbformat.write(nb, path)
    _nbtool().store_notebook(path)
    stored = nbformat.read(path, as_version=4)
    assert stored.cells[1].outputs[0]["text"] == "42\n"
    assert stored.cells[2].outputs == [] and stored.cells[2].execution_count is None
    assert [o.get("text") for o in stored.cells[5].outputs] == ["timing\n"]  # no stderr
    for cell in stored.cells[3:5]:
        assert [o.output_type for o in cell.outputs] in (["display_data"], ["execute_result"])
        assert "image/png" in cell.outputs[0].data
    assert "papermill" not in stored.metadata
