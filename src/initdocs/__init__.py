"""initdocs: small, tested PyTorch implementations of the papers read at MLT ``__init__``.

One module per paper (``initdocs.xception``, ...) and a few helpers every chapter of the book
shares: counting parameters and multiply-accumulates, offline data, a tiny training loop and
the plotting style.
"""

from initdocs.counting import count_macs, count_parameters

__version__ = "0.1.0"

__all__ = ["__version__", "count_macs", "count_parameters"]
