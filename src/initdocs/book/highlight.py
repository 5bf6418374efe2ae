"""Highlighted code in fewer elements: one ``<span>`` per run of tokens that look the same.

Pygments wraps every token in its own ``<span>``: ``torch.zeros(1, 2)`` is nine elements. A
chapter's code cells hold thousands of them, and on a phone the browser's style and layout of
those elements is most of the time the page keeps the main thread busy. Yet the theme's two
highlighting styles (pydata-sphinx-theme draws code with one style in the light theme and
another in the dark theme, both in ``_static/pygments.css``) give most token types the same
look: names, punctuation and whitespace are all the text's colour; keywords and ``in`` share
one colour, numbers and builtins another, operators and strings a third.

:class:`RunsFormatter` writes each token with the class of the first type (by class name) that
looks exactly like it in *both* styles, so Pygments' own merging of neighbouring tokens with the
same class makes one span of ``torch.zeros(`` and the whitespace between tokens joins the span
before it. What the reader sees is unchanged: the class it gets has the same rules in
pygments.css as the one it replaces, in either theme. Types other stylesheets select stay as
they are: prompts (``.gp``, which the copy button leaves out of what it copies) and all other
``Generic`` types, errors, and text without a class, which takes the colour of ``pre``.

:func:`setup` (called by the book's extension, see :mod:`initdocs.book.weight`) gives the HTML
builder's highlighter this formatter and the names of the theme's two styles.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from pygments.formatters import HtmlFormatter
from pygments.style import StyleMeta
from pygments.styles import get_style_by_name
from pygments.token import STANDARD_TYPES, Token, _TokenType
from sphinx.application import Sphinx

from initdocs.book.metadata import extension_metadata

# Token families whose classes only carry a look from pygments.css. Generic (prompts, output,
# headings), Error, Escape and Other are left alone.
FAMILIES = (
    Token.Keyword,
    Token.Name,
    Token.Literal,
    Token.Operator,
    Token.Punctuation,
    Token.Comment,
    Token.Text,
)
# A look that shows on whitespace too: whitespace does not join a run with one of these.
VISIBLE_ON_SPACE = ("bgcolor", "underline", "border")

# Types Pygments writes without a span; their text takes the colour of the ``<pre>``, which
# the theme sets apart from pygments.css.
BARE = (Token, Token.Text)
# The ``<pre>``'s own style when plain text is written bare: the colour of ``div.highlight``,
# which pygments.css sets to the colour of Text (the same look as names and punctuation).
PLAIN_PRE = "color: inherit"

TokenStream = Iterable[tuple[_TokenType, str]]


def look(style: StyleMeta, ttype: _TokenType) -> tuple:
    """Everything a style gives a token type (colour, weight, background, ...), comparable."""
    return tuple(sorted(style.style_for_token(ttype).items()))


def same_look_types(styles: Iterable[StyleMeta]) -> dict[_TokenType, _TokenType]:
    """Each token type of :data:`FAMILIES` with a class, mapped to the type whose class it is
    written with: the one with the shortest, then alphabetically first class name among the
    types that look the same in every one of ``styles``."""
    styles = list(styles)
    groups: dict[tuple, list[_TokenType]] = {}
    for ttype, css_class in STANDARD_TYPES.items():
        if css_class and any(ttype in family for family in FAMILIES):
            key = tuple(look(style, ttype) for style in styles)
            groups.setdefault(key, []).append(ttype)
    mapping = {}
    for members in groups.values():
        first = min(members, key=lambda t: (len(STANDARD_TYPES[t]), STANDARD_TYPES[t]))
        mapping.update(dict.fromkeys(members, first))
    return mapping


def theme_style(name: str) -> StyleMeta:
    """The Pygments style ``name``, leaving the logging set-up as it was.

    The theme's styles come from ``a11y_pygments``, which on import points the root logger at
    standard error at level INFO (``logging.basicConfig``): every library's INFO messages
    (fontTools cutting the fonts, for one) would then be printed by every build.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return get_style_by_name(name)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


