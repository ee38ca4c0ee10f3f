"""The server's UDP ports: the RTP/RTCP pair every unicast viewer shares, multicast senders."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import socket
import struct
from collections.abc import Callable
from functools import partial

from ..net.dscp import DscpMarker

log = logging.getLogger(__name__)

SEND_BUFFER = 4 << 20  # a frame for hundreds of viewers leaves in one burst
RtcpHandler = Callable[[bytes, tuple[str, int]], None]


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, handler: RtcpHandler | None) -> None:
        self.handler = handler

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.handler is not None:
            self.handler(data, addr[:2])

    def error_received(self, exc: Exception) -> None:
        # ICMP errors from viewers that went away: nothing to do, RTCP timeouts handle it.
        log.debug("UDP error: %s", exc)


def _bind_pair(host: str, rtp_port: int) -> tuple[socket.socket, socket.socket]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    attempts = 1 if rtp_port else 64
    last: OSError | None = None
    for _ in range(attempts):
        port = rtp_port or random.randrange(20000, 60000, 2)
        rtp = socket.socket(family, socket.SOCK_DGRAM)
        rtcp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            rtp.bind((host, port))
            rtcp.bind((host, port + 1))
            return rtp, rtcp
        except OSError as e:
            rtp.close()
            rtcp.close()
            last = e
    assert last is not None
    raise last


class RtpSockets:
    """The RTP and RTCP ports every unicast UDP viewer is sent from."""

    def __init__(self, on_rtcp: RtcpHandler | None = None, dscp: DscpMarker | None = None) -> None:
        self.on_rtcp = on_rtcp
        self.dscp = dscp
        self.rtp: socket.socket | None = None
        self.rtcp: socket.socket | None = None
        self._transports: list[asyncio.DatagramTransport] = []

    async def open(self, host: str, rtp_port: int) -> None:
        """Bind the pair (an even port and the next); rtp_port 0 picks a free pair."""
        self.rtp, self.rtcp = _bind_pair(host, rtp_port)
        self.rtp.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        if self.dscp is not None:
            self.dscp.mark(self.rtp, "video")
            self.dscp.mark(self.rtcp, "video")
        loop = asyncio.get_running_loop()
        handlers: list[tuple[socket.socket, RtcpHandler | None]] = [
            (self.rtp, None),
            (self.rtcp, self._rtcp),
        ]
        for sock, handler in handlers:
            sock.setblocking(False)
            transport, _ = await loop.create_datagram_endpoint(
                partial(_Receiver, handler), sock=sock
            )
            self._transports.append(transport)

    def _rtcp(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.on_rtcp is not None:
            self.on_rtcp(data, addr)

    @property
    def ports(self) -> tuple[int, int]:
        """(RTP port, RTCP port)."""
        assert self.rtp is not None and self.rtcp is not None
        return self.rtp.getsockname()[1], self.rtcp.getsockname()[1]

    @property
    def rtp_fd(self) -> int:
        """File descriptor the egress sends RTP on."""
        assert self.rtp is not None
        return self.rtp.fileno()

    def send_rtcp(self, data: bytes, addr: tuple[str, int]) -> None:
        """Send an RTCP packet from the RTCP port."""
        if len(self._transports) == 2:
            self._transports[1].sendto(data, addr)

    def close(self) -> None:
        """Close both ports."""
        for transport in self._transports:
            transport.close()
        self._transports.clear()


def multicast_socket(
    group: str, ttl: int, interface: str | None, dscp: DscpMarker | None = None
) -> socket.socket:
    """A socket that sends to `group` with this TTL (hop limit) out of `interface`."""
    address = ipaddress.ip_address(group)
    # Linux drops TTL-0 multicast at the host boundary only when the host is a
    # member of the group on the outgoing interface (the route is then local);
    # without a member it sends TTL 0 packets onto the wire. Joining the group
    # on the sending socket makes "TTL 0 stays on this host" hold.
    if address.version == 4:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        local, index = bytes(4), 0
        if interface:
            try:
                local = socket.inet_aton(str(ipaddress.IPv4Address(interface)))
            except ValueError:
                index = socket.if_nametoindex(interface)
            mreqn = struct.pack("=4s4si", bytes(4), local, index)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
        if ttl == 0:
            membership = struct.pack("=4s4si", address.packed, local, index)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    else:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
        index = socket.if_nametoindex(interface) if interface else 0
        if index:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        if ttl == 0:
            membership = address.packed + struct.pack("@I", index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, membership)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    sock.setblocking(False)
    if dscp is not None:
        dscp.mark(sock, "video")
    return sock


def close_quietly(sock: socket.socket | None) -> None:
    """Close a socket, ignoring errors."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()
