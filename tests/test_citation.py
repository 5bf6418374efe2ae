"""Citing: CITATION.cff, the "Cite this book" page, BibTeX blocks, references.bib, DOI/arXiv links.

CITATION.cff is validated with jsonschema against the official Citation File Format 1.2.0
schema in tests/data (copied verbatim from the cffconvert 2.0.0 wheel; cffconvert itself
requires jsonschema<4, which the book's stack cannot use).
"""

from __future__ import annotations

import json
import os
import runpy
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from bs4 import BeautifulSoup
from conftest import BIB, DOCS, RECORDS, ROOT
from pybtex.database import BibliographyData, parse_file, parse_string
from pybtex.plugin import find_plugin

from initdocs.book.citation import BookCitation
from initdocs.book.records import load_sessions

CFF = ROOT / "CITATION.cff"
SCHEMA = Path(__file__).parent / "data" / "citation-file-format-1.2.0.schema.json"
CHAPTERS = [s.chapter for s in load_sessions(RECORDS)]


def soup(html: Path, page: str) -> BeautifulSoup:
    return BeautifulSoup((html / page).read_text(encoding="utf-8"), "html.parser")


@pytest.fixture(scope="module")
def cff() -> dict[str, Any]:
    return yaml.safe_load(CFF.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["$id"] == "https://citation-file-format.github.io/1.2.0/schema.json"
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


@pytest.fixture(scope="module")
def conf_defaults() -> dict[str, Any]:
    """docs/conf.py's settings when no INITDOCS_* / Read the Docs variable is set."""
    with pytest.MonkeyPatch.context() as patch:
        environ = {
            k: v for k, v in os.environ.items() if not k.startswith(("INITDOCS_", "READTHEDOCS"))
        }
        patch.setattr(os, "environ", environ)  # conf.py also sets variables: keep them here
        return runpy.run_path(str(DOCS / "conf.py"))


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


@pytest.fixture(scope="module")
def bib() -> BibliographyData:
    return parse_file(str(BIB))


def test_citation_cff_is_valid_against_the_schema(cff, validator):
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(cff)]
    assert errors == []
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"


def test_the_schema_check_catches_mistakes(cff, validator):
    broken = {**cff, "license": "MIT License", "date-released": "last year"}
    del broken["authors"]
    messages = " ".join(e.message for e in validator.iter_errors(broken))
    assert "'authors' is a required property" in messages
    assert "MIT License" in messages and "last year" in messages


def test_citation_cff_agrees_with_pyproject_and_conf(cff, pyproject, conf_defaults):
    assert str(cff["version"]) == pyproject["version"] == conf_defaults["release"]
    assert cff["repository-code"] == conf_defaults["repository_url"]
    assert cff["url"] == conf_defaults["html_baseurl"]
    assert cff["title"] == conf_defaults["html_title"]
    assert cff["license"] == pyproject["license"]
    assert [a["name"] for a in cff["authors"]] == [conf_defaults["author"]]


def test_project_urls_agree_with_conf(pyproject, conf_defaults):
    urls = pyproject["urls"]
    assert urls["Documentation"] == conf_defaults["html_baseurl"]
    assert urls["Repository"] == conf_defaults["repository_url"]
    assert urls["Issues"] == conf_defaults["repository_url"] + "/issues"


def test_cite_page_is_generated_from_citation_cff(html, cff):
    page = soup(html, "cite.html")
    blocks = page.select("div.book-citation")
    assert len(blocks) == 2
    text, bibtex = (b.get_text().strip() for b in blocks)
    for fact in (cff["title"], str(cff["version"]), cff["url"], cff["authors"][0]["name"]):
        assert fact in text
    entries = parse_string(bibtex, "bibtex").entries
    assert list(entries) == ["initdocs"]
    entry = entries["initdocs"]
    assert entry.type == "misc"
    assert entry.fields["version"] == str(cff["version"])
    assert entry.fields["url"] == cff["url"]
    assert cff["repository-code"] in entry.fields["note"]
    assert entry.fields["title"].replace("\\_", "_") == "{" + cff["title"] + "}"
    assert [str(p) for p in entry.persons["author"]] == ["{" + cff["authors"][0]["name"] + "}"]
    assert all(b.select_one("div.highlight pre") for b in blocks)  # copy button target


def test_cite_page_is_in_the_reference_section(html):
    page = soup(html, "index.html")
    captions = {c.get_text(strip=True): c for c in page.select("p.caption")}
    section = captions["Reference"].find_next_sibling("ul")
    assert section.select_one("a[href='cite.html']") is not None


def test_book_citation_names_the_missing_field(tmp_path):
    path = tmp_path / "CITATION.cff"
    path.write_text("cff-version: 1.2.0\ntitle: T\nauthors:\n  - name: A\nversion: 1\n")
    with pytest.raises(ValueError, match=r"CITATION.cff: field 'url' is missing"):
        BookCitation.from_cff(path)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_has_a_copyable_bibtex_entry_of_its_paper(html, chapter, bib):
    session = load_sessions(RECORDS).by_chapter(chapter)
    page = soup(html, f"sessions/{chapter}.html")
    assert page.find("script", src=lambda s: s and "copybutton" in s) is not None
    blocks = page.select("div.bibtex-entry div.highlight pre")
    parsed = [parse_string(b.get_text(), "bibtex") for b in blocks]
    own = [p.entries[session.paper_key] for p in parsed if session.paper_key in p.entries]
    assert len(own) == 1, f"{chapter}: no BibTeX block for {session.paper_key}"
    assert dict(own[0].fields) == dict(bib.entries[session.paper_key].fields)


def test_references_bib_downloads_from_the_bibliography_page(html):
    links = soup(html, "bibliography.html").select("a.download[href$='/references.bib']")
    assert len(links) == 1
    assert (html / links[0]["href"]).read_bytes() == BIB.read_bytes()


def _expected_links(entry) -> set[str]:
    links = set()
    if "doi" in entry.fields:
        links.add(f"https://doi.org/{entry.fields['doi']}")
    if "eprint" in entry.fields and entry.fields.get("archiveprefix", "arXiv") == "arXiv":
        links.add(f"https://arxiv.org/abs/{entry.fields['eprint']}")
    return links


def _listed_entries(page: BeautifulSoup, labels: dict[str, str]) -> dict[str, set[str]]:
    """Key of every entry in the page's reference lists -> the addresses it links."""
    listed = {}
    for item in page.select("div.citation"):
        label = item.select_one("span.label").get_text(strip=True).strip("[]")
        listed[labels[label]] = {a["href"] for a in item.select("a[href]")}
    return listed


@pytest.fixture(scope="module")
def labels(bib) -> dict[str, str]:
    """Label -> key, as pybtex's alpha style (the book's style) labels references.bib."""
    style = find_plugin("pybtex.style.formatting", "alpha")()
    return {entry.label: entry.key for entry in style.format_bibliography(bib)}


@pytest.mark.parametrize("page", ["bibliography.html"] + [f"sessions/{c}.html" for c in CHAPTERS])
def test_every_reference_links_its_doi_and_arxiv_page(html, page, bib, labels):
    listed = _listed_entries(soup(html, page), labels)
    assert listed, f"{page} lists no references"
    if page == "bibliography.html":
        assert set(listed) == set(bib.entries)
    for key, hrefs in listed.items():
        missing = _expected_links(bib.entries[key]) - hrefs
        assert not missing, f"{page}: reference {key} does not link {missing}"
    assert any(_expected_links(bib.entries[key]) for key in listed)
