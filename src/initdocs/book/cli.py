"""The ``initdocs`` command: add a session, check chapters, list sessions.

    initdocs new --date 2021-12-12 --paper "..." ...   a new session: record + chapter file
    initdocs chapter NUMBER                            the chapter of a recorded session
    initdocs check [PATH ...]                          check chapters, records, references.bib
    initdocs sessions [--json]                         list the sessions

Exit status: 0 when all went well, 1 when a check found problems, 2 for a usage error, when
the book's tools are not installed (``pip install 'initdocs[docs]'``), when
``new`` or ``chapter`` refused to write (always with a message, and nothing changed unless the
message says so), or when standard output was closed early (``initdocs sessions | head -1``:
the rest of the output is dropped and a note goes to standard error), and 130 after Ctrl-C
outside a prompt.

``new`` and ``chapter`` are safe against crashes and against each other: they hold a lock
beside ``docs/sessions.toml`` while they read, check and write; each file is written to a
temporary file and renamed into place in one step; ``new`` writes the record first, then the
chapter, and rerunning a ``new`` that was killed midway finishes its work.
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import json
import os
import re
import sys
import tempfile
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from initdocs import __version__
from initdocs.book.files import Problem, Repository, find_repository
from initdocs.book.safe_files import (
    LockTimeout,
    StagedFile,
    atomic_write,
    crash_point,
    exclusive_lock,
    remove_leftovers,
)

# The book's tools (PyYAML, pybtex, ...) come with the `docs` extra, not with a reader's
# `pip install initdocs`: without them, main() says what to install instead of a traceback.
_missing_tool: ModuleNotFoundError | None = None


def _missing_module(exc: ModuleNotFoundError) -> str:
    """The top-level package that ``exc`` found missing; a missing part of initdocs is a bug."""
    name = (exc.name or "initdocs").split(".")[0]
    if name == "initdocs":
        raise exc
    return name


try:
    from initdocs.book.bibtex import parse_bibtex
    from initdocs.book.chapters import render_template
    from initdocs.book.check import check_paths
    from initdocs.book.records import Session, SessionRecordError, Sessions, load_sessions
except ModuleNotFoundError as exc:
    _missing_module(exc)
    _missing_tool = exc

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
    """``value`` as a TOML basic string: JSON's escapes, plus DEL, which JSON leaves raw and
    TOML forbids (so the records check, not the TOML reader, explains a control character)."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


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


def _ask(name: str) -> str | dt.date:
    """Ask for one required field at the terminal; ask again (up to 3 times) if it is wrong."""
    option = "--" + name.replace("_", "-")
    problem = ""
    for _ in range(3):
        try:
            answer = input(f"{_NEW_REQUIRED[name]}: ").strip()
        except (EOFError, KeyboardInterrupt):
            raise UsageError(f"no answer for {option}; nothing was written") from None
        if not answer:
            problem = f"{option} is required"
        elif name == "date":
            try:
                return _date(answer)
            except argparse.ArgumentTypeError as exc:
                problem = str(exc)
        else:
            return answer
        print(problem, file=sys.stderr)
    raise UsageError(f"{problem}; nothing was written")


def _ask_missing(args: argparse.Namespace) -> None:
    missing = [name for name in _NEW_REQUIRED if not getattr(args, name)]
    if not missing:
        return
    if not sys.stdin.isatty():
        options = ", ".join("--" + name.replace("_", "-") for name in missing)
        raise UsageError(f"missing {options}; give them as options (see initdocs new --help)")
    for name in missing:
        setattr(args, name, _ask(name))


#: How long ``new`` and ``chapter`` wait for another initdocs command to finish writing.
LOCK_TIMEOUT = 10.0
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_SLUG_MAX = 60
#: The names of chapter files, as a regular expression (their leftover temporary files go).
_CHAPTER_NAMES = r"\d{2}-[a-z0-9-]+\.md"


