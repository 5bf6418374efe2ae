"""What a chapter's outputs depend on, so that a change re-executes exactly the chapters it affects.

myst-nb's execution cache is keyed on a notebook's code cells. A chapter's outputs also depend
on the ``initdocs`` modules its cells import (directly or through other modules) and on the
versions of the libraries doing the numerics. :func:`chapter_dependencies` finds both from the
chapter's source text, statically: the code cells (read by :mod:`initdocs.book.notebook_cells`,
as myst-nb reads them) are parsed with :mod:`ast`, the imported
``initdocs`` modules are followed through their own imports (absolute ``initdocs.x`` and
relative ``.x`` imports, including those inside functions), and every module in that closure
is hashed. The code a chapter shows (``{source}`` directives, :mod:`initdocs.book.source`)
counts like an import of its module: an edit to it updates the page. The book puts the result
into the notebook as a hidden cell (see :mod:`initdocs.book.directives`), so the cache key
changes exactly when a dependency does.

Importing ``initdocs.anything`` runs ``initdocs/__init__.py`` first, so that file and what it
imports belong to every chapter that imports the package at all.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import initdocs
from initdocs.book.notebook_cells import read_myst

PACKAGE = "initdocs"
PACKAGE_DIR = Path(initdocs.__file__).parent

#: Libraries whose version can change a chapter's numbers or figures.
NUMERIC_LIBRARIES = ("torch", "numpy", "scipy", "scikit-learn", "matplotlib")


@dataclass(frozen=True)
class Dependencies:
    """The modules (relative to the package folder) and library versions of one chapter."""

    modules: tuple[str, ...]
    libraries: tuple[str, ...]
    fingerprint: str

    def hidden_cell(self) -> str:
        """A MyST code cell recording the dependencies; tagged so that no page shows it."""
        return (
            "\n\n```{code-cell} ipython3\n:tags: [remove-cell]\n\n"
            "# Added by the book's build, not part of the chapter: the outputs depend on\n"
            f"# {', '.join(self.modules) or 'no initdocs module'}\n"
            f"# and on {', '.join(self.libraries)}. Fingerprint {self.fingerprint}.\n"
            "```\n"
        )


def code_cells(source: str) -> list[str]:
    """The code of every cell myst-nb executes in a MyST Markdown notebook, options removed.

    The cells are those :mod:`initdocs.book.notebook_cells` reads, the ones ``initdocs check``
    checks.
    """
    return [cell.source for cell in read_myst(source).cells]


def _python(code: str) -> str:
    """Cell code without IPython magics and shell escapes (``%`` and ``!`` lines)."""
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in code.splitlines()
    )


def _module_file(name: str, package_dir: Path) -> Path | None:
    """The file of ``initdocs.<name>`` (``name`` dotted, "" for the package), None if none."""
    parts = name.split(".") if name else []
    base = package_dir.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if parts and base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _package_parts(name: str, package_dir: Path) -> list[str]:
    """The package a module belongs to, for resolving its relative imports."""
    parts = name.split(".") if name else []
    path = _module_file(name, package_dir)
    return parts if path is not None and path.name == "__init__.py" else parts[:-1]


def _imported(tree: ast.AST, current: str | None, package_dir: Path) -> set[str]:
    """Dotted names (relative to the package) of package modules imported in ``tree``.

    ``current`` is the importing module's dotted name (for relative imports), None for a cell.
    """
    found: set[str] = set()

    def add(name: str) -> None:  # a dotted name relative to the package, "" = the package
        parts = name.split(".") if name else []
        for depth in range(len(parts) + 1):  # importing a.b also runs a/__init__.py
            prefix = ".".join(parts[:depth])
            if _module_file(prefix, package_dir) is not None:
                found.add(prefix)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    add(alias.name[len(PACKAGE) + 1 :])
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                if current is None:
                    continue
                anchor = _package_parts(current, package_dir)
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            elif node.module == PACKAGE or (node.module or "").startswith(PACKAGE + "."):
                base = (node.module or "")[len(PACKAGE) + 1 :]
            else:
                continue
            add(base)
            for alias in node.names:  # `from initdocs import resnet` imports a module
                sub = f"{base}.{alias.name}" if base else alias.name
                if _module_file(sub, package_dir) is not None:
                    add(sub)
    return found


@functools.lru_cache(maxsize=512)
def _module_imports(name: str, package_dir: Path, text: str) -> frozenset[str]:
    """The package modules the module ``name`` (reading ``text``) imports.

    Keyed on the text, so an edited module is parsed again; the modules every chapter shares
    (``train``, ``data``, the package's ``__init__``) are parsed once per build, not once per
    chapter.
    """
    tree = ast.parse(text, filename=f"{PACKAGE}.{name}" if name else PACKAGE)
    return frozenset(_imported(tree, name, package_dir))


def shown_names(source: str) -> list[str]:
    """The dotted names the ``{source}`` directives of the MyST ``source`` text show."""
    names = []
    for fence in read_myst(source).fences:
        argument = fence.info.strip().split(None, 1)[1:]  # "{source} initdocs.ssd.match"
        if fence.name == "source" and argument and argument[0].split():
            names.append(argument[0].split()[0])
    return names


def _shown_modules(source: str, package_dir: Path) -> set[str]:
    """The modules (relative to the package) whose code ``{source}`` directives show.

    A shown ``initdocs.a.b.f`` counts as ``import initdocs.a.b``: its longest prefix that is a
    module of the package. A name outside the package is left to the directive to refuse.
    """
    found: set[str] = set()
    for name in shown_names(source):
        parts = name.split(".")
        if parts[0] != PACKAGE:
            continue
        module = next(
            (
                ".".join(parts[1:depth])
                for depth in range(len(parts), 1, -1)
                if _module_file(".".join(parts[1:depth]), package_dir) is not None
            ),
            None,
        )
        if module:
            found |= _imported(ast.parse(f"import {PACKAGE}.{module}"), None, package_dir)
    return found


def module_closure(source: str, package_dir: Path | None = None) -> list[Path]:
    """Files of every package module that running ``source`` (a chapter) imports or that it
    shows (``{source}``), sorted.

    ``package_dir`` defaults to the installed package's folder.
    """
    package_dir = package_dir or PACKAGE_DIR
    todo: set[str] = set()
    for cell in code_cells(source):
        try:
            tree = ast.parse(_python(cell))
        except SyntaxError:
            continue  # the kernel reports it when the cell runs
        todo |= _imported(tree, None, package_dir)
    todo |= _shown_modules(source, package_dir)  # shown code counts like imported code
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name, package_dir)
        if path is None:
            continue
        todo |= _module_imports(name, package_dir, path.read_text(encoding="utf-8")) - seen
    files = {_module_file(name, package_dir) for name in seen}
    return sorted(path for path in files if path is not None)


@functools.cache
def library_versions() -> tuple[str, ...]:
    """``name==version`` of Python and the numeric libraries installed (missing ones omitted)."""
    versions = [f"python=={platform.python_version()}"]
    for name in NUMERIC_LIBRARIES:
        try:
            versions.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return tuple(versions)


def chapter_dependencies(source: str, package_dir: Path | None = None) -> Dependencies:
    """The dependencies of a chapter given its MyST source text, with their fingerprint."""
    package_dir = package_dir or PACKAGE_DIR
    files = module_closure(source, package_dir)
    libraries = library_versions()
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    for library in libraries:
        digest.update(library.encode() + b"\0")
    modules = tuple(
        PACKAGE
        if path == package_dir / "__init__.py"
        else f"{PACKAGE}." + ".".join(path.relative_to(package_dir).with_suffix("").parts)
        for path in files
    )
    return Dependencies(modules, libraries, digest.hexdigest()[:16])
