"""references.bib: complete entries, no duplicates, every citation resolvable."""

import re

import pytest
from conftest import BIB, DOCS, RECORDS
from pybtex.database import parse_file

from initdocs.bibliography import check_bibtex, parse_bibtex
from initdocs.sessions import load_sessions

CITE = re.compile(r"\{(?:foot)?cite(?::\w+)?\}`([^`]+)`")


def cited_keys() -> dict[str, set[str]]:
    """Every key cited in docs/ -> the files citing it."""
    keys: dict[str, set[str]] = {}
    for path in DOCS.rglob("*.md"):
        if "_build" in path.parts:
            continue
        for match in CITE.finditer(path.read_text(encoding="utf-8")):
            for key in match.group(1).split(","):
                keys.setdefault(key.strip(), set()).add(path.name)
    return keys


def test_references_bib_has_no_problems():
    assert [str(p) for p in check_bibtex(BIB)] == []


def test_our_parser_agrees_with_pybtex():
    """pybtex (what sphinxcontrib-bibtex uses) reads the same keys and fields."""
    ours, _ = parse_bibtex(BIB)
    theirs = parse_file(str(BIB), "bibtex")
    assert [e.key for e in ours] == list(theirs.entries.keys())
    for entry in ours:
        reference = theirs.entries[entry.key]
        assert entry.type == reference.type
        assert entry.fields["title"] == " ".join(str(reference.fields["title"]).split())
        authors = [str(p) for p in reference.persons.get("author", [])]
        assert len(authors) == entry.fields["author"].count(" and ") + 1


def test_every_cited_key_exists():
    entries, _ = parse_bibtex(BIB)
    known = {e.key for e in entries}
    cited = cited_keys()
    assert cited, "no citations found in docs/: the pattern is wrong"
    missing = {key: sorted(files) for key, files in cited.items() if key not in known}
    assert missing == {}


def test_every_sessions_paper_has_an_entry():
    entries, _ = parse_bibtex(BIB)
    known = {e.key for e in entries}
    sessions = load_sessions(RECORDS)
    assert [s.paper_key for s in sessions if s.paper_key not in known] == []
    assert len(sessions) == 11


def test_known_facts_of_the_papers():
    """Spot checks of entries against the published papers (authors, venue, identifiers)."""
    entries = {e.key: e.fields for e in parse_bibtex(BIB)[0]}
    assert entries["chollet2017xception"]["doi"] == "10.1109/CVPR.2017.195"
    assert entries["chollet2017xception"]["eprint"] == "1610.02357"
    assert entries["vaswani2017attention"]["author"].count(" and ") == 7  # eight authors
    assert entries["dosovitskiy2021image"]["author"].count(" and ") == 11  # twelve authors
    assert entries["chen2018deeplab"]["doi"] == "10.1109/TPAMI.2017.2699184"  # not FCN's DOI
    assert entries["he2019filter"]["author"].startswith("He, Yang and Liu, Ping")


BROKEN = """\
@article{a2020,
  author = {A, B},
  title = {T},
  journal = {J},
  year = {20},
  doi = {https://doi.org/10.1/x}
}

@inproceedings{a2020,
  author = {A, B},
  title = {T},
  year = {2020},
  eprint = {1234.5678}
}
"""


def test_checker_reports_each_problem_with_its_line(tmp_path):
    path = tmp_path / "refs.bib"
    path.write_text(BROKEN, encoding="utf-8")
    problems = [str(p) for p in check_bibtex(path)]
    assert f"{path}:1: entry 'a2020': @article needs the field volume" in problems
    assert any(p.startswith(f"{path}:5: ") and "'year' is '20'" in p for p in problems)
    assert any(p.startswith(f"{path}:6: ") and "no https://doi.org/ prefix" in p for p in problems)
    assert any(p.startswith(f"{path}:9: ") and "duplicate key" in p for p in problems)
    assert f"{path}:9: entry 'a2020': @inproceedings needs the field booktitle" in problems
    assert any(p.startswith(f"{path}:13: ") and "archiveprefix" in p for p in problems)


@pytest.mark.parametrize(
    "text",
    ["@article{key, title = {unclosed}\n", "@misc{ , title = {x}}\n", "@misc{k, title {x}}\n"],
)
def test_syntax_errors_are_reported_not_raised(tmp_path, text):
    path = tmp_path / "bad.bib"
    path.write_text(text, encoding="utf-8")
    problems = check_bibtex(path)
    assert problems and all(p.line in (1, 2) for p in problems)
