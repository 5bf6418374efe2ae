"""Sharded execution: the chapters execute on several machines, the book renders once.

A growing book outgrows one machine, so execution is split from rendering in three steps:

1. **Execute a shard.** ``nox -s execute -- --shard I/N`` (``python -m initdocs.book.shards
   execute --shard I/N``) runs ``sphinx-build -b initdocs-shard`` with ``INITDOCS_SHARD=I/N``.
   That builder reads the book's pages and only shard *I*'s chapters, so only those execute
   (into the execution cache, exactly as a normal build would, same cache keys), and writes
   no HTML. Into ``docs/_build/shards/I-of-N/`` it writes ``manifest.json`` (the plan, and
   per chapter of the shard: executed, taken from the cache, or failed and why) and
   ``cache/``: an execution cache holding just this shard's chapters.
2. **Merge.** ``python -m initdocs.book.shards merge FOLDER...`` copies the shards' cached
   notebooks into one execution cache and writes there ``shards.json``, which says which
   shard had each chapter and how it went, and which shards are missing.
3. **Render.** A normal HTML build with ``INITDOCS_CACHE_ONLY=1`` (``nox -s render`` merges
   and renders) executes nothing: a chapter missing from the cache fails the build with the
   chapter, its shard, what happened there (failed, or the shard was never merged) and what
   to do.

**Balancing.** :func:`plan` splits the chapters greedily, longest first: each chapter goes to
the shard with the least expected time so far (ties: the lower shard). Expected times are the
chapters' last measured execution times, from ``docs/_build/execution.json`` (written by every
build; ``INITDOCS_SHARD_TIMES`` names another file). A chapter without a recorded time counts
as the median of the recorded ones; with no times at all every chapter counts the same, so
the chapters are dealt out in name order (1, 2, ..., N, 1, 2, ...). Every shard computes the
whole plan from the same times, and the merge refuses shards whose plans differ.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHARD_ENV = "INITDOCS_SHARD"
CACHE_ONLY_ENV = "INITDOCS_CACHE_ONLY"
TIMES_ENV = "INITDOCS_SHARD_TIMES"
BUILDER = "initdocs-shard"
MANIFEST = "manifest.json"
MERGED = "shards.json"  # in the merged execution cache
#: Terminal colour codes, which the tracebacks myst-nb keeps are full of.
ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: Set at builder-inited (and inherited by the parallel readers): the book's source folder
#: and, in a shard build, the folder where each chapter's cache entry is recorded.
_state: dict[str, Path] = {}


class ShardError(Exception):
    """A sharding problem with a message that says what to do."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (from 1) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str, where: str = "--shard") -> Shard:
        """``"I/N"`` with 1 <= I <= N; a clear error otherwise."""
        try:
            index, count = (int(part) for part in text.strip().split("/"))
        except ValueError:
            index = count = 0
        if not 1 <= index <= count:
            raise ShardError(
                f"{where}: expected I/N, shard I of N with 1 <= I <= N (e.g. 1/2), not {text!r}"
            )
        return cls(index, count)

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def folder(self) -> str:
        return f"{self.index}-of-{self.count}"


def recorded_seconds(path: Path) -> dict[str, float]:
    """Each chapter's last execution time from a build's ``execution.json`` ({} if none)."""
    if not path.is_file():
        return {}
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        return {
            doc: float(entry["seconds"])
            for doc, entry in report.items()
            if float(entry.get("seconds") or 0) > 0
        }
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ShardError(
            f"{path}: not an execution report ({error}); delete it, or build the book once "
            "to write a new one"
        ) from error


def plan(chapters: list[str], seconds: dict[str, float], count: int) -> list[list[str]]:
    """Split ``chapters`` into ``count`` shards balanced by expected seconds (longest first).

    Unknown times count as the median of the known ones, or all alike if none is known.
    Each shard's chapters are returned sorted by name.
    """
    known = [seconds[c] for c in chapters if c in seconds]
    default = statistics.median(known) if known else 1.0
    expected = {c: seconds.get(c, default) for c in chapters}
    shards: list[list[str]] = [[] for _ in range(count)]
    loads = [0.0] * count
    for chapter in sorted(chapters, key=lambda c: (-expected[c], c)):
        target = min(range(count), key=lambda i: (loads[i], i))
        shards[target].append(chapter)
        loads[target] += expected[chapter]
    return [sorted(shard) for shard in shards]


def is_notebook(path: Path) -> bool:
    """A page with code cells: a chapter the build executes."""
    try:
        return "{code-cell}" in path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False


