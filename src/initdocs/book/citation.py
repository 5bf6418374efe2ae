"""How to cite the book, generated from ``CITATION.cff`` (the one place the facts live).

``{book-citation}`` shows a copyable plain-text citation and a BibTeX ``@misc`` entry built
from the Citation File Format file at the repository root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from initdocs.book.metadata import extension_metadata


@dataclass(frozen=True)
class BookCitation:
    """The fields of ``CITATION.cff`` that a citation of the book needs."""

    authors: tuple[str, ...]
    title: str
    version: str
    url: str
    repository: str

    @classmethod
    def from_cff(cls, path: Path) -> BookCitation:
        """Read ``path``; a missing or malformed field is an error naming it and the file."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected the Citation File Format's key: value pairs")

        def field(key: str) -> str:
            value = data.get(key)
            if not isinstance(value, str | int | float) or not str(value).strip():
                raise ValueError(f"{path}: field '{key}' is missing or empty; add it")
            return str(value)

        authors = data.get("authors")
        if not isinstance(authors, list) or not authors:
            raise ValueError(f"{path}: field 'authors' must be a list with at least one author")
        names = []
        for i, author in enumerate(authors, 1):
            if not isinstance(author, dict):
                raise ValueError(f"{path}: authors entry {i} must be a name: or family-names:")
            name = author.get("name") or " ".join(
                str(author[k]) for k in ("given-names", "family-names") if author.get(k)
            )
            if not name:
                raise ValueError(f"{path}: authors entry {i} has neither name nor family-names")
            names.append(name)
        return cls(
            tuple(names), field("title"), field("version"), field("url"), field("repository-code")
        )

    def plain_text(self) -> str:
        """A citation to paste into a document: authors, title, version, address."""
        return f"{', '.join(self.authors)}. {self.title}. Version {self.version}. {self.url}"

    def bibtex(self, key: str) -> str:
        """A BibTeX ``@misc`` entry (classic BibTeX styles do not know ``@software``)."""
        # Double braces keep an entity's name and the title's case as written.
        authors = " and ".join(f"{{{name}}}" for name in self.authors)
        fields = {
            "author": authors,
            "title": f"{{{_latex(self.title)}}}",
            "version": self.version,
            "howpublished": f"\\url{{{self.url}}}",
            "url": self.url,
            "note": f"Source code: \\url{{{self.repository}}}",
        }
        width = max(map(len, fields))
        body = ",\n".join(f"  {name:<{width}} = {{{value}}}" for name, value in fields.items())
        return f"@misc{{{key},\n{body}\n}}"


def _latex(text: str) -> str:
    """Escape the characters that LaTeX treats specially in a title."""
    for char in "\\&%$#_":
        text = text.replace(char, "\\" + char)
    return text


def _copyable(text: str, language: str) -> nodes.literal_block:
    block = nodes.literal_block(text, text, language=language)
    block["classes"].append("book-citation")
    return block


class BookCitationDirective(SphinxDirective):
    """``{book-citation}``: the book's citation, as plain text and as BibTeX."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        path = Path(self.env.srcdir, self.config.initdocs_citation_file).resolve()
        self.env.note_dependency(str(path))
        try:
            citation = BookCitation.from_cff(path)
        except FileNotFoundError:
            raise self.error(
                f"{path} not found; create it or set initdocs_citation_file in conf.py"
            ) from None
        except ValueError as exc:
            raise self.error(str(exc)) from None
        text = nodes.paragraph(text="As text:")
        bibtex = nodes.paragraph(text="As BibTeX:")
        return [
            text,
            _copyable(citation.plain_text(), "text"),
            bibtex,
            _copyable(citation.bibtex(self.config.project), "bibtex"),
        ]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("initdocs_citation_file", "../CITATION.cff", "env", types=[str])
    app.add_directive("book-citation", BookCitationDirective)
    return extension_metadata()
