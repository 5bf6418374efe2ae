"""The reference workload that turns the bench's seconds into machine-independent units."""

from __future__ import annotations

import pytest

from initdocs.book import calibration


def test_workload_is_deterministic_and_learns():
    # Same seed, same generated data: bit-identical losses; and training lowers the loss
    # below a random 10-class guess, ln(10) = 2.30 (so the workload computes what it claims).
    first = calibration.workload(steps=5)
    assert first == calibration.workload(steps=5)
    assert calibration.workload(steps=25) < 2.30


def test_reference_seconds_times_a_fresh_process(monkeypatch):
    # A fresh one-thread process: the thread variables it runs with are the kernels' ones.
    seen = []
    run = calibration.subprocess.run

    def spy(command, env, **kwargs):
        seen.append({k: env[k] for k in calibration.THREAD_VARIABLES})
        return run(command, env=env, **kwargs)

    monkeypatch.setattr(calibration.subprocess, "run", spy)
    assert calibration.reference_seconds(runs=2) > 0
    assert seen == [dict.fromkeys(calibration.THREAD_VARIABLES, "1")] * 2
    with pytest.raises(ValueError, match="runs must be at least 1"):
        calibration.reference_seconds(runs=0)


def test_units_divide_by_the_reference():
    assert calibration.units(30.0, 2.0) == 15.0
    with pytest.raises(ValueError, match="must be positive"):
        calibration.units(30.0, 0.0)


def test_budgets_are_the_ci_machines_seconds_in_units():
    # 60 s per chapter and 300 s per cold build on the machine where the workload took
    # REFERENCE_SECONDS: converted back, the units give those seconds.
    assert calibration.BUDGETS["chapter"] * calibration.REFERENCE_SECONDS == pytest.approx(60)
    assert calibration.BUDGETS["cold build"] * calibration.REFERENCE_SECONDS == pytest.approx(300)