# -- The shard builder ----------------------------------------------------------------------


def _times_file(app: Any) -> Path:
    return Path(os.environ.get(TIMES_ENV) or Path(app.confdir) / "_build" / "execution.json")


def _make_builder() -> type:
    from sphinx.builders.dummy import DummyBuilder

    class ShardBuilder(DummyBuilder):
        """Reads the pages and one shard's chapters (executing them); writes no pages."""

        name = BUILDER
        epilog = "The shard's manifest and cache are in %(outdir)s."

        def write_documents(self, docnames: Any) -> None:
            return None  # the product is the execution cache, not pages

    return ShardBuilder


def _chapters(env: Any) -> list[str]:
    return sorted(d for d in env.found_docs if is_notebook(Path(env.doc2path(d))))


def _select(app: Any, env: Any, docnames: list[str]) -> None:
    """env-before-read-docs: read the pages that changed and every chapter of this shard."""
    if app.builder.name != BUILDER:
        return
    shard = Shard.parse(os.environ.get(SHARD_ENV, ""), SHARD_ENV)
    chapters = _chapters(env)
    times_file = _times_file(app)
    shards = plan(chapters, recorded_seconds(times_file), shard.count)
    mine = shards[shard.index - 1]
    app.initdocs_shard = {  # type: ignore[attr-defined]
        "shard": shard.label,
        "times": str(times_file) if times_file.is_file() else None,
        "plan": shards,
        "chapters": mine,
    }
    others = set(chapters) - set(mine)
    docnames[:] = [d for d in docnames if d not in chapters] + mine
    from sphinx.util import logging

    logging.getLogger(__name__).info(
        f"[initdocs] shard {shard.label}: executing {len(mine)} of {len(chapters)} chapter(s): "
        f"{', '.join(mine) or 'none'} ({len(others)} in other shards)"
    )


def _start(app: Any) -> None:
    """builder-inited: the shard builder records each chapter's cache entry under outdir."""
    _state.clear()
    _state["srcdir"] = Path(app.srcdir)
    _state["misses"] = Path(app.doctreedir) / "initdocs-cache-misses"
    for old in _state["misses"].glob("*.txt"):
        old.unlink()
    if app.builder.name == BUILDER:
        records = Path(app.outdir) / "records"
        if records.exists():
            for old in records.glob("*.json"):
                old.unlink()
        records.mkdir(parents=True, exist_ok=True)
        _state["records"] = records


def _docname(path: Path, srcdir: Path) -> str:
    return path.resolve().relative_to(srcdir.resolve()).with_suffix("").as_posix()


def _cache_miss_message(docname: str, cache_path: Path) -> str:
    """Why ``docname`` is not in a cache that the render may not execute into, and what to do."""
    merged = cache_path / MERGED
    retry = "run that shard again (`nox -s execute -- --shard {0}`), merge, and render"
    if not merged.is_file():
        return (
            f"chapter {docname} is not in the execution cache {cache_path}, and "
            f"{CACHE_ONLY_ENV}=1 forbids executing it. Execute the shards and merge them "
            "(see `python -m initdocs.book.shards --help`), or build with execution "
            f"(`nox -s docs`, without {CACHE_ONLY_ENV})."
        )
    info = json.loads(merged.read_text(encoding="utf-8"))
    owner = next(
        (f"{i + 1}/{len(info['plan'])}" for i, s in enumerate(info["plan"]) if docname in s),
        None,
    )
    if owner is None:
        return (
            f"chapter {docname} is in no shard's plan ({merged}): the shards were planned "
            "without it. Execute every shard again from this commit, merge, and render."
        )
    shard = info["shards"].get(owner)
    if shard is None:
        return (
            f"chapter {docname} is missing: it belongs to shard {owner}, whose results were "
            "not merged (its job failed or was not run, or its folder was not given to the "
            f"merge). " + retry.format(owner) + "."
        )
    entry = shard["chapters"].get(docname, {"status": "missing"})
    if entry["status"] == "failed":
        return (
            f"chapter {docname} failed to execute in shard {owner} ({entry.get('error')}): "
            f"see that shard's log, fix the chapter (try `nox -s preview -- "
            f"{docname.rsplit('/', 1)[-1]}`), then " + retry.format(owner) + "."
        )
    if entry["status"] == "missing":
        return (
            f"chapter {docname} was not executed by shard {owner}, which stopped first "
            f"({shard.get('stopped') or 'see its log'}): " + retry.format(owner) + "."
        )
    return (
        f"chapter {docname} was executed by shard {owner} from another version of the chapter "
        "or of the code it imports (its cache key differs): execute the shards again from "
        "this commit, merge, and render."
    )


