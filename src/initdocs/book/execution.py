"""Fast and trustworthy execution of the chapters (a part of the ``initdocs.book`` extension).

What it does, in the order of a build:

* **An interrupted or failed build is never trusted.** A marker file in the doctree folder
  says a build is running; it is removed only when a build finishes with no error and no
  warning. If the next build finds it, the saved environment is discarded before Sphinx
  loads it, so every page is read and written again (outputs come from the execution cache,
  so this costs seconds, not executions). This also stops Sphinx from hiding the warnings of
  a page it would otherwise not read again.
* **The execution cache is checked before use.** An unreadable cache (a corrupted database
  or executed notebook) is deleted with a message, and the chapters execute again: a damaged
  cache costs time, never a crash. The database is created up front, because two reader
  processes creating it at once race (``sphinx-build -j``).
* **Smart re-execution.** myst-nb's cache is keyed on a notebook's code cells. Each chapter
  gets a hidden cell (tagged ``remove-cell``) recording the fingerprint of what its outputs
  depend on (:mod:`initdocs.book.dependencies`: the ``initdocs`` modules it imports, directly
  or not, and the numeric libraries' versions). A change to a module re-reads and
  re-executes exactly the chapters that import it; a prose edit re-executes nothing.
* **Both cores.** With ``sphinx-build -j N`` Sphinx reads documents in chunks, one process
  per chunk; each chapter's kernel runs in its reader's process. The documents are ordered
  so that the chapters' expected execution times (from the last build) are balanced over
  the first N chunks.
* **Clear failures, nothing stale to publish.** When a build fails, the pages of the
  documents read in it are removed from the HTML output (they would be stale or
  half-built), as are myst-nb's error reports, and a message names the chapter and what to
  do. After every build ``execution.json`` next to the HTML folder lists each chapter's
  execution: whether it ran in this build or came from the cache, and how long it took.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

from initdocs.book.dependencies import chapter_dependencies
from initdocs.book.images import compress_notebook_images
from initdocs.book.metadata import extension_metadata
from initdocs.book.outputs import merge_streams
from initdocs.book.shards import BUILDER as SHARD_BUILDER
from initdocs.book.shards import run_client
from initdocs.book.shards import setup as setup_shards

logger = logging.getLogger(__name__)

MARKER = "initdocs-build-running"
DEFAULT_SECONDS = 30.0  # expected execution time of a chapter never executed before


def _marker(app: Sphinx) -> Path:
    return Path(app.doctreedir) / MARKER


def _previous_build_unfinished(app: Sphinx, config: Config) -> None:
    """config-inited: runs before Sphinx loads the saved environment."""
    marker = _marker(app)
    pickle = Path(app.doctreedir) / "environment.pickle"
    if marker.exists():
        pickle.unlink(missing_ok=True)
        logger.info(
            "[initdocs] the previous build did not finish cleanly (interrupted, failed or "
            "with warnings): reading and writing every page again"
        )


def _is_notebook(source: str) -> bool:
    return "{code-cell}" in source


def _cache_path(app: Sphinx) -> Path | None:
    if app.config.nb_execution_mode != "cache":
        return None
    return Path(app.config.nb_execution_cache_path or ".jupyter_cache")


def check_cache(path: Path) -> str | None:
    """Open the execution cache and read every executed notebook in it.

    Returns None if the cache is usable (creating an empty one if there is none), otherwise
    the reason it is not, after deleting it so that a fresh one is created.
    """
    from jupyter_cache import get_cache

    reason = None
    if path.exists():
        try:
            cache = get_cache(path)
            for record in cache.list_cache_records():
                cache.get_cache_bundle(record.pk)  # reads and parses the notebook
        except Exception as error:  # any failure means: unusable
            reason = f"{type(error).__name__}: {error}".splitlines()[0][:200]
            shutil.rmtree(path, ignore_errors=True)
            if path.exists():  # a file where the folder should be
                path.unlink()
    get_cache(path).list_cache_records()  # create the database before parallel readers
    return reason


def _start(app: Sphinx) -> None:
    """builder-inited: check the execution cache, set the marker."""
    app.initdocs_started = time.time()  # type: ignore[attr-defined]
    app.initdocs_reading = []  # type: ignore[attr-defined]
    path = _cache_path(app)
    if path is not None:
        reason = check_cache(path)
        if reason:
            logger.info(
                f"[initdocs] the execution cache {path} could not be read ({reason}); it was "
                "deleted and the chapters execute again"
            )
    marker = _marker(app)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"started {time.ctime()}\n", encoding="utf-8")


def _keep_cached_outputs_in_notebooks() -> None:
    """Make ``jupyter_execute/<doc>.ipynb`` hold exactly the outputs the page shows.

    Two myst-nb 1.4 behaviours spoil that file (the page itself is right):

    * on a cache hit, ``NotebookClientCache`` merges the cached outputs into a *copy* of the
      notebook, while the parser writes the original, without outputs;
    * the renderer merges a cell's stream outputs (``nb_merge_streams``) by appending to the
      first one in place and leaving the others in the notebook, so the file repeats the
      last lines of a cell's output.

    After the client starts, the merged cells are copied back into the original and each
    cell's streams are merged once, before rendering, by
    :func:`~initdocs.book.outputs.merge_streams` (exactly as printed, whatever the chunking);
    the renderer's own merge then finds nothing left to merge. The downloads and the
    determinism checks rely on this file.

    The PNG figures are recompressed at the same point (:mod:`initdocs.book.images`).
    """
    from myst_nb.core.execute.cache import NotebookClientCache

    original = NotebookClientCache.start_client
    if getattr(original, "_initdocs", False):
        return

    def start_client(self: Any) -> None:
        notebook = self._notebook
        run_client(self, original)  # original(self), with the sharding rules around it
        if self._notebook is not notebook:  # a cache hit: outputs went into a copy
            notebook.cells = self._notebook.cells
            notebook.metadata = self._notebook.metadata
            self._notebook = notebook
        for cell in notebook.cells:
            if cell.get("cell_type") == "code" and cell.get("outputs"):
                cell.outputs = merge_streams(cell.outputs)
        compress_notebook_images(notebook)

    start_client._initdocs = True  # type: ignore[attr-defined]
    NotebookClientCache.start_client = start_client  # type: ignore[method-assign]


def _init_env(env: BuildEnvironment) -> None:
    if not hasattr(env, "initdocs_dependencies"):
        env.initdocs_dependencies = {}  # type: ignore[attr-defined]
    if not hasattr(env, "initdocs_seconds"):
        env.initdocs_seconds = {}  # type: ignore[attr-defined]


def _source_read(app: Sphinx, docname: str, source: list[str]) -> None:
    """Append the hidden dependency cell to a chapter and remember its fingerprint."""
    if not _is_notebook(source[0]):
        return
    dependencies = chapter_dependencies(source[0])
    source[0] = source[0].rstrip("\n") + "\n" + dependencies.hidden_cell()
    _init_env(app.env)
    app.env.initdocs_dependencies[docname] = dependencies.fingerprint  # type: ignore[attr-defined]


def _purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    _init_env(env)
    env.initdocs_dependencies.pop(docname, None)  # type: ignore[attr-defined]


def _merge(app: Sphinx, env: BuildEnvironment, docnames: Any, other: BuildEnvironment) -> None:
    _init_env(env)
    for docname in docnames:
        fingerprint = getattr(other, "initdocs_dependencies", {}).get(docname)
        if fingerprint is not None:
            env.initdocs_dependencies[docname] = fingerprint  # type: ignore[attr-defined]


def _outdated(
    app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    """Chapters whose dependencies changed since they were last read."""
    _init_env(env)
    stale = []
    for docname, fingerprint in env.initdocs_dependencies.items():  # type: ignore[attr-defined]
        if docname in changed or docname in removed or docname not in env.found_docs:
            continue
        source = Path(env.doc2path(docname)).read_text(encoding="utf-8")
        if chapter_dependencies(source).fingerprint != fingerprint:
            stale.append(docname)
    if stale:
        logger.info(
            f"[initdocs] code they import changed: re-executing {len(stale)} chapter(s): "
            + ", ".join(sorted(stale))
        )
    return sorted(stale)


def balanced_order(docnames: list[str], seconds: dict[str, float], nproc: int) -> list[str]:
    """Reorder ``docnames`` so that Sphinx's parallel chunks have balanced execution times.

    Sphinx splits the list into consecutive chunks (``sphinx.util.parallel.make_chunks``) and
    reads them in that order, ``nproc`` at a time. The expensive documents are placed, longest
    first, into the least loaded of the first ``nproc`` chunks (later chunks once those are
    full); the cheap ones fill the remaining places.
    """
    from sphinx.util.parallel import make_chunks

    sizes = [len(chunk) for chunk in make_chunks(list(range(len(docnames))), nproc)]
    chunks: list[list[str]] = [[] for _ in sizes]
    loads = [0.0] * len(sizes)
    costly = sorted((d for d in docnames if seconds.get(d, 0) > 0), key=lambda d: -seconds[d])
    cheap = [d for d in docnames if seconds.get(d, 0) <= 0]
    first = list(range(min(nproc, len(sizes))))
    for docname in costly:
        open_first = [i for i in first if len(chunks[i]) < sizes[i]]
        candidates = open_first or [i for i in range(len(sizes)) if len(chunks[i]) < sizes[i]]
        target = min(candidates, key=lambda i: (loads[i], i))
        chunks[target].append(docname)
        loads[target] += seconds[docname]
    for i, size in enumerate(sizes):
        while len(chunks[i]) < size:
            chunks[i].append(cheap.pop(0))
    return [docname for chunk in chunks for docname in chunk]


def _before_read(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    """Remember what this build reads; balance the chapters over the parallel readers."""
    _init_env(env)
    app.initdocs_reading = list(docnames)  # type: ignore[attr-defined]
    if app.parallel <= 1 or len(docnames) < 2:
        return
    expected = {}
    for docname in docnames:
        try:
            source = Path(env.doc2path(docname)).read_text(encoding="utf-8")
        except OSError:
            continue
        if _is_notebook(source):
            expected[docname] = env.initdocs_seconds.get(docname, DEFAULT_SECONDS)  # type: ignore[attr-defined]
    docnames[:] = balanced_order(docnames, expected, app.parallel)


def execution_report(app: Sphinx) -> dict[str, dict[str, Any]]:
    """Per executed document: ran in this build or came from the cache, seconds, success."""
    from myst_nb.sphinx_ import NbMetadataCollector

    started = getattr(app, "initdocs_started", 0.0)
    report = {}
    for docname, data in sorted(NbMetadataCollector.get_doc_data(app.env).items()):
        exec_data = data.get("exec_data")
        if not exec_data:
            continue
        report[docname] = {
            "executed": bool(exec_data.get("mtime", 0) >= started),
            "seconds": round(float(exec_data.get("runtime") or 0.0), 2),
            "succeeded": bool(exec_data.get("succeeded")),
            "error": exec_data.get("error"),
        }
    return report


def _remember_seconds(app: Sphinx, env: BuildEnvironment) -> None:
    """env-updated: keep each chapter's last execution time for balancing the next build."""
    _init_env(env)
    for docname, entry in execution_report(app).items():
        if entry["seconds"]:
            env.initdocs_seconds[docname] = entry["seconds"]  # type: ignore[attr-defined]


