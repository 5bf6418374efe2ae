"""references.bib: complete entries, no duplicates, every citation resolvable; and the
checker reads any BibTeX that BibTeX reads, reporting each problem at its own line."""

import re
import shutil
import time

import pybtex.errors
import pytest
from conftest import BIB, DOCS, RECORDS
from pybtex.database import parse_file, parse_string

from initdocs.book.bibtex import check_bibtex, entry_source, parse_bibtex
from initdocs.book.cli import main
from initdocs.book.records import load_sessions

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


def test_our_reading_agrees_with_pybtex():
    """pybtex's own reader (what sphinxcontrib-bibtex uses) gets the same keys and fields."""
    ours, problems = parse_bibtex(BIB)
    theirs = parse_file(str(BIB), "bibtex")
    assert problems == []
    assert [e.key for e in ours] == list(theirs.entries.keys())
    for entry in ours:
        reference = theirs.entries[entry.key]
        assert entry.type == reference.type
        assert {k: v for k, v in entry.fields.items() if k not in ("author", "editor")} == {
            k.lower(): v for k, v in reference.fields.items()
        }
        assert [str(p) for p in entry.persons("author")] == [
            str(p) for p in reference.persons["author"]
        ]
        # The copyable source is the entry as written, and reads back to the same entry.
        assert entry.source in BIB.read_text(encoding="utf-8")
        again = parse_string(entry.source, "bibtex").entries
        assert list(again) == [entry.key] and again[entry.key].fields == reference.fields


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


def write(tmp_path, text: str, name: str = "refs.bib"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, start: str) -> int:
    """The 1-based number of the first line of ``text`` that starts with ``start``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(start))


GOOD = """\
@article{good2020,
  author = {Doe, Jane},
  title = {A Title},
  journal = {J},
  volume = {1},
  year = {2020},
  doi = {10.1000/good}
}
"""


def test_quoted_value_with_braces(tmp_path):
    text = GOOD.replace("{Doe, Jane}", '"M{\\"u}ller, Hans and Doe, Jane"').replace(
        "{A Title}", '"The {CNN} of {\\"O}stersund"'
    )
    path = write(tmp_path, text)
    (entry,), problems = parse_bibtex(path)
    assert problems == []
    assert entry.fields["author"] == 'M{\\"u}ller, Hans and Doe, Jane'
    assert entry.fields["title"] == 'The {CNN} of {\\"O}stersund'
    assert [p.last_names for p in entry.persons("author")] == [['M{\\"u}ller'], ["Doe"]]
    assert check_bibtex(path) == []


def test_string_macros_and_concatenation(tmp_path):
    text = (
        '@string{pami = "IEEE Transactions on " # {Pattern Analysis}}\n'
        "@STRING{Doe = {Doe, Jane}}\n\n"
        + GOOD.replace("{J}", 'pami # " and Machine Intelligence"')
        .replace("{Doe, Jane}", 'doe # " and Roe, Richard"')
        .replace("{2020}", "2020")
        .replace("  volume", "  month = mar,\n  volume")
    )
    path = write(tmp_path, text)
    (entry,), problems = parse_bibtex(path)
    assert problems == []
    assert entry.line == 4
    assert entry.fields["journal"] == (
        "IEEE Transactions on Pattern Analysis and Machine Intelligence"
    )
    assert entry.fields["author"] == "Doe, Jane and Roe, Richard"
    assert entry.fields["year"] == "2020"
    assert entry.fields["month"] == "March"
    assert entry.field_lines["journal"] == 7
    assert check_bibtex(path) == []


def test_comment_and_preamble_are_not_entries(tmp_path):
    text = (
        "@comment{Entries below are {checked}, not this comment}\n"
        '@preamble{"\\newcommand{\\noopsort}[1]{}"}\n'
        "Text outside entries is ignored too.\n" + GOOD
    )
    path = write(tmp_path, text)
    entries, problems = parse_bibtex(path)
    assert problems == []
    assert [(e.key, e.line) for e in entries] == [("good2020", 4)]
    assert check_bibtex(path) == []


def three(second: str = GOOD.replace("good2020", "deeper2015")) -> str:
    """Entries on lines 1, 10 (``second``) and 19; the last one's year (line 24) is wrong."""
    last = GOOD.replace("good2020", "last2021").replace("{2020}", "{21}")
    return f"{GOOD}\n{second}\n{last}"


LAST_YEAR = "entry 'last2021': field 'year' is '21'; expected a four-digit year"


def test_unclosed_brace_is_reported_at_its_own_entry(tmp_path):
    second = GOOD.replace("good2020", "deeper2015").replace("{A Title}", "{A Title")
    path = write(tmp_path, three(second))
    assert [str(p) for p in check_bibtex(path)] == [
        f"{path}:10: entry 'deeper2015': not closed before the next entry (line 19); close the "
        "'{' or '\"' left open in it (last field read: 'title', line 12), or add its closing '}'",
        f"{path}:24: {LAST_YEAR}",  # the entry after it is still read and checked
    ]


