"""An iCalendar file of every session, generated from the session records at build time.

The book publishes it as ``sessions.ics`` at the root of the HTML output; readers import it
once or subscribe to its address so new sessions appear in their calendar. The
``{sessions-calendar}`` directive writes the line that links it.

The file is written with the :mod:`icalendar` package, which escapes TEXT values and folds
lines as RFC 5545 asks. Times are in UTC (the ``Z`` form), which every calendar converts to
the reader's own zone and which needs no VTIMEZONE block. The output depends on the records
alone, so two builds of the same sources give the same bytes: DTSTAMP is the session's own
start, not the clock.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import icalendar
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.osutil import relative_uri

from initdocs.book.metadata import extension_metadata
from initdocs.book.records import Session, Sessions

#: Name of the calendar file at the root of the built book.
FILENAME = "sessions.ics"
#: 25 minutes of talk, an hour of discussion and a little slack (see community/format).
DURATION = dt.timedelta(hours=1, minutes=30)
PRODID = "-//Machine Learning Tokyo//initdocs sessions//EN"
CALENDAR_NAME = "MLT __init__ journal club"
LOCATION = "Online (Zoom)"


def _plain_text(value: str) -> str:
    """``value`` as a TEXT value for :mod:`icalendar`, which escapes it. Every line break (CRLF,
    CR or LF) becomes LF, which icalendar writes as ``\\n`` (older versions leave a lone CR
    raw); any other control character but tab is an error, where icalendar would drop it
    silently (the records check refuses them, so this only guards against a new caller)."""
    bad = next((c for c in value if c not in "\t\r\n" and unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise ValueError(f"calendar text {value!r} holds the control character U+{ord(bad):04X}")
    return value.replace("\r\n", "\n").replace("\r", "\n")


def chapter_url(base_url: str, session: Session) -> str:
    """The published address of the session's chapter."""
    return f"{base_url.rstrip('/')}/{session.docname}.html"


def _description(session: Session, chapter: str | None) -> str:
    """The event's notes: the paper, topic, presenter, links and the chapter, one a line."""
    lines = [
        f"Paper: {session.title} ({session.paper_url})",
        f"Topic: {session.topic}",
        f"Presenter: {session.presenter.name}",
    ]
    lines += [f"{link.label}: {link.url}" for link in session.links]
    if session.video:
        lines.append(f"Video: {session.video}")
    if chapter:
        lines.append(f"Chapter in the book: {chapter}")
    return "\n".join(lines)


def _event(
    records: Sessions, session: Session, base_url: str, has_chapter: bool
) -> icalendar.Event:
    start = records.start(session).astimezone(dt.UTC)
    host = urlsplit(base_url).hostname or "initdocs"
    chapter = chapter_url(base_url, session) if has_chapter else None
    event = icalendar.Event()
    event.add("uid", f"session-{session.number}@{host}")
    event.add("dtstamp", start)
    event.add("dtstart", start)
    event.add("duration", DURATION)
    event.add("summary", _plain_text(f"MLT __init__ session {session.number}: {session.title}"))
    event.add("description", _plain_text(_description(session, chapter)))
    event.add("location", LOCATION)
    if chapter:
        event.add("url", chapter)
    return event


def calendar(records: Sessions, base_url: str, chapters: Iterable[str] | None = None) -> str:
    """The iCalendar text of every session in ``records``.

    Args:
        records: the session records (:func:`initdocs.book.records.load_sessions`).
        base_url: where the book is published (``html_baseurl``); chapter links start with it.
        chapters: docnames of the chapters in the build; a session whose chapter is not among
            them gets no chapter link. ``None`` links every chapter.
    """
    known = None if chapters is None else set(chapters)
    ical = icalendar.Calendar()
    ical.add("version", "2.0")
    ical.add("prodid", PRODID)
    ical.add("calscale", "GREGORIAN")
    ical.add("method", "PUBLISH")
    ical.add("x-wr-calname", CALENDAR_NAME)
    for session in records:
        has_chapter = known is None or session.docname in known
        ical.add_component(_event(records, session, base_url, has_chapter))
    # Properties in the order they were added, as the file always had them.
    return ical.to_ical(sorted=False).decode("utf-8")


class SessionsCalendar(SphinxDirective):
    """``{sessions-calendar}``: a line linking the calendar file, to download or subscribe."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        self.env.note_dependency(str(self.env.app.initdocs_sessions.path))  # type: ignore[attr-defined]
        here = self.env.app.builder.get_target_uri(self.env.docname)
        address = f"{self.config.html_baseurl.rstrip('/')}/{FILENAME}"
        paragraph = nodes.paragraph(classes=["sessions-calendar"])
        paragraph += nodes.Text("Every session is in the calendar file ")
        paragraph += nodes.reference(FILENAME, FILENAME, refuri=relative_uri(here, FILENAME))
        paragraph += nodes.Text(": import it into your calendar app, or subscribe to its address ")
        paragraph += nodes.reference(address, address, refuri=address)
        paragraph += nodes.Text(" (in most apps: add a calendar from a URL) to get new sessions.")
        return [paragraph]


def _write(app: Sphinx, exception: Exception | None) -> None:
    """Write the calendar file into the HTML output once the build succeeded."""
    if exception is not None or app.builder.format != "html":
        return
    text = calendar(app.initdocs_sessions, app.config.html_baseurl, app.env.found_docs)  # type: ignore[attr-defined]
    (app.outdir / FILENAME).write_bytes(text.encode("utf-8"))


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("sessions-calendar", SessionsCalendar)
    app.connect("build-finished", _write)
    return extension_metadata()
