"""A fixed reference workload, so that a time budget means the same on any machine.

Two machines of the same kind (two cores, same processor name) can differ by a factor of two
or three, and a shared machine differs from itself from one hour to the next. The bench
(:mod:`initdocs.book.bench`) therefore times this workload in the same run as the book, and
reports every time also in **reference units** (``r``): seconds divided by the workload's
seconds. A chapter that takes 30 r takes thirty times as long as the workload on whatever
machine measured it.

The workload is the book's kind of compute, written here with plain torch so that no change
to the package or the chapters changes it: a small convolutional network and a small
self-attention layer trained with AdamW on generated data, one thread, as the chapters'
kernels run (:mod:`initdocs.book.kernels`). It runs in a fresh Python process, three times;
the fastest run counts (the slower ones measured other programs as well).

The budgets were set on the machine the book is built on in CI (two cores, 24 GiB), where
the workload took :data:`REFERENCE_SECONDS` on a quiet day: a chapter may execute for 60 s
there, the cold build may take 300 s. :data:`BUDGETS` holds them in reference units.

``python -m initdocs.book.calibration`` prints the workload's time on this machine and the
budgets converted to seconds here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import torch
from torch import nn

from initdocs.book.kernels import THREAD_VARIABLES

#: The workload's fastest time on the CI machine when the budgets were set (seconds): measured
#: 2026-12-03 on this project's 2-core CI machine at load average 0.4 (1.60, 1.65, 1.73 s).
REFERENCE_SECONDS = 1.6
#: Budgets in reference units: seconds on the CI machine divided by REFERENCE_SECONDS.
BUDGETS = {"chapter": 60.0 / REFERENCE_SECONDS, "cold build": 300.0 / REFERENCE_SECONDS}
#: Steps of the workload; with the sizes below about a second and a half on the CI machine.
STEPS = 15


class _Workload(nn.Module):
    """Conv-BN-ReLU twice, then one self-attention layer over the 8x8 positions, then a head."""

    def __init__(self, channels: int = 32, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
        )
        self.attention = nn.MultiheadAttention(channels, num_heads=4, batch_first=True)
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x).flatten(2).transpose(1, 2)  # (B, 64, C)
        h = h + self.attention(h, h, h, need_weights=False)[0]
        return self.head(h.mean(dim=1))  # (B, classes)


def workload(steps: int = STEPS) -> float:
    """Train the reference network for ``steps`` batches; returns the last loss.

    Deterministic: the same loss, bit for bit, on every run with the same torch.
    """
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(512, 1, 8, 8, generator=generator)
    y = torch.randint(0, 10, (512,), generator=generator)
    torch.manual_seed(0)
    model = _Workload()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    loss = torch.tensor(0.0)
    for step in range(steps):
        batch = torch.arange(step * 64, step * 64 + 64) % len(x)
        loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return loss.item()


def _one_run() -> float:
    """Seconds of one workload run in a fresh process with one thread."""
    code = (
        "from initdocs.book.calibration import workload; import time; "
        "start = time.perf_counter(); workload(); print(time.perf_counter() - start)"
    )
    env = dict(os.environ, **dict.fromkeys(THREAD_VARIABLES, "1"))
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"the reference workload failed:\n{result.stderr[-2000:]}")
    return float(result.stdout.split()[-1])


def reference_seconds(runs: int = 3) -> float:
    """The workload's fastest time of ``runs`` runs on this machine, now (seconds).

    Starting Python and importing torch are not timed: they depend on the disk cache more
    than on the processor.
    """
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    return min(_one_run() for _ in range(runs))


def units(seconds: float, reference: float) -> float:
    """``seconds`` in reference units, given the workload's ``reference`` seconds."""
    if reference <= 0:
        raise ValueError(f"the reference time must be positive, got {reference}")
    return seconds / reference


def main() -> int:
    start = time.perf_counter()
    reference = reference_seconds()
    print(f"reference workload: {reference:.2f} s on this machine (fastest of 3)")
    for name, budget in BUDGETS.items():
        print(f"budget, {name}: {budget:.0f} r = {budget * reference:.0f} s here")
    print(f"(calibration took {time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
