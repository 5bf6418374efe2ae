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
