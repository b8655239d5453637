"""The notebooks as documents: their prose states no result, their results are checked by
nbval, and they define no reusable code (their figures and listings on the rendered page:
tests/test_notebook_render.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHECK = "nbval-check-output"
#: Numbers the prose may state because they are the paper's or a definition's, not a
#: measurement: each with where it comes from.
CONSTANTS: dict[str, str] = {
    "0.2": "residual scaling beta (Sec. 3.1)",
    "5e-3": "lambda, the RaGAN weight (Eq. 3)",
    "1e-2": "eta, the L1 weight (Eq. 3)",
    "653.675": "the vendor table's GFLOPs (quoted to be explained)",
    "19.688": "the vendor table's fp32 PSNR (quoted to be explained)",
    "0.605": "the vendor table's fp32 SSIM",
    "21.939": "the vendor table's fp16 PSNR",
    "0.639": "the vendor table's fp16 SSIM",
    "18.801": "the vendor table's int8 PSNR",
    "0.510": "the vendor table's int8 SSIM",
    "2018": "the paper's year",
    "2015": "HED's year",
    "2013": "NIQE's year",
    "2017": "FID's year",
    "2004": "SSIM's year",
    "1809.00219": "the paper's arXiv number",
    "95": "the confidence level of the intervals (95 %)",
}
NUMBER = re.compile(r"(?<![\w.`^/-])\d+(?:\.\d+)?(?:e-?\d+)?(?![\w`])")


def _prose(cell_source: str) -> str:
    """Markdown without code spans, code blocks, images, links' targets, headings' numbers,
    section references (Sec. 3.1, Fig. 6, Eq. 3) and file names."""
    text = re.sub(r"```.*?```", " ", cell_source, flags=re.S)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"(?m)^#+ *\d+\.", "#", text)
    text = re.sub(r"(?m)^ *\d+\. ", " ", text)  # numbered list items
    text = re.sub(r"\b(Sec|Fig|Eq|Table|Figs|Secs)\.? ?\d+(\.\d+)?(-\d+)?", " ", text)
    text = re.sub(r"\b[\w-]*\d[\w-]*\.(png|py|yaml|pth|onnx|ipynb|safetensors)\b", " ", text)
    text = re.sub(r"\b\d+-bit\b", " ", text)
    names = r"conv|relu|pool|Set|BSD|SunHays|DIV|PI|x|nb|nf|gc|vgg|VGG|lab-[\w-]*|ESRGAN_x"
    text = re.sub(rf"\b({names})\d[\w.-]*", " ", text)
    return text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_prose_states_no_number_that_no_cell_computed(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    found = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for number in NUMBER.findall(_prose(cell.source)):
            if number not in CONSTANTS and not (number.isdigit() and int(number) < 10):
                found.append(number)
    assert not found, f"{path.name}: numbers in prose {found}; render them from a cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_results_are_checked_and_no_code_is_defined(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    computing = [c for c in code_cells if "parameters" not in c.metadata.get("tags", [])]
    checked = [c for c in computing if CHECK in c.metadata.get("tags", [])]
    printing = [c for c in computing if re.search(r"\b(print|display)\(", c.source)]
    assert len(checked) >= len(printing) / 2, (
        f"{path.name}: {len(checked)} checked of {len(printing)}"
    )
    for cell in code_cells:
        tree = ast.parse(cell.source)
        defs = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)]
        assert not defs, f"{path.name} defines {defs}: reusable code belongs in esrgan_lab"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "What you will learn" in first.source
    assert any("## Exercises" in c.source for c in nb.cells if c.cell_type == "markdown")
    assert "parameters" in code_cells[0].metadata.get("tags", [])
