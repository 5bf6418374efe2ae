"""The build benchmark behind ``nox -s bench``: how long the book takes to build, and why.

On a copy of the repository (your working tree is never touched) it runs the real build
command in these situations, one after the other:

1. ``cold``: no build folder, no execution cache: every chapter executes;
2. ``nothing changed``: the same build again, then through ``nox -s docs`` as users run it:
   its environment is created beforehand (untimed), the first build in it is timed apart
   (it rewrites every page: the theme's templates were just installed, so they are newer
   than the pages), and the second is the no-op users see on every later run;
3. ``prose edit``: a sentence added to one chapter's prose (no chapter may execute);
4. ``code-cell edit``: a comment added to one chapter's code cell (that chapter executes);
5. ``module edit``: a comment added to one ``initdocs`` module (exactly the chapters that
   import it execute; the expected set is computed independently from the chapters' imports);
6. ``cold, serial``: a second cold build with one reader process (``-j 1``). Its wall time
   against the first measures what the second core brings, and its outputs are compared
   with the first's, cell by cell, to prove the book deterministic.

Then, with every chapter cached, it times the two fixed costs of a sharded build (one shard
whose chapters all come from the cache, and the render with no execution) and projects the
wall time of books of 11, 50 and 100 chapters on 1, 2, 4 and 8 shards
(:mod:`initdocs.book.projection`).

Before the first build and after the last it times the fixed reference workload of
:mod:`initdocs.book.calibration`, and reports every chapter also in reference units, so that
the budgets (a chapter 60 s, the cold build 300 s on the CI machine) mean the same on a
slower or a busier machine.

For each it records the wall time, the chapters executed and their execution times, and
writes ``bench.json`` and ``bench.md`` (a Markdown table, also pasted into the README
between ``<!-- bench:start -->`` and ``<!-- bench:end -->`` with ``--update-readme``).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from initdocs.book import calibration, projection
from initdocs.book.dependencies import module_closure
from initdocs.book.outputs import text_outputs
from initdocs.book.shards import CACHE_ONLY_ENV

NOX_NOOP = "nothing changed, `nox -s docs`"
NOX_FIRST = "first `nox -s docs` after installing its environment"

TARGETS = {  # seconds, from the issue; None: no time target
    "cold": 300.0,
    "nothing changed": 5.0,
    NOX_FIRST: None,
    NOX_NOOP: 5.0,
    "prose edit": 15.0,
    "code-cell edit": None,
    "module edit": None,
    "cold, serial": None,
}


@dataclass
class Scenario:
    name: str
    seconds: float
    executed: list[str]
    chapter_seconds: dict[str, float]
    expected: list[str] | None = None


def _copy_repository(repo: Path, destination: Path) -> Path:
    """Tracked and untracked-but-not-ignored files: what a clone plus your edits would have."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = repo / os.fsdecode(name)
        if source.is_file():
            target = destination / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def _build(copy: Path, jobs: str) -> tuple[float, dict[str, dict], str]:
    """Run the book's build in ``copy``; returns wall seconds, execution report and log."""
    env = dict(os.environ, PYTHONPATH=str(copy / "src"))  # the copy's package, not yours
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-M",
        "html",
        "docs",
        "docs/_build",
        "-W",
        "--keep-going",
        "-n",
        "-j",
        jobs,
    ]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = result.stdout + result.stderr
    if result.returncode != 0:
        raise SystemExit(f"bench: the build failed in {copy}:\n{log[-4000:]}")
    report = json.loads((copy / "docs" / "_build" / "execution.json").read_text())
    return seconds, report, log


def _scenario(name: str, copy: Path, jobs: str, expected: list[str] | None = None) -> Scenario:
    seconds, report, _ = _build(copy, jobs)
    ran = {doc: entry["seconds"] for doc, entry in report.items() if entry["executed"]}
    chapters = sorted(doc.rsplit("/", 1)[-1] for doc in ran)
    scenario = Scenario(
        name,
        round(seconds, 1),
        chapters,
        {doc.rsplit("/", 1)[-1]: s for doc, s in sorted(ran.items())},
        expected,
    )
    print(f"bench: {name}: {seconds:.1f} s, executed {len(chapters)}: {', '.join(chapters)}")
    return scenario


