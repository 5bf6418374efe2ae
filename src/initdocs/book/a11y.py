"""Accessibility fixes of the HTML that docutils writes, found by the browser test's axe audit.

docutils marks each entry of a reference list ``role="doc-biblioentry"`` inside a
``role="list"`` container. DPUB-ARIA 1.1 deprecates that role, and a ``list`` must own
``listitem`` children, so screen readers get a malformed list (axe rules
``aria-deprecated-role`` and ``aria-required-children``). Each entry becomes a plain list item.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx

from initdocs.book.metadata import extension_metadata

DEPRECATED_ENTRY_ROLE = 'role="doc-biblioentry"'
LIST_ITEM_ROLE = 'role="listitem"'


def fix_reference_list_roles(body: str) -> str:
    """Give every reference-list entry the ``listitem`` role its ``list`` parent requires."""
    return body.replace(DEPRECATED_ENTRY_ROLE, LIST_ITEM_ROLE)


def _on_page_context(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    if "body" in context:
        context["body"] = fix_reference_list_roles(context["body"])


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("html-page-context", _on_page_context)
    return extension_metadata()
