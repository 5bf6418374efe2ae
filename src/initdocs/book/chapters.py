"""Chapters as contributors write them: the template, and the checks a chapter must pass.

A chapter is one MyST Markdown notebook ``docs/sessions/NN-slug.md`` that follows the rubric
of this module (:data:`RUBRIC` and the checks). :func:`render_template` lays that rubric out
from ``chapter_template.md`` beside it, with ``[[write: ...]]`` markers in place of content;
:func:`check_chapter` finds everything that would make a chapter fail the build or fall short
of the rubric, each problem with its line.

The check is a table of small rules (:data:`RULES`), each a function that reads a
:class:`Chapter` and yields its problems: the line, what is wrong and what to do. The chapter's
headings, directives and code cells come from :mod:`initdocs.book.notebook_cells`, the reader
the execution fingerprint uses too, so the check sees the cells myst-nb executes.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from initdocs.book.files import Problem
from initdocs.book.notebook_cells import CodeCell, read_myst
from initdocs.book.records import Session

__all__ = ["MARKER", "RUBRIC", "RULES", "Chapter", "check_chapter", "read_text", "render_template"]

#: The parts of a chapter, in order, as level-2 headings (as in ``chapter_template.md``).
RUBRIC = (
    "In one paragraph",
    "Background you need",
    "Motivation",
    "Contributions",
    "Method",
    "A small experiment",
    "Results in the paper",
    "Discussion prompts",
    "Further reading",
    "References",
)
#: What the template puts where a contributor still has to write.
MARKER = re.compile(r"\[\[write:([^\]]*)\]\]")
MIN_PROMPTS = 5
_FRONT_MATTER_KEYS = ("jupytext", "kernelspec", "myst", "mystnb")
_CHAPTER_NAME = re.compile(r"^(\d{2})-[a-z0-9]+(?:-[a-z0-9]+)*$")
_CITE = re.compile(r"\{(?:foot)?cite(?::\w+)?\}`([^`]*)`")
_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")
#: Parts whose prose describes the chapter's own runs: a number there must come from the code.
EXPERIMENT_PARTS = ("A small experiment",)
#: A typed result: a decimal (0.858, 9.1) or a percentage (98%, 2.5 %), not inside a word.
_TYPED_NUMBER = re.compile(r"(?<![\w.])(?:\d+(?:\.\d+)?\s?%|\d+\.\d+)(?![\w])")
#: What may hold a number without typing a result: inline code, roles (glue, cite, eq, ...),
#: inline and display math, and link targets.
_NOT_PROSE = re.compile(r"\{[\w:-]+\}`[^`]*`|`[^`]*`|\$\$.*?\$\$|\$[^$]+\$|\]\([^)]*\)")
_PLOT = re.compile(r"\bplt\.(show|subplots|figure|imshow|plot)\(|\.savefig\(")
_IMPORTS_INITDOCS = re.compile(r"^\s*(from initdocs[\w.]* import|import initdocs)", re.M)


def read_text(path: Path) -> tuple[str | None, list[Problem]]:
    """The file's text, or a problem saying why it cannot be read as UTF-8 text."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, [Problem(path, None, "no such file; check the path")]
    except IsADirectoryError:
        return None, [Problem(path, None, "is a folder, not a file")]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, [
            Problem(
                path,
                line,
                f"is not UTF-8 text (byte 0x{data[exc.start]:02x}); save the "
                "file with UTF-8 encoding",
            )
        ]


