"""DSCP marking per traffic class, the way Axis devices let network teams set it.

Every socket the gateway sends on carries the DSCP of its traffic class:
video (RTP/RTCP, multicast, RTSP connections carrying interleaved media,
MJPEG and tunnelled responses, WebRTC media), audio, event (alarms and event
notifications), management (API, metrics, snapshots, the viewer page). The
codepoint goes in the top six bits of IPv4's TOS byte (IP_TOS) or IPv6's
traffic class (IPV6_TCLASS). A value the OS refuses is logged once, with the
reason, and the socket is sent on unmarked.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, Protocol

log = logging.getLogger(__name__)

CLASSES = ("video", "audio", "event", "management")


class _Socketish(Protocol):
    @property
    def family(self) -> Any: ...

    def setsockopt(self, level: int, option: int, value: int) -> None: ...


class DscpMarker:
    """Sets the DSCP of sockets by traffic class."""

    def __init__(self, codepoints: dict[str, int]) -> None:
        for name, value in codepoints.items():
            if name not in CLASSES or not 0 <= value <= 63:
                raise ValueError(f"bad DSCP {name}={value}")
        self.codepoints = dict(codepoints)
        self._refused: set[tuple[str, int]] = set()
        self.failures = 0

    def mark(self, sock: _Socketish | None, traffic: str) -> bool:
        """Mark one socket (or asyncio transport's socket) with its class's DSCP."""
        if sock is None:
            return False
        dscp = self.codepoints[traffic]
        tos = dscp << 2
        try:
            family = sock.family
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, tos)
                # A dual-stack socket sends IPv4 too; mark that path as well.
                try:
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
                except OSError:
                    pass
            elif family == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
            else:
                return False
            return True
        except OSError as e:
            self.failures += 1
            key = (traffic, e.errno or 0)
            if key not in self._refused:
                self._refused.add(key)
                log.warning(
                    "cannot mark %s traffic with DSCP %d: %s (sending unmarked)",
                    traffic,
                    dscp,
                    e.strerror or e,
                )
            return False

    def mark_transport(self, transport: Any, traffic: str) -> bool:
        """Mark the socket under an asyncio (or uvloop) transport."""
        if transport is None:
            return False
        return self.mark(transport.get_extra_info("socket"), traffic)
