"""Build and test the initdocs book: ``nox -s docs`` builds it, ``nox -s lint tests`` tests it.

Every session installs the package with ``constraints.txt``, which pins torch to the CPU
build (2.13.0). Where PyPI's torch is a CUDA build (Linux), point INITDOCS_TORCH_INDEX at
PyTorch's CPU wheel index first; see the README.
"""

from __future__ import annotations

import os
import shutil

import nox

nox.options.default_venv_backend = "venv"  # uv would skip the local torch wheel and fetch CUDA
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "tests"]

CONSTRAINTS = ("-c", "constraints.txt")
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


def _install(session: nox.Session, extras: str) -> None:
    """Install the package in editable mode with ``extras``, torch from the CPU build."""
    torch_index = os.environ.get("INITDOCS_TORCH_INDEX")
    if torch_index:
        session.install("torch==2.13.0", "--index-url", torch_index)
    session.install(*CONSTRAINTS, "-e", f".[{extras}]")


def _build_book(session: nox.Session) -> None:
    """Executed HTML build into docs/_build/html; a failing cell or any warning stops it."""
    os.makedirs(BUILD, exist_ok=True)
    session.run("sphinx-build", *SPHINX_ARGS, *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the executed book into docs/_build/html (extra arguments go to sphinx-build)."""
    _install(session, "docs")
    _build_book(session)


@nox.session
def preview(session: nox.Session) -> None:
    """Quick look at one chapter: `nox -s preview -- 01-xception` executes only that chapter.

    The book goes to docs/_build/preview/html; the other chapters appear without outputs.
    """
    if len(session.posargs) != 1:
        session.error("name one chapter: nox -s preview -- 01-xception")
    _install(session, "docs")
    session.env["INITDOCS_PREVIEW"] = session.posargs[0]
    session.run("sphinx-build", "-M", "html", "docs", f"{BUILD}/preview", "-n", "--keep-going")


@nox.session
def tests(session: nox.Session) -> None:
    """Build the book with execution, then run every test, including checks of the built book."""
    _install(session, "docs,test")
    _build_book(session)
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting of the package, the tests, the configuration."""
    session.install("ruff>=0.6")
    files = ("src", "tests", "docs/conf.py", "noxfile.py")
    session.run("ruff", "check", *files)
    session.run("ruff", "format", "--check", *files)


@nox.session
def bench(session: nox.Session) -> None:
    """Time the build in six situations on a copy of the repo (about 15 min on 2 cores).

    Writes docs/_build/bench/bench.json and bench.md; `nox -s bench -- --update-readme` also
    puts the table into the README. Options: `python -m initdocs.book.bench --help`.
    """
    _install(session, "docs")
    session.run("python", "-m", "initdocs.book.bench", *session.posargs)


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
    """Check every external link (needs internet; not part of the tests)."""
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
    )


@nox.session
def clean(session: nox.Session) -> None:
    """Delete the built book and the execution cache (the next build is cold)."""
    shutil.rmtree(BUILD, ignore_errors=True)
