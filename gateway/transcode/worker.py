"""Transcoder: a channel's encoder thread, fed from the event loop, publishing back to it.

The event loop hands every source JPEG to submit(), which never blocks: a
short bounded queue sits between it and the worker thread, and when the
encoder falls behind the oldest frame goes (live video wants the newest one).
The worker runs H264Encoder (PyAV releases the GIL inside the codec calls, so
the loop keeps running) and hands each access unit back to the loop thread
with call_soon_threadsafe. All PyAV objects live and die on the worker thread.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable

from ..log import Aggregated
from ..media.unit import Unit
from .encoder import Encoded, H264Encoder
from .settings import TranscodeSettings

__all__ = ["ENCODE_BUCKETS", "KEYFRAME_INTERVAL", "Histogram", "Transcoder"]

log = logging.getLogger(__name__)

ENCODE_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
KEYFRAME_INTERVAL = 1.0  # seconds: at most one requested IDR per interval
_WALLCLOCKS_KEPT = 16  # pts -> wallclock of frames still inside the encoder


class Histogram:
    """Bucket counts, sum and count of observations, for a Prometheus histogram."""

    __slots__ = ("buckets", "count", "counts", "sum")

    def __init__(self, buckets: tuple[float, ...] = ENCODE_BUCKETS) -> None:
        self.buckets = buckets  # upper bounds, ascending; +Inf is implied
        self.counts = [0] * (len(buckets) + 1)  # per bucket, not cumulative; last is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        """Count one observation."""
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations <= it) for every bucket, ending with +Inf."""
        total = 0
        out: list[tuple[float, int]] = []
        for bound, count in zip((*self.buckets, math.inf), list(self.counts), strict=True):
            total += count
            out.append((bound, total))
        return out


class Transcoder:
    """One channel's H.264 encoder thread: JPEG Units in, H.264 Units out on the loop."""

    def __init__(
        self,
        name: str,
        settings: TranscodeSettings,
        publish: Callable[[Unit], None],
        loop: asyncio.AbstractEventLoop,
        fps_hint: float = 25.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.settings = settings
        self.fps_hint = fps_hint
        self._publish = publish
        self._loop = loop
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[Unit] = deque()
        self._idr_pending = False
        self._stopping = False
        self._stopped = False  # on the loop thread: nothing is published after stop()
        self._thread: threading.Thread | None = None
        self._last_forced = -math.inf
        self._errors_log = Aggregated(log, f"{name}: frame not transcoded")
        # Metrics, read from the loop thread while the worker writes them.
        self.running = False
        self.frames_in = 0
        self.frames_encoded = 0
        self.dropped = 0
        self.errors = 0
        self.keyframes = 0
        self.keyframe_requests: Counter[str] = Counter()  # every request, by reason
        self.keyframe_requests_limited: Counter[str] = Counter()  # of those, rate-limited
        self.encode_seconds = Histogram()
        self.encoder_name: str = settings.encoder  # the encoder in use, once the first frame is in
        self.fallback_reason: str | None = None
        self.last_output_bytes = 0
        self.width = 0
        self.height = 0

    def start(self) -> None:
        """Start the worker thread."""
        if self._thread is not None:
            raise RuntimeError(f"transcoder {self.name} already started")
        self._thread = threading.Thread(
            target=self._run, name=f"transcode-{self.name}", daemon=True
        )
        self.running = True
        self._thread.start()

    def stop(self) -> None:
        """Stop the worker and wait for it; frames still queued are dropped. Idempotent."""
        self._stopped = True
        with self._cond:
            self._stopping = True
            self._queue.clear()
            self._cond.notify()
        thread = self._thread
        # At most one frame's encode (milliseconds) to wait for.
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self.running = False

    def submit(self, unit: Unit) -> None:
        """Queue a source frame for encoding; never blocks, drops the oldest when full."""
        if self._stopping:
            return
        self.frames_in += 1
        with self._cond:
            if len(self._queue) >= self.settings.queue_frames:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(unit)
            self._cond.notify()

    def request_keyframe(self, reason: str) -> bool:
        """Make the next frame an IDR, at most once a second; whether this one did."""
        self.keyframe_requests[reason] += 1
        now = self._clock()
        if now - self._last_forced < KEYFRAME_INTERVAL:
            self.keyframe_requests_limited[reason] += 1
            return False
        self._last_forced = now
        with self._cond:
            self._idr_pending = True
        return True

    @property
    def queued(self) -> int:
        """Frames waiting for the worker."""
        return len(self._queue)

    # -- worker thread ----------------------------------------------------

    def _run(self) -> None:
        encoder = H264Encoder(self.settings, self.fps_hint)
        wallclocks: deque[tuple[int, float]] = deque(maxlen=_WALLCLOCKS_KEPT)
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._stopping:
                        self._cond.wait()
                    if self._stopping:
                        return
                    unit = self._queue.popleft()
                    force_idr, self._idr_pending = self._idr_pending, False
                if unit.codec != "jpeg":
                    self.errors += 1
                    self._errors_log.add(f"{unit.codec} input, expected jpeg")
                    continue
                wallclocks.append((unit.pts, unit.wallclock))
                started = time.perf_counter()
                try:
                    encoded = encoder.encode(unit.data, unit.pts, force_idr)
                except ValueError as exc:
                    self.errors += 1
                    self._errors_log.add(str(exc))
                    continue
                except Exception as exc:
                    # The codec itself failed: start over with a fresh encoder.
                    self.errors += 1
                    self._errors_log.add(f"encoder failed, reopening: {exc}", exc=exc)
                    encoder.close()
                    encoder = H264Encoder(self.settings, self.fps_hint)
                    continue
                finally:
                    self.encode_seconds.observe(time.perf_counter() - started)
                self.encoder_name = encoder.name
                self.fallback_reason = encoder.fallback_reason
                for item in encoded:
                    if not self._deliver(item, encoder, wallclocks, unit.wallclock):
                        return
        finally:
            encoder.close()
            self.running = False

    def _deliver(
        self,
        item: Encoded,
        encoder: H264Encoder,
        wallclocks: deque[tuple[int, float]],
        fallback_wallclock: float,
    ) -> bool:
        # Outputs come in input order: entries before this pts were dropped inside.
        wallclock = fallback_wallclock
        while wallclocks:
            pts, seen = wallclocks.popleft()
            if pts == item.pts:
                wallclock = seen
                break
        self.frames_encoded += 1
        self.keyframes += item.keyframe
        self.last_output_bytes = len(item.data)
        self.width, self.height = encoder.width, encoder.height
        unit = Unit(
            codec="h264",
            data=item.data,
            pts=item.pts,
            wallclock=wallclock,
            keyframe=item.keyframe,
            width=encoder.width,
            height=encoder.height,
        )
        try:
            self._loop.call_soon_threadsafe(self._publish_on_loop, unit)
        except RuntimeError:  # the loop is closed: nobody is left to publish to
            return False
        return True

    def _publish_on_loop(self, unit: Unit) -> None:
        if not self._stopped:
            self._publish(unit)
