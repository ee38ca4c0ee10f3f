"""Track egress: packetize each frame once, send it to every RTP viewer of the track.

One `TrackEgress` per (channel, codec) reads the track while anyone watches
over RTP. UDP viewers share the server's RTP socket and are sent to from
Cython (`UdpFanout`: per-viewer 12-byte headers over the shared payloads,
batched `sendmmsg`, UDP GSO). A multicast group is one more UDP destination
on its own socket. TCP-interleaved and HTTP-tunnelled viewers get the frame
as one buffer of interleaved packets on their connection, or lose the whole
frame when their connection is above its high-water mark.
"""

from __future__ import annotations

import logging
import random
import secrets
import socket
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .._ext.egress import UdpFanout, admit, interleave
from ..config import EgressConfig, MulticastConfig
from ..log import Aggregated
from ..media.channel import Channel
from ..media.limits import ViewerLimits, default_burst
from ..media.rate import FpsLimiter, StallWatch
from ..media.session import Session
from ..media.track import Track
from ..media.unit import CLOCK_RATE, Unit
from ..net.dscp import DscpMarker
from . import rtcp
from .pacing import Pacer
from .udp import close_quietly, multicast_socket

if TYPE_CHECKING:
    from ..transcode.feed import H264Feed

log = logging.getLogger(__name__)

HEADER = 12
TS_MASK = 0xFFFFFFFF


class Payloader(Protocol):
    """Turns one encoded frame into RTP payloads (RFC 2435, RFC 6184)."""

    payload_type: int
    gated: bool  # inter-coded: a viewer may only start, or resume, at a keyframe

    def payload(self, frame: bytes) -> tuple[bytes, np.ndarray, str | None]:
        """(payload bytes back to back, uint32 offsets, re-encode reason or None)."""
        ...


class ByteSink(Protocol):
    """Where a TCP viewer's bytes go: an RTSP connection or an HTTP tunnel's GET leg."""

    def write(self, data: bytes) -> None: ...

    def get_write_buffer_size(self) -> int: ...

    def is_closing(self) -> bool: ...


def new_ssrc() -> int:
    """A random SSRC (RFC 3550 8.1)."""
    return secrets.randbits(32)


def sender_report(ssrc: int, ts_offset: int, packets: int, octets: int, cname: str) -> bytes:
    """RTCP SR + SDES: wall-clock now and the RTP timestamp of the same instant."""
    rtp_now = (ts_offset + int(time.monotonic() * CLOCK_RATE)) & TS_MASK
    return rtcp.compound(
        rtcp.sender_report(ssrc, time.time(), rtp_now, packets, octets),
        rtcp.sdes_cname(ssrc, cname),
    )


class RtpViewer:
    """What every RTP viewer has: its session, SSRC, timestamp offset, play state."""

    protocol = "rtsp"

    def __init__(self, session: Session, fps: float | None) -> None:
        self.session = session
        self.ssrc = new_ssrc()
        self.ts_offset = secrets.randbits(32)
        self.initial_seq = secrets.randbits(16)
        self.fps = fps
        self.playing = False
        self.next_report = 0.0

    def rtp_time(self, mono: float) -> int:
        """This viewer's RTP timestamp for an instant of the capture clock."""
        return (self.ts_offset + int(mono * CLOCK_RATE)) & TS_MASK

    def counts(self) -> tuple[int, int]:
        """(packets, payload octets) sent, for sender reports."""
        raise NotImplementedError

    def sender_report(self, cname: str) -> bytes:
        """An RTCP SR + SDES compound describing this viewer's stream now."""
        return sender_report(self.ssrc, self.ts_offset, *self.counts(), cname)

    def goodbye(self) -> bytes:
        """An RTCP BYE for this viewer's SSRC."""
        return rtcp.compound(rtcp.bye([self.ssrc]))


