"""Chapter downloads, launch buttons and header buttons of the built book."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import nbformat
import pytest
import yaml
from bs4 import BeautifulSoup
from conftest import CHAPTERS, ROOT
from packaging.requirements import Requirement
from sphinx.errors import ConfigError

from initdocs.book import notebooks

ERRATUM_FORM = ROOT / ".github" / "ISSUE_TEMPLATE" / "erratum.yml"
CHAPTER_IDS = [path.stem for path in CHAPTERS]


@functools.cache
def _page(html: Path, name: str) -> BeautifulSoup:
    return BeautifulSoup((html / "sessions" / f"{name}.html").read_text("utf-8"), "html.parser")


def _header_links(page: BeautifulSoup) -> dict[str, str]:
    """Header links by their button class (``btn-<label>``)."""
    links = {}
    for link in page.select(".article-header-buttons a[href]"):
        for cls in link.get("class", []):
            if cls.startswith("btn-") and cls != "btn-sm":
                links[cls.removeprefix("btn-")] = link["href"]
    return links


@pytest.fixture(scope="module")
def repository_url(html: Path) -> str:
    """The repository URL, as the theme renders it in the header of the home page."""
    page = BeautifulSoup((html / "index.html").read_text("utf-8"), "html.parser")
    return page.select_one("a.btn-source-repository-button")["href"]


def test_every_chapter_has_both_downloads(html: Path) -> None:
    folder = html / notebooks.FOLDER / "sessions"
    assert sorted(p.stem for p in folder.glob("*.ipynb")) == CHAPTER_IDS
    for chapter in CHAPTERS:
        assert (folder / chapter.name).read_bytes() == chapter.read_bytes()


@pytest.mark.parametrize("name", CHAPTER_IDS)
def test_notebook_is_valid_and_installs_initdocs(
    html: Path, name: str, repository_url: str
) -> None:
    notebook = nbformat.read(html / notebooks.FOLDER / "sessions" / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    assert notebook.nbformat == 4
    first = notebook.cells[0]
    assert first.cell_type == "code"
    assert "import initdocs" in first.source
    pip = re.search(r'^\s+%pip install --quiet "(.+)"$', first.source, re.MULTILINE)
    requirement = Requirement(pip.group(1))
    assert requirement.name == "initdocs"
    assert requirement.url.startswith(f"git+{repository_url}@")
    # Never a CUDA build: the cell says how to get the CPU build and installs no torch itself.
    assert "download.pytorch.org/whl/cpu" in first.source
    assert "%pip install torch" not in first.source.replace("#   %pip install torch", "")


@pytest.mark.parametrize("name", CHAPTER_IDS)
def test_notebook_has_the_outputs_shown_on_the_page(html: Path, name: str) -> None:
    """Each code cell's text output and figures equal those of the HTML page."""
    notebook = nbformat.read(html / notebooks.FOLDER / "sessions" / f"{name}.ipynb", as_version=4)
    code = [c for c in notebook.cells[1:] if c.cell_type == "code"]
    cells = _page(html, name).select("div.cell")
    assert len(code) == len(cells)
    for cell, element in zip(code, cells, strict=True):
        streams = [o["text"] for o in cell.outputs if o["output_type"] == "stream"]
        shown = [d.get_text() for d in element.select("div.cell_output > div.output.stream")]
        assert [s.strip() for s in streams] == [s.strip() for s in shown]
        images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
        assert len(images) == len(element.select("div.cell_output img"))
    assert any(cell.outputs for cell in code), "the notebook has no outputs at all"


def test_no_removed_cells_in_notebooks(html: Path) -> None:
    for path in (html / notebooks.FOLDER / "sessions").glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            assert "remove-cell" not in cell.metadata.get("tags", [])


def test_binder_environment(html: Path, repository_url: str) -> None:
    folder = html / notebooks.FOLDER
    lines = (folder / "requirements.txt").read_text("utf-8").splitlines()
    options = [line for line in lines if line.startswith("--")]
    assert options == [f"--extra-index-url {notebooks.CPU_INDEX}"]
    requirements = {
        r.name: r for r in (Requirement(line) for line in lines if line and line[0].isalnum())
    }
    pinned = next(
        line.split("==")[1].split("#")[0].strip()
        for line in (ROOT / "constraints.txt").read_text("utf-8").splitlines()
        if line.startswith("torch==")
    )
    assert str(requirements["torch"].specifier) == f"=={pinned}+cpu"
    assert requirements["initdocs"].url.startswith(f"git+{repository_url}@")
    assert re.fullmatch(r"python-3\.\d+\n", (folder / "runtime.txt").read_text("utf-8"))
    assert "notebook" in (folder / "README.md").read_text("utf-8")


