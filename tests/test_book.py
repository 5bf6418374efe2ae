"""The executed book as a reader gets it: every chapter ran, nothing broken is published."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from conftest import BIB, BUILD, CHAPTERS, DOCS, RECORDS

from initdocs import __version__
from initdocs.book.bibtex import parse_bibtex
from initdocs.book.records import load_sessions

NAMES = [p.stem for p in CHAPTERS]


def soup(html: Path, page: str) -> BeautifulSoup:
    return BeautifulSoup((html / page).read_text(encoding="utf-8"), "html.parser")


def test_there_is_at_least_one_chapter():
    assert "01-xception" in NAMES


def test_build_had_zero_warnings(html):
    log = BUILD / "warnings.log"
    assert log.is_file(), "build with `nox -s docs`, which writes the warnings log"
    assert log.read_text(encoding="utf-8") == ""


def test_home_page_lists_all_sessions_newest_first_with_chapter_links(html):
    sessions = load_sessions(RECORDS)
    rows = soup(html, "index.html").select("table.sessions-table tbody tr")
    assert len(rows) == len(sessions) == 11
    by_date = sorted(sessions, key=lambda s: s.date, reverse=True)
    for row, session in zip(rows, by_date, strict=True):
        cells = row.find_all("td")
        assert cells[0].get_text(strip=True) == f"{session.date:%d %b %Y}"
        assert session.paper in cells[2].get_text()
        link = cells[5].find("a")
        if (DOCS / "sessions" / f"{session.chapter}.md").is_file():
            assert link is not None and link["href"] == f"sessions/{session.chapter}.html"
        else:
            assert link is None and "not written yet" in cells[5].get_text()


def test_bibliography_page_lists_every_entry(html):
    entries, _ = parse_bibtex(BIB)
    page = soup(html, "bibliography.html")
    listed = page.select("div.citation")
    assert len(listed) == len(entries)
    text = page.get_text()
    for entry in entries:
        if "doi" in entry.fields:
            assert page.find("a", href=f"https://doi.org/{entry.fields['doi']}"), entry.key
    assert "Chollet" in text and "Wightman" in text


@pytest.mark.parametrize("chapter", NAMES)
def test_chapter_executed_cleanly(html, chapter):
    page = soup(html, f"sessions/{chapter}.html")
    cells = page.select("div.cell")
    assert cells, "no code cells: is the jupytext header missing?"
    assert page.select("div.cell_output")
    assert not page.select("div.output.traceback, div.output.error, div.output.stderr")
    images = page.select("div.cell_output img")
    assert images, "a chapter shows at least one figure"
    assert all(img.get("alt", "").strip() for img in images), "every figure needs alt text"
    # the card, generated from the record, and citations that resolve on the page itself
    session = load_sessions(RECORDS).by_chapter(chapter)
    card = page.select_one(".session-card")
    assert card is not None and f"Session {session.number}" in card.get_text()
    for a in page.select("a.reference.internal[href^='#id']"):
        assert page.find(id=a["href"][1:]) is not None, a
    bibtex = page.select_one("div.bibtex-entry")
    assert bibtex is not None and f"{{{session.paper_key}," in bibtex.get_text()


@pytest.mark.parametrize("chapter", NAMES)
def test_chapter_meets_the_rubric(chapter):
    """The parts of the rubric (chapters.RUBRIC), in order, and at least five prompts."""
    text = (DOCS / "sessions" / f"{chapter}.md").read_text(encoding="utf-8")
    parts = [
        "## In one paragraph",
        "## Background you need",
        "## Motivation",
        "## Contributions",
        "## Method",
        "## A small experiment",
        "## Results in the paper",
        "## Discussion prompts",
        "## Further reading",
        "## References",
    ]
    positions = [text.find(part) for part in parts]
    assert -1 not in positions, [p for p, i in zip(parts, positions, strict=True) if i < 0]
    assert positions == sorted(positions)
    assert text.find("{session-card}") < positions[0]
    prompts = text[positions[7] : positions[8]]
    assert len(re.findall(r"^\d+\. \S", prompts, flags=re.MULTILINE)) >= 5
    assert "from initdocs" in text


@pytest.mark.parametrize("chapter", NAMES)
def test_executed_notebook_has_no_error_outputs(html, chapter):
    # The downloadable notebook: what readers get, with the same outputs as the page.
    notebook = json.loads(
        (html / "_notebooks" / "sessions" / f"{chapter}.ipynb").read_text(encoding="utf-8")
    )
    outputs = [o for c in notebook["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert outputs
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr"]


def test_execution_report_lists_every_chapter_as_succeeded(html):
    rows = soup(html, "execution.html").select("table tbody tr")
    assert sorted(r.find("td").get_text(strip=True) for r in rows) == [
        f"sessions/{c}" for c in NAMES
    ]
    assert all(r.find_all("td")[-1].get_text(strip=True) == "✅" for r in rows)


def test_no_error_report_is_published(html):
    assert not list((html / "reports").glob("**/*.err.log"))
    assert not (html / ".doctrees").exists()


def test_xception_chapter_prints_the_papers_parameter_count(html):
    text = soup(html, "sessions/01-xception.html").get_text()
    assert "parameters:            22,855,952 (paper, Table 3: 22,855,952)" in text
    assert "2 + 34 = 36" in text


COMMUNITY = ["about", "format", "participants", "presenters", "code-of-conduct", "feedback"]


@pytest.mark.parametrize("page", [f"community/{p}.html" for p in COMMUNITY] + ["index.html"])
def test_pages_have_meta_description_and_build_stamp(html, page):
    document = soup(html, page)
    meta = document.find("meta", attrs={"name": "description"})
    assert meta is not None and 50 <= len(meta["content"]) <= 200
    stamp = document.select_one(".initdocs-build")
    assert stamp is not None and f"initdocs {__version__}" in stamp.get_text()
    assert "from commit" in stamp.get_text()


def test_code_of_conduct_has_its_parts(html):
    text = soup(html, "community/code-of-conduct.html").get_text()
    for part in (
        "Expected behaviour",
        "Unacceptable behaviour",
        "How to report",
        "What happens after a report",
    ):
        assert part in text
    assert soup(html, "community/code-of-conduct.html").find("a", href="https://mltokyo.ai/about")


def test_contributor_guide_is_a_page_of_the_book(html):
    page = soup(html, "contributing.html")
    assert page.find("h1").get_text(strip=True).startswith("Contributing")
    text = page.get_text()
    assert "initdocs new" in text and "initdocs check" in text and "nox -s preview" in text


#: A MyST or Jinja substitution left as typed, e.g. ``{{ commit }}`` inside backticks.
UNEXPANDED = re.compile(r"\{\{\s*[\w.]+\s*\}\}|\{%.*?%\}")


def test_no_page_shows_an_unexpanded_substitution(html):
    pages = sorted(p for p in html.rglob("*.html") if "_static" not in p.parts)
    assert len(pages) > 20
    for path in pages:
        text = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser").get_text()
        assert not UNEXPANDED.findall(text), path.relative_to(html)


def test_home_page_names_its_commit_and_version(html):
    text = " ".join(soup(html, "index.html").get_text().split())
    match = re.search(r"Each page was built from commit (\S+) of the book.s repository", text)
    assert match, "the home page says which commit it was built from"
    assert re.fullmatch(r"[0-9a-f]{10}(\+dirty)?|unknown", match.group(1)), match.group(1)
    assert f"version {__version__}." in text
