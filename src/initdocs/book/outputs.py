"""The text a chapter's cells printed, as readers see it: for the determinism checks.

myst-nb stores an executed notebook with the kernel's messages as they came, so one cell's
standard output can be split over several stream outputs. The build merges them with
:func:`merge_streams` before the page is rendered (:mod:`initdocs.book.execution`), and
:func:`text_outputs` does the same, so that two executions are compared as the reader sees them.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
from myst_nb.core.utils import coalesce_streams

TEXT_TYPES = ("text/plain", "text/html", "text/markdown", "text/latex")


def merge_streams(outputs: list[nbformat.NotebookNode]) -> list[nbformat.NotebookNode]:
    """A cell's stream outputs merged into one per stream name, exactly as the cell printed them.

    The kernel sends what a cell prints in chunks cut wherever its flush timer fires, so two runs
    of the same cell can be chunked differently. myst-nb's ``coalesce_streams`` strips each chunk
    before joining them, which turns a chunk boundary just before a line break into an empty
    line: the page then depends on timing. Here the chunks are joined as they came (the same
    text on every run) and only then handed to ``coalesce_streams`` for its handling of ``\\r``,
    ``\\b`` and the order of stdout and stderr. The outputs are copied, not changed in place.
    """
    merged: list[nbformat.NotebookNode] = []
    streams: dict[str, nbformat.NotebookNode] = {}
    for output in copy.deepcopy(outputs):
        if output.get("output_type") == "stream":
            if output["name"] in streams:
                streams[output["name"]]["text"] += output["text"]
                continue
            streams[output["name"]] = output
        merged.append(output)
    return coalesce_streams(merged)


def text_outputs(notebook: nbformat.NotebookNode | Path) -> list[list[str]]:
    """Per code cell, the text of its outputs (streams merged; images left out)."""
    if isinstance(notebook, Path):
        notebook = nbformat.read(notebook, as_version=4)
    cells = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        texts = []
        for output in merge_streams(cell.get("outputs", [])):
            kind = output.get("output_type")
            if kind == "stream":
                texts.append(f"{output['name']}: {output['text']}")
            elif kind in ("execute_result", "display_data"):
                data = output.get("data", {})
                texts.extend(f"{t}: {data[t]}" for t in TEXT_TYPES if t in data)
            elif kind == "error":
                texts.append(f"error: {output.get('ename')}: {output.get('evalue')}")
        cells.append(texts)
    return cells
