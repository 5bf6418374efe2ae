"""Chapter downloads (.ipynb and MyST source), launch buttons and the erratum button.

A Sphinx extension (``"initdocs.book.notebooks"`` in ``docs/conf.py``). At the end of an HTML
build it writes, for every chapter ``docs/sessions/NN-name.md``:

* ``<outdir>/_notebooks/sessions/NN-name.ipynb``: the chapter as a notebook *with the outputs
  of the build* (so readers see the figures without running anything), cells tagged
  ``remove-cell`` left out, stream outputs merged as on the HTML page, and a first cell that
  installs ``initdocs`` where it is missing (Colab, Binder);
* ``<outdir>/_notebooks/sessions/NN-name.md``: the MyST source, byte for byte;
* ``<outdir>/_notebooks/requirements.txt`` and ``runtime.txt`` (what Binder installs) and a
  ``README.md`` explaining the folder.

The Pages workflow publishes ``_notebooks/`` as the branch ``notebooks`` of the repository,
which is where the Colab and Binder buttons of each chapter point.

On chapter pages it also adds to sphinx-book-theme's header: both downloads in the download
menu, a launch menu (Colab, Binder; only for a github.com ``repository_url``) and a "Report an
erratum" entry that opens the repository's erratum issue form with the chapter filled in.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import nbformat
import yaml
from sphinx.application import Sphinx
from sphinx.errors import ConfigError
from sphinx.util import logging

from initdocs.book.metadata import extension_metadata
from initdocs.book.outputs import merge_streams

logger = logging.getLogger(__name__)

#: Folder of the HTML output holding the downloads; published as the ``notebooks`` branch.
FOLDER = "_notebooks"
#: Branch the Pages workflow force-pushes ``FOLDER`` to.
BRANCH = "notebooks"
#: The CPU build of PyTorch (the PyPI wheel on Linux is the large CUDA build).
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: The erratum issue form (relative to the repository root) and the id of its chapter field.
ERRATUM_FORM = Path(".github/ISSUE_TEMPLATE/erratum.yml")
ERRATUM_CHAPTER_FIELD = "chapter"

#: sphinx-book-theme's pictures of the launch services (in its _static/images).
LAUNCH_ICONS = {
    "Colab": "_static/images/logo_colab.png",
    "Binder": "_static/images/logo_binder.svg",
}

_CHAPTER = re.compile(r"^sessions/\d{2}-[a-z0-9-]+$")


def is_chapter(docname: str) -> bool:
    """Whether ``docname`` is a chapter (``sessions/NN-name``)."""
    return bool(_CHAPTER.match(docname))


def github_repo(repository_url: str) -> tuple[str, str] | None:
    """``(org, repo)`` of a ``https://github.com/org/repo`` URL, else ``None``."""
    parts = urlsplit(repository_url)
    path = parts.path.strip("/").removesuffix(".git").split("/")
    if parts.netloc.lower() not in ("github.com", "www.github.com") or len(path) != 2:
        return None
    return path[0], path[1]


def package_requirement(repository_url: str, branch: str) -> str:
    """A pip requirement installing ``initdocs`` from the repository's branch."""
    return f"initdocs @ git+{repository_url}@{branch}"


def torch_pin(constraints: Path) -> str:
    """The ``torch==X`` line of ``constraints.txt``, the one pin every install uses."""
    for line in constraints.read_text(encoding="utf-8").splitlines():
        if re.match(r"^torch\s*==", line):
            return line.split("#", 1)[0].replace(" ", "")
    raise ConfigError(
        f"{constraints}: no 'torch==VERSION' line; the Binder requirements pin torch from it. "
        "Add the line (see the README for the CPU build)."
    )


def install_cell_source(repository_url: str, branch: str) -> str:
    """Source of the first cell of every downloaded notebook."""
    requirement = package_requirement(repository_url, branch)
    return (
        "# Make the book's package `initdocs` importable. Nothing happens where it is already\n"
        "# installed; on Colab or Binder it is installed from the book's repository.\n"
        "# Colab already has PyTorch. Elsewhere, install PyTorch's CPU build first, which is\n"
        "# much smaller than the default CUDA build of Linux:\n"
        f"#   %pip install torch --index-url {CPU_INDEX}\n"
        "try:\n"
        "    import initdocs\n"
        "except ImportError:\n"
        f'    %pip install --quiet "{requirement}"\n'
    )


