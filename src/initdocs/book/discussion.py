"""The discussion view: a chapter's discussion prompts, one per screen, for the shared screen.

During a session the hosts share a screen while everyone talks. Each chapter's prompts (the
numbered list of its "Discussion prompts" part) are also written as a page of their own,
``discussion/NN-name.html``: one prompt per screen in large type, under the session's title
and the paper's key equation, navigable by keyboard. Nothing is written twice:

* the prompts are the chapter's own nodes, taken once the chapter's doctree is resolved
  (``doctree-resolved``), so values glued from the executed code, citations, glossary terms
  and formulas (MathML, :mod:`initdocs.book.mathml`) read exactly as on the chapter's page;
  links are rebased from the chapter's page to the discussion page;
* the title, paper and date come from the session's record (:mod:`initdocs.book.records`);
* the key equation is the chapter's first numbered display formula (every chapter opens its
  Method with the paper's central formula), else its first display formula, else none;
* the chapter's prompts part gets a link "Open the discussion view".

The page is ``_templates/discussion.html`` with ``_static/discussion.css`` and
``_static/discussion.js`` (keyboard, buttons, position, theme switch; under 3 kB, deferred,
no library). Without JavaScript every prompt is on the page, one after the other. Pages that
are not chapters (``sessions/NN-name`` with a session record) have no discussion view; a
chapter without a numbered list in its "Discussion prompts" part is a warning at its file
and line, which fails the book's ``-W`` build.
"""

from __future__ import annotations

import html
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ConfigError
from sphinx.util import logging
from sphinx.util.osutil import relative_uri

from initdocs.book.mathml import MathError, to_mathml
from initdocs.book.metadata import extension_metadata
from initdocs.book.records import Session, Sessions

__all__ = [
    "FOLDER",
    "SECTION",
    "Discussion",
    "PromptsError",
    "discussion_page",
    "key_equation",
    "prompt_items",
    "rebase",
    "setup",
]

logger = logging.getLogger(__name__)

#: The folder of the discussion pages: ``discussion/01-xception.html``.
FOLDER = "discussion"
#: The chapter part whose numbered list holds the prompts (as in the chapter template).
SECTION = "Discussion prompts"
TEMPLATE = "discussion.html"
LINK_TEXT = "Open the discussion view"
LINK_CLASS = "initdocs-discussion-link"
_CHAPTER = re.compile(r"^sessions/(\d{2}-[a-z0-9-]+)$")


class PromptsError(ValueError):
    """A chapter's prompts cannot be found; ``line`` is where to look (None: the file)."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Discussion:
    """What a discussion page shows: rendered HTML, ready for the template."""

    session: Session
    chapter_title: str
    chapter_uri: str  #: the chapter's page, relative to the discussion page
    prompts: tuple[str, ...]  #: one HTML fragment per prompt
    key_equation: str | None  #: a ``div.math`` with the MathML, or None
    key_equation_uri: str | None  #: the equation on the chapter's page

    @property
    def description(self) -> str:
        """The page's meta description (50-200 characters, as :mod:`.page_meta` wants)."""
        return (
            f"Discussion prompts of session {self.session.number} of MLT __init__ "
            f"({self.session.paper}), one per screen, for the session's shared screen."
        )


def discussion_page(docname: str) -> str:
    """The discussion page of the chapter ``docname``: ``sessions/01-x`` → ``discussion/01-x``."""
    return f"{FOLDER}/{docname.rsplit('/', 1)[-1]}"


def chapter_session(sessions: Sessions | None, docname: str) -> Session | None:
    """The session of a chapter page, None for every other page (which gets no view)."""
    match = _CHAPTER.match(docname)
    if match is None or sessions is None:
        return None
    return sessions.by_chapter(match.group(1))


def _line(node: nodes.Node) -> int | None:
    """The source line of ``node`` or of its first descendant that has one."""
    for item in node.findall(nodes.Element):
        if item.line:
            return item.line
    return None


def prompts_section(doctree: nodes.document) -> nodes.section:
    """The chapter's "Discussion prompts" part, or :class:`PromptsError`."""
    for section in doctree.findall(nodes.section):
        title = section.next_node(nodes.title)
        if title is not None and title.astext().strip() == SECTION:
            return section
    title = doctree.next_node(nodes.title)
    raise PromptsError(
        f"the chapter has no '{SECTION}' part, so it has no discussion view: add "
        f"'## {SECTION}' with a numbered list of prompts (see `initdocs new`'s template)",
        _line(title) if title is not None else None,
    )


def prompt_items(section: nodes.section) -> list[nodes.list_item]:
    """The prompts: the items of the numbered lists directly in the part, in order."""
    items = [
        item
        for child in section.children
        if isinstance(child, nodes.enumerated_list)
        for item in child.children
        if isinstance(item, nodes.list_item)
    ]
    if not items:
        raise PromptsError(
            f"the '{SECTION}' part has no numbered list, so the discussion view would be "
            "empty: write the prompts as '1. ...', '2. ...' (one list item per prompt)",
            _line(section),
        )
    return items


def key_equation(doctree: nodes.document) -> nodes.math_block | None:
    """The chapter's first numbered display formula, else its first display formula."""
    blocks = list(doctree.findall(nodes.math_block))
    return next((b for b in blocks if b.get("number")), blocks[0] if blocks else None)


