"""The PDF edition (initdocs.book.pdf): every chapter and the whole book, printed from the
built book by Debian's Chromium and read back with pdfplumber (text, images and the position
of every character) and pypdf (bookmarks and links). What each PDF must hold is read from the
built HTML pages, independently of the printer."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pdfplumber
import pytest
from bs4 import BeautifulSoup
from conftest import CHAPTERS
from pypdf import PdfReader
from sphinx.testing.util import SphinxTestApp

from initdocs.book import pdf

CHAPTER_IDS = [path.stem for path in CHAPTERS]
MM = 72 / 25.4  # PDF points per millimetre
#: Formulas with scripts, fractions, limits, roots or matrices: their characters do not come
#: out of a PDF in their source order, so the equation test looks for one without them.
LAYOUT = "msub, msup, msubsup, mfrac, munder, mover, munderover, msqrt, mroot, mtable"
#: The book's math font (STIX Two Math, cut to the formulas' glyphs; initdocs.book.mathml).
MATH_FONT = "STIXTwoMath"
RASTER = re.compile(r"\.(png|jpe?g|webp|gif)$")


def chapter_page(html: Path, name: str) -> BeautifulSoup:
    return BeautifulSoup((html / "sessions" / f"{name}.html").read_text("utf-8"), "html.parser")


def heading(page: BeautifulSoup) -> str:
    """A page's title as the reader sees it (without the heading's "#" link)."""
    return page.select_one("article h1").get_text().strip().rstrip("#").strip()


def squeeze(text: str) -> str:
    """Text compared across HTML and PDF: compatibility forms (math italic 𝑥 is x), no spaces."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


@dataclass
class PageRead:
    """What the tests need from one PDF page, read once (pdfminer is slow on big pages)."""

    text: str
    footer: str  # the text in the bottom margin: the footer and the page number
    math: str  # the characters set in the math font, in order
    mono: str  # the characters set in the code font, in order
    past_margin: list[str]  # code characters that end beyond the right margin
    images: int


def read(path: Path, indexes: list[int] | None = None) -> list[PageRead]:
    """Pages of a PDF (all, or those at ``indexes``) as the tests see them."""
    right = float(pdf.MARGIN["right"].removesuffix("mm")) * MM
    bottom = float(pdf.MARGIN["bottom"].removesuffix("mm")) * MM
    pages = []
    with pdfplumber.open(path) as document:
        for index in range(len(document.pages)) if indexes is None else indexes:
            page = document.pages[index]
            mono = [c for c in page.chars if "mono" in c["fontname"].lower()]
            footer = page.crop((0, page.height - bottom, page.width, page.height))
            pages.append(
                PageRead(
                    text=page.extract_text() or "",
                    footer=footer.extract_text() or "",
                    math="".join(c["text"] for c in page.chars if MATH_FONT in c["fontname"]),
                    mono="".join(c["text"] for c in mono),
                    past_margin=[c["text"] for c in mono if c["x1"] > page.width - right + 0.5],
                    images=len(page.images),
                )
            )
    return pages


@pytest.fixture(scope="module")
def edition(html: Path, tmp_path_factory: pytest.TempPathFactory) -> pdf.Edition:
    """The whole edition, printed once from the built book into a temporary folder."""
    return pdf.print_book(html, tmp_path_factory.mktemp("pdf"))


@pytest.fixture(scope="module")
def chapters_read(edition: pdf.Edition) -> dict[str, list[PageRead]]:
    """Every page of every chapter's PDF."""
    return {item.path.stem: read(item.path) for item in edition.chapters}


@pytest.fixture(scope="module")
def book_read(edition: pdf.Edition) -> dict[int, PageRead]:
    """The book's front matter, each chapter's first page and the last page, by index."""
    starts = [edition.front_pages + sum(c.pages for c in edition.chapters[:i]) for i in
              range(len(edition.chapters))]  # fmt: skip
    indexes = [*range(edition.front_pages), *starts, edition.book.pages - 1]
    return dict(zip(indexes, read(edition.book.path, indexes), strict=True))


