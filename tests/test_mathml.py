"""Formulas as MathML when the book is built (initdocs.book.mathml): the converter, the font,
equation numbers and references, and the error for a formula that cannot be converted."""

from __future__ import annotations

import io
from pathlib import Path
from xml.etree.ElementTree import Element, fromstring

import pytest
from bs4 import BeautifulSoup
from conftest import CHAPTERS
from fontTools.ttLib import TTFont
from test_sphinxext import build as build_project

from initdocs.book.mathml import (
    FONT_FILE,
    MathError,
    characters,
    font_source,
    styled,
    subset_font,
    to_mathml,
)


def source_formulas(text: str) -> list[tuple[str, bool]]:
    """Every formula of a MyST page, as myst-parser's markdown-it tokenises it with the book's
    settings: (TeX, is a display), in order."""
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    from initdocs.book.notebook_cells import MYST_EXTENSIONS

    config = MdParserConfig(enable_extensions=set(MYST_EXTENSIONS), dmath_double_inline=True)
    found = []
    for token in create_md_parser(config, RendererHTML).parse(text):
        for t in [token, *(token.children or [])]:
            if t.type.startswith("math_inline"):
                found.append((t.content, False))
            elif t.type.startswith("math_block") or t.type == "amsmath":
                found.append((t.content, True))
            elif t.type == "fence" and t.info.strip() == "{math}":
                body = [line for line in t.content.splitlines() if not line.startswith(":")]
                found.append(("\n".join(body), True))
    return found


def parse(tex: str, display: bool = False) -> Element:
    return fromstring(to_mathml(tex, display))


def test_a_fraction_is_an_mfrac_of_numerator_and_denominator():
    math = parse(r"\frac{a}{b+1}")
    assert math.tag == "math" and math.get("display") == "inline"
    frac = math.find(".//mfrac")
    assert frac is not None and len(frac) == 2
    assert "".join(frac[0].itertext()) == "a" and "".join(frac[1].itertext()) == "b+1"
    assert math.get("alttext") == r"\frac{a}{b+1}"  # screen readers and copy get the TeX


def test_display_formula_has_its_limits_above_and_below():
    math = parse(r"\sum_{i=1}^{n} x_i", display=True)
    assert math.get("display") == "block"
    over = math.find(".//munderover")
    assert over is not None and over[0].text == "∑"
    assert math.find(".//msub") is not None  # x_i


def test_aligned_is_a_table_of_rows_and_columns():
    math = parse("\\begin{aligned}\na &= b \\\\\nc &= d + e\n\\end{aligned}", display=True)
    rows = math.findall(".//mtr")
    assert len(rows) == 2
    assert [len(row.findall("mtd")) for row in rows] == [2, 2]
    assert "&" not in "".join(math.itertext())
    # browsers read the alignment from CSS (MathML Core), not from columnalign
    left, right = rows[0].findall("mtd")
    assert "text-align: right" in left.get("style") and "text-align: left" in right.get("style")
    assert not [e for e in math.iter() if "columnalign" in e.attrib or "columnspacing" in e.attrib]


def test_arg_min_and_blackboard_one_need_no_mathvariant():
    math = parse(r"\arg\min_{x} \mathbb{1}[x]", display=True)
    text = "".join(math.itertext())
    assert "arg" in text and "min" in text and "\\" not in text
    assert "\N{MATHEMATICAL DOUBLE-STRUCK DIGIT ONE}" in text
    # browsers implement MathML Core: mathvariant other than "normal" would be ignored
    assert not [e for e in math.iter() if e.get("mathvariant") not in (None, "normal")]


