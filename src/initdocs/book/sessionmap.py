"""``{session-map}``: how the sessions build on each other, drawn from the session records.

Each record's ``builds_on`` field (see :mod:`initdocs.book.records`) names earlier sessions and
BibTeX keys of other works. The directive draws them as an inline SVG, written here in plain
Python: sessions in date order in one column, the other works in a column beside them, and an
arrow from each session to every work it builds on. Session boxes link to their chapters and
work boxes to their entries on the bibliography page. Below the drawing the same facts come as
a list, which is what screen readers and keyboard users get (the links inside the drawing are
left out of the tab order). Colours come from the theme's CSS variables in
``initdocs-map.css``, so the map follows the light and the dark theme.
"""

from __future__ import annotations

import html
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docutils import nodes
from pybtex.richtext import Text
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from initdocs.book.bibtex import Entry, parse_bibtex
from initdocs.book.directives import chapter_link
from initdocs.book.metadata import extension_metadata
from initdocs.book.records import Session, Sessions

__all__ = ["Box", "Edge", "MapLayout", "layout", "render_svg", "setup"]

CSS_FILE = "initdocs-map.css"

# Geometry of the drawing, in SVG user units (CSS pixels at 100 % zoom).
WIDTH = 690
TOP = 44
WORK_X, WORK_W, WORK_H, WORK_GAP = 8, 236, 26, 32
SESSION_X, SESSION_W, SESSION_H, SESSION_STEP = 390, 250, 44, 62
LABEL_CHARS = 32  # characters of a paper's name that fit in a session box


@dataclass(frozen=True)
class Box:
    """One node of the map: a session or a work, with its place and its link."""

    node_id: str
    kind: str  # "session" or "work"
    lines: tuple[str, ...]
    tooltip: str
    x: float
    y: float
    width: float
    height: float
    href: str | None = None

    @property
    def middle(self) -> float:
        return self.y + self.height / 2


@dataclass(frozen=True)
class Edge:
    """An arrow: the session ``source`` builds on ``target`` (a session or a work)."""

    source: str
    target: str


@dataclass(frozen=True)
class MapLayout:
    boxes: tuple[Box, ...]
    edges: tuple[Edge, ...]
    height: float


@dataclass(frozen=True)
class Work:
    """What the map shows of a work that was not a session."""

    key: str
    label: str  # "He et al. 2016"
    title: str
    href: str | None


def session_id(number: int) -> str:
    return f"session-{number}"


def work_id(key: str) -> str:
    return f"work-{key}"


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    return textwrap.shorten(text, limit, placeholder=" …")


def layout(
    sessions: Sessions,
    works: dict[str, Work],
    chapter_href: dict[int, str],
) -> MapLayout:
    """Place sessions (date order, top to bottom) and works (near the sessions using them)."""
    boxes: list[Box] = []
    edges: list[Edge] = []
    middles: dict[int, float] = {}
    for row, session in enumerate(sorted(sessions, key=lambda s: s.date)):
        y = TOP + row * SESSION_STEP
        middles[session.number] = y + SESSION_H / 2
        boxes.append(
            Box(
                node_id=session_id(session.number),
                kind="session",
                lines=(f"Session {session.number} · {session.date:%b %Y}", _short(session.paper)),
                tooltip=f"Session {session.number}: {session.title}",
                x=SESSION_X,
                y=y,
                width=SESSION_W,
                height=SESSION_H,
                href=chapter_href.get(session.number),
            )
        )
        edges += [
            Edge(session_id(session.number), session_id(n)) for n in session.builds_on_sessions
        ]
        edges += [Edge(session_id(session.number), work_id(k)) for k in session.builds_on_works]

    users: dict[str, list[int]] = {}
    for session in sessions:
        for key in session.builds_on_works:
            users.setdefault(key, []).append(session.number)
    ideal = {key: sum(middles[n] for n in numbers) / len(numbers) for key, numbers in users.items()}
    y_next = TOP
    for key in sorted(users, key=lambda k: (ideal[k], min(users[k]), k)):
        y = max(ideal[key] - WORK_H / 2, y_next)
        y_next = y + WORK_GAP
        work = works[key]
        boxes.append(
            Box(
                node_id=work_id(key),
                kind="work",
                lines=(work.label,),
                tooltip=work.title,
                x=WORK_X,
                y=y,
                width=WORK_W,
                height=WORK_H,
                href=work.href,
            )
        )
    height = max(b.y + b.height for b in boxes) + 12
    return MapLayout(tuple(boxes), tuple(edges), height)


