"""A rebuild with nothing changed does nothing: the configuration Sphinx saved is the one
``conf.py`` gives (initdocs.book.stable_config), so no "configuration has changed", nothing
read, nothing written; a new commit rewrites the pages without reading them again."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

#: The book's theme and the extensions that change configuration values once the builder
#: starts, with a page using ``{build-info}``.
CONF = """
extensions = ["myst_parser", "sphinx_copybutton", "sphinx_design", "sphinxcontrib.bibtex"{extra}]
bibtex_bibfiles = ["refs.bib"]
html_theme = "sphinx_book_theme"
html_static_path = []
html_css_files = ["initdocs.css"]
html_context = {{"default_mode": "auto"}}
html_theme_options = {{
    "repository_url": "https://github.com/example/book",
    "use_repository_button": True,
}}
initdocs_commit = {commit!r}
"""
PAGE = "# Page\n\nAs {cite:t}`doe2020` showed.\n\n```{bibliography}\n```\n"
BIB = "@article{doe2020, author = {Doe, Jane}, title = {A Title}, journal = {J}, year = {2020}}\n"
INDEX = "# Book\n\nBuilt from commit {build-info}`commit`.\n\n```{toctree}\npage\n```\n"


def make_book(tmp_path: Path, *, stable: bool) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    extra = ', "initdocs.book.stable_config"' if stable else ""
    (src / "conf.py").write_text(CONF.format(extra=extra, commit="abc1234"), encoding="utf-8")
    (src / "index.md").write_text(
        INDEX if stable else INDEX.replace("{build-info}`commit`", "`x`"), encoding="utf-8"
    )
    (src / "page.md").write_text(PAGE, encoding="utf-8")
    (src / "refs.bib").write_text(BIB, encoding="utf-8")
    return src


def sphinx_build(src: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-M", "html", str(src), str(src.parent / "out"), "-W"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_the_themes_change_the_configuration_without_stable_config(tmp_path):
    """What the extension fixes: without it, a rebuild with nothing changed finds the
    configuration changed and writes every page again."""
    src = make_book(tmp_path, stable=False)
    sphinx_build(src)
    log = sphinx_build(src)
    assert "The configuration has changed" in log


def test_a_rebuild_with_nothing_changed_reads_and_writes_nothing(tmp_path):
    src = make_book(tmp_path, stable=True)
    first = sphinx_build(src)
    assert "2 added" in first
    page = src.parent / "out" / "html" / "index.html"
    assert "abc1234" in page.read_text(encoding="utf-8")
    for _ in range(2):  # stays so: the second rebuild saved nothing new either
        log = sphinx_build(src)
        assert "configuration has changed" not in log
        assert "0 added, 0 changed, 0 removed" in log
        assert "no targets are out of date" in log
        assert "pickling environment" not in log  # nothing new to save
    # after rebuilds that skipped formatting the citations, an edit formats them again
    page = src / "page.md"
    page.write_text(page.read_text(encoding="utf-8") + "\nMore.\n", encoding="utf-8")
    log = sphinx_build(src)  # -W: an unresolved citation would fail it
    assert "0 added, 1 changed, 0 removed" in log
    html = (src.parent / "out" / "html" / "page.html").read_text(encoding="utf-8")
    assert "Jane Doe. A title." in html and "More." in html


def test_a_new_commit_rewrites_the_pages_without_reading_them(tmp_path):
    src = make_book(tmp_path, stable=True)
    sphinx_build(src)
    conf = src / "conf.py"
    conf.write_text(conf.read_text(encoding="utf-8").replace("abc1234", "def5678"))
    log = sphinx_build(src)
    assert "The configuration has changed (1 option: 'initdocs_commit')" in log
    assert "0 added, 0 changed, 0 removed" in log  # nothing read again
    page = src.parent / "out" / "html" / "index.html"
    text = page.read_text(encoding="utf-8")
    assert "def5678" in text and "abc1234" not in text
    log = sphinx_build(src)  # the new commit was saved: the next build has nothing to do
    assert "configuration has changed" not in log and "no targets are out of date" in log
    assert "pickling environment" not in log


@pytest.mark.parametrize("item", ["commit", "version"])
def test_build_info_shows_the_build_values(tmp_path, item):
    src = make_book(tmp_path, stable=True)
    conf = src / "conf.py"
    conf.write_text(conf.read_text(encoding="utf-8") + 'release = "9.8.7"\n', encoding="utf-8")
    (src / "index.md").write_text(INDEX.replace("`commit`", f"`{item}`"), encoding="utf-8")
    sphinx_build(src)
    text = (src.parent / "out" / "html" / "index.html").read_text(encoding="utf-8")
    assert {"commit": "abc1234", "version": "9.8.7"}[item] in text


class RecordingSession:
    """What ``_install`` uses of a nox session: its environment's folder, install and log."""

    def __init__(self, location: Path) -> None:
        self.virtualenv = type("Env", (), {"location": str(location)})()
        self.installs: list[tuple[str, ...]] = []

    def install(self, *args: str) -> None:
        self.installs.append(args)

    def log(self, message: str) -> None:
        pass


def test_nox_installs_only_when_pyproject_or_the_lock_changed(noxfile, tmp_path, monkeypatch):
    """`nox -s docs` with nothing changed skips pip (seconds on every run)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, repo / name)
    monkeypatch.setattr(noxfile, "ROOT", repo)
    monkeypatch.delenv("INITDOCS_TORCH_INDEX", raising=False)
    session = RecordingSession(tmp_path / "env")
    (tmp_path / "env").mkdir()

    def installs(extras: str = "docs") -> int:
        before = len(session.installs)
        noxfile._install(session, extras)
        return len(session.installs) - before

    assert installs() == 1  # a new environment
    assert installs() == 0  # nothing changed
    with (repo / "constraints.txt").open("a", encoding="utf-8") as lock:
        lock.write("# a new pin\n")
    assert installs() == 1
    assert installs() == 0
    with (repo / "pyproject.toml").open("a", encoding="utf-8") as project:
        project.write("\n# a new dependency\n")
    assert installs() == 1
    assert installs("docs,test") == 1  # other extras
    monkeypatch.setenv("INITDOCS_TORCH_INDEX", "https://download.pytorch.org/whl/cpu")
    assert installs("docs,test") == 2  # torch from the index, then the package
    assert installs("docs,test") == 0
