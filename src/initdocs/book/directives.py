"""Sphinx glue for the book: session pages generated from the records, and honest caching.

Used from ``docs/conf.py`` (``extensions = [..., "initdocs.book.directives"]``). It adds:

* ``{sessions-table}``: the home page's table of all sessions, newest first, each row linking
  to its chapter once ``docs/sessions/<chapter>.md`` exists;
* ``{bibtex-entry}``: a copyable BibTeX entry taken from ``references.bib``;
* ``{session-card}``: a chapter's card (date, topic, paper, presenter, materials, video),
  found from the chapter's own file name, so nothing about a session is typed twice;
* a build error naming the file, line, session and field when a record is malformed, and
  ``initdocs check`` on every chapter before the build starts (``initdocs_check = True``),
  each problem at its file and line (:mod:`initdocs.book.failures`);
* everything about executing the chapters (smart re-execution, cache checks, parallel
  balance, failure clean-up) through :mod:`initdocs.book.execution`, which it sets up.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from initdocs.book.bibtex import entry_source
from initdocs.book.failures import BuildStopped, report_problems
from initdocs.book.metadata import extension_metadata
from initdocs.book.records import Session, SessionRecordError, Sessions, load_sessions

logger = logging.getLogger(__name__)


def _sessions(env: BuildEnvironment) -> Sessions:
    return env.app.initdocs_sessions  # type: ignore[attr-defined]


# Record text becomes docutils nodes directly: a text node or a reference to a validated
# address. Nothing from the records is ever parsed as MyST, reStructuredText or HTML, so a
# topic such as "{download}`/etc/passwd`" or "<script>" is shown as the characters it is.


def _link(label: str, url: str) -> nodes.reference:
    """``label`` linking to ``url`` (an http(s) address the records check has accepted)."""
    return nodes.reference(label, label, refuri=url)


def _presenter(session: Session) -> nodes.Node:
    person = session.presenter
    return _link(person.name, person.url) if person.url else nodes.Text(person.name)


def _materials(session: Session) -> list[nodes.Node]:
    """Slides, code, notebooks and the video, separated by middle dots."""
    links = [_link(link.label, link.url) for link in session.links]
    if session.video:
        links.append(_link("Video", session.video))
    joined: list[nodes.Node] = []
    for i, link in enumerate(links):
        if i:
            joined.append(nodes.Text(" · "))
        joined.append(link)
    return joined


def _chapter_exists(env: BuildEnvironment, session: Session) -> bool:
    """Whether the chapter is part of this build (written, and not left out of a preview)."""
    return session.docname in env.found_docs


def chapter_link(env: BuildEnvironment, session: Session, label: nodes.Node) -> nodes.Node:
    """``label`` linked to the session's chapter (resolved like ``{doc}``), or ``label`` alone
    when the chapter is not part of this build."""
    if not _chapter_exists(env, session):
        return label
    ref = addnodes.pending_xref(
        "",
        refdomain="std",
        reftype="doc",
        reftarget=f"/{session.docname}",
        refexplicit=True,
        refdoc=env.docname,
    )
    ref += label
    return ref


def _paragraph(*content: nodes.Node) -> nodes.paragraph:
    paragraph = nodes.paragraph()
    paragraph.extend(content)
    return paragraph


class SessionsTable(SphinxDirective):
    """``{sessions-table}``: every session, newest first, like the club's README."""

    has_content = False
    HEADER = ("Date", "Topic", "Paper", "Presenter", "Materials", "Chapter")

    def run(self) -> list[nodes.Node]:
        sessions = _sessions(self.env)
        self.env.note_dependency(str(sessions.path))
        self.env.initdocs_table_docs.add(self.env.docname)  # type: ignore[attr-defined]
        # support_smartquotes: record text keeps its straight quotes and dashes as typed.
        table = nodes.table(classes=["sessions-table"], support_smartquotes=False)
        group = nodes.tgroup(cols=len(self.HEADER))
        table += group
        group.extend(nodes.colspec(colwidth=1) for _ in self.HEADER)
        group += nodes.thead("", self._row([nodes.Text(name)] for name in self.HEADER))
        body = nodes.tbody()
        for s in sorted(sessions, key=lambda s: s.date, reverse=True):
            body += self._row(
                [
                    [nodes.Text(f"{s.date:%d %b %Y}")],
                    [nodes.Text(s.topic)],
                    [_link(s.paper, s.paper_url)],
                    [_presenter(s)],
                    _materials(s) or [nodes.Text("-")],
                    [
                        chapter_link(self.env, s, nodes.inline("", f"Session {s.number}"))
                        if _chapter_exists(self.env, s)
                        else nodes.Text("not written yet")
                    ],
                ]
            )
        group += body
        self.set_source_info(table)
        return [table]

    @staticmethod
    def _row(cells: Any) -> nodes.row:
        row = nodes.row()
        for content in cells:
            row += nodes.entry("", _paragraph(*content))
        return row


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
        card = nodes.admonition(classes=["session-card"], support_smartquotes=False)
        card += nodes.title("", f"Session {session.number} · {start:%A %-d %B %Y}")
        fields = nodes.field_list()
        rows: list[tuple[str, list[nodes.Node]]] = [
            (
                "Paper",
                [_link(session.title, session.paper_url), nodes.Text(" "), *self._cite(session)],
            ),
            ("Topic", [nodes.Text(session.topic)]),
            (
                "When",
                [
                    nodes.Text(
                        f"{start:%H:%M} {start.tzname()} · {cet:%H:%M} {cet.tzname()} · "
                        f"{utc:%H:%M} UTC, online"
                    )
                ],
            ),
            ("Presenter", [_presenter(session)]),
        ]
        if materials := _materials(session):
            rows.append(("Materials", materials))
        for name, content in rows:
            field = nodes.field()
            field += nodes.field_name("", name)
            field += nodes.field_body("", _paragraph(*content))
            fields += field
        card += fields
        self.set_source_info(card)
        return [card]

    def _cite(self, session: Session) -> list[nodes.Node]:
        """The paper's citation, made by sphinxcontrib-bibtex's own ``cite:p`` role.

        The role is called with the key as its target (the records check allows only letters,
        digits and ``_:.-`` in it), so it is never parsed as markup.
        """
        role = self.env.get_domain("cite").role("p")
        assert role is not None, "sphinxcontrib.bibtex must be loaded before initdocs"
        key = session.paper_key
        result, messages = role(
            "cite:p", f"{{cite:p}}`{key}`", key, self.lineno, self.state.inliner
        )
        return [*result, *messages]


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
        raise BuildStopped(
            f"session records not found at {path}; create it or set initdocs_sessions_file "
            "in conf.py"
        ) from None
    except SessionRecordError as exc:
        count = report_problems(exc.problems, stop=True, subtype="records")
        raise BuildStopped(
            f"the session records {path} have {count} problem(s), listed above with their "
            "lines; fix them and build again (`initdocs check` lists them without building)"
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


def _check_chapters(app: Sphinx) -> None:
    """Run ``initdocs check`` on the whole book before anything is read or executed.

    Each problem is logged at its file and line. The build stops on them, unless
    ``initdocs_check_stops`` is false (the preview of a chapter in progress): then they are
    warnings, listed, and the chapter renders as it is. A preview of a chapter that does not
    exist stops the build here, naming the chapters that do.
    """
    from initdocs.book.check import check_paths
    from initdocs.book.files import find_repository

    only = app.config.initdocs_check_only
    chapters_dir = Path(app.srcdir) / "sessions"
    missing = [name for name in only if not (chapters_dir / f"{name}.md").is_file()]
    if missing:  # here, not in conf.py: Sphinx turns a SystemExit there into a crash report
        chapters = sorted(p.stem for p in chapters_dir.glob("[0-9][0-9]-*.md"))
        raise BuildStopped(
            f"there is no chapter {', '.join(missing)} to preview (no "
            f"{', '.join(f'docs/sessions/{name}.md' for name in missing)}); name one of "
            f"{', '.join(chapters)}: `nox -s preview -- NN-name`"
        )
    if not app.config.initdocs_check:
        return
    repo = find_repository(Path(app.confdir))
    paths = [repo.records, repo.bibliography] + [repo.chapters_dir / f"{c}.md" for c in only]
    problems, checked = check_paths(repo, paths if only else None)
    if not problems:
        logger.info(f"[initdocs] check: {checked} file(s), no problems")
        return
    stop = app.config.initdocs_check_stops
    count = report_problems(problems, stop=stop, subtype="check")
    if stop:
        raise BuildStopped(
            f"`initdocs check` found {count} problem(s), listed above with their files and "
            "lines; fix them and build again (`initdocs check` lists them without building, "
            "`nox -s preview -- NN-name` renders a chapter in progress despite them)"
        )
    logger.info(
        f"[initdocs] check: {count} problem(s) listed above, left for later: this preview "
        "renders the chapter as it is, the full build (`nox -s docs`) refuses them"
    )


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("initdocs_sessions_file", "sessions.toml", "env", types=[str])
    app.add_config_value("initdocs_check", False, "env", types=[bool])
    app.add_config_value("initdocs_check_only", [], "env", types=[list])
    app.add_config_value("initdocs_check_stops", True, "env", types=[bool])
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