class UdpViewer(RtpViewer):
    """A unicast UDP viewer: a destination in the track's UdpFanout."""

    protocol = "rtsp_udp"

    def __init__(
        self,
        egress: TrackEgress,
        session: Session,
        host: str,
        ports: tuple[int, int],
        limits: ViewerLimits,
    ) -> None:
        super().__init__(session, limits.fps_or_none)
        self.egress = egress
        self.host = host
        self.rtp_port, self.rtcp_port = ports
        self.handle = egress.udp.add(
            host,
            self.rtp_port,
            self.ssrc,
            self.initial_seq,
            self.ts_offset,
            limits.fps,
            wait_keyframe=egress.gated,
        )
        if limits.bitrate:
            burst = limits.burst or default_burst(limits.bitrate)
            egress.udp.set_bitrate(self.handle, limits.bitrate, burst)

    def counts(self) -> tuple[int, int]:
        """(packets, octets) from the fanout's counters."""
        stats = self.egress.udp.stats(self.handle)
        return int(stats["packets"]), int(stats["octets"])

    def refresh(self, session: Session) -> None:
        """Copy the fanout's counters into the session (read when the API asks)."""
        stats = self.egress.udp.stats(self.handle)
        session.frames_sent = int(stats["frames"])
        session.bytes_sent = int(stats["octets"]) + HEADER * int(stats["packets"])
        session.dropped["fps_limit"] = int(stats["fps_dropped"])
        if stats["rate_dropped"]:
            session.dropped["rate_limit"] = int(stats["rate_dropped"])
        if stats["send_failed"]:
            session.dropped["send_failed"] = int(stats["send_failed"])


class TcpViewer(RtpViewer):
    """A viewer whose packets are interleaved on its RTSP connection (or HTTP tunnel)."""

    def __init__(
        self,
        session: Session,
        sink: ByteSink,
        channels: tuple[int, int],
        limits: ViewerLimits,
        protocol: str,
        on_stall: Callable[[], None],
    ) -> None:
        super().__init__(session, limits.fps_or_none)
        self.sink = sink
        self.rtp_channel, self.rtcp_channel = channels
        self.protocol = protocol
        self.seq = self.initial_seq
        self.packets = 0
        self.octets = 0
        self.limiter = FpsLimiter(limits.fps) if limits.fps else None
        self.bucket = limits.bucket()
        self.stall: StallWatch | None = None  # set by the egress, which knows the timeout
        self.on_stall = on_stall
        self.waiting_key = True

    def counts(self) -> tuple[int, int]:
        """(packets, octets) sent on the connection."""
        return self.packets, self.octets


class MulticastGroup:
    """A channel's multicast group: one stream, however many viewers joined it."""

    protocol = "multicast"

    def __init__(self, egress: TrackEgress, config: MulticastConfig) -> None:
        self.config = config
        self.egress = egress
        self.sock: socket.socket = multicast_socket(
            config.group, config.ttl, config.interface, egress.dscp
        )
        self.fanout = UdpFanout(self.sock.fileno(), egress.payload_type)
        self.pacer = Pacer(self.fanout, egress.pacing, partial(egress.sent, "multicast"))
        self.ssrc = new_ssrc()
        self.ts_offset = secrets.randbits(32)
        self.handle = self.fanout.add(
            config.group, config.port, self.ssrc, secrets.randbits(16), self.ts_offset, 0.0
        )
        self.viewers: set[Session] = set()
        self.next_report = 0.0
        self._update()

    @property
    def active(self) -> bool:
        """Whether the group is being sent to."""
        return bool(self.viewers) or self.config.always_on

    def _update(self) -> None:
        self.fanout.set_playing(self.handle, self.active)

    def join(self, session: Session) -> None:
        """A viewer starts watching (PLAY)."""
        self.viewers.add(session)
        self._update()

    def leave(self, session: Session) -> None:
        """A viewer stops watching (PAUSE, TEARDOWN, timeout)."""
        self.viewers.discard(session)
        self._update()

    def sender_report(self, cname: str) -> bytes:
        """An RTCP SR + SDES for the group's stream."""
        stats = self.fanout.stats(self.handle)
        packets, octets = int(stats["packets"]), int(stats["octets"])
        return sender_report(self.ssrc, self.ts_offset, packets, octets, cname)

    def send_rtcp(self, data: bytes) -> None:
        """RTCP goes to the group's port + 1."""
        try:
            self.sock.sendto(data, (self.config.group, self.config.port + 1))
        except OSError as e:
            log.debug("multicast RTCP to %s failed: %s", self.config.group, e)

    def close(self) -> None:
        """Stop sending and close the socket."""
        self.pacer.finish()
        close_quietly(self.sock)


