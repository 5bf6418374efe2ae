"""The book's own tooling beyond the core Sphinx glue in :mod:`initdocs.sphinxext`.

Nothing here is imported by a chapter, so changes here never re-execute a chapter (see
:func:`initdocs.sphinxext.package_fingerprint`).
"""
