"""Reading and checking the book's BibTeX file, with a line number for every problem.

The book cites from ``references.bib``; readers copy entries from it. The file is read in
one pass by pybtex's BibTeX tokenizer, the parser sphinxcontrib-bibtex builds the book with,
so what BibTeX accepts is accepted here too: braced or quoted values, numbers, ``@string``
macros joined with ``#``, ``@comment`` and ``@preamble``. The tokenizer counts lines as it
goes, which gives every entry and field its line without searching the text again.

:func:`check_bibtex` then holds every entry to the same standard: readable, no duplicate
keys, the fields its type needs, and well-formed DOIs, arXiv ids, years, pages and names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pybtex.bibtex.utils import split_name_list, split_tex_string
from pybtex.database import Person
from pybtex.database.input.bibtex import LowLevelParser, UndefinedMacro, month_names
from pybtex.scanner import PrematureEOF, PybtexSyntaxError
from pybtex.utils import CaseInsensitiveDict

from initdocs.book.files import Problem

__all__ = [
    "REQUIRED_FIELDS",
    "Entry",
    "check_bibtex",
    "entry_source",
    "parse_bibtex",
    "read_bibtex",
]

#: Fields every entry of a type must have. "doi|eprint" means at least one of them.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "article": ("author", "title", "journal", "volume", "year", "doi|eprint"),
    # Proceedings without DOIs or arXiv versions (NIPS before 2007) give their url instead.
    "inproceedings": ("author", "title", "booktitle", "year", "doi|eprint|url"),
    "misc": ("author", "title", "year", "doi|eprint"),
    "phdthesis": ("author", "title", "school", "year"),
    "book": ("author", "title", "publisher", "year"),
}

_DOI = re.compile(r"^10\.\d{4,9}/\S+$")
_ARXIV = re.compile(r"^(\d{4}\.\d{4,5}|[a-z\-]+(\.[A-Z]{2})?/\d{7})(v\d+)?$")
_YEAR = re.compile(r"^(19|20)\d{2}$")
_PAGES = re.compile(r"^\d+(--\d+)?$")
_PERSON_FIELDS = ("author", "editor")

#: A line starting like an entry: where the next one starts when an entry runs on past its end.
_NEXT_COMMAND = re.compile(r"\n[ \t]*@[A-Za-z]+[ \t]*[{(]")
_COMMAND_NAME = re.compile(r"@\s*([^\s{(]*)")


@dataclass
class Entry:
    """One BibTeX entry: its type, key, fields and the line it starts on.

    ``fields`` maps lower-case names to values as BibTeX reads them (macros expanded, ``#``
    joined, inner braces kept, whitespace collapsed); ``field_lines`` gives each field's line.
    ``source`` is the entry exactly as written, from ``@`` to its closing brace, or ``""``
    when the entry has a syntax error.
    """

    type: str
    key: str
    line: int
    fields: dict[str, str] = field(default_factory=dict)
    field_lines: dict[str, int] = field(default_factory=dict)
    source: str = field(default="", repr=False)

    def persons(self, role: str) -> list[Person]:
        """The people of field ``role`` (``"author"``, ``"editor"``), as pybtex names them."""
        return [Person(name) for name in split_name_list(self.fields.get(role, ""))]


class _Reader(LowLevelParser):
    """pybtex's BibTeX tokenizer, noting where entries and fields start.

    pybtex reports syntax errors through :meth:`handle_error`; this reader turns each into a
    :class:`Problem` instead of raising or printing it (pybtex's global strict mode is left
    alone), and after an entry that ran on into the next one it resumes at that next entry.
    """

    def __init__(self, text: str, path: Path) -> None:
        # A fresh macro table: pybtex's default is a module-level dict that @string would grow.
        super().__init__(text, macros=CaseInsensitiveDict(month_names), handle_error=self._error)
        self.path = path
        self.entries: list[Entry] = []
        self.problems: list[Problem] = []
        self.entry_line = self.field_line = 1
        self.field_lines: list[int] = []
        self.stage = "command"
        self.failed = False

    def read(self) -> None:
        """Read the whole text into :attr:`entries` and :attr:`problems`."""
        for command, body in self:
            if command.lower() in ("string", "preamble"):
                continue
            key, fields = body
            if key is None:  # reported by _error
                continue
            entry = Entry(command.lower(), key, self.entry_line)
            for (name, parts), line in zip(fields, self.field_lines, strict=True):
                name = name.lower()
                if name in entry.fields:
                    self.problems.append(
                        Problem(self.path, line, f"entry {key!r}: field '{name}' appears twice")
                    )
                    continue  # BibTeX keeps the first
                entry.fields[name] = " ".join("".join(parts).split())
                entry.field_lines[name] = line
            if not self.failed:
                entry.source = self.text[self.command_start : self.pos]
            self.entries.append(entry)

    # pybtex's parsing steps, wrapped to note where they are.

    def parse_command(self) -> Any:
        self.entry_line, self.field_lines, self.failed = self.lineno, [], False
        self.stage = "command"
        return super().parse_command()

    def parse_string_body(self, body_end: Any) -> None:
        self.stage = "string"
        super().parse_string_body(body_end)

    def parse_preamble_body(self, body_end: Any) -> None:
        self.stage = "preamble"
        super().parse_preamble_body(body_end)

    def parse_entry_body(self, body_end: Any) -> None:
        self.stage = "key"
        super().parse_entry_body(body_end)

    def parse_entry_fields(self) -> None:
        self.stage = "fields"
        super().parse_entry_fields()

    def parse_field(self) -> None:
        self.eat_whitespace()
        self.field_line = self.lineno
        super().parse_field()
        if self.current_field_name:
            self.field_lines.append(self.field_line)

    # Errors.

    def _error(self, error: PybtexSyntaxError) -> None:
        self.failed = True
        line, message = self._describe(error)
        self.problems.append(Problem(self.path, line, message))

    def _describe(self, error: PybtexSyntaxError) -> tuple[int, str]:
        """The line and the message of a pybtex syntax error, saying what to fix."""
        said = str(error.args[0]) if error.args else str(error)
        name_match = _COMMAND_NAME.match(self.text, self.command_start)
        kind = name_match.group(1).lower() if name_match else ""
        key, name = self.current_entry_key, self.current_field_name
        if self.stage == "command":
            found = f"'@{kind}' is not followed by '{{'" if kind else "an '@' without a type"
            return self.entry_line, (
                f"{found}: write @type{{key, ...}} (BibTeX reads every '@' as the start of an "
                "entry, so text outside entries must not have one)"
            )
        if self.stage == "key":
            return self.entry_line, f"@{kind} entry without a key: write @{kind}{{key, ...}}"
        in_entry = self.stage == "fields"
        where = f"entry {key!r}" if in_entry else f"@{kind}"
        if isinstance(error, UndefinedMacro):  # pybtex reports it and reads on
            what = f"field '{name}'" if in_entry else "the value"
            return self.field_line if in_entry else error.lineno, (
                f"{where}: {what} uses {said!r}, which no @string defines; put the value in "
                "braces or quotes"
            )
        # Did it read past a line that starts an entry? (The search stops at the first one.)
        run_on = _NEXT_COMMAND.search(self.text, self.command_start)
        if run_on is not None and run_on.start() >= self.pos:
            run_on = None
        if isinstance(error, PrematureEOF) or run_on is not None:
            if run_on is not None:  # go on reading at the entry it ran into
                resume = run_on.start() + 1
                self.lineno = self.entry_line
                self.update_lineno(self.text[self.command_start : resume])
                self.pos = resume
            end = f"the next entry (line {self.lineno})" if run_on else "the end of the file"
            read = in_entry and name
            last = f" (last field read: '{name}', line {self.field_line})" if read else ""
            return self.entry_line, (
                f"{where}: not closed before {end}; close the '{{' or '\"' left open in "
                f"it{last}, or add its closing '}}'"
            )
        if not in_entry:
            example = "@string{name = {value}}" if kind == "string" else "@preamble{...}"
            return error.lineno, f"{where}: {said}; write {example}"
        if said == "field value expected":
            return error.lineno, f"{where}: field '{name}' has no value: write {name} = {{...}}"
        if said == "'=' expected":
            return error.lineno, f"{where}: expected 'field = {{value}}'; check the '=' signs"
        if said == "unbalanced braces":
            return error.lineno, (
                f"{where}: field '{name}' has a '}}' without its '{{'; balance the braces, or "
                "close the quoted value with '\"'"
            )
        if said in ("'}' expected", "')' expected"):
            return error.lineno, (
                f"{where}: expected ',' or the entry's closing brace here; put a comma "
                "between fields"
            )
        return error.lineno, f"{where}: {said}; check the braces, quotes and commas here"


def read_bibtex(text: str, path: str | Path) -> tuple[list[Entry], list[Problem]]:
    """Entries of BibTeX ``text`` (read from ``path``), and the syntax problems in it."""
    reader = _Reader(text, Path(path))
    reader.read()
    return reader.entries, sorted(reader.problems, key=lambda p: p.line or 0)


def parse_bibtex(path: str | Path) -> tuple[list[Entry], list[Problem]]:
    """Entries of a BibTeX file, and the syntax problems met while reading it."""
    return read_bibtex(Path(path).read_text(encoding="utf-8"), path)


def entry_source(path: str | Path, key: str) -> str | None:
    """Entry ``key`` of the BibTeX file at ``path`` exactly as written, for readers to copy.

    ``None`` when no readable entry has that key (``initdocs check`` says what is wrong).
    """
    for entry in parse_bibtex(path)[0]:
        if entry.key == key and entry.source:
            return entry.source
    return None


def _bad_names(entry: Entry, name: str) -> list[str]:
    """The names in person field ``name`` that BibTeX cannot split (more than two commas)."""
    people = split_name_list(entry.fields.get(name, ""))
    return [person for person in people if len(split_tex_string(person, ",")) > 3]


def check_bibtex(path: str | Path) -> list[Problem]:
    """Every problem of the BibTeX file at ``path`` (an empty list when it is clean)."""
    path = Path(path)
    entries, problems = parse_bibtex(path)
    seen: dict[str, Entry] = {}
    for entry in entries:
        where = f"entry {entry.key!r}"
        if entry.key.lower() in seen:
            first = seen[entry.key.lower()]
            problems.append(
                Problem(
                    path,
                    entry.line,
                    f"{where}: duplicate key (first defined "
                    f"on line {first.line}); rename or remove one",
                )
            )
        else:
            seen[entry.key.lower()] = entry
        if not entry.source:
            continue  # a syntax error, reported already; its fields may be wrong
        required = REQUIRED_FIELDS.get(entry.type)
        if required is None:
            problems.append(
                Problem(
                    path,
                    entry.line,
                    f"{where}: entry type @{entry.type} is not "
                    f"one the book uses ({', '.join(REQUIRED_FIELDS)})",
                )
            )
            continue
        for need in required:
            options = need.split("|")
            if not any(entry.fields.get(o, "").strip() for o in options):
                problems.append(
                    Problem(
                        path,
                        entry.line,
                        f"{where}: @{entry.type} needs the field {' or '.join(options)}",
                    )
                )
        checks = {
            "doi": (_DOI, "a DOI such as 10.1109/CVPR.2017.195 (no https://doi.org/ prefix)"),
            "eprint": (_ARXIV, "an arXiv id such as 1610.02357"),
            "year": (_YEAR, "a four-digit year"),
            "pages": (_PAGES, "a page or a range written 1251--1258"),
        }
        for name, (pattern, expected) in checks.items():
            value = entry.fields.get(name)
            if value is not None and not pattern.match(value):
                problems.append(
                    Problem(
                        path,
                        entry.field_lines[name],
                        f"{where}: field '{name}' is {value!r}; expected {expected}",
                    )
                )
        if "eprint" in entry.fields and entry.fields.get("archiveprefix", "").lower() != "arxiv":
            problems.append(
                Problem(
                    path,
                    entry.field_lines["eprint"],
                    f"{where}: an eprint needs archiveprefix = {{arXiv}}",
                )
            )
        for name in _PERSON_FIELDS:
            for person in _bad_names(entry, name):
                problems.append(
                    Problem(
                        path,
                        entry.field_lines[name],
                        f"{where}: field '{name}' has the name {person!r} with more than two "
                        "commas; write 'Last, First' or 'Last, Jr, First', and put ' and ' "
                        "between people",
                    )
                )
    return problems
