"""The environment of the kernels that execute the chapters.

:func:`prepare_kernels` is called from ``docs/conf.py`` (and from the tests' small books)
before any kernel starts; kernels inherit the process environment it sets:

* one thread per kernel (``OMP_NUM_THREADS=1`` and friends): the chapters' small models gain
  nothing from more, two kernels run side by side on a two-core machine (``sphinx-build -j``),
  and a fixed thread count keeps float results identical on every machine;
* an IPython folder of the build's own (``IPYTHONDIR``), whose kernel configuration silences
  ipykernel's start-up notice and runs :func:`initdocs.book.offline.forbid_network` first, so
  Python code in a chapter that connects to another host fails at once with a clear message
  (what the guard does not catch is listed in :mod:`initdocs.book.offline`).
"""

from __future__ import annotations

import os
from pathlib import Path

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

KERNEL_CONFIG = """\
# Written by initdocs.book.kernels for the kernels that execute the book's chapters.
c.IPKernelApp.log_level = "ERROR"
c.InteractiveShellApp.exec_lines = [
    "__import__('initdocs.book.offline').book.offline.forbid_network()",
]
"""


def prepare_kernels(build_dir: Path) -> Path:
    """Set up the kernels' environment under ``build_dir``; returns the IPython folder."""
    ipython_dir = Path(build_dir) / "ipython"
    profile = ipython_dir / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    config = profile / "ipython_kernel_config.py"
    if not config.is_file() or config.read_text(encoding="utf-8") != KERNEL_CONFIG:
        config.write_text(KERNEL_CONFIG, encoding="utf-8")
    os.environ["IPYTHONDIR"] = str(ipython_dir)
    for variable in THREAD_VARIABLES:
        os.environ[variable] = "1"
    return ipython_dir