def test_download_menu_links_both_files(html: Path) -> None:
    for name in CHAPTER_IDS:
        page_path = html / "sessions" / f"{name}.html"
        links = _header_links(_page(html, name))
        for label, suffix in (
            ("download-notebook-button", ".ipynb"),
            ("download-source-button", ".md"),
        ):
            target = (page_path.parent / links[label]).resolve()
            assert target == (html / notebooks.FOLDER / "sessions" / f"{name}{suffix}").resolve()
            assert target.is_file()


def test_launch_buttons_point_to_the_notebooks_branch(html: Path, repository_url: str) -> None:
    org, repo = urlsplit(repository_url).path.strip("/").split("/")
    for name in CHAPTER_IDS:
        links = _header_links(_page(html, name))
        colab = urlsplit(links["launch-colab-button"])
        assert colab.netloc == "colab.research.google.com"
        assert colab.path == f"/github/{org}/{repo}/blob/notebooks/sessions/{name}.ipynb"
        binder = urlsplit(links["launch-binder-button"])
        assert (binder.netloc, binder.path) == ("mybinder.org", f"/v2/gh/{org}/{repo}/notebooks")
        labpath = parse_qs(binder.query)["labpath"][0]
        assert (html / notebooks.FOLDER / labpath).is_file()


def test_launch_buttons_only_for_github() -> None:
    assert notebooks.launch_urls("https://gitlab.com/org/repo", "sessions/01-x") == {}
    assert notebooks.github_repo("https://github.com/org/repo.git") == ("org", "repo")
    assert notebooks.github_repo("https://github.com/org") is None


def test_erratum_button_fills_the_issue_form(html: Path, repository_url: str) -> None:
    form = yaml.safe_load(ERRATUM_FORM.read_text("utf-8"))
    ids = {item.get("id") for item in form["body"]}
    for name in CHAPTER_IDS:
        page = _page(html, name)
        url = urlsplit(_header_links(page)["erratum-button"])
        assert urljoin(repository_url + "/", "issues/new") == url._replace(query="").geturl()
        query = parse_qs(url.query)
        assert query["template"] == [ERRATUM_FORM.name]
        assert query["title"][0].startswith(form["title"].strip())
        fields = set(query) - {"template", "title"}
        assert fields and fields <= ids
        title = page.find("h1").get_text().strip().rstrip("#").strip()
        assert query["chapter"] == [f"{title} ({name})"]


def test_repository_edit_and_issue_buttons(html: Path, repository_url: str) -> None:
    for name in CHAPTER_IDS:
        links = _header_links(_page(html, name))
        assert links["source-repository-button"] == repository_url
        edit = urlsplit(links["source-edit-button"]).path
        # .../edit/<branch>/docs/sessions/<name>.md, a file of the repository
        path = edit.split("/edit/", 1)[1].split("/", 1)[1]
        assert (ROOT / path).is_file() and path == f"docs/sessions/{name}.md"
        assert links["source-issues-button"].startswith(f"{repository_url}/issues/new")


def test_no_launch_or_erratum_on_other_pages(html: Path) -> None:
    for path in (html / "index.html", html / "bibliography.html", html / "community/about.html"):
        page = BeautifulSoup(path.read_text("utf-8"), "html.parser")
        links = _header_links(page)
        assert not {"launch-colab-button", "launch-binder-button", "erratum-button"} & set(links)


def test_header_controls_have_accessible_names(html: Path) -> None:
    pages = [html / "index.html", *(html / "sessions").glob("*.html")]
    for path in pages:
        page = BeautifulSoup(path.read_text("utf-8"), "html.parser")
        for control in page.select(".article-header-buttons a, .article-header-buttons button"):
            name = control.get("aria-label") or control.get("title") or control.get_text().strip()
            assert name, f"{path.name}: a header control has no accessible name: {control}"


def test_bad_inputs_name_the_file(tmp_path: Path) -> None:
    form = tmp_path / "erratum.yml"
    form.write_text("title: '[Erratum]: '\nbody:\n  - type: input\n    id: page\n")
    with pytest.raises(ConfigError, match=r"erratum\.yml: no field with id 'chapter'"):
        notebooks.erratum_title_prefix(form)
    assert notebooks.erratum_title_prefix(ERRATUM_FORM) == "[Erratum]: "
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("numpy==2.0\n")
    with pytest.raises(ConfigError, match=r"constraints\.txt: no 'torch==VERSION' line"):
        notebooks.torch_pin(constraints)
