"""Pacing a frame's UDP packets over part of the frame interval instead of one burst.

A D1 JPEG is 30-70 packets; sent at once to every viewer, it leaves as one
burst at line rate that overflows shallow switch buffers and the receive
buffers of small players. The pacer spreads each frame over `pacing` x the
frame interval, in slots at least MIN_STEP apart (the event loop's useful
timer resolution). Each slot sends one chunk of the frame's packets to one
group of viewers: a viewer gets its chunks in order across the window, and
the viewers' bursts are staggered across it too.

What pacing costs is messages: every chunk is one more (GSO) message per
viewer, and the kernel's cost per message is several times its cost per
packet. So the number of chunks per viewer shrinks as viewers grow, keeping
the extra messages per frame near MESSAGE_BUDGET; with hundreds of viewers a
viewer's frame goes in one message and the pacing comes from staggering them,
which is what spreads the load on the uplink.

At most one frame is in flight per fanout: when the next frame arrives early,
the rest of the previous one goes at once, so a viewer's backlog is bounded
by one frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from .._ext.egress import UdpFanout
from ..media.unit import CLOCK_RATE

MIN_STEP = 0.002  # seconds between slots
MESSAGE_BUDGET = 128  # extra messages a frame may cost for pacing, over all its viewers
MIN_INTERVAL, MAX_INTERVAL = 0.005, 0.5  # the frame intervals a source plausibly has

# (destinations sent to, packets sent, destinations failed, bytes a destination got)
Done = Callable[[int, int, int, int], None]


class Timer(Protocol):
    """A scheduled call that can be called off (asyncio.TimerHandle)."""

    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """What the pacer needs of an event loop: its clock and timers at absolute times."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], Any]) -> Timer: ...


class Pacer:
    """Sends the frames of one UdpFanout, each spread over a fraction of the frame interval."""

    def __init__(
        self,
        fanout: UdpFanout,
        pacing: float,
        on_done: Done,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.fanout = fanout
        # The running loop unless given one: tests pass a clock they step themselves.
        self._scheduler = scheduler
        self.pacing = pacing
        self.on_done = on_done
        self.interval = 0.04  # seconds between frames, measured from their timestamps
        self._last_pts: int | None = None
        self._slot = 0  # next (chunk, group) unit to send
        self._units = 0
        self._chunks = 1
        self._groups = 1
        self._count = 0  # packets in the frame in flight
        self._due = 0  # viewers getting it
        self._step = 0.0
        self._at = 0.0
        self._timer: Timer | None = None
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
        due = self.fanout.due
        self._count, self._due, self._slot = count, due, 0
        self._wire = int(offsets[-1]) + 12 * count if count > 0 else 0
        spread = self.pacing * self.interval
        slots = int(spread / MIN_STEP) if due and count else 0
        if slots <= 1:
            self._chunks = self._groups = self._units = 1
            self._send_unit(0)
            self._end()
            return skipped, waiting, limited
        self._chunks = max(1, min(count, slots, 1 + MESSAGE_BUDGET // due))
        self._groups = max(1, min(due, slots // self._chunks))
        self._units = self._chunks * self._groups
        self._step = spread / self._units
        self._at = self._loop().time()
        self.frames_paced += 1
        self._tick()
        return skipped, waiting, limited

    def finish(self) -> None:
        """Send what is left of the frame in flight now (a frame came early, viewers change)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.fanout.in_flight:
            while self._slot < self._units:
                self._send_unit(self._slot)
                self._slot += 1
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
        self._send_unit(self._slot)
        self._slot += 1
        if self._slot >= self._units:
            self._end()
            return
        self._at += self._step
        self._timer = self._loop().call_at(self._at, self._tick)

    def _loop(self) -> Scheduler:
        return self._scheduler or asyncio.get_running_loop()

    def _send_unit(self, unit: int) -> None:
        """Slot `unit`: chunk c of the frame to viewer group g (chunks in order per viewer)."""
        chunk, group = divmod(unit, self._groups)
        first = self._count * chunk // self._chunks
        last = self._count * (chunk + 1) // self._chunks
        lo = self._due * group // self._groups
        hi = self._due * (group + 1) // self._groups
        if last > first and hi > lo:
            self.fanout.flush(first, last - first, lo, hi)  # failures are counted at end()

    def _end(self) -> None:
        ok, packets, failed = self.fanout.end()
        self.on_done(ok, packets, failed, self._wire)
