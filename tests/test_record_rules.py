"""Every rule of the records check is exercised: a bad record, and the exact message it gives.

Each example edits the good records of ``test_sessions`` so that exactly one thing is wrong,
and asserts the one problem reported: the rule that found it, and its whole text with the
file, the line, the session and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import BIB
from test_sessions import GOOD

from initdocs.book.records import (
    ACROSS_RULES,
    FILE_RULES,
    RECORD_RULES,
    SessionRecordError,
    load_sessions,
)

ALL_RULES = (*FILE_RULES, *RECORD_RULES, *ACROSS_RULES)
#: What ``builds_on`` must be, as its messages say.
BUILDS_ON = (
    "must be a list of earlier session numbers and references.bib keys, "
    'e.g. builds_on = [6, "he2016deep"]'
)
#: Where session 2 may take a ``builds_on`` line.
VIDEO = 'video = "https://www.youtube.com/watch?v=HTgvG57JFYw"'


class Example(NamedTuple):
    rule: str
    text: str  # the whole records file
    at: str | None  # a piece of the line the problem is on; None: no line
    message: str
    bibliography: str = "references.bib"  # "missing": a path with no file


def edit(old: str, new: str) -> str:
    assert GOOD.count(old) == 1, old
    return GOOD.replace(old, new)


def builds_on(value: str) -> str:
    """The good records with session 2 building on ``value``."""
    return edit(VIDEO, f"builds_on = {value}\n{VIDEO}")


EXAMPLES = [
    # The file as a whole.
    Example(
        "top_level_keys_are_known",
        edit('timezone = "Asia/Tokyo"\n', 'timezone = "Asia/Tokyo"\ncolour = "blue"\n'),
        "colour",
        "unknown top-level key 'colour'; allowed: start_time, timezone, session",
    ),
    Example(
        "start_time_is_a_local_time",
        edit("start_time = 17:00:00", 'start_time = "17:00"'),
        "start_time",
        "start_time must be a TOML local time without quotes, e.g. 17:00:00",
    ),
    Example(
        "timezone_is_an_iana_name",
        edit('timezone = "Asia/Tokyo"', 'timezone = "Tokyo/Japan"'),
        "timezone",
        "timezone 'Tokyo/Japan' is not an IANA time zone name such as 'Asia/Tokyo'",
    ),
    Example(
        "has_session_tables",
        GOOD.split("\n\n")[0] + "\n",
        None,
        "no [[session]] tables found; add one per session",
    ),
    Example(
        "sessions_are_tables",
        "start_time = 17:00:00\nsession = [1]\n",
        "session = [1]",
        "'session' must be a list of [[session]] tables, but it holds 1; "
        "write each session as a [[session]] table",
    ),
    # Each [[session]] table.
    Example(
        "fields_are_known",
        edit("video =", "vidoe ="),
        "vidoe",
        "session 2: field 'vidoe' is not a known field; allowed: number, date, topic, paper, "
        "title, paper_key, paper_url, chapter, presenter, links, video, builds_on",
    ),
    Example(
        "required_fields_are_present",
        edit('topic = "CV: Separable Convolutions"\n', ""),
        "[[session]]",
        "session 1: required field 'topic' is missing",
    ),
    Example(
        "number_counts_from_one",
        edit("number = 2", 'number = "2"'),
        'number = "2"',
        "[[session]] #2: field 'number' must be a whole number from 1 up (got '2')",
    ),
    Example(
        "date_is_a_toml_date",
        edit("date = 2021-02-14", 'date = "14/Feb/2021"'),
        "14/Feb",
        "session 2: field 'date' must be a TOML date without quotes, e.g. 2021-01-10 "
        "(got '14/Feb/2021')",
    ),
    Example(
        "texts_are_one_line",
        edit('topic = "CV: Separable Convolutions"', 'topic = ""'),
        'topic = ""',
        "session 1: field 'topic' must be a non-empty string in quotes (got '')",
    ),
    Example(
        "texts_are_one_line",
        edit('title = "DeepLab"', 'title = "Deep\\u0007Lab"'),
        "Deep\\u0007Lab",
        "session 2: field 'title' must be one line of text, but character 5 is a control "
        "character (U+0007); remove it",
    ),
    Example(
        "paper_key_is_a_bibtex_key",
        edit('paper_key = "chen2018deeplab"', 'paper_key = "chen 2018"'),
        "chen 2018",
        "session 2: field 'paper_key' must be a BibTeX key such as 'chollet2017xception' "
        "(got 'chen 2018')",
    ),
    Example(
        "addresses_are_web_addresses",
        edit(VIDEO, 'video = "javascript:alert(1)"'),
        "javascript",
        "session 2: field 'video' must be a web address starting with https:// "
        "(got 'javascript:alert(1)')",
    ),
    Example(
        "addresses_are_web_addresses",
        edit("abs/1606.00915", "abs/\\u202e1606.00915"),
        "1606.00915",
        "session 2: field 'paper_url' must be one line of text, but character 23 is a "
        "bidirectional-text override (U+202E); remove it",
    ),
    Example(
        "chapter_is_a_file_name",
        edit('"02-deeplabv2"', '"02_DeepLab"'),
        "02_DeepLab",
        "session 2: field 'chapter' must be the chapter's file name without '.md': two-digit "
        "number, a hyphen, lower-case words joined by hyphens, e.g. '01-xception' "
        "(got '02_DeepLab')",
    ),
    Example(
        "chapter_starts_with_the_number",
        edit('"02-deeplabv2"', '"03-deeplabv2"'),
        "03-deeplabv2",
        "session 2: field 'chapter' must start with the session number as two digits, "
        "'02-...' (got '03-deeplabv2')",
    ),
    Example(
        "presenter_is_a_table_with_a_name",
        edit('{ name = "Jayson Cunanan" }', '"Jayson Cunanan"'),
        "Jayson",
        "session 1: field 'presenter' must be a table with a name, "
        'e.g. { name = "Jane Doe", url = "https://..." }',
    ),
    Example(
        "presenter_keys_are_known",
        edit('{ name = "Jayson Cunanan" }', '{ name = "Jayson Cunanan", twitter = "@j" }'),
        "Jayson",
        "session 1: field 'presenter' has unknown key 'twitter'; allowed: name, url",
    ),
    Example(
        "presenter_name_is_one_line",
        edit('{ name = "Jayson Cunanan" }', '{ name = " " }'),
        'name = " "',
        "session 1: field 'presenter' name must be a name in quotes (got ' ')",
    ),
    Example(
        "presenter_url_is_a_web_address",
        edit('url = "https://www.twitter.com/jmlipman"', 'url = "twitter.com/jmlipman"'),
        "Valverde",
        "session 2: field 'presenter' url must be a web address starting with https:// "
        "(got 'twitter.com/jmlipman')",
    ),
    Example(
        "links_are_a_list",
        edit("links = [{", "links = {").replace('pptx" }]', 'pptx" }'),
        "links =",
        "session 2: field 'links' must be a list of tables: "
        '[{ label = "Slides", url = "https://..." }]',
    ),
    Example(
        "links_are_labelled_addresses",
        edit(', url = "https://example.org/s.pptx"', ""),
        "links =",
        'session 2: field \'links\' entry 1 must be { label = "...", url = "https://..." }',
    ),
    Example(
        "links_are_labelled_addresses",
        edit('label = "Slides"', 'label = ""'),
        "links =",
        "session 2: field 'links' entry 1 label must be a label in quotes (got '')",
    ),
    Example(
        "links_are_labelled_addresses",
        edit("https://example.org/s.pptx", "s.pptx"),
        "links =",
        "session 2: field 'links' entry 1 url must be a web address starting with https:// "
        "(got 's.pptx')",
    ),
    Example(
        "builds_on_is_a_list",
        builds_on("1"),
        "builds_on",
        f"session 2: field 'builds_on' {BUILDS_ON} (got 1)",
    ),
    Example(
        "builds_on_names_earlier_sessions_and_known_works",
        builds_on("[1.5]"),
        "builds_on",
        f"session 2: field 'builds_on' {BUILDS_ON}; 1.5 is neither",
    ),
    Example(
        "builds_on_names_earlier_sessions_and_known_works",
        builds_on("[2]"),
        "builds_on",
        "session 2: field 'builds_on' names session 2, which is not earlier than session 2; "
        "a session builds only on earlier ones",
    ),
    Example(
        "builds_on_names_earlier_sessions_and_known_works",
        edit("number = 2", "number = 3")
        .replace('"02-deeplabv2"', '"03-deeplabv2"')
        .replace(VIDEO, f"builds_on = [2]\n{VIDEO}"),
        "builds_on",
        "session 3: field 'builds_on' names session 2, which has no [[session]] record",
    ),
    Example(
        "builds_on_names_earlier_sessions_and_known_works",
        builds_on('["he2016deep", "hinton2099dreams"]'),
        "builds_on",
        "session 2: field 'builds_on' names 'hinton2099dreams', which is not a key in "
        "references.bib; add its entry there or write the key as it is spelled there",
    ),
    Example(
        "builds_on_names_earlier_sessions_and_known_works",
        builds_on('["he2016deep"]'),
        "builds_on",
        "session 2: field 'builds_on' names 'he2016deep' but the repository has no "
        "references.bib to look it up in; add the entry to references.bib at the repository's "
        "root",
        bibliography="missing",
    ),
    Example(
        "builds_on_names_each_once",
        builds_on('[1, "he2016deep", 1]'),
        "builds_on",
        "session 2: field 'builds_on' lists 1 more than once; name each work once",
    ),
    # Across the [[session]] tables.
    Example(
        "each_session_has_its_own",
        edit('paper_key = "chen2018deeplab"', 'paper_key = "chollet2017xception"'),
        'paper_key = "chollet2017xception"\npaper_url = "https://arxiv.org/abs/1606',
        "session 2: field 'paper_key' repeats 'chollet2017xception' of the [[session]] on "
        "line 4; each session needs its own",
    ),
    Example(
        "numbers_follow_the_dates",
        edit("date = 2021-02-14", "date = 2020-12-01"),
        "2020-12-01",
        "session 2: field 'date' 2020-12-01 is not after session 1's date 2021-01-10; "
        "numbers follow the dates",
    ),
]


def line_of(text: str, piece: str | None) -> str:
    """``:N`` for the line where ``piece`` starts (its first occurrence), or nothing."""
    if piece is None:
        return ""
    return f":{text[: text.index(piece)].count(chr(10)) + 1}"


def test_every_rule_has_an_example():
    names = [rule.__name__ for rule in ALL_RULES]
    assert len(set(names)) == len(names)
    assert {example.rule for example in EXAMPLES} == set(names)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.rule for e in EXAMPLES])
def test_each_rule_reports_its_message(tmp_path: Path, example: Example):
    path = tmp_path / "sessions.toml"
    path.write_text(example.text, encoding="utf-8")
    bibliography = BIB if example.bibliography == "references.bib" else tmp_path / "none.bib"
    with pytest.raises(SessionRecordError) as info:
        load_sessions(path, bibliography)
    where = f"{path}{line_of(example.text, example.at)}"
    reported = [(problem.rule, str(problem)) for problem in info.value.problems]
    assert reported == [(example.rule, f"{where}: {example.message}")]