class TrackEgress:
    """Every RTP viewer of one track of one channel."""

    def __init__(
        self,
        channel: Channel,
        track: Track,
        payloader: Payloader,
        rtp_fd: int,
        egress: EgressConfig,
        multicast: MulticastConfig | None = None,
        dscp: DscpMarker | None = None,
    ) -> None:
        self.channel = channel
        self.dscp = dscp
        self.track = track
        self.payloader = payloader
        self.payload_type = payloader.payload_type
        self.gated = payloader.gated
        self.on_keyframe_needed: Callable[[str], None] | None = None
        self.feed: H264Feed | None = None  # the H.264 feed the track belongs to
        self.udp = UdpFanout(rtp_fd, self.payload_type)
        self.udp.shared = channel.bucket  # the channel's cap, shared with every protocol
        self.pacing = egress.pacing
        self.pacer = Pacer(self.udp, egress.pacing, partial(self.sent, "rtsp_udp"))
        self.udp_viewers: dict[int, UdpViewer] = {}
        self.tcp_viewers: list[TcpViewer] = []
        self.high_water = egress.high_water
        self.stall_timeout = egress.stall_timeout
        self.group = MulticastGroup(self, multicast) if multicast else None
        self._errors = Aggregated(log, f"{channel.name}/{track.codec}: frame not sent over RTP")
        self._update_reading()

    # -- viewers -----------------------------------------------------------

    def add_udp(
        self, session: Session, host: str, ports: tuple[int, int], limits: ViewerLimits
    ) -> UdpViewer:
        """A unicast UDP viewer (not playing until PLAY)."""
        self.pacer.finish()  # the fanout's viewers change only between frames
        viewer = UdpViewer(self, session, host, ports, limits)
        self.udp_viewers[viewer.handle] = viewer
        return viewer

    def add_tcp(
        self,
        session: Session,
        sink: ByteSink,
        channels: tuple[int, int],
        limits: ViewerLimits,
        protocol: str,
        on_stall: Callable[[], None],
    ) -> TcpViewer:
        """A TCP-interleaved or HTTP-tunnelled viewer (not playing until PLAY)."""
        viewer = TcpViewer(session, sink, channels, limits, protocol, on_stall)
        viewer.stall = StallWatch(self.stall_timeout)
        self.tcp_viewers.append(viewer)
        return viewer

    def play(self, viewer: RtpViewer | Session, playing: bool = True) -> None:
        """Start (PLAY) or stop (PAUSE) sending to a viewer."""
        if isinstance(viewer, Session):
            assert self.group is not None
            (self.group.join if playing else self.group.leave)(viewer)
        else:
            viewer.playing = playing
            if isinstance(viewer, UdpViewer):
                self.udp.set_playing(viewer.handle, playing, wait_keyframe=self.gated)
            elif isinstance(viewer, TcpViewer):
                viewer.waiting_key = self.gated
            if playing:
                viewer.next_report = time.monotonic() + random.uniform(0.5, 1.5)
        if playing and self.gated and self.on_keyframe_needed is not None:
            self.on_keyframe_needed("new_viewer")
        self._update_reading()

    def remove(self, viewer: RtpViewer | Session) -> None:
        """Forget a viewer."""
        if isinstance(viewer, Session):
            if self.group is not None:
                self.group.leave(viewer)
        elif isinstance(viewer, UdpViewer):
            self.pacer.finish()
            self.udp.remove(viewer.handle)
            self.udp_viewers.pop(viewer.handle, None)
        elif viewer in self.tcp_viewers:
            self.tcp_viewers.remove(viewer)
        self._update_reading()

    @property
    def idle(self) -> bool:
        """Nobody watches and no group is always on."""
        return not (self.udp_viewers or self.tcp_viewers or (self.group and self.group.active))

    def _update_reading(self) -> None:
        watching = (
            any(v.playing for v in self.udp_viewers.values())
            or any(v.playing for v in self.tcp_viewers)
            or (self.group is not None and self.group.active)
        )
        if watching:
            self.track.add_reader(self)
        else:
            self.track.remove_reader(self)

    def close(self) -> None:
        """Detach from the track and close the multicast socket."""
        self.pacer.finish()
        self.track.remove_reader(self)
        if self.group is not None:
            self.group.close()

    # -- the hot path ----------------------------------------------------------

    def on_unit(self, unit: Unit) -> None:
        """Packetize once, then send to every UDP, multicast and TCP viewer."""
        channel = self.channel
        try:
            data, offsets, reason = self.payloader.payload(unit.data)
        except ValueError as e:
            channel.count_drop("rtsp", "unpayloadable")
            self._errors.add(str(e))
            return
        if reason is not None:
            channel.count_reencoded(reason)
        npackets = len(offsets) - 1
        if npackets <= 0:
            return
        if len(self.udp):
            skipped, waiting, limited = self.pacer.send(data, offsets, unit.pts, unit.keyframe)
            if waiting and self.on_keyframe_needed is not None:
                self.on_keyframe_needed("viewer_waiting")
            if skipped:
                channel.count_drop("rtsp_udp", "fps_limit", skipped)
            if limited:
                channel.count_drop("rtsp_udp", "rate_limit", limited)
        group = self.group
        if group is not None and group.active:
            group.pacer.send(data, offsets, unit.pts, unit.keyframe)
        if self.tcp_viewers:
            self._send_tcp(unit, data, offsets, npackets)

    def sent(self, protocol: str, ok: int, packets: int, failed: int, wire: int) -> None:
        """A UDP frame is done (all its chunks sent): count it."""
        if ok:
            self.channel.count_egress(protocol, ok, ok * wire, packets)
        if failed:
            self.channel.count_drop(protocol, "send_failed", failed)

    def _send_tcp(self, unit: Unit, data: bytes, offsets: np.ndarray, npackets: int) -> None:
        channel = self.channel
        now = time.monotonic()
        # What the frame costs a viewer on the wire: payloads, RTP and interleave headers.
        bits = 8 * (len(data) + (HEADER + 4) * npackets)
        for viewer in tuple(self.tcp_viewers):
            if not viewer.playing:
                continue
            session = viewer.session
            if viewer.waiting_key and self.gated and not unit.keyframe:
                session.dropped["waiting_idr"] += 1
                continue
            if viewer.limiter is not None and not viewer.limiter.admit(unit.pts):
                session.dropped["fps_limit"] += 1
                channel.count_drop(viewer.protocol, "fps_limit")
                viewer.waiting_key = True  # a skipped H.264 frame: resume at an IDR
                continue
            sink = viewer.sink
            if sink.is_closing():
                continue
            if sink.get_write_buffer_size() > self.high_water:
                session.dropped["slow_viewer"] += 1
                channel.count_drop(viewer.protocol, "slow_viewer")
                viewer.waiting_key = True
                if self.gated and self.on_keyframe_needed is not None:
                    self.on_keyframe_needed("slow_viewer")
                if viewer.stall is not None and viewer.stall.update(now, False):
                    viewer.on_stall()
                continue
            if viewer.stall is not None and viewer.stall.update(now, True):
                viewer.on_stall()
                continue
            if (viewer.bucket is not None or channel.bucket is not None) and not admit(
                bits, viewer.bucket, channel.bucket, now
            ):
                session.dropped["rate_limit"] += 1
                channel.count_drop(viewer.protocol, "rate_limit")
                viewer.waiting_key = True
                if self.gated and self.on_keyframe_needed is not None:
                    self.on_keyframe_needed("rate_limit")
                continue
            viewer.waiting_key = False
            ts = (viewer.ts_offset + unit.pts) & TS_MASK
            buf = interleave(
                data, offsets, viewer.rtp_channel, self.payload_type, viewer.ssrc, viewer.seq, ts
            )
            sink.write(buf)
            viewer.seq = (viewer.seq + npackets) & 0xFFFF
            viewer.packets += npackets
            viewer.octets += len(data)
            session.frames_sent += 1
            session.bytes_sent += len(buf)
            channel.count_egress(viewer.protocol, 1, len(buf), npackets)
