"""The session records: one TOML file that says when each session was, what it read, who presented.

The book's home-page table and every chapter's session card are generated from these records
(see :mod:`initdocs.book.directives`), so a fact about a session is written down exactly once.
:func:`load_sessions` checks the file with a table of small named rules (:data:`FILE_RULES`,
:data:`RECORD_RULES` for each ``[[session]]`` table, :data:`ACROSS_RULES` between them) and
reports *all* problems at once, each with the file, the line, the session and the field, what
to write instead, and the name of the rule that found it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import tomllib
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from initdocs.book.bibtex import parse_bibtex
from initdocs.book.files import Problem, find_repository

__all__ = [
    "ACROSS_RULES",
    "FILE_RULES",
    "RECORD_RULES",
    "AllRecords",
    "Link",
    "Person",
    "Record",
    "RecordProblem",
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
#: When every session starts, unless the file says otherwise.
_START_TIME = dt.time(17, 0)
_TIMEZONE = "Asia/Tokyo"


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

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
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


# -- the rules --------------------------------------------------------------------------------
#
# Each rule is a small function that looks at one thing and yields what is wrong with it, each
# as ``(key, message)``: the key names the line (``None``: the start of the [[session]] table,
# or no line for a rule of the whole file) and the message ends the sentence the loader starts
# with the file, the line, the session and the field. The loader runs the tables below in
# order and reports every problem found, tagged with the name of the rule that found it.

#: What a rule yields: the key whose line the problem is on, and the end of its sentence.
Finding = tuple[str | None, str]


@dataclass(frozen=True)
class Record:
    """One ``[[session]]`` table as the record rules see it, with what they need of the rest."""

    fields: dict[str, Any]
    #: Where the table is among the file's [[session]] tables, from 0.
    index: int
    #: The whole numbers of every [[session]] table in the file.
    numbers: frozenset[int]
    #: The keys of references.bib, or None if there is none to look ``builds_on`` keys up in.
    bib_keys: set[str] | None

    @property
    def number(self) -> Any:
        return self.fields.get("number")

    @property
    def label(self) -> str:
        """How messages name the record: ``session 3``, or ``[[session]] #3`` without a number."""
        number = self.number
        return f"session {number}" if isinstance(number, int) else f"[[session]] #{self.index + 1}"

    def present(self, *keys: str) -> Iterator[tuple[str, Any]]:
        """``(key, value)`` of each of ``keys`` the record has, in that order."""
        return ((key, self.fields[key]) for key in keys if key in self.fields)

    @property
    def presenter(self) -> dict[str, Any] | None:
        """The ``presenter`` table if it has the shape of one, a table with a name."""
        value = self.fields.get("presenter")
        return value if isinstance(value, dict) and "name" in value else None

    def items(self, key: str) -> list[Any]:
        """The value of ``key`` if it is a list, else no items."""
        value = self.fields.get(key)
        return value if isinstance(value, list) else []


@dataclass(frozen=True)
class AllRecords:
    """Every ``[[session]]`` table, as the rules across records see them."""

    tables: list[dict[str, Any]]
    #: The sessions of the tables that passed every record rule.
    sessions: list[Session]
    lines: _Lines


# Rules of the whole file.


def top_level_keys_are_known(data: dict[str, Any]) -> Iterator[Finding]:
    for key in data:
        if key not in _TOP_LEVEL:
            yield key, f"unknown top-level key {key!r}; allowed: {', '.join(_TOP_LEVEL)}"


def start_time_is_a_local_time(data: dict[str, Any]) -> Iterator[Finding]:
    if not isinstance(data.get("start_time", _START_TIME), dt.time):
        yield "start_time", "start_time must be a TOML local time without quotes, e.g. 17:00:00"


def timezone_is_an_iana_name(data: dict[str, Any]) -> Iterator[Finding]:
    timezone = data.get("timezone", _TIMEZONE)
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        yield (
            "timezone",
            f"timezone {timezone!r} is not an IANA time zone name such as 'Asia/Tokyo'",
        )


def has_session_tables(data: dict[str, Any]) -> Iterator[Finding]:
    tables = data.get("session", [])
    if not isinstance(tables, list) or not tables:
        yield None, "no [[session]] tables found; add one per session"


