"""Unit: one encoded frame as it travels from a source to the outputs."""

from __future__ import annotations

from dataclasses import dataclass

CLOCK_RATE = 90_000  # video RTP clock: Units carry 90 kHz timestamps from the start


@dataclass(frozen=True, slots=True)
class Unit:
    """One encoded frame: codec, bytes, capture timestamps, keyframe flag."""

    codec: str  # "jpeg" or "h264"
    data: bytes
    pts: int  # 90 kHz ticks of the capture clock (monotonic), never wraps here
    wallclock: float  # capture time in seconds since the epoch, for RTCP and latency
    keyframe: bool = True
    width: int = 0
    height: int = 0