@dataclass(frozen=True)
class Chapter:
    """What the rules read from a chapter, each thing with its line number (from 1)."""

    path: Path
    session: Session | None
    bib_keys: set[str]
    lines: list[str]
    front_matter: dict | None  #: None when missing or unreadable
    front_matter_problems: list[Problem]
    first: int  #: index in ``lines`` of the first line after the front matter
    headings: list[tuple[int, int, str]]  #: (line, level, text)
    directives: list[tuple[int, str, list[str]]]  #: (line, name, lines between the fences)
    cells: list[CodeCell]  #: the code cells myst-nb executes
    misplaced_cells: list[int]  #: lines of ``{code-cell}`` blocks myst-nb does not execute
    prose: list[tuple[int, str]]  #: lines outside code: text and directive contents

    @classmethod
    def read(cls, path: Path, text: str, session: Session | None, bib_keys: set[str]) -> Chapter:
        """The chapter whose text is ``text``, read by :mod:`initdocs.book.notebook_cells`."""
        lines = text.splitlines()
        data, first, problems = _front_matter(path, lines)
        myst = read_myst(text)
        code: set[int] = set()  # lines of code, or of fences, which are not prose
        directives = []
        for fence in myst.fences:
            inner = [n for n, _ in fence.inner]
            code |= {fence.line, (inner[-1] if inner else fence.line) + 1}
            if fence.name and fence.name != "code-cell" and fence.line > first:
                directives.append((fence.line, fence.name, [ln for _, ln in fence.inner]))
            else:
                code.update(inner)
        return cls(
            path=path,
            session=session,
            bib_keys=bib_keys,
            lines=lines,
            front_matter=data,
            front_matter_problems=problems,
            first=first,
            headings=[h for h in myst.headings if h[0] > first],
            directives=directives,
            cells=[cell for cell in myst.cells if cell.line > first],
            misplaced_cells=[f.line for f in myst.fences if f.misplaced_cell and f.line > first],
            prose=[(n, ln) for n, ln in enumerate(lines[first:], first + 1) if n not in code],
        )

    @property
    def parts(self) -> dict[str, int]:
        """The line of every level-2 heading, by its text."""
        return {text: n for n, level, text in self.headings if level == 2}

    @property
    def card(self) -> int | None:
        """The line of the ``{session-card}``, None if there is none."""
        return next((n for n, name, _ in self.directives if name == "session-card"), None)

    def part_end(self, start: int) -> int:
        """The line after the last line of the part whose heading is on line ``start``."""
        return min((n for n in self.parts.values() if n > start), default=len(self.lines) + 1)


def _front_matter(path: Path, lines: list[str]) -> tuple[dict | None, int, list[Problem]]:
    """Parsed front matter, the index of the first body line, and its problems."""
    if not lines or lines[0].strip() != "---":
        return (
            None,
            0,
            [
                Problem(
                    path,
                    1,
                    "missing front matter: the file must start with a "
                    "'---' line, the jupytext and kernelspec keys, and '---'; "
                    "copy them from a chapter made by `initdocs new`",
                )
            ],
        )
    close = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if close is None:
        return None, 0, [Problem(path, 1, "front matter is not closed: add a '---' line after it")]
    try:
        data = yaml.safe_load("\n".join(lines[1:close]))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return (
            None,
            close + 1,
            [
                Problem(
                    path,
                    line,
                    f"front matter is not valid YAML: {reason}; check indentation and colons",
                )
            ],
        )
    if not isinstance(data, dict):
        return None, close + 1, [Problem(path, 2, "front matter must be YAML keys and values")]
    return data, close + 1, []


Found = Iterator[tuple[int | None, str]]
#: A rule: the problems of one kind in a chapter, each as (line, what is wrong and what to do).
Rule = Callable[[Chapter], Found]


def file_name(ch: Chapter) -> Found:
    """The file is named ``NN-short-name.md``."""
    if not _CHAPTER_NAME.match(ch.path.stem) or ch.path.suffix != ".md":
        yield (
            None,
            "chapter files are named NN-short-name.md: the two-digit session number, then "
            "lower-case words joined by hyphens, e.g. 01-xception.md",
        )


def session_record(ch: Chapter) -> Found:
    """A record in ``sessions.toml`` names this chapter."""
    if ch.session is None:
        yield (
            1,
            f"no session in docs/sessions.toml has chapter = '{ch.path.stem}'; create chapters "
            "with `initdocs new`, or fix the record's chapter field",
        )


