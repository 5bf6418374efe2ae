"""The ``initdocs`` command: add a session, check chapters, list sessions.

    initdocs new --date 2021-12-12 --paper "..." ...   a new session: record + chapter file
    initdocs chapter NUMBER                            the chapter of a recorded session
    initdocs check [PATH ...]                          check chapters, records, references.bib
    initdocs sessions [--json]                         list the sessions

Exit status: 0 when all went well, 1 when a check found problems, 2 for a usage error or
when ``new`` refused to write.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from initdocs import __version__
from initdocs.chapters import render_template
from initdocs.check import Repository, check_paths, find_repository
from initdocs.sessions import Problem, SessionRecordError, load_sessions

__all__ = ["main"]


class UsageError(Exception):
    """A problem with what the user asked for; the message says what to do."""


def _repository(args: argparse.Namespace) -> Repository:
    if args.root:
        root = Path(args.root)
        if not (root / "docs" / "sessions.toml").is_file():
            raise UsageError(
                f"{root}: no docs/sessions.toml here; --root must be the book's repository"
            )
        return Repository(root)
    try:
        return find_repository()
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None


def slugify(text: str, max_length: int = 40) -> str:
    """``"Squeeze-and-Excitation Networks"`` -> ``"squeeze-and-excitation-networks"``."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if len(slug) > max_length:
        slug = slug[:max_length].rsplit("-", 1)[0]
    return slug or "session"


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _record(args: argparse.Namespace, number: int, chapter: str) -> str:
    lines = [
        "[[session]]",
        f"number = {number}",
        f"date = {args.date}",
        f"topic = {_toml_string(args.topic)}",
        f"paper = {_toml_string(args.paper)}",
        f"title = {_toml_string(args.title)}",
        f"paper_key = {_toml_string(args.key)}",
        f"paper_url = {_toml_string(args.paper_url)}",
        f"chapter = {_toml_string(chapter)}",
    ]
    if args.builds_on:
        items = (item if isinstance(item, int) else _toml_string(item) for item in args.builds_on)
        lines.append(f"builds_on = [{', '.join(map(str, items))}]")
    presenter = f"name = {_toml_string(args.presenter)}"
    if args.presenter_url:
        presenter += f", url = {_toml_string(args.presenter_url)}"
    lines.append(f"presenter = {{ {presenter} }}")
    if args.link:
        lines.append("links = [")
        for label, url in args.link:
            lines.append(f"  {{ label = {_toml_string(label)}, url = {_toml_string(url)} }},")
        lines.append("]")
    if args.video:
        lines.append(f"video = {_toml_string(args.video)}")
    return "\n".join(lines) + "\n"


def _link(text: str) -> tuple[str, str]:
    label, sep, url = text.partition("=")
    if not sep or not label.strip() or not url.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r}: write a link as LABEL=URL, e.g. Slides=https://example.org/slides.pdf"
        )
    return label.strip(), url.strip()


