"""A reader's ``pip install initdocs`` brings only what the chapters' code imports; the
``initdocs`` command needs the ``docs`` extra and says so, without a traceback, when a tool
is missing. Each case runs the command in a fresh interpreter where importing the tool fails
as if it were not installed (``sys.modules[name] = None``)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT
from packaging.requirements import Requirement

PACKAGE = ROOT / "src" / "initdocs"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
HINT = "pip install 'initdocs[docs]'"


def names(requirements: list[str]) -> set[str]:
    """Normalized distribution names (PEP 503) of requirement strings."""
    return {re.sub(r"[-_.]+", "-", Requirement(r).name).lower() for r in requirements}


def distribution(module: str) -> str:
    """The normalized name of the installed distribution that provides ``module``."""
    found = importlib.metadata.packages_distributions()[module]
    return re.sub(r"[-_.]+", "-", found[0]).lower()


def run_without(module: str, *args: str, root: Path = ROOT) -> subprocess.CompletedProcess:
    """``initdocs --root ROOT ARGS`` in an interpreter where ``import module`` fails."""
    code = (
        "import sys\n"
        f"sys.modules[{module!r}] = None\n"
        "from initdocs.book.cli import main\n"
        "raise SystemExit(main(sys.argv[1:]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("module", "command"),
    [("yaml", "check"), ("pybtex", "check"), ("pybtex", "sessions"), ("yaml", "chapter")],
)
def test_a_missing_tool_gets_one_line_naming_the_extra(module, command):
    args = [command, "2"] if command == "chapter" else [command]
    run = run_without(module, *args)
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr == (
        f"initdocs {command} needs the book's tools (no module named {module!r}): {HINT}\n"
    )


def test_new_without_the_tools_writes_nothing(tmp_path):
    (tmp_path / "docs").mkdir()
    records = tmp_path / "docs" / "sessions.toml"
    records.write_bytes((ROOT / "docs" / "sessions.toml").read_bytes())
    new = ["new", "--date", "2030-01-01", "--title", "T", "--paper", "P", "--topic", "CV: X"]
    new += ["--key", "k", "--paper-url", "https://example.org", "--presenter", "A"]
    run = run_without("yaml", *new, root=tmp_path)
    assert run.returncode == 2 and HINT in run.stderr and "Traceback" not in run.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["docs", "sessions.toml"]
    assert records.read_bytes() == (ROOT / "docs" / "sessions.toml").read_bytes()


def test_help_needs_no_tools():
    run = run_without("yaml", "--help")
    assert run.returncode == 0 and "initdocs" in run.stdout and run.stderr == ""


def test_the_readers_install_is_what_the_papers_modules_import():
    """Every package a paper module or shared helper imports is a base dependency, and the
    base dependencies are exactly torch, numpy, matplotlib, scikit-learn and scipy."""
    base = names(PYPROJECT["dependencies"])
    assert base == {"torch", "numpy", "matplotlib", "scikit-learn", "scipy"}
    imported = set()
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"initdocs", "__future__"}
    assert {distribution(module) for module in third_party} == base


def test_the_docs_extra_holds_what_the_command_imports():
    code = (
        "import sys, sysconfig\n"
        "before = set(sys.modules)\n"
        "import initdocs.book.cli\n"
        "sites = tuple({sysconfig.get_path('purelib'), sysconfig.get_path('platlib')})\n"
        "new = [m for m in set(sys.modules) - before\n"
        "       if (getattr(sys.modules[m], '__file__', None) or '').startswith(sites)]\n"
        "print(*sorted({m.split('.')[0] for m in new}))\n"
    )  # the modules that came from installed distributions
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = set(run.stdout.split()) - {"initdocs"}  # an editable install lies there too
    needed = {distribution(module) for module in loaded}
    assert needed == {"pyyaml", "pybtex"}  # and what they need, which pip brings with them
    docs = names(PYPROJECT["optional-dependencies"]["docs"])
    assert needed <= docs
    assert {"icalendar", "pyyaml", "pybtex"} <= docs - names(PYPROJECT["dependencies"])
