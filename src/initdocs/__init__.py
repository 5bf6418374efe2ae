"""initdocs: small, tested PyTorch implementations of the papers read at MLT ``__init__``.

One module per paper (``initdocs.xception``, ...) and a few helpers every chapter of the book
shares: counting parameters and multiply-accumulates (:mod:`initdocs.counting`), offline data
(:mod:`initdocs.data`), training primitives (:mod:`initdocs.train`), a small ResNet
(:mod:`initdocs.resnet`) and the plotting style (:mod:`initdocs.plotting`). The book's own
machinery lives apart, in :mod:`initdocs.book`.

Importing the package imports nothing else: ``count_macs`` and ``count_parameters`` are
loaded (with torch) when first used, so the ``initdocs`` command starts without torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "count_macs", "count_parameters"]


def __getattr__(name: str) -> Any:
    """``initdocs.count_macs`` and ``initdocs.count_parameters``, from :mod:`initdocs.counting`."""
    if name in ("count_macs", "count_parameters"):
        from initdocs import counting

        return getattr(counting, name)
    raise AttributeError(f"module 'initdocs' has no attribute {name!r}")