def _builds_on(text: str) -> list[int | str]:
    """``"6,he2016deep"`` -> ``[6, "he2016deep"]``: session numbers and BibTeX keys."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    return [int(item) if item.isdigit() else item for item in items]


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date: write YYYY-MM-DD, e.g. 2021-12-12"
        ) from None


_NEW_REQUIRED = {
    "date": "date of the session (YYYY-MM-DD)",
    "title": "the paper's full title",
    "paper": "a short name for the paper, as in the sessions table",
    "topic": 'the session\'s topic, e.g. "CV: Object Detection"',
    "key": "the paper's BibTeX key in references.bib, e.g. liu2016ssd",
    "paper_url": "where to read the paper, e.g. https://arxiv.org/abs/1512.02325",
    "presenter": "the presenter's name",
}


def _ask_missing(args: argparse.Namespace) -> None:
    missing = [name for name in _NEW_REQUIRED if not getattr(args, name)]
    if not missing:
        return
    if not sys.stdin.isatty():
        options = ", ".join("--" + name.replace("_", "-") for name in missing)
        raise UsageError(f"missing {options}; give them as options (see initdocs new --help)")
    for name in missing:
        answer = input(f"{_NEW_REQUIRED[name]}: ").strip()
        setattr(args, name, _date(answer) if name == "date" else answer)


def cmd_new(args: argparse.Namespace) -> int:
    repo = _repository(args)
    _ask_missing(args)
    try:
        sessions = load_sessions(repo.records)
    except SessionRecordError as exc:
        raise UsageError(f"fix the existing records first:\n{exc}") from None
    numbers = {s.number for s in sessions}
    number = args.number or max(numbers, default=0) + 1
    if number in numbers:
        taken = next(s for s in sessions if s.number == number)
        raise UsageError(
            f"session {number} already exists ({taken.paper}, {taken.date}); "
            "pick another --number or leave it out for the next free one"
        )
    same_day = next((s for s in sessions if s.date == args.date), None)
    if same_day is not None:
        raise UsageError(
            f"session {same_day.number} ({same_day.paper}) is already on "
            f"{args.date}; one session per date"
        )
    chapter = f"{number:02d}-{args.slug or slugify(args.paper)}"
    chapter_path = repo.chapters_dir / f"{chapter}.md"
    if chapter_path.exists():
        raise UsageError(
            f"{chapter_path} already exists and initdocs new never overwrites; "
            "edit it, or choose another --slug"
        )

    old = repo.records.read_text(encoding="utf-8")
    new = old.rstrip("\n") + "\n\n" + _record(args, number, chapter)
    with tempfile.TemporaryDirectory() as tmp:  # validate the result before touching anything
        trial = Path(tmp) / "sessions.toml"
        trial.write_text(new, encoding="utf-8")
        try:
            session = load_sessions(trial, repo.bibliography).by_chapter(chapter)
        except SessionRecordError as exc:
            problems = [Problem(repo.records, p.line, p.message) for p in exc.problems]
            raise UsageError(
                "the new record would be invalid, nothing was written:\n"
                + "\n".join(map(str, problems))
            ) from None

    chapter_path.parent.mkdir(parents=True, exist_ok=True)
    with chapter_path.open("x", encoding="utf-8") as handle:  # "x": fail rather than overwrite
        handle.write(render_template(session))
    try:
        temporary = repo.records.with_name(repo.records.name + ".tmp")
        temporary.write_text(new, encoding="utf-8")
        os.replace(temporary, repo.records)
    except OSError:
        chapter_path.unlink()
        raise
    print(
        f"created {chapter_path.relative_to(repo.root)} and session {number} in "
        f"{repo.records.relative_to(repo.root)}"
    )
    print(
        "next: add the BibTeX entry "
        f"'{args.key}' to references.bib, replace every [[write: ...]] in the chapter, then "
        f"run: initdocs check {chapter_path.relative_to(repo.root)}"
    )
    return 0


def cmd_chapter(args: argparse.Namespace) -> int:
    """Create the chapter of a session that already has a record (sessions 2 to 11, say)."""
    repo = _repository(args)
    try:
        sessions = load_sessions(repo.records)
    except SessionRecordError as exc:
        raise UsageError(f"fix the records first:\n{exc}") from None
    session = next((s for s in sessions if s.number == args.number), None)
    if session is None:
        raise UsageError(
            f"no session {args.number} in {repo.records}; add a new session with initdocs new"
        )
    path = repo.chapters_dir / f"{session.chapter}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x", encoding="utf-8") as handle:  # "x": fail rather than overwrite
            handle.write(render_template(session))
    except FileExistsError:
        raise UsageError(
            f"{_shown(path)} already exists and is never overwritten; edit it"
        ) from None
    print(f"created {_shown(path)} for session {session.number} ({session.paper})")
    print(f"next: replace every [[write: ...]] in it, then run: initdocs check {_shown(path)}")
    return 0


def _shown(path: Path) -> Path:
    """``path`` relative to the current folder when it lies inside it, as people type paths."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def cmd_check(args: argparse.Namespace) -> int:
    repo = _repository(args)
    problems, checked = check_paths(repo, [Path(p) for p in args.paths])
    for problem in problems:
        print(Problem(_shown(problem.path), problem.line, problem.message))
    if problems:
        files = len({p.path for p in problems})
        print(f"initdocs check: {len(problems)} problem(s) in {files} file(s)", file=sys.stderr)
        return 1
    print(f"initdocs check: {checked} file(s) checked, no problems", file=sys.stderr)
    return 0


