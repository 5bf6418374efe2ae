"""``initdocs new`` under hostile conditions: crashes, two commands at once, full disks,
read-only folders, symlinks, bad answers at the prompt and closed pipes.

Each refusal is checked for its exit status, its message and that no file changed. Faults the
test machine cannot produce for real are simulated by making the system call fail as it
would (``monkeypatch``); crashes are real: a subprocess kills itself with SIGKILL at a named
point (the test hook :func:`initdocs.book.safe_files.crash_point`).
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import BIB, DOCS, RECORDS
from test_cli import NEW, run, snapshot

from initdocs.book import cli
from initdocs.book.cli import main
from initdocs.book.files import Repository
from initdocs.book.records import load_sessions
from initdocs.book.safe_files import atomic_write, exclusive_lock

SRC = Path(__file__).resolve().parents[1] / "src"
LOCK = ".sessions.toml.lock"
NOTHING_CHANGED = "nothing was changed"


def copy_book(root: Path) -> Repository:
    """A copy of the book's sources in ``root``: records, bibliography, the Xception chapter."""
    (root / "docs" / "sessions").mkdir(parents=True)
    shutil.copy(BIB, root / "references.bib")
    shutil.copy(RECORDS, root / "docs" / "sessions.toml")
    shutil.copy(DOCS / "sessions" / "01-xception.md", root / "docs" / "sessions")
    return Repository(root)


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return copy_book(tmp_path / "book")


def files(repo: Repository) -> dict[str, bytes]:
    """Every file of ``repo`` by its path inside it, to compare two copies of the book."""
    return {k[len(str(repo.root)) :]: v for k, v in snapshot(repo).items()}


def uninterrupted(tmp_path: Path, *args: str) -> dict[str, bytes]:
    """The files after the command ran from start to end in a fresh copy of the book."""
    reference = copy_book(tmp_path / "reference")
    assert main(["--root", str(reference.root), *args]) == 0
    return files(reference)


def with_option(option: str, value: str) -> list[str]:
    args = list(NEW)
    args[args.index(option) + 1] = value
    return args


def refuses(repo: Repository, capsys, args: list[str], *expected: str) -> str:
    """Run ``args``; assert exit 2, every ``expected`` piece of message, and no file changed."""
    before = snapshot(repo)
    code, out, err = run(repo, capsys, *args)
    assert code == 2, (out, err)
    assert f"initdocs {args[0]}: " in err, err
    for piece in expected:
        assert piece in err
    assert "Traceback" not in err
    assert snapshot(repo) == before
    return err


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("INITDOCS_TEST_CRASH_AT", None)
    return {**env, **extra}


def command(repo: Repository, *args: str) -> list[str]:
    return [sys.executable, "-m", "initdocs.book.cli", "--root", str(repo.root), *args]


# -- options refused before anything is read or written -------------------------------------


@pytest.mark.parametrize("number", ["0", "-3"])
def test_number_zero_or_negative_is_refused_not_ignored(repo, capsys, number):
    refuses(repo, capsys, [*NEW, "--number", number], f"--number {number} is not a session")


def test_too_long_slug_is_refused(repo, capsys):
    slug = "a-very-long-name" * 5
    refuses(repo, capsys, [*NEW, "--slug", slug], "is 80 characters long; keep it to at most 60")


@pytest.mark.parametrize("slug", ["My Slug", "../escape", "resnet--v2", "-resnet"])
def test_slug_that_is_not_a_file_name_slug_is_refused(repo, capsys, slug):
    refuses(repo, capsys, [*NEW, f"--slug={slug}"], "use lower-case letters and digits")


def test_file_name_too_long_for_the_file_system(repo, capsys, monkeypatch):
    real = tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        if kwargs.get("prefix", "").startswith(".12-"):
            raise OSError(errno.ENAMETOOLONG, "File name too long")
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    refuses(repo, capsys, NEW, "12-resnet.md: the file name is too long", "shorter --slug")


# -- read-only folders and full disks ----------------------------------------------------------


