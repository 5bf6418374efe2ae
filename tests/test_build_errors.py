"""Every mistake a contributor can make ends the real build with our message, naming the file,
the line and what to do, and never with Sphinx's crash report ("Please also report this if it
was a user error"); the preview renders a chapter in progress with its problems listed.

Each test copies the book's sources (no chapter executes: the build stops before, or the
chapters are left out) and runs ``sphinx-build`` as nox does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import BIB, DOCS, ROOT

from initdocs.book.cli import main

#: Sphinx's crash report, which a user error must never end with.
CRASH_REPORT = ("Please also report this", "The full traceback has been saved in")


def book_copy(tmp_path: Path, chapters: tuple[str, ...] | None = None) -> Path:
    """The book's docs/ and references.bib in ``tmp_path``; only ``chapters``, if given."""
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs, ignore=shutil.ignore_patterns("_build", "jupyter_execute"))
    shutil.copy(BIB, tmp_path / "references.bib")
    for name in ("constraints.txt", ".github/ISSUE_TEMPLATE/erratum.yml"):  # read by the build
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    if chapters is not None:
        for path in (docs / "sessions").glob("[0-9][0-9]-*.md"):
            if path.stem not in chapters:
                path.unlink()
    return docs


def sphinx_build(docs: Path, *args: str, preview: str = "") -> tuple[int, str]:
    """``sphinx-build`` as ``nox -s docs`` runs it (``preview``: as ``nox -s preview``)."""
    env = {**os.environ, "INITDOCS_PREVIEW": preview}
    if not preview:
        args = ("-W", "--keep-going", "-n", *args)
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-M", "html", str(docs), str(docs / "_build"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    output = result.stdout + result.stderr
    for banner in CRASH_REPORT:
        assert banner not in output, output
    return result.returncode, output


def line_of(path: Path, text: str) -> int:
    return path.read_text(encoding="utf-8").splitlines().index(text) + 1


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


CITED = "As {cite:t}`nobody2099imaginary` showed."


def missing_part(docs: Path) -> tuple[Path, str]:
    chapter = docs / "sessions" / "01-xception.md"
    replace(chapter, "## Motivation", "## Why")
    return chapter, "ERROR: missing part '## Motivation'"


def unknown_citation(docs: Path) -> tuple[Path, str]:
    chapter = docs / "sessions" / "01-xception.md"
    replace(chapter, "## Motivation\n", f"## Motivation\n\n{CITED}\n")
    line = line_of(chapter, CITED)
    return chapter, (
        f"{chapter}:{line}: ERROR: cites 'nobody2099imaginary', which is not in references.bib"
    )


def bad_bibtex_entry(docs: Path) -> tuple[Path, str]:
    bib = docs.parent / "references.bib"
    entry = "@inproceedings{chollet2017xception,"
    replace(bib, "  title         = {Xception: Deep Learning", "  note = {Xception: Deep Learning")
    return bib, (
        f"{bib}:{line_of(bib, entry)}: ERROR: entry 'chollet2017xception': @inproceedings "
        "needs the field title"
    )


def bad_record(docs: Path) -> tuple[Path, str]:
    records = docs / "sessions.toml"
    replace(records, "date = 2021-03-14", 'date = "March"')
    line = line_of(records, 'date = "March"')
    return records, f"{records}:{line}: ERROR: session 3: field 'date' must be a TOML date"


@pytest.mark.parametrize(
    "mistake",
    [missing_part, unknown_citation, bad_bibtex_entry, bad_record],
    ids=lambda f: f.__name__,
)
def test_a_mistake_stops_the_build_with_its_file_line_and_our_message(
    tmp_path, mistake: Callable[[Path], tuple[Path, str]]
):
    docs = book_copy(tmp_path)
    _, expected = mistake(docs)
    code, output = sphinx_build(docs, "-D", "nb_execution_mode=off")
    assert code == 1, output
    assert expected in output
    assert "[initdocs] the build stopped:" in output
    assert "fix them and build again" in output  # what to do
    assert output.rstrip().splitlines()[-1].startswith("[initdocs] the build stopped:")
    assert not (docs / "_build" / "html" / "index.html").exists()


def test_a_preview_of_a_chapter_that_does_not_exist_says_which_exist(tmp_path):
    docs = book_copy(tmp_path, chapters=("01-xception", "09-self-distillation"))
    code, output = sphinx_build(docs, preview="13-nothing")
    assert code == 1, output
    last = output.rstrip().splitlines()[-1]
    assert last.startswith("[initdocs] the build stopped: there is no chapter 13-nothing")
    assert "docs/sessions/13-nothing.md" in last
    assert "name one of 01-xception, 09-self-distillation" in last
    assert not (docs / "_build" / "html" / "index.html").exists()


NEW = [
    "new", "--date", "2021-12-12", "--title", "Deep Residual Learning for Image Recognition",
    "--paper", "ResNet", "--topic", "CV: Residual Networks", "--key", "he2016deep",
    "--paper-url", "https://arxiv.org/abs/1512.03385", "--presenter", "Jane Doe",
]  # fmt: skip


def test_preview_renders_a_new_chapter_with_its_problems_listed(tmp_path, capsys):
    """``initdocs new``, then the preview: the unfinished chapter renders, executed, and the
    check's problems are listed as warnings; the full build still refuses them."""
    docs = book_copy(tmp_path, chapters=("01-xception",))
    assert main(["--root", str(tmp_path), *NEW]) == 0
    capsys.readouterr()
    chapter = docs / "sessions" / "12-resnet.md"
    marker = line_of(chapter, "## In one paragraph") + 2  # the first [[write: ...]] there

    code, output = sphinx_build(docs, preview="12-resnet")
    assert code == 0, output
    assert f"{chapter}:{marker}: WARNING: template marker left" in output
    assert "problem(s) listed above, left for later" in output
    page = docs / "_build" / "html" / "sessions" / "12-resnet.html"
    html = page.read_text(encoding="utf-8")
    assert "Session 12: ResNet" in html and "[[write: what the paper does" in html
    assert "jane doe" in html.lower()  # the session card, from the new record
    executed = docs / "_build" / "jupyter_execute" / "sessions" / "12-resnet.ipynb"
    assert executed.is_file()  # its code ran (the template's imports)

    code, output = sphinx_build(docs, "-D", "nb_execution_mode=off")
    assert code == 1
    assert f"{chapter}:{marker}: ERROR: template marker left" in output
    assert "`initdocs check` found" in output
