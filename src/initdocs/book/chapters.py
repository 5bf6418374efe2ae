"""Chapters as contributors write them: the template, and the checks a chapter must pass.

A chapter is one MyST Markdown notebook ``docs/sessions/NN-slug.md`` that follows the rubric
of this module (:data:`RUBRIC` and the checks). :func:`render_template` lays that rubric out
from ``chapter_template.md`` beside it, with ``[[write: ...]]`` markers in place of content;
:func:`check_chapter` finds everything that would make a chapter fail the build or fall short
of the rubric, each problem with its line.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from initdocs.book.files import Problem
from initdocs.book.records import Session

__all__ = ["MARKER", "RUBRIC", "check_chapter", "read_text", "render_template"]

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
_FENCE = re.compile(r"^(`{3,}|:{3,})\s*(\{[\w:-]+\})?\s*(.*)$")
_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")
#: Parts whose prose describes the chapter's own runs: a number there must come from the code.
EXPERIMENT_PARTS = ("A small experiment",)
#: A typed result: a decimal (0.858, 9.1) or a percentage (98%, 2.5 %), not inside a word.
_TYPED_NUMBER = re.compile(r"(?<![\w.])(?:\d+(?:\.\d+)?\s?%|\d+\.\d+)(?![\w])")
#: What may hold a number without typing a result: inline code, roles (glue, cite, eq, ...),
#: inline and display math, and link targets.
_NOT_PROSE = re.compile(r"\{[\w:-]+\}`[^`]*`|`[^`]*`|\$\$.*?\$\$|\$[^$]+\$|\]\([^)]*\)")
_PLOT = re.compile(r"\bplt\.(show|subplots|figure|imshow|plot)\(|\.savefig\(")


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


@dataclass
class _Cell:
    line: int  # line of the opening fence
    options: dict[str, Any]
    source: str


@dataclass
class _Body:
    """What the checks need from a chapter's Markdown, each thing with its line number."""

    headings: list[tuple[int, int, str]] = field(default_factory=list)  # (line, level, text)
    directives: list[tuple[int, str, list[str]]] = field(default_factory=list)
    cells: list[_Cell] = field(default_factory=list)
    prose: list[tuple[int, str]] = field(default_factory=list)  # lines outside fences


def _parse_body(lines: list[str], first: int) -> _Body:
    body = _Body()
    i = 0
    while i < len(lines):
        line, number = lines[i], first + i
        match = _FENCE.match(line.strip())
        if match:
            fence, name = match.group(1), match.group(2)
            end = i + 1
            while end < len(lines) and lines[end].strip() != fence:
                end += 1
            inner = lines[i + 1 : end]
            if name == "{code-cell}":
                options: dict[str, Any] = {}
                if inner and inner[0].strip() == "---":
                    close = next((k for k in range(1, len(inner)) if inner[k].strip() == "---"), 0)
                    try:
                        options = yaml.safe_load("\n".join(inner[1:close])) or {}
                    except yaml.YAMLError:
                        options = {"__invalid__": True}
                    inner = inner[close + 1 :]
                body.cells.append(_Cell(number, options, "\n".join(inner)))
            elif name:
                body.directives.append((number, name.strip("{}"), inner))
                body.prose.extend((first + i + 1 + k, text) for k, text in enumerate(inner))
            i = end + 1
            continue
        heading = re.match(r"^(#{1,6})\s+(.*?)\s*$", line)
        if heading:
            body.headings.append((number, len(heading.group(1)), heading.group(2)))
        body.prose.append((number, line))
        i += 1
    return body


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