def test_tex_spacing_and_sizes_of_operator_names_and_delimiters():
    math = parse(r"\operatorname{relu}(x) + \log p + \|x\| + \lVert x \rVert + \Big(y\Big)")
    names = [e for e in math.iter("mi") if e.text in ("relu", "log")]
    assert len(names) == 2  # words, not unknown operators that browsers space widely
    row = list(math.find("mrow"))
    after_log = row[row.index(names[1]) + 1]
    assert after_log.tag == "mspace" and after_log.get("width") == "0.1667em"
    assert row[row.index(names[0]) + 1].text == "("  # no space before a parenthesis
    plain = [e for e in math.iter("mo") if e.text in "()‖" and not e.get("minsize")]
    assert plain and {e.get("stretchy") for e in plain} == {"false"}
    bars = [e for e in math.iter("mo") if e.text == "‖"]
    assert {(e.get("lspace"), e.get("rspace")) for e in bars} == {("0", "0")}  # TeX: ordinary
    big = [e for e in math.iter("mo") if e.get("minsize")]
    assert len(big) == 2 and not [e for e in big if e.get("stretchy") == "false"]


def test_limits_go_below_min_in_a_display_only():
    assert parse(r"\min_{x} f(x)", display=True).find(".//munder") is not None
    assert parse(r"\min_{x} f(x)").find(".//munder") is None


def test_text_is_escaped_and_named_spaces_become_lengths():
    markup = to_mathml(r"a\!b \text{if } x<y")
    assert "&lt;" in markup and "<y" not in markup
    math = fromstring(markup)
    assert math.find(".//mtext").text == "if\N{NO-BREAK SPACE}"
    assert {e.get("width") for e in math.iter("mspace")} == {"-0.1667em"}


@pytest.mark.parametrize(
    ("tex", "why"),
    [
        (r"\foo{x} + 1", r"unknown command \foo"),
        (r"\frac{1}", "mfrac with 1 of its 2 parts"),
        ("a & b", "'&' outside an alignment environment"),
        (r"a \\ b", "line break"),
        (r"\left( x", "ExtraLeftOrMissingRightError"),
    ],
)
def test_a_formula_that_cannot_be_converted_says_why(tex, why):
    with pytest.raises(MathError) as info:
        to_mathml(tex)
    assert why in str(info.value)


def test_styled_letters_are_unicode_math_alphabets():
    assert styled("x", "italic") == "\N{MATHEMATICAL ITALIC SMALL X}"
    assert styled("h", "italic") == "\N{PLANCK CONSTANT}"  # the hole in the italic alphabet
    assert styled("R", "double-struck") == "\N{DOUBLE-STRUCK CAPITAL R}"
    bold = "\N{MATHEMATICAL BOLD CAPITAL W}\N{MATHEMATICAL BOLD SMALL ALPHA}"
    assert styled("Wα", "bold") == bold
    assert styled("x1", "bold-italic") == "\N{MATHEMATICAL BOLD ITALIC SMALL X}1"
    assert styled("x", "normal") == "x" and styled("+", "bold") == "+"


def test_characters_include_what_browsers_draw_for_one_letter_identifiers():
    found = characters(to_mathml(r"x + \text{d}y = \sin z"))
    assert {"x", "+", "=", "\N{MATHEMATICAL ITALIC SMALL X}", "d"} <= found
    assert "\N{MATHEMATICAL ITALIC SMALL D}" not in found  # text: upright
    assert "\N{MATHEMATICAL ITALIC SMALL S}" not in found  # sin is a word


def test_every_formula_of_the_book_converts():
    count = 0
    for chapter in CHAPTERS:
        for tex, display in source_formulas(chapter.read_text(encoding="utf-8")):
            assert fromstring(to_mathml(tex, display)).tag == "math", (chapter.name, tex)
            count += 1
    assert count > 400  # the eleven chapters hold about 500 formulas


def test_the_font_covers_the_characters_and_keeps_the_math_table():
    chars = characters(to_mathml(r"\left(\frac{\alpha}{\beta}\right) \le \sum_{k} \hat{x}_k", True))
    font = TTFont(io.BytesIO(subset_font(font_source(), chars)))
    assert font.flavor == "woff2" and "MATH" in font
    cmap = font.getBestCmap()
    assert {ord(c) for c in chars} <= set(cmap)
    assert ord("Q") not in cmap  # only what the formulas use
    assert "SIL Open Font License" in font["name"].getDebugName(13)  # the licence goes along
    # the stretchy parenthesis keeps its larger variants (the MATH table's glyph constructions)
    variants = font["MATH"].table.MathVariants
    names = variants.VertGlyphCoverage.glyphs
    assert cmap[ord("(")] in names


