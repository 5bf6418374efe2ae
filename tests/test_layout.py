"""The package's layout: what readers import stays apart from the book's machinery, the
import graph has no circles, and the ``initdocs`` command starts without torch or Sphinx."""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from pathlib import Path

from conftest import DOCS, ROOT

PACKAGE = ROOT / "src" / "initdocs"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The ``initdocs`` modules that ``path`` imports, anywhere in it (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "initdocs"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "initdocs":
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {name for name in found if name in modules}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_readers_modules_never_import_the_books_machinery():
    readers = [p for p in PACKAGE.glob("*.py")]
    assert {p.stem for p in readers} >= {"xception", "ssd", "train", "data", "resnet"}
    for path in readers:
        book = {name for name in imports_of(path) if name.startswith("initdocs.book")}
        assert not book, f"{path.name} imports {book}"


def test_the_package_has_no_import_circles():
    edges = graph()
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if nxt == node:
                continue
            if state.get(nxt) == "open":
                circle = [*trail[trail.index(nxt) :], nxt]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = "done"

    for node in edges:
        if node not in state:
            visit(node, [node])


def test_conf_lists_one_extension_of_the_book():
    namespace: dict = {}
    source = (DOCS / "conf.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    assign = next(
        n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "extensions"
    )
    namespace["extensions"] = ast.literal_eval(assign.value)
    ours = [name for name in namespace["extensions"] if name.startswith("initdocs")]
    assert ours == ["initdocs.book"]


def test_the_command_starts_without_torch_or_sphinx():
    code = (
        "import sys, time\n"
        "start = time.perf_counter()\n"
        "from initdocs.book.cli import main\n"
        "print(time.perf_counter() - start)\n"
        "heavy = ('torch', 'sphinx', 'docutils', 'matplotlib')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    seconds, loaded = run.stdout.splitlines()
    assert loaded == "[]"
    assert float(seconds) < 1.0


def test_help_and_check_of_the_whole_book_are_quick():
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "initdocs.book.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and "initdocs" in run.stdout
    check = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "initdocs.book.cli",
            "--root",
            str(ROOT),
            "check",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "no problems" in check.stderr
    assert "torch" not in {
        ln.split("|")[-1].strip().split(".")[0]
        for ln in check.stderr.splitlines()
        if "import time:" in ln
    }
    assert time.perf_counter() - start < 20  # two interpreters on a loaded two-core machine
