"""Session descriptions (RFC 8866) for DESCRIBE and for multicast .sdp files."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field

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


# Reading an upstream's SDP (the DESCRIBE answer of a camera).

MAX_OFFERED_MEDIA = 16


@dataclass(frozen=True, slots=True)
class OfferedMedia:
    """One m= section of an upstream's SDP: what a track carries and how to SETUP it."""

    kind: str  # video, audio, application
    payload_type: int
    encoding: str  # upper case: H264, JPEG, MPEG4-GENERIC, PCMU, ...
    clock_rate: int
    control: str | None
    fmtp: dict[str, str]


@dataclass(slots=True)
class _Section:
    kind: str
    payload_type: int
    encoding: str = ""
    clock_rate: int = 0
    control: str | None = None
    fmtp: dict[str, str] = field(default_factory=dict)


def parse_offer(text: str) -> tuple[str | None, list[OfferedMedia]]:
    """The session-level control URL and the media of an SDP; ValueError if it has none.

    Only what a receiver needs is read; unknown lines are skipped. JPEG (payload
    type 26) and the other static types carry no rtpmap, so their names come from
    RFC 3551's table. A section offering several formats is read for its first.
    """
    session_control: str | None = None
    media: list[_Section] = []
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        key, value = line[0], line[2:]
        if key == "m":
            fields = value.split()
            if len(fields) < 4 or not fields[3].isdigit():
                raise ValueError(f"malformed media line: {line[:80]!r}")
            if len(media) >= MAX_OFFERED_MEDIA:
                raise ValueError(f"more than {MAX_OFFERED_MEDIA} media sections")
            pt = int(fields[3])
            encoding, clock = STATIC_PAYLOAD_TYPES.get(pt, ("", 0))
            media.append(_Section(fields[0], pt, encoding, clock))
            continue
        if key != "a":
            continue
        name, _, attr = value.partition(":")
        section = media[-1] if media else None
        if name == "control":
            if section is None:
                session_control = attr.strip()
            else:
                section.control = attr.strip()
            continue
        if section is None or name not in ("rtpmap", "fmtp"):
            continue
        pt_text, _, rest = attr.partition(" ")
        if pt_text != str(section.payload_type):
            continue
        if name == "rtpmap":
            encoding, _, rate = rest.strip().partition("/")
            clock_text = rate.partition("/")[0]
            if not clock_text.isdigit():
                raise ValueError(f"malformed rtpmap: {line[:80]!r}")
            section.encoding, section.clock_rate = encoding.upper(), int(clock_text)
        else:
            for item in rest.split(";"):
                k, _, v = item.strip().partition("=")
                if k:
                    section.fmtp[k.lower()] = v.strip()
    if not media:
        raise ValueError("the SDP describes no media")
    offered = [
        OfferedMedia(m.kind, m.payload_type, m.encoding, m.clock_rate, m.control, m.fmtp)
        for m in media
    ]
    return session_control, offered


# RFC 3551 Tables 4 and 5: static payload types a camera may use without rtpmap.
STATIC_PAYLOAD_TYPES = {
    0: ("PCMU", 8000),
    5: ("DVI4", 8000),
    8: ("PCMA", 8000),
    14: ("MPA", 90000),
    26: ("JPEG", 90000),
    32: ("MPV", 90000),
    33: ("MP2T", 90000),
}
