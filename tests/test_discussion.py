"""The discussion view (initdocs.book.discussion): built from a small book whose chapter is
executed, so the prompts on the page are the chapter's rendered prompts (glued values,
formulas, citations, links that work from the discussion page); a chapter without a
numbered prompts list is a warning at its file and line; other pages get no view."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from bs4 import BeautifulSoup
from conftest import BIB, DOCS, RECORDS
from test_sphinxext import build as build_project

from initdocs.book.discussion import (
    FOLDER,
    LINK_TEXT,
    SECTION,
    TEMPLATE,
    discussion_page,
    rebase,
)
from initdocs.book.records import load_sessions

CONF = f"""
extensions = ["myst_nb", "sphinxcontrib.bibtex", "initdocs.book.directives",
              "initdocs.book.mathml", "initdocs.book.discussion"]
nb_execution_mode = "force"
nb_kernel_rgx_aliases = {{".*": "python3"}}
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_dmath_double_inline = True
myst_heading_anchors = 3
html_theme = "sphinx_book_theme"
templates_path = ["_templates"]
html_static_path = [{str(DOCS / "_static")!r}]
bibtex_bibfiles = [{str(BIB)!r}]
bibtex_reference_style = "author_year"
initdocs_sessions_file = {str(RECORDS)!r}
suppress_warnings = ["bibtex.duplicate_citation"]
"""
FRONT = (
    "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
    "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n"
)
GLUED = 8.4321  # glued by the chapter's code; the prompt shows it with :.1f
CHAPTER = (
    FRONT
    + """# Session 1: Xception

Some text.

$$
y = W x
$$ (eq-first)

$$
z = P D
$$ (eq-second)

```{code-cell} ipython3
from myst_nb import glue
glue("ratio", 8.4321, display=False)
```

## Discussion prompts

1. Why is the ratio {glue:text}`ratio:.1f`? Compare {eq}`eq-second`
   with {cite:p}`chollet2017xception`.
