"""Build and test the initdocs book: ``nox -s docs`` builds it, ``nox -s lint tests`` tests it.

Every session installs with ``constraints.txt``, the lock file that ``nox -s lock`` writes: it
pins every package, torch to the version in pyproject.toml's ``[tool.initdocs]`` table. Where
PyPI's torch is a CUDA build (Linux), point INITDOCS_TORCH_INDEX at PyTorch's CPU wheel index,
or PIP_FIND_LINKS at a folder holding the CPU wheel; see the README.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"  # uv would skip the local torch wheel and fetch CUDA
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "tests"]

ROOT = Path(__file__).resolve().parent
LOCK = "constraints.txt"
CONSTRAINTS = ("-c", LOCK)
#: torch's version: written once, in pyproject.toml (``[tool.initdocs] torch``).
TORCH = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["initdocs"][
    "torch"
]
#: The resolver that writes the lock, pinned: another uv release may word the file differently.
UV = "uv==0.13.9"
#: The lock is made for the CI machine (CPython 3.11 on x86-64 Linux), whatever runs it.
LOCK_TARGET = ("--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28")
BUILD = "docs/_build"
SPHINX_ARGS = (
    "-M",
    "html",
    "docs",
    BUILD,
    "-W",
    "--keep-going",
    "-n",  # any warning fails the build, after reporting all of them
    "-j",
    "auto",  # one reader per core: chapters execute side by side (one thread per kernel)
    "-w",
    f"{BUILD}/warnings.log",  # the tests assert that this file stays empty
)
#: pytest-xdist: one worker per logical core, as ``-j auto`` above (``auto`` would count physical
#: cores only). Each test file goes whole to one worker, so a module's fixtures (a crawl of the
#: book in a browser, a trained model) are built once, in the order of collection, where
#: tests/conftest.py puts the longest files first; ``-n 0`` after ``--`` runs in one process.
PYTEST_WORKERS = ("-n", "logical", "--dist", "loadfile", "--no-loadscope-reorder")


def _install(session: nox.Session, extras: str) -> None:
    """Install the package in editable mode with ``extras``, torch from the CPU build.

    Skipped when the environment already holds exactly this installation: a stamp in the
    environment records the hash of pyproject.toml, constraints.txt, the extras and the torch
    index, so a change to any of them installs again (pip itself takes seconds even when
    there is nothing to do). The package is editable: changes to src/ need no installation.
    """
    stamp = Path(session.virtualenv.location) / "initdocs-installed.txt"
    wanted = _install_key(extras)
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted:
        session.log("environment up to date (pyproject.toml, constraints.txt unchanged)")
        return
    stamp.unlink(missing_ok=True)
    torch_index = os.environ.get("INITDOCS_TORCH_INDEX")
    if torch_index:  # torch alone from there; its dependencies come pinned from PyPI below
        session.install(*CONSTRAINTS, "torch", "--no-deps", "--index-url", torch_index)
    session.install(*CONSTRAINTS, "-e", f".[{extras}]")
    stamp.write_text(wanted, encoding="utf-8")


def _install_key(extras: str) -> str:
    """What an installation depends on: the two files, the extras, the torch index."""
    digest = hashlib.sha256()
    for name in ("pyproject.toml", LOCK):
        digest.update((ROOT / name).read_bytes())
    digest.update(f"{extras}\n{os.environ.get('INITDOCS_TORCH_INDEX', '')}".encode())
    return digest.hexdigest() + "\n"


def _build_book(session: nox.Session, *, with_posargs: bool = True) -> None:
    """Executed HTML build into docs/_build/html; a failing cell or any warning stops it."""
    os.makedirs(BUILD, exist_ok=True)
    session.run("sphinx-build", *SPHINX_ARGS, *(session.posargs if with_posargs else ()))


@nox.session
def docs(session: nox.Session) -> None:
    """Build the executed book into docs/_build/html (extra arguments go to sphinx-build).

    ``nox -s docs -- --preview 12-name`` (or ``nox -s preview -- 12-name``) is the preview
    of a chapter in progress, in this same environment: see :func:`preview`.
    """
    _install(session, "docs")
    if session.posargs[:1] == ["--preview"]:
        _preview(session, session.posargs[1:])
    else:
        _build_book(session)


def _preview(session: nox.Session, chapters: list[str]) -> None:
    """Build the book into docs/_build/preview/html, executing only ``chapters``."""
    if len(chapters) != 1:
        session.error("name one chapter: nox -s preview -- 12-name")
    session.env["INITDOCS_PREVIEW"] = chapters[0]
    session.run("sphinx-build", "-M", "html", "docs", f"{BUILD}/preview", "-n", "--keep-going")


@nox.session(venv_backend="none")
def preview(session: nox.Session) -> None:
    """Quick look at a chapter in progress: `nox -s preview -- 12-name` executes only it.

    Runs ``nox -s docs -- --preview 12-name``, in the docs session's environment (no third
    one). The book goes to docs/_build/preview/html; the other chapters appear without
    outputs. ``initdocs check``'s problems are listed as warnings, not a failure, so an
    unfinished chapter renders (the full build still refuses them).
    """
    if len(session.posargs) != 1:
        session.error("name one chapter: nox -s preview -- 12-name")
    session.run(
        sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), "-s", "docs", "--",
        "--preview", *session.posargs, external=True,
    )  # fmt: skip


@nox.session
def tests(session: nox.Session) -> None:
    """Build the book with execution, then run every test, including checks of the built book."""
    _install(session, "docs,test")
    # axe-core for the browser test's accessibility audit, exactly as package-lock.json pins it
    session.run("npm", "ci", "--no-audit", "--no-fund", external=True)
    _build_book(session)
    session.run("pytest", *PYTEST_WORKERS, *session.posargs)


@nox.session
def pagespeed(session: nox.Session) -> None:
    """Lighthouse on the home page and every chapter, as a phone sees them (6-15 minutes).

    Fails a page that misses the speed targets (initdocs.book.pagespeed.TARGETS) and writes
    the measurement to docs/_build/pagespeed/; ``python -m initdocs.book.pagespeed
    --update-readme`` copies its table into the README. Kept out of ``nox -s tests``, whose
    pytest deselects the ``pagespeed`` mark: the page weight is tested there.
    """
    _install(session, "docs,test")
    session.run("npm", "ci", "--no-audit", "--no-fund", external=True)
    _build_book(session)
    session.run("pytest", "-m", "pagespeed", "tests/test_browser.py", *session.posargs)


@nox.session
def pdf(session: nox.Session) -> None:
    """The PDF edition: each chapter and the whole book, into docs/_build/html/_pdf.

    Builds the book with INITDOCS_PDF=1, so that every chapter's download menu links its PDF
    and the book's (incremental: after `nox -s docs` or `nox -s render` with INITDOCS_PDF=1 it
    has nothing to do), then prints it with Debian's Chromium, /usr/bin/chromium (no LaTeX):
    ``python -m initdocs.book.pdf``, which lists every PDF's pages and size and the time taken.
    Extra arguments go to it (``-- --help``).
    """
    _install(session, "docs,test")  # Playwright and pypdf are test tools
    session.env["INITDOCS_PDF"] = "1"
    _build_book(session, with_posargs=False)
    session.run("python", "-m", "initdocs.book.pdf", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting of the package, the tests, the configuration."""
    session.install(*CONSTRAINTS, "ruff")
    files = ("src", "tests", "docs/conf.py", "noxfile.py")
    session.run("ruff", "check", *files)
    session.run("ruff", "format", "--check", *files)


