"""Math typeset when the book is built: every formula is MathML in the page, no script.

Each formula of a chapter (``$...$``, ``$$...$$``, ``{math}``, labelled equations) is
converted from TeX to MathML by latex2mathml, a maintained pure-Python converter, and written
into the HTML as a ``<math>`` element that browsers lay out themselves (MathML Core) and
screen readers read; its ``alttext`` holds the TeX source. Equation numbers, labels and
``{eq}`` references are Sphinx's own, as before.

A formula latex2mathml cannot convert, or converts only in part (it keeps an unknown command
such as ``\\foo`` as text), is a build warning naming the chapter file and line, which fails
the book's ``-W`` build. :data:`REWRITES` maps the few standard commands it lacks to ones it
knows.

latex2mathml writes MathML 3; browsers implement MathML Core, which ignores some of it. The
output is adapted (:func:`to_mathml`): styled letters instead of ``mathvariant``, lengths
instead of named spaces, CSS instead of table alignment attributes, TeX's spacing of operator
names and plain delimiters, limits below ``\\min`` in a display.

Browsers draw MathML with an OpenType MATH font. The book serves its own: STIX Two Math (SIL
Open Font License, kept in the font's name table), taken from the ``ziamath`` package's wheel
(only as a source of the file) and cut with fontTools, when the book is built, to the glyphs
its formulas use with their stretchy and script-size variants: ``_static/initdocs-math.woff2``,
about 47 kB. ``initdocs.css`` declares it; pages with math preload it.
"""

from __future__ import annotations

import html
import importlib.util
import io
import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, tostring

from docutils import nodes
from docutils.utils import get_source_line
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.environment import BuildEnvironment
from sphinx.errors import ConfigError
from sphinx.locale import _
from sphinx.util import logging
from sphinx.util.math import get_node_equation_number

from initdocs.book.metadata import extension_metadata

logger = logging.getLogger(__name__)

RENDERER = "mathml"
#: The served font, in ``_static``; ``initdocs.css`` names it in its ``@font-face``.
FONT_FILE = "initdocs-math.woff2"
FONT_PACKAGE = "ziamath"
FONT_SOURCE = ("fonts", "STIXTwoMath-Regular.ttf")  # inside FONT_PACKAGE
#: Name records kept in the font: its names, copyright, trademark and licence (the SIL Open
#: Font License travels with the font).
FONT_NAMES = (0, 1, 2, 3, 4, 5, 6, 7, 13, 14)
#: OpenType features kept in the font: script-size glyphs (``ssty``) for sub- and superscripts.
FONT_FEATURES = ("ssty",)
#: Standard TeX that latex2mathml 3.81 does not know, as TeX it knows with the same meaning.
REWRITES = (
    # amsmath's aligned is align* inside a display (same columns: right, left, right, ...)
    (re.compile(r"\\(begin|end)\{aligned\}"), r"\\\1{align*}"),
    (re.compile(r"\\arg\s*\\(min|max)(?![A-Za-z])"), r"\\arg\1"),
    (re.compile(r"\\arg(?![A-Za-z])"), r"\\operatorname{arg}"),
)
TOKENS = frozenset({"mi", "mn", "mo", "ms", "mtext"})
#: How many children each MathML layout element takes: fewer means a missing argument.
ARITY = {
    "mfrac": 2, "mroot": 2, "msub": 2, "msup": 2, "munder": 2, "mover": 2,
    "msubsup": 3, "munderover": 3,
}  # fmt: skip
#: MathML 3's named spaces, which MathML Core (what browsers implement) does not know, in em.
NAMED_SPACES = {
    f"{sign}{name}mathspace": f"{'-' if sign else ''}{eighteenths / 18:.4g}em"
    for sign in ("", "negative")
    for eighteenths, name in enumerate(
        ("veryverythin", "verythin", "thin", "medium", "thick", "verythick", "veryverythick"), 1
    )
}
#: Delimiters, which stretch in MathML by default but in TeX only with \left, \right, \big...
FENCES = frozenset("()[]{}|‖⟨⟩⌊⌋⌈⌉/")
BARS = frozenset("|‖")
#: TeX's thin space, which it puts between an operator name (\log, \operatorname) and what
#: follows unless that is a delimiter or punctuation.
THIN_SPACE = "0.1667em"
#: Elements whose children stand in a row, and scripted elements (whose first child is a base).
ROWS = frozenset({"math", "mrow", "mstyle", "mtd", "msqrt", "mpadded", "mphantom"})
SCRIPTS = frozenset({"msub", "msup", "msubsup", "munder", "mover", "munderover"})
#: Operators whose subscript TeX sets below them in a display (\min_x, \arg\min_x, \lim).
LIMITS = frozenset({"min", "max", "lim", "sup", "inf", "det", "Pr", "gcd", "arg\u2009min",
                    "arg\u2009max", "lim\u2006inf", "lim\u2006sup"})  # fmt: skip
