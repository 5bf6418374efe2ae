"""The book's logo and favicon, drawn from one small geometry.

The mark is a tiny network: three input nodes joined to one output node, the picture of a
layer about to be initialized. The same shapes give:

* ``docs/_static/logo-light.svg`` and ``logo-dark.svg``: dark strokes for the light theme,
  light strokes for the dark theme (the theme swaps them);
* ``docs/_static/favicon.svg``: white mark on a dark-blue tile, readable on light and dark
  browser tabs;
* PNG renderings (favicon fallback, social-card image) drawn with matplotlib at build time,
  so no binary is committed.

The SVG files are committed; ``python -m initdocs.book.logo docs/_static`` writes them again
and the tests check that the committed files equal :func:`svg_files`.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: Size of the square canvas the shapes are drawn on (SVG user units).
SIZE = 64
INPUTS = ((18.0, 16.0), (18.0, 32.0), (18.0, 48.0))
OUTPUT = (46.0, 32.0)
RADIUS = 6.0
STROKE = 3.5

LIGHT_THEME = "#1f4e79"  # dark blue on white: contrast ratio about 9:1
DARK_THEME = "#9ecbff"  # light blue on the dark theme's near-black background
TILE = "#1f4e79"
ON_TILE = "#ffffff"


def _shapes(colour: str) -> str:
    lines = "".join(
        f'<line x1="{x}" y1="{y}" x2="{OUTPUT[0]}" y2="{OUTPUT[1]}" stroke="{colour}" '
        f'stroke-width="{STROKE}" stroke-linecap="round"/>'
        for x, y in INPUTS
    )
    nodes = "".join(
        f'<circle cx="{x}" cy="{y}" r="{RADIUS}" fill="{colour}"/>' for x, y in (*INPUTS, OUTPUT)
    )
    return lines + nodes


def _svg(body: str, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {SIZE} {SIZE}" '
        f'width="{SIZE}" height="{SIZE}" role="img" aria-label="{title}">'
        f"<title>{title}</title>{body}</svg>\n"
    )


def svg_files() -> dict[str, str]:
    """The committed SVG files, by file name."""
    tile = f'<rect width="{SIZE}" height="{SIZE}" rx="12" fill="{TILE}"/>'
    return {
        "logo-light.svg": _svg(_shapes(LIGHT_THEME), "MLT __init__ logo"),
        "logo-dark.svg": _svg(_shapes(DARK_THEME), "MLT __init__ logo"),
        "favicon.svg": _svg(tile + _shapes(ON_TILE), "MLT __init__"),
    }


def write_svgs(folder: Path) -> list[Path]:
    """Write :func:`svg_files` into ``folder``; return the paths written."""
    paths = []
    for name, text in svg_files().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def write_png(path: Path, pixels: int) -> Path:
    """Render the favicon (white mark on the blue tile) as a square PNG of ``pixels`` size.

    Deterministic: no timestamp or software metadata is written into the file.
    """
    import matplotlib

    matplotlib.use("agg")
    from matplotlib import patches
    from matplotlib import pyplot as plt

    dpi = 100
    figure = plt.figure(figsize=(pixels / dpi, pixels / dpi), dpi=dpi)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, SIZE)
    axes.set_ylim(SIZE, 0)  # SVG's y axis points down
    axes.set_axis_off()
    axes.add_patch(
        patches.FancyBboxPatch(
            (0, 0), SIZE, SIZE, boxstyle="round,pad=0,rounding_size=12", color=TILE
        )
    )
    points_per_unit = pixels / SIZE * 72 / dpi
    for x, y in INPUTS:
        axes.plot(
            [x, OUTPUT[0]],
            [y, OUTPUT[1]],
            color=ON_TILE,
            linewidth=STROKE * points_per_unit,
            solid_capstyle="round",
        )
    for x, y in (*INPUTS, OUTPUT):
        axes.add_patch(patches.Circle((x, y), RADIUS, color=ON_TILE))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, transparent=True, metadata={"Software": None})
    plt.close(figure)
    return path


if __name__ == "__main__":
    for written in write_svgs(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/_static")):
        print(written)