@nox.session
def bench(session: nox.Session) -> None:
    """Time the build in seven situations on a copy of the repo (about 20 min on 2 cores).

    Writes docs/_build/bench/bench.json and bench.md; `nox -s bench -- --update-readme` also
    puts the table into the README. Options: `python -m initdocs.book.bench --help`.
    """
    _install(session, "docs")
    # The "nothing changed" build through nox runs this nox (sys.executable runs the noxfile).
    session.run("python", "-m", "initdocs.book.bench", "--nox", sys.executable, *session.posargs)


# -- Sharded execution (initdocs.book.shards): CI executes the chapters on a matrix of machines,
# then renders the book once from their merged caches. Run by hand, one shard after the other:
#   nox -s execute -- --shard 1/2 && nox -s execute -- --shard 2/2 && nox -s render
SHARDS = f"{BUILD}/shards"


@nox.session
def execute(session: nox.Session) -> None:
    """Execute one shard's chapters into the execution cache: `nox -s execute -- --shard 1/2`.

    Shards are balanced by the chapters' last measured times (docs/_build/execution.json). The
    shard's manifest and cached chapters go to docs/_build/shards/1-of-2; no pages are built.
    """
    _install(session, "docs")
    session.run("python", "-m", "initdocs.book.shards", "execute", *session.posargs)