#: MathML's mathvariant values and the words Unicode names their alphabets with.
VARIANTS = {
    "bold": "BOLD",
    "italic": "ITALIC",
    "bold-italic": "BOLD ITALIC",
    "double-struck": "DOUBLE-STRUCK",
    "script": "SCRIPT",
    "bold-script": "BOLD SCRIPT",
    "fraktur": "FRAKTUR",
    "bold-fraktur": "BOLD FRAKTUR",
    "sans-serif": "SANS-SERIF",
    "bold-sans-serif": "SANS-SERIF BOLD",
    "sans-serif-italic": "SANS-SERIF ITALIC",
    "sans-serif-bold-italic": "SANS-SERIF BOLD ITALIC",
    "monospace": "MONOSPACE",
}


class MathError(ValueError):
    """A formula that cannot be converted to MathML; the message says why and what to do."""


def _prepare(tex: str, display: bool) -> str:
    """The TeX latex2mathml gets: :data:`REWRITES` applied; in a display, paragraphs (blank
    lines) are rows of one alignment and a line break outside one becomes ``split``, as
    Sphinx's MathJax renderer does."""
    for pattern, replacement in REWRITES:
        tex = pattern.sub(replacement, tex)
    if not display:
        return tex
    parts = [part for part in re.split(r"\n\s*\n", tex) if part.strip()]
    if len(parts) > 1:
        return r"\begin{align*}" + r"\\".join(parts) + r"\end{align*}"
    if r"\\" in tex and r"\begin" not in tex:
        return r"\begin{split}" + tex + r"\end{split}"
    return tex


def _problems(math: Element) -> Iterator[str]:
    """What latex2mathml left unconverted in its output."""
    for element in math.iter():
        text = html.unescape(element.text or "")
        if element.tag in TOKENS and "\\" in text:
            command = re.search(r"\\([A-Za-z]+|.)", text)
            yield f"unknown command {command.group(0) if command else text}"
        elif element.tag in TOKENS and text == "&":
            yield "'&' outside an alignment environment"
        elif element.tag == "mspace" and element.get("linebreak"):
            yield r"line break '\\' outside an environment"
        elif len(element) < ARITY.get(element.tag, 0):
            yield f"a {element.tag} with {len(element)} of its {ARITY[element.tag]} parts"


def styled(text: str, variant: str) -> str:
    """``text`` in a Unicode mathematical alphabet (``variant`` as MathML names it: bold,
    italic, double-struck, ...); characters that alphabet lacks are left as they are, and so
    is all of ``text`` for another variant (``normal``)."""
    style = VARIANTS.get(variant)
    return "".join(_styled_char(char, style) for char in text) if style else text