@pytest.fixture
def read_only(monkeypatch):
    """Make folders read-only: ``read_only(folder)``.

    The tests run as root, whom ``chmod`` does not stop, so besides the ``chmod`` the system
    calls that create, replace or remove a file in such a folder raise PermissionError, as they
    do for anyone else. (Run as another user, the ``chmod`` alone does it.)
    """
    folders: list[str] = []
    changed: list[tuple[Path, int]] = []
    real = {name: getattr(os, name) for name in ("open", "link", "replace", "unlink", "mkdir")}

    def blocked(path) -> bool:
        return os.path.dirname(os.path.realpath(path)) in folders

    def refuse(path) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR) and blocked(path):
            refuse(path)
        return real["open"](path, flags, *args, **kwargs)

    def two_paths(name: str):
        def call(source, target, *args, **kwargs):
            if blocked(source) or blocked(target):
                refuse(target)
            return real[name](source, target, *args, **kwargs)

        return call

    def one_path(name: str):
        def call(path, *args, **kwargs):
            if blocked(path):
                refuse(path)
            return real[name](path, *args, **kwargs)

        return call

    monkeypatch.setattr(os, "open", os_open)
    for name in ("link", "replace"):
        monkeypatch.setattr(os, name, two_paths(name))
    for name in ("unlink", "mkdir"):
        monkeypatch.setattr(os, name, one_path(name))

    def make(folder: Path) -> None:
        changed.append((folder, folder.stat().st_mode))
        folder.chmod(0o555)
        folders.append(os.path.realpath(folder))

    yield make
    for folder, mode in changed:
        folder.chmod(mode)


def test_read_only_docs_folder(repo, capsys, read_only):
    read_only(repo.root / "docs")
    refuses(
        repo,
        capsys,
        NEW,
        "not allowed to write here (a read-only folder or file system?)",
        NOTHING_CHANGED,
        f"make {repo.root / 'docs'} writable",
    )


def test_read_only_chapters_folder_leaves_the_records_alone(repo, capsys, read_only):
    read_only(repo.chapters_dir)
    refuses(repo, capsys, NEW, "12-resnet.md: not allowed to write here", NOTHING_CHANGED)


def test_disk_full_while_writing_the_records(repo, capsys, monkeypatch):
    real_mkstemp, real_fsync = tempfile.mkstemp, os.fsync
    records_fds: set[int] = set()

    def mkstemp(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        if kwargs.get("prefix") == ".sessions.toml.":
            records_fds.add(fd)
        return fd, name

    def fsync(fd: int) -> None:
        if fd in records_fds:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(os, "fsync", fsync)
    refuses(repo, capsys, NEW, "sessions.toml: no space left on the disk", NOTHING_CHANGED)


def test_disk_full_when_renaming_the_records_into_place(repo, capsys, monkeypatch):
    def replace(source, target):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", replace)
    refuses(repo, capsys, NEW, "no space left on the disk", NOTHING_CHANGED, "free some space")


def test_chapter_that_cannot_be_put_in_place_puts_the_records_back(repo, capsys, monkeypatch):
    def link(source, target):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "link", link)
    refuses(repo, capsys, NEW, "12-resnet.md: Input/output error", NOTHING_CHANGED)


def test_when_putting_back_the_records_fails_too_the_message_says_so(repo, capsys, monkeypatch):
    """The one case that leaves a change: a record without its chapter, which the same
    command, run again, completes."""
    real_replace = os.replace
    calls: list[str] = []

    def replace(source, target):
        calls.append(str(target))
        if len(calls) > 1:  # the first puts the new record in place, the second would undo it
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(source, target)

    def link(source, target):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "link", link)
    code, _, err = run(repo, capsys, *NEW)
    assert code == 2 and "Traceback" not in err
    assert "12-resnet.md: Input/output error; session 12 is in docs/sessions.toml but its " in err
    assert "putting back the records failed too" in err and "writes just the chapter" in err
    monkeypatch.undo()
    code, out, _ = run(repo, capsys, *NEW)
    assert code == 0 and out.startswith("completed an interrupted initdocs new")


def test_chapter_appearing_meanwhile_is_not_overwritten(repo, capsys, monkeypatch):
    """An editor saves the chapter's file between the check and the write: it is kept."""
    chapter = repo.chapters_dir / "12-resnet.md"
    real_link = os.link

    def link(source, target):
        chapter.write_text("# Mine\n", encoding="utf-8")
        return real_link(source, target)

    records = repo.records.read_bytes()
    monkeypatch.setattr(os, "link", link)
    code, _, err = run(repo, capsys, *NEW)
    assert code == 2
    assert "12-resnet.md appeared while initdocs new was writing" in err and NOTHING_CHANGED in err
    assert repo.records.read_bytes() == records
    assert chapter.read_text(encoding="utf-8") == "# Mine\n"
    assert sorted(p.name for p in repo.chapters_dir.iterdir()) == ["01-xception.md", chapter.name]


# -- symlinks and permissions -----------------------------------------------------------------


