"""A contributor's mistake ends the build with our message, never with a Sphinx crash report.

Sphinx 9 answers *every* exception an extension raises, :class:`sphinx.errors.SphinxError`
included, with a traceback saved to a file and a request to report the error to the Sphinx
developers. For a mistake in the book's own files (a chapter ``initdocs check`` refuses, a
malformed session record) that points the contributor the wrong way. So the build:

* logs each problem as a Sphinx error at its file and line (``path:line: ERROR: message``,
  also in the ``-w`` warnings file), or as a warning where it must not stop the build (a
  chapter in progress in the preview);
* then ends with :class:`BuildStopped`, a :class:`SystemExit` carrying one message that says
  what to do. Sphinx lets it through (it catches ``Exception`` only), so Python prints the
  message and exits with status 1: no traceback, no report banner.

A failing cell is reported differently, without stopping the build: myst-nb logs it as a
warning at the chapter (``nb_execution_raise_on_error = False``), the other chapters still
run, and :mod:`initdocs.book.execution` names the failed chapters at the end.
"""

from __future__ import annotations

from collections.abc import Iterable

from sphinx.util import logging

from initdocs.book.files import Problem

logger = logging.getLogger(__name__)

__all__ = ["BuildStopped", "report_problems"]


class BuildStopped(SystemExit):
    """Ends the build with ``message`` (printed by Python) and exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(f"[initdocs] the build stopped: {message}")


def report_problems(problems: Iterable[Problem], *, stop: bool, subtype: str) -> int:
    """Log each problem at its file and line: an error if ``stop``, else a warning.

    Returns how many were logged.
    """
    log = logger.error if stop else logger.warning
    count = 0
    for problem in problems:
        count += 1
        if problem.line:  # Sphinx prints "path:line: ERROR: message"
            log(problem.message, location=f"{problem.path}:{problem.line}", type="initdocs",
                subtype=subtype)  # fmt: skip
        else:
            log(str(problem), type="initdocs", subtype=subtype)
    return count
