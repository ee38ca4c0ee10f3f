"""Rate meters and whole-frame limiters."""

from __future__ import annotations

from collections import deque

from .unit import CLOCK_RATE


class RateMeter:
    """Events and bytes per second over a sliding window."""

    __slots__ = ("_bytes", "_events", "window")

    def __init__(self, window: float = 2.0) -> None:
        self.window = window
        self._events: deque[tuple[float, int]] = deque()
        self._bytes = 0

    def add(self, now: float, size: int) -> None:
        """Record one event of `size` bytes at time `now`."""
        self._events.append((now, size))
        self._bytes += size
        self._expire(now)

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        events = self._events
        while events and events[0][0] < horizon:
            self._bytes -= events.popleft()[1]

    def rates(self, now: float) -> tuple[float, float]:
        """(events per second, bits per second) over the window ending at `now`."""
        self._expire(now)
        events = self._events
        if len(events) < 2:
            return 0.0, 0.0
        # Measure between the first and the last event so that a window that
        # is only partly filled (a source that just started) is not diluted.
        span = max(now - events[0][0], events[-1][0] - events[0][0])
        if span <= 0:
            return 0.0, 0.0
        n = len(events) - 1
        sized = self._bytes - events[0][1]
        return n / span, sized * 8 / span


class FpsLimiter:
    """Lets through whole frames evenly spaced at `fps`, judged on capture timestamps.

    Frames are admitted on a grid that advances by exactly one period per
    admitted frame, so the long-run rate is exact; a tolerance of a quarter
    period absorbs the arrival jitter of frames timestamped on receipt.
    """

    __slots__ = ("_next", "_period", "_tolerance", "fps")

    def __init__(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.fps = fps
        self._period = round(CLOCK_RATE / fps)
        self._tolerance = self._period // 4
        self._next: int | None = None

    def admit(self, pts: int) -> bool:
        """Whether the frame with this 90 kHz timestamp should be sent."""
        nxt = self._next
        if nxt is None or pts - nxt > self._period or pts < nxt - 2 * self._period:
            # First frame, or a gap/jump in the source: restart the grid here.
            self._next = pts + self._period
            return True
        if pts >= nxt - self._tolerance:
            self._next = nxt + self._period
            return True
        return False
