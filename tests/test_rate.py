"""Whole-frame rate limiting and rate meters."""

from __future__ import annotations

import itertools
import random

import pytest

from gateway.media.rate import FpsLimiter, RateMeter
from gateway.media.unit import CLOCK_RATE


def _admitted(source_fps: float, target: float, seconds: float, jitter: float = 0.0) -> list[int]:
    rng = random.Random(1)
    limiter = FpsLimiter(target)
    out = []
    for i in range(int(source_fps * seconds)):
        t = i / source_fps + rng.uniform(-jitter, jitter)
        pts = int(t * CLOCK_RATE)
        if limiter.admit(pts):
            out.append(pts)
    return out


@pytest.mark.parametrize(
    ("source", "target"), [(25, 5), (25, 10), (30, 7), (30, 25), (25, 12.5), (10, 3)]
)
def test_long_run_rate_is_exact(source: float, target: float) -> None:
    got = _admitted(source, target, 60)
    assert abs(len(got) / 60 - target) < 0.05 * target


def test_evenly_spaced() -> None:
    got = _admitted(25, 5, 10, jitter=0.004)
    gaps = [(b - a) / CLOCK_RATE for a, b in itertools.pairwise(got)]
    assert min(gaps) >= 0.15 and max(gaps) <= 0.25


def test_target_above_source_passes_everything() -> None:
    assert len(_admitted(5, 25, 10)) == 50


def test_gap_in_source_restarts_grid() -> None:
    limiter = FpsLimiter(5)
    assert limiter.admit(0)
    # The source goes away for 10 s; the first frame after it is sent at once.
    assert limiter.admit(10 * CLOCK_RATE)
    assert not limiter.admit(10 * CLOCK_RATE + 3600)


def test_rejects_bad_fps() -> None:
    with pytest.raises(ValueError):
        FpsLimiter(0)


def test_rate_meter() -> None:
    meter = RateMeter(2.0)
    for i in range(100):
        meter.add(i * 0.04, 1000)
    fps, bps = meter.rates(99 * 0.04)
    assert fps == pytest.approx(25, rel=0.03)
    assert bps == pytest.approx(25 * 8000, rel=0.03)
    assert meter.rates(100.0) == (0.0, 0.0)
