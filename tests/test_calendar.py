"""The sessions calendar (sessions.ics) and the time zones on the session cards."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import icalendar
import pytest
from bs4 import BeautifulSoup
from conftest import RECORDS
from test_sphinxext import CHAPTER, INDEX, build

from initdocs.book.calendar import calendar
from initdocs.book.records import Sessions, load_sessions

BASE_URL = "https://example.org/book/"


@pytest.fixture(scope="module")
def records():
    return load_sessions(RECORDS)


@pytest.fixture(scope="module")
def published(html) -> bytes:
    path = html / "sessions.ics"
    assert path.is_file(), f"{path} was not written by the build"
    return path.read_bytes()


def base_url(html) -> str:
    """The book's html_baseurl, as the build wrote it into the canonical link of a page."""
    page = BeautifulSoup((html / "index.html").read_text(encoding="utf-8"), "html.parser")
    canonical = page.find("link", rel="canonical")["href"]
    return canonical.removesuffix("index.html")


def test_every_session_is_an_event_with_the_records_fields(html, published, records):
    events = {str(e["UID"]): e for e in icalendar.Calendar.from_ical(published).walk("VEVENT")}
    assert len(events) == len(records)
    base = base_url(html)
    for session in records:
        uids = [uid for uid in events if uid.startswith(f"session-{session.number}@")]
        assert len(uids) == 1, f"session {session.number}: expected one event, got {uids}"
        event = events[uids[0]]
        start = event.decoded("DTSTART")
        expected = dt.datetime.combine(session.date, dt.time(17, 0), ZoneInfo("Asia/Tokyo"))
        assert start == expected and start.utcoffset() == dt.timedelta(0)
        assert event.decoded("DTSTAMP") == expected
        assert event.decoded("DURATION") == dt.timedelta(hours=1, minutes=30)
        summary = str(event["SUMMARY"])
        assert str(session.number) in summary and session.title in summary
        description = str(event["DESCRIPTION"])
        chapter = f"{base}sessions/{session.chapter}.html"
        for fact in (session.title, session.paper_url, session.presenter.name, chapter):
            assert fact in description, f"session {session.number}: {fact!r} not in DESCRIPTION"
        for link in session.links:
            assert f"{link.label}: {link.url}" in description
        if session.video:
            assert f"Video: {session.video}" in description
        assert str(event["URL"]) == chapter
        assert (html / f"sessions/{session.chapter}.html").is_file()


def test_calendar_file_is_wellformed_rfc5545(published):
    assert published.endswith(b"\r\n")
    lines = published.split(b"\r\n")[:-1]
    assert all(b"\n" not in line and b"\r" not in line for line in lines)
    assert max(len(line) for line in lines) <= 75
    calendar_ = icalendar.Calendar.from_ical(published)
    assert str(calendar_["VERSION"]) == "2.0" and calendar_["PRODID"]


def test_calendar_output_is_deterministic(records):
    first = calendar(records, BASE_URL)
    assert first == calendar(records, BASE_URL)
    assert "DTSTAMP:2021" in first  # from the records, not from the clock


def test_unbuilt_chapters_get_no_link(records):
    text = calendar(records, BASE_URL, chapters=["sessions/01-xception"])
    events = icalendar.Calendar.from_ical(text).walk("VEVENT")
    with_url = [str(e["URL"]) for e in events if "URL" in e]
    assert with_url == [f"{BASE_URL}sessions/01-xception.html"]


def with_title(records: Sessions, title: str) -> Sessions:
    """``records`` with the first session's title replaced (no record check on the way)."""
    first = dataclasses.replace(records.sessions[0], title=title)
    return dataclasses.replace(records, sessions=(first, *records.sessions[1:]))


def test_text_escaping_and_folding_round_trip(records):
    title = "Café, naïve; back\\slash\tnew line, " + "長い題名" * 30
    text = calendar(with_title(records, title), BASE_URL)
    assert "SUMMARY:MLT __init__ session 1: Café\\, naïve\\; back\\\\slash" in text
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    event = icalendar.Calendar.from_ical(text).walk("VEVENT")[0]
    assert str(event["SUMMARY"]) == f"MLT __init__ session 1: {title}"


def test_every_line_break_becomes_an_escaped_newline(records):
    text = calendar(with_title(records, "a\rb\r\nc\nd"), BASE_URL)
    assert "SUMMARY:MLT __init__ session 1: a\\nb\\nc\\nd\r\n" in text
    event = icalendar.Calendar.from_ical(text).walk("VEVENT")[0]
    assert str(event["SUMMARY"]) == "MLT __init__ session 1: a\nb\nc\nd"


@pytest.mark.parametrize("char", ["\x1b", "\x00", "\x7f", "\x85"])
def test_other_control_characters_are_refused_not_dropped(records, char):
    with pytest.raises(ValueError, match=rf"U\+{ord(char):04X}"):
        calendar(with_title(records, f"red{char}[31m"), BASE_URL)