def _check_options(args: argparse.Namespace) -> None:
    """Refuse a bad ``--number`` or ``--slug`` before anything is read or written."""
    if args.number is not None and args.number < 1:
        raise UsageError(
            f"--number {args.number} is not a session number: sessions count from 1 "
            "(leave --number out for the next free one)"
        )
    if args.slug is None:
        return
    shown = args.slug if len(args.slug) <= 30 else args.slug[:30] + "..."
    if len(args.slug) > _SLUG_MAX:
        raise UsageError(
            f"--slug {shown!r} is {len(args.slug)} characters long; keep it to at most "
            f"{_SLUG_MAX}, e.g. --slug resnet"
        )
    if not _SLUG.fullmatch(args.slug):
        raise UsageError(
            f"--slug {shown!r}: use lower-case letters and digits, words joined by single "
            "hyphens, e.g. --slug squeeze-excitation"
        )


def _os_problem(exc: OSError) -> tuple[str, str]:
    """What went wrong writing a file, and what to do about it, for an error message."""
    path = Path(exc.filename) if exc.filename else None
    where = f"{_shown(path)}: " if path else ""
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return f"{where}no space left on the disk", "free some space, then run the same command"
    if isinstance(exc, PermissionError) or exc.errno == errno.EROFS:
        folder = _shown(path.parent) if path else "the book's folders"
        return (
            f"{where}not allowed to write here (a read-only folder or file system?)",
            f"make {folder} writable, or work in a copy you can write to",
        )
    if exc.errno == errno.ENAMETOOLONG:
        return f"{where}the file name is too long for this file system", "choose a shorter --slug"
    if exc.errno == errno.ELOOP and path:
        return f"{_shown(path)} is a symbolic link where initdocs keeps a file", "remove the link"
    return f"{where}{exc.strerror or exc}", "fix that, then run the same command again"


def _refusal(exc: OSError) -> UsageError:
    """The refusal for an error that came before any of the user's files changed."""
    problem, advice = _os_problem(exc)
    return UsageError(f"{problem}; nothing was changed. To go on: {advice}")


@contextmanager
def _writing(repo: Repository) -> Iterator[None]:
    """Hold the records' lock for the block, first clearing what killed commands left behind.

    The lock file, ``.sessions.toml.lock``, lies beside the file the records really are in (a
    symlinked ``docs/sessions.toml`` is followed) and exists only while a command holds it.
    """
    records = Path(os.path.realpath(repo.records))
    crash_point("before-lock")
    try:
        with exclusive_lock(records.with_name(f".{records.name}.lock"), LOCK_TIMEOUT):
            crash_point("after-lock")
            remove_leftovers(records.parent, re.escape(records.name))
            remove_leftovers(repo.chapters_dir, _CHAPTER_NAMES)
            yield
    except LockTimeout:
        raise UsageError(
            f"another initdocs command is writing {repo.records.relative_to(repo.root)}; try again"
        ) from None


def _load_for_writing(repo: Repository) -> tuple[bytes, Sessions]:
    """The records' bytes, exactly, and the sessions they hold."""
    try:
        return repo.records.read_bytes(), load_sessions(repo.records)
    except SessionRecordError as exc:
        raise UsageError(f"fix the existing records first:\n{exc}") from None
    except UnicodeDecodeError:
        raise UsageError(
            f"fix the existing records first:\n{_shown(repo.records)}: not UTF-8 text; save "
            "the file with UTF-8 encoding"
        ) from None


def _chapter_name(args: argparse.Namespace, number: int) -> str:
    return f"{number:02d}-{args.slug or slugify(args.paper)}"


def _earlier_run(args: argparse.Namespace, sessions: Sessions, raw: bytes) -> Session | None:
    """The session that an earlier run of this very command recorded, if there is one.

    Its record must be exactly the one this command would write; then rerunning the command
    finishes that run (a ``kill -9`` can stop ``new`` between the record and the chapter).
    """
    same_day = next((s for s in sessions if s.date == args.date), None)
    if same_day is None or args.number not in (None, same_day.number):
        return None
    chapter = _chapter_name(args, same_day.number)
    wanted = tomllib.loads(_record(args, same_day.number, chapter))["session"][0]
    records = tomllib.loads(raw.decode("utf-8"))["session"]
    recorded = next(r for r in records if r.get("number") == same_day.number)
    return same_day if recorded == wanted else None


