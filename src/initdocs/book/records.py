"""The session records: one TOML file that says when each session was, what it read, who presented.

The book's home-page table and every chapter's session card are generated from these records
(see :mod:`initdocs.book.directives`), so a fact about a session is written down exactly once.
:func:`load_sessions` checks every record and reports *all* problems at once, each with the
file, the line, the session and the field, and what to write instead.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from initdocs.book.bibtex import parse_bibtex
from initdocs.book.files import Problem, find_repository

__all__ = [
    "Link",
    "Person",
    "Session",
    "SessionRecordError",
    "Sessions",
    "load_sessions",
]

_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_:.\-]*")
_SLUG = re.compile(r"(\d{2})-[a-z0-9]+(?:-[a-z0-9]+)*")
#: A web address: http or https, a host with a dot, no spaces, quotes or angle brackets.
#: Always used with ``fullmatch`` (``$`` would accept a final newline).
_URL = re.compile(r"https?://[^\s<>\"'/?#]+\.[^\s<>\"'/?#]+(?:[/?#][^\s<>\"']*)?")
#: Characters a one-line field must not hold, named in the message: line breaks, control
#: characters (ANSI escapes start with one) and the bidirectional overrides that make text
#: display in another order than it is stored.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

_REQUIRED = (
    "number",
    "date",
    "topic",
    "paper",
    "title",
    "paper_key",
    "paper_url",
    "chapter",
    "presenter",
)
_OPTIONAL = ("links", "video", "builds_on")
_TOP_LEVEL = ("start_time", "timezone", "session")


@dataclass(frozen=True)
class Person:
    name: str
    url: str | None = None


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Session:
    """One session of the journal club, as recorded in ``sessions.toml``."""

    number: int
    date: dt.date
    topic: str
    paper: str
    title: str
    paper_key: str
    paper_url: str
    chapter: str
    presenter: Person
    links: tuple[Link, ...] = ()
    video: str | None = None
    #: What the paper uses or extends: earlier session numbers and BibTeX keys of other works.
    builds_on: tuple[int | str, ...] = ()

    @property
    def builds_on_sessions(self) -> tuple[int, ...]:
        """The numbers of the earlier sessions this session's paper builds on."""
        return tuple(item for item in self.builds_on if isinstance(item, int))

    @property
    def builds_on_works(self) -> tuple[str, ...]:
        """The BibTeX keys of works, not sessions, that this session's paper builds on."""
        return tuple(item for item in self.builds_on if isinstance(item, str))

    @property
    def docname(self) -> str:
        """Sphinx document name of the chapter, e.g. ``sessions/01-xception``."""
        return f"sessions/{self.chapter}"


@dataclass(frozen=True)
class Sessions:
    """All records of the file, in session order, with the shared start time."""

    sessions: tuple[Session, ...]
    start_time: dt.time
    timezone: str
    path: Path

    def __iter__(self):
        return iter(self.sessions)

    def __len__(self) -> int:
        return len(self.sessions)

    def by_chapter(self, chapter: str) -> Session | None:
        return next((s for s in self.sessions if s.chapter == chapter), None)

    def start(self, session: Session) -> dt.datetime:
        """When ``session`` started, as an aware datetime in the club's time zone."""
        return dt.datetime.combine(session.date, self.start_time, tzinfo=ZoneInfo(self.timezone))


class SessionRecordError(ValueError):
    """The records file has problems; ``problems`` lists all of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class _Lines:
    """Finds the line of a ``[[session]]`` table or of a key inside it (tomllib gives none)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.starts = [
            i + 1 for i, ln in enumerate(self.lines) if re.match(r"\s*\[\[session\]\]", ln)
        ]

    def of_session(self, index: int) -> int | None:
        return self.starts[index] if index < len(self.starts) else None

    def of_key(self, index: int, key: str) -> int | None:
        start = self.of_session(index)
        if start is None:
            return None
        end = self.starts[index + 1] if index + 1 < len(self.starts) else len(self.lines) + 1
        for number in range(start + 1, end):
            if re.match(rf"\s*{re.escape(key)}\s*=", self.lines[number - 1]):
                return number
        return start

    def of_top_key(self, key: str) -> int | None:
        end = self.starts[0] if self.starts else len(self.lines) + 1
        for number in range(1, end):
            if re.match(rf"\s*{re.escape(key)}\s*=", self.lines[number - 1]):
                return number
        return None


def _bad_character(text: str) -> str | None:
    """Why ``text`` is not one line of plain text, or ``None`` when it is."""
    for position, char in enumerate(text, 1):
        category = unicodedata.category(char)
        if char in "\r\n\u2028\u2029\x85":
            kind = "a line break"
        elif category == "Cc":
            kind = "a control character"
        elif char in _BIDI_CONTROLS:
            kind = "a bidirectional-text override"
        elif category == "Cs":
            kind = "a lone surrogate"
        else:
            continue
        return (
            f"must be one line of text, but character {position} is {kind} "
            f"(U+{ord(char):04X}); remove it"
        )
    return None


