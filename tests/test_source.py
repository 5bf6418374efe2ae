"""``{source}``: a package object's code on the page, captioned, linked to its lines at the
build's commit, collapsed when long; a missing object fails the build at its file and line; the
shown code belongs to the chapter's fingerprint; every chapter shows its key functions."""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from conftest import CHAPTERS
from sphinx.testing.util import SphinxTestApp

from initdocs import pruning, ssd
from initdocs.book.dependencies import PACKAGE_DIR, chapter_dependencies, shown_names
from initdocs.book.source import COLLAPSE_AFTER

REPOSITORY = "https://github.com/example/initdocs"
COMMIT = "0123abc"
CONF = f"""
extensions = ["myst_nb", "initdocs.book.stable_config", "initdocs.book.source"]
nb_execution_mode = "off"
html_theme = "sphinx_book_theme"  # the book's theme, which takes a repository_url
html_theme_options = {{"repository_url": {REPOSITORY!r}}}
initdocs_commit = {COMMIT + "+dirty"!r}
"""
#: Sphinx's crash report, which a mistake in a chapter must never end with.
CRASH_REPORT = ("Please also report this", "The full traceback has been saved in")


def write_book(root: Path, page: str) -> Path:
    src = root / "src"
    src.mkdir(parents=True)
    (src / "conf.py").write_text(CONF, encoding="utf-8")
    (src / "index.md").write_text(page, encoding="utf-8")
    return src


def build(tmp_path: Path, page: str) -> tuple[BeautifulSoup, str]:
    src = write_book(tmp_path, page)
    warnings = StringIO()
    app = SphinxTestApp(
        "html", srcdir=src, builddir=tmp_path / "out", status=StringIO(), warning=warnings
    )
    try:
        app.build()
    finally:
        app.cleanup()
    html = (tmp_path / "out" / "html" / "index.html").read_text(encoding="utf-8")
    return BeautifulSoup(html, "html.parser"), warnings.getvalue()


def lines_of(obj: object) -> tuple[str, int, int]:
    """The repository path, first and last line of ``obj``, from inspect (independently)."""
    lines, first = inspect.getsourcelines(obj)
    path = Path(inspect.getsourcefile(obj)).relative_to(PACKAGE_DIR.parent)  # type: ignore[arg-type]
    return f"src/{path.as_posix()}", first, first + len(lines) - 1


def test_source_is_highlighted_captioned_linked_and_folded_when_long(tmp_path):
    page = (
        "# Page\n\n```{source} initdocs.ssd.match\n```\n\n"
        "```{source} initdocs.pruning.SoftFilterPruner\n```\n\n"
        "```{source} initdocs.ssd.match\n:closed:\n```\n\n"
        "```{source} initdocs.pruning.SoftFilterPruner\n:open:\n```\n"
    )
    soup, warnings = build(tmp_path, page)
    assert not warnings, warnings
    short, long, short_closed, long_opened = soup.select("div.initdocs-source")
    assert not short_closed.select_one("details").has_attr("open")  # the options override
    assert long_opened.select_one("details").has_attr("open")

    path, first, last = lines_of(ssd.match)
    assert last - first + 1 <= COLLAPSE_AFTER
    link = short.select_one("p.initdocs-source-caption a")
    assert link["href"] == f"{REPOSITORY}/blob/{COMMIT}/{path}#L{first}-L{last}"
    assert short.select_one("p.initdocs-source-caption code").get_text() == "initdocs.ssd.match"
    code = short.select_one("details div.highlight-python pre")
    assert code.get_text().rstrip("\n") == inspect.getsource(ssd.match).rstrip("\n")
    assert code.select("span.k, span.kn")  # Pygments marked the keywords
    assert short.select_one("details").has_attr("open")

    path, first, last = lines_of(pruning.SoftFilterPruner)
    assert last - first + 1 > COLLAPSE_AFTER
    link = long.select_one("p.initdocs-source-caption a")
    assert link["href"] == f"{REPOSITORY}/blob/{COMMIT}/{path}#L{first}-L{last}"
    assert not long.select_one("details").has_attr("open")  # long: closed, one click away
    assert f"{last - first + 1} lines" in long.select_one("summary").get_text()
    assert "class SoftFilterPruner" in long.select_one("pre").get_text()


