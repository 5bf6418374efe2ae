"""Shared paths and fixtures of the test suite."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import nox.registry
import pytest
import torch

# Tests run like the book's chapters (see docs/conf.py): on one thread, which keeps float
# results independent of the machine and avoids oversubscribing shared CPUs.
torch.set_num_threads(1)

# CI renders the book from the shards' merged cache with INITDOCS_CACHE_ONLY=1 around
# `nox -s tests`; that applies to the book's build, not to the small books the tests execute.
os.environ.pop("INITDOCS_CACHE_ONLY", None)

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BUILD = DOCS / "_build"
HTML = BUILD / "html"
BIB = ROOT / "references.bib"
RECORDS = DOCS / "sessions.toml"
CHAPTERS = sorted((DOCS / "sessions").glob("[0-9][0-9]-*.md"))


@pytest.fixture(scope="session")
def html() -> Path:
    """The executed book, built by ``nox -s tests`` (or ``nox -s docs``) before pytest runs."""
    if not (HTML / "index.html").is_file():
        pytest.fail(
            f"the book is not built: {HTML / 'index.html'} is missing. Run `nox -s tests`, "
            "which builds the book before testing it, or `nox -s docs` before pytest."
        )
    return HTML


@pytest.fixture(scope="session")
def noxfile() -> ModuleType:
    """noxfile.py, imported: its sessions register themselves in nox's registry."""
    spec = importlib.util.spec_from_file_location("noxfile", ROOT / "noxfile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def nox_sessions(noxfile) -> set[str]:
    """Names of the sessions noxfile.py defines, from nox's own registry."""
    return set(nox.registry.get())


#: Test files that run Sphinx builds, chapters or a browser, longest first (measured with
#: ``--durations``). ``nox -s tests`` hands whole files to its workers in collection order
#: (``--dist loadfile --no-loadscope-reorder``): started first, they end beside the quick
#: files instead of after them, and both workers finish together.
LONG_FIRST = (
    "test_determinism.py",
    "test_browser.py",
    "test_pdf.py",
    "test_discussion_browser.py",
    "test_build_errors.py",
    "test_execution.py",
    "test_shards.py",
    "test_source.py",
    "test_records_as_text.py",
    "test_rebuild.py",
    "test_discussion.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the files of LONG_FIRST first, in its order; the others keep theirs."""
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FIRST)))
