"""The build benchmark's own parts (initdocs.book.bench); the benchmark itself runs with
``nox -s bench`` (15 minutes), not in the tests."""

from __future__ import annotations

import shutil

import pytest
from conftest import CHAPTERS, ROOT

from initdocs.book import bench
from initdocs.book.dependencies import code_cells


@pytest.fixture
def copy(tmp_path):
    target = tmp_path / "repo"
    shutil.copytree(ROOT / "docs" / "sessions", target / "docs" / "sessions")
    shutil.copytree(
        ROOT / "src" / "initdocs",
        target / "src" / "initdocs",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return target


def test_prose_edit_changes_prose_only(copy):
    chapter = copy / "docs" / "sessions" / "01-xception.md"
    before = chapter.read_text(encoding="utf-8")
    bench._edit_prose(chapter)
    after = chapter.read_text(encoding="utf-8")
    assert after != before and "An edit by the build benchmark." in after
    assert code_cells(after) == code_cells(before)


def test_code_cell_edit_changes_one_cell_and_keeps_its_options(copy):
    for chapter in (copy / "docs" / "sessions").glob("[0-9][0-9]-*.md"):
        before = code_cells(chapter.read_text(encoding="utf-8"))
        bench._edit_code_cell(chapter)
        after = code_cells(chapter.read_text(encoding="utf-8"))
        changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        assert len(changed) == 1, chapter.name
        assert after[changed[0]] == "# An edit by the build benchmark.\n" + before[changed[0]]


def test_importers_of_a_module(copy):
    # Only the SE chapter imports initdocs.se; every chapter imports initdocs (counting).
    assert bench._importers(copy, "se.py") == ["03-squeeze-excitation"]
    assert bench._importers(copy, "counting.py") == [c.stem for c in CHAPTERS]
    assert "04-ssd" not in bench._importers(copy, "resnet.py")


def test_readme_table_is_replaced_between_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# T\n\n<!-- bench:start -->\nold\n<!-- bench:end -->\n\nrest\n")
    bench.update_readme(readme, "new table\n")
    assert (
        readme.read_text() == "# T\n\n<!-- bench:start -->\nnew table\n<!-- bench:end -->\n\nrest\n"
    )
    readme.write_text("# no markers\n")
    with pytest.raises(SystemExit, match="add the lines '<!-- bench:start -->'"):
        bench.update_readme(readme, "x")
    assert readme.read_text() == "# no markers\n"  # nothing lost


def test_a_failed_determinism_check_names_the_cell_and_shows_the_difference():
    from initdocs.book.bench import first_difference

    same = [["stdout: a\n"]]
    assert first_difference(same, same) == "no difference"
    found = first_difference(
        [["stdout: a\n"], ["stdout: loss 0.51\ndone\n"]],
        [["stdout: a\n"], ["stdout: loss 0.52\ndone\n"]],
    )
    assert found.startswith("code cell 1:\n")
    assert "-stdout: loss 0.51" in found and "+stdout: loss 0.52" in found
    assert "\n done" in found  # unchanged context is kept
    assert first_difference([[]], [[], []]) == "1 code cells against 2"


def test_sharded_projection_against_a_hand_computed_case():
    from initdocs.book.projection import book, makespan, wall_time

    # Measured 10, 20, 30 s; a book of 5 repeats them: c0..c4 = 10, 20, 30, 10, 20.
    assert list(book([10, 20, 30], 5).values()) == [10, 20, 30, 10, 20]
    # Two shards, longest first: 30 -> s1; 20 (c1) -> s2; 20 (c4) -> s2 (20 < 30);
    # 10 (c0) -> s1 (30 < 40); 10 (c3) -> s1 (40 = 40, the lower shard): s1 = 30+10+10 = 50,
    # s2 = 20+20 = 40. One core each: max(5 + 50, 5 + 40) + 7 = 62.
    assert wall_time([10, 20, 30], 5, 2, cores=1, overhead=5, render=7) == 62
    # Two cores each: s1 runs 30 | 10+10 -> 30, s2 runs 20 | 20 -> 20: max(35, 25) + 7 = 42.
    assert wall_time([10, 20, 30], 5, 2, cores=2, overhead=5, render=7) == 42
    # One shard, one core: everything in a row: 5 + 90 + 7.
    assert wall_time([10, 20, 30], 5, 1, cores=1, overhead=5, render=7) == 102
    assert makespan([7, 5, 4, 3], 2) == 10  # 7+3 | 5+4


def test_projection_table_for_the_readme():
    from initdocs.book.projection import markdown

    table = markdown([60.0, 30.0], cores=2, overhead=20, render=40)
    lines = table.splitlines()
    assert lines[0] == "| Chapters | 1 shard | 2 shards | 4 shards | 8 shards |"
    # 11 chapters (6 of 60 s, 5 of 30 s) on 1 shard of 2 cores: 60,60,60 | 60,60,60 then the
    # 30s: 6 x 60 = 360 split 180 | 180, five 30s -> 270 | 240: 20 + 270 + 40 = 330 s.
    assert lines[2].startswith("| 11 | 5 min 30 s |")
    # 100 chapters (50 of 60 s, 50 of 30 s) on 8 shards, by hand: the 60s go 7, 7, 6, ..., 6;
    # the 30s fill up to 570 s on shards 1-6 (7x60 + 5x30 or 6x60 + 7x30) and 540 s on 7-8.
    # On 2 cores 7x60 + 5x30 runs 300 | 270, 6x60 + 7x30 runs 300 | 270: 20 + 300 + 40 = 360.
    assert lines[4].startswith("| 100 |") and lines[4].endswith("| 6 min 00 s |")
    assert "2 readers and pays 20 s of fixed cost" in table


def test_bench_table_ends_with_the_projection():
    from initdocs.book.projection import markdown as projection_table

    table = projection_table([30.0], cores=2, overhead=10, render=20)
    results = {
        "date": "2026-12-03",
        "machine": "2 cores",
        "jobs": "auto",
        "reference": [2.5, 2.0],
        "scenarios": [
            {"name": "cold", "seconds": 40.0, "executed": ["01-a"], "expected": None,
             "chapter_seconds": {"01-a": 30.0}},
        ],
        "edits": {"prose": "01-a", "code cell": "01-a", "module": "x.py"},
        "parallel": "Both cores.",
        "determinism": "Determinism.",
        "sharding": {"overhead": 10, "render": 20, "cores": 2, "table": table},
    }  # fmt: skip
    text = bench.markdown(results)
    assert text.endswith("projected:\n\n" + table)
    # 11 chapters of 30 s, 2 readers per shard, 10 s per shard, 20 s render, by hand:
    # 1 shard: 6 | 5 chapters -> 180 s; 2 shards: 6 and 5 -> 3 | 3 -> 90 s; 4 shards: at most
    # 3 -> 60 s; 8 shards: at most 2 -> 30 s. Each + 10 + 20.
    assert "| 11 | 3 min 30 s | 2 min 00 s | 1 min 30 s | 1 min 00 s |" in text


def test_bench_table_gives_chapters_in_reference_units():
    from initdocs.book.calibration import BUDGETS

    budget = BUDGETS["chapter"]
    over = 3.0 * budget  # seconds alone at 2 s per r: 1.5 budgets
    results = {
        "date": "2026-12-03",
        "machine": "2 cores",
        "jobs": "auto",
        "reference": [2.5, 2.0],  # the faster is the unit
        "load": [0.5, 1.25],
        "scenarios": [
            {"name": "cold", "seconds": 1000.0, "executed": ["01-a", "02-b"], "expected": None,
             "chapter_seconds": {"01-a": 36.0, "02-b": over + 10}},
            {"name": "cold, serial", "seconds": 1500.0, "executed": ["01-a", "02-b"],
             "expected": None, "chapter_seconds": {"01-a": 30.0, "02-b": over}},
        ],
        "edits": {"prose": "01-a", "code cell": "01-a", "module": "x.py"},
        "parallel": "Both cores.",
        "determinism": "Determinism.",
    }  # fmt: skip
    text = bench.markdown(results)
    # Judged alone: 30 s / 2.0 s = 15 r (within any budget of 15 r or more); 3 budgets'
    # worth of seconds at 2 s per r is 1.5 budgets: over.
    assert f"| 01-a | 36.0 s | 30.0 s | 15.0 | {'✓' if budget >= 15 else '✗'} |" in text
    assert f"| 02-b | {over + 10:.1f} s | {over:.1f} s | {1.5 * budget:.1f} | ✗ |" in text
    assert "the unit r is the faster, 2.00 s" in text
    within = "within" if BUDGETS["cold build"] >= 500 else "over"
    assert f"The cold build took 1000.0 s = 500.0 r: {within} its budget" in text
    assert "load average 0.5 at the start, 1.2 at the end" in text


def test_nothing_changed_through_nox_creates_the_environment_untimed(tmp_path, monkeypatch):
    # The bench's `nox -s docs` scenarios: first nox installs only (not timed); then the first
    # build in that new environment (Sphinx rewrites the pages: the theme's templates are newer
    # than them) and the second, the no-op users see, are timed separately, in the copy.
    calls, seconds = [], iter([60.0, 9.5, 3.1])

    def timed(copy, command, **env):
        calls.append(command)
        return next(seconds)

    monkeypatch.setattr(bench, "_timed", timed)
    build = tmp_path / "docs" / "_build"
    build.mkdir(parents=True)
    (build / "execution.json").write_text('{"sessions/01-a": {"seconds": 3.0, "executed": false}}')
    first, noop = bench._nox_noop(tmp_path, "/usr/bin/python3", tmp_path / "envs")
    base = ["/usr/bin/python3", "-m", "nox", "-f", "noxfile.py", "--envdir", str(tmp_path / "envs")]
    docs = [*base, "-s", "docs"]
    assert calls == [[*docs, "--install-only"], docs, docs]
    assert (first.name, first.seconds, first.executed) == (bench.NOX_FIRST, 9.5, [])
    assert (noop.name, noop.seconds, noop.executed) == (bench.NOX_NOOP, 3.1, [])
    assert bench.TARGETS[bench.NOX_NOOP] == 5.0 and bench.TARGETS[bench.NOX_FIRST] is None