@lru_cache(maxsize=4096)
def _styled_char(char: str, style: str) -> str:
    name = unicodedata.name(char, "")
    match = re.fullmatch(r"(LATIN|GREEK) (SMALL|CAPITAL) LETTER (\w+)|DIGIT (\w+)", name)
    if match is None:
        return char
    if match.group(4):
        names = [f"MATHEMATICAL {style} DIGIT {match.group(4)}"]
    else:
        case, letter = match.group(2), match.group(3)
        names = [f"MATHEMATICAL {style} {case} {letter}", f"{style} {case} {letter}"]
        if style == "ITALIC" and case == "SMALL" and letter == "H":
            names.append("PLANCK CONSTANT")  # the italic alphabet's one hole
    for candidate in names:
        try:
            return unicodedata.lookup(candidate)
        except KeyError:
            continue
    return char


def _half(length: str) -> str:
    """Half of a CSS length: ``2em`` gives ``1em``, ``0em`` gives ``0``."""
    match = re.fullmatch(r"(\d*\.?\d+)([a-z]*)", length)
    if match is None:
        return f"calc({length} / 2)"
    half = float(match.group(1)) / 2
    return f"{half:g}{match.group(2)}" if half else "0"


def _table_styles(table: Element) -> None:
    """A table's column alignment and spacing as CSS, which MathML Core reads, instead of
    MathML 3's ``columnalign`` and ``columnspacing`` attributes, which it ignores (so that
    ``aligned`` puts each ``=`` right after its left-hand side)."""
    spacing = (table.attrib.pop("columnspacing", None) or "").split()
    table.attrib.pop("rowspacing", None)
    for row in table.iter("mtr"):
        cells = row.findall("mtd")
        for index, cell in enumerate(cells):
            style = []
            align = cell.attrib.pop("columnalign", None)
            if align:
                style.append(f"text-align: {align}")
            if spacing:  # half of the space between two columns on each side of it
                left = spacing[min(index - 1, len(spacing) - 1)] if index else "0"
                last = index == len(cells) - 1
                right = "0" if last else spacing[min(index, len(spacing) - 1)]
                style.append(f"padding-left: {_half(left)}; padding-right: {_half(right)}")
            if style:
                cell.set("style", "; ".join(style))


def _is_name(element: Element) -> bool:
    """An operator name: a word in an ``<mi>`` (``log``) or in an ``<mo>`` that is no big
    operator with limits (``relu``, not ``min``)."""
    text = element.text or ""
    return (
        element.tag in ("mi", "mo")
        and len(text) > 1
        and text.isalpha()
        and not element.get("movablelimits")
    )


def _operator_names(math: Element) -> None:
    """TeX's spacing of operator names and delimiters, which MathML Core does not apply.

    A delimiter without an explicit size (``stretchy``, ``minsize``) is TeX's plain ``(`` or
    ``\\lVert``: it keeps its size. An operator name (``\\log`` comes as ``<mi>log</mi>``,
    ``\\operatorname{relu}`` as ``<mo>relu</mo>``, which browsers would space as an unknown
    operator) becomes an ``<mi>``, followed by a thin space unless an operator, a delimiter or
    punctuation comes next.
    """
    for element in math.iter("mo"):
        sized = element.get("stretchy") == "true" or {"minsize", "maxsize"} & set(element.attrib)
        if element.text in FENCES and not sized:
            element.set("stretchy", "false")
            if element.text in BARS:  # TeX's | is an ordinary symbol: no space around it
                element.set("lspace", "0")
                element.set("rspace", "0")
    for element in math.iter():
        if element.tag == "mo" and _is_name(element):
            element.tag = "mi"
    for row in [e for e in math.iter() if e.tag in ROWS]:
        children = list(row)
        for child, following in itertools.pairwise(children):
            base = child[0] if child.tag in SCRIPTS and len(child) else child
            if _is_name(base) and following.tag != "mo":
                row.insert(list(row).index(child) + 1, Element("mspace", width=THIN_SPACE))