def front_matter_readable(ch: Chapter) -> Found:
    """The file starts with front matter that is closed and valid YAML keys and values."""
    for problem in ch.front_matter_problems:
        yield problem.line, problem.message


def _line_of_key(ch: Chapter, key: str) -> int:
    """The line where the front matter sets ``key``, 1 if nowhere."""
    return next((i + 1 for i, line in enumerate(ch.lines) if line.startswith(f"{key}:")), 1)


def front_matter_keys(ch: Chapter) -> Found:
    """The front matter has only the keys myst-nb and the book read."""
    for key in ch.front_matter or {}:
        if key not in _FRONT_MATTER_KEYS:
            yield (
                _line_of_key(ch, str(key)),
                f"front matter: unknown key '{key}'; allowed: {', '.join(_FRONT_MATTER_KEYS)}",
            )


def jupytext_format(ch: Chapter) -> Found:
    """The front matter says the text is a MyST notebook, which myst-nb executes."""
    if ch.front_matter is None:
        return
    jupytext = ch.front_matter.get("jupytext") or {}
    if (jupytext.get("text_representation") or {}).get("format_name") != "myst":
        yield (
            _line_of_key(ch, "jupytext"),
            "front matter: jupytext.text_representation.format_name must be 'myst', or "
            "myst-nb will not execute the chapter",
        )


def kernel(ch: Chapter) -> Found:
    """The chapter runs in the ``python3`` kernel."""
    if ch.front_matter is None:
        return
    kernelspec = ch.front_matter.get("kernelspec") or {}
    if not isinstance(kernelspec, dict) or kernelspec.get("name") != "python3":
        yield _line_of_key(ch, "kernelspec"), "front matter: kernelspec.name must be 'python3'"


def description(ch: Chapter) -> Found:
    """The front matter has the page's one-sentence description."""
    if ch.front_matter is None:
        return
    meta = ((ch.front_matter.get("myst") or {}).get("html_meta") or {}).get("description")
    if not isinstance(meta, str) or not 50 <= len(meta) <= 200:
        yield (
            _line_of_key(ch, "myst"),
            "front matter: myst.html_meta.description must be one sentence of 50 to 200 "
            "characters (search engines and link previews show it)",
        )


def markers_left(ch: Chapter) -> Found:
    """No ``[[write: ...]]`` marker of the template is left."""
    for number, line in enumerate(ch.lines, 1):
        for match in MARKER.finditer(line):
            yield (
                number,
                f"template marker left: replace '[[write:{match.group(1)[:60]}]]' with your text",
            )


def title(ch: Chapter) -> Found:
    """The first level-1 heading is ``# Session N: ...``."""
    titles = [(n, text) for n, level, text in ch.headings if level == 1]
    expected = f"Session {ch.session.number}: " if ch.session else "Session "
    if not titles or not titles[0][1].startswith(expected):
        yield (
            titles[0][0] if titles else ch.first + 1,
            f"the chapter's title must be '# {expected}<short paper name>'",
        )


def rubric_parts(ch: Chapter) -> Found:
    """Every part of the rubric is there, as a level-2 heading."""
    parts = ch.parts
    for index, part in enumerate(RUBRIC):
        if part not in parts:
            after = next((parts[p] for p in RUBRIC[index + 1 :] if p in parts), len(ch.lines))
            yield (
                after,
                f"missing part '## {part}' (the rubric's part {index + 1} of {len(RUBRIC)}); "
                "add it here",
            )


def rubric_order(ch: Chapter) -> Found:
    """The parts follow the rubric's order."""
    parts = ch.parts
    found = [(parts[p], p) for p in RUBRIC if p in parts]
    for (line_a, a), (line_b, b) in itertools.pairwise(found):
        if line_b < line_a:
            yield (
                line_b,
                f"'## {b}' must come after '## {a}' (line {line_a}): the parts follow the "
                "rubric's order",
            )


