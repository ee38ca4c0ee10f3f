"""A channel's derived H.264 track, filled by its one transcoder while anyone watches.

The first H.264 or WebRTC viewer starts the transcoder; it stops a while
(`idle_timeout`) after the last one leaves, so nothing is encoded while
nobody watches. Every viewer of the channel, whatever its protocol, reads the
same track: each source frame is encoded exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import replace

from .._ext.rtph264 import parameter_sets
from ..media.channel import Channel
from ..media.rate import FpsLimiter
from ..media.track import Track
from ..media.unit import Unit
from .settings import TranscodeSettings
from .worker import Histogram, Transcoder

COUNTERS = ("frames_in", "frames_encoded", "dropped", "errors", "keyframes")

log = logging.getLogger(__name__)


class _NativeInput:
    """Reads the channel's native H.264 track on behalf of the feed."""

    def __init__(self, feed: H264Feed) -> None:
        self.feed = feed

    def on_unit(self, unit: Unit) -> None:
        self.feed.pass_through(unit)


class H264Feed:
    """The H.264 track of one channel and the lifecycle of its transcoder.

    Where the upstream itself sends H.264, the full-rate feed passes its access units
    through instead (`native`): nothing is encoded, and SPS and PPS are put in front
    of any IDR that comes without them, so that a viewer can start there.

    With `fps`, the feed encodes only source frames at that rate: H.264 frames
    reference the ones before them, so a viewer that wants fewer frames than
    the source cannot be served by skipping frames of the full-rate stream.
    """

    def __init__(self, channel: Channel, settings: TranscodeSettings, fps: float = 0.0) -> None:
        self.channel = channel
        self.settings = settings
        self.fps = fps
        self._input = FpsLimiter(fps) if fps else None
        self.track = Track(channel.name, "h264")
        self.transcoder: Transcoder | None = None
        self.users = 0
        self.starts = 0
        self.sps: bytes | None = None
        self.pps: bytes | None = None
        self._stop_timer: asyncio.TimerHandle | None = None
        # What stopped transcoders counted, so metrics stay monotonic across restarts.
        self._totals: Counter[str] = Counter()
        self._keyframe_requests: Counter[str] = Counter()
        self._encode_seconds = Histogram()
        self.native = False
        self.parameter_sets_inserted = 0
        if not fps:
            channel.h264_native.add_reader(_NativeInput(self))

    @property
    def running(self) -> bool:
        """Whether the transcoder is encoding."""
        return self.transcoder is not None

    def acquire(self) -> None:
        """A viewer starts watching: make sure the transcoder runs, and ask for an IDR."""
        self.users += 1
        if self._stop_timer is not None:
            self._stop_timer.cancel()
            self._stop_timer = None
        if self.native:
            return
        if self.transcoder is None:
            loop = asyncio.get_running_loop()
            fps = self.fps or self.channel.nominal_fps() or 25.0
            self.transcoder = Transcoder(
                self.channel.name, self.settings, self._publish, loop, fps_hint=fps
            )
            self.transcoder.start()
            self.starts += 1
            self.channel.jpeg.add_reader(self)
            log.info("%s: H.264 encoder started%s", self.channel.name, self._rate_note)
        else:
            self.transcoder.request_keyframe("new_viewer")

    def release(self) -> None:
        """A viewer leaves; the transcoder stops `idle_timeout` after the last one."""
        self.users = max(0, self.users - 1)
        if self.users == 0 and self.transcoder is not None and self._stop_timer is None:
            loop = asyncio.get_running_loop()
            self._stop_timer = loop.call_later(self.settings.idle_timeout, self.stop)

    def stop(self) -> None:
        """Stop encoding now (idle, or shutdown)."""
        if self._stop_timer is not None:
            self._stop_timer.cancel()
            self._stop_timer = None
        transcoder, self.transcoder = self.transcoder, None
        if transcoder is not None:
            self.channel.jpeg.remove_reader(self)
            transcoder.stop()
            for name in COUNTERS:
                self._totals[name] += getattr(transcoder, name)
            self._keyframe_requests.update(transcoder.keyframe_requests)
            done = transcoder.encode_seconds
            self._encode_seconds.counts = [
                a + b for a, b in zip(self._encode_seconds.counts, done.counts, strict=True)
            ]
            self._encode_seconds.sum += done.sum
            self._encode_seconds.count += done.count
            log.info("%s: H.264 encoder stopped%s", self.channel.name, self._rate_note)

    @property
    def _rate_note(self) -> str:
        return f" ({self.fps:g} fps)" if self.fps else ""

    def request_keyframe(self, reason: str) -> None:
        """Ask the encoder for an IDR (rate-limited there)."""
        if self.transcoder is not None:
            self.transcoder.request_keyframe(reason)

    def on_unit(self, unit: Unit) -> None:
        """A source frame: hand it to the encoder's queue (never blocks)."""
        if self.transcoder is not None:
            if self._input is not None and not self._input.admit(unit.pts):
                return
            self.transcoder.submit(unit)

    def pass_through(self, unit: Unit) -> None:
        """An access unit from an H.264 upstream: publish it as it is."""
        if not self.native:
            self.native = True
            self.stop()  # the channel switched from JPEG to H.264: no encoder is needed
            log.info("%s: H.264 passed through from the source", self.channel.name)
        if self.sps is None and self.channel.h264_parameter_sets:
            self.sps, self.pps = self.channel.h264_parameter_sets  # from the upstream's SDP
        if unit.keyframe:
            sps, pps = parameter_sets(unit.data)
            if sps and pps:
                self.sps, self.pps = sps, pps
            elif self.sps and self.pps:
                head = b"\x00\x00\x00\x01" + self.sps + b"\x00\x00\x00\x01" + self.pps
                unit = replace(unit, data=head + unit.data)
                self.parameter_sets_inserted += 1
        self.track.publish(unit)

    def _publish(self, unit: Unit) -> None:
        # On the event loop thread: keep the parameter sets for the SDP, then fan out.
        if unit.keyframe:
            sps, pps = parameter_sets(unit.data)
            if sps and pps:
                self.sps, self.pps = sps, pps
        self.track.publish(unit)

    def total(self, name: str) -> int:
        """A transcoder counter (frames_encoded, dropped, ...) over every run so far."""
        current = getattr(self.transcoder, name, 0) if self.transcoder is not None else 0
        return self._totals[name] + int(current)

    def keyframe_requests(self) -> Counter[str]:
        """Keyframe requests by reason over every run so far."""
        out = Counter(self._keyframe_requests)
        if self.transcoder is not None:
            out.update(self.transcoder.keyframe_requests)
        return out

    def encode_seconds(self) -> Histogram:
        """Per-frame encode time over every run so far."""
        out = Histogram(self._encode_seconds.buckets)
        parts = [self._encode_seconds]
        if self.transcoder is not None:
            parts.append(self.transcoder.encode_seconds)
        for part in parts:
            out.counts = [a + b for a, b in zip(out.counts, part.counts, strict=True)]
            out.sum += part.sum
            out.count += part.count
        return out