def test_brace_left_open_to_the_end_of_the_file(tmp_path):
    path = write(tmp_path, three().replace("{Doe, Jane}", "{Doe, {Jane}", 1))
    assert [str(p) for p in check_bibtex(path)] == [
        f"{path}:1: entry 'good2020': not closed before the next entry (line 10); close the "
        "'{' or '\"' left open in it (last field read: 'author', line 2), or add its closing '}'",
        f"{path}:24: {LAST_YEAR}",  # BibTeX stops reading; the check goes on at line 10
    ]
    last = GOOD.replace("{A Title}", "{A {Title}")
    path = write(tmp_path, GOOD.replace("good2020", "first") + "\n" + last, "last.bib")
    assert [str(p) for p in check_bibtex(path)] == [
        f"{path}:10: entry 'good2020': not closed before the end of the file; close the "
        "'{' or '\"' left open in it (last field read: 'title', line 12), or add its closing '}'"
    ]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "{A Title},",
            "{A Title}",
            "4: entry 'good2020': expected ',' or the entry's closing brace here; put a comma "
            "between fields",
        ),
        (
            "{J}",
            "jmlr",
            "4: entry 'good2020': field 'journal' uses 'jmlr', which no @string "
            "defines; put the value in braces or quotes",
        ),
        ("good2020,", ",", "1: @article entry without a key: write @article{key, ...}"),
        (
            "title =",
            "title",
            "3: entry 'good2020': expected 'field = {value}'; check the '=' signs",
        ),
    ],
)
def test_syntax_error_messages(tmp_path, old, new, problem):
    path = write(tmp_path, GOOD.replace(old, new))
    assert [str(p) for p in check_bibtex(path)] == [f"{path}:{problem}"]


def test_duplicate_key_is_reported_at_the_second_entry_and_checking_goes_on(tmp_path):
    text = three().replace("deeper2015", "Good2020")
    path = write(tmp_path, text)
    assert [str(p) for p in check_bibtex(path)] == [
        f"{path}:10: entry 'Good2020': duplicate key (first defined on line 1); rename or "
        "remove one",
        f"{path}:24: {LAST_YEAR}",
    ]


def test_missing_field(tmp_path):
    path = write(tmp_path, GOOD.replace("  volume = {1},\n", ""))
    assert [str(p) for p in check_bibtex(path)] == [
        f"{path}:1: entry 'good2020': @article needs the field volume"
    ]


def test_proceedings_need_a_doi_an_arxiv_id_or_a_url(tmp_path):
    entry = (
        "@inproceedings{old2006,\n  author = {Old, Ann},\n  title = {T},\n"
        "  booktitle = {NIPS 19},\n  year = {2007},\n{extra}}\n"
    )
    path = write(tmp_path, entry.replace("{extra}", ""))
    assert [str(p) for p in check_bibtex(path)] == [
        f"{path}:1: entry 'old2006': @inproceedings needs the field doi or eprint or url"
    ]
    path = write(tmp_path, entry.replace("{extra}", "  url = {https://example.org/2006},\n"))
    assert check_bibtex(path) == []


def test_names_bibtex_cannot_split(tmp_path):
    path = write(tmp_path, GOOD.replace("{Doe, Jane}", "{Doe, Jane, Roe, Richard}"))
    assert [str(p) for p in check_bibtex(path)] == [
        f"{path}:2: entry 'good2020': field 'author' has the name 'Doe, Jane, Roe, Richard' "
        "with more than two commas; write 'Last, First' or 'Last, Jr, First', and put ' and ' "
        "between people"
    ]


def test_entry_source_is_only_given_for_readable_entries(tmp_path):
    second = GOOD.replace("good2020", "deeper2015").replace("{Doe, Jane}", "{Doe, Jane")
    path = write(tmp_path, three(second))
    assert entry_source(path, "good2020") == GOOD.rstrip("\n")
    assert entry_source(path, "deeper2015") is None  # broken: check_bibtex says why
    assert entry_source(path, "missing") is None


def test_ten_thousand_entries_check_in_seconds(tmp_path):
    """Reading is linear: 10,000 entries take seconds, and the one duplicate is found."""
    entries = []
    for i in range(10_000):
        key = "key42" if i == 7_777 else f"key{i}"
        entries.append(
            f"@article{{{key},\n  author = {{Doe, Jane and Roe, R.}},\n"
            f'  title = "Study {{{i}}} of {{CNN}}s",\n  journal = {{J}},\n  volume = {i},\n'
            f"  year = 2020,\n  doi = {{10.1000/{i}}}\n}}\n\n"
        )
    path = write(tmp_path, "".join(entries), "big.bib")
    start = time.perf_counter()
    problems = check_bibtex(path)
    seconds = time.perf_counter() - start
    assert [str(p) for p in problems] == [
        f"{path}:{7_777 * 9 + 1}: entry 'key42': duplicate key (first defined on line "
        f"{42 * 9 + 1}); rename or remove one"
    ]
    assert seconds < 20, f"checking 10,000 entries took {seconds:.1f} s"


def test_cli_reports_an_unclosed_brace_and_changes_nothing(tmp_path, monkeypatch, capsys):
    (tmp_path / "docs").mkdir()
    shutil.copy(RECORDS, tmp_path / "docs" / "sessions.toml")
    text = BIB.read_text(encoding="utf-8")
    broken = text.replace(
        "  title         = {Going Deeper with Convolutions},",
        "  title         = {Going Deeper with Convolutions,",
    )
    assert broken != text
    bib = write(tmp_path, broken, "references.bib")
    entry = line_of(broken, "@inproceedings{szegedy2015going,")
    following = line_of(broken, "@inproceedings{szegedy2016rethinking,")
    monkeypatch.chdir(tmp_path)
    strict = pybtex.errors.strict
    code = main(["--root", str(tmp_path), "check", "references.bib"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.splitlines() == [
        f"references.bib:{entry}: entry 'szegedy2015going': not closed before the next entry "
        f"(line {following}); close the '{{' or '\"' left open in it (last field read: "
        f"'title', line {entry + 2}), or add its closing '}}'"
    ]
    assert err == "initdocs check: 1 problem(s) in 1 file(s)\n"  # nothing from pybtex
    assert pybtex.errors.strict == strict
    assert bib.read_text(encoding="utf-8") == broken
