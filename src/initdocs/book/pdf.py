"""The book's PDF edition: one PDF per chapter and one for the whole book.

``nox -s pdf`` builds the book with ``INITDOCS_PDF=1`` and then runs ``python -m
initdocs.book.pdf``, which prints the built HTML with Debian's Chromium (``/usr/bin/chromium``,
driven by Playwright; no LaTeX): every chapter page is opened in the light theme, with print
media, and printed on A4 with the book's print style (``@media print`` in
``docs/_static/initdocs.css``: the article alone, code wrapped, collapsed code shown). The
formulas are the pages' MathML, set in the book's math font; figures and references come
with the page. The files go into the built site, next to the chapters' notebooks:

* ``_pdf/sessions/NN-name.pdf``: one chapter, numbered from 1;
* ``_pdf/initdocs-book.pdf``: a title page and the contents, then every chapter in order,
  numbered through, with bookmarks (each chapter and its sections).

Page numbers are stamped by pypdf from a page of numbers that Chromium prints once (its page
footers count only within one print, and the book is assembled from separate prints).

Links: the download menu of each chapter (sphinx-book-theme's download button) links the
chapter's PDF and the book's only in a build made with ``initdocs_pdf = True`` (conf.py sets
it from ``INITDOCS_PDF=1``, as ``nox -s pdf`` and the publish workflow do); any other build
keeps the theme's "print to PDF" entry, which prints the page with the same print style, so
no build links a file it does not have. This is the Sphinx half of the module, set up by
``initdocs.book``; the printer imports Playwright and pypdf (the ``test`` extra) only when
it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import html as html_text
import http.server
import io
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from initdocs.book.metadata import extension_metadata

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route
    from pypdf import PdfReader, PdfWriter
    from sphinx.application import Sphinx

#: The configuration value that puts the PDFs into the download menus (conf.py: INITDOCS_PDF).
CONFIG = "initdocs_pdf"
#: Folder of the HTML output that holds the PDFs.
FOLDER = "_pdf"
#: The whole book, in ``FOLDER``.
BOOK = "initdocs-book.pdf"
#: Chapters in the HTML output, in the book's order (their names start with the number).
CHAPTERS = "sessions/[0-9][0-9]-*.html"

CHROMIUM = Path("/usr/bin/chromium")
# Root in CI: no sandbox. The rest keeps Chromium from calling home on a closed network.
# (tests/test_browser.py starts the same browser with the same arguments.)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: The theme reads the reader's choice from localStorage before the first paint.
LIGHT_THEME = "localStorage.setItem('mode', 'light'); localStorage.setItem('theme', 'light');"
#: A4, with room for the footer (page numbers) at the bottom. The tests read the margins.
PAPER = "A4"
MARGIN = {"top": "15mm", "bottom": "18mm", "left": "15mm", "right": "15mm"}
#: Less than 1 sets the page narrower than a screen's column: 16 px text prints at 10 pt.
SCALE = 0.85
FOOTER_STYLE = (
    "font: 10px sans-serif; color: #555; width: 100%; margin: 0 15mm; "
    "display: flex; justify-content: space-between"
)
#: Links of the contents page, turned into links to the book's own pages (pypdf).
PAGE_LINK = "https://initdocs.invalid/page/"

#: Run on each page before it is printed: links to other pages point to the published book
#: (not the local server), the article's ids get the chapter's prefix (so the book's merged
#: PDF keeps each chapter's links to its own sections, figures and references), collapsed
#: code is shown (its box becomes a plain block, which can break across pages) and images
#: load at once. Returns the chapter's title and the text of its headings.
PREPARE = r"""prefix => {
    const canonical = document.querySelector('link[rel="canonical"]');
    const article = document.querySelector('article') || document.body;
    for (const element of article.querySelectorAll('[id]')) element.id = prefix + element.id;
    for (const link of document.querySelectorAll('a[href]')) {
        const href = link.getAttribute('href');
        if (href.startsWith('#')) {
            if (href.length > 1) link.setAttribute('href', '#' + prefix + href.slice(1));
        } else if (canonical) {
            link.setAttribute('href', new URL(href, canonical.href).href);
        }
    }
    for (const details of [...document.querySelectorAll('details')]) {
        const block = document.createElement('div');  // a closed box could not break across pages
        block.className = details.className;
        for (const child of [...details.childNodes]) {
            if (child.nodeName !== 'SUMMARY') { block.append(child); continue; }
            const caption = document.createElement('p');
            caption.append(...child.childNodes);
            block.append(caption);
        }
        details.replaceWith(block);
    }
    for (const image of document.images) image.loading = 'eager';
    const headings = [...article.querySelectorAll('h1, h2, h3, h4')].map(heading => {
        const copy = heading.cloneNode(true);
        copy.querySelectorAll('.headerlink').forEach(e => e.remove());
        return copy.textContent.replace(/\s+/g, ' ').trim();
    });
    return {title: headings[0] || document.title, headings: headings};
}"""
#: Resolves when every image has loaded and every font (the math font) is ready.
LOADED = """() => Promise.all([...document.images].map(image => image.complete
    ? image.decode().catch(() => null)
    : new Promise(done => { image.onload = image.onerror = done; })))
    .then(() => document.fonts.ready).then(() => true)"""
#: What the title page shows, from the home page.
FRONT_FACTS = """() => ({
    title: (document.querySelector('article h1') || document).textContent.replace('#', '').trim(),
    subtitle: (document.querySelector('.logo__title') || {textContent: ''}).textContent.trim(),
    build: (document.querySelector('.initdocs-build') || {textContent: ''}).textContent.trim(),
    url: (document.querySelector('link[rel="canonical"]') || {href: ''}).href
        .replace(/index\\.html$/, ''),
})"""


# -- The Sphinx half: the download menu ---------------------------------------------------


def chapter_pdf(docname: str) -> str:
    """Where a chapter's PDF is, relative to the HTML output: ``_pdf/sessions/NN-name.pdf``."""
    return f"{FOLDER}/{docname}.pdf"


