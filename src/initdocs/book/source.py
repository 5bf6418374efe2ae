"""``{source}``: the code of a package object beside the math it implements (a part of
``initdocs.book``).

In a chapter::

    ```{source} initdocs.ssd.match
    ```

shows the source of ``initdocs.ssd.match`` (a function, class or method of the ``initdocs``
package, as :func:`inspect.getsource` gives it, dedented) highlighted as Python, under a caption
naming the object and linking to those lines in the repository at the commit the page was
built from (``<repository_url>/blob/<commit>/src/initdocs/ssd.py#L10-L40``).

* **Collapsing.** The code sits in a ``<details>`` element: open when it has at most
  :data:`COLLAPSE_AFTER` lines, closed (one click away) when it is longer, so a long class does
  not push the equations it implements off the screen. ``:open:`` or ``:closed:`` overrides.
* **The commit** is filled in when the page is written (``doctree-resolved``), like
  ``{build-info}`commit``` (:mod:`initdocs.book.stable_config`): a new commit rewrites pages,
  it never makes Sphinx read them again. A ``+dirty`` suffix is dropped from the link (the
  last commit); with no commit known the link points at the repository's branch.
* **Re-reading.** The object's file is a dependency of the page (``note_dependency``) and its
  module is part of a chapter's execution fingerprint like an import
  (:func:`initdocs.book.dependencies.shown_names`): an edit to the shown code updates the page.
* **Mistakes.** An object that cannot be shown (no such module or attribute, not under
  ``initdocs.``, no Python source) is an error at the chapter's file and line saying what to
  write instead; the build (``-W``) fails with it, without a traceback.
"""

from __future__ import annotations

import importlib
import inspect
import textwrap
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from initdocs.book.metadata import extension_metadata

PACKAGE = "initdocs"
#: Where the package's files are in the repository (its ``src`` layout).
REPOSITORY_FOLDER = "src/initdocs"
#: Code longer than this many lines starts closed.
COLLAPSE_AFTER = 40
#: The branch linked to when the build does not know its commit.
FALLBACK_REF = "main"
_CLASS = "initdocs-source"


class collapsible(nodes.General, nodes.Element):
    """A ``<details>`` element: ``summary`` is its always-visible line, ``open`` its state."""


def _visit_collapsible_html(self: Any, node: collapsible) -> None:
    opened = " open" if node["open"] else ""
    summary = self.encode(node["summary"])
    self.body.append(f'<details class="{_CLASS}-code"{opened}><summary>{summary}</summary>\n')


def _depart_collapsible_html(self: Any, node: collapsible) -> None:
    self.body.append("</details>\n")


def _pass(self: Any, node: nodes.Node) -> None:
    """Other builders show the code without the ``<details>`` element."""


class ShownSourceError(Exception):
    """An object ``{source}`` cannot show; the message says what to write instead."""


def _import(dotted: str) -> Any | None:
    """The module ``dotted``, None if there is no such module; raises if it fails to import."""
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if dotted == missing or dotted.startswith(missing + "."):
            return None  # this name is no module (perhaps an attribute of a shorter one)
        raise ShownSourceError(f"importing {dotted!r} failed: {exc}") from None
    except Exception as exc:  # the module itself is broken
        raise ShownSourceError(
            f"importing {dotted!r} failed: {type(exc).__name__}: {exc}"
        ) from None


def resolve(name: str) -> Any:
    """The object ``name`` (``initdocs.module.attr[.attr...]``): a function, class or method.

    Its module is the longest importable prefix of ``name``; raises :class:`ShownSourceError`
    saying what is wrong and what to write.
    """
    parts = name.split(".")
    if parts[0] != PACKAGE or len(parts) < 3 or not all(p.isidentifier() for p in parts):
        raise ShownSourceError(
            f"{name!r} is no object of the {PACKAGE} package; give its dotted name, module "
            f"first, e.g. '{PACKAGE}.ssd.match' or '{PACKAGE}.ssd.MultiBoxLoss.forward'"
        )
    for depth in range(len(parts) - 1, 0, -1):
        module = _import(".".join(parts[:depth]))
        if module is not None:
            break
    if depth == 1:  # only the package itself imported
        raise ShownSourceError(
            f"no module {'.'.join(parts[:2])!r}: give a module of the {PACKAGE} package "
            f"(a file in {REPOSITORY_FOLDER}/), e.g. '{PACKAGE}.ssd.match'"
        )
    obj: Any = module
    for index in range(depth, len(parts)):
        if not hasattr(obj, parts[index]):
            raise ShownSourceError(
                f"{'.'.join(parts[:index])!r} has no attribute {parts[index]!r}; check the "
                f"name against the code in {REPOSITORY_FOLDER}/"
            )
        obj = getattr(obj, parts[index])
    if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismethod(obj)):
        raise ShownSourceError(
            f"{name!r} is a {type(obj).__name__}, not a function, class or method; "
            "show the function or class that makes it"
        )
    return obj


