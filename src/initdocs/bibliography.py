"""Reading and checking the book's BibTeX file, with a line number for every problem.

The book cites from ``references.bib``; readers copy entries from it. :func:`check_bibtex`
holds every entry to the same standard: parseable, no duplicate keys, the fields its type
needs, and well-formed DOIs, arXiv ids, years and pages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from initdocs.sessions import Problem

__all__ = ["REQUIRED_FIELDS", "Entry", "check_bibtex", "parse_bibtex"]

#: Fields every entry of a type must have. "doi|eprint" means at least one of them.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "article": ("author", "title", "journal", "volume", "year", "doi|eprint"),
    "inproceedings": ("author", "title", "booktitle", "year", "doi|eprint"),
    "misc": ("author", "title", "year", "doi|eprint"),
    "phdthesis": ("author", "title", "school", "year"),
    "book": ("author", "title", "publisher", "year"),
}

_DOI = re.compile(r"^10\.\d{4,9}/\S+$")
_ARXIV = re.compile(r"^(\d{4}\.\d{4,5}|[a-z\-]+(\.[A-Z]{2})?/\d{7})(v\d+)?$")
_YEAR = re.compile(r"^(19|20)\d{2}$")
_PAGES = re.compile(r"^\d+(--\d+)?$")


@dataclass
class Entry:
    """One BibTeX entry: its type, key, fields (braces kept) and the line it starts on."""

    type: str
    key: str
    line: int
    fields: dict[str, str] = field(default_factory=dict)
    field_lines: dict[str, int] = field(default_factory=dict)


class _Parser:
    def __init__(self, text: str, path: Path) -> None:
        self.text, self.path, self.pos = text, path, 0
        self.problems: list[Problem] = []

    def line(self, pos: int | None = None) -> int:
        return self.text.count("\n", 0, self.pos if pos is None else pos) + 1

    def fail(self, message: str, pos: int | None = None) -> None:
        self.problems.append(Problem(self.path, self.line(pos), message))

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def braced(self, open_char: str, close_char: str) -> str | None:
        """Text between a balanced pair starting at ``pos``; ``pos`` moves past the closer."""
        depth, start = 0, self.pos
        for i in range(self.pos, len(self.text)):
            if self.text[i] == open_char:
                depth += 1
            elif self.text[i] == close_char:
                depth -= 1
                if depth == 0:
                    self.pos = i + 1
                    return self.text[start + 1 : i]
        return None

    def value(self) -> str | None:
        self.skip_space()
        char = self.text[self.pos : self.pos + 1]
        if char == "{":
            return self.braced("{", "}")
        if char == '"':
            end = self.text.find('"', self.pos + 1)
            if end < 0:
                return None
            value, self.pos = self.text[self.pos + 1 : end], end + 1
            return value
        match = re.compile(r"[A-Za-z0-9_.\-]+").match(self.text, self.pos)
        if not match:
            return None
        self.pos = match.end()
        return match.group()

    def entries(self) -> list[Entry]:
        found: list[Entry] = []
        head = re.compile(r"@(\w+)\s*\{")
        while (match := head.search(self.text, self.pos)) is not None:
            kind, self.pos = match.group(1).lower(), match.end()
            if kind in ("comment", "preamble", "string"):
                self.pos = match.end() - 1
                if self.braced("{", "}") is None:
                    self.fail(f"unclosed @{kind}", match.start())
                    break
                continue
            key_match = re.compile(r"\s*([^\s,{}]+)\s*,").match(self.text, self.pos)
            if not key_match:
                self.fail(f"@{kind} entry without a key: write @{kind}{{key, ...}}", match.start())
                continue
            entry = Entry(kind, key_match.group(1), self.line(match.start()))
            self.pos = key_match.end()
            while True:
                self.skip_space()
                if self.text.startswith("}", self.pos):
                    self.pos += 1
                    break
                name_match = re.compile(r"([A-Za-z][\w\-]*)\s*=").match(self.text, self.pos)
                if not name_match:
                    self.fail(
                        f"entry {entry.key!r}: expected 'field = {{value}}' or the closing "
                        "brace; check the commas and braces before this point"
                    )
                    self.pos = self.text.find("\n@", self.pos) + 1 or len(self.text)
                    break
                name, start = name_match.group(1).lower(), self.pos
                self.pos = name_match.end()
                value = self.value()
                if value is None:
                    self.fail(f"entry {entry.key!r}: field '{name}' has no readable value", start)
                    self.pos = len(self.text)
                    break
                if name in entry.fields:
                    self.fail(f"entry {entry.key!r}: field '{name}' appears twice", start)
                entry.fields[name] = " ".join(value.split())
                entry.field_lines[name] = self.line(start)
                self.skip_space()
                if self.text.startswith(",", self.pos):
                    self.pos += 1
            found.append(entry)
        return found


def parse_bibtex(path: str | Path) -> tuple[list[Entry], list[Problem]]:
    """Entries of a BibTeX file, and the syntax problems met while reading it."""
    path = Path(path)
    parser = _Parser(path.read_text(encoding="utf-8"), path)
    entries = parser.entries()
    return entries, parser.problems


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
    return problems