def add_pdf_buttons(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """``html-page-context`` (after :mod:`initdocs.book.notebooks`): the PDFs in the menu.

    Only with ``initdocs_pdf``: the chapter's PDF replaces the theme's "print to PDF" entry,
    and the whole book's PDF follows it.
    """
    from initdocs.book.notebooks import is_chapter

    if not getattr(app.config, CONFIG) or not is_chapter(pagename):
        return
    buttons = context.get("header_buttons", [])
    downloads = next((b for b in buttons if b.get("label") == "download-buttons"), None)
    if downloads is None:
        return
    pathto = context["pathto"]
    entries = [b for b in downloads["buttons"] if b.get("label") != "download-pdf-button"]
    entries += [
        {
            "type": "link",
            "url": pathto(chapter_pdf(pagename), 1),
            "text": ".pdf",
            "tooltip": "Download this chapter as a PDF",
            "icon": "fas fa-file-pdf",
            "label": "download-pdf-button",
        },
        {
            "type": "link",
            "url": pathto(f"{FOLDER}/{BOOK}", 1),
            "text": "book .pdf",
            "tooltip": "Download the whole book as one PDF",
            "icon": "fas fa-book",
            "label": "download-book-pdf-button",
        },
    ]
    downloads["buttons"] = entries


def setup(app: Sphinx) -> dict[str, Any]:
    # Only the pages change (rebuild "html"): turning it on rewrites them, reads nothing again.
    app.add_config_value(CONFIG, False, "html", types=frozenset({bool}))
    app.connect("html-page-context", add_pdf_buttons, priority=520)
    return extension_metadata()


# -- The printer ----------------------------------------------------------------------------


@dataclass
class Printed:
    """One PDF of the edition."""

    path: Path
    title: str
    pages: int

    @property
    def size(self) -> int:
        return self.path.stat().st_size


@dataclass
class Edition:
    """What :func:`print_book` wrote: the chapters, the book and its front matter's length."""

    chapters: list[Printed] = field(default_factory=list)
    book: Printed | None = None
    front_pages: int = 0
    seconds: float = 0.0


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a missing file shows in the printed page, and the printer checks images."""


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """``folder`` over HTTP on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(folder))
    )
    worker = threading.Thread(target=httpd.serve_forever, daemon=True)
    worker.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        worker.join()


def chapters(html: Path) -> list[Path]:
    """The built chapters, in the book's order."""
    return sorted(html.glob(CHAPTERS))


def _footer(left: str, right: str = "") -> str:
    return f'<div style="{FOOTER_STYLE}"><span>{left}</span><span>{right}</span></div>'


def _print(page: Page, footer: str, outline: bool = True) -> bytes:
    """The open page as PDF bytes, A4, with ``footer`` at the bottom of every page."""
    return page.pdf(
        format=PAPER,
        margin=MARGIN,
        scale=SCALE,
        print_background=True,
        display_header_footer=True,
        header_template="<span></span>",
        footer_template=footer,
        outline=outline,
        tagged=True,
    )


def _local_only(route: Route, base: str) -> None:
    """Serve the book's own files, refuse the rest: the book works offline."""
    if route.request.url.startswith(base):
        route.continue_()
    else:
        route.abort("blockedbyclient")


def _open(browser: Browser, url: str) -> Page:
    """A new page in the light theme and print media, with ``url`` loaded."""
    context = browser.new_context(color_scheme="light", reduced_motion="reduce")
    context.add_init_script(LIGHT_THEME)
    base = url[: url.index("/", len("http://")) + 1]
    context.route("**/*", lambda route: _local_only(route, base))
    page = context.new_page()
    page.emulate_media(media="print", color_scheme="light")
    page.goto(url, wait_until="load")
    return page


