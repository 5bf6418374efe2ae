"""Page metadata: a meta description on every page, the sitemap, social cards and icons.

A Sphinx extension (``"initdocs.book.page_meta"`` in ``docs/conf.py``, after
``"sphinxext.opengraph"``). It

* gives every HTML page exactly one ``<meta name="description">``: the one written in the
  page's front matter (``myst: html_meta: description``) when there is one, otherwise one
  made from the page (its first paragraph, or a fixed text for the index and search pages),
  and warns when a written one is not 50-200 characters long;
* passes that description to sphinxext-opengraph as ``og:description``, so search results and
  link previews say the same thing;
* writes ``sitemap.xml`` listing every page made from a source file (not the generated index
  and search pages) with absolute URLs under ``html_baseurl``;
* renders the PNG icons from :mod:`initdocs.book.logo` at build time: an apple-touch icon
  (the PNG fallback of the SVG favicon) and the picture on the social cards.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin
from xml.etree import ElementTree

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError
from sphinx.util import logging

from initdocs.book.logo import write_png
from initdocs.book.metadata import extension_metadata

logger = logging.getLogger(__name__)

MIN_LENGTH = 50
MAX_LENGTH = 200
#: Length a description made from a page's first paragraph is cut to.
DERIVED_LENGTH = 160
SITEMAP = "sitemap.xml"
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
TOUCH_ICON = "_static/apple-touch-icon.png"
CARD_IMAGE = "initdocs-card-logo.png"


class _MetaDescriptions(HTMLParser):
    """Collects the content of every ``<meta name="description">`` tag."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "meta" and (values.get("name") or "").lower() == "description":
            self.found.append(values.get("content") or "")


def written_descriptions(metatags: str) -> list[str]:
    """The contents of the ``<meta name="description">`` tags in ``metatags``."""
    parser = _MetaDescriptions()
    parser.feed(metatags)
    parser.close()
    return parser.found


def shorten(text: str, limit: int = DERIVED_LENGTH) -> str:
    """``text`` with whitespace collapsed, cut at a word boundary to at most ``limit``."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:.")
    return cut + "…"


def derived_description(
    pagename: str, title: str, site: str, doctree: nodes.document | None
) -> str:
    """A description for a page whose source gives none."""
    if pagename == "genindex":
        return f"Alphabetical index of the terms, names and objects used in {site}."
    if pagename == "search":
        return f"Full-text search of every chapter and page of {site}."
    first = None
    if doctree is not None:
        first = next(
            (p.astext() for p in doctree.findall(nodes.paragraph) if len(p.astext()) > 40),
            None,
        )
    text = shorten(first) if first else ""
    if len(text) < MIN_LENGTH:
        text = shorten(
            f"{title}: part of {site}, a book of deep-learning papers with runnable PyTorch code."
        )
    return text


def _plain_title(context: dict[str, Any]) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", context.get("title", "")))


def add_description(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """``html-page-context``: make sure the page has exactly one good description."""
    metatags = context.get("metatags", "")
    written = written_descriptions(metatags)
    if len(written) > 1:
        logger.warning(
            "%s: %d meta descriptions; keep one (myst: html_meta: description)",
            pagename,
            len(written),
            location=pagename,
        )
    if written:
        description = written[0]
        if not MIN_LENGTH <= len(description) <= MAX_LENGTH:
            logger.warning(
                "%s: the meta description has %d characters; write %d to %d "
                "(front matter: myst: html_meta: description)",
                pagename,
                len(description),
                MIN_LENGTH,
                MAX_LENGTH,
                location=pagename,
            )
    else:
        title = _plain_title(context)
        description = derived_description(pagename, title, app.config.html_title, doctree)
        context["metatags"] = (
            metatags + f'<meta name="description" content="{html.escape(description)}" />\n'
        )
    if context.get("meta") is not None:
        # sphinxext-opengraph takes og:* page fields as overrides; a copy keeps env intact.
        # The social card shows the page title, so it is the card's alt text.
        context["meta"] = {
            **context["meta"],
            "og:description": description,
            "og:image:alt": _plain_title(context),
        }
    touch_icon = context["pathto"](TOUCH_ICON, 1)
    context["metatags"] += f'<link rel="apple-touch-icon" href="{touch_icon}" />\n'


def sitemap_xml(baseurl: str, targets: list[str]) -> bytes:
    """A sitemaps.org ``urlset`` of the pages at ``targets`` (relative URIs)."""
    root = ElementTree.Element("urlset", xmlns=SITEMAP_NS)
    for target in sorted(targets):
        url = ElementTree.SubElement(root, "url")
        ElementTree.SubElement(url, "loc").text = urljoin(baseurl, target)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _baseurl(config: Config) -> str:
    baseurl = config.html_baseurl
    if not re.match(r"^https?://", baseurl):
        raise ConfigError(
            f"docs/conf.py: html_baseurl is {baseurl!r}; the sitemap and the social cards need "
            "the absolute URL the book is published at (set INITDOCS_BASE_URL)."
        )
    return baseurl if baseurl.endswith("/") else baseurl + "/"


def write_sitemap_and_icons(app: Sphinx, exception: Exception | None) -> None:
    """``build-finished``: ``sitemap.xml`` and the PNG touch icon."""
    if exception is not None or app.builder.format != "html":
        return
    targets = [app.builder.get_target_uri(doc) for doc in app.env.found_docs]
    Path(app.outdir, SITEMAP).write_bytes(sitemap_xml(_baseurl(app.config), targets))
    write_png(Path(app.outdir, TOUCH_ICON), 180)


def configure(app: Sphinx, config: Config) -> None:
    """``config-inited``: opengraph's site URL and the social cards' picture."""
    if not config.ogp_site_url:
        config.ogp_site_url = _baseurl(config)
    if config.ogp_social_cards is None:
        image = write_png(Path(app.doctreedir).parent / "initdocs" / CARD_IMAGE, 256)
        config.ogp_social_cards = {"image": str(image), "image_mini": str(image)}


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinxext.opengraph")
    app.connect("config-inited", configure)
    # Before sphinxext-opengraph (priority 500), which reads the og:description field.
    app.connect("html-page-context", add_description, priority=400)
    app.connect("build-finished", write_sitemap_and_icons)
    return extension_metadata()
