"""Meta descriptions, sitemap, social cards, favicon and logo of the built book."""

from __future__ import annotations

import struct
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
import yaml
from bs4 import BeautifulSoup
from conftest import CHAPTERS, DOCS

from initdocs.book import logo, page_meta

SITEMAP_NS = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
#: Pages without a source file, left out of the sitemap and without a social card: Sphinx's
#: index and search pages, and each chapter's discussion view (initdocs.book.discussion).
GENERATED = {"genindex.html", "search.html", *(f"discussion/{c.stem}.html" for c in CHAPTERS)}


def _pages(html: Path) -> list[Path]:
    return sorted(p for p in html.rglob("*.html") if "_static" not in p.relative_to(html).parts)


def _soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text("utf-8"), "html.parser")


@pytest.fixture(scope="module")
def pages(html: Path) -> dict[str, BeautifulSoup]:
    return {p.relative_to(html).as_posix(): _soup(p) for p in _pages(html)}


@pytest.fixture(scope="module")
def baseurl(pages: dict[str, BeautifulSoup]) -> str:
    """html_baseurl, as Sphinx writes it in the home page's canonical link."""
    canonical = pages["index.html"].find("link", rel="canonical")["href"]
    assert canonical.endswith("index.html")
    return canonical.removesuffix("index.html")


def _meta(page: BeautifulSoup, prop: str) -> str:
    tag = page.find("meta", property=prop)
    assert tag is not None, f"no {prop}"
    return tag["content"]


def test_every_page_has_one_good_description(pages: dict[str, BeautifulSoup]) -> None:
    assert set(pages) >= GENERATED
    for name, page in pages.items():
        descriptions = page.find_all("meta", attrs={"name": "description"})
        assert len(descriptions) == 1, name
        text = descriptions[0]["content"]
        assert page_meta.MIN_LENGTH <= len(text) <= page_meta.MAX_LENGTH, (name, text)
        assert text == " ".join(text.split()), name


def test_descriptions_are_different(pages: dict[str, BeautifulSoup]) -> None:
    texts = [p.find("meta", attrs={"name": "description"})["content"] for p in pages.values()]
    assert len(set(texts)) == len(texts)


def test_written_descriptions_are_kept(pages: dict[str, BeautifulSoup]) -> None:
    """A description written in a page's front matter is the one the page shows."""
    for source in DOCS.rglob("*.md"):
        if "_build" in source.parts:
            continue
        text = source.read_text("utf-8")
        if not text.startswith("---\n"):
            continue
        front = yaml.safe_load(text.split("---\n", 2)[1]) or {}
        written = front.get("myst", {}).get("html_meta", {}).get("description")
        if written:
            name = source.relative_to(DOCS).with_suffix(".html").as_posix()
            shown = pages[name].find("meta", attrs={"name": "description"})["content"]
            assert shown == written


def test_derived_descriptions_fit() -> None:
    long = "word " * 100
    assert len(page_meta.shorten(long)) <= page_meta.DERIVED_LENGTH
    assert page_meta.shorten(long).endswith("…")
    assert page_meta.written_descriptions(
        '<meta name="description" content="a &amp; b" /><meta name="viewport" content="x" />'
    ) == ["a & b"]
    text = page_meta.derived_description("glossary", "Glossary", "the book", None)
    assert page_meta.MIN_LENGTH <= len(text) <= page_meta.MAX_LENGTH


def test_sitemap_lists_every_content_page(html: Path, baseurl: str) -> None:
    root = ElementTree.parse(html / page_meta.SITEMAP).getroot()
    assert root.tag == "{http://www.sitemaps.org/schemas/sitemap/0.9}urlset"
    locations = [loc.text for loc in root.findall("s:url/s:loc", SITEMAP_NS)]
    assert len(locations) == len(set(locations))
    expected = {p.relative_to(html).as_posix() for p in _pages(html)} - GENERATED
    assert {loc.removeprefix(baseurl) for loc in locations} == expected
    for loc in locations:
        parts = urlsplit(loc)
        assert parts.scheme in ("http", "https") and loc.startswith(baseurl)


def test_social_cards(html: Path, pages: dict[str, BeautifulSoup], baseurl: str) -> None:
    for name, page in pages.items():
        if name in GENERATED:
            continue
        title = page.find("title").get_text()
        assert title.startswith(_meta(page, "og:title"))
        assert _meta(page, "og:url") == page.find("link", rel="canonical")["href"]
        description = page.find("meta", attrs={"name": "description"})["content"]
        assert _meta(page, "og:description") == description
        image = _meta(page, "og:image")
        assert image.startswith(baseurl)
        card = html / image.removeprefix(baseurl)
        assert card.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert _meta(page, "og:image:alt")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_favicon_and_touch_icon(html: Path, pages: dict[str, BeautifulSoup]) -> None:
    for name, page in pages.items():
        folder = (html / name).parent
        icon = page.find("link", rel="icon")["href"]
        svg = ElementTree.parse(folder / icon).getroot()
        assert svg.tag == "{http://www.w3.org/2000/svg}svg"
        touch = page.find("link", rel="apple-touch-icon")["href"]
        assert _png_size(folder / touch) == (180, 180)


def test_logo_for_both_themes(html: Path, pages: dict[str, BeautifulSoup]) -> None:
    for name, page in pages.items():
        folder = (html / name).parent
        images = page.select(".navbar-brand img.logo__image")
        themes = {next(c for c in img["class"] if c.startswith("only-")): img for img in images}
        assert set(themes) == {"only-light", "only-dark"}, name
        for theme, img in themes.items():
            assert img["alt"].strip()
            assert (folder / img["src"]).name == f"logo-{theme.removeprefix('only-')}.svg"
            ElementTree.parse(folder / img["src"])


def test_committed_svgs_are_generated() -> None:
    for file_name, text in logo.svg_files().items():
        assert (DOCS / "_static" / file_name).read_text("utf-8") == text


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_logo_colours_contrast_with_each_theme() -> None:
    """WCAG 1.4.11 asks 3:1 for graphics; the page backgrounds are pydata-sphinx-theme's."""
    assert _contrast(logo.LIGHT_THEME, "#ffffff") >= 3
    for background in ("#14181e", "#222832"):  # background and on-background, dark theme
        assert _contrast(logo.DARK_THEME, background) >= 3
    assert _contrast(logo.ON_TILE, logo.TILE) >= 3