def test_one_pdf_per_chapter_and_one_for_the_book(edition: pdf.Edition) -> None:
    assert [item.path.stem for item in edition.chapters] == CHAPTER_IDS
    assert all(item.path.parent.name == "sessions" for item in edition.chapters)
    assert edition.book is not None and edition.book.path.name == pdf.BOOK
    print(pdf.summary(edition, edition.book.path.parent))  # shown with pytest -s


def test_page_counts(edition: pdf.Edition, html: Path, chapters_read) -> None:
    counts = {}
    for item in edition.chapters:
        counts[item.path.stem] = len(chapters_read[item.path.stem])
        assert counts[item.path.stem] == item.pages
        # A chapter's text fills at least one A4 page per 6000 characters (about twice what
        # a page of prose holds), and no chapter runs to 60 pages.
        text = chapter_page(html, item.path.stem).select_one("article").get_text()
        assert len(text) / 6000 <= item.pages <= 60, (item.path.name, item.pages, len(text))
    with pdfplumber.open(edition.book.path) as document:
        book = len(document.pages)
    assert edition.front_pages in (2, 3)  # the title page, then one or two pages of contents
    assert book == edition.front_pages + sum(counts.values())


@pytest.mark.parametrize("name", CHAPTER_IDS)
def test_chapter_has_its_title_an_equation_and_its_figures(
    name: str, html: Path, chapters_read: dict[str, list[PageRead]]
) -> None:
    page = chapter_page(html, name)
    pages = chapters_read[name]
    assert squeeze(heading(page)) in squeeze(pages[0].text)
    # The longest formula written on one line is printed, character for character, in the
    # math font: the page's MathML, not a picture or a fallback font.
    linear = [squeeze(m.get_text()) for m in page.select("article math") if not m.select(LAYOUT)]
    assert linear, f"{name}: no formula without scripts or fractions to look for"
    longest = max(linear, key=len)
    assert len(longest) >= 5 and longest in squeeze("".join(p.math for p in pages)), longest
    # Every figure of the page (a PNG from the chapter's code) is an image of the PDF.
    figures = [img for img in page.select("article img") if RASTER.search(img["src"])]
    assert figures, f"{name}: the chapter shows no figure"
    assert sum(p.images for p in pages) >= len(figures)


@pytest.mark.parametrize("name", CHAPTER_IDS)
def test_code_wraps_inside_the_margin(
    name: str, html: Path, chapters_read: dict[str, list[PageRead]]
) -> None:
    pages = chapters_read[name]
    for number, page in enumerate(pages, start=1):
        assert not page.past_margin, f"{name}, page {number}: code past the margin"
    # The longest line of code, longer than the column is wide, is printed whole.
    lines = [line for pre in chapter_page(html, name).select("article pre") for line in
             pre.get_text().splitlines()]  # fmt: skip
    longest = max(lines, key=len)
    assert len(longest) > 95  # wider than the printed column: it must have wrapped
    assert squeeze(longest) in squeeze("".join(p.mono for p in pages))


def test_every_page_is_numbered(edition: pdf.Edition, chapters_read, book_read) -> None:
    for name, pages in chapters_read.items():
        for index, page in enumerate(pages):
            assert page.footer.split()[-1:] == [str(index + 1)], (name, index, page.footer)
    assert not book_read[0].footer.strip()  # the title page has no number
    for index, page in book_read.items():
        if index:
            assert page.footer.split()[-1:] == [str(index + 1)], (index, page.footer)
    assert edition.book.pages - 1 in book_read


def test_book_has_title_page_contents_and_chapter_bookmarks(
    edition: pdf.Edition, html: Path, book_read: dict[int, PageRead]
) -> None:
    home = BeautifulSoup((html / "index.html").read_text("utf-8"), "html.parser")
    assert squeeze(heading(home)) in squeeze(book_read[0].text)
    contents = "\n".join(book_read[i].text for i in range(1, edition.front_pages))
    assert contents.startswith("Contents")
    reader = PdfReader(edition.book.path)
    outline = [item.title for item in reader.outline if not isinstance(item, list)]
    first = edition.front_pages
    for item, name in zip(edition.chapters, CHAPTER_IDS, strict=True):
        title = heading(chapter_page(html, name))
        # The contents give the page where the chapter's title is printed, and link to it.
        assert re.search(rf"{re.escape(title)}[ .]*{first + 1}$", contents, re.MULTILINE), title
        assert squeeze(title) in squeeze(book_read[first].text)
        assert title in outline
        first += item.pages
    links = [
        annotation.get_object()
        for page in reader.pages[1 : edition.front_pages]
        for annotation in page.get("/Annots", [])
    ]
    targets = [reader.get_page_number(link["/Dest"][0]) for link in links if "/Dest" in link]
    starts = [
        edition.front_pages + sum(c.pages for c in edition.chapters[:i])
        for i in range(len(edition.chapters))
    ]
    assert targets == starts