def _for_browsers(math: Element) -> None:
    """Rewrite what browsers' MathML Core ignores: mathvariant on anything but a single
    ``normal`` identifier (the characters become the styled ones), named spaces and tables'
    alignment attributes."""
    for table in math.iter("mtable"):
        _table_styles(table)
    for element in math.iter():
        if element.text:
            element.text = html.unescape(element.text)
        variant = element.get("mathvariant")
        if variant and variant != "normal" and element.tag in TOKENS:
            element.text = styled(element.text or "", variant)
            del element.attrib["mathvariant"]
        for attribute in ("width", "lspace", "rspace"):
            if element.get(attribute) in NAMED_SPACES:
                element.set(attribute, NAMED_SPACES[element.get(attribute)])
    _operator_names(math)


@lru_cache(maxsize=2048)
def to_mathml(tex: str, display: bool = False) -> str:
    """The ``<math>`` element of one formula, with its TeX in ``alttext``.

    Raises :class:`MathError` saying what could not be converted.
    """
    from latex2mathml.converter import convert_to_element

    try:
        math = convert_to_element(_prepare(tex, display), display="block" if display else "inline")
    except Exception as error:  # latex2mathml raises bare Exception subclasses, and others
        detail = f": {error}" if str(error) else ""
        raise MathError(f"latex2mathml cannot read it ({type(error).__name__}{detail})") from None
    problems = sorted(set(_problems(math)))
    if problems:
        raise MathError("; ".join(problems))
    _for_browsers(math)
    if display:
        for script in math.iter("msub"):
            if (script[0].text or "") in LIMITS:
                script.tag = "munder"
    del math.attrib["xmlns"]  # HTML puts <math> in the MathML namespace itself
    math.set("alttext", " ".join(tex.split()))
    return tostring(math, encoding="unicode")


def characters(mathml: str) -> set[str]:
    """Every character a browser draws for the MathML: its text, the radical sign of a root,
    and for an identifier of one letter the italic letter browsers show instead (MathML
    Core's auto-italic)."""
    from xml.etree.ElementTree import fromstring

    found = set()
    for element in fromstring(mathml).iter():
        text = element.text or ""
        found.update(text)
        if element.tag in ("msqrt", "mroot"):
            found.add("\N{SQUARE ROOT}")
        if element.tag == "mi" and len(text) == 1 and "mathvariant" not in element.attrib:
            found.add(styled(text, "italic"))
    return found


def subset_font(source: Path, chars: Iterable[str]) -> bytes:
    """STIX Two Math cut to ``chars``, with the MATH table's variants of those glyphs, as WOFF2."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.layout_features = list(FONT_FEATURES)
    options.hinting = False  # browsers do not use TrueType hints for text this size
    options.name_IDs = list(FONT_NAMES)
    options.flavor = "woff2"
    font = TTFont(source, recalcTimestamp=False)  # same characters, same bytes
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted({ord(c) for c in chars}))
    subsetter.subset(font)
    font.flavor = "woff2"
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def font_source() -> Path:
    """STIX Two Math inside the installed ``ziamath`` package (found, not imported: the
    package itself is not used)."""
    spec = importlib.util.find_spec(FONT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"the package {FONT_PACKAGE} is not installed; it provides the math font "
            '(STIX Two Math). Install the book\'s dependencies: pip install -e ".[docs]"'
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*FONT_SOURCE)
    if not path.is_file():
        raise ConfigError(f"{path} is missing: reinstall {FONT_PACKAGE}")
    return path


def source_line(node: nodes.Node, tex: str) -> tuple[str | None, int | None]:
    """The file and the line where the formula starts: the node's line, moved down to the
    first line holding the formula's first line when the node's is its paragraph's."""
    source, line = get_source_line(node)
    first = tex.strip().splitlines()[0].strip() if tex.strip() else ""
    if source and line and first and Path(source).is_file():
        lines = Path(source).read_text(encoding="utf-8").splitlines()
        for number in range(line, min(len(lines), line + 200) + 1):
            if first in lines[number - 1]:
                return source, number
    return source, line


def _formulas(doctree: nodes.Node) -> Iterator[nodes.math | nodes.math_block]:
    yield from doctree.findall(lambda n: isinstance(n, (nodes.math, nodes.math_block)))


