"""The notebooks for the reader who does not run them.

Each *stored* notebook is rendered to HTML by nbconvert (``tools/book.py``, no execution),
as a notebook viewer would render it, and the page must show every figure the notebook
saves, every source listing it prints and every widget's static view. ``figures/`` holds
no PNG that no notebook makes, and ``make book`` builds a site with no broken link or
image.

When a test here fails after a notebook was edited, store it again:
``python tools/nbtool.py store notebooks/NN_name.ipynb``.
"""

from __future__ import annotations

import base64
import functools
import html
import re
import struct
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from tests.helpers import load_tool

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SAVEFIG = re.compile(r"savefig\(fig, \"(\w+)\"\)")
WIDGET = re.compile(r"\b(architecture_explorer|comparison_slider|interpolation_slider)\(")
LISTING = "inspect.getsource("
STORE = "store it again: python tools/nbtool.py store"


def _book():
    return load_tool("book")


@functools.cache
def _html(path: Path) -> str:
    return _book().notebook_html(path)


def _text(page: str) -> str:
    """The page's text: tags removed, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def _images(cell) -> list[str]:
    return [
        "".join(o.data["image/png"].split())
        for o in cell.outputs
        if "image/png" in o.get("data", {})
    ]


def _saved(path: Path) -> set[str]:
    nb = nbformat.read(path, as_version=4)
    return {n for c in nb.cells if c.cell_type == "code" for n in SAVEFIG.findall(c.source)}


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_listing_and_widget_is_on_the_rendered_page(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    page = _html(path)
    text = _text(page)
    problems = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        names = SAVEFIG.findall(cell.source)
        images = _images(cell)
        if names or WIDGET.search(cell.source):
            what = ", ".join(names) or WIDGET.search(cell.source).group(1)
            if len(images) < max(len(names), 1):
                problems.append(f"cell {cell.id} ({what}): {len(images)} stored image(s)")
            for b64 in images:
                if b64 not in page:
                    problems.append(f"cell {cell.id} ({what}): stored image not on the page")
        if LISTING in cell.source:
            listing = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
            if "def " not in listing:
                problems.append(f"cell {cell.id}: source listing not stored")
            missing = [ln for ln in listing.splitlines() if ln.strip() and ln.strip() not in text]
            if missing:
                problems.append(
                    f"cell {cell.id}: listing lines not on the page, e.g. {missing[0]!r}"
                )
    assert not problems, f"{path.name} ({STORE}):\n" + "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_figures_are_outputs_not_relative_links(path: Path) -> None:
    """GitHub does not render ``../figures/x.png`` links; the stored outputs show them."""
    nb = nbformat.read(path, as_version=4)
    links = [
        m
        for c in nb.cells
        if c.cell_type == "markdown"
        for m in re.findall(r"\]\((\.\./[^)]*)\)", c.source)
    ]
    assert not links, f"{path.name}: relative links {links}"
    for name in _saved(path):
        assert (REPO / "figures" / f"{name}.png").is_file(), f"figures/{name}.png (make figures)"


def test_every_figure_png_is_made_by_exactly_one_notebook() -> None:
    makers: dict[str, list[str]] = {}
    for path in NOTEBOOKS:
        for name in _saved(path):
            makers.setdefault(name, []).append(path.stem)
    shared = {n: m for n, m in makers.items() if len(m) > 1}
    assert not shared, f"figures saved by several notebooks: {shared}"
    on_disk = {p.stem for p in (REPO / "figures").glob("*.png")}
    orphans = sorted(on_disk - set(makers))
    assert not orphans, f"figures/ holds PNGs no notebook makes: {orphans}"


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "img" and a.get("src") is not None:
            self.images.append(a["src"])


def _refs(page: Path) -> _Refs:
    parser = _Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def test_book_builds_with_no_broken_link_or_image(tmp_path: Path) -> None:
    pages = _book().build(tmp_path)
    assert pages[0].name == "index.html"
    assert {p.stem for p in pages[1:]} == {p.stem for p in NOTEBOOKS}
    index = _refs(pages[0])
    assert [h for h in index.links if h.endswith(".html")] == [f"{p.stem}.html" for p in NOTEBOOKS]
    problems = []
    for page in pages:
        refs = _refs(page)
        for href in refs.links:
            url = urlsplit(href)
            if url.scheme or url.netloc:
                continue  # external (the paper, nbconvert's CDN scripts): not checked offline
            target = tmp_path / unquote(url.path) if url.path else page
            if not target.is_file():
                problems.append(f"{page.name}: broken link {href}")
            elif url.fragment and not {url.fragment, unquote(url.fragment)} & _refs(target).ids:
                # as a browser looks it up: the raw fragment, then the percent-decoded one
                problems.append(f"{page.name}: no anchor for {href}")
        for src in refs.images:
            if src.startswith("data:image/png;base64,"):
                width, height = _png_size(base64.b64decode(src.split(",", 1)[1]))
                if not (width and height):
                    problems.append(f"{page.name}: empty image")
            elif src.startswith("data:"):
                continue
            elif not (tmp_path / unquote(urlsplit(src).path)).is_file():
                problems.append(f"{page.name}: missing image {src}")
    assert not problems, "\n".join(problems)
    for path in NOTEBOOKS:
        page = _refs(tmp_path / f"{path.stem}.html")
        assert len(page.images) >= len(_saved(path)), (
            f"{path.name}: fewer images than figures ({STORE})"
        )
