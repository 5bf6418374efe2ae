"""The book's Sphinx extension: generated session pages, clear errors, cache invalidation."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from conftest import BIB, RECORDS
from pybtex.database import parse_string
from sphinx.testing.util import SphinxTestApp

from initdocs.book.bibtex import entry_source
from initdocs.book.failures import BuildStopped

CONF = f"""
extensions = ["myst_nb", "sphinxcontrib.bibtex", "initdocs.book.directives"]
nb_execution_mode = "off"
myst_enable_extensions = ["colon_fence", "fieldlist"]
bibtex_bibfiles = [{str(BIB)!r}]
initdocs_sessions_file = {str(RECORDS)!r}
suppress_warnings = ["bibtex.duplicate_citation"]
"""
CHAPTER = (
    "# {title}\n\n```{{session-card}}\n```\n\n"
    "```{{bibliography}}\n:filter: docname in docnames\n```\n"
)


def build(
    tmp_path: Path, pages: dict[str, str], warnings: StringIO | None = None, **overrides
) -> tuple[Path, str]:
    """Build a small project with the extension; return the HTML folder and the warnings."""
    src = tmp_path / "src"
    for name, text in {"conf.py": CONF, **pages}.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text, encoding="utf-8")
    warnings = warnings or StringIO()
    app = SphinxTestApp(
        "html",
        srcdir=src,
        builddir=tmp_path / "out",
        confoverrides=overrides,
        status=StringIO(),
        warning=warnings,
        freshenv=True,
    )
    try:
        app.build()
    finally:
        app.cleanup()
    return tmp_path / "out" / "html", warnings.getvalue()


INDEX = "# Book\n\n```{sessions-table}\n```\n\n```{toctree}\n:glob:\n\nsessions/*\n```\n"


def test_table_links_existing_chapters_and_card_comes_from_the_record(tmp_path):
    html, warnings = build(
        tmp_path, {"index.md": INDEX, "sessions/01-xception.md": CHAPTER.format(title="X")}
    )
    assert warnings == ""
    index = (html / "index.html").read_text(encoding="utf-8")
    assert index.count("<tr") == 12  # header + 11 sessions
    assert index.index("25 Nov 2021") < index.index("10 Jan 2021")  # newest first
    assert 'href="sessions/01-xception.html"' in index
    assert index.count("not written yet") == 10
    chapter = (html / "sessions" / "01-xception.html").read_text(encoding="utf-8")
    assert "Session 1 · Sunday 10 January 2021" in chapter
    assert "Jayson Cunanan" in chapter and "17:00 JST · 09:00 CET · 08:00 UTC" in chapter
    assert "Chollet" in chapter  # the paper is cited and listed in the chapter's references


def test_chapter_without_a_record_is_a_clear_warning(tmp_path):
    _, warnings = build(
        tmp_path, {"index.md": INDEX, "sessions/99-unknown.md": CHAPTER.format(title="U")}
    )
    assert "99-unknown.md" in warnings
    assert "no session in" in warnings and "chapter = '99-unknown'" in warnings


def test_malformed_record_stops_the_build_naming_session_and_field(tmp_path):
    broken = tmp_path / "sessions.toml"
    text = RECORDS.read_text(encoding="utf-8").replace("date = 2021-03-14", 'date = "March"')
    broken.write_text(text, encoding="utf-8")
    warnings = StringIO()
    with pytest.raises(BuildStopped) as info:  # no Sphinx crash report: our message
        build(tmp_path, {"index.md": INDEX}, warnings, initdocs_sessions_file=str(broken))
    line = text.splitlines().index('date = "March"') + 1
    expected = f"{broken}:{line}: ERROR: session 3: field 'date' must be a TOML date"
    assert expected in warnings.getvalue()
    assert f"the session records {broken} have" in str(info.value)
    assert "fix them and build again" in str(info.value)


def test_bibtex_entry_is_the_exact_source_of_one_entry():
    text = BIB.read_text(encoding="utf-8")
    entry = entry_source(BIB, "chollet2017xception")
    assert entry.startswith("@inproceedings{chollet2017xception,") and entry.endswith("}")
    assert entry in text
    parsed = parse_string(entry, "bibtex")
    assert list(parsed.entries) == ["chollet2017xception"]
    assert parsed.entries["chollet2017xception"].fields["doi"] == "10.1109/CVPR.2017.195"
    assert entry_source(BIB, "chollet2017") is None  # a prefix of a key is not a key


def test_bibtex_entry_and_session_map_read_the_bibliography_the_same_way(tmp_path):
    """Both directives read references.bib through initdocs.book.bibtex."""
    conf = CONF.replace(
        '"initdocs.book.directives"]', '"initdocs.book.directives", "initdocs.book.sessionmap"]'
    )
    page = "# Map\n\n```{session-map}\n```\n\n```{bibtex-entry} sifre2014rigid\n```\n"
    html, _ = build(tmp_path, {"conf.py": conf, "index.md": page})
    soup = BeautifulSoup((html / "index.html").read_text(encoding="utf-8"), "html.parser")
    listing = soup.select_one("ul.initdocs-map-list").get_text(" ", strip=True)
    assert "Sifre 2014, Rigid-Motion Scattering for Image Classification" in listing
    assert "Byrd & Lipton 2019" in listing and "He et al. 2016" in listing
    shown = soup.select_one("div.bibtex-entry pre").get_text()
    assert shown.rstrip("\n") == entry_source(BIB, "sifre2014rigid")
