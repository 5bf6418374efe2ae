"""The book's own tooling beyond the core Sphinx glue in :mod:`initdocs.sphinxext`.

Nothing here is imported by a chapter, so changes here never re-execute a chapter (see
:mod:`initdocs.book.dependencies`).
"""

from __future__ import annotations

from typing import Any


def extension_metadata() -> dict[str, Any]:
    """What each of the book's Sphinx extensions returns from ``setup``: the package version,
    and that it is safe for parallel reading and writing (``sphinx-build -j``)."""
    from initdocs import __version__

    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