def _check_text(value: Any, what: str = "a non-empty string in quotes") -> str | None:
    """The problem of a one-line text field (a name, a label, a title), or ``None``."""
    if not isinstance(value, str) or not value.strip():
        return f"must be {what} (got {value!r})"
    return _bad_character(value)


def _check_url(value: Any) -> str | None:
    if isinstance(value, str) and (problem := _bad_character(value)):
        return problem
    if not isinstance(value, str) or not _URL.fullmatch(value):
        return f"must be a web address starting with https:// (got {value!r})"
    return None


def _bibliography_keys(path: Path, bibliography: Path | None) -> set[str] | None:
    """The keys of ``bibliography``, by default the bibliography of the repository that holds
    the records at ``path`` (:class:`~initdocs.book.files.Repository`); None if there is none.
    """
    if bibliography is None:
        try:
            repository = find_repository(path.parent)
        except FileNotFoundError:
            return None
        if repository.records.resolve() != path.resolve():
            return None
        bibliography = repository.bibliography
    if not bibliography.is_file():
        return None
    return {entry.key for entry in parse_bibtex(bibliography)[0]}


def _check_builds_on(
    value: Any, number: Any, numbers: set[int], keys: set[str] | None
) -> list[str]:
    """What is wrong with one record's ``builds_on`` list, each as the end of a sentence."""
    shape = (
        "must be a list of earlier session numbers and references.bib keys, "
        'e.g. builds_on = [6, "he2016deep"]'
    )
    if not isinstance(value, list):
        return [f"{shape} (got {value!r})"]
    messages = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | str):
            messages.append(f"{shape}; {item!r} is neither")
        elif isinstance(item, int):
            if isinstance(number, int) and item >= number:
                messages.append(
                    f"names session {item}, which is not earlier than session {number}; "
                    "a session builds only on earlier ones"
                )
            elif item not in numbers:
                messages.append(f"names session {item}, which has no [[session]] record")
        elif keys is None:
            messages.append(
                f"names {item!r} but no references.bib was found next to or above the "
                "records file to look it up; add the entry there"
            )
        elif item not in keys:
            messages.append(
                f"names {item!r}, which is not a key in references.bib; add its entry there "
                "or write the key as it is spelled there"
            )
    repeated = sorted({str(i) for i in value if value.count(i) > 1})
    if repeated:
        messages.append(f"lists {', '.join(repeated)} more than once; name each work once")
    return messages