# source_suffix given: an in-process build of the whole book before this one leaves myst-nb's
# suffixes in Sphinx's shared default, which this project (no myst-nb) cannot read.
CONF = """
extensions = ["myst_parser", "initdocs.book.mathml"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_update_mathjax = False
"""
PAGE = """# Math

Inline $\\frac{a}{b}$ and display:

$$
\\sqrt{x} + y
$$ (eq-root)

```{math}
:label: eq-square
z^2
```

See {eq}`eq-root` and {eq}`eq-square`.
"""


def build(tmp_path: Path, pages: dict[str, str]) -> tuple[Path, str]:
    """Build ``pages`` with only myst-parser and this extension; the HTML folder, warnings."""
    return build_project(tmp_path, {"conf.py": CONF, **pages})


def test_book_pages_get_mathml_numbers_references_and_the_font(tmp_path):
    plain = "---\norphan: true\n---\n# Plain\n\nNo math.\n"
    html, warnings = build(tmp_path, {"index.md": PAGE, "plain.md": plain})
    assert warnings == ""
    page = BeautifulSoup((html / "index.html").read_text(encoding="utf-8"), "html.parser")
    maths = page.find_all("math")
    assert [m.get("display") for m in maths] == ["inline", "block", "block"]
    assert maths[0].find("mfrac") and maths[1].find("msqrt")
    assert [m["alttext"] for m in maths] == [r"\frac{a}{b}", r"\sqrt{x} + y", "z^2"]
    # equation numbers as Sphinx gives them, each with its permalink; references show them
    numbers = [div.select_one("span.eqno").get_text() for div in page.select("div.math")]
    assert [n.rstrip("#¶") for n in numbers] == ["(1)", "(2)"]
    assert [box.get("tabindex") for box in page.select("div.math > div.math-scroll")] == ["0"] * 2
    assert [div["id"] for div in page.select("div.math")] == [
        "equation-eq-root",
        "equation-eq-square",
    ]
    refs = {a["href"]: a.get_text() for a in page.select("a.reference") if "#equation" in a["href"]}
    assert refs == {"#equation-eq-root": "(1)", "#equation-eq-square": "(2)"}
    # no script typesets math; the page asks for the book's math font, which covers it
    assert not [s for s in page.find_all("script") if "math" in (s.get("src") or "").lower()]
    preload = page.select_one('link[rel="preload"][as="font"]')
    assert preload is not None and preload["href"] == f"_static/{FONT_FILE}"
    other = BeautifulSoup((html / "plain.html").read_text(encoding="utf-8"), "html.parser")
    assert other.select_one('link[rel="preload"][as="font"]') is None
    cmap = TTFont(html / "_static" / FONT_FILE).getBestCmap()
    assert {"√", "\N{MATHEMATICAL ITALIC SMALL Z}", "2"} <= {chr(c) for c in cmap}


def test_a_formula_that_cannot_be_converted_is_a_warning_with_file_and_line(tmp_path):
    text = "# Bad\n\nSome text\nand then $x + \\foo{y}$ here.\n\n$$\n\\frac{a}\n$$\n"
    _, warnings = build(tmp_path, {"index.md": text})
    index = tmp_path / "src" / "index.md"
    assert f"{index}:4: WARNING: this formula cannot be converted to MathML: unknown command" in (
        warnings
    )
    assert r"unknown command \foo." in warnings and r"\operatorname{name}" in warnings
    assert f"{index}:7: WARNING:" in warnings  # the display's first line, after its $$
    assert "mfrac with 1 of its 2 parts" in warnings
    assert "[initdocs.math]" in warnings