#: What to do, by the name of the error that stopped a chapter's execution.
_ADVICE = {
    "CellTimeoutError": (
        "a cell ran past the time limit (nb_execution_timeout, per cell): make the cell "
        "cheaper (fewer epochs, a smaller model) or, if it must be slow, raise the limit "
        "with NB_EXECUTION_TIMEOUT=<seconds>"
    ),
    "DeadKernelError": "the kernel died (out of memory?): make the cell's model or data smaller",
}


def failure_advice(source: str | Path, error: str) -> str:
    """A message naming the chapter, the error and what to do."""
    path = Path(source)
    what = _ADVICE.get(
        error, "a cell raised an error (traceback above): fix the cell or the code it calls"
    )
    return (
        f"chapter {path} failed to execute ({error}): {what}. Try it alone with "
        f"`nox -s preview -- {path.stem}`, then build again."
    )


def _failed_chapters(app: Sphinx, exception: BaseException | None) -> list[str]:
    """Advice for each chapter whose execution failed in this build.

    The book logs a failing cell as a warning (``nb_execution_raise_on_error = False``) and
    the failures are found in myst-nb's execution data; with ``True``, myst-nb raises
    ``ExecutionError`` instead, which names the chapter.
    """
    from myst_nb.core.execute.base import ExecutionError

    if isinstance(exception, ExecutionError):
        cause = exception.__cause__
        return [failure_advice(str(exception), type(cause).__name__ if cause else "an error")]
    try:
        report = execution_report(app)
    except Exception:  # informative only
        return []
    return [
        failure_advice(app.env.doc2path(docname), entry["error"] or "an error")
        for docname, entry in report.items()
        if entry["executed"] and not entry["succeeded"]
    ]


