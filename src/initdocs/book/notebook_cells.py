"""The one reader of a chapter's MyST structure: its headings, fenced blocks and code cells.

``initdocs check`` (:mod:`initdocs.book.chapters`) and the execution fingerprint
(:mod:`initdocs.book.dependencies`) both read chapters here, so they see the same cells. The text
is tokenised by myst-parser's own markdown-it parser with the book's MyST extensions, and a
code cell is what myst-nb's notebook reader (``myst_nb.core.read``) takes for one: a backtick or
tilde fence whose info starts with ``{code-cell}``, at the top level of the page (not inside a
list or quote). Its options (a ``---`` YAML block or ``:key: value`` lines) are read by
myst-parser's directive parser, as myst-nb does. A ``{code-cell}`` in a ``:::`` fence or inside a
list, or with a space before its ``{``, is no code cell: myst-nb does not execute it, and
:attr:`Fence.misplaced_cell` says so.

myst-parser loads docutils, so it is imported on first use: importing this module (and the
``initdocs`` command) stays light.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, ClassVar

__all__ = ["MYST_EXTENSIONS", "CodeCell", "Fence", "MystText", "read_myst"]

#: The book's MyST extensions (``docs/conf.py`` sets ``myst_enable_extensions`` to these). They
#: decide how the text is tokenised, e.g. whether ``:::`` opens a directive.
MYST_EXTENSIONS = (
    "amsmath",
    "colon_fence",
    "deflist",
    "dollarmath",
    "fieldlist",
    "attrs_inline",
    "substitution",
)
#: What myst-nb's reader looks for at the start of a fence's info string.
CODE_CELL = "{code-cell}"
_DIRECTIVE = re.compile(r"^\{([\w:-]+)\}\s*(.*)$")


@dataclass(frozen=True)
class Fence:
    """A fenced block: a directive (``{name}``), a code cell, or plain code (no name)."""

    line: int  #: line of the opening fence, from 1
    marker: str  #: the fence characters, e.g. "```", "~~~~" or ":::"
    info: str  #: what follows the opening fence, as written, e.g. "{code-cell} ipython3"
    inner: tuple[tuple[int, str], ...]  #: the lines between the fences, numbered, as written
    top_level: bool  #: not inside a list, quote or other container

    @property
    def name(self) -> str:
        """The directive's name without braces ("code-cell", "figure"), "" for plain code."""
        match = _DIRECTIVE.match(self.info.strip())
        return match.group(1) if match else ""

    @property
    def is_code_cell(self) -> bool:
        """Whether myst-nb executes this block as a code cell."""
        return self.marker[0] in "`~" and self.top_level and self.info.startswith(CODE_CELL)

    @property
    def misplaced_cell(self) -> bool:
        """A ``{code-cell}`` that myst-nb does not execute (``:::`` fence, or nested)."""
        return self.name == "code-cell" and not self.is_code_cell


@dataclass(frozen=True)
class CodeCell:
    """A code cell as myst-nb's reader makes it: code, options and where it starts."""

    line: int  #: line of the opening fence, from 1 (myst-nb's ``source_map``)
    source: str  #: the code, option block removed
    options: dict[str, Any]  #: the cell's metadata, e.g. ``{"tags": ["remove-cell"]}``
    error: str | None = None  #: why the option block could not be read, None if it could


@dataclass(frozen=True)
class MystText:
    """The structure of a MyST Markdown file."""

    headings: tuple[tuple[int, int, str], ...]  #: (line, level, text), top level only
    fences: tuple[Fence, ...]  #: every fenced block, in order, nested ones included
    cells: tuple[CodeCell, ...]  #: the code cells myst-nb executes, in order


@cache
def _parser() -> Any:
    """myst-parser's markdown-it parser, configured like the book (block level only)."""
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    config = MdParserConfig(enable_extensions=set(MYST_EXTENSIONS), disable_syntax=["inline"])
    return create_md_parser(config, RendererHTML)


def _code_cell(fence: Fence, content: str) -> CodeCell:
    """The cell of ``fence``, its options read as myst-nb reads them."""
    from myst_parser.parsers.directives import parse_directive_text

    class CellDirective:  # the directive myst-nb's reader parses cells with
        option_spec: ClassVar = {"options": True}
        required_arguments = 0
        optional_arguments = 1
        has_content = True

    result = parse_directive_text(CellDirective, "", content, validate_options=False)
    error = result.warnings[0].msg if result.warnings else None
    return CodeCell(fence.line, "\n".join(result.body), dict(result.options), error)


@lru_cache(maxsize=128)
def read_myst(text: str) -> MystText:
    """The headings, fenced blocks and code cells of the MyST Markdown ``text``.

    Remembered by text: a build reads each chapter's structure several times (the check, the
    execution fingerprint's imports and shown sources); the result is frozen, so it is shared.
    """
    lines = text.splitlines()
    headings: list[tuple[int, int, str]] = []
    fences: list[Fence] = []
    cells: list[CodeCell] = []
    tokens = _parser().parse(text + "\n")
    for index, token in enumerate(tokens):
        if token.map is None:
            continue
        start = token.map[0]
        if token.type == "heading_open" and token.level == 0:
            headings.append((start + 1, int(token.tag[1:]), tokens[index + 1].content))
        elif token.type in ("fence", "colon_fence"):
            end = min(start + 1 + token.content.count("\n"), len(lines))  # unclosed: to the end
            inner = tuple((n + 1, lines[n]) for n in range(start + 1, end))
            fence = Fence(start + 1, token.markup, token.info, inner, token.level == 0)
            fences.append(fence)
            if fence.is_code_cell:
                cells.append(_code_cell(fence, token.content))
    return MystText(tuple(headings), tuple(fences), tuple(cells))