def _nox_noop(copy: Path, nox_python: str, envdir: Path) -> list[Scenario]:
    """``nox -s docs`` with nothing changed, as users run it, after the same command built.

    Its environment is created first (untimed; ``--install-only``). The first build in a new
    environment is timed on its own: Sphinx rewrites every page then, because the theme's
    templates were just installed and are newer than the pages (nothing is read or executed).
    The second build is the no-op a user sees on every later run.
    """
    command = [nox_python, "-m", "nox", "-f", "noxfile.py", "--envdir", str(envdir), "-s", "docs"]
    _timed(copy, [*command, "--install-only"])
    scenarios = []
    for name in (NOX_FIRST, NOX_NOOP):
        seconds = _timed(copy, command)
        report = json.loads((copy / "docs" / "_build" / "execution.json").read_text())
        ran = {d.rsplit("/", 1)[-1]: e["seconds"] for d, e in report.items() if e["executed"]}
        print(f"bench: {name}: {seconds:.1f} s, executed {len(ran)}")
        scenarios.append(Scenario(name, round(seconds, 1), sorted(ran), ran, expected=[]))
    return scenarios


def _timed(copy: Path, command: list[str], **env: str) -> float:
    """Wall seconds of ``command`` run in ``copy`` with its package; stops if it fails."""
    start = time.perf_counter()
    result = subprocess.run(
        command,
        cwd=copy,
        env=dict(os.environ, PYTHONPATH=str(copy / "src"), **env),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command)} failed in {copy}:\n{result.stdout[-4000:]}")
    return time.perf_counter() - start


def _sharding(copy: Path, jobs: str, chapter_seconds: dict[str, float]) -> dict:
    """The fixed costs of a sharded build, measured with every chapter cached, and the
    projection of bigger books from them (see :mod:`initdocs.book.projection`)."""
    shard = [sys.executable, "-m", "initdocs.book.shards", "execute", "--shard", "1/1"]
    overhead = _timed(copy, [*shard, "--", "-j", jobs])
    html = [sys.executable, "-m", "sphinx", "-M", "html", "docs", "docs/_build", "-E", "-W"]
    render = _timed(copy, [*html, "--keep-going", "-n", "-j", jobs], **{CACHE_ONLY_ENV: "1"})
    cores = (os.cpu_count() or 1) if jobs == "auto" else int(jobs)
    measured = list(chapter_seconds.values())
    print(f"bench: shard overhead {overhead:.1f} s, render with no execution {render:.1f} s")
    return {
        "overhead": round(overhead, 1),
        "render": round(render, 1),
        "cores": cores,
        "table": projection.markdown(measured, cores=cores, overhead=overhead, render=render),
    }


def _edit_prose(chapter: Path) -> None:
    lines = chapter.read_text(encoding="utf-8").splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("## In one paragraph"))
    i = next(i for i in range(start + 1, len(lines)) if lines[i].strip())
    lines[i] = lines[i].rstrip("\n") + " (An edit by the build benchmark.)\n"
    chapter.write_text("".join(lines), encoding="utf-8")


def _edit_code_cell(chapter: Path) -> None:
    text = chapter.read_text(encoding="utf-8")
    match = re.search(r"^```\{code-cell\}[^\n]*\n", text, re.M)
    if match is None:
        raise SystemExit(f"bench: {chapter} has no code cell to edit")
    cut = match.end()
    if text[cut:].startswith("---\n"):  # skip the cell's option block
        cut = text.index("\n---\n", cut + 4) + 5
    else:
        while re.match(r":[\w-]+:.*\n", text[cut:]):
            cut = text.index("\n", cut) + 1
    chapter.write_text(text[:cut] + "# An edit by the build benchmark.\n" + text[cut:], "utf-8")


def _importers(copy: Path, module: str) -> list[str]:
    """Chapters whose code imports ``module`` (directly or not), found from their sources."""
    package = copy / "src" / "initdocs"
    target = package / module
    return sorted(
        chapter.stem
        for chapter in (copy / "docs" / "sessions").glob("[0-9][0-9]-*.md")
        if target in module_closure(chapter.read_text(encoding="utf-8"), package)
    )


def _outputs(copy: Path) -> dict[str, list[list[str]]]:
    folder = copy / "docs" / "_build" / "jupyter_execute" / "sessions"
    return {path.stem: text_outputs(path) for path in sorted(folder.glob("*.ipynb"))}


def first_difference(first: list[list[str]], second: list[list[str]]) -> str:
    """Where two executions of a chapter part first: the code cell's number (from 0) and a
    unified diff of that cell's text outputs, so a failed determinism check shows its cause."""
    if len(first) != len(second):
        return f"{len(first)} code cells against {len(second)}"
    for index, (a, b) in enumerate(zip(first, second, strict=True)):
        if a != b:
            diff = difflib.unified_diff(
                "\n".join(a).splitlines(),
                "\n".join(b).splitlines(),
                "cold",
                "cold, serial",
                lineterm="",
            )
            return f"code cell {index}:\n" + "\n".join(list(diff)[:40])
    return "no difference"