def _merge_shards(session: nox.Session) -> None:
    """Merge the shard folders named after `--` (default: all in docs/_build/shards)."""
    folders = session.posargs or sorted(str(p) for p in Path(ROOT, SHARDS).glob("*-of-*"))
    if not folders:
        session.error(f"no shard in {SHARDS}: run `nox -s execute -- --shard I/N` first")
    session.run("python", "-m", "initdocs.book.shards", "merge", *folders)


@nox.session
def merge(session: nox.Session) -> None:
    """Merge the shards' caches into docs/_build/.jupyter_cache (folders after `--`)."""
    _install(session, "docs")
    _merge_shards(session)


@nox.session
def render(session: nox.Session) -> None:
    """Merge the shards, then build the book with no execution (a missing chapter fails it)."""
    _install(session, "docs")
    _merge_shards(session)
    os.makedirs(BUILD, exist_ok=True)
    session.run("sphinx-build", *SPHINX_ARGS, env={"INITDOCS_CACHE_ONLY": "1"})


@nox.session(name="docs-live")
def docs_live(session: nox.Session) -> None:
    """Serve the book on http://127.0.0.1:8000 and rebuild it when a file changes."""
    _install(session, "docs,live")
    session.run(
        "sphinx-autobuild",
        "docs",
        f"{BUILD}/html",
        "-d",
        f"{BUILD}/doctrees",
        "--watch",
        "src",
        "--watch",
        "references.bib",
        "--ignore",
        f"*/{BUILD}/*",
        "--ignore",
        "*/jupyter_execute/*",
        *session.posargs,
    )


@nox.session
def linkcheck(session: nox.Session) -> None:
    """Check every external link (needs internet; not part of the tests).

    The broken ones are listed in docs/_build/linkcheck/broken.md (the weekly link-check
    workflow puts that list into an issue); the session fails if there is any.
    """
    _install(session, "docs")
    session.run(
        "sphinx-build",
        "-b",
        "linkcheck",
        "-D",
        "nb_execution_mode=off",
        "docs",
        f"{BUILD}/linkcheck",
        *session.posargs,
        success_codes=[0, 1],  # 1: broken links, listed by the next command
    )
    session.run("python", "-m", "initdocs.book.links", f"{BUILD}/linkcheck")


@nox.session
def clean(session: nox.Session) -> None:
    """Delete the built book and the execution cache (the next build is cold)."""
    shutil.rmtree(BUILD, ignore_errors=True)


def _pip_find_links(session: nox.Session) -> list[str]:
    """The folders pip takes wheels from: PIP_FIND_LINKS, else pip's configuration files."""
    if "PIP_FIND_LINKS" in os.environ:
        return os.environ["PIP_FIND_LINKS"].split()
    listing = session.run("python", "-m", "pip", "config", "list", silent=True) or ""
    found = re.findall(r"^[\w:.-]+\.find-links='(.*)'$", listing, flags=re.MULTILINE)
    return [folder for value in found for folder in value.split()]


