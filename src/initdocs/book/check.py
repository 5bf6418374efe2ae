"""``initdocs check``: everything a contributor can get wrong, found without building the book.

Used by the command line (:mod:`initdocs.book.cli`), by the docs build
(:mod:`initdocs.book.directives`) and by the tests, so all three apply the same rules.
"""

from __future__ import annotations

from pathlib import Path

from initdocs.book.bibtex import check_bibtex, parse_bibtex
from initdocs.book.chapters import check_chapter, read_text
from initdocs.book.files import Problem, Repository, find_repository
from initdocs.book.records import SessionRecordError, Sessions, load_sessions

__all__ = ["Repository", "check_paths", "find_repository"]


def _load(repo: Repository) -> tuple[Sessions | None, set[str], list[Problem]]:
    problems: list[Problem] = []
    sessions = None
    text, unreadable = read_text(repo.records)
    if text is None:
        problems += unreadable
    else:
        try:
            sessions = load_sessions(repo.records)
        except SessionRecordError as exc:
            problems += exc.problems
    keys: set[str] = set()
    text, unreadable = read_text(repo.bibliography)
    if text is None:
        problems += unreadable
    else:
        keys = {e.key for e in parse_bibtex(repo.bibliography)[0]}
    return sessions, keys, problems


def check_paths(repo: Repository, paths: list[Path] | None = None) -> tuple[list[Problem], int]:
    """Problems of ``paths`` (default: every chapter, the records and the bibliography).

    Returns the problems, sorted by file and line, and how many files were checked.
    """
    sessions, keys, base_problems = _load(repo)
    if not paths:
        paths = [repo.records, repo.bibliography, *repo.chapters()]
    problems: list[Problem] = []
    checked = 0
    for path in paths:
        path = Path(path)
        if path.is_dir():
            inner = sorted(path.glob("[0-9][0-9]-*.md"))
            if not inner:
                problems.append(Problem(path, None, "no chapter files (NN-name.md) in this folder"))
            problems += check_paths(repo, inner)[0] if inner else []
            checked += len(inner)
            continue
        if not path.exists():
            problems.append(
                Problem(
                    path,
                    None,
                    "no such file or folder; give a chapter "
                    "(docs/sessions/NN-name.md), docs/sessions.toml or "
                    "references.bib",
                )
            )
            continue
        checked += 1
        resolved = path.resolve()
        if resolved == repo.records.resolve():
            problems += [p for p in base_problems if p.path == repo.records]
        elif path.suffix == ".bib":
            text, unreadable = read_text(path)
            problems += unreadable if text is None else check_bibtex(path)
        elif path.suffix == ".md":
            session = sessions.by_chapter(path.stem) if sessions else None
            chapter_problems = check_chapter(path, session, keys)
            if sessions is None:  # the records are broken: say so instead of "no record"
                chapter_problems = [p for p in chapter_problems if "no session in" not in p.message]
                chapter_problems += [p for p in base_problems if p.path == repo.records]
            problems += chapter_problems
        else:
            problems.append(
                Problem(
                    path,
                    None,
                    "initdocs check reads chapters (.md), docs/sessions.toml and .bib files",
                )
            )
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (str(p.path), p.line or 0)), checked