def _edge_path(source: Box, target: Box) -> str:
    if target.kind == "session":  # an arc on the right of the session column
        x = source.x + source.width
        bulge = x + 28 + 6 * abs(source.middle - target.middle) / SESSION_STEP
        return (
            f"M{x:.1f},{source.middle:.1f} C{bulge:.1f},{source.middle:.1f} "
            f"{bulge:.1f},{target.middle:.1f} {x + 4:.1f},{target.middle:.1f}"
        )
    x1, x2 = source.x, target.x + target.width + 4
    mid = (x1 + x2) / 2
    return (
        f"M{x1:.1f},{source.middle:.1f} C{mid:.1f},{source.middle:.1f} "
        f"{mid:.1f},{target.middle:.1f} {x2:.1f},{target.middle:.1f}"
    )


def render_svg(map_layout: MapLayout, uid: str) -> str:
    """The map as an SVG element; ``uid`` keeps its ids unique on the page."""
    e = html.escape
    by_id = {box.node_id: box for box in map_layout.boxes}
    sessions = sum(box.kind == "session" for box in map_layout.boxes)
    works = len(map_layout.boxes) - sessions
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="initdocs-map" role="group" '
        f'viewBox="0 0 {WIDTH} {map_layout.height:.0f}" width="{WIDTH}" '
        f'height="{map_layout.height:.0f}" aria-labelledby="{uid}-title {uid}-desc">',
        f'<title id="{uid}-title">How the sessions build on each other</title>',
        f'<desc id="{uid}-desc">{sessions} sessions in date order on the right, {works} '
        "earlier works they build on at the left, and an arrow from each session to every "
        "session or work it builds on. The list below the drawing says the same in words."
        "</desc>",
        "<defs>",
        f'<marker id="{uid}-arrow" class="map-arrowhead" viewBox="0 0 8 8" refX="7" refY="4" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0 L8,4 L0,8 z"/></marker>',
        "</defs>",
        f'<text class="map-heading" x="{WORK_X}" y="20">Works that were not sessions</text>',
        f'<text class="map-heading" x="{SESSION_X}" y="20">Sessions</text>',
    ]
    for edge in map_layout.edges:
        out.append(
            f'<path class="map-edge map-edge-{by_id[edge.target].kind}" '
            f'data-from="{edge.source}" data-to="{edge.target}" '
            f'd="{_edge_path(by_id[edge.source], by_id[edge.target])}" '
            f'marker-end="url(#{uid}-arrow)"/>'
        )
    for box in map_layout.boxes:
        shape = [
            f"<title>{e(box.tooltip)}</title>",
            f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width}" height="{box.height}" '
            'rx="6"/>',
        ]
        for i, line in enumerate(box.lines):
            strong = ' class="map-strong"' if i == 0 else ""
            shape.append(
                f'<text x="{box.x + 10:.1f}" y="{box.y + 17 + 18 * i:.1f}"{strong}>{e(line)}</text>'
            )
        inner = "".join(shape)
        if box.href:
            inner = f'<a href="{e(box.href)}" tabindex="-1">{inner}</a>'
        out.append(f'<g class="map-node map-{box.kind}" data-node="{box.node_id}">{inner}</g>')
    out.append("</svg>")
    return "\n".join(out)


# -- Sphinx ---------------------------------------------------------------------------------


class session_map(nodes.General, nodes.Element):  # docutils names node classes so
    """Placeholder replaced by the SVG once links can be resolved (``doctree-resolved``)."""


class work_link(nodes.Inline, nodes.TextElement):  # docutils names node classes so
    """A work's label in the list, linked to its bibliography entry at ``doctree-resolved``."""


def _sessions(env: Any) -> Sessions:
    return env.app.initdocs_sessions


def _plain(latex: str) -> str:
    """BibTeX text (braces, accents such as ``{\\"a}``) as plain Unicode."""
    return " ".join(Text.from_latex(latex).render_as("text").split())


def _work_label(entry: Entry) -> str:
    """``"He et al. 2016"``, ``"Byrd & Lipton 2019"`` or ``"Sifre 2014"`` from a BibTeX entry."""
    people = entry.persons("author") or entry.persons("editor")
    year = entry.fields.get("year", "")
    if not people:
        return f"{entry.key} {year}".strip()
    names = [_plain(" ".join(person.last_names)) for person in people[:2]]
    who = {1: names[0], 2: " & ".join(names)}.get(len(people), f"{names[0]} et al.")
    return f"{who} {year}".strip()