def sessions_are_tables(data: dict[str, Any]) -> Iterator[Finding]:
    tables = data.get("session", [])
    if isinstance(tables, list) and (
        other := next((t for t in tables if not isinstance(t, dict)), None)
    ):
        yield (
            "session",
            f"'session' must be a list of [[session]] tables, but it holds {other!r}; "
            "write each session as a [[session]] table",
        )


#: Rules of the file as a whole. The [[session]] tables are read only if there are some.
FILE_RULES: tuple[Callable[[dict[str, Any]], Iterable[Finding]], ...] = (
    top_level_keys_are_known,
    start_time_is_a_local_time,
    timezone_is_an_iana_name,
    has_session_tables,
    sessions_are_tables,
)
#: The rules of FILE_RULES after which the records cannot be read.
_FATAL = frozenset({"has_session_tables", "sessions_are_tables"})


# Rules of one [[session]] table.


def fields_are_known(record: Record) -> Iterator[Finding]:
    for key in record.fields:
        if key not in _REQUIRED + _OPTIONAL:
            yield key, f"is not a known field; allowed: {', '.join(_REQUIRED + _OPTIONAL)}"


def required_fields_are_present(record: Record) -> Iterator[Finding]:
    for key in _REQUIRED:
        if key not in record.fields:
            yield None, f"required field '{key}' is missing"


def number_counts_from_one(record: Record) -> Iterator[Finding]:
    for key, number in record.present("number"):
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            yield key, f"must be a whole number from 1 up (got {number!r})"


def date_is_a_toml_date(record: Record) -> Iterator[Finding]:
    for key, date in record.present("date"):
        if not isinstance(date, dt.date) or isinstance(date, dt.datetime):
            yield key, f"must be a TOML date without quotes, e.g. 2021-01-10 (got {date!r})"


def texts_are_one_line(record: Record) -> Iterator[Finding]:
    for key, value in record.present("topic", "paper", "title"):
        if message := _check_text(value):
            yield key, message


def paper_key_is_a_bibtex_key(record: Record) -> Iterator[Finding]:
    for key, value in record.present("paper_key"):
        if not isinstance(value, str) or not _KEY.fullmatch(value):
            yield key, f"must be a BibTeX key such as 'chollet2017xception' (got {value!r})"


def addresses_are_web_addresses(record: Record) -> Iterator[Finding]:
    for key, value in record.present("paper_url", "video"):
        if message := _check_url(value):
            yield key, message


def chapter_is_a_file_name(record: Record) -> Iterator[Finding]:
    for key, chapter in record.present("chapter"):
        if not isinstance(chapter, str) or not _SLUG.fullmatch(chapter):
            yield (
                key,
                "must be the chapter's file name without '.md': two-digit number, a hyphen, "
                f"lower-case words joined by hyphens, e.g. '01-xception' (got {chapter!r})",
            )


def chapter_starts_with_the_number(record: Record) -> Iterator[Finding]:
    number = record.number
    for key, chapter in record.present("chapter"):
        match = _SLUG.fullmatch(chapter) if isinstance(chapter, str) else None
        if match and isinstance(number, int) and int(match.group(1)) != number:
            yield (
                key,
                f"must start with the session number as two digits, '{number:02d}-...' "
                f"(got {chapter!r})",
            )


def presenter_is_a_table_with_a_name(record: Record) -> Iterator[Finding]:
    if "presenter" in record.fields and record.presenter is None:
        yield (
            "presenter",
            'must be a table with a name, e.g. { name = "Jane Doe", url = "https://..." }',
        )


def presenter_keys_are_known(record: Record) -> Iterator[Finding]:
    presenter = record.presenter or {}
    for extra in sorted(set(presenter) - {"name", "url"}):
        yield "presenter", f"has unknown key {extra!r}; allowed: name, url"


def presenter_name_is_one_line(record: Record) -> Iterator[Finding]:
    presenter = record.presenter
    if presenter and (message := _check_text(presenter["name"], "a name in quotes")):
        yield "presenter", f"name {message}"


def presenter_url_is_a_web_address(record: Record) -> Iterator[Finding]:
    presenter = record.presenter
    if presenter and "url" in presenter and (message := _check_url(presenter["url"])):
        yield "presenter", f"url {message}"


