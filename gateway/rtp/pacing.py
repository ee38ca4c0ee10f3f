"""Pacing a frame's UDP packets over part of the frame interval instead of one burst.

A D1 JPEG is 60-100 packets; sent at once to every viewer, it leaves as a
burst at line rate that overflows shallow switch buffers and the receive
buffers of small players. The pacer sends the frame in a few chunks spread
over `pacing` x the frame interval (chunks at least MIN_STEP apart, the event
loop's useful timer resolution). At most one frame is in flight per fanout:
when the next frame arrives early, the rest of the previous one goes at once,
so a viewer's backlog is bounded by one frame.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import numpy as np

from .._ext.egress import UdpFanout
from ..media.unit import CLOCK_RATE

MIN_STEP = 0.002  # seconds between chunks
MIN_INTERVAL, MAX_INTERVAL = 0.005, 0.5  # the frame intervals a source plausibly has

# (destinations sent to, packets sent, destinations failed, bytes a destination got)
Done = Callable[[int, int, int, int], None]


class Pacer:
    """Sends the frames of one UdpFanout, each spread over a fraction of the frame interval."""

    def __init__(self, fanout: UdpFanout, pacing: float, on_done: Done) -> None:
        self.fanout = fanout
        self.pacing = pacing
        self.on_done = on_done
        self.interval = 0.04  # seconds between frames, measured from their timestamps
        self._last_pts: int | None = None
        self._next = 0  # first packet not sent yet
        self._count = 0  # packets in the frame in flight
        self._chunk = 0
        self._step = 0.0
        self._due = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._wire = 0
        self.frames_paced = 0

    def send(
        self, data: bytes, offsets: np.ndarray, pts: int, keyframe: bool
    ) -> tuple[int, int, int]:
        """Start sending a frame; returns (skipped by fps, waiting for a keyframe, rate-limited)."""
        self.finish()
        self._measure(pts)
        skipped, waiting, limited = self.fanout.begin(data, offsets, pts, keyframe)
        count = len(offsets) - 1
        spread = self.pacing * self.interval
        steps = min(count, int(spread / MIN_STEP)) if self.fanout.due else 0
        self._next, self._count = 0, count
        self._wire = int(offsets[-1]) + 12 * count if count > 0 else 0
        if steps <= 1:
            self._flush(count)
            self._end()
            return skipped, waiting, limited
        self._chunk = math.ceil(count / steps)
        self._step = spread / steps
        loop = asyncio.get_running_loop()
        self._due = loop.time()
        self.frames_paced += 1
        self._tick()
        return skipped, waiting, limited

    def finish(self) -> None:
        """Send what is left of the frame in flight now (a frame came early, viewers change)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.fanout.in_flight:
            self._flush(self._count - self._next)
            self._end()

    def _measure(self, pts: int) -> None:
        last, self._last_pts = self._last_pts, pts
        if last is None:
            return
        gap = (pts - last) / CLOCK_RATE
        if MIN_INTERVAL <= gap <= MAX_INTERVAL:
            # Smoothed: one late frame does not stretch the next one's pacing.
            self.interval += (gap - self.interval) / 8

    def _tick(self) -> None:
        self._timer = None
        self._flush(min(self._chunk, self._count - self._next))
        if self._next >= self._count:
            self._end()
            return
        loop = asyncio.get_running_loop()
        self._due += self._step
        self._timer = loop.call_at(self._due, self._tick)

    def _flush(self, count: int) -> None:
        if count > 0:
            self.fanout.flush(self._next, count)  # failures are counted per viewer, at end()
            self._next += count

    def _end(self) -> None:
        ok, packets, failed = self.fanout.end()
        self.on_done(ok, packets, failed, self._wire)
