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


class StallWatch:
    """When a viewer that keeps falling behind should be disconnected.

    A viewer goes when nothing could be sent to it for `timeout` seconds, or
    when, over the `timeout` seconds after it first fell behind, it got less
    than `min_share` of the frames: one that reads, but at a fraction of the
    stream's rate, would otherwise stay forever, always minutes late.
    """

    __slots__ = ("dropped", "min_share", "sent", "since", "timeout", "window")

    def __init__(self, timeout: float, min_share: float = 0.5) -> None:
        self.timeout = timeout
        self.min_share = min_share
        self.since: float | None = None  # nothing sent since then
        self.window: float | None = None  # the judging window began (first drop)
        self.sent = 0
        self.dropped = 0

    def update(self, now: float, delivered: bool) -> bool:
        """Record one frame sent (or dropped as too slow); whether to disconnect now."""
        if delivered:
            self.since = None
            if self.window is not None:
                self.sent += 1
        else:
            if self.since is None:
                self.since = now
            elif now - self.since > self.timeout:
                return True
            if self.window is None:
                self.window, self.sent, self.dropped = now, 0, 0
            self.dropped += 1
        if self.window is not None and now - self.window >= self.timeout:
            share = self.sent / max(1, self.sent + self.dropped)
            self.window = None
            return share < self.min_share
        return False