def test_symlinked_records_update_their_target(repo, capsys, tmp_path):
    target = tmp_path / "elsewhere" / "sessions.toml"
    target.parent.mkdir()
    shutil.move(repo.records, target)
    repo.records.symlink_to(target)
    code, _, _ = run(repo, capsys, *NEW)
    assert code == 0
    assert repo.records.is_symlink() and repo.records.resolve() == target
    assert load_sessions(target, repo.bibliography).by_chapter("12-resnet") is not None
    assert sorted(p.name for p in target.parent.iterdir()) == ["sessions.toml"]


def test_a_planted_symlink_at_a_temporary_name_is_never_written_through(repo, capsys):
    """The old fixed temporary name, docs/sessions.toml.tmp, as a link to another file."""
    victim = repo.root / "victim.txt"
    victim.write_text("keep me\n", encoding="utf-8")
    (repo.root / "docs" / "sessions.toml.tmp").symlink_to(victim)
    code, _, _ = run(repo, capsys, *NEW)
    assert code == 0
    assert victim.read_text(encoding="utf-8") == "keep me\n"
    assert (repo.root / "docs" / "sessions.toml.tmp").is_symlink()


def test_a_symlink_at_the_lock_name_is_refused(repo, capsys):
    victim = repo.root / "victim.txt"
    victim.write_text("keep me\n", encoding="utf-8")
    (repo.root / "docs" / LOCK).symlink_to(victim)
    refuses(repo, capsys, NEW, "is a symbolic link where initdocs keeps a file", NOTHING_CHANGED)


def test_a_dangling_symlink_at_the_chapter_name_is_refused(repo, capsys):
    (repo.chapters_dir / "12-resnet.md").symlink_to(repo.root / "nowhere.md")
    refuses(repo, capsys, NEW, "12-resnet.md already exists and initdocs new never overwrites")
    assert not (repo.root / "nowhere.md").exists()


def test_exclusive_write_never_follows_a_symlink(tmp_path):
    """What keeps a chapter from being written through a link, even without the CLI's check."""
    link = tmp_path / "12-resnet.md"
    link.symlink_to(tmp_path / "nowhere.md")
    with pytest.raises(FileExistsError):
        atomic_write(link, "text", exclusive=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["12-resnet.md"]


def test_permissions_of_the_records_are_kept(repo, capsys):
    repo.records.chmod(0o640)
    assert run(repo, capsys, *NEW)[0] == 0
    assert repo.records.stat().st_mode & 0o777 == 0o640
    mask = os.umask(0)
    os.umask(mask)
    assert (repo.chapters_dir / "12-resnet.md").stat().st_mode & 0o777 == 0o666 & ~mask


# -- the prompt -----------------------------------------------------------------------------


def answering(monkeypatch, answers: list[str | type[BaseException]]) -> list[str]:
    """Type ``answers`` at the prompts (an exception class: that key, e.g. Ctrl-D)."""
    prompts: list[str] = []
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)

    def fake_input(prompt: str = "") -> str:
        prompts.append(prompt)
        answer = answers.pop(0)
        if isinstance(answer, type):
            raise answer()
        return answer

    monkeypatch.setattr(builtins, "input", fake_input)
    return prompts


def without_date() -> list[str]:
    args = list(NEW)
    del args[args.index("--date") : args.index("--date") + 2]
    return args


def test_bad_dates_at_the_prompt_are_asked_again_then_refused(repo, capsys, monkeypatch):
    prompts = answering(monkeypatch, ["12/Dec/2021", "", "2021-02-30"])
    err = refuses(
        repo,
        capsys,
        without_date(),
        "'2021-02-30' is not a date: write YYYY-MM-DD, e.g. 2021-12-12; nothing was written",
    )
    assert len(prompts) == 3
    assert "'12/Dec/2021' is not a date: write YYYY-MM-DD" in err  # said before asking again
    assert "--date is required" in err


def test_a_good_date_after_a_bad_one_at_the_prompt(repo, capsys, monkeypatch):
    answering(monkeypatch, ["2021-13-01", "2021-12-12"])
    code, out, err = run(repo, capsys, *without_date())
    assert code == 0 and "created docs/sessions/12-resnet.md and session 12" in out
    assert "'2021-13-01' is not a date" in err


@pytest.mark.parametrize("key", [EOFError, KeyboardInterrupt], ids=["ctrl-d", "ctrl-c"])
def test_no_answer_at_the_prompt(repo, capsys, monkeypatch, key):
    answering(monkeypatch, [key])
    refuses(repo, capsys, without_date(), "no answer for --date; nothing was written")


# -- closed pipes -----------------------------------------------------------------------------