2. The layer costs $k^2 C$ multiply-adds: see the [glossary](../glossary.md) and
   [the experiment](#an-experiment).
3. A prompt that goes on
   over several lines, with an [outside link](https://arxiv.org/abs/1610.02357).

## An experiment

More text.

## References

```{bibliography}
:filter: docname in docnames
```
"""
)
INDEX = "# Book\n\n```{toctree}\n\nsessions/01-xception\nglossary\nnotes\n```\n"
GLOSSARY = "# Glossary\n\nTerms.\n"
NOTES = f"# Notes\n\n## {SECTION}\n\n1. Not a chapter: no discussion view.\n"


def build(tmp_path: Path, pages: dict[str, str]) -> tuple[Path, str]:
    """Build a small book with the extension and the book's template (not its layout, which
    needs the rest of the book's extension); the HTML folder and the warnings."""
    template = (DOCS / "_templates" / TEMPLATE).read_text(encoding="utf-8")
    return build_project(tmp_path, {"conf.py": CONF, f"_templates/{TEMPLATE}": template, **pages})


def source_prompts(text: str) -> list[str]:
    """The prompts as written: the numbered items of the source's prompts part."""
    part = text.split(f"## {SECTION}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\d+\.\s+(.*)$", part, flags=re.M)


def soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> tuple[Path, str]:
    pages = {
        "index.md": INDEX,
        "sessions/01-xception.md": CHAPTER,
        "glossary.md": GLOSSARY,
        "notes.md": NOTES,
    }
    return build(tmp_path_factory.mktemp("discussion"), pages)


def test_one_slide_per_prompt_of_the_source_with_glued_values_and_math(book):
    html, warnings = book
    assert warnings == ""
    page = soup(html / FOLDER / "01-xception.html")
    slides = page.select("main section.discussion-slide")
    assert len(slides) == len(source_prompts(CHAPTER)) == 3
    assert [s["id"] for s in slides] == ["prompt-1", "prompt-2", "prompt-3"]
    assert [s.h2.get_text() for s in slides] == [f"Prompt {i} of 3" for i in (1, 2, 3)]
    first = " ".join(slides[0].get_text().split())
    assert f"Why is the ratio {GLUED:.1f}?" in first and "glue" not in first
    assert "Chollet, 2017" in first  # the citation as the chapter shows it
    (formula,) = slides[1].find_all("math")
    assert formula["alttext"] == "k^2 C"
    assert "over several lines" in slides[2].get_text()
    # the title and the paper come from the session's record
    session = load_sessions(RECORDS).by_chapter("01-xception")
    assert page.h1.get_text() == "Session 1: Xception"
    assert page.select_one(".discussion-paper").get_text() == session.title
    assert str(session.date.year) in page.select_one(".discussion-kicker").get_text()
    assert page.select_one(".discussion-position").get_text() == "Prompt 1 of 3"
    description = page.find("meta", attrs={"name": "description"})["content"]
    assert f"session {session.number}" in description and session.paper in description


def test_the_key_equation_is_the_first_numbered_formula_linked_to_the_chapter(book):
    html, _ = book
    key = soup(html / FOLDER / "01-xception.html").select_one("header figure.discussion-key")
    (formula,) = key.find_all("math")
    assert formula["display"] == "block" and formula["alttext"] == "y = W x"
    link = key.select_one("figcaption a")["href"]
    assert link == "../sessions/01-xception.html#equation-eq-first"


def test_every_link_on_the_page_reaches_its_target(book):
    """Links written for the chapter's page work from the discussion page: same-page anchors
    go to the chapter, relative links are rebased, outside links are kept."""
    html, _ = book
    name = f"{FOLDER}/01-xception.html"
    hrefs = [a["href"] for a in soup(html / name).find_all("a", href=True)]
    assert "https://arxiv.org/abs/1610.02357" in hrefs
    local = [urljoin(name, href) for href in hrefs if not urlsplit(href).scheme]
    assert "sessions/01-xception.html#equation-eq-second" in local
    assert "sessions/01-xception.html#an-experiment" in local
    assert "glossary.html" in local
    assert any(href.startswith("sessions/01-xception.html#id") for href in local)  # citation
    for href in local:
        path, _, fragment = href.partition("#")
        target = html / path
        assert target.is_file(), href
        if fragment:
            assert soup(target).find(id=fragment) is not None, href


def test_the_chapter_links_to_its_discussion_view(book):
    html, _ = book
    part = soup(html / "sessions" / "01-xception.html").select_one("section#discussion-prompts")
    link = part.find("a", string=LINK_TEXT)
    assert link["href"] == "../discussion/01-xception.html"
    assert part.find("ol").find_previous_sibling("p") is link.parent  # above the prompts


def test_pages_that_are_not_chapters_have_no_view(book):
    html, _ = book
    assert sorted(p.name for p in (html / FOLDER).iterdir()) == ["01-xception.html"]
    assert LINK_TEXT not in (html / "notes.html").read_text(encoding="utf-8")
    assert discussion_page("sessions/01-xception") == "discussion/01-xception"


def test_a_chapter_without_numbered_prompts_is_a_warning_at_its_file_and_line(tmp_path):
    bullets = "# Session 1: Xception\n\nText.\n\n## Discussion prompts\n\n- A bullet.\n"
    missing = "# Session 2: DeepLabv2\n\nText.\n\n## Further reading\n\nNone.\n"
    index = "# Book\n\n```{toctree}\n\nsessions/01-xception\nsessions/02-deeplabv2\n```\n"
    pages = {
        "index.md": index,
        "sessions/01-xception.md": bullets,
        "sessions/02-deeplabv2.md": missing,
    }
    html, warnings = build(tmp_path, pages)
    src = tmp_path / "src" / "sessions"
    heading = bullets.splitlines().index("## Discussion prompts") + 1
    assert (
        f"{src / '01-xception.md'}:{heading}: WARNING: the '{SECTION}' part has no numbered "
        "list" in warnings
    )
    assert f"{src / '02-deeplabv2.md'}:1: WARNING: the chapter has no '{SECTION}' part" in warnings
    assert warnings.count("WARNING") == 2, warnings
    assert not (html / FOLDER).exists()


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("#id3", "../sessions/01-x.html#id3"),
        ("", "../sessions/01-x.html"),
        ("02-y.html#part", "../sessions/02-y.html#part"),
        ("../glossary.html#term-a", "../glossary.html#term-a"),
        ("../_downloads/a/b.py?x=1", "../_downloads/a/b.py?x=1"),
        ("https://arxiv.org/abs/1", "https://arxiv.org/abs/1"),
        ("mailto:a@b.c", "mailto:a@b.c"),
    ],
)
def test_rebase_from_the_chapter_to_the_discussion_page(uri, expected):
    assert rebase(uri, "sessions/01-x.html", "discussion/01-x.html") == expected
