"""The text a chapter's cells printed, as readers see it: for the determinism checks.

myst-nb stores an executed notebook with the kernel's messages as they came, so one cell's
standard output can be split over several stream outputs. The page merges them with myst-nb's
``coalesce_streams`` (``nb_merge_streams``); :func:`text_outputs` does the same, so that two
executions are compared as the reader would see them.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
from myst_nb.core.utils import coalesce_streams

TEXT_TYPES = ("text/plain", "text/html", "text/markdown", "text/latex")


def text_outputs(notebook: nbformat.NotebookNode | Path) -> list[list[str]]:
    """Per code cell, the text of its outputs (streams merged; images left out)."""
    if isinstance(notebook, Path):
        notebook = nbformat.read(notebook, as_version=4)
    cells = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        texts = []
        for output in coalesce_streams(copy.deepcopy(cell.get("outputs", []))):
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
