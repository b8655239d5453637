"""``python tools/book.py [--out build/book]``: the stored notebooks as a static HTML site.

``make book`` is this script. It renders each ``notebooks/NN_*.ipynb`` *as stored* (no
execution, so it takes seconds and needs no data, weights or kernel) with nbconvert's
``lab`` template, and writes an ``index.html`` that links them in order: the page a
teacher links to. Images are the notebooks' stored outputs, embedded as ``data:`` URIs,
so the site is a folder of self-contained pages that can be copied anywhere.

Links between notebooks (``02_bn_removal_ablation.ipynb``) are rewritten to the pages
(``02_bn_removal_ablation.html``); each page starts with a bar linking the index and the
previous and next notebook. :func:`notebook_html` is what ``tests/test_notebook_render.py``
checks the notebooks with.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO_ROOT / "notebooks"
OUT = REPO_ROOT / "build" / "book"
TEMPLATE = "lab"
_IPYNB_LINK = re.compile(r'href="(\./)?(\d\d_[\w-]+)\.ipynb(#[^"]*)?"')


def notebooks() -> list[Path]:
    """The book's chapters, in order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def title(nb) -> str:
    """The notebook's first heading (its title), without the ``#``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return "untitled"


def notebook_html(path: str | Path) -> str:
    """The stored notebook at ``path`` as one self-contained HTML page (not executed)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    exporter = HTMLExporter(template_name=TEMPLATE)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title(nb)}})
    return _IPYNB_LINK.sub(lambda m: f'href="{m.group(2)}.html{m.group(3) or ""}"', body)


def _nav(pages: list[Path], i: int) -> str:
    links = ['<a href="index.html">index</a>']
    if i > 0:
        links.append(f'<a href="{pages[i - 1].stem}.html">previous: {pages[i - 1].stem}</a>')
    if i + 1 < len(pages):
        links.append(f'<a href="{pages[i + 1].stem}.html">next: {pages[i + 1].stem}</a>')
    return (
        '<nav class="book-nav" style="padding: 0.5em 1em; font-family: sans-serif;">'
        + " · ".join(links)
        + "</nav>"
    )


def _index(entries: list[tuple[str, str, str]]) -> str:
    items = "\n".join(
        f'<li><a href="{href}">{html.escape(name)}</a>: {html.escape(heading)}</li>'
        for href, name, heading in entries
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>esrgan-lab notebooks</title>
<style>
body {{ font-family: sans-serif; max-width: 52em; margin: 2em auto; line-height: 1.5; }}
</style>
</head>
<body>
<h1>esrgan-lab: the notebooks</h1>
<p>ESRGAN (Wang et al., ECCVW 2018) explained and measured, one notebook per topic. These
pages are the notebooks as stored in the repository, with their stored outputs (figures,
source listings, results); nothing was executed to build them. To run them:
<code>make lab</code>; to regenerate the stored outputs:
<code>python tools/nbtool.py store notebooks/NN_name.ipynb</code>.</p>
<ol>
{items}
</ol>
</body>
</html>
"""


def build(out: str | Path = OUT) -> list[Path]:
    """Write the site into ``out``; return the pages written, the index first."""
    import nbformat

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pages = notebooks()
    written, entries = [], []
    for i, path in enumerate(pages):
        body = notebook_html(path)
        nav = _nav(pages, i)
        body = re.sub(r"(<body[^>]*>)", lambda m, nav=nav: m.group(1) + nav, body, count=1)
        target = out / f"{path.stem}.html"
        target.write_text(body, encoding="utf-8")
        written.append(target)
        entries.append((target.name, path.stem, title(nbformat.read(path, as_version=4))))
    index = out / "index.html"
    index.write_text(_index(entries), encoding="utf-8")
    return [index, *written]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="book", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(OUT), help=f"output folder (default {OUT})")
    args = parser.parse_args(argv)
    pages = build(args.out)
    print(f"wrote {len(pages)} pages to {args.out} (open {pages[0]})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