def _check_front_matter(path: Path, data: dict, lines: list[str]) -> list[Problem]:
    problems = []

    def line_of(key: str) -> int:
        return next((i + 1 for i, ln in enumerate(lines) if ln.startswith(f"{key}:")), 1)

    for key in data:
        if key not in _FRONT_MATTER_KEYS:
            problems.append(
                Problem(
                    path,
                    line_of(str(key)),
                    f"front matter: unknown key '{key}'; allowed: {', '.join(_FRONT_MATTER_KEYS)}",
                )
            )
    fmt = ((data.get("jupytext") or {}).get("text_representation") or {}).get("format_name")
    if fmt != "myst":
        problems.append(
            Problem(
                path,
                line_of("jupytext"),
                "front matter: jupytext."
                "text_representation.format_name must be 'myst', or myst-nb "
                "will not execute the chapter",
            )
        )
    kernel = data.get("kernelspec") or {}
    if not isinstance(kernel, dict) or kernel.get("name") != "python3":
        problems.append(
            Problem(path, line_of("kernelspec"), "front matter: kernelspec.name must be 'python3'")
        )
    meta = ((data.get("myst") or {}).get("html_meta") or {}).get("description")
    if not isinstance(meta, str) or not 50 <= len(meta) <= 200:
        problems.append(
            Problem(
                path,
                line_of("myst"),
                "front matter: myst.html_meta."
                "description must be one sentence of 50 to 200 characters "
                "(search engines and link previews show it)",
            )
        )
    return problems


def check_chapter(path: Path, session: Session | None, bib_keys: set[str]) -> list[Problem]:
    """Every problem of the chapter at ``path``.

    Args:
        path: The chapter file, ``docs/sessions/NN-slug.md``.
        session: Its record from ``sessions.toml`` (``None`` when there is none).
        bib_keys: The keys of ``references.bib``.
    """
    text, problems = read_text(path)
    if text is None:
        return problems
    if not _CHAPTER_NAME.match(path.stem) or path.suffix != ".md":
        problems.append(
            Problem(
                path,
                None,
                "chapter files are named NN-short-name.md: the "
                "two-digit session number, then lower-case words joined by "
                "hyphens, e.g. 01-xception.md",
            )
        )
    if session is None:
        problems.append(
            Problem(
                path,
                1,
                f"no session in docs/sessions.toml has chapter = "
                f"'{path.stem}'; create chapters with `initdocs new`, or fix "
                "the record's chapter field",
            )
        )
    lines = text.splitlines()
    data, first, front = _front_matter(path, lines)
    problems += front
    if data is not None:
        problems += _check_front_matter(path, data, lines)
    body = _parse_body(lines[first:], first + 1)

    for number, line in enumerate(lines, 1):
        for match in MARKER.finditer(line):
            problems.append(
                Problem(
                    path,
                    number,
                    f"template marker left: replace "
                    f"'[[write:{match.group(1)[:60]}]]' with your text",
                )
            )

    titles = [(n, t) for n, level, t in body.headings if level == 1]
    expected_title = f"Session {session.number}: " if session else "Session "
    if not titles or not titles[0][1].startswith(expected_title):
        problems.append(
            Problem(
                path,
                titles[0][0] if titles else first + 1,
                f"the chapter's title must be '# {expected_title}<short paper name>'",
            )
        )

    parts = {t: n for n, level, t in body.headings if level == 2}
    found = [(parts[p], p) for p in RUBRIC if p in parts]
    for index, part in enumerate(RUBRIC):
        if part not in parts:
            after = next((parts[p] for p in RUBRIC[index + 1 :] if p in parts), len(lines))
            problems.append(
                Problem(
                    path,
                    after,
                    f"missing part '## {part}' (the rubric's "
                    f"part {index + 1} of {len(RUBRIC)}); add it here",
                )
            )
    for (line_a, a), (line_b, b) in itertools.pairwise(found):
        if line_b < line_a:
            problems.append(
                Problem(
                    path,
                    line_b,
                    f"'## {b}' must come after '## {a}' "
                    f"(line {line_a}): the parts follow the rubric's order",
                )
            )

    card = next((n for n, name, _ in body.directives if name == "session-card"), None)
    first_part = min(parts.values(), default=len(lines))
    if card is None or card > first_part:
        problems.append(
            Problem(
                path,
                card or first_part,
                "the session card must come right "
                "after the title: add ```{session-card}``` and a closing ```",
            )
        )

    if "Discussion prompts" in parts:
        start = parts["Discussion prompts"]
        end = min((n for n in parts.values() if n > start), default=len(lines) + 1)
        prompts = [n for n, ln in body.prose if start < n < end and re.match(r"^\d+\.\s+\S", ln)]
        if len(prompts) < MIN_PROMPTS:
            problems.append(
                Problem(
                    path,
                    start,
                    f"only {len(prompts)} discussion prompt(s); "
                    f"write at least {MIN_PROMPTS}, as a numbered list",
                )
            )

    cited: set[str] = set()
    for number, line in body.prose:
        for match in _CITE.finditer(line):
            for key in (k.strip() for k in match.group(1).split(",")):
                cited.add(key)
                if key not in bib_keys:
                    problems.append(
                        Problem(
                            path,
                            number,
                            f"cites '{key}', which is not in "
                            "references.bib; add the entry or fix the key",
                        )
                    )
    if session is not None and session.paper_key not in cited:
        problems.append(
            Problem(
                path,
                card or 1,
                f"the session's own paper is never cited: "
                f"cite it with {{cite:p}}`{session.paper_key}`",
            )
        )
    if not any(name == "bibliography" for _, name, _ in body.directives):
        problems.append(
            Problem(
                path,
                parts.get("References", len(lines)),
                "no ```{bibliography}"
                "``` in References: add one with ':filter: docname in "
                "docnames'",
            )
        )

    for number, line in body.prose:
        for match in re.finditer(r"!\[([^\]]*)\]\(", line):
            if not match.group(1).strip():
                problems.append(
                    Problem(
                        path,
                        number,
                        "image without alt text: describe it "
                        "inside the brackets, ![what it shows](file)",
                    )
                )
    for number, name, inner in body.directives:
        if name in ("image", "figure") and not any(ln.strip().startswith(":alt:") for ln in inner):
            problems.append(
                Problem(
                    path,
                    number,
                    f"{{{name}}} without alt text: add an ':alt: ...' line that says what it shows",
                )
            )
    problems += _typed_numbers(path, body, parts, len(lines))
    for cell in body.cells:
        if cell.options.get("__invalid__"):
            problems.append(
                Problem(path, cell.line + 1, "the cell's option block is not valid YAML")
            )
            continue
        if _PLOT.search(cell.source):
            alt = ((cell.options.get("mystnb") or {}).get("image") or {}).get("alt")
            if not isinstance(alt, str) or not alt.strip():
                problems.append(
                    Problem(
                        path,
                        cell.line,
                        "this cell draws a figure but has no "
                        "alt text: add an option block with mystnb: image: "
                        'alt: "what the figure shows"',
                    )
                )
    if not any(
        re.search(r"^\s*(from initdocs[\w.]* import|import initdocs)", c.source, re.M)
        for c in body.cells
    ):
        problems.append(
            Problem(
                path,
                parts.get("Method", first + 1),
                "no code cell imports "
                "from initdocs: the chapter's implementation lives in "
                "src/initdocs/ and the chapter imports it",
            )
        )
    return sorted(problems, key=lambda p: p.line or 0)