def test_a_method_is_shown_dedented():
    from initdocs.book.source import resolve, source_lines

    _, code, first, _ = source_lines(resolve("initdocs.ssd.MultiBoxLoss.forward"))
    assert code.startswith("def forward(")
    assert first == inspect.getsourcelines(ssd.MultiBoxLoss.forward)[1]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("initdocs.nosuch.thing", "no module 'initdocs.nosuch'"),
        ("initdocs.ssd.nothing", "'initdocs.ssd' has no attribute 'nothing'"),
        ("initdocs.ssd.SSD300", "not a function, class or method"),
        ("os.path.join", "is no object of the initdocs package"),
    ],
)
def test_a_missing_object_fails_the_build_at_its_file_and_line(tmp_path, name, says):
    page = f"# Page\n\nText.\n\n```{{source}} {name}\n```\n"
    src = write_book(tmp_path, page)
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", str(src),
         str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"{src / 'index.md'}:5: ERROR: source: " in output, output  # file and line
    assert output.count("ERROR:") == 1 and "WARNING:" not in output, output  # the only problem
    assert says in output
    assert "Traceback" not in output
    for banner in CRASH_REPORT:
        assert banner not in output


def sphinx_build(src: Path, pythonpath: Path) -> str:
    """``sphinx-build -W`` of ``src`` importing the package from ``pythonpath``; its log."""
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-M", "html", str(src), str(src.parent / "out"), "-W"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(pythonpath)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_a_new_commit_relinks_without_reading_and_an_edit_re_reads(tmp_path):
    package = tmp_path / "lib" / "initdocs"
    shutil.copytree(PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    src = write_book(tmp_path, "# Page\n\n```{source} initdocs.ssd.match\n```\n")
    page = tmp_path / "out" / "html" / "index.html"
    _, first, last = lines_of(ssd.match)

    sphinx_build(src, package.parent)
    assert f"/blob/{COMMIT}/src/initdocs/ssd.py#L{first}-L{last}" in page.read_text("utf-8")

    conf = src / "conf.py"
    conf.write_text(conf.read_text(encoding="utf-8").replace(COMMIT, "fedcba9"), "utf-8")
    log = sphinx_build(src, package.parent)
    assert "0 added, 0 changed, 0 removed" in log  # the page was not read again
    assert f"/blob/fedcba9/src/initdocs/ssd.py#L{first}-L{last}" in page.read_text("utf-8")

    module = package / "ssd.py"  # two lines above the function: the shown lines move down
    module.write_text("# one\n# two\n" + module.read_text(encoding="utf-8"), "utf-8")
    log = sphinx_build(src, package.parent)
    assert "0 added, 1 changed, 0 removed" in log
    assert f"ssd.py#L{first + 2}-L{last + 2}" in page.read_text("utf-8")


def test_shown_code_is_in_the_fingerprint_like_an_import(tmp_path):
    copy = tmp_path / "initdocs"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    cell = "```{code-cell} ipython3\nimport initdocs.se\n```\n"
    shown = cell + "\n```{source} initdocs.pruning.fpgm_select\n```\n"
    assert shown_names(shown) == ["initdocs.pruning.fpgm_select"]
    before = chapter_dependencies(shown, copy)
    assert "initdocs.pruning" in before.modules
    assert "initdocs.pruning" not in chapter_dependencies(cell, copy).modules

    module = copy / "pruning.py"
    module.write_text(module.read_text(encoding="utf-8") + "\n# edit\n", "utf-8")
    assert chapter_dependencies(shown, copy).fingerprint != before.fingerprint
    assert (
        chapter_dependencies(cell, copy).fingerprint
        == chapter_dependencies(cell, PACKAGE_DIR).fingerprint
    )  # a chapter that does not show it is not affected


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_shows_at_least_two_package_objects_in_its_method(chapter):
    from initdocs.book.notebook_cells import read_myst
    from initdocs.book.source import resolve

    text = chapter.read_text(encoding="utf-8")
    myst = read_myst(text)
    method = next(line for line, level, title in myst.headings if level == 2 and title == "Method")
    after = next(line for line, level, _ in myst.headings if level == 2 and line > method)
    shown = [f for f in myst.fences if f.name == "source"]
    assert len(shown) >= 2, chapter.name
    assert all(method < f.line < after for f in shown), chapter.name
    for name in shown_names(text):
        assert inspect.getsourcelines(resolve(name))  # each exists, with source
