"""Sphinx glue for the book: session pages generated from the records, and honest caching.

Used from ``docs/conf.py`` (``extensions = [..., "initdocs.sphinxext"]``). It adds:

* ``{sessions-table}``: the home page's table of all sessions, newest first, each row linking
  to its chapter once ``docs/sessions/<chapter>.md`` exists;
* ``{bibtex-entry}``: a copyable BibTeX entry taken from ``references.bib``;
* ``{session-card}``: a chapter's card (date, topic, paper, presenter, materials, video),
  found from the chapter's own file name, so nothing about a session is typed twice;
* a build error naming the file, line, session and field when a record is malformed, and
  ``initdocs check`` on every chapter before the build starts (``initdocs_check = True``);
* everything about executing the chapters (smart re-execution, cache checks, parallel
  balance, failure clean-up) through :mod:`initdocs.book.execution`, which it sets up.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.errors import ConfigError, SphinxError
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from initdocs.bibliography import entry_source
from initdocs.book import extension_metadata
from initdocs.sessions import Session, SessionRecordError, Sessions, load_sessions

logger = logging.getLogger(__name__)


def _escape(text: str) -> str:
    """Make text safe inside a Markdown table cell or link label."""
    return text.replace("|", "\\|").replace("[", "\\[").replace("]", "\\]")


def _link(label: str, url: str) -> str:
    return f"[{_escape(label)}](<{url}>)"


def _sessions(env: BuildEnvironment) -> Sessions:
    return env.app.initdocs_sessions  # type: ignore[attr-defined]


def _materials(session: Session) -> list[str]:
    items = [_link(link.label, link.url) for link in session.links]
    if session.video:
        items.append(_link("Video", session.video))
    return items


def _chapter_exists(env: BuildEnvironment, session: Session) -> bool:
    """Whether the chapter is part of this build (written, and not left out of a preview)."""
    return session.docname in env.found_docs


class SessionsTable(SphinxDirective):
    """``{sessions-table}``: every session, newest first, like the club's README."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        sessions = _sessions(self.env)
        self.env.note_dependency(str(sessions.path))
        self.env.initdocs_table_docs.add(self.env.docname)  # type: ignore[attr-defined]
        rows = [
            "| Date | Topic | Paper | Presenter | Materials | Chapter |",
            "|---|---|---|---|---|---|",
        ]
        for s in sorted(sessions, key=lambda s: s.date, reverse=True):
            presenter = (
                _link(s.presenter.name, s.presenter.url)
                if s.presenter.url
                else _escape(s.presenter.name)
            )
            chapter = (
                f"{{doc}}`Session {s.number} </{s.docname}>`"
                if _chapter_exists(self.env, s)
                else "not written yet"
            )
            rows.append(
                f"| {s.date:%d %b %Y} | {_escape(s.topic)} | {_link(s.paper, s.paper_url)} "
                f"| {presenter} | {' · '.join(_materials(s)) or '-'} | {chapter} |"
            )
        table = self.parse_text_to_nodes("\n".join(rows))
        for node in table:
            if isinstance(node, nodes.table):
                node["classes"].append("sessions-table")
        return table