def run_into_closed_pipe(repo: Repository, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command with its standard output a pipe nobody reads any more."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            command(repo, *args),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env(),
            timeout=60,
        )
    finally:
        os.close(write_end)


def test_closed_pipe_while_listing_sessions(repo):
    before = snapshot(repo)
    result = run_into_closed_pipe(repo, "sessions")
    assert result.returncode == 2
    assert result.stderr == (
        "initdocs sessions: standard output was closed early, the rest of it was dropped\n"
    )
    assert snapshot(repo) == before


def test_closed_pipe_after_new_has_written(repo, tmp_path):
    result = run_into_closed_pipe(repo, *NEW)
    assert result.returncode == 2
    assert result.stderr == (
        "initdocs new: standard output was closed early, the rest of it was dropped; "
        "the files were written\n"
    )
    assert files(repo) == uninterrupted(tmp_path, *NEW)


# -- the lock: two commands at once -------------------------------------------------------------


def test_a_command_holding_the_lock_too_long_is_reported(repo, capsys, monkeypatch):
    monkeypatch.setattr(cli, "LOCK_TIMEOUT", 0.2)
    with exclusive_lock(repo.root / "docs" / LOCK):
        refuses(
            repo, capsys, NEW, "another initdocs command is writing docs/sessions.toml; try again"
        )
    assert not (repo.root / "docs" / LOCK).exists()  # the lock file lives only while held


def test_a_waiting_command_reads_the_records_again_once_it_has_the_lock(repo, capsys):
    """It waits for the other command, then lands as the next number after the other's."""
    results: list[tuple[int, str, str]] = []
    second = with_option("--date", "2021-12-19")
    for option, value in (("--paper", "ConvNeXt"), ("--key", "liu2022convnet")):
        second[second.index(option) + 1] = value
    waiting = threading.Thread(target=lambda: results.append(run(repo, capsys, *second)))
    with exclusive_lock(repo.root / "docs" / LOCK):
        waiting.start()
        time.sleep(0.5)
        assert waiting.is_alive()  # blocked on the lock
        # What the other command writes while it holds the lock:
        other = copy_book(repo.root.parent / "other")
        assert main(["--root", str(other.root), *NEW]) == 0
        shutil.copy(other.records, repo.records)
        shutil.copy(other.chapters_dir / "12-resnet.md", repo.chapters_dir)
    waiting.join(timeout=30)
    assert results[0][0] == 0, results
    sessions = load_sessions(repo.records)
    assert [(s.number, s.paper) for s in sessions][-2:] == [(12, "ResNet"), (13, "ConvNeXt")]
    assert (repo.chapters_dir / "13-convnext.md").is_file()


RACER = """
import contextlib, io, json, sys, time
from pathlib import Path
from initdocs.book.cli import main

control, name = Path(sys.argv[1]), sys.argv[2]
rounds = json.loads((control / f"{name}.json").read_text())
(control / f"ready-{name}").touch()
for i, argv in enumerate(rounds):
    while not (control / f"go-{i}").exists():
        time.sleep(0.0005)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    result = {"code": code, "out": out.getvalue(), "err": err.getvalue()}
    (control / f"result-{name}.tmp").write_text(json.dumps(result))
    (control / f"result-{name}.tmp").rename(control / f"done-{name}-{i}")  # whole when it appears
"""


