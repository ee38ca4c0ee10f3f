"""What one viewer may take: frame rate and bit rate, from config, profile and URL.

A viewer's limits are the lowest of its channel's caps (`[limits]`, or the
channel's own `[channels.limits]`), the stream profile it names
(`?streamprofile=`) and what it asks for in the URL (`?fps=`, `?bitrate=`, or
VAPIX's `videomaxbitrate=` in kbit/s). A viewer can ask for less than the cap,
never for more. Bit rates are enforced by token buckets on whole frames: a
viewer's own, and the channel's shared by all its viewers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._ext.egress import TokenBucket
from ..config import ConfigError, LimitsConfig, ProfileConfig, parse_bitrate
from ..vapix import VapixError, fps_param

BURST_SECONDS = 0.25  # the default burst: this much of the rate


class LimitError(ValueError):
    """A limit in the URL that cannot be used; the message is what the client is told."""


def _lowest(*values: float) -> float:
    """The smallest positive value, 0 if none is (0 stands for no limit)."""
    given = [v for v in values if v > 0]
    return min(given) if given else 0


def default_burst(bitrate: float) -> float:
    """Bits a bucket holds when nothing says otherwise."""
    return bitrate * BURST_SECONDS


@dataclass(frozen=True, slots=True)
class ViewerLimits:
    """The limits in force for one viewer (0: none)."""

    fps: float = 0.0
    bitrate: int = 0
    burst: int = 0
    profile: str | None = None

    @property
    def fps_or_none(self) -> float | None:
        """The frame-rate limit as the egress takes it."""
        return self.fps or None

    def bucket(self) -> TokenBucket | None:
        """A fresh token bucket for the bit-rate limit, None without one."""
        if not self.bitrate:
            return None
        return TokenBucket(self.bitrate, self.burst or default_burst(self.bitrate))

    def to_json(self) -> dict[str, Any]:
        """As the sessions API shows it."""
        return {
            "fps": self.fps or None,
            "bitrate": self.bitrate or None,
            "burst": (self.burst or round(default_burst(self.bitrate))) if self.bitrate else None,
            "profile": self.profile,
        }


def channel_bucket(limits: LimitsConfig) -> TokenBucket | None:
    """The bucket every viewer of a channel spends together, None without a channel cap."""
    if not limits.channel_bitrate:
        return None
    rate = limits.channel_bitrate
    return TokenBucket(rate, limits.channel_burst or default_burst(rate))


def viewer_limits(
    caps: LimitsConfig,
    profiles: Mapping[str, ProfileConfig] | tuple[ProfileConfig, ...],
    query: Mapping[str, str],
) -> ViewerLimits:
    """The limits for a viewer whose URL carries `query`."""
    if not isinstance(profiles, Mapping):
        profiles = {p.name: p for p in profiles}
    profile: ProfileConfig | None = None
    name = query.get("streamprofile")
    if name:
        profile = profiles.get(name)
        if profile is None:
            raise LimitError(f"no stream profile {name!r}")
    try:
        asked_fps = fps_param(query.get("fps")) or 0.0
    except VapixError as e:
        raise LimitError(str(e)) from None
    asked_bitrate = 0
    try:
        if query.get("bitrate"):
            asked_bitrate = parse_bitrate(query["bitrate"], "bitrate")
        elif query.get("videomaxbitrate"):  # VAPIX: kbit/s
            asked_bitrate = parse_bitrate(query["videomaxbitrate"], "videomaxbitrate") * 1000
    except ConfigError as e:
        raise LimitError(str(e)) from None
    p_fps, p_rate, p_burst = (profile.fps, profile.bitrate, profile.burst) if profile else (0, 0, 0)
    bitrate = int(_lowest(caps.max_bitrate, p_rate, asked_bitrate))
    burst = int(_lowest(caps.burst, p_burst)) if bitrate else 0
    return ViewerLimits(
        fps=float(_lowest(caps.max_fps, p_fps, asked_fps)),
        bitrate=bitrate,
        burst=burst,
        profile=profile.name if profile else None,
    )