def machine() -> str:
    """This machine in a few words: cores, processor, memory, system, Python."""
    cpus = os.cpu_count() or 0
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    python = platform.python_version()
    return f"{cpus} CPU cores ({model}){memory}, {platform.system()}, Python {python}"


def markdown(results: dict) -> str:
    """The results as the Markdown table shown in the README."""
    load = results.get("load")
    during = f"; load average {load[0]:.1f} at the start, {load[1]:.1f} at the end" if load else ""
    lines = [
        f"Measured {results['date']} on {results['machine']}, with `-j {results['jobs']}`{during}.",
        "",
        "| Situation | Wall time | Target | Chapters executed |",
        "|---|---:|---:|---|",
    ]
    every = len(results["scenarios"][0]["executed"])
    for s in results["scenarios"]:
        target = TARGETS.get(s["name"])
        met = "" if target is None else (" ✓" if s["seconds"] <= target else " ✗")
        ran = f"all {every}" if s["name"].startswith("cold") else ", ".join(s["executed"])
        ran = ran or "none"
        if s["expected"] is not None:
            ran += " (expected: " + (", ".join(s["expected"]) or "none") + ")"
        lines.append(
            f"| {s['name']} | {s['seconds']:.1f} s | "
            f"{'-' if target is None else f'≤ {target:.0f} s'}{met} | {ran} |"
        )
    edits = results["edits"]
    lines += [
        "",
        f"Edits: a sentence in the prose of {edits['prose']}, a comment in the first code cell "
        f"of {edits['code cell']}, a comment in `src/initdocs/{edits['module']}`.",
    ]
    unit = min(results["reference"])
    budget = calibration.BUDGETS["chapter"]
    lines += [
        "",
        "The reference workload (`python -m initdocs.book.calibration`) took "
        + " s and ".join(f"{r:.2f}" for r in results["reference"])
        + f" s before and after the builds; the unit r is the faster, {unit:.2f} s. "
        f"Budgets: a chapter {budget:.0f} r, the cold build "
        f"{calibration.BUDGETS['cold build']:.0f} r "
        f"(= {budget * unit:.0f} s and {calibration.BUDGETS['cold build'] * unit:.0f} s here).",
        "",
        "A chapter's budget is judged on its time alone (the serial cold build, one kernel at a "
        "time): in the build with two readers it shares the two cores with another chapter's "
        "kernel and with Sphinx, which makes it slower by an amount that depends on its "
        "neighbour, not on the chapter.",
        "",
        f"| Chapter | Cold, `-j {results['jobs']}` | Alone, `-j 1` | Alone in r "
        f"| ≤ {budget:.0f} r |",
        "|---|---:|---:|---:|:---:|",
    ]
    cold = results["scenarios"][0]["chapter_seconds"]
    alone = next(
        (s["chapter_seconds"] for s in results["scenarios"] if s["name"] == "cold, serial"), {}
    )
    for name, seconds in cold.items():
        if name in alone:
            r = calibration.units(alone[name], unit)
            own = f"{alone[name]:.1f} s | {r:.1f} | {'✓' if r <= budget else '✗'}"
        else:
            own = "- | - | -"
        lines.append(f"| {name} | {seconds:.1f} s | {own} |")
    total = sum(cold.values())
    cold_build = results["scenarios"][0]["seconds"]
    build_r, build_budget = calibration.units(cold_build, unit), calibration.BUDGETS["cold build"]
    lines += [
        f"| sum | {total:.1f} s | {sum(alone.values()):.1f} s | "
        f"{calibration.units(sum(alone.values()), unit):.1f} | |",
        "",
        f"The cold build took {cold_build:.1f} s = {build_r:.1f} r: "
        f"{'within' if build_r <= build_budget else 'over'} its budget of {build_budget:.0f} r.",
        "",
        results["parallel"],
        "",
        results["determinism"],
    ]
    for name, where in results.get("differences", {}).items():
        lines += ["", f"{name}, first difference:", "", "```", where, "```"]
    if "sharding" in results:
        lines += ["", "Sharded builds (`nox -s execute`, then `nox -s render`), projected:", ""]
        lines.append(results["sharding"]["table"].rstrip("\n"))
    return "\n".join(lines) + "\n"


