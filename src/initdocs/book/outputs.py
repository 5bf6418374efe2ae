"""The text a chapter's cells printed, as readers see it: for determinism checks and downloads.

myst-nb stores an executed notebook with the kernel's messages as they came, so one cell's
standard output can be split over several stream outputs (and the last lines are sometimes
sent twice, in a second message repeating the end of the first). The HTML page merges them
(``nb_merge_streams``); :func:`coalesce_streams` does the same for a stored notebook.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TEXT_TYPES = ("text/plain", "text/html", "text/markdown", "text/latex")


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def coalesce_streams(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge consecutive stream outputs of the same stream into one (a new list).

    A trailing repetition is dropped: when a stream message consists only of lines that the
    merged text already ends with, it is the kernel re-sending them, not new output.
    """
    merged: list[dict[str, Any]] = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            output.get("output_type") == "stream"
            and previous is not None
            and previous.get("output_type") == "stream"
            and previous.get("name") == output.get("name")
        ):
            text = _text(output.get("text", ""))
            if not (text and text.endswith("\n") and previous["text"].endswith(text)):
                previous["text"] += text
            continue
        copy = dict(output)
        if copy.get("output_type") == "stream":
            copy["text"] = _text(copy.get("text", ""))
        merged.append(copy)
    return merged


def text_outputs(notebook: dict[str, Any] | Path) -> list[list[str]]:
    """Per code cell, the text of its outputs (streams merged; images left out)."""
    if isinstance(notebook, Path):
        notebook = json.loads(notebook.read_text(encoding="utf-8"))
    cells = []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        texts = []
        for output in coalesce_streams(cell.get("outputs", [])):
            kind = output.get("output_type")
            if kind == "stream":
                texts.append(f"{output['name']}: {output['text']}")
            elif kind in ("execute_result", "display_data"):
                data = output.get("data", {})
                texts.extend(f"{t}: {_text(data[t])}" for t in TEXT_TYPES if t in data)
            elif kind == "error":
                texts.append(f"error: {output.get('ename')}: {output.get('evalue')}")
        cells.append(texts)
    return cells