def session_card(ch: Chapter) -> Found:
    """The ``{session-card}`` comes before the first part."""
    first_part = min(ch.parts.values(), default=len(ch.lines))
    if ch.card is None or ch.card > first_part:
        yield (
            ch.card or first_part,
            "the session card must come right after the title: add ```{session-card}``` and a "
            "closing ```",
        )


def discussion_prompts(ch: Chapter) -> Found:
    """'Discussion prompts' has at least :data:`MIN_PROMPTS` numbered prompts."""
    start = ch.parts.get("Discussion prompts")
    if start is None:
        return
    end = ch.part_end(start)
    prompts = [n for n, line in ch.prose if start < n < end and re.match(r"^\d+\.\s+\S", line)]
    if len(prompts) < MIN_PROMPTS:
        yield (
            start,
            f"only {len(prompts)} discussion prompt(s); write at least {MIN_PROMPTS}, as a "
            "numbered list",
        )


def _citations(ch: Chapter) -> Iterator[tuple[int, str]]:
    """(line, key) of every key the prose cites."""
    for number, line in ch.prose:
        for match in _CITE.finditer(line):
            for key in match.group(1).split(","):
                yield number, key.strip()


def citations_known(ch: Chapter) -> Found:
    """Every cited key is in ``references.bib``."""
    for number, key in _citations(ch):
        if key not in ch.bib_keys:
            yield (
                number,
                f"cites '{key}', which is not in references.bib; add the entry or fix the key",
            )


def own_paper_cited(ch: Chapter) -> Found:
    """The chapter cites the session's paper."""
    if ch.session is not None and ch.session.paper_key not in {k for _, k in _citations(ch)}:
        yield (
            ch.card or 1,
            f"the session's own paper is never cited: cite it with "
            f"{{cite:p}}`{ch.session.paper_key}`",
        )


def bibliography(ch: Chapter) -> Found:
    """A ``{bibliography}`` lists the chapter's references."""
    if not any(name == "bibliography" for _, name, _ in ch.directives):
        yield (
            ch.parts.get("References", len(ch.lines)),
            "no ```{bibliography}``` in References: add one with ':filter: docname in docnames'",
        )


def image_alt(ch: Chapter) -> Found:
    """Every Markdown image ``![alt](file)`` has an alt text."""
    for number, line in ch.prose:
        for match in re.finditer(r"!\[([^\]]*)\]\(", line):
            if not match.group(1).strip():
                yield (
                    number,
                    "image without alt text: describe it inside the brackets, "
                    "![what it shows](file)",
                )


def directive_alt(ch: Chapter) -> Found:
    """Every ``{image}`` and ``{figure}`` has an ``:alt:``."""
    for number, name, inner in ch.directives:
        if name in ("image", "figure") and not any(ln.strip().startswith(":alt:") for ln in inner):
            yield (
                number,
                f"{{{name}}} without alt text: add an ':alt: ...' line that says what it shows",
            )


def _experiment_texts(ch: Chapter, start: int, end: int) -> Iterator[tuple[int, str]]:
    """The prose, alt texts and captions between lines ``start`` and ``end``."""
    yield from ((n, text) for n, text in ch.prose if start < n < end)
    for cell in ch.cells:
        if start < cell.line < end:
            mystnb = cell.options.get("mystnb") or {}
            for kind in ("image", "figure"):
                for key in ("alt", "caption"):
                    value = (mystnb.get(kind) or {}).get(key)
                    if isinstance(value, str):
                        yield cell.line, value


def typed_numbers(ch: Chapter) -> Found:
    """No number is typed by hand in the experiment's prose, alt texts and captions.

    The experiment's results change when its code does; a number typed beside them drifts.
    Inserted values (``{glue:text}``), code, math and citations are not prose and pass.
    """
    for part in EXPERIMENT_PARTS:
        start = ch.parts.get(part)
        if start is None:
            continue
        for number, text in _experiment_texts(ch, start, ch.part_end(start)):
            for match in _TYPED_NUMBER.finditer(_NOT_PROSE.sub(" ", text)):
                yield (
                    number,
                    f"'{match.group().strip()}' is typed in '## {part}', so it drifts when the "
                    "code changes: glue it in the cell that computes it "
                    '(glue("name", value, display=False)) and write {glue:text}`name:.3f`; '
                    "in an alt text say it in words; a paper's number goes to "
                    "'## Results in the paper' with its table",
                )


