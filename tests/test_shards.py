"""Sharded execution (initdocs.book.shards): the plan, and small books executed in shards,
merged and rendered with no execution, compared with the same book built in one go."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_execution import executed, make_project, page

from initdocs.book import shards
from initdocs.book.outputs import text_outputs
from initdocs.book.shards import Shard, ShardError, plan

CHAPTERS = {  # deterministic outputs of several kinds: streams, results, a seeded draw
    "01-a": "print('alpha', sum(range(10)))",
    "02-b": "import random\nrandom.seed(3)\n[random.randint(0, 99) for _ in range(4)]",
    "03-c": "from IPython.display import Markdown\nMarkdown('**bold** claim')",
    "04-d": "import math\nprint(round(math.pi, 6))\nmath.e",
}


def run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, **(env or {})),
    )
    return result.returncode, result.stdout + result.stderr


def execute(src: Path, build: Path, shard: str, cache: Path) -> tuple[int, str]:
    """`nox -s execute -- --shard I/N` on the small book, each shard with its own cache."""
    command = ["-m", "initdocs.book.shards", "execute", "--shard", shard, "--docs", str(src)]
    return run([*command, "--build", str(build), "--", "-D", f"nb_execution_cache_path={cache}"])


def html_build(src: Path, out: Path, cache: Path, env: dict[str, str] | None = None):
    """The book's HTML build (warnings are errors) with the execution cache ``cache``."""
    command = ["-m", "sphinx", "-M", "html", str(src), str(out), "-W", "--keep-going", "-n"]
    return run([*command, "-D", f"nb_execution_cache_path={cache}"], env=env)


def render(src: Path, out: Path, cache: Path) -> tuple[int, str]:
    """The HTML build with no execution allowed, from ``cache``."""
    return html_build(src, out, cache, env={shards.CACHE_ONLY_ENV: "1"})


def sharded(src: Path, tmp: Path, count: int) -> tuple[Path, dict[str, list[str]]]:
    """Execute every shard of ``count``, merge, render; the output folder and who ran what."""
    build = tmp / f"build-{count}"
    ran = {}
    for index in range(1, count + 1):
        code, log = execute(src, build, f"{index}/{count}", tmp / f"cache-{count}-{index}")
        assert code == 0, log
        assert "WARNING" not in log, log
        ran[f"{index}/{count}"] = executed(log)
    folders = [build / "shards" / f"{i}-of-{count}" for i in range(1, count + 1)]
    merged = tmp / f"merged-{count}"
    assert shards.main(["merge", *map(str, folders), "--into", str(merged)]) == 0
    out = tmp / f"out-{count}"
    code, log = render(src, out, merged)
    assert code == 0, log
    assert executed(log) == [], "the render executed chapters"
    return out, ran


def test_shard_spec_is_checked():
    assert Shard.parse("2/3") == Shard(2, 3)
    assert Shard.parse("2/3").folder == "2-of-3"
    for bad in ("0/2", "3/2", "2", "a/b", "1/0", ""):
        with pytest.raises(ShardError, match="expected I/N"):
            Shard.parse(bad)


def test_plan_is_greedy_longest_first():
    # By hand: 50 -> s1 (0); 40 -> s2 (0); 30 -> s3 (0); 20 -> s3 (30); 10 -> s2 (40);
    # 5 -> s1 (50 vs 50 vs 50: the lowest shard). Loads 55, 50, 50.
    seconds = {"a": 10, "b": 50, "c": 30, "d": 40, "e": 20, "f": 5}
    assert plan(sorted(seconds), seconds, 3) == [["b", "f"], ["a", "d"], ["c", "e"]]
    assert plan(sorted(seconds), seconds, 1) == [sorted(seconds)]
    assert plan(["a"], {"a": 1}, 3) == [["a"], [], []]


def test_plan_without_times_deals_in_name_order_and_unknown_counts_as_median():
    names = ["01", "02", "03", "04", "05"]
    assert plan(names, {}, 2) == [["01", "03", "05"], ["02", "04"]]
    # Known 10, 20, 60: median 20 for "new". 60 -> s1; 20 (02, then new) -> s2, s2... by hand:
    # 60 -> s1 (0); 20 "02" -> s2 (0); 20 "new" -> s2 (20 < 60); 10 -> s2 (40 < 60).
    seconds = {"01": 60.0, "02": 20.0, "03": 10.0}
    assert plan([*seconds, "new"], seconds, 2) == [["01"], ["02", "03", "new"]]


