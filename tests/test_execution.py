"""Execution as the book runs it (myst-nb in cache mode): failures stop the build, and a
change in the ``initdocs`` package re-executes notebooks instead of serving stale outputs."""

from __future__ import annotations

import subprocess
import sys
from io import StringIO
from pathlib import Path

from conftest import RECORDS
from sphinx.testing.util import SphinxTestApp

import initdocs.sphinxext

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
# A chapter

```{{code-cell}} ipython3
{code}
```
"""


def make_project(tmp_path: Path, code: str) -> Path:
    src = tmp_path / "src"
    (src / "sessions").mkdir(parents=True)
    (src / "conf.py").write_text(
        "from pathlib import Path\n"
        "from initdocs.sphinxext import package_fingerprint\n"
        'extensions = ["myst_nb", "initdocs.sphinxext"]\n'
        f"initdocs_sessions_file = {str(RECORDS)!r}\n"
        'nb_execution_mode = "cache"\n'
        "nb_execution_raise_on_error = True\n"
        "nb_execution_show_tb = True\n"
        f"nb_execution_cache_path = str(Path({str(tmp_path)!r}) / 'cache' / "
        "package_fingerprint())\n",
        encoding="utf-8",
    )
    (src / "index.md").write_text("# Book\n\n```{toctree}\n\nsessions/01-x\n```\n")
    (src / "sessions" / "01-x.md").write_text(NOTEBOOK.format(code=code), encoding="utf-8")
    return src


def build(src: Path, out: Path) -> str:
    status = StringIO()
    app = SphinxTestApp(
        "html", srcdir=src, builddir=out, status=status, warning=status, freshenv=False
    )
    try:
        app.build()
    finally:
        app.cleanup()
    return status.getvalue()


def test_a_failing_cell_stops_the_build_naming_chapter_and_traceback(tmp_path):
    """The real command line, as nox runs it: non-zero exit, chapter and traceback in the log."""
    src = make_project(tmp_path, 'raise ValueError("the model diverged")')
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-M", "html", str(src), str(tmp_path / "out"), "-W"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "sessions/01-x.md" in log
    assert "ValueError" in log and "the model diverged" in log
    assert not (tmp_path / "out" / "html" / "sessions" / "01-x.html").exists()


def test_package_change_re_executes_cached_notebooks(tmp_path, monkeypatch):
    fingerprint = "a" * 16
    monkeypatch.setattr(initdocs.sphinxext, "package_fingerprint", lambda *a: fingerprint)
    src = make_project(tmp_path, "print(6 * 7)")
    out = tmp_path / "out"

    first = build(src, out)
    assert "Executed notebook" in first

    second = build(src, out)  # nothing changed: the page is not even re-read
    assert "Executed notebook" not in second

    fingerprint = "b" * 16  # the package changed
    third = build(src, out)
    assert "package changed: re-reading 1 notebook(s)" in third
    assert "Executed notebook" in third  # a fresh run, not the old cache entry
    assert not (tmp_path / "cache" / ("a" * 16)).exists()  # the stale cache is gone
    html = (out / "html" / "sessions" / "01-x.html").read_text(encoding="utf-8")
    assert "42" in html
