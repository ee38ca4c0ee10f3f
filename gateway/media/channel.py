"""Channel: one camera input, its tracks, and what it has seen."""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from ..config import ChannelConfig
from ..log import Aggregated
from .jpeg import check_frame
from .limits import channel_bucket
from .rate import RateMeter
from .shrink import FrameShrinker
from .track import Track
from .unit import CLOCK_RATE, Unit

log = logging.getLogger(__name__)

# Rates analog video servers are set to; a measured rate near one is announced as it.
COMMON_RATES = (1, 2, 3, 4, 5, 6, 7.5, 8, 10, 12, 12.5, 15, 20, 24, 25, 29.97, 30, 50, 60)


class Channel:
    """A camera input: its native tracks and the counters behind the API and metrics.

    `jpeg` carries what MJPEG sources (and RTP/JPEG upstreams) deliver; `h264_native`
    what an H.264 upstream delivers, passed through unchanged. The H.264 feed of the
    channel reads the native track where there is one, and encodes `jpeg` otherwise.
    """

    def __init__(self, config: ChannelConfig) -> None:
        self.config = config
        self.name = config.name
        self.index = config.index
        self.jpeg = Track(config.name, "jpeg")
        self.h264_native = Track(config.name, "h264")
        # SPS and PPS the upstream announced (sprop-parameter-sets), before any IDR came.
        self.h264_parameter_sets: tuple[bytes, bytes] | None = None
        self.frames_in = 0
        self.bytes_in = 0
        self.bad_frames: Counter[str] = Counter()
        self.width = 0
        self.height = 0
        self.last_frame_at = 0.0  # monotonic
        self.meter = RateMeter(2.0)
        # Outputs add what they send and drop, per protocol, once per frame.
        self.egress_bytes: Counter[str] = Counter()
        self.egress_frames: Counter[str] = Counter()
        self.egress_packets: Counter[str] = Counter()
        self.dropped: Counter[tuple[str, str]] = Counter()
        self.reencoded: Counter[str] = Counter()
        self.limits = config.limits
        # Spent by every viewer of the channel, whatever the protocol.
        self.bucket = channel_bucket(config.limits)
        self._shrinker = (
            FrameShrinker(config.limits.max_frame_size) if config.limits.max_frame_size else None
        )
        self._bad_log = Aggregated(log, f"{config.name}: dropped a bad frame from the source")

    def ingest(
        self, data: bytes, now: float | None = None, wallclock: float | None = None
    ) -> str | None:
        """Check one JPEG from the source and publish it; returns why it was refused, if it was.

        A good frame above `max_frame_size` is re-encoded smaller or dropped by
        policy; either way the source is healthy, so that is not a refusal.
        """
        check = check_frame(data, self.config.max_ingest_frame)
        if check.reason is not None:
            self.reject(check.reason)
            return check.reason
        mono = time.monotonic() if now is None else now
        self.frames_in += 1
        self.bytes_in += len(check.data)
        self.last_frame_at = mono
        self.meter.add(mono, len(check.data))
        if self._shrinker is not None and len(check.data) > self._shrinker.limit:
            smaller = None
            if self.limits.max_frame_size_policy == "reencode":
                smaller = self._shrinker.fit(check.data)
            if smaller is not None:
                check = check_frame(smaller, self.config.max_ingest_frame)
            if smaller is None or check.reason is not None:
                self.count_drop("source", "frame_size")
                return None
            self.count_reencoded("max_frame_size")
        unit = Unit(
            codec="jpeg",
            data=check.data,
            pts=int(mono * CLOCK_RATE),
            wallclock=time.time() if wallclock is None else wallclock,
            keyframe=True,
            width=check.width,
            height=check.height,
        )
        self.width, self.height = check.width, check.height
        self.jpeg.publish(unit)
        return None

    def ingest_h264(
        self,
        access_unit: bytes,
        pts: int,
        keyframe: bool,
        now: float | None = None,
        wallclock: float | None = None,
    ) -> None:
        """Publish one Annex B access unit from an H.264 upstream, as it came."""
        mono = time.monotonic() if now is None else now
        self.frames_in += 1
        self.bytes_in += len(access_unit)
        self.last_frame_at = mono
        self.meter.add(mono, len(access_unit))
        unit = Unit(
            codec="h264",
            data=access_unit,
            pts=pts,
            wallclock=time.time() if wallclock is None else wallclock,
            keyframe=keyframe,
            width=self.width,
            height=self.height,
        )
        self.h264_native.publish(unit)

    def reject(self, reason: str) -> None:
        """Count a frame from the source that was not passed on."""
        self.bad_frames[reason] += 1
        self._bad_log.add(reason)

    def count_egress(self, protocol: str, frames: int, nbytes: int, packets: int = 0) -> None:
        """Add what an output sent for one frame."""
        self.egress_frames[protocol] += frames
        self.egress_bytes[protocol] += nbytes
        if packets:
            self.egress_packets[protocol] += packets

    def count_reencoded(self, reason: str) -> None:
        """A frame RFC 2435 could not carry as it was, re-encoded before sending."""
        self.reencoded[reason] += 1

    def count_drop(self, protocol: str, reason: str, frames: int = 1) -> None:
        """Add frames an output did not send to a viewer, and why."""
        self.dropped[(protocol, reason)] += frames

    def nominal_fps(self, now: float | None = None) -> float | None:
        """The rate to announce: the emulator's, or the measured one snapped to a common rate."""
        if self.config.emulator is not None:
            return self.config.emulator.fps
        fps = self.meter.rates(time.monotonic() if now is None else now)[0]
        if fps <= 0:
            return None
        nearest = min(COMMON_RATES, key=lambda r: abs(r - fps))
        return nearest if abs(nearest - fps) <= 0.08 * nearest else round(fps, 2)

    def status(self, now: float | None = None) -> dict[str, Any]:
        """What the channel has seen, for the API."""
        mono = time.monotonic() if now is None else now
        fps, bps = self.meter.rates(mono)
        return {
            "name": self.name,
            "index": self.index,
            "kind": self.config.kind,
            "source": self.config.source,
            "width": self.width,
            "height": self.height,
            "fps_in": round(fps, 2),
            "bitrate_in": round(bps),
            "frames_in": self.frames_in,
            "bytes_in": self.bytes_in,
            "bad_frames": dict(self.bad_frames),
            "last_frame_age": round(mono - self.last_frame_at, 3) if self.last_frame_at else None,
        }