def _bibliography(env: Any, reading: bool = True) -> dict[str, tuple[str, str]]:
    """``key -> (label, title)`` for every entry of the book's BibTeX files.

    While ``reading`` a page, the page is marked to be read again when a file changes.
    """
    found: dict[str, tuple[str, str]] = {}
    for bibfile in env.config.bibtex_bibfiles:
        path = Path(env.srcdir, bibfile).resolve()
        if reading:
            env.note_dependency(str(path))
        for entry in parse_bibtex(path)[0]:  # syntax errors: `initdocs check` reports them
            found[entry.key] = (_work_label(entry), _plain(entry.fields.get("title", entry.key)))
    return found


def _session_ref(env: Any, session: Session, word: str) -> nodes.Node:
    """``session N (Paper)``, linked to the chapter when the chapter is part of the build."""
    return chapter_link(
        env, session, nodes.inline("", f"{word} {session.number} ({session.paper})")
    )


def _session_item(
    env: Any, session: Session, sessions: Sessions, bib: dict[str, tuple[str, str]]
) -> nodes.list_item:
    """One item of the text version: the session and what it builds on."""
    by_number = {s.number: s for s in sessions}
    para = nodes.paragraph()
    para += _session_ref(env, session, "Session")
    parts: list[list[nodes.Node]] = [
        [_session_ref(env, by_number[n], "session")] for n in session.builds_on_sessions
    ]
    for key in session.builds_on_works:
        label, title = bib.get(key, (key, key))
        parts.append([work_link("", label, key=key), nodes.Text(", "), nodes.emphasis("", title)])
    if not parts:
        para += nodes.Text(f", {session.date:%B %Y}, builds on no earlier work in its record.")
        return nodes.list_item("", para)
    para += nodes.Text(f", {session.date:%B %Y}, builds on ")
    for i, part in enumerate(parts):
        if i:
            para += nodes.Text("; ")
        para.extend(part)
    para += nodes.Text(".")
    return nodes.list_item("", para)


class SessionMap(SphinxDirective):
    """``{session-map}``: the drawing and, below it, the same relations as a list."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        sessions = _sessions(self.env)
        self.env.note_dependency(str(sessions.path))
        self.env.initdocs_table_docs.add(self.env.docname)  # re-read when chapters come and go
        placeholder = session_map()
        placeholder["uid"] = f"initdocs-map-{self.env.new_serialno('initdocs-map')}"
        bib = _bibliography(self.env)
        listing = nodes.bullet_list(classes=["initdocs-map-list"])
        for session in sorted(sessions, key=lambda s: s.date):
            listing += _session_item(self.env, session, sessions, bib)
        return [placeholder, listing]


def _bibliography_hrefs(app: Sphinx, docname: str) -> dict[str, str]:
    """``key -> link`` to each entry on the bibliography page, relative to ``docname``."""
    domain = app.env.get_domain("cite")
    preferred = app.config.initdocs_map_bibliography
    hrefs: dict[str, str] = {}
    for citation in domain.citations:  # type: ignore[attr-defined]
        if citation.key not in hrefs or citation.bibliography_key.docname == preferred:
            page = app.builder.get_relative_uri(docname, citation.bibliography_key.docname)
            hrefs[citation.key] = f"{page}#{citation.citation_id}"
    return hrefs


def _resolve(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Draw each map and link the works of its list, with links relative to the page."""
    if not any(True for _ in doctree.findall(session_map)) and not any(
        True for _ in doctree.findall(work_link)
    ):
        return
    sessions = _sessions(app.env)
    hrefs = _bibliography_hrefs(app, docname)
    bib = _bibliography(app.env, reading=False)
    for link in list(doctree.findall(work_link)):
        href = hrefs.get(link["key"])
        text = nodes.Text(link.astext())
        link.replace_self(
            nodes.reference("", "", text, refuri=href, internal=True) if href else text
        )
    for placeholder in list(doctree.findall(session_map)):
        chapter_href = {
            s.number: app.builder.get_relative_uri(docname, s.docname)
            for s in sessions
            if s.docname in app.env.found_docs
        }
        works = {
            key: Work(key, bib[key][0], f"{bib[key][0]}: {bib[key][1]}", hrefs.get(key))
            for s in sessions
            for key in s.builds_on_works
        }
        svg = render_svg(layout(sessions, works, chapter_href), placeholder["uid"])
        # A narrow screen scrolls the drawing inside its own box, which the keyboard can reach.
        box = (
            f'<div class="initdocs-map-box" tabindex="0" role="region" '
            f'aria-label="Drawing of how the sessions build on each other">\n{svg}\n</div>'
        )
        placeholder.replace_self(nodes.raw("", box, format="html"))


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("initdocs_map_bibliography", "bibliography", "env", types=[str])
    app.add_node(session_map)
    app.add_node(work_link)
    app.add_directive("session-map", SessionMap)
    app.add_css_file(CSS_FILE)
    app.connect("doctree-resolved", _resolve)
    return extension_metadata()