def wait_for(path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"timed out waiting for {path.name}"
        time.sleep(0.005)


def racer_args(repo: Repository, day: str, paper: str) -> list[str]:
    args = ["--root", str(repo.root), *with_option("--date", day)]
    args[args.index("--paper") + 1] = paper
    args[args.index("--key") + 1] = f"{paper.lower()}2022"
    return args


def test_two_new_commands_at_once_both_land_or_one_refuses_clearly(repo, tmp_path):
    """Five rounds, each starting two ``new`` at the same instant in two processes."""
    days = [  # (first command's date, second's): different days, the same day, reversed
        ("2022-01-10", "2022-01-17"),
        ("2022-02-10", "2022-02-10"),
        ("2022-03-17", "2022-03-10"),
        ("2022-04-10", "2022-04-17"),
        ("2022-05-10", "2022-05-10"),
    ]
    rounds = {
        name: [racer_args(repo, pair[k], f"Paper{i}{name}") for i, pair in enumerate(days)]
        for k, name in enumerate("ab")
    }
    control = tmp_path / "control"
    control.mkdir()
    script = control / "racer.py"
    script.write_text(RACER, encoding="utf-8")
    processes = []
    for name, argv in rounds.items():
        (control / f"{name}.json").write_text(json.dumps(argv), encoding="utf-8")
        processes.append(
            subprocess.Popen(
                [sys.executable, str(script), str(control), name],
                env=subprocess_env(),
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        for name in rounds:
            wait_for(control / f"ready-{name}", 120)
        known = 11
        for i in range(len(days)):
            (control / f"go-{i}").touch()
            results = []
            for name in rounds:
                wait_for(control / f"done-{name}-{i}", 60)
                results.append(json.loads((control / f"done-{name}-{i}").read_text()))
            sessions = load_sessions(repo.records)  # valid after every round
            landed = [r for r in results if r["code"] == 0]
            for result in results:
                assert result["code"] in (0, 2) and "Traceback" not in result["err"]
                if result["code"] == 2:
                    assert result["err"].startswith("initdocs new: ")
                    assert (
                        "one session per date" in result["err"]
                        or "is not after session" in result["err"]
                    )
            assert landed, results
            assert len(sessions) == known + len(landed)  # no record lost, none twice
            known = len(sessions)
            for s in sessions:
                assert s.number <= 11 or (repo.chapters_dir / f"{s.chapter}.md").is_file()
    except BaseException:
        for process in processes:
            process.kill()
        raise
    finally:
        errors = [process.communicate(timeout=60)[1] for process in processes]
    assert [p.returncode for p in processes] == [0, 0], errors
    assert known >= 11 + len(days)
    leftovers = [p.name for p in repo.root.rglob(".*") if p.is_file()]
    assert leftovers == []


# -- kill -9 at any point, then the same command again -------------------------------------------

CRASH_POINTS = [
    "before-lock",
    "after-lock",
    "after-chapter-temp",
    "after-record-temp",
    "after-record",
    "after-chapter",
]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_rerun_after_kill_9_finishes_the_command(repo, capsys, tmp_path, point):
    killed = subprocess.run(
        command(repo, *NEW),
        capture_output=True,
        text=True,
        env=subprocess_env(INITDOCS_TEST_CRASH_AT=point),
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    load_sessions(repo.records)  # the records are whole, whatever the moment
    code, out, err = run(repo, capsys, *NEW)
    assert (code, err) == (0, "")
    if point == "after-record":
        assert out.startswith("completed an interrupted initdocs new: session 12 was already")
    elif point == "after-chapter":
        assert out.startswith("nothing to do: session 12 is already in docs/sessions.toml")
    else:
        assert out.startswith("created docs/sessions/12-resnet.md and session 12")
    assert files(repo) == uninterrupted(tmp_path, *NEW)  # no leftover lock or temporary file


def test_rerun_with_other_options_after_a_crash_is_refused(repo, capsys):
    """Only the very same command finishes an interrupted one; a changed one is refused."""
    records = repo.records.read_text(encoding="utf-8")
    assert run(repo, capsys, *NEW)[0] == 0
    (repo.chapters_dir / "12-resnet.md").unlink()  # as if killed between record and chapter
    assert repo.records.read_text(encoding="utf-8") != records
    refuses(
        repo,
        capsys,
        with_option("--title", "Another title"),
        "session 12 (ResNet) is already on 2021-12-12; one session per date",
    )


def test_leftover_temporary_files_of_killed_commands_are_removed(repo, capsys, tmp_path):
    docs = repo.root / "docs"
    for leftover in (
        docs / ".sessions.toml.abc123_x.tmp",
        repo.chapters_dir / ".07-vit.md.k2j4h5g6.tmp",
        docs / LOCK,
    ):
        leftover.write_text("half", encoding="utf-8")
    mine = docs / ".notes.tmp"  # not of initdocs' pattern: kept
    mine.write_text("mine", encoding="utf-8")
    assert run(repo, capsys, *NEW)[0] == 0
    mine.unlink()
    assert files(repo) == uninterrupted(tmp_path, *NEW)


def test_sessions_with_records_that_are_not_utf8(repo, capsys):
    repo.records.write_bytes(repo.records.read_bytes().replace(b"Xception", b"X\xe7eption", 1))
    code, out, err = run(repo, capsys, "sessions")
    assert (code, out) == (1, "")
    assert err.endswith("sessions.toml: not UTF-8 text; save it with UTF-8 encoding\n")
    refuses(repo, capsys, NEW, "fix the existing records first", "not UTF-8 text")


def test_chapter_command_refuses_a_full_disk_and_writes_nothing(repo, capsys, monkeypatch):
    def link(source, target):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "link", link)
    refuses(repo, capsys, ["chapter", "2"], "02-deeplabv2.md: no space left", NOTHING_CHANGED)
