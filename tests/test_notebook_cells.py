"""The one MyST reader (initdocs.book.notebook_cells): the check and the execution fingerprint
see the code cells myst-nb executes, with their options and lines, whatever the fence."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CHAPTERS
from myst_nb.core.read import read_myst_markdown_notebook
from myst_parser.config.main import MdParserConfig

from initdocs.book.chapters import Chapter, check_chapter
from initdocs.book.dependencies import code_cells, module_closure
from initdocs.book.notebook_cells import MYST_EXTENSIONS


def myst_nb_cells(text: str) -> list[tuple[int, str, dict]]:
    """(line, source, metadata) of every code cell, as myst-nb's own reader makes them."""
    config = MdParserConfig(enable_extensions=set(MYST_EXTENSIONS))
    notebook = read_myst_markdown_notebook(text, config=config, add_source_map=True)
    lines = notebook.metadata["source_map"]
    return [
        (line, cell.source, dict(cell.metadata))
        for line, cell in zip(lines, notebook.cells, strict=True)
        if cell.cell_type == "code"
    ]


def check_cells(text: str, tmp_path: Path) -> list[tuple[int, str, dict]]:
    """The cells ``initdocs check`` reads in a chapter with this text."""
    chapter = Chapter.read(tmp_path / "99-test.md", text, None, set())
    return [(cell.line, cell.source, cell.options) for cell in chapter.cells]


def line_of(text: str, needle: str) -> int:
    return text.splitlines().index(needle) + 1


FRONT = "---\njupytext:\n  text_representation:\n    format_name: myst\n---\n\n# Title\n\n"
#: The same two cells in every fence: a YAML option block, then ``:tags:`` options.
VARIANTS = {
    "backticks": ("```", "```"),
    "four backticks": ("````", "````"),
    "tildes": ("~~~", "~~~"),
}
CELLS = """\
{open}{{code-cell}} ipython3
---
mystnb:
  image:
    alt: "a plot"
---
from initdocs import se
{close}

Prose between the cells.

{open}{{code-cell}} ipython3
:tags: [hide-input, remove-output]
import initdocs.vit as vit
{close}
"""


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_fence_gives_the_same_cells_to_check_fingerprint_and_myst_nb(variant, tmp_path):
    opening, closing = VARIANTS[variant]
    text = FRONT + CELLS.format(open=opening, close=closing)
    fence = f"{opening}{{code-cell}} ipython3"
    first, second = (n for n, line in enumerate(text.splitlines(), 1) if line == fence)
    assert (first, second) == (9, 20)  # counted by hand in FRONT and CELLS
    expected = [
        (first, "from initdocs import se", {"mystnb": {"image": {"alt": "a plot"}}}),
        (second, "import initdocs.vit as vit", {"tags": ["hide-input", "remove-output"]}),
    ]
    assert myst_nb_cells(text) == expected
    assert check_cells(text, tmp_path) == expected
    assert code_cells(text) == [source for _, source, _ in expected]
    found = {path.name for path in module_closure(text)}
    assert {"se.py", "vit.py", "transformer.py"} <= found


MISPLACED = {
    "colon fence": ":::{code-cell} ipython3\nimport initdocs.ssd\n:::\n",
    "inside a list": "- a step\n\n  ```{code-cell} ipython3\n  import initdocs.ssd\n  ```\n",
    "space before the brace": "``` {code-cell} ipython3\nimport initdocs.ssd\n```\n",
}


@pytest.mark.parametrize("where", sorted(MISPLACED))
def test_a_cell_myst_nb_does_not_execute_is_no_cell_and_check_says_so(where, tmp_path):
    text = FRONT + "## Method\n\n" + MISPLACED[where]
    assert myst_nb_cells(text) == []
    assert check_cells(text, tmp_path) == []
    assert code_cells(text) == []
    assert "ssd.py" not in {path.name for path in module_closure(text)}

    path = tmp_path / "99-test.md"
    path.write_text(text, encoding="utf-8")
    fence = next(n for n, ln in enumerate(text.splitlines(), 1) if "{code-cell}" in ln)
    problems = [p for p in check_chapter(path, None, set()) if "does not execute" in p.message]
    assert [p.line for p in problems] == [fence]
    assert f"{path}:{fence}: myst-nb does not execute this {{code-cell}}" in str(problems[0])


def test_check_now_sees_a_tilde_cell_that_draws_a_figure(tmp_path):
    text = FRONT + "## Method\n\n~~~{code-cell} ipython3\nimport matplotlib.pyplot as plt\n"
    text += "plt.plot([1, 2])\n~~~\n"
    path = tmp_path / "99-test.md"
    path.write_text(text, encoding="utf-8")
    figure = [p for p in check_chapter(path, None, set()) if "draws a figure" in p.message]
    assert [p.line for p in figure] == [line_of(text, "~~~{code-cell} ipython3")]


def test_a_comment_in_a_tilde_cell_is_code_not_a_heading(tmp_path):
    text = FRONT + "## Method\n\n~~~{code-cell} ipython3\n# Session 9: not a title\n~~~\n"
    chapter = Chapter.read(tmp_path / "99-test.md", text, None, set())
    assert chapter.headings == [(7, 1, "Title"), (9, 2, "Method")]
    assert all("not a title" not in line for _, line in chapter.prose)


def test_an_unreadable_option_block_is_reported_on_its_line(tmp_path):
    text = FRONT + "## Method\n\n```{code-cell} ipython3\n---\ntags: [a\n---\nx = 1\n```\n"
    path = tmp_path / "99-test.md"
    path.write_text(text, encoding="utf-8")
    bad = [p for p in check_chapter(path, None, set()) if "option block" in p.message]
    assert [p.line for p in bad] == [line_of(text, "```{code-cell} ipython3") + 1]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.stem)
def test_check_and_fingerprint_see_the_cells_myst_nb_executes_in_every_chapter(chapter, tmp_path):
    text = chapter.read_text(encoding="utf-8")
    executed = myst_nb_cells(text)
    assert len(executed) == text.count("```{code-cell}")  # the book's one form of cell
    assert check_cells(text, tmp_path) == executed
    assert code_cells(text) == [source for _, source, _ in executed]
    fences = [n for n, ln in enumerate(text.splitlines(), 1) if ln.startswith("```{code-cell}")]
    assert [line for line, _, _ in executed] == fences