def links_are_a_list(record: Record) -> Iterator[Finding]:
    if not isinstance(record.fields.get("links", []), list):
        yield "links", 'must be a list of tables: [{ label = "Slides", url = "https://..." }]'


def links_are_labelled_addresses(record: Record) -> Iterator[Finding]:
    for i, link in enumerate(record.items("links"), 1):
        if message := _link_problem(link):
            yield "links", f"entry {i} {message}"


def _link_problem(link: Any) -> str | None:
    """The first problem of one entry of ``links``: a table of a one-line label and a web
    address (the label of what is not such a table is not checked)."""
    if (
        not isinstance(link, dict)
        or set(link) != {"label", "url"}
        or not isinstance(link["label"], str)
    ):
        return 'must be { label = "...", url = "https://..." }'
    if message := _check_text(link["label"], "a label in quotes"):
        return f"label {message}"
    if message := _check_url(link["url"]):
        return f"url {message}"
    return None


_BUILDS_ON_SHAPE = (
    "must be a list of earlier session numbers and references.bib keys, "
    'e.g. builds_on = [6, "he2016deep"]'
)


def builds_on_is_a_list(record: Record) -> Iterator[Finding]:
    for key, value in record.present("builds_on"):
        if not isinstance(value, list):
            yield key, f"{_BUILDS_ON_SHAPE} (got {value!r})"


def builds_on_names_earlier_sessions_and_known_works(record: Record) -> Iterator[Finding]:
    """Each item of ``builds_on``: the number of an earlier recorded session, or a key of
    references.bib."""
    for item in record.items("builds_on"):
        if message := _builds_on_item(item, record):
            yield "builds_on", message


def _builds_on_item(item: Any, record: Record) -> str | None:
    number = record.number
    if isinstance(item, bool) or not isinstance(item, int | str):
        return f"{_BUILDS_ON_SHAPE}; {item!r} is neither"
    if isinstance(item, int):
        if isinstance(number, int) and item >= number:
            return (
                f"names session {item}, which is not earlier than session {number}; "
                "a session builds only on earlier ones"
            )
        if item not in record.numbers:
            return f"names session {item}, which has no [[session]] record"
        return None
    if record.bib_keys is None:
        return (
            f"names {item!r} but the repository has no references.bib to look it up in; add "
            "the entry to references.bib at the repository's root"
        )
    if item not in record.bib_keys:
        return (
            f"names {item!r}, which is not a key in references.bib; add its entry there or "
            "write the key as it is spelled there"
        )
    return None


def builds_on_names_each_once(record: Record) -> Iterator[Finding]:
    items = record.items("builds_on")
    repeated = sorted({str(i) for i in items if items.count(i) > 1})
    if repeated:
        yield "builds_on", f"lists {', '.join(repeated)} more than once; name each work once"


#: Rules of each [[session]] table, in the order their problems are reported.
RECORD_RULES: tuple[Callable[[Record], Iterable[Finding]], ...] = (
    fields_are_known,
    required_fields_are_present,
    number_counts_from_one,
    date_is_a_toml_date,
    texts_are_one_line,
    paper_key_is_a_bibtex_key,
    addresses_are_web_addresses,
    chapter_is_a_file_name,
    chapter_starts_with_the_number,
    presenter_is_a_table_with_a_name,
    presenter_keys_are_known,
    presenter_name_is_one_line,
    presenter_url_is_a_web_address,
    links_are_a_list,
    links_are_labelled_addresses,
    builds_on_is_a_list,
    builds_on_names_earlier_sessions_and_known_works,
    builds_on_names_each_once,
)


# Rules across the [[session]] tables: each yields ``(table index, key, whole message)``.


def each_session_has_its_own(records: AllRecords) -> Iterator[tuple[int, str, str]]:
    """No two sessions share a number, a date, a chapter or a paper."""
    for key in ("number", "date", "chapter", "paper_key"):
        seen: dict[Any, int] = {}
        for index, table in enumerate(records.tables):
            value = table.get(key)
            if value is None or isinstance(value, dict | list):
                continue
            if value in seen:
                yield (
                    index,
                    key,
                    f"session {table.get('number')}: field '{key}' repeats {value!r} of the "
                    f"[[session]] on line {records.lines.of_session(seen[value])}; "
                    "each session needs its own",
                )
            else:
                seen[value] = index


