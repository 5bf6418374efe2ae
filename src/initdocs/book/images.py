"""Figures sized for the web: the PNG outputs of the chapters, recompressed losslessly enough.

Matplotlib writes 24-bit RGBA PNGs. Plots use few colours, so a 256-colour palette (no
dithering) looks the same and is often 3 to 6 times smaller; a figure with photographic noise
(the SSD chapter's generated images) gains the most. :func:`compress_png` keeps the original
when the palette version is not clearly smaller. The build applies it to every PNG output of
a chapter before the page is rendered (see :mod:`initdocs.book.execution`), so the page, the
stored notebook and the download carry the same picture. The result is deterministic.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image

MIN_SAVING = 0.10  # keep the original unless the palette PNG is at least 10 % smaller


def compress_png(data: bytes) -> bytes:
    """A 256-colour, optimized PNG of ``data``, or ``data`` itself if that is not smaller."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        if image.mode not in ("RGB", "RGBA"):
            return data
        palette = image.quantize(
            colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
        )
        buffer = io.BytesIO()
        palette.save(buffer, "PNG", optimize=True)
    smaller = buffer.getvalue()
    return smaller if len(smaller) <= (1 - MIN_SAVING) * len(data) else data


def compress_notebook_images(notebook: Any) -> int:
    """Compress every ``image/png`` output of ``notebook`` in place; returns bytes saved."""
    saved = 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = output.get("data", {})
            if "image/png" not in data:
                continue
            original = base64.b64decode(data["image/png"])
            smaller = compress_png(original)
            if smaller is not original:
                data["image/png"] = base64.b64encode(smaller).decode("ascii")
                saved += len(original) - len(smaller)
    return saved
