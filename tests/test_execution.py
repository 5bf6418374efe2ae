"""Execution as the book runs it (myst-nb in cache mode with initdocs.book.execution), on small
books in temporary folders: smart re-execution, and every fault the issue names, each with a
clear message and nothing stale or half-built left in the HTML output."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from conftest import RECORDS
from sphinx.testing.util import SphinxTestApp

import initdocs.book.dependencies as dependencies
from initdocs.book.dependencies import PACKAGE_DIR
from initdocs.book.execution import MARKER

NOTEBOOK = """\
---
jupytext:
  text_representation:
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
# {title}

{prose}

```{{code-cell}} ipython3
{code}
```
"""


def write_chapter(src: Path, name: str, code: str, prose: str = "Some prose.") -> Path:
    path = src / "sessions" / f"{name}.md"
    path.write_text(NOTEBOOK.format(title=name, prose=prose, code=code), encoding="utf-8")
    return path


def make_project(tmp_path: Path, chapters: dict[str, str]) -> Path:
    """A book like ours (same extensions, kernel set-up and cache mode) with given chapters."""
    src = tmp_path / "src"
    (src / "sessions").mkdir(parents=True)
    (src / "conf.py").write_text(
        "from pathlib import Path\n"
        "from initdocs.book.kernels import prepare_kernels\n"
        'extensions = ["myst_nb", "initdocs.book.execution", "initdocs.book.directives"]\n'
        f"initdocs_sessions_file = {str(RECORDS)!r}\n"
        'nb_execution_mode = "cache"\n'
        "nb_execution_raise_on_error = False\n"  # as the book: a failure is a warning
        "nb_execution_show_tb = True\n"
        'nb_output_stderr = "warn"\n'
        f"nb_execution_cache_path = {str(tmp_path / 'cache')!r}\n"
        f"prepare_kernels(Path({str(tmp_path / 'kernels')!r}))\n",
        encoding="utf-8",
    )
    toctree = "\n".join(f"sessions/{name}" for name in chapters)
    (src / "index.md").write_text(f"# Book\n\n```{{toctree}}\n\n{toctree}\n```\n")
    for name, code in chapters.items():
        write_chapter(src, name, code)
    return src


def build(src: Path, out: Path) -> str:
    """An in-process build (what `sphinx-build` does), returning the log."""
    status = StringIO()
    app = SphinxTestApp(
        "html", srcdir=src, builddir=out, status=status, warning=status, freshenv=False
    )
    try:
        app.build()
    finally:
        app.cleanup()
    return status.getvalue()


def sphinx_build(src: Path, out: Path, *args: str, timeout: float = 300) -> tuple[int, str]:
    """The real command line, as nox runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-M", "html", str(src), str(out), "-W", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return result.returncode, result.stdout + result.stderr


def executed(log: str) -> list[str]:
    """Chapters executed in a build, from myst-nb's log lines."""
    return sorted(
        line.split("sessions/")[1].split(".md")[0]
        for line in log.splitlines()
        if "Executed notebook in" in line
    )


def page(out: Path, name: str) -> Path:
    return out / "html" / "sessions" / f"{name}.html"


@pytest.fixture
def package_copy(tmp_path, monkeypatch) -> Path:
    """A copy of src/initdocs that the dependency fingerprints are computed from."""
    copy = tmp_path / "initdocs"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(dependencies, "PACKAGE_DIR", copy)
    return copy


def touch_module(copy: Path, name: str) -> None:
    module = copy / name
    module.write_text(module.read_text(encoding="utf-8") + "\n# a fix\n", encoding="utf-8")


