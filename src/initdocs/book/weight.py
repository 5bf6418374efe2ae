"""Lighter pages: what the first screen does not need is left out or loaded after it.

Filters for the book's ``_templates/layout.html``, which passes the theme's blocks through them:

* ``initdocs_lighter_head`` (the ``css`` block) leaves out the theme's 1.5 MB icon script and
  its preload hints for scripts. pydata-sphinx-theme loads ``fontawesome.js`` on every page,
  which replaces each ``<i class="fa-...">`` icon with an inline SVG; its stylesheet already
  carries Font Awesome's icon classes and web fonts, which draw the same icons without the
  script (cut down to the book's icons by :mod:`initdocs.book.icons`); the script is there "so
  that users can add custom icons", which this book does not. The preload hints fetch the
  theme's two deferred scripts at high priority, ahead of the stylesheets the first paint
  waits for; the browser finds those scripts at the end of the page anyway.
* ``initdocs_deferred`` (the ``scripts`` block) adds ``defer`` to every script file but
  ``documentation_options.js`` (a few hundred bytes the inline scripts after it write to): the
  page is parsed and painted before they run, and they still run in order, before
  ``DOMContentLoaded``, where they all start their work.
* ``initdocs_on_interaction`` (the ``scripts`` and ``scripts_end`` blocks) holds back the
  scripts that only wire up controls (:data:`ON_INTERACTION`: the theme's Bootstrap and its own
  script, the sidebar toggles, copy buttons, tabs) until the reader first interacts with the
  page. Each is written as a placeholder the browser neither fetches nor runs; ``interaction.js``
  (inlined in the head, :func:`interaction_script`) prefetches them once the page has loaded,
  runs them on the first pointer move, touch, key, focus, wheel or scroll, holds and replays a
  click or the search shortcut that comes first, sets the "auto" theme before the first
  paint, and defers the layout of a chapter's prose below its first screen until the browser
  is idle after load; code blocks and tables get their tab stops in the HTML
  (:func:`tab_stops`). Run at load, these scripts were a phone's longest tasks after the first
  paint (Bootstrap alone 60-200 ms on Lighthouse's simulated phone).
* ``initdocs_without_search_index`` (the ``extrahead`` block) leaves out Sphinx's search
  scripts and the book's whole search index (about 40 kB compressed, parsed before the first
  paint) on every page but the search page. The theme loads them everywhere for its "search
  as you type" option, which the book leaves off: the search field sends the reader to
  ``search.html``, which loads them itself.

* When the book is built, the theme's script is rewritten so that its check of which code blocks
  and outputs scroll sideways (those get ``tabindex="0"``, so a keyboard reaches them) looks at
  each one when it comes near the screen, not at all of them in one task when the page has
  loaded: reading an element's scroll width makes the browser finish laying out the part of
  the page that holds it, and read all at once the widths laid out the whole chapter in one
  long task. Until it is checked, every such element is reachable (``tabindex="0"``).
* Figures (a page's images: cell outputs and figures in the prose) load when the reader nears
  them (``loading="lazy"``), not before the first screen is drawn: a chapter's first screen
  is text, and its figures (tens of kB each) held up the text on a slow connection.

Code cells are written with fewer elements (:mod:`initdocs.book.highlight`) and the theme's
icons cut down to the book's (:mod:`initdocs.book.icons`); both are set up here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from docutils import nodes
from markupsafe import Markup
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

from initdocs.book.highlight import setup as setup_highlight
from initdocs.book.icons import setup as setup_icons
from initdocs.book.icons import theme_static
from initdocs.book.metadata import extension_metadata

FONTAWESOME_SCRIPT = re.compile(
    r"[ \t]*<script\b[^>]*\bsrc=\"[^\"]*_static/scripts/fontawesome\.js[^\"]*\"[^>]*>"
    r"\s*</script>\n?"
)
SCRIPT_PRELOAD = re.compile(r"[ \t]*<link\b[^>]*\brel=\"preload\"[^>]*\bas=\"script\"[^>]*/?>\n?")
SCRIPT_FILE = re.compile(r"<script\b(?P<attributes>[^>]*\bsrc=\"(?P<src>[^\"]*)\"[^>]*)>")
NOT_DEFERRED = re.compile(r"(^|/)documentation_options\.js(\?|$)")
SEARCH_SCRIPTS = re.compile(
    r"[ \t]*<script\b[^>]*\bsrc=\"[^\"]*(_static/searchtools|_static/language_data|searchindex)"
    r"\.js\"[^>]*>\s*</script>\n?"
)

THEME_SCRIPT = Path("scripts", "pydata-sphinx-theme.js")
# pydata-sphinx-theme's tab stops (its addTabStopsToScrollableElements, run on load, on resize
# and when the main content changes), as its built script has them: every code block and
# output is measured at once.
TAB_STOPS = (
    ".forEach(e=>{e.tabIndex=e.scrollWidth>e.clientWidth||e.scrollHeight>e.clientHeight?0:-1})"
)
# The same check, for each element when it comes within a screen's height of the screen
# (one IntersectionObserver for the page); reachable by the keyboard until then.
TAB_STOPS_NEAR_THE_SCREEN = (
    ".forEach(e=>{e.tabIndex=0;(window.initdocsTabStops||=new IntersectionObserver("
    "t=>t.forEach(({target:e,isIntersecting:n})=>{n&&(window.initdocsTabStops.unobserve(e),"
    "e.tabIndex=e.scrollWidth>e.clientWidth||e.scrollHeight>e.clientHeight?0:-1)}),"
    '{rootMargin:"100%"})).observe(e)})'
)
# What the theme's check looks at (its addTabStopsToScrollableElements; tests/test_weight.py
# reads the list from the theme's script and compares).
THEME_SCROLLABLE = (
    "pre",
    ".nboutput > .output_area",  # nbsphinx's, not in this book (myst-nb)
    ".cell_output > .output",  # holds a <pre>, which is what scrolls (the theme's CSS)
    ".jp-RenderedHTMLCommon",  # Jupyter widgets' HTML, not in this book
    ".pst-scrollable-table-container",
)
# What of it scrolls in this book (its CSS gives them overflow: auto):
# code blocks and outputs (``<pre>``) and tables. Written with tabindex="0" (tab_stops), they
# are reachable by the keyboard before the theme's script has run, which is not at load.
SCROLLER = re.compile(
    r'<(pre|div class="pst-scrollable-table-container")(?=[\s>])(?![^>]*\btabindex=)'
)
SCRIPT_SOURCE_MAP = re.compile(r"\n?//# sourceMappingURL=\S*\s*$")


def tab_stops_near_the_screen(script: str, name: str = str(THEME_SCRIPT)) -> str:
    """The theme's script with :data:`TAB_STOPS` replaced by :data:`TAB_STOPS_NEAR_THE_SCREEN`
    and without its source map comment (the map no longer matches)."""
    if script.count(TAB_STOPS) != 1:
        raise ExtensionError(
            f"{name}: pydata-sphinx-theme's tab-stop code is not the one "
            "initdocs.book.weight.TAB_STOPS expects (a new theme version?): find the code of "
            "addTabStopsToScrollableElements in the script and update TAB_STOPS."
        )
    return SCRIPT_SOURCE_MAP.sub("\n", script.replace(TAB_STOPS, TAB_STOPS_NEAR_THE_SCREEN))


def _rewrite_theme_script(app: Sphinx, exception: Exception | None) -> None:
    """Write the theme's script, from the theme's own copy, with its tab stops checked near the
    screen (so a rebuild starts again from the pristine script)."""
    if exception is None and app.builder.format == "html":
        source = theme_static() / THEME_SCRIPT
        script = tab_stops_near_the_screen(source.read_text(encoding="utf-8"), str(source))
        (Path(app.outdir) / "_static" / THEME_SCRIPT).write_text(script, encoding="utf-8")


def tab_stops(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: nodes.document | None
) -> None:
    """Give every code block, output and table of the page's body ``tabindex="0"`` (a keyboard
    reaches what scrolls sideways, WCAG 2.1.1, before any script has run; the theme's script
    takes it off those that turn out not to scroll, once it runs)."""
    if "body" in context:
        context["body"] = SCROLLER.sub(r'<\1 tabindex="0"', context["body"])


def lazy_images(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Give every image of a page ``loading="lazy"`` (docutils writes the attribute)."""
    for image in doctree.findall(nodes.image):
        image.setdefault("loading", "lazy")