def run(
    repo: Path, out: Path, jobs: str, prose: str, code: str, module: str, nox_python: str
) -> dict:
    load = [os.getloadavg()[0]]
    reference = [calibration.reference_seconds()]
    print(f"bench: reference workload {reference[0]:.2f} s")
    with tempfile.TemporaryDirectory(prefix="initdocs-bench-") as tmp:
        copy = _copy_repository(repo, Path(tmp) / "repo")
        chapters = copy / "docs" / "sessions"
        scenarios = [_scenario("cold", copy, jobs)]
        cold_outputs = _outputs(copy)
        scenarios.append(_scenario("nothing changed", copy, jobs, expected=[]))
        scenarios.extend(_nox_noop(copy, nox_python, Path(tmp) / "nox"))
        _edit_prose(chapters / f"{prose}.md")
        scenarios.append(_scenario("prose edit", copy, jobs, expected=[]))
        _edit_code_cell(chapters / f"{code}.md")
        scenarios.append(_scenario("code-cell edit", copy, jobs, expected=[code]))
        module_path = copy / "src" / "initdocs" / module
        module_path.write_text(module_path.read_text() + "\n# An edit by the benchmark.\n")
        expected = _importers(copy, module)
        scenarios.append(_scenario("module edit", copy, jobs, expected=expected))
        shutil.rmtree(copy / "docs" / "_build")
        scenarios.append(_scenario("cold, serial", copy, "1"))
        serial_outputs = _outputs(copy)
        sharding = _sharding(copy, jobs, scenarios[0].chapter_seconds)
    reference.append(calibration.reference_seconds())
    load.append(os.getloadavg()[0])
    print(f"bench: reference workload {reference[1]:.2f} s")

    differing = sorted(
        name for name in cold_outputs if cold_outputs[name] != serial_outputs.get(name)
    )
    cold, serial = scenarios[0], scenarios[-1]
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "jobs": jobs,
        # before and after the builds; the smaller is the unit (see initdocs.book.calibration)
        "reference": [round(r, 3) for r in reference],
        "load": [round(x, 2) for x in load],  # 1-minute load average at the start and the end
        "scenarios": [asdict(s) for s in scenarios],
        "edits": {"prose": prose, "code cell": code, "module": module},
        "parallel": (
            f"Both cores: the cold build took {cold.seconds:.0f} s with `-j {jobs}` and "
            f"{serial.seconds:.0f} s with `-j 1` ({serial.seconds / cold.seconds:.2f}x); the "
            f"chapters' execution times add up to {sum(cold.chapter_seconds.values()):.0f} s."
        ),
        "determinism": (
            f"Determinism: the text outputs of every executed cell of the {len(cold_outputs)} "
            "chapters are identical in the two cold builds."
            if not differing and cold_outputs
            else f"Determinism: outputs differ between the two cold builds in {differing}."
        ),
        "deterministic": not differing and bool(cold_outputs),
        "sharding": sharding,
        "differences": {
            name: first_difference(cold_outputs[name], serial_outputs.get(name, []))
            for name in differing
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (out / "bench.md").write_text(markdown(results), encoding="utf-8")
    return results


def update_readme(readme: Path, table: str, marker: str = "bench") -> None:
    """Replace the text between the README's ``marker`` lines (``<!-- bench:start -->`` and
    ``<!-- bench:end -->`` by default) with ``table``."""
    text = readme.read_text(encoding="utf-8")
    start, end = f"<!-- {marker}:start -->\n", f"<!-- {marker}:end -->"
    if start not in text or end not in text:
        raise SystemExit(f"{readme}: add the lines '{start.strip()}' and '{end}' first")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + start + table + end + tail, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m initdocs.book.bench", description=__doc__)
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="the repository")
    parser.add_argument("--out", type=Path, default=Path("docs/_build/bench"))
    parser.add_argument("--jobs", default="auto", help="sphinx-build -j (default: auto)")
    parser.add_argument("--prose-chapter", default="01-xception")
    parser.add_argument("--code-chapter", default="09-self-distillation")
    parser.add_argument("--module", default="resnet.py", help="file in src/initdocs to edit")
    parser.add_argument("--update-readme", action="store_true")
    parser.add_argument(
        "--nox",
        default=sys.executable,
        help="the Python that runs nox, for the `nox -s docs` build (nox -s bench passes its own)",
    )
    args = parser.parse_args(argv)
    results = run(
        args.repo.resolve(),
        args.out,
        args.jobs,
        args.prose_chapter,
        args.code_chapter,
        args.module,
        args.nox,
    )
    table = markdown(results)
    print(table)
    if args.update_readme:
        update_readme(args.repo / "README.md", table)
    return 0 if results["deterministic"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
