"""The glossary and the chapters' links to it, as the built book shows them."""

from __future__ import annotations

import re
from pathlib import Path

from bs4 import BeautifulSoup
from conftest import CHAPTERS

NAMES = [p.stem for p in CHAPTERS]


def soup(html: Path, page: str) -> BeautifulSoup:
    return BeautifulSoup((html / page).read_text(encoding="utf-8"), "html.parser")


def glossary_terms(html: Path) -> dict[str, BeautifulSoup]:
    """Each term's anchor id and its definition (the ``dd`` after it)."""
    page = soup(html, "glossary.html")
    [glossary] = page.select("dl.glossary")
    return {dt["id"]: dt.find_next_sibling("dd") for dt in glossary.find_all("dt", recursive=False)}


def term_links(html: Path, name: str) -> set[str]:
    """The glossary anchors a chapter's text links to."""
    page = soup(html, f"sessions/{name}.html")
    article = page.select_one("article")
    return {
        a["href"].split("#", 1)[1]
        for a in article.select("a[href^='../glossary.html#term-']")
        if a.select_one("span.std-term")
    }


def test_glossary_has_25_to_40_sorted_terms_each_defined_with_a_chapter_link(html):
    terms = glossary_terms(html)
    assert 25 <= len(terms) <= 40
    page = soup(html, "glossary.html")
    shown = [
        dt.get_text(" ", strip=True).rstrip("¶").strip() for dt in page.select("dl.glossary > dt")
    ]
    assert shown == sorted(shown, key=str.lower)
    for term, definition in terms.items():
        words = definition.get_text(" ", strip=True)
        assert 60 <= len(words) <= 600, f"{term}: a definition of 1-3 sentences"
        chapters = [a["href"] for a in definition.select("a[href^='sessions/']")]
        assert chapters, f"{term} links no chapter"
        for href in chapters:
            assert (html / href).is_file(), href


def test_every_chapter_links_at_least_three_terms_that_exist(html):
    terms = set(glossary_terms(html))
    for name in NAMES:
        links = term_links(html, name)
        assert len(links) >= 3, f"{name} links only {sorted(links)}"
        assert links <= terms, f"{name} links missing terms {sorted(links - terms)}"


def test_every_term_is_linked_from_some_chapter(html):
    linked = set().union(*(term_links(html, name) for name in NAMES))
    assert set(glossary_terms(html)) - linked == set()


def test_term_links_are_in_prose_not_in_code_cells():
    for chapter in CHAPTERS:
        text = chapter.read_text(encoding="utf-8")
        for cell in re.findall(r"```\{code-cell\}.*?\n```", text, flags=re.S):
            assert "{term}" not in cell, f"{chapter.name}: a {{term}} role in a code cell"
        for line in text.splitlines():
            if line.startswith("#"):
                assert "{term}" not in line, f"{chapter.name}: a {{term}} role in a heading"


def test_glossary_is_in_the_reference_navigation(html):
    nav = soup(html, "index.html").select_one("nav.bd-docs-nav")
    assert nav.find("a", href="glossary.html")