def numbers_follow_the_dates(records: AllRecords) -> Iterator[tuple[int, str, str]]:
    ordered = sorted(records.sessions, key=lambda s: s.number)
    for earlier, later in itertools.pairwise(ordered):
        if later.date <= earlier.date:
            index = next(i for i, t in enumerate(records.tables) if t.get("number") == later.number)
            yield (
                index,
                "date",
                f"session {later.number}: field 'date' {later.date} is not after session "
                f"{earlier.number}'s date {earlier.date}; numbers follow the dates",
            )


#: Rules across the [[session]] tables, run after every table was checked on its own.
ACROSS_RULES: tuple[Callable[[AllRecords], Iterable[tuple[int, str, str]]], ...] = (
    each_session_has_its_own,
    numbers_follow_the_dates,
)


# -- the loader -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordProblem(Problem):
    """A problem of the records file, with the name of the rule that found it."""

    rule: str | None = None


def _parse(path: Path, text: str) -> dict[str, Any]:
    """The TOML of ``text``, or the syntax error, with its line and what to do."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        hint = (
            "write dates as YYYY-MM-DD without quotes, a real calendar day"
            if "date" in str(exc)
            else "fix the syntax (quotes, brackets, commas)"
        )
        problem = Problem(
            path, int(line.group(1)) if line else None, f"not valid TOML: {exc}; {hint}"
        )
        raise SessionRecordError([problem]) from None


def _session(table: dict[str, Any]) -> Session:
    """The session of a [[session]] table that passed every record rule."""
    presenter = table["presenter"]
    return Session(
        number=table["number"],
        date=table["date"],
        topic=table["topic"],
        paper=table["paper"],
        title=table["title"],
        paper_key=table["paper_key"],
        paper_url=table["paper_url"],
        chapter=table["chapter"],
        presenter=Person(presenter["name"], presenter.get("url")),
        links=tuple(Link(link["label"], link["url"]) for link in table.get("links", [])),
        video=table.get("video"),
        builds_on=tuple(table.get("builds_on", ())),
    )


def load_sessions(path: str | Path, bibliography: str | Path | None = None) -> Sessions:
    """Read the session records in ``path`` and check them with every rule of
    :data:`FILE_RULES`, :data:`RECORD_RULES` and :data:`ACROSS_RULES`.

    ``builds_on`` keys are looked up in ``bibliography``, by default the repository's
    ``references.bib`` (:class:`~initdocs.book.files.Repository`).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        SessionRecordError: listing every problem found, each with file, line and field.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    data = _parse(path, text)
    where = _Lines(text)
    problems: list[RecordProblem] = []
    for rule in FILE_RULES:
        for key, message in rule(data):
            line = where.of_top_key(key) if key else None
            problems.append(RecordProblem(path, line, message, rule.__name__))
    if any(p.rule in _FATAL for p in problems):
        raise SessionRecordError(problems)

    tables: list[dict[str, Any]] = data["session"]
    numbers = frozenset(
        t["number"]
        for t in tables
        if isinstance(t.get("number"), int) and not isinstance(t.get("number"), bool)
    )
    bib_keys = None
    if any("builds_on" in t for t in tables):
        bib_keys = _bibliography_keys(path, Path(bibliography) if bibliography else None)
    sessions: list[Session] = []
    for index, table in enumerate(tables):
        record = Record(table, index, numbers, bib_keys)
        label = record.label
        before = len(problems)
        for rule in RECORD_RULES:
            for key, message in rule(record):
                line = where.of_key(index, key) if key else where.of_session(index)
                sentence = f"{label}: field '{key}' {message}" if key else f"{label}: {message}"
                problems.append(RecordProblem(path, line, sentence, rule.__name__))
        if len(problems) == before:
            sessions.append(_session(table))

    everything = AllRecords(tables, sessions, where)
    for rule in ACROSS_RULES:
        for index, key, message in rule(everything):
            problems.append(RecordProblem(path, where.of_key(index, key), message, rule.__name__))
    if problems:
        raise SessionRecordError(problems)
    start_time = data.get("start_time", _START_TIME)
    ordered = tuple(sorted(sessions, key=lambda s: s.number))
    return Sessions(ordered, start_time, str(data.get("timezone", _TIMEZONE)), path)
