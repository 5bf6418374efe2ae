"""Sphinx configuration of the initdocs book (MyST Markdown notebooks executed by myst-nb)."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import initdocs
from initdocs.book.kernels import prepare_kernels
from initdocs.book.notebook_cells import MYST_EXTENSIONS

DOCS = Path(__file__).parent
ROOT = DOCS.parent
BUILD = DOCS / "_build"


def _git_commit() -> str:
    """Short commit of the checkout being built, with '+dirty' for uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=10", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


# -- Project ------------------------------------------------------------------------------
project = "initdocs"
html_title = "initdocs: the MLT __init__ book"
author = "initdocs contributors"
copyright = "2021-2026, initdocs contributors"
release = version = initdocs.__version__
commit = _git_commit()

# Where the sources live and where the book is published. One place for both: the header
# buttons, "edit this page", the erratum links, the sitemap, social cards and the launch
# buttons all derive from them. Forks and CI set the variables (see the Pages workflow).
repository_url = os.environ.get(
    "INITDOCS_REPOSITORY_URL", "https://github.com/Machine-Learning-Tokyo/initdocs"
).rstrip("/")
repository_branch = os.environ.get("INITDOCS_REPOSITORY_BRANCH", "main")
html_baseurl = os.environ.get(
    "READTHEDOCS_CANONICAL_URL",
    os.environ.get("INITDOCS_BASE_URL", "https://machine-learning-tokyo.github.io/initdocs/"),
)

extensions = [
    "myst_nb",  # registers myst_parser itself
    "sphinx_design",
    "sphinx_copybutton",
    "initdocs.book",  # the book's own extension; sets up sphinxcontrib-bibtex and opengraph
]
exclude_patterns = ["_build", "jupyter_execute", ".jupyter_cache", "**.ipynb_checkpoints"]
nitpicky = True
initdocs_check = True  # `initdocs check` runs before the build: a broken chapter stops it

# -- MyST ---------------------------------------------------------------------------------
# One list for the build, `initdocs check` and the execution fingerprint, which read chapters
# with the same extensions (initdocs.book.notebook_cells).
myst_enable_extensions = list(MYST_EXTENSIONS)
myst_heading_anchors = 3
myst_dmath_double_inline = True
myst_update_mathjax = False  # formulas are MathML written at build time (initdocs.book.mathml)
# The commit is no substitution: one that changes re-reads every page. {build-info}`commit`
# fills it in when a page is written (initdocs.book.stable_config).
myst_substitutions = {"version": release}
initdocs_commit = commit

# -- Execution (myst-nb) ------------------------------------------------------------------
# myst-nb's cache is keyed on code cells; initdocs.book.execution adds to each chapter a hidden
# cell with the fingerprint of the initdocs modules it imports, so a change in src/initdocs
# re-executes exactly the chapters that use it.
nb_execution_mode = os.environ.get("NB_EXECUTION_MODE", "cache")
nb_execution_cache_path = os.environ.get("INITDOCS_CACHE_DIR", str(BUILD / ".jupyter_cache"))
nb_execution_timeout = int(os.environ.get("NB_EXECUTION_TIMEOUT", "300"))  # per cell
# A failing cell is a warning at its chapter, with the traceback: the other chapters still
# run, the build fails (-W) and names every failed chapter with what to do
# (initdocs.book.execution); raising instead would end in Sphinx's crash report.
nb_execution_raise_on_error = False
nb_execution_show_tb = True
nb_merge_streams = True
nb_output_stderr = "warn"  # stderr in a cell (e.g. a library warning) is a build warning
nb_kernel_rgx_aliases = {".*": "python3"}  # run every chapter in the builder's own Python

# `nox -s preview -- NN-name` executes only that chapter: the others are built without running
# their code (so links to them still resolve). Several chapters can be named, with commas.
# `initdocs check`'s problems are then listed as warnings, so a chapter in progress renders.
_preview = [
    name.strip().removesuffix(".md").rsplit("/", 1)[-1]
    for name in os.environ.get("INITDOCS_PREVIEW", "").split(",")
    if name.strip()
]
if _preview:  # a name with no chapter is refused by the check, with our message
    _chapters = sorted(p.stem for p in (DOCS / "sessions").glob("[0-9][0-9]-*.md"))
    nb_execution_excludepatterns = [f"sessions/{c}.md" for c in _chapters if c not in _preview]
    initdocs_check_only = _preview
    initdocs_check_stops = False

# Kernels inherit this environment: one thread each, offline, no start-up notice.
prepare_kernels(BUILD)

# -- Citations ----------------------------------------------------------------------------
bibtex_bibfiles = ["../references.bib"]
bibtex_default_style = "alpha"
bibtex_reference_style = "author_year"
# Chapters keep their own reference list and the bibliography page lists every entry; since
# sphinxcontrib-bibtex 2.7 a citation resolves to its own page's list first, so the
# cross-page duplicate is expected. Duplicates *within* a page are still reported.
suppress_warnings = ["bibtex.duplicate_citation"]

# -- HTML ---------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
templates_path = ["_templates"]
html_static_path = ["_static"]
html_css_files = ["initdocs.css"]
html_last_updated_fmt = None
html_copy_source = True
html_favicon = "_static/favicon.svg"  # logo and favicon: initdocs.book.logo
ogp_enable_meta_description = False  # initdocs.book.page_meta writes the descriptions
# The social cards' font ships one weight; matplotlib says so on stderr for every card.
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "home_page_in_toc": True,
    "use_download_button": True,
    "repository_url": repository_url,
    "repository_branch": repository_branch,
    "path_to_docs": "docs",
    "use_repository_button": True,
    "use_edit_page_button": True,
    "use_issues_button": True,
    "logo": {
        "image_light": "_static/logo-light.svg",
        "image_dark": "_static/logo-dark.svg",
        "alt_text": "MLT __init__ logo",
        "text": html_title,
    },
    "extra_footer": (
        f'<p class="initdocs-build">Built with initdocs {release} from commit '
        f"<code>{commit}</code>.</p>"
    ),
}
# A first visit follows the system's light or dark setting. Unset, the theme's script starts
# from an empty mode and logs a console error ("invalid theme mode") on every first visit.
html_context = {"default_mode": "auto"}
# `nox -s pdf` (INITDOCS_PDF=1) prints the book to PDF and links the files in every chapter's
# download menu; other builds keep the theme's "print to PDF" entry (initdocs.book.pdf).
initdocs_pdf = os.environ.get("INITDOCS_PDF") == "1"
