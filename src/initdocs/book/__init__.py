"""The book's machinery: everything that builds, checks and extends the book, apart from what
readers import (the paper modules and the shared helpers in :mod:`initdocs`).

* the session records (:mod:`~initdocs.book.records`), the bibliography
  (:mod:`~initdocs.book.bibtex`), the chapters' rules and template (:mod:`~initdocs.book.chapters`)
  and ``initdocs check`` (:mod:`~initdocs.book.check`), found through
  :mod:`~initdocs.book.files`;
* the ``initdocs`` command (:mod:`~initdocs.book.cli`);
* the Sphinx extension ``initdocs.book`` (:func:`setup`), made of the parts below.

Nothing here is imported by a chapter, so a change here never re-executes one (see
:mod:`initdocs.book.dependencies`). This file imports nothing heavy: the command starts
without Sphinx or torch.
"""

from __future__ import annotations

from typing import Any


def setup(app: Any) -> dict[str, Any]:
    """The book's one Sphinx extension (``extensions = [..., "initdocs.book"]`` in conf.py).

    Sets its parts up in this order, each after what it needs:

    1. :mod:`~initdocs.book.execution`: smart re-execution, cache checks, failure clean-up;
    2. :mod:`~initdocs.book.directives`: loads the session records, runs ``initdocs check``,
       the sessions table, session cards and BibTeX blocks (cards cite through
       sphinxcontrib-bibtex, set up first); :mod:`~initdocs.book.source`: a package object's
       code beside the math, linked to the repository at the build's commit;
    3. :mod:`~initdocs.book.calendar`, :mod:`~initdocs.book.citation`,
       :mod:`~initdocs.book.sessionmap`: pages and files generated from the records;
    4. sphinxext-opengraph, then :mod:`~initdocs.book.notebooks` (downloads, launch buttons)
       and :mod:`~initdocs.book.page_meta` (descriptions it hands to opengraph), and
       :mod:`~initdocs.book.pdf` (the PDF edition in the download menu, when it is printed);
    5. :mod:`~initdocs.book.mathml` (formulas as MathML, the math font),
       :mod:`~initdocs.book.discussion` (each chapter's prompts as a page of their own, one
       per screen), :mod:`~initdocs.book.weight`, :mod:`~initdocs.book.a11y`: what each page
       loads and its accessibility fixes;
    6. :mod:`~initdocs.book.stable_config`: the configuration a rebuild compares is the one
       ``conf.py`` gives (no "configuration has changed" when nothing changed).
    """
    from initdocs.book import (
        a11y,
        calendar,
        citation,
        directives,
        discussion,
        execution,
        mathml,
        notebooks,
        page_meta,
        pdf,
        sessionmap,
        source,
        stable_config,
        weight,
    )
    from initdocs.book.metadata import extension_metadata

    app.setup_extension("sphinxcontrib.bibtex")
    for part in (execution, directives, source, calendar, citation, sessionmap):
        part.setup(app)
    app.setup_extension("sphinxext.opengraph")
    for part in (notebooks, pdf, page_meta, mathml, discussion, weight, a11y, stable_config):
        part.setup(app)
    return extension_metadata()
