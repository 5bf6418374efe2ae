"""One plotting style for every chapter: readable on a phone and in the dark theme."""

from __future__ import annotations

import matplotlib as mpl

__all__ = ["OKABE_ITO", "use_book_style"]

#: Okabe & Ito's palette: distinguishable with the common kinds of colour blindness.
OKABE_ITO = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#000000",  # black
)


def use_book_style() -> None:
    """Set matplotlib defaults for the book's figures.

    Figures keep an opaque white background, so they read the same in the light and the dark
    theme (a transparent figure loses its black axes on a dark page); they are sized to fit a
    phone screen, with fonts large enough to read there.
    """
    mpl.rcParams.update(
        {
            "figure.figsize": (6.4, 3.6),
            "figure.dpi": 100,
            "figure.facecolor": "white",
            "savefig.facecolor": "white",
            "savefig.transparent": False,
            "axes.facecolor": "white",
            "axes.prop_cycle": mpl.cycler(color=OKABE_ITO),
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 11,
            "axes.titlesize": 12,
            "legend.frameon": False,
            "figure.constrained_layout.use": True,
        }
    )