def without_fontawesome(markup: str) -> Markup:
    """The markup without the theme's ``fontawesome.js`` script tag."""
    return Markup(FONTAWESOME_SCRIPT.sub("", str(markup)))


def lighter_head(markup: str) -> Markup:
    """The markup without ``fontawesome.js`` and without preload hints for scripts."""
    return Markup(SCRIPT_PRELOAD.sub("", str(without_fontawesome(markup))))


def deferred(markup: str) -> Markup:
    """Every ``<script src=...>`` tag with ``defer``, unless it has ``defer`` or ``async``
    already or loads ``documentation_options.js``."""

    def defer(tag: re.Match[str]) -> str:
        attributes = tag.group("attributes")
        if NOT_DEFERRED.search(tag.group("src")) or re.search(r"\b(defer|async)\b", attributes):
            return tag.group(0)
        return f"<script defer{attributes}>"

    return Markup(SCRIPT_FILE.sub(defer, str(markup)))


#: Scripts run on the reader's first interaction (matched at the end of their path, before any
#: query): they only wire up controls. What the first screen needs of them is done without
#: them: the "auto" theme by :data:`INTERACTION_SCRIPT`, tab stops by :func:`tab_stops`.
ON_INTERACTION = (
    "_static/clipboard.min.js",
    "_static/copybutton.js",
    "_static/design-tabs.js",
    "_static/scripts/sphinx-book-theme.js",
    "_static/scripts/bootstrap.js",
    "_static/scripts/pydata-sphinx-theme.js",
)
INTERACTION_SCRIPT = Path(__file__).with_name("interaction.js")
SCRIPT_ELEMENT = re.compile(
    r"<script\b(?P<attributes>[^>]*\bsrc=\"(?P<src>[^\"]*)\"[^>]*)>\s*</script>"
)