def rebase(uri: str, chapter_target: str, page_target: str) -> str:
    """A link written for the chapter's page (``chapter_target``), made to work from the
    discussion page (``page_target``): same-page anchors go to the chapter, relative links
    are rebased, absolute ones are kept."""
    parts = urlsplit(uri)
    if parts.scheme or parts.netloc or uri.startswith("/"):
        return uri
    path = parts.path or posixpath.basename(chapter_target)
    target = posixpath.normpath(posixpath.join(posixpath.dirname(chapter_target), path))
    rebased = relative_uri(page_target, target)
    return (
        rebased
        + (f"?{parts.query}" if parts.query else "")
        + (f"#{parts.fragment}" if parts.fragment else "")
    )


def _portable(item: nodes.list_item, chapter_target: str, page_target: str) -> nodes.list_item:
    """A copy of the prompt whose links work from the discussion page and whose ids (targets
    of the chapter's back-links) do not collide with the page's own."""
    copy = item.deepcopy()
    for ref in copy.findall(nodes.reference):
        if "refid" in ref:
            ref["refuri"] = f"{posixpath.basename(chapter_target)}#{ref['refid']}"
            del ref["refid"]
        if "refuri" in ref:
            ref["refuri"] = rebase(ref["refuri"], chapter_target, page_target)
    for element in copy.findall(nodes.Element):
        element["ids"] = []
    return copy


def _render(builder: Any, item: nodes.list_item) -> str:
    """The prompt's HTML: its paragraphs (and anything else in the item), rendered by the
    builder's own translator, so formulas become MathML as on the chapter's page."""
    return "".join(builder.render_partial(child)["fragment"] for child in list(item.children))


def _equation_html(block: nodes.math_block) -> str | None:
    try:
        mathml = to_mathml(block.astext(), display=True)
    except MathError:  # a warning at the chapter already
        return None
    return f'<div class="math"><div class="math-scroll" tabindex="0">{mathml}</div></div>'


def build_discussion(
    builder: Any, doctree: nodes.document, docname: str, session: Session
) -> Discussion:
    """The discussion page of one resolved chapter (raises :class:`PromptsError`)."""
    chapter_target = builder.get_target_uri(docname)
    page_target = builder.get_target_uri(discussion_page(docname))
    items = prompt_items(prompts_section(doctree))
    block = key_equation(doctree)
    chapter_uri = relative_uri(page_target, chapter_target)
    title = doctree.next_node(nodes.title)
    return Discussion(
        session=session,
        chapter_title=title.astext() if title is not None else session.paper,
        chapter_uri=chapter_uri,
        prompts=tuple(
            _render(builder, _portable(item, chapter_target, page_target)) for item in items
        ),
        key_equation=_equation_html(block) if block is not None else None,
        key_equation_uri=(
            f"{chapter_uri}#{block['ids'][0]}" if block is not None and block["ids"] else None
        ),
    )


def _link_paragraph(section: nodes.section, uri: str) -> None:
    """Put "Open the discussion view" right under the part's title."""
    link = nodes.reference(LINK_TEXT, LINK_TEXT, refuri=uri, internal=True)
    paragraph = nodes.paragraph("", "", classes=[LINK_CLASS])
    paragraph += [link, nodes.Text(": one prompt per screen, for the session's shared screen.")]
    title_index = next(i for i, c in enumerate(section.children) if isinstance(c, nodes.title))
    section.insert(title_index + 1, paragraph)


def _writes_pages(app: Sphinx) -> bool:
    return app.builder.format == "html" and app.builder.name == "html"


def _pages(app: Sphinx) -> dict[str, Discussion]:
    if not hasattr(app, "initdocs_discussions"):
        app.initdocs_discussions = {}  # type: ignore[attr-defined]
    return app.initdocs_discussions  # type: ignore[attr-defined]


def _collect(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """``doctree-resolved`` (in the main process, also when writing in parallel): render the
    chapter's prompts and link its prompts part to the discussion view."""
    session = chapter_session(getattr(app, "initdocs_sessions", None), docname)
    if session is None or not _writes_pages(app):
        return
    try:
        page = build_discussion(app.builder, doctree, docname, session)
    except PromptsError as problem:
        logger.warning(
            str(problem), location=(docname, problem.line), type="initdocs", subtype="discussion"
        )
        return
    _pages(app)[docname] = page
    uri = relative_uri(
        app.builder.get_target_uri(docname), app.builder.get_target_uri(discussion_page(docname))
    )
    _link_paragraph(prompts_section(doctree), uri)


def _html_pages(app: Sphinx) -> Iterator[tuple[str, dict[str, Any], str]]:
    """``html-collect-pages``: one page per chapter written in this build (the others are
    unchanged since the build that wrote them)."""
    for docname, page in sorted(_pages(app).items()):
        meta = f'<meta name="description" content="{html.escape(page.description)}" />\n'
        yield (
            discussion_page(docname),
            {
                "title": f"Discussion: {page.chapter_title}",
                "discussion": page,
                "metatags": meta,
                "has_maths_elements": True,  # preloads the math font (initdocs.book.mathml)
            },
            TEMPLATE,
        )
    _pages(app).clear()


def _check_template(app: Sphinx) -> None:
    """``builder-inited``: the page's template must be on ``templates_path``."""
    templates = getattr(app.builder, "templates", None)
    if not _writes_pages(app) or templates is None:
        return
    from jinja2 import TemplateNotFound

    try:
        templates.environment.get_template(TEMPLATE)
    except TemplateNotFound:
        raise ConfigError(
            f"initdocs.book.discussion: no template '{TEMPLATE}' on templates_path; the "
            "book keeps it in docs/_templates/ (with _static/discussion.css and .js)"
        ) from None


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", _check_template)
    app.connect("doctree-resolved", _collect)
    app.connect("html-collect-pages", _html_pages)
    return extension_metadata()