def test_links_point_to_the_published_book_not_the_local_server(edition: pdf.Edition) -> None:
    for item in [*edition.chapters, edition.book]:
        for page in PdfReader(item.path).pages:
            for annotation in page.get("/Annots", []):
                action = annotation.get_object().get("/A")
                uri = str(action.get_object().get("/URI", "")) if action is not None else ""
                assert "127.0.0.1" not in uri and not uri.startswith(pdf.PAGE_LINK), uri


# -- The download menu ---------------------------------------------------------------------

# The book's own source_suffix: without it myst_parser registers ".md" in the dictionary that
# Sphinx's configuration uses as the default, which outlives this build in the process, and a
# later in-process build with myst-nb (tests/test_source.py) then finds ".md" claimed by a
# parser it does not load ("Source parser for markdown not registered").
SMALL_CONF = """
extensions = ["myst_parser", "initdocs.book.pdf"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
html_theme = "sphinx_book_theme"
html_theme_options = {"use_download_button": True}
"""
SMALL_CHAPTER = "# Session 1: Small\n\nSome text and $$a + b = c$$\n\n```python\nx = 1\n```\n"


def small_book(tmp_path: Path, on: bool) -> Path:
    """A two-page book with the theme and the extension; returns its HTML folder."""
    src = tmp_path / "src"
    pages = {
        "conf.py": SMALL_CONF,
        "index.md": "# Small book\n\n```{toctree}\nsessions/01-small\n```\n",
        "sessions/01-small.md": SMALL_CHAPTER,
    }
    for name, text in pages.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text, encoding="utf-8")
    app = SphinxTestApp(
        "html",
        srcdir=src,
        builddir=tmp_path / "out",
        confoverrides={pdf.CONFIG: on},
        status=StringIO(),
        warning=StringIO(),
        freshenv=True,
    )
    try:
        app.build()
    finally:
        app.cleanup()
    return tmp_path / "out" / "html"


def download_menu(page: Path) -> list:
    soup = BeautifulSoup(page.read_text("utf-8"), "html.parser")
    return soup.select(".dropdown-download-buttons .dropdown-item")


def test_menu_links_the_pdfs_the_printer_writes(tmp_path: Path) -> None:
    html = small_book(tmp_path, on=True)
    page = html / "sessions" / "01-small.html"
    links = {" ".join(item["class"]): item.get("href") for item in download_menu(page) if item.name}
    hrefs = [href for href in links.values() if href and href.endswith(".pdf")]
    assert len(hrefs) == 2, links
    assert not any("window.print" in str(item) for item in download_menu(page))
    edition = pdf.print_book(html, html / pdf.FOLDER)
    written = {edition.chapters[0].path, edition.book.path}
    assert {(page.parent / href).resolve() for href in hrefs} == {p.resolve() for p in written}


def test_without_the_pdf_edition_the_menu_prints_the_page(tmp_path: Path) -> None:
    html = small_book(tmp_path, on=False)
    items = download_menu(html / "sessions" / "01-small.html")
    assert not [item for item in items if str(item.get("href", "")).endswith(".pdf")]
    assert any(item.get("onclick") == "window.print()" for item in items)


def test_the_built_book_links_no_pdf_it_does_not_have(html: Path) -> None:
    for name in CHAPTER_IDS:
        page = html / "sessions" / f"{name}.html"
        for item in download_menu(page):
            href = item.get("href", "")
            if href.endswith(".pdf"):
                assert (page.parent / href).is_file(), f"{name}: {href} (run `nox -s pdf`)"