def requirements_txt(repository_url: str, branch: str, pin: str) -> str:
    """Binder's ``requirements.txt``: CPU torch, pinned, then ``initdocs`` from git."""
    return (
        "# Installed by Binder (mybinder.org) for the notebooks of this branch.\n"
        f"--extra-index-url {CPU_INDEX}\n"
        f"{pin}+cpu\n"
        f"{package_requirement(repository_url, branch)}\n"
    )


def downloadable_notebook(
    executed: nbformat.NotebookNode, repository_url: str, branch: str
) -> nbformat.NotebookNode:
    """The notebook readers download: outputs kept, install cell first, valid nbformat 4."""
    notebook = nbformat.v4.new_notebook()
    kernelspec = executed.metadata.get("kernelspec")
    if kernelspec:
        notebook.metadata["kernelspec"] = kernelspec
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.cells.append(
        nbformat.v4.new_code_cell(install_cell_source(repository_url, branch), id="install")
    )
    for index, cell in enumerate(executed.cells):
        if "remove-cell" in cell.get("metadata", {}).get("tags", []):
            continue
        if cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(cell.source, id=f"cell-{index}")
            # Streams merged as on the HTML page (initdocs.book.outputs.merge_streams).
            new.outputs = merge_streams(cell.get("outputs", []))
            new.execution_count = cell.get("execution_count")
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source, id=f"cell-{index}")
        else:
            new = nbformat.v4.new_raw_cell(cell.source, id=f"cell-{index}")
        tags = [t for t in cell.get("metadata", {}).get("tags", []) if t != "remove-cell"]
        if tags:
            new.metadata["tags"] = tags
        notebook.cells.append(new)
    nbformat.validate(notebook)
    return notebook


def launch_urls(repository_url: str, docname: str) -> dict[str, str]:
    """Colab and Binder URLs of a chapter's notebook on the ``notebooks`` branch."""
    repo = github_repo(repository_url)
    if repo is None:
        return {}
    org, name = repo
    path = f"{docname}.ipynb"
    return {
        "Colab": f"https://colab.research.google.com/github/{org}/{name}/blob/{BRANCH}/{path}",
        "Binder": f"https://mybinder.org/v2/gh/{org}/{name}/{BRANCH}?labpath={path}",
    }


def erratum_title_prefix(form: Path) -> str:
    """The title prefix of the erratum issue form; checks it has the chapter field.

    GitHub fills a field of an issue form from the query parameter named after its ``id``.
    """
    try:
        data = yaml.safe_load(form.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{form}: cannot read the erratum issue form: {exc}") from None
    ids = [item.get("id") for item in data.get("body", []) if isinstance(item, dict)]
    if ERRATUM_CHAPTER_FIELD not in ids:
        raise ConfigError(
            f"{form}: no field with id '{ERRATUM_CHAPTER_FIELD}' (ids: {ids}); the erratum "
            "button of every chapter fills it in. Add an input with that id."
        )
    return str(data.get("title", ""))


def erratum_url(repository_url: str, title_prefix: str, title: str, docname: str) -> str:
    """The erratum issue form, with the title and the chapter field filled in."""
    query = urlencode(
        {
            "template": ERRATUM_FORM.name,
            "title": f"{title_prefix}{title}",
            ERRATUM_CHAPTER_FIELD: f"{title} ({docname.rsplit('/', 1)[-1]})",
        }
    )
    return f"{repository_url}/issues/new?{query}"


def _readme(repository_url: str) -> str:
    return (
        "# Notebooks of the initdocs book\n\n"
        "Generated by the book's build; do not edit here. Each chapter of the book is in\n"
        "`sessions/` twice: as a Jupyter notebook with the outputs of the published build,\n"
        "and as its MyST Markdown source. The notebook's first cell installs the `initdocs`\n"
        "package when it is missing, so it runs on Colab and on Binder (which installs\n"
        "`requirements.txt`, with the CPU build of PyTorch). The sources live in\n"
        f"{repository_url}.\n"
    )


def repository(app: Sphinx) -> tuple[str, str]:
    """``(repository_url, repository_branch)`` from sphinx-book-theme's options (conf.py)."""
    options = app.config.html_theme_options
    url = str(options.get("repository_url", "")).rstrip("/")
    if not url:
        raise ConfigError(
            "docs/conf.py: html_theme_options has no 'repository_url'; the download, launch "
            "and erratum links are made from it. Set it to the repository's URL."
        )
    return url, str(options.get("repository_branch", "main"))


def executed_notebook(app: Sphinx, docname: str) -> nbformat.NotebookNode:
    """The chapter as myst-nb executed it, from ``_build/jupyter_execute/<docname>.ipynb``.

    myst-nb writes that file on every read of the chapter; :mod:`initdocs.book.execution`
    makes sure it holds the outputs also when they come from the execution cache. A chapter
    that was not executed (``INITDOCS_PREVIEW``) gives a notebook without outputs.
    """
    folder = Path(app.env.mystnb_config.output_folder)  # type: ignore[attr-defined]
    path = folder.joinpath(*f"{docname}.ipynb".split("/"))
    try:
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{path}: cannot read the executed notebook of {docname} ({exc}); build again "
            "with `nox -s docs`"
        ) from None