def print_chapter(
    browser: Browser, base: str, relative: str, number: int
) -> tuple[str, list[str], bytes]:
    """One chapter page: its title, its headings and its PDF (not yet numbered)."""
    page = _open(browser, base + relative)
    try:
        found = page.evaluate(PREPARE, f"c{number:02d}-")
        title = found["title"]
        page.evaluate(LOADED)
        broken = page.evaluate("() => [...document.images].filter(i => !i.naturalWidth).length")
        if broken:
            raise RuntimeError(f"{relative}: {broken} image(s) did not load; build the book again")
        return title, found["headings"], _print(page, _footer(html_text.escape(title)))
    finally:
        page.context.close()


def front_matter(facts: dict[str, str], base: str, entries: list[tuple[str, int]]) -> str:
    """The title page and the contents (chapter titles and first pages) as an HTML page."""
    rows = "\n".join(
        f'<li><a href="{PAGE_LINK}{first}">{html_text.escape(title)}</a>'
        f'<span class="dots"></span><span>{first}</span></li>'
        for title, first in entries
    )
    esc = {key: html_text.escape(value) for key, value in facts.items()}
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc["title"]}</title>
<base href="{base}">
<style>
body {{ font-family: sans-serif; color: #222; margin: 0; }}
.title {{ height: 240mm; display: flex; flex-direction: column; justify-content: center;
  align-items: center; text-align: center; break-after: page; }}
.title img {{ width: 45mm; margin-bottom: 12mm; }}
.title h1 {{ font-size: 28pt; margin: 0 0 6mm; }}
.title p {{ margin: 2mm 0; }}
.subtitle {{ font-size: 15pt; }}
.small {{ font-size: 9pt; color: #555; }}
h2 {{ font-size: 18pt; }}
ol {{ list-style: none; padding: 0; }}
li {{ display: flex; margin: 0 0 4mm; font-size: 12pt; }}
li a {{ color: inherit; text-decoration: none; }}
.dots {{ flex: 1; border-bottom: 1px dotted #888; margin: 0 2mm 1.2mm; }}
</style></head><body>
<section class="title">
<img src="_static/logo-light.svg" alt="">
<h1>{esc["title"]}</h1>
<p class="subtitle">{esc["subtitle"]}</p>
<p class="small">{esc["url"]}</p>
<p class="small">{esc["build"]}</p>
</section>
<section><h2>Contents</h2><ol>
{rows}
</ol></section>
</body></html>
"""


def _print_front_matter(
    browser: Browser, base: str, facts: dict[str, str], chapters: list[tuple[str, int]]
) -> tuple[bytes, int]:
    """The title page and the contents for ``chapters`` (title, pages): PDF and length."""
    from pypdf import PdfReader

    front_pages, front = 2, b""  # the title page and (at first guess) one page of contents
    for _ in range(3):  # the contents' page numbers depend on its own length
        entries, first = [], front_pages + 1
        for title, count in chapters:
            entries.append((title, first))
            first += count
        page = browser.new_page()
        page.set_content(front_matter(facts, base, entries), wait_until="load")
        front = _print(page, "<span></span>", outline=False)
        page.close()
        if len(PdfReader(io.BytesIO(front)).pages) == front_pages:
            break
        front_pages = len(PdfReader(io.BytesIO(front)).pages)
    return front, front_pages


def _numbers(browser: Browser, count: int) -> PdfReader:
    """``count`` empty pages whose footers say 1, 2, ...: stamped onto the printed pages."""
    from pypdf import PdfReader

    page = browser.new_page()
    try:
        blank = '<div style="height: 1px; break-after: page"></div>' * (count - 1)
        page.set_content(f"<!DOCTYPE html><html><body>{blank}<div></div></body></html>")
        footer = _footer("", '<span class="pageNumber"></span>')
        return PdfReader(io.BytesIO(_print(page, footer, outline=False)))
    finally:
        page.close()


def _stamp(writer: PdfWriter, numbers: PdfReader, first: int) -> None:
    """Page ``first`` of ``writer`` onwards get the page numbers ``first + 1``, ..."""
    for index in range(first, len(writer.pages)):
        page = writer.pages[index]
        page.merge_page(numbers.pages[index])
        page.compress_content_streams()  # merging leaves the page's content uncompressed


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _fix_outline(writer: PdfWriter, headings: dict[str, str]) -> None:
    """Bookmarks titled as the headings are (``headings``: text without spaces -> text).

    Chromium names each bookmark after the heading's laid-out text, which loses the space at
    a line break and repeats a heading moved to the next page ("ReferencesReferences").
    """
    from pypdf.generic import NameObject, TextStringObject

    outlines = writer.root_object.get("/Outlines")
    pending = [outlines.get_object().get("/First")] if outlines is not None else []
    while pending:
        node = pending.pop()
        if node is None:
            continue
        item = node.get_object()
        key = _squeeze(str(item.get("/Title", "")))
        half = key[: len(key) // 2]
        text = headings.get(key) or (headings.get(half) if key == half * 2 else None)
        if text:
            item[NameObject("/Title")] = TextStringObject(text)
        pending += [item.get("/First"), item.get("/Next")]


def _link_contents(writer: PdfWriter, front_pages: int) -> None:
    """The contents' links (``PAGE_LINK`` + number) become links to the book's own pages."""
    from pypdf.generic import ArrayObject, NameObject

    for page in writer.pages[:front_pages]:
        for annotation in page.get("/Annots", []):
            link = annotation.get_object()
            action = link.get("/A")
            uri = str(action.get_object().get("/URI", "")) if action is not None else ""
            if uri.startswith(PAGE_LINK):
                target = writer.pages[int(uri.removeprefix(PAGE_LINK)) - 1]
                link[NameObject("/Dest")] = ArrayObject(
                    [target.indirect_reference, NameObject("/Fit")]
                )
                del link["/A"]


def _write(writer: PdfWriter, path: Path, title: str) -> None:
    writer.add_metadata({"/Title": title, "/Author": "initdocs contributors"})
    writer.page_mode = "/UseOutlines"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as stream:
        writer.write(stream)


def print_book(html: Path, out: Path) -> Edition:
    """Print every chapter of the built book in ``html`` and the whole book into ``out``."""
    from playwright.sync_api import sync_playwright
    from pypdf import PdfReader, PdfWriter

    started = time.monotonic()
    # Chromium's files make pypdf note a harmless off-by-one in their trailer's object count.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    pages = chapters(html)
    if not (html / "index.html").is_file() or not pages:
        raise FileNotFoundError(
            f"{html}: no built book (index.html and {CHAPTERS}); build it first: nox -s docs"
        )
    if not CHROMIUM.is_file():
        raise FileNotFoundError(f"{CHROMIUM} is missing: install Debian's Chromium (apt-get)")
    edition = Edition()
    with serve(html) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        printed, headings = [], {}
        for number, path in enumerate(pages, start=1):
            relative = path.relative_to(html).as_posix()
            title, found, data = print_chapter(browser, base, relative, number)
            headings.update({_squeeze(text): text for text in found})
            printed.append((relative, title, data, len(PdfReader(io.BytesIO(data)).pages)))
        home = _open(browser, base + "index.html")
        facts = home.evaluate(FRONT_FACTS)
        home.context.close()

        lengths = [(title, count) for _relative, title, _data, count in printed]
        front, front_pages = _print_front_matter(browser, base, facts, lengths)
        numbers = _numbers(browser, front_pages + sum(count for _title, count in lengths))
        browser.close()

    for relative, title, data, count in printed:
        writer = PdfWriter(clone_from=io.BytesIO(data))
        _stamp(writer, numbers, 0)
        _fix_outline(writer, headings)
        target = out / relative.replace(".html", ".pdf")
        _write(writer, target, title)
        edition.chapters.append(Printed(target, title, count))

    book = PdfWriter(clone_from=io.BytesIO(front))
    book.add_outline_item(title="Contents", page_number=1)
    for _relative, _title, data, _count in printed:
        book.append(io.BytesIO(data), import_outline=True)
    _stamp(book, numbers, 1)  # the title page has no number
    _fix_outline(book, headings)
    _link_contents(book, front_pages)
    _write(book, out / BOOK, facts["title"])
    edition.book = Printed(out / BOOK, facts["title"], len(book.pages))
    edition.front_pages = front_pages
    edition.seconds = time.monotonic() - started
    return edition


def summary(edition: Edition, root: Path) -> str:
    """A Markdown table of the PDFs: file, pages, size; and the time taken."""
    lines = ["| PDF | pages | size |", "|---|---:|---:|"]
    for item in [*edition.chapters, *([edition.book] if edition.book else [])]:
        name = item.path.relative_to(root).as_posix()
        lines.append(f"| `{name}` | {item.pages} | {item.size / 1e6:.2f} MB |")
    lines.append("")
    lines.append(f"Printed in {edition.seconds:.0f} s.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m initdocs.book.pdf",
        description="Print the built book to PDF: one file per chapter and the whole book.",
    )
    parser.add_argument(
        "--html", type=Path, default=Path("docs/_build/html"), help="the built book (HTML)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help=f"where the PDFs go (default: HTML/{FOLDER})"
    )
    args = parser.parse_args(argv)
    out = args.out or args.html / FOLDER
    try:
        edition = print_book(args.html, out)
    except (FileNotFoundError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summary(edition, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
