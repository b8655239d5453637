"""tools/nbtool.py: storing a notebook keeps only the outputs nbval checks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]


def _nbtool():
    spec = importlib.util.spec_from_file_location("nbtool", REPO / "tools" / "nbtool.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_store_notebook_keeps_only_checked_outputs(tmp_path):
    nb = nbformat.v4.new_notebook()
    checked = nbformat.v4.new_code_cell("print(6 * 7)")
    checked.metadata["tags"] = ["nbval-check-output"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# title"),
        checked,
        nbformat.v4.new_code_cell("print('not pinned')"),
    ]
    path = tmp_path / "t.ipynb"
    nbformat.write(nb, path)
    _nbtool().store_notebook(path)
    stored = nbformat.read(path, as_version=4)
    assert stored.cells[1].outputs[0]["text"] == "42\n"
    assert stored.cells[2].outputs == [] and stored.cells[2].execution_count is None
    assert "papermill" not in stored.metadata