def on_interaction(markup: str) -> Markup:
    """Every script of :data:`ON_INTERACTION` as a placeholder (``type="initdocs/on-interaction"``,
    without ``defer``); other scripts as they are. :func:`interaction_script`, in the head of
    every page, prefetches and runs the placeholders."""

    def hold(tag: re.Match[str]) -> str:
        src = tag.group("src")
        if not src.split("?")[0].endswith(ON_INTERACTION):
            return tag.group(0)
        attributes = re.sub(r"\s+defer(=\"defer\")?(?=[\s>]|$)", "", tag.group("attributes"))
        return f'<script type="initdocs/on-interaction"{attributes}></script>'

    return Markup(SCRIPT_ELEMENT.sub(hold, str(markup)))


def interaction_script() -> Markup:
    """``interaction.js`` as an inline ``<script>`` (the template global
    ``initdocs_interaction_script``): it must run in the head, before the first paint."""
    return Markup(f"<script>\n{INTERACTION_SCRIPT.read_text(encoding='utf-8')}</script>\n")


def without_search_index(markup: str) -> Markup:
    """The markup without Sphinx's search scripts and the search index."""
    return Markup(SEARCH_SCRIPTS.sub("", str(markup)))


FILTERS = {
    "initdocs_lighter_head": lighter_head,
    "initdocs_deferred": deferred,
    "initdocs_on_interaction": on_interaction,
    "initdocs_without_search_index": without_search_index,
}


def _register(app: Sphinx) -> None:
    templates = getattr(app.builder, "templates", None)
    if templates is not None and hasattr(templates, "environment"):
        templates.environment.filters.update(FILTERS)
        templates.environment.globals["initdocs_interaction_script"] = interaction_script
        count_as_a_template(templates, INTERACTION_SCRIPT)


def count_as_a_template(templates: Any, path: Path) -> None:
    """Make the builder rewrite every page when ``path`` changes, as it does when a template
    changes: the HTML builder compares each page with its newest template
    (``newest_template_mtime``), and a file the templates inline (``interaction.js``) is not one
    of them, so an edited script reached the pages only once something else changed."""
    newest_mtime, newest_name = templates.newest_template_mtime, templates.newest_template_name

    def mtime() -> float:
        return path.stat().st_mtime_ns / 10**9

    templates.newest_template_mtime = lambda: max(newest_mtime(), mtime())
    templates.newest_template_name = lambda: (
        path.name if mtime() >= newest_mtime() else newest_name()
    )


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", _register)
    app.connect("build-finished", _rewrite_theme_script)
    app.connect("doctree-resolved", lazy_images)
    app.connect("html-page-context", tab_stops)
    setup_icons(app)
    setup_highlight(app)
    return extension_metadata()
