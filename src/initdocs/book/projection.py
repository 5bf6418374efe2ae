"""How long a bigger book takes to build in shards: a projection from measured times.

The bench (:mod:`initdocs.book.bench`) measures each chapter's execution time in a cold build,
the fixed cost of one shard (a shard build whose chapters all come from the cache: starting
Sphinx, reading the pages) and the render with no execution. From those, :func:`wall_time`
projects a sharded build of ``n`` chapters on ``k`` shards, assuming:

* **chapters like today's**: chapter ``i`` of the projected book takes the measured time of
  chapter ``i mod m`` of the ``m`` measured ones (the measured book, repeated; 11 chapters
  are the measured book itself);
* **the book's own plan**: chapters go to shards as ``nox -s execute`` splits them
  (:func:`initdocs.book.shards.plan`, greedy, longest first, by these times);
* **shard machines like the measuring one**: a shard runs its chapters on ``cores`` reader
  processes, also balanced longest first (what ``-j auto`` does with the recorded times),
  each chapter taking its measured time (measured with the same parallelism);
* **a fixed cost per shard** (the measured shard overhead), all shards running at once; then
  one merge and render (the measured render). Not counted: creating the environment on a CI
  runner and moving the caches between jobs.

The wall time is ``max over shards (overhead + makespan) + render``.
"""

from __future__ import annotations

from initdocs.book.shards import plan

BOOKS = (11, 50, 100)
SHARDS = (1, 2, 4, 8)


def makespan(seconds: list[float], workers: int) -> float:
    """Finishing time of ``seconds`` on ``workers`` parallel workers, longest first."""
    loads = [0.0] * max(workers, 1)
    for value in sorted(seconds, reverse=True):
        loads[loads.index(min(loads))] += value
    return max(loads)


def book(measured: list[float], chapters: int) -> dict[str, float]:
    """A book of ``chapters`` chapters whose times repeat the measured ones, in order."""
    return {f"c{i:04d}": measured[i % len(measured)] for i in range(chapters)}


def wall_time(
    measured: list[float],
    chapters: int,
    shards: int,
    *,
    cores: int,
    overhead: float,
    render: float,
) -> float:
    """Projected wall time (seconds) of a book of ``chapters`` chapters on ``shards`` shards."""
    times = book(measured, chapters)
    split = plan(sorted(times), times, shards)
    slowest = max(overhead + makespan([times[c] for c in shard], cores) for shard in split)
    return slowest + render


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def markdown(measured: list[float], *, cores: int, overhead: float, render: float) -> str:
    """The projection table (books x shards) with its assumptions, for the README."""
    head = "| Chapters | " + " | ".join(f"{k} shard{'s' * (k > 1)}" for k in SHARDS) + " |"
    lines = [head, "|---:|" + "---:|" * len(SHARDS)]
    for chapters in BOOKS:
        cells = [
            _duration(
                wall_time(measured, chapters, k, cores=cores, overhead=overhead, render=render)
            )
            for k in SHARDS
        ]
        lines.append(f"| {chapters} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Projected from the {len(measured)} chapters' cold execution times above (sum "
        f"{sum(measured):.0f} s): a bigger book repeats them; chapters are split by the "
        f"shards' own plan (longest first); each shard machine runs its chapters on {cores} "
        f"readers and pays {overhead:.0f} s of fixed cost (measured: a shard build with every "
        f"chapter cached); the shards run at once, then the book renders once from the merged "
        f"cache ({render:.0f} s measured). Not counted: creating the environment on a CI "
        "runner and moving the caches between jobs.",
    ]
    return "\n".join(lines) + "\n"
