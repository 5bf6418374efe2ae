"""Math that renders offline: MathJax served from the book itself, never from a CDN.

MathJax comes from the PyPI package ``sphinx-mathjax-offline`` (MathJax 3.2.2, Apache-2.0,
inside its wheel), used only as a source of files: that package's own Sphinx extension copies
all 24 MB of MathJax and does not declare that it is safe for parallel builds, which
``sphinx-build -j`` then reports as a warning. This extension copies what the book's pages
can load, about 7 MB: the ``tex-chtml`` component with its web fonts, the TeX extensions it
loads on demand (``\\boldsymbol``, ...) and the accessibility explorer with its speech rules.
A page loads only ``tex-chtml.js`` and the fonts it uses.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError

from initdocs.book.metadata import extension_metadata

PACKAGE = "sphinx-mathjax-offline"
COMPONENT = "tex-chtml.js"
#: What pages may load, relative to MathJax's folder (files and folders).
PARTS = (COMPONENT, "output/chtml/fonts/woff-v2", "input/tex/extensions", "ui", "a11y", "sre")
TARGET = "_static/mathjax"


def mathjax_source() -> Path:
    """The folder of MathJax's files inside the installed ``sphinx-mathjax-offline``."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"the package {PACKAGE} is not installed; it provides MathJax for offline math. "
            'Install the book\'s dependencies: pip install -e ".[docs]"'
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax"
    if not (folder / COMPONENT).is_file():
        raise ConfigError(f"{folder / COMPONENT} is missing: reinstall {PACKAGE}")
    return folder


def copy_mathjax(source: Path, outdir: Path) -> None:
    """Copy :data:`PARTS` of MathJax into ``outdir/_static/mathjax`` (unchanged files kept)."""
    target = outdir / TARGET
    for part in PARTS:
        src = source / part
        if src.is_dir():
            shutil.copytree(src, target / part, dirs_exist_ok=True)
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / part)


def _configure(app: Sphinx, config: Config) -> None:
    mathjax_source()  # fail early, with what to do, if the package is missing
    config.mathjax_path = f"mathjax/{COMPONENT}"  # relative to _static


def _copy(app: Sphinx, exception: BaseException | None) -> None:
    if exception is None and app.builder.format == "html":
        copy_mathjax(mathjax_source(), Path(app.outdir))


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", _configure)
    app.connect("build-finished", _copy)
    return extension_metadata()