def _next_steps(args: argparse.Namespace, repo: Repository, chapter_path: Path) -> None:
    steps = ["replace every [[write: ...]] in the chapter"]
    if not _has_entry(repo.bibliography, args.key):
        steps.insert(0, f"add the BibTeX entry '{args.key}' to references.bib")
    check = f"initdocs check {chapter_path.relative_to(repo.root)}"
    print(f"next: {', '.join(steps)}, then run: {check}")
    print(
        f"preview it as you write, markers and all: nox -s preview -- {chapter_path.stem} "
        f"(opens as docs/_build/preview/html/sessions/{chapter_path.stem}.html)"
    )


def _has_entry(bibliography: Path, key: str) -> bool:
    """Whether ``bibliography`` already has an entry with ``key`` (no, if it is missing)."""
    try:
        entries, _ = parse_bibtex(bibliography)
    except (OSError, UnicodeDecodeError):  # missing or unreadable: `initdocs check` says so
        return False
    return any(entry.key == key for entry in entries)


def _finish_earlier_run(args: argparse.Namespace, repo: Repository, session: Session) -> int:
    path = repo.chapters_dir / f"{session.chapter}.md"
    shown = path.relative_to(repo.root)
    if os.path.lexists(path):
        print(
            f"nothing to do: session {session.number} is already in "
            f"{repo.records.relative_to(repo.root)} and {shown} exists, as this command "
            "would make them"
        )
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(path, render_template(session), exclusive=True)
    except OSError as exc:
        raise _refusal(exc) from None
    args.written = True
    print(
        f"completed an interrupted initdocs new: session {session.number} was already in "
        f"{repo.records.relative_to(repo.root)}; created {shown}"
    )
    _next_steps(args, repo, path)
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    repo = _repository(args)
    _check_options(args)
    _ask_missing(args)
    try:
        with _writing(repo):
            return _new(args, repo)
    except BrokenPipeError:  # printing the report: main says so
        raise
    except OSError as exc:  # raised before anything was written: _new reports later ones
        raise _refusal(exc) from None


def _new(args: argparse.Namespace, repo: Repository) -> int:
    """``initdocs new`` while holding the lock: check everything, then write."""
    raw, sessions = _load_for_writing(repo)
    earlier = _earlier_run(args, sessions, raw)
    if earlier is not None:
        return _finish_earlier_run(args, repo, earlier)
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
    chapter = _chapter_name(args, number)
    chapter_path = repo.chapters_dir / f"{chapter}.md"
    if os.path.lexists(chapter_path):  # lexists: a dangling symlink is taken too
        raise UsageError(
            f"{chapter_path} already exists and initdocs new never overwrites; "
            "edit it, or choose another --slug"
        )

    new = raw.decode("utf-8").rstrip("\n") + "\n\n" + _record(args, number, chapter)
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
    assert session is not None

    made_folder = not chapter_path.parent.is_dir()
    chapter_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Both files go to disk first, so a full disk or a read-only folder stops here.
        with (
            StagedFile(
                chapter_path, render_template(session), exclusive=True, label="chapter"
            ) as staged_chapter,
            StagedFile(repo.records, new, label="record") as staged_record,
        ):
            staged_record.commit()
            crash_point("after-record")
            _commit_chapter(staged_chapter, repo, raw, number)
            crash_point("after-chapter")
    except BaseException:
        if made_folder:
            with suppress(OSError):
                chapter_path.parent.rmdir()
        raise
    args.written = True
    print(
        f"created {chapter_path.relative_to(repo.root)} and session {number} in "
        f"{repo.records.relative_to(repo.root)}"
    )
    _next_steps(args, repo, chapter_path)
    return 0