def _root(app: Sphinx) -> Path:
    """The repository checkout the book is built from (``docs/..``)."""
    return Path(app.confdir).parent


def _chapters(app: Sphinx) -> list[str]:
    return sorted(d for d in app.env.found_docs if is_chapter(d))


def write_downloads(app: Sphinx, exception: Exception | None) -> None:
    """``build-finished``: write the ``_notebooks`` folder of the HTML output."""
    if exception is not None or app.builder.format != "html":
        return
    url, branch = repository(app)
    out = Path(app.outdir, FOLDER)
    for docname in _chapters(app):
        notebook = downloadable_notebook(executed_notebook(app, docname), url, branch)
        target = out / f"{docname}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)
        shutil.copyfile(app.env.doc2path(docname), out / f"{docname}.md")
    out.mkdir(parents=True, exist_ok=True)
    (out / "requirements.txt").write_text(
        requirements_txt(url, branch, torch_pin(_root(app) / "constraints.txt")),
        encoding="utf-8",
    )
    version = sys.version_info
    (out / "runtime.txt").write_text(f"python-{version.major}.{version.minor}\n")
    (out / "README.md").write_text(_readme(url), encoding="utf-8")


def _find_group(buttons: list[dict[str, Any]], label: str) -> dict[str, Any] | None:
    return next((b for b in buttons if b.get("label") == label), None)


def add_page_buttons(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """``html-page-context`` (after sphinx-book-theme): downloads, launch and erratum."""
    if not is_chapter(pagename) or "header_buttons" not in context:
        return
    url, _ = repository(app)
    pathto = context["pathto"]
    buttons: list[dict[str, Any]] = context["header_buttons"]

    downloads = _find_group(buttons, "download-buttons")
    if downloads is not None:
        entries = [b for b in downloads["buttons"] if b.get("label") != "download-source-button"]
        entries[:0] = [
            {
                "type": "link",
                "url": pathto(f"{FOLDER}/{pagename}.ipynb", 1),
                "text": ".ipynb",
                "tooltip": "Download the notebook, with outputs",
                "icon": "fas fa-code",
                "label": "download-notebook-button",
            },
            {
                "type": "link",
                "url": pathto(f"{FOLDER}/{pagename}.md", 1),
                "text": ".md",
                "tooltip": "Download the MyST Markdown source",
                "icon": "fas fa-file",
                "label": "download-source-button",
            },
        ]
        downloads["buttons"] = entries

    launches = [
        {
            "type": "link",
            "url": launch_url,
            "text": service,
            "tooltip": f"Run this chapter on {service}",
            "icon": LAUNCH_ICONS[service],
            "label": f"launch-{service.lower()}-button",
        }
        for service, launch_url in launch_urls(url, pagename).items()
    ]
    if launches:
        position = buttons.index(downloads) + 1 if downloads in buttons else len(buttons)
        buttons.insert(
            position,
            {
                "type": "group",
                "tooltip": "Run this chapter online",
                "icon": "fas fa-rocket",
                "buttons": launches,
                "label": "launch-buttons",
            },
        )

    erratum = {
        "type": "link",
        "url": erratum_url(
            url,
            erratum_title_prefix(_root(app) / ERRATUM_FORM),
            context.get("title", pagename),
            pagename,
        ),
        "text": "Report an erratum",
        "tooltip": "Report a mistake in this chapter",
        "icon": "fas fa-bug",
        "label": "erratum-button",
    }
    source = _find_group(buttons, "source-buttons")
    if source is not None:
        source["buttons"].append(erratum)
    else:
        buttons.append(erratum)


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("myst_nb")
    # After sphinx-book-theme's own handlers (priority 501), which build header_buttons.
    app.connect("html-page-context", add_page_buttons, priority=510)
    app.connect("build-finished", write_downloads)
    app.add_css_file("initdocs-h2.css")
    return extension_metadata()