def cmd_sessions(args: argparse.Namespace) -> int:
    repo = _repository(args)
    try:
        sessions = load_sessions(repo.records)
    except SessionRecordError as exc:
        print(exc, file=sys.stderr)
        return 1
    rows = []
    for s in sessions:
        exists = (repo.chapters_dir / f"{s.chapter}.md").is_file()
        rows.append(
            {
                "number": s.number,
                "date": s.date.isoformat(),
                "start": sessions.start(s).isoformat(),
                "topic": s.topic,
                "paper": s.paper,
                "title": s.title,
                "paper_key": s.paper_key,
                "paper_url": s.paper_url,
                "presenter": {"name": s.presenter.name, "url": s.presenter.url},
                "links": [{"label": link.label, "url": link.url} for link in s.links],
                "video": s.video,
                "builds_on": list(s.builds_on),
                "chapter": s.chapter,
                "chapter_written": exists,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    header = ("#", "date", "paper", "presenter", "chapter")
    table = [header] + [
        (
            str(r["number"]),
            r["date"],
            r["paper"],
            r["presenter"]["name"],
            r["chapter"] if r["chapter_written"] else "(not written)",
        )
        for r in rows
    ]
    widths = [min(max(len(row[i]) for row in table), 40) for i in range(len(header))]
    for row in table:
        cells = (cell[:40].ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="initdocs",
        description="Add and check the chapters of the MLT __init__ book.",
    )
    parser.add_argument("--version", action="version", version=f"initdocs {__version__}")
    parser.add_argument("--root", help="the book's repository (default: found from here)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    new = commands.add_parser(
        "new",
        help="add a session: its record and a chapter from the template",
        description="Append the session's record to docs/sessions.toml and create "
        "docs/sessions/NN-slug.md from the chapter template. Never overwrites; writes "
        "nothing when anything is wrong.",
    )
    new.add_argument("--number", type=int, help="session number (default: the next free one)")
    new.add_argument("--date", type=_date, help=_NEW_REQUIRED["date"])
    new.add_argument("--title", help=_NEW_REQUIRED["title"])
    new.add_argument("--paper", help=_NEW_REQUIRED["paper"])
    new.add_argument("--topic", help=_NEW_REQUIRED["topic"])
    new.add_argument("--key", help=_NEW_REQUIRED["key"])
    new.add_argument("--paper-url", help=_NEW_REQUIRED["paper_url"])
    new.add_argument("--presenter", help=_NEW_REQUIRED["presenter"])
    new.add_argument("--presenter-url", help="a page of the presenter (optional)")
    new.add_argument("--slug", help="short name in the file name (default: from --paper)")
    new.add_argument(
        "--link",
        type=_link,
        action="append",
        metavar="LABEL=URL",
        help="slides, code or a notebook; repeat for several",
    )
    new.add_argument("--video", help="the recording (optional)")
    new.add_argument(
        "--builds-on",
        type=_builds_on,
        metavar="N,KEY,...",
        help="earlier sessions and references.bib keys the paper builds on, e.g. 6,he2016deep",
    )
    new.set_defaults(func=cmd_new)

    chapter = commands.add_parser(
        "chapter",
        help="create the chapter of a session that already has a record",
        description="Create docs/sessions/NN-name.md from the chapter template for a session "
        "already recorded in docs/sessions.toml. Never overwrites.",
    )
    chapter.add_argument("number", type=int, help="the session's number")
    chapter.set_defaults(func=cmd_chapter)

    check = commands.add_parser(
        "check",
        help="check chapters, the session records and references.bib",
        description="Check without building. With no PATH: every chapter, "
        "docs/sessions.toml and references.bib. Prints each problem as path:line: message.",
    )
    check.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to check")
    check.set_defaults(func=cmd_check)

    listing = commands.add_parser(
        "sessions",
        help="list the sessions",
        description="List the sessions from docs/sessions.toml.",
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(func=cmd_sessions)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"initdocs {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