def _commit_chapter(staged: StagedFile, repo: Repository, raw: bytes, number: int) -> None:
    """Put the new chapter in place; if that fails, put back the records as they were."""
    try:
        staged.commit()
    except BaseException as exc:
        try:
            atomic_write(repo.records, raw)
        except OSError:
            if not isinstance(exc, OSError):
                raise
            outcome = (
                f"session {number} is in {repo.records.relative_to(repo.root)} but its "
                "chapter was not written, and putting back the records failed too"
            )
            advice = "fix that, then run the same command again: it writes just the chapter"
            problem = _os_problem(exc)[0]
            raise UsageError(f"{problem}; {outcome}. To go on: {advice}") from None
        if isinstance(exc, FileExistsError):
            raise UsageError(
                f"{staged.target} appeared while initdocs new was writing, and it never "
                "overwrites; nothing was changed. Edit that file, or choose another --slug"
            ) from None
        if isinstance(exc, OSError):
            raise _refusal(exc) from None
        raise


def cmd_chapter(args: argparse.Namespace) -> int:
    """Create the chapter of a session that already has a record (sessions 2 to 11, say)."""
    repo = _repository(args)
    try:
        with _writing(repo):
            return _chapter(args, repo)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise _refusal(exc) from None


def _chapter(args: argparse.Namespace, repo: Repository) -> int:
    _, sessions = _load_for_writing(repo)
    session = next((s for s in sessions if s.number == args.number), None)
    if session is None:
        raise UsageError(
            f"no session {args.number} in {repo.records}; add a new session with initdocs new"
        )
    path = repo.chapters_dir / f"{session.chapter}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(path, render_template(session), exclusive=True)
    except FileExistsError:
        raise UsageError(
            f"{_shown(path)} already exists and is never overwritten; edit it"
        ) from None
    args.written = True
    print(f"created {_shown(path)} for session {session.number} ({session.paper})")
    print(f"next: replace every [[write: ...]] in it, then run: initdocs check {_shown(path)}")
    return 0


def _shown(path: Path) -> Path:
    """``path`` relative to the current folder when it lies inside it, as people type paths.

    A symlink is shown by its own name, not by the name of the file it points to."""
    try:
        return (path.parent.resolve() / path.name).relative_to(Path.cwd().resolve())
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
    except UnicodeDecodeError:
        print(
            f"{_shown(repo.records)}: not UTF-8 text; save it with UTF-8 encoding", file=sys.stderr
        )
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


def _say(message: str) -> None:
    """Print ``message`` to standard error, unless that is a closed pipe too."""
    try:
        print(message, file=sys.stderr, flush=True)
    except (BrokenPipeError, ValueError):
        _to_devnull(sys.stderr)


def _to_devnull(stream: object) -> None:
    """Point ``stream``'s file descriptor at the null device, so that Python's final flush of a
    closed pipe neither fails nor prints a traceback at exit."""
    try:
        fd = stream.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return  # not a real file (e.g. captured by a test): nothing is flushed to a pipe
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = f"initdocs {args.command}"
    try:
        if _missing_tool is not None:
            raise _missing_tool
        code = args.func(args)
        sys.stdout.flush()  # here, so that a closed pipe is reported below, not at exit
        return code
    except UsageError as exc:
        _say(f"{prefix}: {exc}")
        return 2
    except ModuleNotFoundError as exc:  # an install without the `docs` extra
        _say(
            f"{prefix} needs the book's tools (no module named {_missing_module(exc)!r}): "
            "pip install 'initdocs[docs]'"
        )
        return 2
    except BrokenPipeError:  # e.g. initdocs sessions | head -1: the reader stopped reading
        _to_devnull(sys.stdout)
        done = "; the files were written" if getattr(args, "written", False) else ""
        _say(f"{prefix}: standard output was closed early, the rest of it was dropped{done}")
        return 2
    except KeyboardInterrupt:
        done = "; the files were written" if getattr(args, "written", False) else ""
        _say(f"{prefix}: interrupted{done}")
        return 130
    except OSError as exc:  # e.g. a file that cannot be read
        where = f"{_shown(Path(exc.filename))}: " if exc.filename else ""
        _say(f"{prefix}: {where}{exc.strerror or exc}")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