def load_sessions(path: str | Path, bibliography: str | Path | None = None) -> Sessions:
    """Read and validate the session records in ``path``.

    ``builds_on`` keys are looked up in ``bibliography``, by default ``references.bib`` in the
    records' folder or the one above it (the book keeps it at the repository's root).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        SessionRecordError: listing every problem found, each with file, line and field.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise SessionRecordError(
            [
                Problem(
                    path,
                    int(line.group(1)) if line else None,
                    f"not valid TOML: {exc}; "
                    + (
                        "write dates as YYYY-MM-DD without quotes, a real calendar day"
                        if "date" in str(exc)
                        else "fix the syntax (quotes, brackets, commas)"
                    ),
                )
            ]
        ) from None

    where = _Lines(text)
    problems: list[Problem] = []

    def problem(line: int | None, message: str) -> None:
        problems.append(Problem(path, line, message))

    for key in data:
        if key not in _TOP_LEVEL:
            problem(
                where.of_top_key(key),
                f"unknown top-level key {key!r}; allowed: {', '.join(_TOP_LEVEL)}",
            )
    start_time = data.get("start_time", dt.time(17, 0))
    if not isinstance(start_time, dt.time):
        problem(
            where.of_top_key("start_time"),
            "start_time must be a TOML local time without quotes, e.g. 17:00:00",
        )
        start_time = dt.time(17, 0)
    timezone = data.get("timezone", "Asia/Tokyo")
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        problem(
            where.of_top_key("timezone"),
            f"timezone {timezone!r} is not an IANA time zone name such as 'Asia/Tokyo'",
        )

    records = data.get("session", [])
    if not isinstance(records, list) or not records:
        problem(None, "no [[session]] tables found; add one per session")
        raise SessionRecordError(problems)

    numbers = {
        r.get("number")
        for r in records
        if isinstance(r.get("number"), int) and not isinstance(r.get("number"), bool)
    }
    bib_keys: set[str] | None = None
    if any("builds_on" in r for r in records):
        bib_keys = _bibliography_keys(path, Path(bibliography) if bibliography else None)
    sessions: list[Session] = []
    for index, record in enumerate(records):
        number = record.get("number")
        label = f"session {number}" if isinstance(number, int) else f"[[session]] #{index + 1}"
        before = len(problems)

        def bad(key: str, message: str, label: str = label, index: int = index) -> None:
            problem(where.of_key(index, key), f"{label}: field '{key}' {message}")

        for key in record:
            if key not in _REQUIRED + _OPTIONAL:
                bad(key, f"is not a known field; allowed: {', '.join(_REQUIRED + _OPTIONAL)}")
        for key in _REQUIRED:
            if key not in record:
                problem(where.of_session(index), f"{label}: required field '{key}' is missing")
        if "number" in record and (
            not isinstance(number, int) or isinstance(number, bool) or number < 1
        ):
            bad("number", f"must be a whole number from 1 up (got {number!r})")
        date = record.get("date")
        if "date" in record and (not isinstance(date, dt.date) or isinstance(date, dt.datetime)):
            bad("date", f"must be a TOML date without quotes, e.g. 2021-01-10 (got {date!r})")
        for key in ("topic", "paper", "title"):
            if key in record and (message := _check_text(record[key])):
                bad(key, message)
        key = record.get("paper_key")
        if "paper_key" in record and (not isinstance(key, str) or not _KEY.fullmatch(key)):
            bad("paper_key", f"must be a BibTeX key such as 'chollet2017xception' (got {key!r})")
        for field in ("paper_url", "video"):
            if field in record and (message := _check_url(record[field])):
                bad(field, message)
        chapter = record.get("chapter")
        if "chapter" in record:
            match = _SLUG.fullmatch(chapter) if isinstance(chapter, str) else None
            if not match:
                bad(
                    "chapter",
                    "must be the chapter's file name without '.md': two-digit number, a "
                    "hyphen, lower-case words joined by hyphens, e.g. '01-xception' "
                    f"(got {chapter!r})",
                )
            elif isinstance(number, int) and int(match.group(1)) != number:
                bad(
                    "chapter",
                    f"must start with the session number as two digits, "
                    f"'{number:02d}-...' (got {chapter!r})",
                )
        presenter = record.get("presenter")
        person = None
        if "presenter" in record:
            if not isinstance(presenter, dict) or "name" not in presenter:
                bad(
                    "presenter",
                    'must be a table with a name, e.g. { name = "Jane Doe", url = "https://..." }',
                )
            else:
                for extra in sorted(set(presenter) - {"name", "url"}):
                    bad("presenter", f"has unknown key {extra!r}; allowed: name, url")
                if message := _check_text(presenter["name"], "a name in quotes"):
                    bad("presenter", f"name {message}")
                if "url" in presenter and (message := _check_url(presenter["url"])):
                    bad("presenter", f"url {message}")
                person = Person(presenter["name"], presenter.get("url"))
        links: list[Link] = []
        raw_links = record.get("links", [])
        if not isinstance(raw_links, list):
            bad("links", 'must be a list of tables: [{ label = "Slides", url = "https://..." }]')
        else:
            for i, link in enumerate(raw_links, 1):
                if (
                    not isinstance(link, dict)
                    or set(link) != {"label", "url"}
                    or not isinstance(link["label"], str)
                ):
                    bad("links", f'entry {i} must be {{ label = "...", url = "https://..." }}')
                elif message := _check_text(link["label"], "a label in quotes"):
                    bad("links", f"entry {i} label {message}")
                elif message := _check_url(link["url"]):
                    bad("links", f"entry {i} url {message}")
                else:
                    links.append(Link(link["label"], link["url"]))
        if "builds_on" in record:
            for message in _check_builds_on(record["builds_on"], number, numbers, bib_keys):
                bad("builds_on", message)
        if len(problems) == before:
            sessions.append(
                Session(
                    number=number,
                    date=date,
                    topic=record["topic"],
                    paper=record["paper"],
                    title=record["title"],
                    paper_key=key,
                    paper_url=record["paper_url"],
                    chapter=chapter,
                    presenter=person,
                    links=tuple(links),
                    video=record.get("video"),
                    builds_on=tuple(record.get("builds_on", ())),
                )
            )

    # Checks across records: numbers and dates unique, numbers in the order of the dates.
    index_of = {id(r): i for i, r in enumerate(records)}
    for field in ("number", "date", "chapter", "paper_key"):
        seen: dict[Any, int] = {}
        for record in records:
            value = record.get(field)
            if value is None or isinstance(value, dict | list):
                continue
            if value in seen:
                i = index_of[id(record)]
                problem(
                    where.of_key(i, field),
                    f"session {record.get('number')}: field '{field}' repeats {value!r} "
                    f"of the [[session]] on line {where.of_session(seen[value])}; "
                    "each session needs its own",
                )
            else:
                seen[value] = index_of[id(record)]
    ordered = sorted(sessions, key=lambda s: s.number)
    for earlier, later in itertools.pairwise(ordered):
        if later.date <= earlier.date:
            i = next(i for i, r in enumerate(records) if r.get("number") == later.number)
            problem(
                where.of_key(i, "date"),
                f"session {later.number}: field 'date' {later.date} is not after session "
                f"{earlier.number}'s date {earlier.date}; numbers follow the dates",
            )
    if problems:
        raise SessionRecordError(problems)
    return Sessions(tuple(ordered), start_time, str(timezone), path)
