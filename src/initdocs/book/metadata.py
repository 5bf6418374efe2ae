"""What the book's Sphinx extension and each of its parts return from ``setup``."""

from __future__ import annotations

from typing import Any


def extension_metadata() -> dict[str, Any]:
    """The package version, and that the extension is safe for parallel reading and writing
    (``sphinx-build -j``)."""
    from initdocs import __version__

    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