class SessionCard(SphinxDirective):
    """``{session-card}``: the card at the top of a chapter, from the chapter's own record."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        sessions = _sessions(self.env)
        self.env.note_dependency(str(sessions.path))
        chapter = self.env.docname.rsplit("/", 1)[-1]
        session = sessions.by_chapter(chapter)
        if session is None:
            raise self.error(
                f"no session in {sessions.path} has chapter = {chapter!r}; add that field to "
                "the chapter's [[session]] record (or rename the chapter file to match it)"
            )
        start = sessions.start(session)
        utc = start.astimezone(dt.UTC)
        cet = start.astimezone(ZoneInfo("Europe/Berlin"))  # prints CET or CEST for that day
        presenter = (
            _link(session.presenter.name, session.presenter.url)
            if session.presenter.url
            else _escape(session.presenter.name)
        )
        lines = [
            f":::{{admonition}} Session {session.number} · {start:%A %-d %B %Y}",
            ":class: session-card",
            "",
            f":Paper: {_link(session.title, session.paper_url)} {{cite:p}}`{session.paper_key}`",
            f":Topic: {_escape(session.topic)}",
            f":When: {start:%H:%M} {start.tzname()} · {cet:%H:%M} {cet.tzname()} · "
            f"{utc:%H:%M} UTC, online",
            f":Presenter: {presenter}",
        ]
        materials = _materials(session)
        if materials:
            lines.append(f":Materials: {' · '.join(materials)}")
        lines.append(":::")
        return self.parse_text_to_nodes("\n".join(lines))


class BibtexEntry(SphinxDirective):
    """``{bibtex-entry} [key]``: a copyable BibTeX entry from the book's bibliography file.

    Without a key it shows the entry of the chapter's own paper (from its session record).
    """

    optional_arguments = 1

    def run(self) -> list[nodes.Node]:
        if self.arguments:
            key = self.arguments[0]
        else:
            chapter = self.env.docname.rsplit("/", 1)[-1]
            session = _sessions(self.env).by_chapter(chapter)
            if session is None:
                raise self.error(f"{self.env.docname} is no session's chapter: give the key")
            key = session.paper_key
        for bibfile in self.config.bibtex_bibfiles:
            path = Path(self.env.srcdir, bibfile).resolve()
            self.env.note_dependency(str(path))
            entry = entry_source(path, key)
            if entry is not None:
                block = nodes.literal_block(entry, entry, language="bibtex")
                block["classes"].append("bibtex-entry")
                return [block]
        raise self.error(
            f"no readable entry {key!r} in {', '.join(self.config.bibtex_bibfiles)} "
            "(`initdocs check` shows any syntax error in it)"
        )


def _load(app: Sphinx, config: Any) -> None:
    path = Path(app.confdir, config.initdocs_sessions_file)
    try:
        app.initdocs_sessions = load_sessions(path)  # type: ignore[attr-defined]
    except FileNotFoundError:
        raise ConfigError(
            f"session records not found at {path}; create it or set initdocs_sessions_file "
            "in conf.py"
        ) from None
    except SessionRecordError as exc:
        raise ConfigError(
            f"the session records have {len(exc.problems)} problem(s); fix them and build "
            f"again:\n{exc}"
        ) from None


def _init_env(app: Sphinx, env: BuildEnvironment, *args: Any) -> None:
    if not hasattr(env, "initdocs_table_docs"):
        env.initdocs_table_docs = set()  # type: ignore[attr-defined]


def _purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    _init_env(app, env)
    env.initdocs_table_docs.discard(docname)  # type: ignore[attr-defined]


def _merge(app: Sphinx, env: BuildEnvironment, docnames: Any, other: BuildEnvironment) -> None:
    _init_env(app, env)
    env.initdocs_table_docs |= getattr(other, "initdocs_table_docs", set())  # type: ignore[attr-defined]


def _outdated(
    app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    """The sessions table is re-read when chapters appear or disappear (its links change)."""
    _init_env(app, env)
    if added or removed:
        return sorted(env.initdocs_table_docs - removed)  # type: ignore[attr-defined]
    return []


class ChapterCheckError(SphinxError):
    category = "initdocs check failed"


def _check_chapters(app: Sphinx) -> None:
    """Run ``initdocs check`` on the whole book before anything is read or executed."""
    if not app.config.initdocs_check:
        return
    from initdocs.check import check_paths, find_repository

    repo = find_repository(Path(app.confdir))
    only = app.config.initdocs_check_only
    paths = [repo.records, repo.bibliography] + [repo.chapters_dir / f"{c}.md" for c in only]
    problems, checked = check_paths(repo, paths if only else None)
    if problems:
        listing = "\n".join(str(p) for p in problems)
        raise ChapterCheckError(
            f"{len(problems)} problem(s); fix them (run `initdocs check` to see them again "
            f"without building):\n{listing}"
        )
    logger.info(f"[initdocs] check: {checked} file(s), no problems")


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("initdocs_sessions_file", "sessions.toml", "env", types=[str])
    app.add_config_value("initdocs_check", False, "env", types=[bool])
    app.add_config_value("initdocs_check_only", [], "env", types=[list])
    app.setup_extension("initdocs.book.execution")
    app.add_directive("sessions-table", SessionsTable)
    app.add_directive("session-card", SessionCard)
    app.add_directive("bibtex-entry", BibtexEntry)
    app.connect("config-inited", _load)
    app.connect("builder-inited", _check_chapters)
    app.connect("env-before-read-docs", _init_env)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("env-get-outdated", _outdated)
    return extension_metadata()