def run_client(client: Any, start: Any) -> None:
    """Run myst-nb's cache client ``start(client)`` with the sharding rules around it.

    With ``INITDOCS_CACHE_ONLY=1`` (outside a shard) a chapter missing from the cache is not
    executed: :func:`_refuse` names it and the build fails. In a shard build, each chapter's
    cache entry (or failure) is recorded for the manifest. Called by
    :mod:`initdocs.book.execution`.
    """
    from jupyter_cache import get_cache

    cache_path = Path(client.nb_config.execution_cache_path or ".jupyter_cache")
    cache = get_cache(cache_path)
    cached = True
    try:
        cache.match_cache_notebook(client.notebook)
    except KeyError:
        cached = False
    if client.path is None or "srcdir" not in _state:
        start(client)
        return
    docname = _docname(Path(client.path), _state["srcdir"])
    records = _state.get("records")
    if records is not None:
        _run_recorded(client, start, docname, cached, records)
    elif not cached and os.environ.get(CACHE_ONLY_ENV) == "1":
        _refuse(docname, cache_path)
    else:
        start(client)


def _refuse(docname: str, cache_path: Path) -> None:
    """Log why ``docname`` is missing and remember it: the build fails in :func:`_finish`.

    Not raised: an exception in one parallel reader hides the other readers' problems, so
    every missing chapter gets named this way.
    """
    from sphinx.util import logging

    message = "[initdocs] " + _cache_miss_message(docname, cache_path)
    _state["misses"].mkdir(parents=True, exist_ok=True)
    (_state["misses"] / f"{docname.replace('/', '__')}.txt").write_text(message, "utf-8")
    logging.getLogger(__name__).error(message, location=docname)


def _run_recorded(client: Any, start: Any, docname: str, cached: bool, records: Path) -> None:
    """Run the client in a shard build, recording the chapter's cache entry or failure."""
    from jupyter_cache import get_cache

    entry: dict[str, Any] = {"docname": docname}
    try:
        start(client)
    except Exception as error:  # not KeyboardInterrupt: a stopped build is no chapter's fault
        cause = error.__cause__ or error
        entry.update(status="failed", error=type(cause).__name__)
        if getattr(cause, "ename", None):  # nbclient's CellExecutionError: the cell's error
            entry["detail"] = f"{cause.ename}: {cause.evalue}"[:300]
        _write_record(records, entry)
        # Straight to the terminal: a parallel reader's log is lost when it fails.
        print(f"[initdocs] {docname} failed to execute:\n{cause}", file=sys.stderr, flush=True)
        raise
    metadata = getattr(client, "exec_metadata", None) or {}
    if metadata.get("succeeded") is False:
        # The book logs a failing cell and goes on (nb_execution_raise_on_error = False):
        # myst-nb keeps the error's class and traceback, whose last line is the cell's error.
        traceback = ANSI.sub("", metadata.get("traceback") or "")
        lines = [line.strip() for line in traceback.splitlines() if line.strip()]
        entry.update(status="failed", error=metadata.get("error") or "an error")
        if lines:
            entry["detail"] = lines[-1][:300]
        _write_record(records, entry)
        print(f"[initdocs] {docname} failed to execute:\n{traceback}", file=sys.stderr, flush=True)
        return
    cache = get_cache(Path(client.nb_config.execution_cache_path or ".jupyter_cache"))
    record = cache.match_cache_notebook(client.notebook)
    entry.update(
        status="cached" if cached else "executed",
        pk=record.pk,
        seconds=round(float((record.data or {}).get("execution_seconds") or 0), 2),
    )
    _write_record(records, entry)


def _write_record(records: Path, entry: dict[str, Any]) -> None:
    name = entry["docname"].replace("/", "__") + ".json"
    (records / name).write_text(json.dumps(entry) + "\n", encoding="utf-8")


