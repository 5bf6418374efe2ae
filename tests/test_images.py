"""Figures recompressed for the web (initdocs.book.images): smaller, and the same picture."""

from __future__ import annotations

import base64
import io

import matplotlib
import nbformat
import numpy as np
from PIL import Image

from initdocs.book.images import compress_notebook_images, compress_png

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def figure_png(noise: bool) -> bytes:
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    if noise:  # like the SSD chapter's generated images: photographic noise
        ax.imshow(rng.normal(0.5, 0.1, (120, 120)).clip(0, 1), cmap="viridis")
    x = np.linspace(0, 10, 200)
    ax.plot(x, np.sin(x), label="sin")
    ax.plot(x, np.cos(x), "--", label="cos")
    ax.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"), dtype=float)


def test_a_plot_gets_much_smaller_and_looks_the_same():
    for noise in (False, True):
        original = figure_png(noise)
        smaller = compress_png(original)
        assert len(smaller) < 0.7 * len(original)
        assert Image.open(io.BytesIO(smaller)).mode == "P"
        difference = np.abs(pixels(smaller) - pixels(original))
        assert difference.shape == pixels(original).shape
        assert difference.mean() < 2.0  # out of 255: invisible (white may become 254)
        assert np.percentile(difference, 99) <= 16


def test_an_image_that_does_not_shrink_is_kept_as_it_is():
    tiny = io.BytesIO()
    Image.new("RGB", (2, 2), (10, 20, 30)).save(tiny, "PNG")
    assert compress_png(tiny.getvalue()) == tiny.getvalue()
    gray = io.BytesIO()
    Image.new("L", (50, 50), 128).save(gray, "PNG")
    assert compress_png(gray.getvalue()) == gray.getvalue()  # not RGB(A): untouched


def test_notebook_outputs_are_compressed_in_place():
    original = figure_png(True)
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("plot()")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"image/png": base64.b64encode(original).decode(), "text/plain": "<Figure>"},
        ),
        nbformat.v4.new_output("stream", name="stdout", text="done\n"),
    ]
    notebook.cells = [nbformat.v4.new_markdown_cell("# Title"), cell]
    saved = compress_notebook_images(notebook)
    data = base64.b64decode(cell.outputs[0]["data"]["image/png"])
    assert saved == len(original) - len(data) > 0
    assert cell.outputs[0]["data"]["text/plain"] == "<Figure>"
    assert cell.outputs[1]["text"] == "done\n"
