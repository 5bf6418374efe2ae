"""The theme's icons cut down to the ones the book shows: a lighter stylesheet and tiny fonts.

pydata-sphinx-theme ships all of Font Awesome Free: one rule per icon (about 2,000 rules, half
of its stylesheet: 30 kB of the 64 kB it sends compressed) and three web fonts of 19-115 kB,
two of which every page downloads for its header buttons. The book shows a couple of dozen
icons. When the build has finished this module

1. rewrites the output's ``_static/styles/pydata-sphinx-theme.css`` from the theme's pristine
   copy, keeping the rule of every icon whose class (``fa-github``, ...) a page or a script
   of the book names, and pointing its ``@font-face`` rules at the subsets below;
2. writes, next to each Font Awesome font, a subset (fontTools, WOFF) holding the glyphs of
   every character that any stylesheet of the book can put on a page: the kept icon rules,
   the theme's own icon variables (admonitions, external links, ...) and any other string.

Starting from the theme's files, not the output's, keeps an incremental build right: an icon
that a new page names is found in the full set again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fontTools import subset
from fontTools.ttLib import TTFont
from sphinx.application import Sphinx

from initdocs.book.metadata import extension_metadata

STYLESHEET = Path("styles", "pydata-sphinx-theme.css")
WEBFONTS = Path("vendor", "fontawesome", "webfonts")
SUBSET_SUFFIX = ".subset.woff"
# One icon's rule: its class names (aliases share a rule) and its character, e.g.
# `.fa-github-square,.fa-square-github{--fa:"\f092"}`.
ICON_RULE = re.compile(r'(?<=\})((?:\.fa-[a-z0-9-]+,)*\.fa-[a-z0-9-]+)\{--fa:"[^"]*"\}')
ICON_CLASS = re.compile(r"\bfa-[a-z0-9-]+")
FONT_URL = re.compile(r"url\((\.\./vendor/fontawesome/webfonts/[a-z0-9-]+)\.woff2\)")
SOURCE_MAP = re.compile(r"\n?/\*# sourceMappingURL=[^*]*\*/\s*$")
CSS_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
CSS_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6})[ \t\n]?|\\(.)")
# The theme's icon script holds every icon's name; the book leaves it out (initdocs.book.weight).
NOT_SCANNED = {"fontawesome.js"}


def theme_static() -> Path:
    """pydata-sphinx-theme's static folder, as installed."""
    import pydata_sphinx_theme

    return Path(pydata_sphinx_theme.__file__).parent / "theme" / "pydata_sphinx_theme" / "static"


def icon_names(texts: Iterable[str]) -> set[str]:
    """Every Font Awesome class name (``fa-...``) the texts mention."""
    return {name for text in texts for name in ICON_CLASS.findall(text)}


def prune_stylesheet(css: str, used: set[str]) -> str:
    """The theme's stylesheet with only the icon rules of ``used`` classes, its fonts pointed
    at the subsets and without the source map comment (the map no longer matches)."""

    def keep(rule: re.Match[str]) -> str:
        classes = {name.lstrip(".") for name in rule.group(1).split(",")}
        return rule.group(0) if classes & used else ""

    pruned = ICON_RULE.sub(keep, css)
    pruned = FONT_URL.sub(lambda m: f'url({m.group(1)}{SUBSET_SUFFIX}) format("woff")', pruned)
    return SOURCE_MAP.sub("\n", pruned)


def css_characters(css: str) -> set[int]:
    """The code points of every character in the stylesheet's quoted strings, CSS escapes
    (``"\\f09b"``) decoded: what its ``content`` and icon variables can draw."""
    found: set[int] = set()
    for string in CSS_STRING.findall(css):
        decoded = CSS_ESCAPE.sub(
            lambda m: chr(int(m.group(1), 16)) if m.group(1) else m.group(2), string
        )
        found.update(ord(c) for c in decoded)
    return found


def subset_font(source: Path, target: Path, characters: set[int]) -> None:
    """Write the glyphs of ``characters`` that ``source`` has to ``target`` as WOFF, keeping
    the font's names (its licence and copyright notice)."""
    options = subset.Options()
    options.flavor = "woff"
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    font = TTFont(source)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=characters)
    subsetter.subset(font)
    font.flavor = "woff"
    font.save(target)
    font.close()


def cut_down(outdir: Path, source: Path) -> None:
    """Rewrite the icon stylesheet and write the font subsets in the built book ``outdir``."""
    static = outdir / "_static"
    pages = [p.read_text(encoding="utf-8") for p in outdir.rglob("*.html")]
    scripts = [
        p.read_text(encoding="utf-8") for p in static.rglob("*.js") if p.name not in NOT_SCANNED
    ]
    css = prune_stylesheet(
        (source / STYLESHEET).read_text(encoding="utf-8"), icon_names(pages + scripts)
    )
    (static / STYLESHEET).write_text(css, encoding="utf-8")
    characters = set().union(
        *(css_characters(p.read_text(encoding="utf-8")) for p in static.rglob("*.css"))
    )
    for font in sorted((source / WEBFONTS).glob("*.woff2")):
        subset_font(font, static / WEBFONTS / (font.stem + SUBSET_SUFFIX), characters)


def _build_finished(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        cut_down(Path(app.outdir), theme_static())


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("build-finished", _build_finished)
    return extension_metadata()