def _finish(app: Any, exception: BaseException | None) -> None:
    """build-finished: fail a render that missed chapters; write a shard's manifest and
    export its chapters' cache entries."""
    missed = sorted(_state["misses"].glob("*.txt")) if "misses" in _state else []
    if missed:
        app.statuscode = 1  # even without -W
        from sphinx.util import logging

        names = ", ".join(path.stem.replace("__", "/") for path in missed)
        logging.getLogger(__name__).info(
            f"[initdocs] {len(missed)} chapter(s) missing from the execution cache, so the "
            f"book was not rendered: {names} (why and what to do: the errors above)"
        )
    info = getattr(app, "initdocs_shard", None)
    if app.builder.name != BUILDER or info is None:
        return
    from jupyter_cache import get_cache

    outdir = Path(app.outdir)
    found = {}
    for path in sorted((outdir / "records").glob("*.json")):
        entry = json.loads(path.read_text(encoding="utf-8"))
        found[entry.pop("docname")] = entry
    chapters = {doc: found.get(doc, {"status": "missing"}) for doc in info["chapters"]}
    source = get_cache(Path(app.config.nb_execution_cache_path or ".jupyter_cache"))
    export = _fresh_cache(outdir / "cache")
    for entry in chapters.values():
        if entry["status"] in ("executed", "cached"):
            bundle = source.get_cache_bundle(entry.pop("pk"))
            _add_bundle(export, bundle)
    stopped = None
    if exception is not None:
        stopped = f"{type(exception).__name__}: {str(exception).splitlines()[0][:300]}"
    manifest = dict(info, chapters=chapters, stopped=stopped)
    (outdir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _fresh_cache(path: Path) -> Any:
    import shutil

    from jupyter_cache import get_cache

    shutil.rmtree(path, ignore_errors=True)
    cache = get_cache(path)
    cache.list_cache_records()  # creates the database
    return cache


def _add_bundle(cache: Any, bundle: Any) -> None:
    """Put a cached notebook into ``cache`` unless an entry with its key is there already."""
    from jupyter_cache.base import CacheBundleIn

    try:
        cache.match_cache_notebook(bundle.nb)
        return
    except KeyError:
        pass
    cache.cache_notebook_bundle(
        CacheBundleIn(bundle.nb, bundle.record.uri, data=dict(bundle.record.data or {})),
        check_validity=False,
        overwrite=True,
    )


def setup(app: Any) -> None:
    """Called by :func:`initdocs.book.execution.setup`."""
    app.add_builder(_make_builder())
    app.connect("builder-inited", _start)
    app.connect("env-before-read-docs", _select, priority=400)  # before the balancing
    app.connect("build-finished", _finish)


# -- Merging and the command line ---------------------------------------------------------


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise ShardError(
            f"{folder}: no {MANIFEST}; give the folders that `nox -s execute -- --shard I/N` "
            "writes (docs/_build/shards/I-of-N)"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def merge(folders: list[Path], into: Path) -> dict[str, Any]:
    """Copy the shards' cached chapters into the execution cache ``into``; write shards.json.

    Refuses shards planned differently (other N, other times). Missing and failed shards are
    recorded, not refused: the render names them for each chapter it cannot find.
    """
    from jupyter_cache import get_cache

    if not folders:
        raise ShardError("merge: name at least one shard folder (docs/_build/shards/I-of-N)")
    manifests = {folder: read_manifest(folder) for folder in folders}
    first_folder, first = next(iter(manifests.items()))
    shards: dict[str, Any] = {}
    for folder, manifest in manifests.items():
        if manifest["plan"] != first["plan"]:
            raise ShardError(
                f"{folder} (shard {manifest['shard']}) was planned differently from "
                f"{first_folder} (shard {first['shard']}): the shards read different "
                "execution times or N. Run every shard from the same commit and times."
            )
        if manifest["shard"] in shards:
            raise ShardError(f"{folder}: shard {manifest['shard']} is given twice")
        shards[manifest["shard"]] = {
            "folder": str(folder),
            "chapters": manifest["chapters"],
            "stopped": manifest.get("stopped"),
        }
    target = get_cache(into)
    target.list_cache_records()
    for folder in manifests:
        source = get_cache(folder / "cache")
        for record in source.list_cache_records():
            _add_bundle(target, source.get_cache_bundle(record.pk))
    count = len(first["plan"])
    merged = {
        "plan": first["plan"],
        "shards": shards,
        "missing": [f"{i}/{count}" for i in range(1, count + 1) if f"{i}/{count}" not in shards],
    }
    (into / MERGED).write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    return merged


def problems(merged: dict[str, Any]) -> list[str]:
    """One line per missing shard and per chapter that failed or did not run in its shard."""
    lines = [f"shard {label}: missing (not merged)" for label in merged["missing"]]
    for label, shard in sorted(merged["shards"].items()):
        for docname, entry in sorted(shard["chapters"].items()):
            if entry["status"] in ("failed", "missing"):
                why = entry.get("error") or shard.get("stopped") or "the shard stopped first"
                lines.append(f"shard {label}: chapter {docname} {entry['status']} ({why})")
    return lines


def summary(folders: list[Path]) -> str:
    """A Markdown report of shards (for $GITHUB_STEP_SUMMARY): every chapter and its status."""
    lines = ["| Shard | Chapter | Status | Seconds |", "|---|---|---|---:|"]
    failed: list[str] = []
    stems: list[str] = []
    for folder in folders:
        try:
            manifest = read_manifest(folder)
        except ShardError as error:
            lines.append(f"| {folder.name} | - | no manifest: the shard did not finish | - |")
            failed.append(str(error))
            continue
        for docname, entry in manifest["chapters"].items():
            status = entry["status"]
            if status == "failed":
                why = entry.get("detail") or entry.get("error")
                status = f"**failed** ({why})"
                failed.append(f"chapter {docname} failed in shard {manifest['shard']} ({why})")
                stems.append(docname.rsplit("/", 1)[-1])
            elif status == "missing":
                status = "**not executed** (the shard stopped first)"
            seconds = entry.get("seconds")
            lines.append(
                f"| {manifest['shard']} | {docname} | {status} | "
                f"{'-' if seconds is None else f'{seconds:.1f}'} |"
            )
    head = "Every chapter of these shards executed or came from the cache."
    if failed:
        head = f"Failing: {'; '.join(failed)}. Try it alone with `nox -s preview -- "
        head += f"{stems[0] if stems else 'NN-name'}`, fix it, and run the shard again."
    return head + "\n\n" + "\n".join(lines) + "\n"


def _execute(shard: Shard, docs: Path, build: Path, sphinx_args: list[str]) -> int:
    folder = build / "shards" / shard.folder
    command = [
        sys.executable, "-m", "sphinx", "-b", BUILDER, str(docs), str(folder),
        "-d", str(folder / "doctrees"),
        "-E", "-W", "--keep-going", "-n", "-j", "auto", *sphinx_args,
    ]  # fmt: skip
    print("initdocs: " + " ".join(command), flush=True)
    code = subprocess.run(command, env=dict(os.environ, **{SHARD_ENV: shard.label})).returncode
    report = summary([folder])
    if code:
        print(f"\n[initdocs] shard {shard.label} failed.\n" + report, file=sys.stderr)
    _step_summary(f"### Shard {shard.label}\n\n{report}")
    return code


def _step_summary(markdown: str) -> None:
    """Add to the job's summary page when running in GitHub Actions ($GITHUB_STEP_SUMMARY)."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(markdown + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m initdocs.book.shards", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("execute", help="execute one shard's chapters into the cache")
    run.add_argument("--shard", required=True, help="I/N: shard I of N")
    run.add_argument("--docs", type=Path, default=Path("docs"), help="the book's sources")
    run.add_argument("--build", type=Path, default=Path("docs/_build"), help="build folder")
    run.add_argument("sphinx_args", nargs="*", help="more sphinx-build arguments (after --)")
    show = commands.add_parser("plan", help="print which chapters each of N shards executes")
    show.add_argument("--shards", type=int, required=True)
    show.add_argument("--times", type=Path, default=Path("docs/_build/execution.json"))
    join = commands.add_parser("merge", help="merge shard folders into one execution cache")
    join.add_argument("folders", type=Path, nargs="+")
    join.add_argument("--into", type=Path, default=Path("docs/_build/.jupyter_cache"))
    report = commands.add_parser("summary", help="Markdown table of the shards' chapters")
    report.add_argument("folders", type=Path, nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "execute":
            return _execute(Shard.parse(args.shard), args.docs, args.build, args.sphinx_args)
        if args.command == "plan":
            docs = Path("docs")
            chapters = sorted(
                p.relative_to(docs).with_suffix("").as_posix()
                for p in docs.rglob("*.md")
                if "_build" not in p.parts and is_notebook(p)
            )
            shards = plan(chapters, recorded_seconds(args.times), args.shards)
            for index, shard in enumerate(shards, 1):
                print(f"{index}/{args.shards}: {', '.join(shard) or '(none)'}")
            return 0
        if args.command == "merge":
            merged = merge(args.folders, args.into)
            print(f"merged {len(merged['shards'])} shard(s) into {args.into}")
            found = problems(merged)
            for line in found:
                print(f"warning: {line}; the render will fail on it")
            if found:
                _step_summary("### Shards\n\n" + "".join(f"- {line}\n" for line in found))
            return 0
        print(summary(args.folders), end="")
        return 0
    except ShardError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