def test_smart_re_execution(tmp_path, package_copy):
    src = make_project(
        tmp_path,
        {
            "01-x": "import initdocs.xception\nprint('x', 6 * 7)",
            "02-d": "from initdocs.data import load_digits_split\nprint('d', 6 * 7)",
        },
    )
    out = tmp_path / "out"
    assert executed(build(src, out)) == ["01-x", "02-d"]
    assert not (out / "doctrees" / MARKER).exists()  # a clean build clears the marker

    assert executed(build(src, out)) == []  # nothing changed

    touch_module(package_copy, "xception.py")  # imported by 01-x only
    log = build(src, out)
    assert "re-executing 1 chapter(s): sessions/01-x" in log
    assert executed(log) == ["01-x"]

    chapter = src / "sessions" / "02-d.md"  # a prose-only edit: re-read, not re-executed
    chapter.write_text(chapter.read_text().replace("Some prose.", "Better prose."))
    log = build(src, out)
    assert executed(log) == []
    assert "Better prose." in page(out, "02-d").read_text(encoding="utf-8")

    touch_module(package_copy, "counting.py")  # imported by the package's __init__: both
    assert executed(build(src, out)) == ["01-x", "02-d"]

    hidden = page(out, "01-x").read_text(encoding="utf-8")
    assert "Fingerprint" not in hidden and "x 42" in hidden  # the dependency cell is not shown


def test_a_failing_cell_stops_the_build_and_leaves_no_stale_page(tmp_path):
    src = make_project(tmp_path, {"01-x": "print('version', 1)"})
    out = tmp_path / "out"
    code, log = sphinx_build(src, out)
    assert code == 0, log
    assert "version 1" in page(out, "01-x").read_text(encoding="utf-8")

    write_chapter(src, "01-x", 'print("version", 2)\nraise ValueError("the model diverged")')
    code, log = sphinx_build(src, out)
    assert code != 0
    assert "ValueError" in log and "the model diverged" in log  # the traceback
    assert "sessions/01-x.md failed to execute (CellExecutionError)" in log
    assert "nox -s preview -- 01-x" in log  # what to do
    assert "Please also report this" not in log and "sphinx-err-" not in log  # no crash report
    assert not page(out, "01-x").exists()  # the old page would be stale: removed
    assert not (out / "html" / "reports").exists()
    assert (out / "doctrees" / MARKER).exists()

    write_chapter(src, "01-x", 'print("version", 3)')  # fixed: a complete, correct book
    code, log = sphinx_build(src, out)
    assert code == 0, log
    assert "did not finish cleanly" in log
    assert "version 3" in page(out, "01-x").read_text(encoding="utf-8")


def test_a_cell_past_the_time_limit_fails_with_advice(tmp_path):
    src = make_project(tmp_path, {"01-x": "import time\ntime.sleep(600)"})
    start = time.perf_counter()
    code, log = sphinx_build(src, tmp_path / "out", "-D", "nb_execution_timeout=3")
    assert code != 0
    assert time.perf_counter() - start < 120
    assert "failed to execute (CellTimeoutError)" in log
    assert "ran past the time limit" in log and "NB_EXECUTION_TIMEOUT" in log
    assert not page(tmp_path / "out", "01-x").exists()


def test_a_chapter_reaching_the_network_fails_fast(tmp_path):
    code_cell = (
        "import urllib.request\n"
        'urllib.request.urlopen("http://example.com/data.csv", timeout=600).read()'
    )
    src = make_project(tmp_path, {"01-x": code_cell})
    start = time.perf_counter()
    code, log = sphinx_build(src, tmp_path / "out")
    assert code != 0
    assert time.perf_counter() - start < 120  # no hang on the 600 s time-out
    assert "chapters run offline, but this code tried to reach example.com:80" in log
    assert "sessions/01-x.md failed to execute" in log
    assert not page(tmp_path / "out", "01-x").exists()