def _torch_sources(session: nox.Session) -> list[str]:
    """Where uv finds torch's CPU build: the same places pip is pointed at."""
    options = [f"--find-links={folder}" for folder in _pip_find_links(session)]
    torch_index = os.environ.get("INITDOCS_TORCH_INDEX")
    if torch_index:  # the best match across PyPI and the CPU index: 2.x.y+cpu for torch
        options += [f"--extra-index-url={torch_index}", "--index-strategy=unsafe-best-match"]
    return options


def _compile_lock(session: nox.Session, output: Path) -> str:
    """Resolve every extra of pyproject.toml into ``output``; return the lock's text.

    torch is asked for as ``X+cpu``, the CPU build's version on Linux, so the lock can never
    hold the CUDA build's dependencies; the file then names the public version ``X``, which
    pip matches with the CPU build (from PIP_FIND_LINKS or INITDOCS_TORCH_INDEX) on Linux and
    with PyPI's own build on macOS and Windows.
    """
    uv = shutil.which("uv", path=session.bin)
    if uv is None:
        session.error(f"uv is not in {session.bin}")
    command = [
        uv, "pip", "compile", "pyproject.toml", "-", "--all-extras", "--no-config", "--quiet",
        *LOCK_TARGET, *_torch_sources(session),
        "--custom-compile-command", "nox -s lock", "--output-file", str(output),
    ]  # fmt: skip
    session.log(" ".join(command) + f"  (standard input: torch=={TORCH}+cpu)")
    # The torch requirement comes on standard input, so no file path lands in the lock.
    run = subprocess.run(command, input=f"torch=={TORCH}+cpu\n", text=True, cwd=ROOT)
    if run.returncode:
        session.error(
            f"uv could not resolve the lock (above). If it found no torch=={TORCH}+cpu, point "
            "PIP_FIND_LINKS at a folder with that wheel or INITDOCS_TORCH_INDEX at "
            "https://download.pytorch.org/whl/cpu"
        )
    text = output.read_text(encoding="utf-8")
    cpu = re.compile(rf"^torch=={re.escape(TORCH)}\+cpu$", re.MULTILINE)
    if len(cpu.findall(text)) != 1:
        session.error(f"the lock holds no torch=={TORCH}+cpu line; it is left unchanged")
    return cpu.sub(f"torch=={TORCH}", text)


@nox.session
def lock(session: nox.Session) -> None:
    """Pin every dependency in constraints.txt with uv (``-- --check``: only compare).

    The pins already in constraints.txt are uv's preferences, so running it again gives the
    same file byte for byte; ``-- --upgrade`` starts from nothing and takes the newest
    releases. ``-- --check`` fails when the committed file is not what this session writes.
    """
    unknown = set(session.posargs) - {"--check", "--upgrade"}
    if unknown:
        session.error(f"unknown option(s) {sorted(unknown)}: use --check or --upgrade")
    session.install(UV)
    committed = (ROOT / LOCK).read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / LOCK
        if "--upgrade" not in session.posargs:
            output.write_text(committed, encoding="utf-8")
        text = _compile_lock(session, output)
    if "--check" not in session.posargs:
        (ROOT / LOCK).write_text(text, encoding="utf-8")
        session.log(f"wrote {LOCK}")
    elif text != committed:
        diff = difflib.unified_diff(
            committed.splitlines(keepends=True), text.splitlines(keepends=True), LOCK, "nox -s lock"
        )
        session.error(
            f"{LOCK} is not what `nox -s lock` writes; run it and commit:\n" + "".join(diff)
        )
    else:
        session.log(f"{LOCK} is what `nox -s lock` writes")