def _remove_pages(app: Sphinx, outdir: Path) -> None:
    """Remove the pages of the documents this build read: stale or half-built."""
    removed = []
    for docname in getattr(app, "initdocs_reading", []):
        try:
            page = outdir / f"{docname}{app.builder.out_suffix}"  # type: ignore[attr-defined]
        except AttributeError:
            break
        if page.exists():
            page.unlink()
            removed.append(docname)
    if removed:
        logger.info(
            f"[initdocs] build failed: removed {len(removed)} page(s) of this build from "
            f"{outdir} so that nothing stale or half-built can be published "
            f"({', '.join(removed[:6])}{', ...' if len(removed) > 6 else ''})"
        )


def _finish(app: Sphinx, exception: BaseException | None) -> None:
    """build-finished: report, and on failure remove what must not be published."""
    outdir = Path(app.outdir)
    warned = getattr(app, "_warncount", 0) > 0
    failed = exception is not None or (warned and getattr(app, "_fail_on_warnings", False))
    reports = outdir / "reports"
    if reports.is_dir():  # myst-nb's tracebacks of failed notebooks: never published
        shutil.rmtree(reports, ignore_errors=True)
    advice = _failed_chapters(app, exception)
    for message in advice:
        logger.error(message, type="initdocs", subtype="execution")
    if failed:
        _remove_pages(app, outdir)
    if failed or advice:  # the marker stays: the next build reads every page again
        return
    try:
        report = execution_report(app)
    except Exception:  # informative only, never a reason to fail
        report = {}
    if app.builder.name != SHARD_BUILDER:  # a shard's times are in its own manifest
        (outdir.parent / "execution.json").write_text(
            json.dumps(report, indent=2) + "\n", encoding="utf-8"
        )
    if not warned:  # after warnings, the next build reads every page again and repeats them
        _marker(app).unlink(missing_ok=True)


def setup(app: Sphinx) -> dict[str, Any]:
    _keep_cached_outputs_in_notebooks()
    setup_shards(app)  # the shard builder and the render that may not execute
    app.connect("config-inited", _previous_build_unfinished, priority=100)
    app.connect("builder-inited", _start)
    app.connect("source-read", _source_read)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("env-get-outdated", _outdated)
    app.connect("env-before-read-docs", _before_read)
    app.connect("env-updated", _remember_seconds)
    app.connect("build-finished", _finish, priority=900)
    return extension_metadata()