def _check(app: Sphinx, doctree: nodes.document) -> None:
    """Convert every formula of a page as it is read; a failure is a warning that names the
    file and the line and says what to do (the book's ``-W`` build then fails)."""
    for node in _formulas(doctree):
        tex = node.astext()
        try:
            to_mathml(tex, isinstance(node, nodes.math_block))
        except MathError as error:
            source, line = source_line(node, tex)
            logger.warning(
                "this formula cannot be converted to MathML: %s. Formula: %s. Write it with "
                "commands latex2mathml supports (e.g. \\operatorname{name} for an operator "
                "name), or add the command to REWRITES in initdocs.book.mathml",
                error,
                " ".join(tex.split()),
                location=f"{source}:{line}",
                type="initdocs",
                subtype="math",
            )


def book_characters(env: BuildEnvironment) -> set[str]:
    """The characters of every formula of the book, from the pages' doctrees."""
    found: set[str] = set()
    for docname in sorted(env.all_docs):
        for node in _formulas(env.get_doctree(docname)):
            try:
                found |= characters(to_mathml(node.astext(), isinstance(node, nodes.math_block)))
            except MathError:
                continue  # a warning already
    return found


def _math_html(translator: Any, node: nodes.Element, display: bool) -> str:
    try:
        return to_mathml(node.astext(), display)
    except MathError:  # already a warning when the page was read; show the source
        return f"<code>{translator.encode(node.astext())}</code>"


def visit_math(self: Any, node: nodes.math) -> None:
    """Inline formula: its ``<math>`` element."""
    self.body.append(_math_html(self, node, display=False))
    raise nodes.SkipNode


def visit_displaymath(self: Any, node: nodes.math_block) -> None:
    """Display formula: a ``div.math`` (the target of its label) holding the number with its
    permalink, then the ``<math display="block">`` in a ``div.math-scroll``, which scrolls
    sideways when the formula is wider than the column (``initdocs.css``) and takes the
    keyboard focus for that (WCAG 2.1.1)."""
    self.body.append(self.starttag(node, "div", CLASS="math"))
    if node["number"]:
        number = get_node_equation_number(self, node)
        self.body.append(f'<span class="eqno">({number})')
        self.add_permalink_ref(node, _("Link to this equation"))
        self.body.append("</span>")
    # focusable, so that a keyboard can scroll a formula wider than the column
    scroll = f'<div class="math-scroll" tabindex="0">{_math_html(self, node, display=True)}</div>'
    self.body.append(scroll)
    self.body.append("</div>\n")
    raise nodes.SkipNode


def _configure(app: Sphinx, config: Config) -> None:
    font_source()  # fail early, with what to do, if the package is missing
    config.html_math_renderer = RENDERER


def _preload(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Pages with math ask for the font at once, before the stylesheet names it."""
    if context.get("has_maths_elements") and "pathto" in context:
        href = context["pathto"](f"_static/{FONT_FILE}", 1)
        context["metatags"] = context.get("metatags", "") + (
            f'\n<link rel="preload" href="{href}" as="font" type="font/woff2" crossorigin>'
        )


def _write_font(app: Sphinx, exception: BaseException | None) -> None:
    """Write the font cut to every character of the book's formulas (kept when unchanged)."""
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / FONT_FILE
    source = font_source()
    # What the font is cut from and to; the same as last time: the font written then stands.
    chars = book_characters(app.env)
    recipe = f"{source.stat().st_size} {FONT_FEATURES} {''.join(sorted(chars))}"
    made = Path(app.doctreedir) / f"{FONT_FILE}.recipe"
    if target.is_file() and made.is_file() and made.read_text(encoding="utf-8") == recipe:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(subset_font(source, chars))
    made.write_text(recipe, encoding="utf-8")


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_html_math_renderer(
        RENDERER,
        inline_renderers=(visit_math, None),
        block_renderers=(visit_displaymath, None),
    )
    app.connect("config-inited", _configure)
    app.connect("doctree-read", _check)
    app.connect("html-page-context", _preload)
    app.connect("build-finished", _write_font)
    return extension_metadata()
