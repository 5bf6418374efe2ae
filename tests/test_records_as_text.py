"""Text from the session records is data: shown as the characters it is, never run as markup.

Two halves. Hostile one-line values (line breaks, control characters, non-web addresses,
empty names) are refused by ``initdocs check``, ``initdocs new`` and the build, each with the
file, line, session and field, and nothing is written. Everything else a record may hold,
however much it looks like MyST, HTML or a role, reaches the built page as that exact text:
checked for the payloads of the issue and for arbitrary Unicode (Hypothesis).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from conftest import BIB, RECORDS
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_cli import NEW, repo, run, snapshot  # noqa: F401  (repo is a fixture)
from test_sphinxext import CHAPTER, INDEX, build

from initdocs.book.calendar import calendar
from initdocs.book.chapters import render_template
from initdocs.book.records import SessionRecordError, load_sessions

#: The fields that hold free text, and where each sits in a record.
TEXT_FIELDS = ("topic", "paper", "title", "presenter", "label")
#: Real keys of references.bib, so every card's citation resolves.
KEYS = (
    "chollet2017xception",
    "chen2018deeplab",
    "hu2018squeeze",
    "liu2016ssd",
    "cho2014learning",
    "vaswani2017attention",
)
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"

#: What a hostile contributor tried (issue 14): each is valid one-line text, so it is
#: accepted, and must be shown exactly as typed.
PAYLOADS = (
    "Exfil {download}`/../../secret.txt`",
    "{download}`/../.git/config` {download}`/../secret.txt`",
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "```{raw} html",
    "[click](javascript:alert(1)) and <https://evil.example/>",
    "$$\\int x$$ and {math}`x` and $y$",
    "{{ commit }} |a|b| *em* **strong** ~~del~~ \\",
    ":::{admonition} x",
    "&amp; &lt;b&gt; &#x3C;i&#x3E; <!-- c -->",
    "\"quotes\" -- dashes --- and 'single'",
    "{ref}`genindex` {doc}`/index` [^1] (label)=",
)


def record(number: int, values: dict[str, str], url: str = "https://example.org/p") -> str:
    """One ``[[session]]`` table with ``values`` in its text fields, written as TOML."""

    def q(text: str) -> str:
        # A JSON string is a TOML basic string once DEL, which JSON leaves raw, is escaped.
        return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")

    return (
        f"[[session]]\nnumber = {number}\ndate = 2021-{number:02d}-10\n"
        f"topic = {q(values['topic'])}\npaper = {q(values['paper'])}\n"
        f"title = {q(values['title'])}\npaper_key = {q(KEYS[number - 1])}\n"
        f"paper_url = {q(url)}\nchapter = {q(f'{number:02d}-s')}\n"
        f"presenter = {{ name = {q(values['presenter'])}, url = {q(url + '/who')} }}\n"
        f"links = [{{ label = {q(values['label'])}, url = {q(url + '/slides')} }}]\n"
        f"video = {q(url + '/video')}\n\n"
    )


def records_file(
    folder: Path, sessions: list[dict[str, str]], urls: list[str] | None = None
) -> Path:
    path = folder / "sessions.toml"
    urls = urls or ["https://example.org/p"] * len(sessions)
    text = 'timezone = "Asia/Tokyo"\n\n' + "".join(
        record(n, values, url)
        for n, (values, url) in enumerate(zip(sessions, urls, strict=True), 1)
    )
    path.write_text(text, encoding="utf-8")
    return path


# -- refused: one line of text, web addresses, names and labels ------------------------------

GOOD = {name: name.title() for name in TEXT_FIELDS}

#: (field, value, what the message says). Line breaks, control characters (ANSI escapes,
#: NUL), separators and bidirectional overrides; empty names; addresses that are not http(s).
REFUSED = [
    (
        "topic",
        "CV\n```{raw} html",
        "field 'topic' must be one line of text, but character 3 is a line break (U+000A)",
    ),
    (
        "title",
        "X\r<script>",
        "field 'title' must be one line of text, but character 2 is a line break (U+000D)",
    ),
    (
        "paper",
        "ResNet\u2028more",
        "field 'paper' must be one line of text, but character 7 is a line break (U+2028)",
    ),
    (
        "paper",
        "Res\x85Net",
        "field 'paper' must be one line of text, but character 4 is a line break (U+0085)",
    ),
    (
        "presenter",
        "\x1b[31mJane\x1b[0m",
        "character 1 is a control character (U+001B)",
    ),
    (
        "presenter",
        "Jane\x00",
        "character 5 is a control character (U+0000)",
    ),
    ("presenter", "", "field 'presenter' name must be a name in quotes (got '')"),
    ("presenter", "   ", "field 'presenter' name must be a name in quotes (got '   ')"),
    ("label", "", "field 'links' entry 1 label must be a label in quotes (got '')"),
    (
        "label",
        "Slides\x7f",
        "character 7 is a control character (U+007F)",
    ),
    (
        "title",
        "abc\u202edcba",
        "character 4 is a bidirectional-text override (U+202E)",
    ),
    ("topic", " \t ", "field 'topic' must be a non-empty string in quotes"),
]


@pytest.mark.parametrize(
    ("field", "value", "message"), REFUSED, ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(REFUSED)]
)
def test_one_line_fields_refuse_breaks_controls_and_empty_names(tmp_path, field, value, message):
    path = records_file(tmp_path, [GOOD, {**GOOD, field: value}])
    with pytest.raises(SessionRecordError) as info:
        load_sessions(path)
    [problem] = info.value.problems
    key = {"presenter": "presenter", "label": "links"}.get(field, field)
    lines = path.read_text(encoding="utf-8").splitlines()
    start = [i for i, ln in enumerate(lines, 1) if ln == "[[session]]"][1]
    line = next(i for i, ln in enumerate(lines, 1) if i > start and ln.startswith(f"{key} ="))
    assert str(problem).startswith(f"{path}:{line}: session 2: field '{key}' ")
    assert message in str(problem)


BAD_URLS = [
    ("https://arxiv.org/abs/1512.03385\n", "character 33 is a line break (U+000A)"),
    ("https://arxiv.org/abs/1512.03385\r", "character 33 is a line break (U+000D)"),
    ("https://example.org/\x1b]8;;https://evil/\x07", "control character (U+001B)"),
    ("javascript:alert(1)", "must be a web address starting with https://"),
    ("ftp://example.org/file", "must be a web address starting with https://"),
    ("https://exa mple.org/", "must be a web address starting with https://"),
    ('https://example.org/"onmouseover="x', "must be a web address starting with https://"),
    ("https://localhost", "must be a web address starting with https://"),
    ("https:///etc/passwd", "must be a web address starting with https://"),
]


@pytest.mark.parametrize(("url", "message"), BAD_URLS, ids=range(len(BAD_URLS)))
@pytest.mark.parametrize("field", ["paper_url", "video", "presenter", "links"])
def test_addresses_are_http_and_matched_whole(tmp_path, url, message, field):
    path = records_file(tmp_path, [GOOD])
    text = path.read_text(encoding="utf-8")
    old = {
        "paper_url": 'paper_url = "https://example.org/p"',
        "video": 'video = "https://example.org/p/video"',
        "presenter": 'url = "https://example.org/p/who"',
        "links": 'url = "https://example.org/p/slides"',
    }[field]
    assert old in text
    path.write_text(text.replace(old, old.split("=")[0] + "= " + json.dumps(url)), "utf-8")
    with pytest.raises(SessionRecordError) as info:
        load_sessions(path)
    [problem] = info.value.problems
    assert f"session 1: field '{field}'" in str(problem) and message in str(problem)
    assert repr(url) in str(problem) or "character" in str(problem)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        (
            "--title",
            "Deep Residual Learning\n```{raw} html\n<script>alert(1)</script>\n```",
            "session 12: field 'title' must be one line of text, but character 23 is a line "
            "break (U+000A)",
        ),
        (
            "--topic",
            "CV: \x1b[2J\x1b[31mResNet",
            "session 12: field 'topic' must be one line of text, but character 5 is a control "
            "character (U+001B)",
        ),
        ("--presenter", " ", "session 12: field 'presenter' name must be a name in quotes"),
        (
            "--paper-url",
            "https://arxiv.org/abs/1512.03385\n",
            "session 12: field 'paper_url' must be one line of text",
        ),
        ("--video", "javascript:alert(1)", "session 12: field 'video' must be a web address"),
        (
            "--paper",
            "ResNet\x7f",
            "session 12: field 'paper' must be one line of text, but character 7 is a control "
            "character (U+007F)",
        ),
    ],
    ids=["title-fence", "topic-ansi", "presenter-blank", "url-newline", "video-javascript", "del"],
)
def test_new_refuses_hostile_text_and_writes_nothing(repo, capsys, option, value, message):  # noqa: F811
    before = snapshot(repo)
    args = list(NEW)
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    code, _, err = run(repo, capsys, *args)
    assert code == 2
    assert "the new record would be invalid, nothing was written" in err
    assert message in err
    assert "\x1b" not in err  # the terminal gets the escaped form, never the escape itself
    assert snapshot(repo) == before


def test_check_reports_a_hostile_record_and_leaves_it_alone(repo, capsys):  # noqa: F811
    records = repo.records
    records.write_text(
        records.read_text(encoding="utf-8").replace(
            'topic = "CV: Separable Convolutions"', 'topic = "CV\\u001b[31m: Separable"'
        ),
        encoding="utf-8",
    )
    before = snapshot(repo)
    code, out, _ = run(repo, capsys, "check")
    assert code == 1
    line = next(
        i for i, ln in enumerate(records.read_text("utf-8").splitlines(), 1) if "u001b" in ln
    )
    assert f"sessions.toml:{line}: session 1: field 'topic' must be one line of text" in out
    assert "\x1b" not in out
    assert snapshot(repo) == before


# -- accepted: shown as text ------------------------------------------------------------------


def page(html: Path, name: str) -> BeautifulSoup:
    return BeautifulSoup((html / name).read_text(encoding="utf-8"), "html.parser")


def build_book(tmp_path: Path, sessions: list[dict[str, str]], urls: list[str]) -> Path:
    """A small book: the sessions table and one chapter (with its card) per session."""
    path = records_file(tmp_path, sessions, urls)
    chapters = {
        f"sessions/{n:02d}-s.md": CHAPTER.format(title=f"Chapter {n}")
        for n in range(1, len(sessions) + 1)
    }
    html, warnings = build(
        tmp_path, {"index.md": INDEX, **chapters}, initdocs_sessions_file=str(path)
    )
    assert warnings == ""
    return html


#: Elements the table and the card are made of; anything else came from a record.
TABLE_TAGS = {"table", "colgroup", "col", "thead", "tbody", "tr", "th", "td", "p", "a", "span"}
CARD_TAGS = {"div", "p", "dl", "dt", "dd", "a", "span"}


def assert_shown_as_text(html: Path, sessions: list[dict[str, str]], urls: list[str]) -> None:
    """Every value once, as exactly its text, in the table and in its card; nothing else."""
    assert not (html / "_downloads").exists()
    index = page(html, "index.html")
    table = index.select_one("table.sessions-table")
    assert {tag.name for tag in table.find_all(True)} <= TABLE_TAGS
    rows = table.select("tbody tr")
    assert len(rows) == len(sessions)
    everything = index.get_text()
    for values, url, row in zip(reversed(sessions), reversed(urls), rows, strict=True):
        cells = row.find_all("td")
        assert len(cells) == 6
        assert cells[1].p.get_text() == values["topic"]
        [paper] = cells[2].find_all("a")
        assert (paper.get_text(), paper["href"]) == (values["paper"], url)
        [who] = cells[3].find_all("a")
        assert (who.get_text(), who["href"]) == (values["presenter"], url + "/who")
        slides, video = cells[4].find_all("a")
        assert (slides.get_text(), slides["href"]) == (values["label"], url + "/slides")
        assert (video.get_text(), video["href"]) == ("Video", url + "/video")
        for name in ("topic", "paper", "presenter", "label"):
            assert everything.count(values[name]) == 1, (name, values[name])
    for number, (values, url) in enumerate(zip(sessions, urls, strict=True), 1):
        chapter = page(html, f"sessions/{number:02d}-s.html")
        card = chapter.select_one("div.session-card")
        assert {tag.name for tag in card.find_all(True)} <= CARD_TAGS
        fields = {
            dt_.get_text(strip=True).rstrip(":"): dt_.find_next_sibling("dd")
            for dt_ in card.find_all("dt")
        }
        assert list(fields) == ["Paper", "Topic", "When", "Presenter", "Materials"]
        title = fields["Paper"].find("a", class_="external")
        assert (title.get_text(), title["href"]) == (values["title"], url)
        assert fields["Topic"].p.get_text() == values["topic"]
        assert fields["Presenter"].p.get_text() == values["presenter"]
        assert fields["Materials"].find("a").get_text() == values["label"]
        main = chapter.select_one("div.body, div.bd-article, main") or chapter
        text = main.get_text()
        for name in ("title", "topic", "presenter", "label"):
            assert text.count(values[name]) == 1, (name, values[name])


def tagged(payloads: list[str]) -> list[dict[str, str]]:
    """One session per item of ``payloads``-rotations, each field tagged with its own prefix."""
    return [
        {
            name: f"{name[:2]}{i}·{payloads[(i + j) % len(payloads)]}"
            for j, name in enumerate(TEXT_FIELDS)
        }
        for i in range(len(payloads) if len(payloads) < len(KEYS) else len(KEYS))
    ]


#: Addresses that pass the records' rule but hold characters markup would act on.
ODD_URLS = [
    "https://example.org/p",
    "https://example.org/q?x=1&y=2",
    "https://example.org/{download}`x`",
    "https://example.org/a(b)[c]*d*",
    "https://example.org/%3Cscript%3E#frag",
    "https://example.org/$x$|y|",
]


def test_the_issues_payloads_are_shown_as_written(tmp_path):
    # Files the payloads point at, beside the book's source folder as in a real clone.
    (tmp_path / "secret.txt").write_text("token", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("[credential]", encoding="utf-8")
    sessions = tagged(list(PAYLOADS))
    html = build_book(tmp_path, sessions, ODD_URLS)
    assert_shown_as_text(html, sessions, ODD_URLS)
    assert not list(html.rglob("secret.txt")) and not list(html.rglob("config"))


#: One line of any Unicode the records accept: no controls, breaks, surrogates or overrides.
#: Half the draws come from the characters MyST, HTML and roles are made of.
ONE_LINE = st.text(
    st.one_of(
        st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"), exclude_characters=BIDI),
        st.sampled_from("{}`<>[]()$*_:|\\!#&;\"'=~^-+@/. ab"),
    ),
    min_size=1,
    max_size=24,
).filter(lambda text: text.strip())
#: The tail of a web address: no spaces, quotes or angle brackets (the records' rule).
URL_TAIL = st.text(
    st.characters(
        exclude_categories=("Cc", "Cs", "Zl", "Zp", "Zs"), exclude_characters=BIDI + "<>\"'"
    ).filter(lambda c: not c.isspace()),
    max_size=16,
)


@st.composite
def hostile_sessions(draw) -> tuple[list[dict[str, str]], list[str]]:
    """Three sessions whose every text field is arbitrary one-line Unicode.

    Each value starts with a tag of its own (``to1·``), so it can be counted on the page
    even when the drawn text is a single common letter.
    """
    sessions = [{name: f"{name[:2]}{i}·{draw(ONE_LINE)}" for name in TEXT_FIELDS} for i in range(3)]
    urls = [f"https://example.org/{draw(URL_TAIL)}" for _ in range(3)]
    return sessions, urls


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same examples on every run and machine
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(hostile_sessions())
@example((tagged(list(PAYLOADS[3:6])), ODD_URLS[3:6]))
def test_any_one_line_text_reaches_the_page_as_that_text(tmp_path_factory, drawn):
    sessions, urls = drawn
    folder = tmp_path_factory.mktemp("book")
    load_sessions(records_file(folder, sessions, urls))  # accepted: it is one line of text
    html = build_book(folder, sessions, urls)
    assert_shown_as_text(html, sessions, urls)


# -- the calendar and the chapter template ----------------------------------------------------


def test_calendar_of_hostile_records_is_rfc_5545(tmp_path):
    from icalendar import Calendar

    sessions = [{n: f"{n}·{PAYLOADS[i]};,\\" for n in TEXT_FIELDS} for i in range(3)]
    records = load_sessions(records_file(tmp_path, sessions))
    text = calendar(records, "https://example.org/book/")
    lines = text.split("\r\n")
    assert all("\r" not in ln and "\n" not in ln for ln in lines)
    events = Calendar.from_ical(text).walk("VEVENT")
    assert [str(e["SUMMARY"]) for e in events] == [
        f"MLT __init__ session {n}: {s['title']}" for n, s in enumerate(sessions, 1)
    ]
    assert f"Topic: {sessions[0]['topic']}" in str(events[0]["DESCRIPTION"])


def test_template_shows_a_hostile_paper_name_as_text(tmp_path):
    """``initdocs new`` writes the paper into the chapter's heading, escaped for MyST."""
    paper = "Exfil {download}`/../../secret.txt` <img src=x onerror=alert(1)> $x$ *a* [b](c) \\"
    sessions = [{**GOOD, "paper": paper}]
    path = records_file(tmp_path, sessions)
    session = load_sessions(path).sessions[0]
    chapter = render_template(session)
    body = chapter.split("## In one paragraph")[0].split("---\n", 2)[2]
    body += "```{bibliography}\n:filter: docname in docnames\n```\n"
    html, warnings = build(
        tmp_path,
        {"index.md": INDEX, "sessions/01-s.md": body},
        initdocs_sessions_file=str(path),
    )
    assert warnings == ""
    heading = page(html, "sessions/01-s.html").find("h1")
    assert heading.get_text().removesuffix("¶") == f"Session 1: {paper}"
    assert not heading.find_all(
        ["img", "code", "span", "em", "a"], class_=lambda c: c != "headerlink"
    )
    assert not (html / "_downloads").exists()


def test_the_books_records_are_all_accepted_and_unchanged():
    before = RECORDS.read_bytes()
    assert len(load_sessions(RECORDS, BIB)) == 11
    assert RECORDS.read_bytes() == before


def test_sessions_listing_never_prints_an_escape_from_the_records(repo, capsys):  # noqa: F811
    records = repo.records
    text = records.read_text(encoding="utf-8").replace(
        'name = "Jayson Cunanan"', 'name = "\\u001b]0;pwned\\u0007\\u001b[2JJayson"'
    )
    records.write_text(text, encoding="utf-8")
    before = snapshot(repo)
    for args in (("sessions",), ("sessions", "--json")):
        code, out, err = run(repo, capsys, *args)
        assert code == 1 and out == ""
        assert "session 1: field 'presenter' name must be one line of text" in err
        assert "\x1b" not in err and "\x07" not in err
    assert snapshot(repo) == before
