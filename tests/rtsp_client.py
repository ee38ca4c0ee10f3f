"""A small RTSP client for protocol tests: requests, UDP or interleaved RTP, RTCP."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass, field

from gateway._ext.rtph264 import RtpH264Depacketizer
from gateway._ext.rtpjpeg import RtpJpegDepacketizer
from gateway.rtp import packet as rtp_packet
from gateway.rtp import rtcp
from gateway.rtsp.message import Interleaved, Request, Response, RtspParser


@dataclass
class RtpPacket:
    """One received RTP packet, parsed, with its arrival time."""

    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes
    arrival: float

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        p = rtp_packet.parse(data)
        return cls(
            p.payload_type, p.marker, p.seq, p.timestamp, p.ssrc, bytes(p.payload), time.monotonic()
        )


@dataclass
class Media:
    """What arrived for a session: RTP packets, RTCP packets, and the frames they make."""

    packets: list[RtpPacket] = field(default_factory=list)
    rtcp: list[object] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)
    frame_times: list[float] = field(default_factory=list)
    depacketizer: RtpJpegDepacketizer = field(default_factory=RtpJpegDepacketizer)
    h264: RtpH264Depacketizer = field(default_factory=RtpH264Depacketizer)

    def rtp(self, data: bytes) -> None:
        packet = RtpPacket.parse(data)
        self.packets.append(packet)
        depacketizer = self.h264 if packet.payload_type == 96 else self.depacketizer
        frame = depacketizer.push(packet.seq, packet.timestamp, packet.marker, packet.payload)
        if frame is not None:
            self.frames.append(frame)
            self.frame_times.append(packet.arrival)

    def control(self, data: bytes) -> None:
        self.rtcp.extend(rtcp.parse_compound(data))

    def fps(self) -> float:
        t = self.frame_times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 else 0.0


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, sink: object) -> None:
        self.sink = sink

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sink(data)  # type: ignore[operator]


class RtspClient:
    """One RTSP control connection, and the media of its session."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.parser = RtspParser("client")
        self.cseq = 0
        self.session: str | None = None
        self.media = Media()
        self.responses: asyncio.Queue[Response] = asyncio.Queue()
        self.udp: list[asyncio.DatagramTransport] = []
        self.client_ports: tuple[int, int] | None = None
        self.interleaved: tuple[int, int] = (0, 1)

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            data = await self.reader.read(65536)
            if not data:
                return
            for event in self.parser.feed(data):
                if isinstance(event, Response):
                    self.responses.put_nowait(event)
                elif isinstance(event, Interleaved):
                    if event.channel == self.interleaved[0]:
                        self.media.rtp(event.data)
                    elif event.channel == self.interleaved[1]:
                        self.media.control(event.data)

    async def close(self) -> None:
        self.writer.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await self._task
        for t in self.udp:
            t.close()

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def response(self, timeout: float = 5.0) -> Response:
        return await asyncio.wait_for(self.responses.get(), timeout)

    async def request(
        self, method: str, uri: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Response:
        self.cseq += 1
        h = {"CSeq": str(self.cseq), "User-Agent": "coaxgate-test"}
        if self.session and method not in ("OPTIONS", "DESCRIBE"):
            h["Session"] = self.session
        h.update(headers or {})
        self.writer.write(Request(method, uri, h, body).serialize())
        resp = await self.response()
        assert resp.headers.get("CSeq") == str(self.cseq), resp
        return resp

    async def open_udp(self) -> tuple[int, int]:
        """Bind an RTP/RTCP port pair for a UDP session."""
        loop = asyncio.get_running_loop()
        for _ in range(50):
            rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rtcp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                rtp.bind(("127.0.0.1", 0))
                port = rtp.getsockname()[1]
                if port % 2:
                    raise OSError("odd")
                rtcp_sock.bind(("127.0.0.1", port + 1))
            except OSError:
                rtp.close()
                rtcp_sock.close()
                continue
            rtp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            t1, _ = await loop.create_datagram_endpoint(lambda: _Udp(self.media.rtp), sock=rtp)
            t2, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(self.media.control), sock=rtcp_sock
            )
            self.udp = [t1, t2]
            self.client_ports = (port, port + 1)
            return self.client_ports
        raise RuntimeError("no free port pair")

    def send_rtcp(self, data: bytes, server_rtcp: tuple[str, int]) -> None:
        self.udp[1].sendto(data, server_rtcp)

    async def play_session(self, url: str, transport: str = "udp") -> Response:
        """DESCRIBE, SETUP (udp or tcp), PLAY; returns the SETUP response."""
        desc = await self.request("DESCRIBE", url, {"Accept": "application/sdp"})
        assert desc.status == 200, desc
        control = next(
            line[len("a=control:") :]
            for line in desc.body.decode().splitlines()
            if line.startswith("a=control:") and "trackID" in line
        )
        if transport == "udp":
            a, b = await self.open_udp()
            spec = f"RTP/AVP;unicast;client_port={a}-{b}"
        else:
            spec = "RTP/AVP/TCP;unicast;interleaved=0-1"
        setup = await self.request("SETUP", control, {"Transport": spec})
        assert setup.status == 200, setup
        self.session = (setup.headers.get("Session") or "").split(";")[0]
        play = await self.request("PLAY", url, {"Range": "npt=0.000-"})
        assert play.status == 200, play
        self.play_response = play
        return setup
