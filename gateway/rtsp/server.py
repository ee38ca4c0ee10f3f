"""The RTSP 1.0 server: connections, methods, sessions, RTCP, and the housekeeping.

`RtspConnection` is the protocol logic of one control connection. It reads
bytes through the sans-IO parser and writes to a `Sink`, so the same logic
serves a TCP connection on the RTSP port and an RTSP-over-HTTP tunnel whose
requests arrive on a POST and whose responses and media leave on a GET.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import socket
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qsl

from ..config import Config
from ..media.channel import Channel
from ..media.limits import LimitError, ViewerLimits, viewer_limits
from ..media.session import Session, Sessions
from ..net.buffers import set_send_buffer
from ..net.gatekeeper import BACKLOG
from ..rtp import rtcp
from ..rtp.egress import RtpViewer, TcpViewer, TrackEgress, UdpViewer
from ..rtp.payloaders import H264_PAYLOAD_TYPE, JPEG_PAYLOAD_TYPE, make_payloader
from ..rtp.udp import RtpSockets
from ..security import auth
from ..security.auth import ANONYMOUS, BasicPending, Identity, Outcome, Refusal
from . import sdp
from .message import Event, Interleaved, ParseError, Request, Response, RtspParser
from .sdp import h264_fmtp
from .session import RtspSession, SessionTable
from .transport import TransportSpec, UnsupportedTransport, parse_transport
from .url import Target, UrlError, resolve

if TYPE_CHECKING:
    from ..app import Gateway
    from ..transcode.feed import H264Feed

log = logging.getLogger(__name__)

MAX_BACKLOG = 64  # events queued while a request waits
PUBLIC = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER"
SERVER = "coaxgate"
MAX_SESSIONS_PER_CONNECTION = 16
CNAME = f"coaxgate@{socket.gethostname()}"


class Sink(Protocol):
    """Where a connection's responses and interleaved media go."""

    def write(self, data: bytes) -> None: ...

    def get_write_buffer_size(self) -> int: ...

    def is_closing(self) -> bool: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class RtspError(Exception):
    """A request that gets an error status instead of its normal answer."""

    def __init__(self, status: int, message: str = "", headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class RtspConnection:
    """The RTSP protocol of one control connection (TCP, or an HTTP tunnel)."""

    def __init__(
        self,
        server: RtspServer,
        sink: Sink,
        peer: tuple[str, int],
        local: tuple[str, int],
        protocol: str = "rtsp_tcp",
        secure: bool = False,
    ) -> None:
        self.server = server
        self.sink = sink
        self.peer = peer
        self.local = local
        self.protocol = protocol  # what its interleaved viewers count as
        self.secure = secure  # TLS (RTSPS, or a tunnel over HTTPS): Basic auth may be offered
        self.parser = RtspParser("server")
        self.sessions: dict[str, RtspSession] = {}
        self.closed = False
        self.on_close: list[Callable[[], None]] = []
        self._after_response: Callable[[], None] | None = None
        self.identity: Identity = ANONYMOUS  # who sent the request being handled
        # Events that arrived while a request waits (a Basic check, a delayed refusal).
        self._backlog: list[Event] | None = None

    # -- input ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Bytes from the client: requests, or interleaved RTCP."""
        for event in self.parser.feed(data):
            if self.closed:
                return
            if self._backlog is not None:
                if len(self._backlog) >= MAX_BACKLOG:
                    log.info("RTSP %s:%d: too much sent while waiting; closing", *self.peer)
                    self.sink.close()
                    self.connection_lost()
                    return
                self._backlog.append(event)
                continue
            self._event(event)

    def _hold(self) -> None:
        """Queue what arrives until `_release`: requests are answered in order."""
        self._backlog = []

    def _release(self) -> None:
        backlog, self._backlog = self._backlog or [], None
        for i, event in enumerate(backlog):
            if self.closed:
                return
            if self._backlog is not None:  # held again: the rest waits in order
                self._backlog.extend(backlog[i:])
                return
            self._event(event)

    def _event(self, event: Event) -> None:
        if isinstance(event, Request):
            self._request(event)
        elif isinstance(event, Interleaved):
            self._interleaved(event)
        elif isinstance(event, ParseError):
            self.server.parse_errors += 1
            headers = {"Server": SERVER}
            cseq = event.head.headers.get("CSeq") if event.head is not None else None
            if cseq is not None and cseq.isdigit():
                headers["CSeq"] = cseq
            self._send(Response(event.status, headers=headers))
            if not event.recoverable:
                log.info("RTSP %s:%d: %s; closing the connection", *self.peer, event.message)
                self.sink.close()
                self.connection_lost()
                return

    def _interleaved(self, frame: Interleaved) -> None:
        # Clients send RTCP receiver reports on the odd channel of a pair.
        for session in self.sessions.values():
            viewer = session.viewer
            if isinstance(viewer, TcpViewer) and frame.channel == viewer.rtcp_channel:
                session.touch()
                self.server.receiver_report(session, frame.data)

    def connection_lost(self) -> None:
        """The connection is gone: its sessions end with it."""
        if self.closed:
            return
        self.closed = True
        for session in list(self.sessions.values()):
            self.server.end_session(session, "connection closed")
        self.server.connections.discard(self)
        for callback in self.on_close:
            callback()

    # -- output --------------------------------------------------------------

    def _send(self, response: Response) -> None:
        if not self.sink.is_closing():
            self.sink.write(response.serialize())

    # -- requests ------------------------------------------------------------

    def _request(self, req: Request, checked: Identity | None = None) -> None:
        self._after_response = None
        cseq = req.headers.get("CSeq")
        headers: dict[str, str] = {"Server": SERVER}
        if cseq is not None:
            headers["CSeq"] = cseq
        if checked is None:
            outcome = self._authenticate(req)
            if isinstance(outcome, BasicPending):
                self._check_basic(req, outcome)
                return
            if isinstance(outcome, Refusal):
                self._refuse(req, outcome, headers)
                return
            checked = outcome
        self.identity = checked
        try:
            if cseq is None or req.cseq is None:
                raise RtspError(400, "CSeq is required")
            require = req.headers.get("Require")
            if require:
                raise RtspError(551, "no options are supported", {"Unsupported": require})
            handler = _METHODS.get(req.method)
            if handler is None:
                if req.method in ("ANNOUNCE", "RECORD"):
                    raise RtspError(405, "this server only plays", {"Allow": PUBLIC})
                raise RtspError(501, f"{req.method} is not implemented")
            response = handler(self, req)
        except RtspError as e:
            headers.update(e.headers)
            body = (str(e) + "\r\n").encode() if str(e) else b""
            if body:
                headers["Content-Type"] = "text/plain"
            self._send(Response(e.status, headers=headers, body=body))
            return
        for name, value in headers.items():
            if name not in response.headers:
                response.headers.set(name, value)
        self._send(response)
        after, self._after_response = self._after_response, None
        if after is not None:
            after()

    # -- authentication --------------------------------------------------------

    def _authenticate(self, req: Request) -> Outcome:
        gw = self.server.gateway
        need = auth.PUBLIC if req.method == "OPTIONS" else auth.VIEW
        channel = None
        with contextlib.suppress(UrlError):
            channel = resolve(req.uri, self.server.channel_names).channel
        return gw.auth.check(
            protocol="rtsp",
            method=req.method,
            uri=req.uri,
            authorization=req.headers.get("Authorization"),
            peer=self.peer[0],
            secure=self.secure,
            need=need,
            channel=channel,
            loopback=self.peer[0] in ("127.0.0.1", "::1"),
        )

    def _check_basic(self, req: Request, pending: BasicPending) -> None:
        """Check a Basic password off the event loop, then answer the request."""
        gw = self.server.gateway
        self._hold()

        async def check() -> None:
            ok = await asyncio.to_thread(gw.auth.check_basic, pending)
            if self.closed:
                return
            outcome = gw.auth.settle(pending, ok)
            self._backlog, backlog = None, self._backlog
            if isinstance(outcome, Refusal):
                self._backlog = backlog  # still held while the refusal waits
                cseq = req.headers.get("CSeq") or "0"
                self._refuse(req, outcome, {"Server": SERVER, "CSeq": cseq})
                return
            self._request(req, outcome)
            self._backlog = backlog
            self._release()

        task = asyncio.get_running_loop().create_task(check())
        self.server.tasks.add(task)
        task.add_done_callback(self.server.tasks.discard)

    def _refuse(self, req: Request, refusal: Refusal, headers: dict[str, str]) -> None:
        """401 with challenges or 403; wrong credentials are answered after a delay."""
        response = Response(refusal.status, headers=headers)
        for challenge in refusal.challenges:
            response.headers.add("WWW-Authenticate", challenge)
        if not refusal.delay:
            self._send(response)
            return
        if self._backlog is None:
            self._hold()

        def answer() -> None:
            if not self.closed:
                self._send(response)
                self._release()

        asyncio.get_running_loop().call_later(refusal.delay, answer)

    def _session(self, req: Request, required: bool = True) -> RtspSession | None:
        value = req.headers.get("Session")
        if value is None:
            if required:
                raise RtspError(454, "Session header required")
            return None
        session_id = value.split(";", 1)[0].strip()
        session = self.sessions.get(session_id)
        if session is None:
            # Unknown here, whether it exists elsewhere or not: sessions are
            # bound to the connection that created them.
            raise RtspError(454, "no such session on this connection")
        if session.user != self.identity.name:
            raise RtspError(454, "no such session for this user")
        session.touch()
        return session

    def _target(self, req: Request) -> Target:
        try:
            target = resolve(req.uri, self.server.channel_names)
        except UrlError as e:
            raise RtspError(e.status, str(e)) from None
        if target.codec not in self.server.codecs(target.channel):
            raise RtspError(404, f"{target.codec} is not served on {target.channel!r}")
        return target

    def options(self, req: Request) -> Response:
        """OPTIONS: what we implement; a keep-alive when it names a session."""
        with contextlib.suppress(RtspError):
            self._session(req, required=False)
        return Response(200, headers={"Public": PUBLIC})

    def describe(self, req: Request) -> Response:
        """DESCRIBE: the SDP of a stream."""
        target = self._target(req)
        accept = req.headers.get("Accept")
        if accept and "application/sdp" not in accept and "*/*" not in accept:
            raise RtspError(406, "only application/sdp is offered")
        body = self.server.describe(target, self.local[0]).encode()
        return Response(
            200,
            headers={"Content-Type": "application/sdp", "Content-Base": target.base + "/"},
            body=body,
        )

    def setup(self, req: Request) -> Response:
        """SETUP: choose a transport, create (or extend) a session."""
        target = self._target(req)
        if target.track not in (None, 0):
            raise RtspError(404, f"no track {target.track}")
        session = self._session(req, required=False)
        if session is not None:
            if session.viewer is not None:
                raise RtspError(459, "one track per session")
        elif len(self.sessions) >= MAX_SESSIONS_PER_CONNECTION:
            raise RtspError(453, "too many sessions on this connection")
        value = req.headers.get("Transport")
        if not value:
            raise RtspError(400, "Transport header required")
        try:
            specs = parse_transport(value)
        except UnsupportedTransport as e:
            raise RtspError(461, f"unsupported Transport: {e}") from None
        except ValueError as e:
            raise RtspError(400, f"bad Transport: {e}") from None
        if session is None:
            session = RtspSession(self, target, self.server.config.rtsp.session_timeout)
            session.user = self.identity.name
        reply = self.server.setup_transport(self, session, target, specs)
        if reply is None:
            raise RtspError(461, "none of the offered transports is supported")
        if session.id not in self.sessions:
            self.sessions[session.id] = session
            self.server.table.add(session)
        session.state = "ready"
        return Response(200, headers={"Transport": reply.serialize(), "Session": session.header})

    def play(self, req: Request) -> Response:
        """PLAY: start sending."""
        session = self._session(req)
        assert session is not None
        if session.viewer is None:
            raise RtspError(455, "SETUP first")
        rtp_info = self.server.rtp_info(session)
        response = Response(
            200,
            headers={"Session": session.header, "Range": "npt=now-", "RTP-Info": rtp_info},
        )
        # Media must not overtake the PLAY response on the same connection.
        self._after_response = lambda: self.server.set_playing(session, True)
        return response

    def pause(self, req: Request) -> Response:
        """PAUSE: stop sending, keep the session."""
        session = self._session(req)
        assert session is not None
        if session.viewer is None:
            raise RtspError(455, "SETUP first")
        self.server.set_playing(session, False)
        return Response(200, headers={"Session": session.header})

    def teardown(self, req: Request) -> Response:
        """TEARDOWN: end the session (the connection stays)."""
        session = self._session(req)
        assert session is not None
        self.server.end_session(session, "teardown")
        return Response(200)

    def parameter(self, req: Request) -> Response:
        """GET_PARAMETER / SET_PARAMETER: keep-alives; no parameters are settable."""
        session = self._session(req, required=False)
        headers = {"Session": session.header} if session else {}
        return Response(200, headers=headers)


_METHODS: dict[str, Callable[[RtspConnection, Request], Response]] = {
    "OPTIONS": RtspConnection.options,
    "DESCRIBE": RtspConnection.describe,
    "SETUP": RtspConnection.setup,
    "PLAY": RtspConnection.play,
    "PAUSE": RtspConnection.pause,
    "TEARDOWN": RtspConnection.teardown,
    "GET_PARAMETER": RtspConnection.parameter,
    "SET_PARAMETER": RtspConnection.parameter,
}


class _Protocol(asyncio.Protocol):
    """asyncio adapter: a TCP connection on the RTSP port."""

    def __init__(self, server: RtspServer, secure: bool = False) -> None:
        self.server = server
        self.secure = secure
        self.conn: RtspConnection | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport) or hasattr(transport, "write")
        self.transport = transport  # type: ignore[assignment]
        high = self.server.config.egress.high_water
        self.transport.set_write_buffer_limits(high=high * 2, low=high // 2)  # type: ignore[union-attr]
        peer = transport.get_extra_info("peername") or ("?", 0)
        local = transport.get_extra_info("sockname") or ("0.0.0.0", 0)
        # Control only, until a SETUP asks for interleaved media (then video).
        self.server.gateway.dscp.mark_transport(transport, "management")
        self.conn = RtspConnection(
            self.server,
            self.transport,  # type: ignore[arg-type]
            peer[:2],
            local[:2],
            secure=self.secure,
        )
        self.server.connections.add(self.conn)

    def data_received(self, data: bytes) -> None:
        if self.conn is not None:
            self.conn.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.conn.connection_lost()

    def pause_writing(self) -> None:
        # Egress drops whole frames above the high-water mark; nothing to pause.
        pass

    def resume_writing(self) -> None:
        pass


class RtspServer:
    """Listener, sessions, egress per track, RTCP in and out, timeouts."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.tasks: set[asyncio.Task[None]] = set()
        self.config: Config = gateway.config
        self.sessions: Sessions = gateway.sessions
        self.table = SessionTable()
        self.connections: set[RtspConnection] = set()
        self.egress: dict[tuple[str, str, float], TrackEgress] = {}
        self.sockets = RtpSockets(self._rtcp_received, gateway.dscp)
        self.parse_errors = 0
        self.rtcp_errors = 0
        self._server: asyncio.AbstractServer | None = None
        self._tls_server: asyncio.AbstractServer | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self.port = 0
        self.tls_port = 0  # RTSPS

    @property
    def channel_names(self) -> list[str]:
        """Channel names in config order (the Axis camera numbers)."""
        return list(self.gateway.channels)

    def codecs(self, channel: str) -> tuple[str, ...]:
        """Codecs a channel serves over RTSP; "" is the native one."""
        return ("", "jpeg", "h264")

    async def start(self) -> None:
        """Bind the RTSP port and the RTP/RTCP pair; start always-on multicast groups."""
        server = self.config.server
        await self.sockets.open(server.host, self.config.rtsp.rtp_port)
        loop = asyncio.get_running_loop()
        gatekeeper = self.gateway.gatekeeper
        self._server = await loop.create_server(
            gatekeeper.wrap(lambda: _Protocol(self), "rtsp", rtsp=True),
            server.host,
            server.rtsp_port,
            reuse_address=True,
            backlog=BACKLOG,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        listening = list(self._server.sockets)
        tls = self.gateway.tls_context
        if tls is not None:
            self._tls_server = await loop.create_server(
                gatekeeper.wrap(lambda: _Protocol(self, secure=True), "rtsps", rtsp=True, tls=tls),
                server.host,
                self.config.tls.rtsps_port,
                reuse_address=True,
                backlog=BACKLOG,
            )
            self.tls_port = self._tls_server.sockets[0].getsockname()[1]
            listening += self._tls_server.sockets
        for sock in listening:  # accepted connections inherit the mark
            self.gateway.dscp.mark(sock, "management")
        for channel in self.gateway.channels.values():
            mc = channel.config.multicast
            if mc is not None and mc.always_on:
                self.track_egress(channel, "jpeg")
        self._housekeeping = asyncio.create_task(self._tick(), name="rtsp-housekeeping")
        log.info("RTSP on %s:%d (RTP/RTCP %d-%d)", server.host, self.port, *self.sockets.ports)

    async def stop(self) -> None:
        """End every session (RTCP BYE), close connections and sockets."""
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        for session in list(self.table):
            self.end_session(session, "shutdown")
        for conn in list(self.connections):
            conn.sink.close()
            conn.connection_lost()
        for listener in (self._server, self._tls_server):
            if listener is not None:
                listener.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(listener.wait_closed(), 2)
        for egress in self.egress.values():
            egress.close()
        self.egress.clear()
        self.sockets.close()

    # -- tracks ----------------------------------------------------------------

    def track_egress(
        self, channel: Channel, codec: str, feed: H264Feed | None = None
    ) -> TrackEgress:
        """The egress of a channel's track (of one H.264 feed), created on first use."""
        key = (channel.name, codec, feed.fps if feed is not None else 0.0)
        egress = self.egress.get(key)
        if egress is None:
            payloader = make_payloader(codec, self.config.rtsp.payload_size)
            track = channel.jpeg
            # A channel's multicast group carries its native codec.
            multicast = channel.config.multicast if codec == "jpeg" else None
            if codec == "h264":
                feed = feed or self.gateway.h264[channel.name]
                track = feed.track
            egress = TrackEgress(
                channel,
                track,
                payloader,
                self.sockets.rtp_fd,
                self.config.egress,
                multicast,
                self.gateway.dscp,
            )
            if feed is not None:
                egress.feed = feed
                egress.on_keyframe_needed = feed.request_keyframe
            self.egress[key] = egress
        return egress

    def limits(self, target: Target) -> ViewerLimits:
        """A viewer's limits: the channel's caps and what its URL asks for."""
        channel = self.gateway.channels[target.channel]
        try:
            query = dict(parse_qsl(target.query, keep_blank_values=True))
            return viewer_limits(channel.limits, self.gateway.profiles, query)
        except LimitError as e:
            raise RtspError(400, str(e)) from None

    def describe(self, target: Target, local_ip: str) -> str:
        """The SDP of a target, as DESCRIBE returns it."""
        channel = self.gateway.channels[target.channel]
        codec = target.codec or "jpeg"
        limits = self.limits(target)  # a bad ?streamprofile= or ?bitrate= is refused here
        feed = None
        if codec == "h264":
            # Warm the encoder up: SETUP and PLAY usually follow within a second.
            feed, _ = self.gateway.h264_feed(channel.name, limits.fps)
            feed.acquire()
            feed.release()
        return sdp.session_description(
            name=f"coaxgate {channel.name}",
            origin_address=local_ip,
            session_id=random.getrandbits(62),
            media=[self._media(channel, codec, target.control(0), feed)],
        )

    def _media(
        self, channel: Channel, codec: str, control: str, feed: H264Feed | None = None
    ) -> sdp.MediaDescription:
        if codec == "h264":
            feed = feed or self.gateway.h264[channel.name]
            return sdp.MediaDescription(
                payload_type=H264_PAYLOAD_TYPE,
                encoding="H264",
                control=control,
                framerate=feed.fps or channel.nominal_fps(),
                width=channel.width,
                height=channel.height,
                fmtp=h264_fmtp(feed.sps, feed.pps),
            )
        return sdp.MediaDescription(
            payload_type=JPEG_PAYLOAD_TYPE,
            encoding="JPEG",
            control=control,
            framerate=channel.nominal_fps(),
            width=channel.width,
            height=channel.height,
        )

    def multicast_sdp(self, channel: Channel, host: str) -> str:
        """An SDP file for the channel's multicast group, for players that open it directly."""
        mc = channel.config.multicast
        assert mc is not None
        return sdp.session_description(
            name=f"coaxgate {channel.name}",
            origin_address=host,
            session_id=random.getrandbits(62),
            media=[self._media(channel, "jpeg", "trackID=0")],
            multicast=sdp.MulticastAddress(mc.group, mc.port, mc.ttl),
        )

    # -- sessions ----------------------------------------------------------------

    def setup_transport(
        self,
        conn: RtspConnection,
        session: RtspSession,
        target: Target,
        specs: list[TransportSpec],
    ) -> TransportSpec | None:
        """Pick the first offered transport we can serve and attach a viewer for it."""
        channel = self.gateway.channels[target.channel]
        codec = target.codec or "jpeg"
        limits = sending = self.limits(target)
        feed = None
        if codec == "h264":
            feed, residual_fps = self.gateway.h264_feed(channel.name, limits.fps)
            # The feed runs at the viewer's rate: skipping frames of it would break references.
            sending = dataclasses.replace(limits, fps=residual_fps)
        egress = self.track_egress(channel, codec, feed)
        for spec in specs:
            if spec.lower_transport == "TCP" and spec.unicast:
                channels = spec.interleaved or self._free_channels(conn)
                session.record = self._record(conn, target, conn.protocol, "tcp", limits)
                self.gateway.dscp.mark_transport(conn.sink, "video")
                set_send_buffer(conn.sink, self.config.egress.socket_buffer)
                tcp = egress.add_tcp(
                    session.record,
                    conn.sink,
                    channels,
                    sending,
                    conn.protocol,
                    partial(self._stalled, session),
                )
                self._attach(session, egress, tcp)
                return TransportSpec(
                    lower_transport="TCP",
                    unicast=True,
                    interleaved=channels,
                    ssrc=tcp.ssrc,
                    mode=None,
                )
            if spec.lower_transport == "UDP" and spec.unicast and spec.client_port:
                host = conn.peer[0]
                same_family = (":" in host) == (":" in self.config.server.host)
                if conn.protocol != "rtsp_tcp" or not same_family:
                    continue  # UDP needs a direct connection in the RTP socket's family
                if spec.destination and spec.destination != host:
                    continue  # never send a stream to a third party
                session.record = self._record(conn, target, "rtsp_udp", "udp", limits)
                udp = egress.add_udp(session.record, host, spec.client_port, sending)
                session.record.refresh = udp.refresh
                self._attach(session, egress, udp)
                self.table.bind_rtcp(session, (host, spec.client_port[1]))
                return TransportSpec(
                    lower_transport="UDP",
                    unicast=True,
                    client_port=spec.client_port,
                    server_port=self.sockets.ports,
                    ssrc=udp.ssrc,
                    mode=None,
                )
            if not spec.unicast and egress.group is not None:
                mc = egress.group.config
                # One stream for the whole group: per-viewer limits cannot apply.
                session.record = self._record(conn, target, "multicast", "multicast", None)
                self._attach(session, egress, session.record)
                return TransportSpec(
                    lower_transport="UDP",
                    unicast=False,
                    destination=mc.group,
                    port=(mc.port, mc.port + 1),
                    ttl=mc.ttl,
                    mode=None,
                )
        return None

    def _record(
        self,
        conn: RtspConnection,
        target: Target,
        protocol: str,
        kind: str,
        limits: ViewerLimits | None,
    ) -> Session:
        fps = limits.fps_or_none if limits is not None else None
        record = Session(protocol, f"{conn.peer[0]}:{conn.peer[1]}", target.channel, fps)
        record.transport = kind
        record.limits = limits
        return record

    def _attach(
        self, session: RtspSession, egress: TrackEgress, viewer: RtpViewer | Session
    ) -> None:
        session.egress = egress
        session.viewer = viewer
        assert session.record is not None
        self.sessions.add(session.record)
        if egress.feed is not None and session.feed is None:
            session.feed = egress.feed
            session.feed.acquire()

    @staticmethod
    def _free_channels(conn: RtspConnection) -> tuple[int, int]:
        used = {
            c
            for s in conn.sessions.values()
            if isinstance(s.viewer, TcpViewer)
            for c in (s.viewer.rtp_channel, s.viewer.rtcp_channel)
        }
        n = 0
        while n in used or n + 1 in used:
            n += 2
        return n, n + 1

    def rtp_info(self, session: RtspSession) -> str:
        """The RTP-Info header for PLAY: where sequence numbers and timestamps start."""
        viewer = session.viewer
        url = session.target.control(0)
        if isinstance(viewer, UdpViewer):
            assert session.egress is not None
            seq = session.egress.udp.next_seq(viewer.handle)
        elif isinstance(viewer, TcpViewer):
            seq = viewer.seq
        else:
            return f"url={url}"
        assert isinstance(viewer, RtpViewer)
        return f"url={url};seq={seq};rtptime={viewer.rtp_time(time.monotonic())}"

    def set_playing(self, session: RtspSession, playing: bool) -> None:
        """PLAY or PAUSE a session's viewer."""
        if session.egress is None or session.viewer is None or session.owner.closed:
            return
        session.egress.play(session.viewer, playing)
        session.state = "playing" if playing else "ready"

    def end_session(self, session: RtspSession, why: str) -> None:
        """Tear a session down: BYE, stop sending, forget it."""
        viewer = session.viewer
        if isinstance(viewer, RtpViewer) and viewer.playing:
            self._send_rtcp(session, viewer.goodbye())
        if session.egress is not None and viewer is not None:
            session.egress.remove(viewer)
        if session.record is not None:
            self.sessions.remove(session.record)
        if session.feed is not None:
            session.feed.release()
            session.feed = None
        session.owner.sessions.pop(session.id, None)
        owner = session.owner
        if (
            isinstance(viewer, TcpViewer)
            and not owner.closed
            and not any(isinstance(s.viewer, TcpViewer) for s in owner.sessions.values())
        ):
            # No media left on this connection: it is control traffic again.
            self.gateway.dscp.mark_transport(owner.sink, "management")
        self.table.remove(session)
        session.viewer = None
        session.state = "init"
        log.debug("RTSP session %s ended: %s", session.id[:8], why)

    def _stalled(self, session: RtspSession) -> None:
        log.info(
            "RTSP viewer %s:%d stalled for %g s; disconnecting",
            *session.owner.peer,
            self.config.egress.stall_timeout,
        )
        session.owner.sink.abort()
        session.owner.connection_lost()

    # -- RTCP ----------------------------------------------------------------------

    def _rtcp_received(self, data: bytes, addr: tuple[str, int]) -> None:
        session = self.table.by_rtcp(addr)
        if session is None:
            return
        session.touch()
        self.receiver_report(session, data)

    def receiver_report(self, session: RtspSession, data: bytes) -> None:
        """Loss and jitter from a client's receiver report."""
        try:
            packets = rtcp.parse_compound(data)
        except ValueError:
            self.rtcp_errors += 1
            return
        viewer = session.viewer
        if not isinstance(viewer, RtpViewer) or session.record is None:
            return
        for packet in packets:
            for block in getattr(packet, "reports", ()):
                if block.ssrc != viewer.ssrc:
                    continue
                session.record.rtcp = {
                    "fraction_lost": round(block.fraction_lost, 4),
                    "cumulative_lost": block.cumulative_lost,
                    "jitter_seconds": block.jitter / 90000.0,
                }

    def _send_rtcp(self, session: RtspSession, data: bytes) -> None:
        viewer = session.viewer
        if isinstance(viewer, UdpViewer):
            self.sockets.send_rtcp(data, (viewer.host, viewer.rtcp_port))
        elif isinstance(viewer, TcpViewer):
            sink = session.owner.sink
            if not sink.is_closing():
                sink.write(Interleaved(viewer.rtcp_channel, data).serialize())

    async def _tick(self) -> None:
        interval = self.config.rtsp.sender_report_interval
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for session in self.table:
                if session.expired(now):
                    log.info("RTSP session %s timed out", session.id[:8])
                    self.end_session(session, "timeout")
                    continue
                viewer = session.viewer
                if isinstance(viewer, RtpViewer) and viewer.playing and now >= viewer.next_report:
                    self._send_rtcp(session, viewer.sender_report(CNAME))
                    viewer.next_report = now + interval * random.uniform(0.5, 1.5)
            for egress in self.egress.values():
                group = egress.group
                if group is not None and group.active and now >= group.next_report:
                    group.send_rtcp(group.sender_report(CNAME))
                    group.next_report = now + interval * random.uniform(0.5, 1.5)
