"""A rebuild with nothing changed sees the same configuration (a part of ``initdocs.book``).

Sphinx saves the configuration with the environment after reading, and the next build
compares the values ``conf.py`` gives with the saved ones: any difference prints "The
configuration has changed (N options: ...)", rewrites every page, and, for a value that
affects reading, reads every document again. Some extensions change configuration values in
place once the builder starts (sphinx-book-theme and pydata-sphinx-theme add to
``html_css_files``, ``html_context``, ``html_theme_options`` ...; sphinx-copybutton to its own
values), so the saved values were never the ones ``conf.py`` gives, and every build, even one
with nothing to do, found the configuration changed.

So the values are remembered when the configuration is complete (``config-inited``, after
every extension's handler), and the ones changed since are put back just before Sphinx saves
the environment (``env-updated``) and restored for writing (``write-started``): the saved
configuration is the one the next build's ``conf.py`` gives.

Work a rebuild does even with nothing to read is skipped: sphinxcontrib-bibtex formats every
citation of the book again after reading (``env-updated``, a third of a no-op rebuild); when no
document was read or removed, the citations saved with the environment are still right, so
that step is left out (:func:`_skip_bibtex_formatting_when_nothing_was_read`).

Values that truly change between builds stay out of what is compared: the commit the book is
built from is not a MyST substitution (one of those changing re-reads every document) but the
``{build-info}`commit``` role, filled in when the page is written (:func:`build_info_role`).
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

from initdocs.book.metadata import extension_metadata

logger = logging.getLogger(__name__)

_MISSING = object()
#: What ``{build-info}`...``` can show.
BUILD_INFO = ("commit", "version")
_CLASS = "initdocs-build-info"


def _snapshot(app: Sphinx, config: Config) -> None:
    """config-inited (last): each value as the configuration gives it."""
    values = {}
    for option in config:
        try:
            values[option.name] = copy.deepcopy(option.value)
        except Exception:  # a value that cannot be copied is left as it is
            continue
    app.initdocs_config = values  # type: ignore[attr-defined]
    app.initdocs_config_changed = {}  # type: ignore[attr-defined]


def _canonical(value: Any) -> Any:
    """``value`` with sets sorted and dictionaries in key order: one ``repr`` per value."""
    if isinstance(value, (set, frozenset)):
        return ("set", sorted(repr(_canonical(item)) for item in value))
    if isinstance(value, dict):
        return ("dict", sorted((repr(k), _canonical(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    return value


def _digest(values: dict[str, Any]) -> str:
    """A fingerprint of configuration values (their sorted ``repr``).

    A value whose ``repr`` holds a memory address (a function, an object) is left out: it
    differs in every process.
    """
    lines = (f"{name}={_canonical(values[name])!r}" for name in sorted(values))
    text = "\n".join(line for line in lines if " at 0x" not in line)
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def _put_back(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """env-updated: the values changed since config-inited go back, for saving.

    Sphinx saves the environment only when it read a document; when only an HTML value
    changed (a new commit), nothing is read, and the old values would stay saved, so every
    later build would find the configuration changed again. Then the root document is
    returned as updated, which makes Sphinx save the environment (it writes that page anyway).
    """
    saved = getattr(app, "initdocs_config", {})
    changed = {}
    for name, value in saved.items():
        current = getattr(app.config, name, _MISSING)
        if current is not _MISSING and current != value:
            changed[name] = current
            setattr(app.config, name, copy.deepcopy(value))
    app.initdocs_config_changed = changed  # type: ignore[attr-defined]
    digest = _digest(saved)
    stale = getattr(env, "initdocs_config_digest", None) != digest
    env.initdocs_config_digest = digest  # type: ignore[attr-defined]
    if stale and getattr(env, "initdocs_unchanged", False):
        return [app.config.root_doc]
    return []


def _restore(app: Sphinx, *args: Any) -> None:
    """write-started: the extensions' values again, for writing the pages."""
    for name, value in getattr(app, "initdocs_config_changed", {}).items():
        setattr(app.config, name, value)
    app.initdocs_config_changed = {}  # type: ignore[attr-defined]


def _note_removed(
    app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    """env-get-outdated: remember whether documents were removed (their citations go)."""
    env.initdocs_removed = bool(removed)  # type: ignore[attr-defined]
    return []


def _note_reading(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    """env-before-read-docs: whether this build reads or removes any document."""
    removed = getattr(env, "initdocs_removed", True)
    env.initdocs_unchanged = not docnames and not removed  # type: ignore[attr-defined]


def _skip_bibtex_formatting_when_nothing_was_read() -> None:
    """sphinxcontrib-bibtex's ``env_updated`` keeps the saved citations when nothing changed."""
    from sphinxcontrib.bibtex.domain import BibtexDomain

    original = BibtexDomain.env_updated
    if getattr(original, "_initdocs", False):
        return

    def env_updated(self: BibtexDomain) -> Any:
        if getattr(self.env, "initdocs_unchanged", False) and self.citations:
            return []
        return original(self)

    env_updated._initdocs = True  # type: ignore[attr-defined]
    BibtexDomain.env_updated = env_updated  # type: ignore[method-assign]


def build_info_role(
    name: str, rawtext: str, text: str, lineno: int, inliner: Any, *args: Any, **kwargs: Any
) -> tuple[list[nodes.Node], list[nodes.system_message]]:
    """``{build-info}`commit```: the commit the page is written from, as code.

    The text is filled in when the page is written, so it never enters the saved environment:
    a new commit rewrites the pages (``initdocs_commit`` is an HTML option), it does not make
    Sphinx read them again.
    """
    if text not in BUILD_INFO:
        message = inliner.reporter.error(
            f"build-info: unknown item {text!r}; use one of {', '.join(BUILD_INFO)}", line=lineno
        )
        return [inliner.problematic(rawtext, rawtext, message)], [message]
    return [nodes.literal(rawtext, "", classes=[_CLASS, f"{_CLASS}-{text}"])], []


def _fill_build_info(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """doctree-resolved: the build's commit and version into ``{build-info}`` nodes."""
    values = {"commit": app.config.initdocs_commit, "version": app.config.release}
    for node in doctree.findall(nodes.literal):
        for item, value in values.items():
            if f"{_CLASS}-{item}" in node["classes"]:
                node.children = [nodes.Text(str(value))]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("initdocs_commit", "unknown", "html", types=[str])
    app.add_role("build-info", build_info_role)
    app.connect("config-inited", _snapshot, priority=999)
    app.connect("env-updated", _put_back, priority=999)
    app.connect("write-started", _restore, priority=1)
    app.connect("doctree-resolved", _fill_build_info)
    app.connect("env-get-outdated", _note_removed)
    app.connect("env-before-read-docs", _note_reading)
    _skip_bibtex_formatting_when_nothing_was_read()
    return extension_metadata()
