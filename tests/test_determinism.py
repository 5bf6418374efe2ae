"""Two cold executions of a chapter print exactly the same text in every cell.

The book's build (run by ``nox -s tests`` before pytest) stored each chapter's executed
notebook in docs/_build/jupyter_execute. This test executes one chapter again, cold: a fresh
execution cache, its own output folder, only that chapter executed (the preview mode). Its
text outputs must equal the stored ones cell by cell. The chapter changes from day to day
(set INITDOCS_DETERMINISM_CHAPTER=NN-name to choose one), so that every chapter is checked
over time; ``nox -s bench`` checks all of them at once.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

from conftest import BUILD, CHAPTERS, DOCS

from initdocs.book.outputs import text_outputs


def chosen_chapter() -> str:
    names = [chapter.stem for chapter in CHAPTERS]
    return os.environ.get(
        "INITDOCS_DETERMINISM_CHAPTER", names[dt.date.today().toordinal() % len(names)]
    )


def test_a_cold_execution_prints_what_the_book_shows(html, tmp_path):
    chapter = chosen_chapter()
    stored = BUILD / "jupyter_execute" / "sessions" / f"{chapter}.ipynb"
    assert stored.is_file(), f"{stored} is missing: build the book first (nox -s tests)"

    env = dict(
        os.environ,
        INITDOCS_PREVIEW=chapter,
        INITDOCS_CACHE_DIR=str(tmp_path / "cache"),  # cold: nothing cached
    )
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-M", "html", str(DOCS), str(tmp_path / "out"), "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    fresh = tmp_path / "out" / "jupyter_execute" / "sessions" / f"{chapter}.ipynb"

    expected, actual = text_outputs(stored), text_outputs(fresh)
    assert sum(map(len, expected)) > 0, f"{chapter} printed nothing to compare"
    assert len(actual) == len(expected)
    for number, (want, got) in enumerate(zip(expected, actual, strict=True), start=1):
        assert got == want, f"{chapter}, code cell {number}: outputs differ between two runs"


def test_streams_merge_to_what_the_cell_printed_however_the_kernel_chunked_it():
    from nbformat.v4 import new_output

    from initdocs.book.outputs import merge_streams

    printed = "encoder   5,807,000\ndecoder  18,423,000\n"
    # The same print, cut by the kernel's flush timer at three different places.
    for cut in (len("encoder   5,807,000"), len("encoder   5,807,000\n"), 5):
        chunks = [
            new_output("stream", name="stdout", text=printed[:cut]),
            new_output("display_data", data={"text/plain": "<Figure>"}),
            new_output("stream", name="stdout", text=printed[cut:]),
        ]
        merged = merge_streams(chunks)
        assert [o["output_type"] for o in merged] == ["stream", "display_data"]
        assert merged[0]["text"] == printed
        assert chunks[0]["text"] == printed[:cut]  # the input is left as it was