def _typed_numbers(
    path: Path, body: _Body, parts: dict[str, int], end_of_file: int
) -> list[Problem]:
    """Numbers typed by hand in the experiment's prose, alt texts and captions.

    The experiment's results change when its code does; a number typed beside them drifts.
    Inserted values (``{glue:text}``), code, math and citations are not prose and pass.
    """
    problems = []
    starts = sorted(parts.values())
    for part in EXPERIMENT_PARTS:
        if part not in parts:
            continue
        start = parts[part]
        end = next((n for n in starts if n > start), end_of_file + 1)
        texts = [(n, text) for n, text in body.prose if start < n < end]
        for cell in body.cells:
            if start < cell.line < end:
                mystnb = cell.options.get("mystnb") or {}
                for kind in ("image", "figure"):
                    for key in ("alt", "caption"):
                        value = (mystnb.get(kind) or {}).get(key)
                        if isinstance(value, str):
                            texts.append((cell.line, value))
        for number, text in texts:
            for match in _TYPED_NUMBER.finditer(_NOT_PROSE.sub(" ", text)):
                problems.append(
                    Problem(
                        path,
                        number,
                        f"'{match.group().strip()}' is typed in '## {part}', so it drifts when the "
                        "code changes: glue it in the cell that computes it "
                        '(glue("name", value, display=False)) and write {glue:text}`name:.3f`; '
                        "in an alt text say it in words; a paper's number goes to "
                        "'## Results in the paper' with its table",
                    )
                )
    return problems


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