def test_a_corrupted_or_deleted_cache_is_rebuilt(tmp_path):
    src = make_project(tmp_path, {"01-x": "print(6 * 7)"})
    out = tmp_path / "out"
    assert executed(build(src, out)) == ["01-x"]

    cache = tmp_path / "cache"
    for executed_notebook in cache.glob("executed/*/base.ipynb"):
        executed_notebook.write_text("{ not json", encoding="utf-8")
    write_chapter(src, "01-x", "print(6 * 7)  # re-read")
    log = build(src, out)
    assert "could not be read" in log and "execute again" in log
    assert executed(log) == ["01-x"]

    (cache / "global.db").write_bytes(b"garbage" * 1000)
    write_chapter(src, "01-x", "print(6 * 7)  # re-read again")
    log = build(src, out)
    assert "could not be read (DatabaseError" in log
    assert executed(log) == ["01-x"]

    shutil.rmtree(cache)
    write_chapter(src, "01-x", "print(6 * 7)  # and again")
    assert executed(build(src, out)) == ["01-x"]
    assert "42" in page(out, "01-x").read_text(encoding="utf-8")


def test_an_interrupted_build_is_completed_by_the_next(tmp_path):
    src = make_project(tmp_path, {"01-x": "print('one', 1)", "02-y": "print('two', 1)"})
    out = tmp_path / "out"
    code, log = sphinx_build(src, out)
    assert code == 0, log

    write_chapter(src, "01-x", "print('one', 2)")
    write_chapter(src, "02-y", "import time\ntime.sleep(30)\nprint('two', 2)")
    process = subprocess.Popen(
        [sys.executable, "-m", "sphinx", "-M", "html", str(src), str(out), "-W"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:  # wait until the slow chapter is executing, then kill
        if "Executing notebook" in line and "02-y" in line:
            break
    time.sleep(1)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stdout.close()
    assert (out / "doctrees" / MARKER).exists()

    write_chapter(src, "02-y", "print('two', 2)")  # the writer shortens the cell and rebuilds
    code, log = sphinx_build(src, out)
    assert code == 0, log
    assert "did not finish cleanly" in log
    assert "one 2" in page(out, "01-x").read_text(encoding="utf-8")
    assert "two 2" in page(out, "02-y").read_text(encoding="utf-8")
    assert not (out / "doctrees" / MARKER).exists()


def test_glued_numbers_follow_the_code_and_a_false_claim_stops_the_build(tmp_path):
    """The pattern every chapter follows: a number in the prose is glued by the cell that
    computes it, so it changes with the code; a claim is asserted, so a flipped result fails."""
    cell = (
        "from myst_nb import glue\n"
        "accuracy = {a}\n"
        'assert accuracy > 0.5, "the prose says: better than chance"\n'
        'glue("x_acc", accuracy, display=False)'
    )
    prose = "The net reaches {glue:text}`x_acc:.3f`, better than chance."
    src = make_project(tmp_path, {})
    (src / "index.md").write_text("# Book\n\n```{toctree}\n\nsessions/01-x\n```\n")
    write_chapter(src, "01-x", cell.format(a="0.8561"), prose)
    out = tmp_path / "out"
    code, log = sphinx_build(src, out)
    assert code == 0, log
    text = " ".join(
        BeautifulSoup(page(out, "01-x").read_text("utf-8"), "html.parser").get_text().split()
    )
    assert "The net reaches 0.856, better than chance." in text

    write_chapter(src, "01-x", cell.format(a="0.9049"), prose)  # the code changed
    code, log = sphinx_build(src, out)
    assert code == 0, log
    text = " ".join(
        BeautifulSoup(page(out, "01-x").read_text("utf-8"), "html.parser").get_text().split()
    )
    assert "The net reaches 0.905, better than chance." in text

    write_chapter(src, "01-x", cell.format(a="0.31"), prose)  # the claim no longer holds
    code, log = sphinx_build(src, out)
    assert code != 0
    log = re.sub(r"\x1b\[[0-9;]*m", "", log)  # the traceback is coloured
    assert "AssertionError: the prose says: better than chance" in log
    assert "sessions/01-x.md failed to execute" in log
    assert not page(out, "01-x").exists()  # the false sentence is not published