class RunsFormatter(HtmlFormatter):
    """Pygments' HTML formatter, with neighbouring tokens that look the same in the theme's
    light and dark styles (option ``theme_styles``, two style names) in one span."""

    def __init__(self, **options: Any) -> None:
        names = options.pop("theme_styles")
        super().__init__(**options)
        self.theme_styles = [theme_style(name) for name in names]
        self.same_look = same_look_types(self.theme_styles)
        #: The types written with a class whose look does not show on whitespace.
        self.spaces_join = {
            ttype for ttype in set(self.same_look.values()) if not self._shows_on_space(ttype)
        }
        #: The type plain text (names, punctuation) is written as, if it looks like Text and
        #: pygments.css gives ``div.highlight`` the colour of Text (styles with a background).
        text = self._looks(Token.Text)
        plain = [t for t in set(self.same_look.values()) if self._looks(t) == text]
        backgrounds = all(style.background_color for style in self.theme_styles)
        self.plain = plain[0] if plain and backgrounds else None

    def _looks(self, ttype: _TokenType) -> tuple:
        return tuple(look(style, ttype) for style in self.theme_styles)

    def _shows_on_space(self, ttype: _TokenType) -> bool:
        return any(
            style.style_for_token(ttype)[key]
            for style in self.theme_styles
            for key in VISIBLE_ON_SPACE
        )

    def runs(self, tokens: TokenStream) -> Iterator[tuple[_TokenType, str]]:
        """The tokens with the types they are written as. Whitespace shows no colour: within
        a line it joins the run before it, unless that run's look shows on whitespace;
        whitespace across lines (a line's end and the next one's indentation) gets no span."""
        previous = None
        for ttype, value in tokens:
            written = self.same_look.get(ttype, ttype)
            if value.isspace() and (written in self.spaces_join or ttype in BARE):
                joins = previous in self.spaces_join and "\n" not in value
                written = previous if joins else Token.Text
            previous = written
            yield written, value

    def format_unencoded(self, tokensource: TokenStream, outfile: TextIO) -> None:
        """Write the runs; when the only text without a class is whitespace, the runs that look
        like plain text get no span either, and the ``<pre>`` takes the colour of its
        ``div.highlight`` (:data:`PLAIN_PRE`), which pygments.css gives plain text."""
        tokens = list(self.runs(tokensource))
        bare = (value for ttype, value in tokens if ttype in BARE)
        if self.plain is None or not all(value.isspace() for value in bare):
            super().format_unencoded(tokens, outfile)
            return
        tokens = [(Token.Text if ttype == self.plain else ttype, value) for ttype, value in tokens]
        prestyles, self.prestyles = (
            self.prestyles,
            "; ".join(filter(None, [self.prestyles, PLAIN_PRE])),
        )
        try:
            super().format_unencoded(tokens, outfile)
        finally:
            self.prestyles = prestyles


def theme_styles(app: Sphinx) -> tuple[str, str]:
    """The names of the light and the dark Pygments style the HTML theme writes into
    pygments.css (pydata-sphinx-theme's options ``pygments_light_style`` and
    ``pygments_dark_style``, set in ``html_theme_options`` or by the theme)."""
    options = app.builder.theme.get_options(app.config.html_theme_options)
    return options["pygments_light_style"], options["pygments_dark_style"]


def use_runs_formatter(app: Sphinx) -> None:
    """Give an HTML builder's highlighter :class:`RunsFormatter` (other builders keep theirs)."""
    highlighter = getattr(app.builder, "highlighter", None)
    if highlighter is None or highlighter.dest != "html" or not hasattr(app.builder, "theme"):
        return
    highlighter.formatter = RunsFormatter
    highlighter.formatter_args["theme_styles"] = theme_styles(app)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", use_runs_formatter)
    return extension_metadata()
