"""Where the book's files are, and how a problem in one of them is reported.

The one place that knows the layout of the repository: :class:`Repository` names the session
records, the bibliography and the chapters' folder; every command and the Sphinx build find
them through it. :class:`Problem` is what every check returns: ``path:line: message``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Problem", "Repository", "find_repository"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file of the book, and where."""

    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else f"{self.path}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Repository:
    """Where the book's files live, from the repository's root."""

    root: Path

    @property
    def records(self) -> Path:
        return self.root / "docs" / "sessions.toml"

    @property
    def bibliography(self) -> Path:
        return self.root / "references.bib"

    @property
    def chapters_dir(self) -> Path:
        return self.root / "docs" / "sessions"

    def chapters(self) -> list[Path]:
        return sorted(self.chapters_dir.glob("[0-9][0-9]-*.md"))


def find_repository(start: Path | None = None) -> Repository:
    """The nearest folder at or above ``start`` with ``docs/sessions.toml`` in it."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "docs" / "sessions.toml").is_file():
            return Repository(folder)
    raise FileNotFoundError(
        f"no docs/sessions.toml in {here} or above it: run initdocs inside the book's "
        "repository, or pass --root"
    )
