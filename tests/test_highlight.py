"""Highlighted code in fewer spans (initdocs.book.highlight), checked against the stylesheet
the theme writes: every character keeps the look pygments.css gives it, in both themes."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from pydata_sphinx_theme.pygments import get_pygments_stylesheet
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name

from initdocs.book.highlight import RunsFormatter

THEME_STYLES = ("a11y-high-contrast-light", "a11y-high-contrast-dark")
CODE = '''\
import torch  # the network
from initdocs import xception as xc

@torch.no_grad()
def count(model: torch.nn.Module, size=(1, 3, 224, 224)) -> dict[str, int]:
    """Parameters and "MACs"."""
    x = torch.zeros(*size) * 2.5e-3 + 0x1F
    total = sum(p.numel() for p in model.parameters() if p.requires_grad) or None
    print(f"{total:,} parameters", 'and', r"\\d+", not x)
    return {"params": total, "lambda": lambda: ..., "none": None}
'''
# One rule of pygments.css, e.g. `html[data-theme="dark"] .highlight .k { color: #DCC6E0 }`.
RULE = re.compile(r'^html\[data-theme="(\w+)"\] \.highlight(?: \.([\w-]+))? \{([^}]*)\}', re.M)
# A line continuation is text without a class (drawn in the colour of pre).
CONTINUED = "total = sum(p.numel() for p in model.parameters()) \\\n    or None  # none\n"
BIBTEX = "@misc{key,\n  title = {A {B} c},\n  year = {2021},\n}\n"
PRE_COLOUR = "the theme's colour of pre"


def stylesheet_rules() -> dict[str, dict[str, frozenset[str]]]:
    """Per theme, each class's declarations in the pygments.css pydata-sphinx-theme writes;
    ``""`` is ``div.highlight`` itself (only its colour: the background is the pre's too)."""
    css = get_pygments_stylesheet(*THEME_STYLES)
    rules: dict[str, dict[str, frozenset[str]]] = {}
    for theme, css_class, body in RULE.findall(css):
        declarations = {d.strip() for d in body.split(";") if d.strip()}
        if not css_class:
            declarations = {d for d in declarations if d.startswith("color")}
        rules.setdefault(theme, {})[css_class] = frozenset(declarations)
    return rules


class _Looks(HTMLParser):
    """Each character of highlighted code with the classes of the spans around it and whether
    its ``<pre>`` takes the colour of ``div.highlight``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.spans: list[str] = []
        self.inherit = False
        self.chars: list[tuple[str, tuple[str, ...], bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "pre":
            self.inherit = (found.get("style") or "") == "color: inherit"
        elif tag == "span":
            self.spans.append(found.get("class") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "span":
            self.spans.pop()

    def handle_data(self, data: str) -> None:
        self.chars += [(char, tuple(self.spans), self.inherit) for char in data]


def looks(markup: str, theme: dict[str, frozenset[str]]) -> list[tuple[str, frozenset[str]]]:
    """Every visible character with the declarations that colour it in one theme: those of
    the innermost span with a class, else the ``div.highlight`` colour or the pre's own."""
    parser = _Looks()
    parser.feed(markup)
    result = []
    for char, spans, inherit in parser.chars:
        classes = [c for c in spans if c]
        if classes:
            declarations = theme[classes[-1]]
        else:
            declarations = theme[""] if inherit else frozenset({PRE_COLOUR})
        if not char.isspace():
            result.append((char, declarations))
    return result


def both(code: str, lexer: str = "ipython3") -> tuple[str, str]:
    """The code highlighted by Pygments' formatter and by the book's."""
    return (
        highlight(code, get_lexer_by_name(lexer), HtmlFormatter()),
        highlight(code, get_lexer_by_name(lexer), RunsFormatter(theme_styles=THEME_STYLES)),
    )


def text(markup: str) -> str:
    return BeautifulSoup(markup, "html.parser").get_text()


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize(
    ("lexer", "code"),
    [("ipython3", CODE), ("python", CODE), ("ipython3", CONTINUED), ("bibtex", BIBTEX)],
)
def test_every_character_looks_as_before_in_both_themes(theme: str, lexer: str, code: str):
    rules = stylesheet_rules()
    assert set(rules) == {"light", "dark"} and rules[theme][""]  # div.highlight has a colour
    before, after = both(code, lexer)
    assert text(after) == text(before)
    assert looks(after, rules[theme]) == looks(before, rules[theme])


def test_plain_names_and_punctuation_are_written_without_spans():
    before, after = both("x = torch.zeros(1, 2)\nfor i in range(3):\n    y = x[i]\n")
    assert after.count("<span") < before.count("<span") / 2
    assert '<pre style="color: inherit">' in after
    assert 'class="p"' not in after and 'class="w"' not in after and 'class="n"' not in after
    assert "    y <span" in after and "x[i]\n" in after  # text, indentation: no element
    # the keyword `for` and the operator `in` share a look; so do numbers and builtins; the
    # space after a token joins its span
    assert '<span class="k">for </span>' in after and '<span class="k">in </span>' in after
    assert '<span class="l">1</span>' in after and '<span class="l">range</span>' in after


def test_a_bare_character_keeps_the_colour_of_pre():
    # A line continuation is text without a class: drawn in the pre's colour, so the pre keeps
    # it, and names are written with their class.
    before, after = both("total = a \\\n    + b\n")
    assert 'style="color: inherit"' not in after
    assert (
        '<span class="n">total </span><span class="o">= </span><span class="n">a </span>\\' in after
    )
    assert text(after) == text(before)


def test_prompts_keep_their_class_for_the_copy_button():
    # sphinx-copybutton leaves `.gp` (prompts) out of what it copies.
    before, after = both(">>> x = 1\n1\n", "pycon")
    assert '<span class="gp">&gt;&gt;&gt; </span>' in before
    assert '<span class="gp">&gt;&gt;&gt; </span>' in after
    assert text(after) == text(before)


def test_the_book_is_written_with_the_runs_formatter(html: Path):
    page = (html / "sessions" / "01-xception.html").read_text(encoding="utf-8")
    soup = BeautifulSoup(page, "html.parser")
    inputs = soup.select("div.cell_input div.highlight pre")
    assert inputs
    plain = [pre for pre in inputs if pre.get("style") == "color: inherit"]
    assert len(plain) >= len(inputs) / 2
    assert not soup.select("div.highlight span.p, div.highlight span.w")


def test_reading_the_theme_styles_leaves_logging_alone():
    # a11y_pygments calls logging.basicConfig(level=INFO) when imported: without the guard
    # every build printed fontTools' INFO messages. A fresh interpreter, so the import is new.
    code = (
        "import logging; from initdocs.book.highlight import theme_style; "
        "theme_style('a11y-high-contrast-light'); root = logging.getLogger(); "
        "print(len(root.handlers), root.level)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", str(logging.WARNING)]
