"""Session descriptions (RFC 8866) for DESCRIBE and for multicast .sdp files."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from .. import __version__
from .._ext.rtph264 import profile_level_id, sprop_parameter_sets


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """One video track as the SDP describes it."""

    payload_type: int
    encoding: str  # rtpmap encoding name: JPEG, H264
    control: str
    framerate: float | None = None
    width: int = 0
    height: int = 0
    fmtp: str | None = None


@dataclass(frozen=True, slots=True)
class MulticastAddress:
    """Where a multicast stream goes: group, RTP port, TTL."""

    group: str
    port: int
    ttl: int


def _addrtype(address: str) -> str:
    try:
        return "IP6" if ipaddress.ip_address(address).version == 6 else "IP4"
    except ValueError:
        return "IP4"


def h264_fmtp(sps: bytes | None, pps: bytes | None) -> str:
    """The fmtp of an RFC 6184 track; without parameter sets yet, the encoder's profile."""
    params = ["packetization-mode=1"]
    if sps and pps:
        params.append(f"profile-level-id={profile_level_id(sps)}")
        params.append(f"sprop-parameter-sets={sprop_parameter_sets(sps, pps)}")
    else:
        params.append("profile-level-id=42e01f")  # constrained baseline, as encoded
    return ";".join(params)


def session_description(
    *,
    name: str,
    origin_address: str,
    session_id: int,
    media: list[MediaDescription],
    aggregate_control: str | None = None,
    multicast: MulticastAddress | None = None,
) -> str:
    """The SDP text of a live stream: one m= section per track."""
    version = int(time.time())
    if multicast is not None:
        # The TTL goes in the connection address for IPv4 only (RFC 8866 5.7).
        ttl = f"/{multicast.ttl}" if _addrtype(multicast.group) == "IP4" else ""
        connection = f"c=IN {_addrtype(multicast.group)} {multicast.group}{ttl}"
    else:
        family = _addrtype(origin_address)
        connection = f"c=IN {family} {'::' if family == 'IP6' else '0.0.0.0'}"
    # Field order is fixed by RFC 8866: v o s i c t, then attributes.
    lines = [
        "v=0",
        f"o=- {session_id} {version} IN {_addrtype(origin_address)} {origin_address}",
        f"s={name}",
        "i=coaxgate live stream",
        connection,
        "t=0 0",
        f"a=tool:coaxgate {__version__}",
        "a=type:broadcast",
        "a=range:npt=now-",
    ]
    if aggregate_control:
        lines.append(f"a=control:{aggregate_control}")
    for m in media:
        port = multicast.port if multicast is not None else 0
        lines.append(f"m=video {port} RTP/AVP {m.payload_type}")
        lines.append(f"a=rtpmap:{m.payload_type} {m.encoding}/90000")
        if m.fmtp:
            lines.append(f"a=fmtp:{m.payload_type} {m.fmtp}")
        if m.framerate:
            lines.append(f"a=framerate:{m.framerate:g}")
        if m.width and m.height:
            # QuickTime-era attributes that VMS clients read for the picture size.
            lines.append(f"a=x-dimensions:{m.width},{m.height}")
            lines.append(f"a=cliprect:0,0,{m.height},{m.width}")
        lines.append(f"a=control:{m.control}")
    return "\r\n".join(lines) + "\r\n"
