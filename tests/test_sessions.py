"""The session records: the real file is valid, and every kind of mistake is reported well."""

import datetime as dt
from pathlib import Path

import pytest
from conftest import RECORDS

from initdocs.book.records import SessionRecordError, load_sessions

GOOD = """\
start_time = 17:00:00
timezone = "Asia/Tokyo"

[[session]]
number = 1
date = 2021-01-10
topic = "CV: Separable Convolutions"
paper = "Xception"
title = "Xception: Deep Learning with Depthwise Separable Convolutions"
paper_key = "chollet2017xception"
paper_url = "https://arxiv.org/abs/1610.02357"
chapter = "01-xception"
presenter = { name = "Jayson Cunanan" }

[[session]]
number = 2
date = 2021-02-14
topic = "CV: Dilated Convolutions + ASPP"
paper = "DeepLabv2"
title = "DeepLab"
paper_key = "chen2018deeplab"
paper_url = "https://arxiv.org/abs/1606.00915"
chapter = "02-deeplabv2"
presenter = { name = "J. Miguel Valverde", url = "https://www.twitter.com/jmlipman" }
links = [{ label = "Slides", url = "https://example.org/s.pptx" }]
video = "https://www.youtube.com/watch?v=HTgvG57JFYw"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sessions.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(SessionRecordError) as info:
        load_sessions(write(tmp_path, text))
    return [str(p) for p in info.value.problems]


def test_the_books_records_hold_all_eleven_sessions():
    sessions = load_sessions(RECORDS)
    assert [s.number for s in sessions] == list(range(1, 12))
    first, last = sessions.sessions[0], sessions.sessions[-1]
    assert (first.paper, first.date) == ("Xception", dt.date(2021, 1, 10))
    assert (last.paper, last.date) == ("ResNet strikes back", dt.date(2021, 11, 25))
    assert first.chapter == "01-xception"
    # 17:00 in Tokyo is 08:00 UTC (Japan has no daylight saving time).
    assert sessions.start(first).astimezone(dt.UTC).hour == 8


def test_good_records_load(tmp_path):
    sessions = load_sessions(write(tmp_path, GOOD))
    assert len(sessions) == 2
    second = sessions.by_chapter("02-deeplabv2")
    assert second.presenter.url == "https://www.twitter.com/jmlipman"
    assert second.links[0].label == "Slides"
    assert second.docname == "sessions/02-deeplabv2"


def test_a_quoted_date_names_file_line_session_and_field(tmp_path):
    text = GOOD.replace("date = 2021-02-14", 'date = "14/Feb/2021"')
    [problem] = problems_of(tmp_path, text)
    line = text.splitlines().index('date = "14/Feb/2021"') + 1
    assert problem.startswith(f"{tmp_path / 'sessions.toml'}:{line}: session 2: field 'date'")
    assert "2021-01-10" in problem  # says how to write it


def test_all_problems_are_reported_at_once(tmp_path):
    text = (
        GOOD.replace('paper_url = "https://arxiv.org/abs/1610.02357"', 'paper_url = "arxiv 1610"')
        .replace('chapter = "02-deeplabv2"', 'chapter = "2-DeepLab"')
        .replace('topic = "CV: Separable Convolutions"\n', "")
        .replace("video =", "vidoe =")
    )
    problems = problems_of(tmp_path, text)
    assert len(problems) == 4
    joined = "\n".join(problems)
    assert "session 1: field 'paper_url' must be a web address" in joined
    assert "session 1: required field 'topic' is missing" in joined
    assert "session 2: field 'chapter' must be the chapter's file name" in joined
    assert "session 2: field 'vidoe' is not a known field" in joined


def test_duplicate_numbers_and_out_of_order_dates(tmp_path):
    text = GOOD.replace("number = 2", "number = 1").replace('"02-deeplabv2"', '"01-deeplab"')
    problems = problems_of(tmp_path, text)
    assert any("field 'number' repeats 1" in p for p in problems)
    text = GOOD.replace("date = 2021-02-14", "date = 2020-12-01")
    [problem] = problems_of(tmp_path, text)
    assert "session 2: field 'date' 2020-12-01 is not after session 1's date" in problem


def test_chapter_must_carry_the_session_number(tmp_path):
    [problem] = problems_of(tmp_path, GOOD.replace('"02-deeplabv2"', '"03-deeplabv2"'))
    assert "must start with the session number as two digits, '02-...'" in problem


def test_malformed_presenter_and_links(tmp_path):
    text = GOOD.replace('{ name = "Jayson Cunanan" }', '"Jayson"').replace(
        'label = "Slides", url = "https://example.org/s.pptx"', 'label = "Slides", url = "slides"'
    )
    problems = problems_of(tmp_path, text)
    assert any("session 1: field 'presenter' must be a table with a name" in p for p in problems)
    assert any("session 2: field 'links' entry 1 url must be a web address" in p for p in problems)


def test_invalid_toml_and_bad_top_level(tmp_path):
    [problem] = problems_of(tmp_path, GOOD.replace('topic = "CV: Separable', "topic = CV: Sep"))
    assert "not valid TOML" in problem and ":7:" in problem
    problems = problems_of(
        tmp_path, 'timezone = "Tokyo/Japan"\ncolour = 1\n\n' + GOOD.split("\n\n", 1)[1]
    )
    assert any("not an IANA time zone" in p for p in problems)
    assert any("unknown top-level key 'colour'" in p for p in problems)


def test_no_sessions_at_all(tmp_path):
    [problem] = problems_of(tmp_path, 'timezone = "Asia/Tokyo"\n')
    assert "no [[session]] tables found" in problem