def test_recorded_seconds(tmp_path):
    report = tmp_path / "execution.json"
    assert shards.recorded_seconds(report) == {}
    report.write_text(json.dumps({"s/a": {"seconds": 3.5}, "s/b": {"seconds": 0}}))
    assert shards.recorded_seconds(report) == {"s/a": 3.5}
    report.write_text("[1, 2]")
    with pytest.raises(ShardError, match="not an execution report"):
        shards.recorded_seconds(report)


def test_two_and_three_shards_render_what_one_build_renders(tmp_path):
    src = make_project(tmp_path, CHAPTERS)
    single = tmp_path / "single"
    code, log = html_build(src, single, tmp_path / "cache-single")
    assert code == 0, log
    assert executed(log) == sorted(CHAPTERS)
    for count in (2, 3):
        out, ran = sharded(src, tmp_path, count)
        expected = plan([f"sessions/{c}" for c in CHAPTERS], {}, count)  # no times: dealt
        assert list(ran.values()) == [[d.split("/")[1] for d in shard] for shard in expected]
        for name in CHAPTERS:
            notebook = Path("jupyter_execute") / "sessions" / f"{name}.ipynb"
            assert text_outputs(out / notebook) == text_outputs(single / notebook)
            assert page(out, name).read_text("utf-8") == page(single, name).read_text("utf-8")
        assert "alpha 45" in page(out, "01-a").read_text("utf-8")


def test_a_missing_or_failed_shard_fails_the_render_naming_shard_and_chapter(tmp_path):
    src = make_project(
        tmp_path, {"01-a": "print(1)", "02-b": "raise ValueError('diverged')", "03-c": "print(3)"}
    )
    build = tmp_path / "build"
    code, log = render(src, tmp_path / "out-none", tmp_path / "empty-cache")
    assert code != 0
    for name in ("01-a", "02-b", "03-c"):  # every missing chapter, not only the first
        assert f"chapter sessions/{name} is not in the execution cache" in log
    assert "3 chapter(s) missing from the execution cache" in log
    assert "sphinx-doc/sphinx/issues" not in log  # our message, not Sphinx's crash banner
    assert executed(log) == []

    code, log = execute(src, build, "1/2", tmp_path / "cache-1")  # 01-a and 03-c
    assert code == 0, log
    folders = [build / "shards" / "1-of-2", build / "shards" / "2-of-2"]
    assert shards.main(["merge", str(folders[0]), "--into", str(tmp_path / "only-1")]) == 0
    code, log = render(src, tmp_path / "out-1", tmp_path / "only-1")
    assert code != 0
    assert "chapter sessions/02-b is missing: it belongs to shard 2/2" in log
    assert "nox -s execute -- --shard 2/2" in log

    code, log = execute(src, build, "2/2", tmp_path / "cache-2")
    assert code != 0 and "diverged" in log
    manifest = shards.read_manifest(folders[1])
    assert manifest["chapters"]["sessions/02-b"] == {
        "status": "failed",
        "error": "CellExecutionError",
        "detail": "ValueError: diverged",
    }
    assert "[initdocs] shard 2/2 failed." in log
    report = shards.summary(folders)
    assert report.startswith(
        "Failing: chapter sessions/02-b failed in shard 2/2 (ValueError: diverged)"
    )
    assert "| 1/2 | sessions/03-c | executed |" in report

    assert shards.main(["merge", *map(str, folders), "--into", str(tmp_path / "both")]) == 0
    code, log = render(src, tmp_path / "out-2", tmp_path / "both")
    assert code != 0
    assert "chapter sessions/02-b failed to execute in shard 2/2 (CellExecutionError)" in log
    assert "nox -s preview -- 02-b" in log
    assert not page(tmp_path / "out-2", "02-b").exists()


def test_merge_refuses_shards_planned_differently(tmp_path):
    for name, shard, shard_plan in (("x", "1/2", [["a"], ["b"]]), ("y", "2/2", [["b"], ["a"]])):
        (tmp_path / name).mkdir()
        manifest = {"shard": shard, "plan": shard_plan, "chapters": {}}
        (tmp_path / name / shards.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ShardError, match="planned differently"):
        shards.merge([tmp_path / "x", tmp_path / "y"], tmp_path / "into")
    with pytest.raises(ShardError, match=r"no manifest\.json"):
        shards.merge([tmp_path], tmp_path / "into")