def source_lines(obj: Any) -> tuple[Path, str, int, int]:
    """The file of ``obj``, its dedented source, and its first and last line in that file."""
    try:
        path = Path(inspect.getsourcefile(obj) or "")
        lines, first = inspect.getsourcelines(obj)
    except (OSError, TypeError) as exc:
        raise ShownSourceError(f"no Python source for {obj!r}: {exc}") from None
    package_dir = Path(importlib.import_module(PACKAGE).__file__ or "").parent
    if not path.is_relative_to(package_dir):
        raise ShownSourceError(
            f"{obj!r} is defined in {path}, outside the {PACKAGE} package; show code of the "
            "package itself"
        )
    code = textwrap.dedent("".join(lines)).rstrip("\n")
    return path.relative_to(package_dir), code, first, first + len(lines) - 1


def blob_url(repository: str, commit: str, path: str, first: int, last: int) -> str:
    """The address of lines ``first``-``last`` of ``path`` at ``commit`` on GitHub.

    A ``+dirty`` suffix (uncommitted changes) is dropped: the link shows the last commit.
    """
    ref = commit.split("+", 1)[0].strip()
    return f"{repository.rstrip('/')}/blob/{ref}/{path}#L{first}-L{last}"


class SourceDirective(SphinxDirective):
    """``{source} initdocs.module.object``: that object's code, captioned and linked."""

    required_arguments = 1
    has_content = False
    option_spec = {"open": directives.flag, "closed": directives.flag}  # noqa: RUF012

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        try:
            obj = resolve(name)
            relative, code, first, last = source_lines(obj)
        except ShownSourceError as exc:
            raise self.error(f"source: {exc}") from None
        package_dir = Path(importlib.import_module(PACKAGE).__file__ or "").parent
        self.env.note_dependency(str(package_dir / relative))
        path = f"{REPOSITORY_FOLDER}/{relative.as_posix()}"
        count = last - first + 1

        caption = nodes.paragraph(classes=[f"{_CLASS}-caption"])
        caption += nodes.literal(name, name)
        caption += nodes.Text(", ")
        # The address is completed when the page is written (the commit): see _fill_links.
        label = f"{path}, lines {first}–{last}"
        caption += nodes.reference(
            label, label, refuri="", classes=[f"{_CLASS}-link"], initdocs_source=(path, first, last)
        )
        block = nodes.literal_block(code, code, language="python")
        short = count <= COLLAPSE_AFTER
        opened = "open" in self.options or (short and "closed" not in self.options)
        fold = collapsible(summary=f"Code ({count} lines)", open=opened)
        fold += block
        wrapper = nodes.container(classes=[_CLASS])
        wrapper += [caption, fold]
        self.set_source_info(wrapper)
        self.set_source_info(block)
        return [wrapper]


def _fill_links(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """doctree-resolved: each caption's link gets the repository and the build's commit.

    Without a ``repository_url`` in ``html_theme_options`` the caption names the lines unlinked.
    """
    options = getattr(app.config, "html_theme_options", None) or {}
    repository = str(options.get("repository_url", ""))
    commit = str(getattr(app.config, "initdocs_commit", "") or "")
    if commit.split("+", 1)[0] in ("", "unknown"):
        commit = str(options.get("repository_branch", "")) or FALLBACK_REF
    for node in list(doctree.findall(nodes.reference)):
        target = node.get("initdocs_source")
        if not target:
            continue
        if repository:
            node["refuri"] = blob_url(repository, commit, *target)
        else:
            node.replace_self(nodes.inline(node.astext(), node.astext()))


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_node(
        collapsible,
        html=(_visit_collapsible_html, _depart_collapsible_html),
        latex=(_pass, _pass),
        text=(_pass, _pass),
        man=(_pass, _pass),
        texinfo=(_pass, _pass),
    )
    app.add_directive("source", SourceDirective)
    app.connect("doctree-resolved", _fill_links)
    return extension_metadata()