#: Session 1's notes, written out: the paper, topic, presenter, slides, notebook, video and
#: chapter, one a line.
XCEPTION_DESCRIPTION = """\
Paper: Xception: Deep Learning with Depthwise Separable Convolutions \
(https://arxiv.org/abs/1610.02357)
Topic: CV: Separable Convolutions
Presenter: Jayson Cunanan
Slides: https://github.com/Machine-Learning-Tokyo/__init__/blob/main/session_01/Xception.pptx
Notebook: https://github.com/Machine-Learning-Tokyo/__init__/blob/main/session_01/Xception.ipynb
Video: https://www.youtube.com/watch?v=GIXDyJnFM5w
Chapter in the book: https://example.org/book/sessions/01-xception.html"""


def test_each_event_holds_exactly_its_records_facts(records):
    events = icalendar.Calendar.from_ical(calendar(records, BASE_URL)).walk("VEVENT")
    assert [str(e["UID"]) for e in events] == [f"session-{n}@example.org" for n in range(1, 12)]
    for session, event in zip(records, events, strict=True):
        start = dt.datetime.combine(session.date, dt.time(8, 0), dt.UTC)  # 17:00 in Tokyo
        assert event.decoded("DTSTART") == start == event.decoded("DTSTAMP")
        for name in ("DTSTART", "DTSTAMP"):  # written in UTC, needing no VTIMEZONE
            assert event[name].to_ical() == start.strftime("%Y%m%dT%H%M%SZ").encode()
        assert event.decoded("DURATION") == dt.timedelta(hours=1, minutes=30)
        assert str(event["SUMMARY"]) == f"MLT __init__ session {session.number}: {session.title}"
        assert str(event["LOCATION"]) == "Online (Zoom)"
        chapter = f"{BASE_URL}sessions/{session.chapter}.html"
        assert str(event["URL"]) == chapter
        lines = str(event["DESCRIPTION"]).split("\n")
        assert lines[:3] == [
            f"Paper: {session.title} ({session.paper_url})",
            f"Topic: {session.topic}",
            f"Presenter: {session.presenter.name}",
        ]
        video = [f"Video: {session.video}"] if session.video else []
        links = [f"{link.label}: {link.url}" for link in session.links]
        assert lines[3:] == [*links, *video, f"Chapter in the book: {chapter}"]
    assert str(events[0]["DESCRIPTION"]) == XCEPTION_DESCRIPTION
    assert not icalendar.Calendar.from_ical(calendar(records, BASE_URL)).walk("VTIMEZONE")


def build_calendar(tmp_path) -> bytes:
    """sessions.ics of a small book (the home page and one chapter) built with the records."""
    extensions = ["myst_nb", "sphinxcontrib.bibtex", "initdocs.book.directives"]
    html, warnings = build(
        tmp_path,
        {"index.md": INDEX, "sessions/01-xception.md": CHAPTER.format(title="X")},
        extensions=[*extensions, "initdocs.book.calendar"],
        html_baseurl=BASE_URL,
    )
    assert warnings == ""
    return (html / "sessions.ics").read_bytes()


def test_two_builds_write_the_same_bytes(tmp_path, records):
    first = build_calendar(tmp_path / "first")
    assert build_calendar(tmp_path / "second") == first
    events = icalendar.Calendar.from_ical(first).walk("VEVENT")
    assert len(events) == len(records)
    # Only the chapter in the build is linked.
    assert [str(e["URL"]) for e in events if "URL" in e] == [f"{BASE_URL}sessions/01-xception.html"]


@pytest.mark.parametrize(
    "page, prefix", [("index.html", ""), ("community/participants.html", "../")]
)
def test_calendar_is_linked(html, page, prefix):
    soup = BeautifulSoup((html / page).read_text(encoding="utf-8"), "html.parser")
    hrefs = {a["href"] for a in soup.select(".sessions-calendar a")}
    assert f"{prefix}sessions.ics" in hrefs
    assert f"{base_url(html)}sessions.ics" in hrefs


def card_when(html, chapter: str) -> str:
    soup = BeautifulSoup((html / f"sessions/{chapter}.html").read_text("utf-8"), "html.parser")
    card = soup.select_one(".session-card")
    label = next(dt_ for dt_ in card.find_all("dt") if dt_.get_text(strip=True).startswith("When"))
    return label.find_next_sibling("dd").get_text(" ", strip=True)


def test_xception_card_shows_jst_cet_and_utc(html):
    assert card_when(html, "01-xception").startswith("17:00 JST · 09:00 CET · 08:00 UTC")


def test_every_card_shows_the_central_european_time_of_its_day(html, records):
    seen = set()
    for session in records:
        when = card_when(html, session.chapter)
        berlin = records.start(session).astimezone(ZoneInfo("Europe/Berlin"))
        seen.add(berlin.tzname())
        assert f"{berlin:%H:%M} {berlin.tzname()}" in when and "08:00 UTC" in when
    assert seen == {"CET", "CEST"}  # the records span winter and summer
    assert "10:00 CEST" in card_when(html, "06-attention-is-all-you-need")