def cell_options(ch: Chapter) -> Found:
    """Every code cell's option block can be read."""
    for cell in ch.cells:
        if cell.error is not None:
            yield cell.line + 1, "the cell's option block is not valid YAML"


def figure_alt(ch: Chapter) -> Found:
    """Every code cell that draws a figure gives it an alt text."""
    for cell in ch.cells:
        if cell.error is None and _PLOT.search(cell.source):
            alt = ((cell.options.get("mystnb") or {}).get("image") or {}).get("alt")
            if not isinstance(alt, str) or not alt.strip():
                yield (
                    cell.line,
                    "this cell draws a figure but has no alt text: add an option block with "
                    'mystnb: image: alt: "what the figure shows"',
                )


def imports_initdocs(ch: Chapter) -> Found:
    """A code cell imports the chapter's implementation from ``initdocs``."""
    if not any(_IMPORTS_INITDOCS.search(cell.source) for cell in ch.cells):
        yield (
            ch.parts.get("Method", ch.first + 1),
            "no code cell imports from initdocs: the chapter's implementation lives in "
            "src/initdocs/ and the chapter imports it",
        )


def cells_executed(ch: Chapter) -> Found:
    """Every ``{code-cell}`` is one myst-nb executes."""
    for line in ch.misplaced_cells:
        yield (
            line,
            "myst-nb does not execute this {code-cell}: open it with ``` or ~~~ right before "
            "{code-cell}, at the start of a line and outside any list, quote or ::: block",
        )


#: The rules of a chapter, in the order their problems on the same line are reported.
RULES: tuple[Rule, ...] = (
    file_name,
    session_record,
    front_matter_readable,
    front_matter_keys,
    jupytext_format,
    kernel,
    description,
    markers_left,
    title,
    rubric_parts,
    rubric_order,
    session_card,
    discussion_prompts,
    citations_known,
    own_paper_cited,
    bibliography,
    image_alt,
    directive_alt,
    typed_numbers,
    cell_options,
    figure_alt,
    imports_initdocs,
    cells_executed,
)


def check_chapter(path: Path, session: Session | None, bib_keys: set[str]) -> list[Problem]:
    """Every problem of the chapter at ``path``: what each rule of :data:`RULES` finds.

    Args:
        path: The chapter file, ``docs/sessions/NN-slug.md``.
        session: Its record from ``sessions.toml`` (``None`` when there is none).
        bib_keys: The keys of ``references.bib``.
    """
    text, problems = read_text(path)
    if text is None:
        return problems
    chapter = Chapter.read(path, text, session, bib_keys)
    problems = [Problem(path, line, message) for rule in RULES for line, message in rule(chapter)]
    return sorted(problems, key=lambda p: p.line or 0)


def markdown_text(text: str) -> str:
    """``text`` escaped so that MyST shows it as written: every ASCII punctuation character
    gets a backslash (CommonMark lets any of them be escaped), so no role, link, HTML tag,
    math or emphasis can start. ``text`` is one line (the records check refuses line breaks).
    """
    return _PUNCTUATION.sub(r"\\\g<0>", text)


def render_template(session: Session) -> str:
    """A new chapter for ``session``: the rubric laid out, guidance where text must go.

    The text is ``chapter_template.md`` beside this module, with ``@@NUMBER@@``,
    ``@@PAPER@@`` and ``@@KEY@@`` filled in from the session's record.
    """
    template = (Path(__file__).parent / "chapter_template.md").read_text(encoding="utf-8")
    values = {
        "@@NUMBER@@": str(session.number),
        "@@PAPER@@": markdown_text(session.paper),
        "@@KEY@@": session.paper_key,
    }
    for placeholder, value in values.items():
        template = template.replace(placeholder, value)
    return template
