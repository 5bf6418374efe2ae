"""Lighter pages: the theme's 1.5 MB icon script is left out; its CSS draws the same icons.

pydata-sphinx-theme loads ``fontawesome.js`` on every page, which replaces each ``<i
class="fa-...">`` icon with an inline SVG. Its stylesheet already carries Font Awesome's icon
classes and web fonts (``_static/vendor/fontawesome/webfonts``), which draw the same icons
without the script; the script is there "so that users can add custom icons", which this book
does not. Dropping it takes about 540 kB (compressed) off every page. The book's
``_templates/layout.html`` passes the theme's ``css`` block through the filter registered here.
"""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup
from sphinx.application import Sphinx

from initdocs.book.metadata import extension_metadata

FONTAWESOME_SCRIPT = re.compile(
    r"[ \t]*<script\b[^>]*\bsrc=\"[^\"]*_static/scripts/fontawesome\.js[^\"]*\"[^>]*>"
    r"\s*</script>\n?"
)


def without_fontawesome(markup: str) -> Markup:
    """The markup without the theme's ``fontawesome.js`` script tag."""
    return Markup(FONTAWESOME_SCRIPT.sub("", str(markup)))


def _register(app: Sphinx) -> None:
    templates = getattr(app.builder, "templates", None)
    if templates is not None and hasattr(templates, "environment"):
        templates.environment.filters["initdocs_without_fontawesome"] = without_fontawesome


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", _register)
    return extension_metadata()
