"""Back-pressure soak: slow TCP viewers among fifty honest ones, for minutes.

The requirement: a TCP viewer reading at a tenth of the stream rate must not
cost the other viewers a single frame; it loses whole frames (never part of
one) and is disconnected after the stall time; a viewer that stops reading
altogether is too; and the gateway's memory stays flat (RSS within 10 %) for
five minutes.

The gateway runs as a child process so that its RSS and file descriptors can be
read from /proc. Fifty RTSP viewers (TCP interleaved) and three MJPEG viewers
watch one emulated CIF 25 fps channel for the whole run. Beside them, one after
another, slow viewers (reading a tenth of the stream's byte rate through a
small receive buffer) and stopped viewers (reading nothing after their first
frames) come, are cut off, and are replaced, so that there is always one of
each and the gateway's memory is measured under that churn.

The viewers are raw asyncio protocols that parse the interleaved stream cheaply
(they share the machine with the gateway): honest ones check sequence numbers
and count marker bits; slow ones also reassemble frames with the RFC 2435
depacketizer. Every viewer sends an RTCP receiver report every few seconds, as
live555-based players do, which keeps its RTSP session alive.

`COAXGATE_SOAK_SECONDS` (default 300) sets the length of the measured window.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway import config
from gateway._ext.multipart import MultipartScanner, Part
from gateway._ext.rtpjpeg import RtpJpegDepacketizer
from gateway.app import Gateway
from gateway.rtp import rtcp

from .support import (
    decode_jpeg,
    free_port,
    gateway_process,
    get_json,
    get_text,
    metric,
    open_fds,
    rss_kib,
)

SOAK = float(os.environ.get("COAXGATE_SOAK_SECONDS", "300"))
WARMUP = 20.0  # seconds of full load, misbehaving viewers included, before the window opens
FPS = 25
TICKS = 90000 // FPS  # RTP timestamp ticks per frame
SOURCE = f"emulator:1?resolution=352x288&fps={FPS}"
HONEST_RTSP = 50
HONEST_MJPEG = 3
STALL = 3.0  # [egress] stall_timeout
SAMPLE_EVERY = 5.0  # seconds between RSS and fd samples
KEEPALIVE = 5.0  # seconds between a viewer's receiver reports
POLL = 0.2  # seconds between looks at the sessions API while a probe runs


async def until(check: Callable[[], bool], timeout: float) -> None:
    """Wait until `check()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


@dataclass
class Reply:
    """An RTSP response, as much of it as these tests need."""

    status: int
    headers: dict[str, str]
    body: bytes


class RtspViewer(asyncio.Protocol):
    """An RTSP client playing one JPEG track interleaved on its connection.

    `rate` (bytes per second) makes it a slow reader: after each read it pauses
    the transport for as long as that read "costs" at that rate, a token bucket
    whose reads are never larger than the small receive buffer it was given.
    """

    def __init__(self, *, rate: float = 0.0, depacketize: bool = False) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.pending: asyncio.Future[Reply] | None = None
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self.cseq = 0
        self.session = ""
        self.rate = 0.0
        self.target_rate = rate
        self.local_port = 0
        self.played_at = 0.0
        self.closed_at = 0.0
        ssrc = secrets.randbits(32)
        report = rtcp.compound(rtcp.receiver_report(ssrc), rtcp.sdes_cname(ssrc, "soak"))
        self.keepalive = b"$\x01" + len(report).to_bytes(2, "big") + report
        # What arrived.
        self.bytes = 0
        self.packets = 0
        self.frames = 0
        self.seq: int | None = None
        self.seq_gaps = 0
        self.foreign = 0  # packets of another payload type or channel
        self.last_ts: int | None = None
        self.ts_skips = 0  # frames that followed a gap of more than one frame interval
        self.depacketizer = RtpJpegDepacketizer() if depacketize else None
        self.jpegs = 0
        self.kept: list[bytes] = []  # the first and the latest whole frame, to decode

    # -- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.local_port = transport.get_extra_info("sockname")[1]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
            self.closed_at = time.monotonic()
        if self.pending is not None and not self.pending.done():
            self.pending.set_exception(ConnectionError("closed"))

    def data_received(self, data: bytes) -> None:
        self.bytes += len(data)
        buf = self.buf
        buf += data
        off, n = 0, len(buf)
        while off < n:
            if buf[off] == 0x24:  # '$': an interleaved packet
                if n - off < 4:
                    break
                end = off + 4 + ((buf[off + 2] << 8) | buf[off + 3])
                if end > n:
                    break
                if buf[off + 1] == 0:
                    self._rtp(buf, off + 4, end)
                elif buf[off + 1] != 1:
                    self.foreign += 1
                off = end
            else:  # an RTSP response
                head_end = buf.find(b"\r\n\r\n", off)
                if head_end < 0:
                    break
                lines = bytes(buf[off:head_end]).decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    key, _, value = line.partition(":")
                    headers[key.strip().lower()] = value.strip()
                end = head_end + 4 + int(headers.get("content-length", "0"))
                if end > n:
                    break
                reply = Reply(int(lines[0].split()[1]), headers, bytes(buf[head_end + 4 : end]))
                if self.pending is not None and not self.pending.done():
                    self.pending.set_result(reply)
                off = end
        del buf[:off]
        if self.rate and self.transport is not None:
            self.transport.pause_reading()
            self.loop.call_later(len(data) / self.rate, self._resume)

    def _resume(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _rtp(self, buf: bytearray, start: int, end: int) -> None:
        b1 = buf[start + 1]
        seq = (buf[start + 2] << 8) | buf[start + 3]
        if self.seq is not None and seq != (self.seq + 1) & 0xFFFF:
            self.seq_gaps += 1
        self.seq = seq
        self.packets += 1
        if b1 & 0x7F != 26:
            self.foreign += 1
        marker = bool(b1 & 0x80)
        if self.depacketizer is not None:
            ts = int.from_bytes(buf[start + 4 : start + 8], "big")
            frame = self.depacketizer.push(seq, ts, marker, bytes(buf[start + 12 : end]))
            if frame is not None:
                self.jpegs += 1
                if len(self.kept) < 2:
                    self.kept.append(frame)
                else:
                    self.kept[-1] = frame
        if marker:
            self.frames += 1
            ts = int.from_bytes(buf[start + 4 : start + 8], "big")
            if self.last_ts is not None and (ts - self.last_ts) & 0xFFFFFFFF > TICKS * 3 // 2:
                self.ts_skips += 1
            self.last_ts = ts

    def _keepalive(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.keepalive)
            self.loop.call_later(KEEPALIVE, self._keepalive)

    # -- RTSP ------------------------------------------------------------------

    async def request(self, method: str, uri: str, **headers: str) -> Reply:
        assert self.transport is not None
        self.cseq += 1
        lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {self.cseq}", "User-Agent: coaxgate-soak"]
        if self.session:
            lines.append(f"Session: {self.session}")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.pending = self.loop.create_future()
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        reply = await asyncio.wait_for(self.pending, 10)
        assert reply.headers.get("cseq") == str(self.cseq), reply
        return reply

    async def play(self, url: str) -> None:
        """DESCRIBE, SETUP over TCP, PLAY; then read at `rate` if one was given."""
        desc = await self.request("DESCRIBE", url, Accept="application/sdp")
        assert desc.status == 200, desc
        control = next(
            line[len("a=control:") :]
            for line in desc.body.decode().splitlines()
            if line.startswith("a=control:") and "trackID" in line
        )
        setup = await self.request(
            "SETUP", control, Transport="RTP/AVP/TCP;unicast;interleaved=0-1"
        )
        assert setup.status == 200, setup
        self.session = setup.headers["session"].split(";")[0]
        play = await self.request("PLAY", url, Range="npt=0.000-")
        assert play.status == 200, play
        self.rate = self.target_rate
        self.played_at = time.monotonic()
        self.loop.call_later(KEEPALIVE, self._keepalive)

    @property
    def connected(self) -> bool:
        return not self.closed.done()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class MjpegViewer(asyncio.Protocol):
    """An HTTP server-push client that counts whole parts (and keeps none)."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.body = False
        self.scanner = MultipartScanner(b"myboundary")
        self.frames = 0
        self.errors = 0
        self.local_port = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.local_port = transport.get_extra_info("sockname")[1]
        assert self.transport is not None
        self.transport.write(b"GET /channels/lobby/mjpeg HTTP/1.1\r\nHost: soak\r\n\r\n")

    def data_received(self, data: bytes) -> None:
        if not self.body:
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            assert self.head.startswith(b"HTTP/1.1 200"), bytes(self.head[:200])
            data = bytes(self.head[self.head.index(b"\r\n\r\n") + 4 :])
            self.body = True
        for event in self.scanner.feed(data):
            if isinstance(event, Part):
                self.frames += 1
            else:
                self.errors += 1

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(port: int, protocol: asyncio.Protocol, rcvbuf: int = 0) -> None:
    """Connect a protocol to 127.0.0.1:port, with a small receive buffer if asked."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    if rcvbuf:  # before connect, so that the window is small from the start
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.create_connection(lambda: protocol, sock=sock)


async def sessions_by_port(base: str) -> dict[int, dict[str, Any]]:
    """The gateway's sessions, keyed by the viewer's local port."""
    api = await get_json(f"{base}/api/v1/sessions")
    return {int(s["peer"].rsplit(":", 1)[1]): s for s in api["sessions"]}


@dataclass
class Probe:
    """A misbehaving viewer's life, as the gateway's sessions API and the viewer saw it."""

    kind: str  # "slow" (a tenth of the stream's rate) or "stopped" (reads nothing)
    viewer: RtspViewer
    started: float  # it started to misbehave
    first_drop: float | None = None  # the gateway had skipped a frame for it (seen by polling)
    gone: float | None = None  # its session had left the API
    closed: float | None = None  # its connection had ended
    frames_sent: int = 0  # by the gateway, as last seen
    dropped: dict[str, int] = field(default_factory=dict)  # by the gateway, as last seen
    received_by_cut: int = 0  # bytes it had read when its session left the API

    @property
    def stall_to_cut(self) -> float:
        """From the first frame the gateway skipped for it to its disconnection."""
        assert self.first_drop is not None and self.gone is not None
        return self.gone - self.first_drop

    def summary(self) -> dict[str, Any]:
        v = self.viewer
        return {
            "kind": self.kind,
            "to_first_drop_s": self.first_drop and round(self.first_drop - self.started, 1),
            "stall_to_cut_s": self.gone and self.first_drop and round(self.stall_to_cut, 2),
            "frames_sent": self.frames_sent,
            "frames_received": v.frames,
            "dropped": self.dropped,
            "read_Bps": round(self.received_by_cut / ((self.gone or 1) - v.played_at)),
        }


async def misbehave(base: str, rtsp_port: int, kind: str, rate: float) -> Probe:
    """A viewer that reads at `rate` ("slow") or stops reading ("stopped"), until cut off."""
    slow = kind == "slow"
    viewer = RtspViewer(rate=rate if slow else 0.0, depacketize=True)
    await connect(rtsp_port, viewer, rcvbuf=4096)
    try:
        await viewer.play(f"rtsp://127.0.0.1:{rtsp_port}/lobby")
        await until(lambda: viewer.frames >= 2, 10)
        assert viewer.transport is not None
        if not slow:
            viewer.transport.pause_reading()
        probe = Probe(kind, viewer, started=time.monotonic())
        async with asyncio.timeout(120):
            while True:
                await asyncio.sleep(POLL)
                now = time.monotonic()
                session = (await sessions_by_port(base)).get(viewer.local_port)
                if session is None:
                    probe.gone = now
                    probe.received_by_cut = viewer.bytes
                    break
                probe.frames_sent = session["frames_sent"]
                probe.dropped = session["frames_dropped_by_reason"]
                if probe.dropped and probe.first_drop is None:
                    probe.first_drop = now
        # Reading at full speed now, it gets what the kernel still held, then the end.
        viewer.rate = 0.0
        viewer.transport.resume_reading()
        async with asyncio.timeout(30):
            await viewer.closed
        probe.closed = viewer.closed_at
        return probe
    finally:
        viewer.close()


@dataclass
class Samples:
    """RSS (KiB) and open fds of the gateway over time."""

    rss: list[int] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)


@pytest.mark.loops("uvloop")
@pytest.mark.slow
@pytest.mark.timeout(SOAK + 300)
async def test_slow_viewers_lose_frames_others_keep_full_rate(
    tmp_path: Path, loop_name: str
) -> None:
    data = {
        "rtsp": {"rtp_port": 0},
        "egress": {"high_water": "64K", "stall_timeout": STALL},
        "channels": [{"name": "lobby", "source": SOURCE}],
    }
    honest: list[RtspViewer] = []
    mjpeg: list[MjpegViewer] = []
    probes: list[Probe] = []
    samples = Samples()
    started = time.monotonic()
    async with gateway_process(tmp_path, data, loop_name) as gw:
        http_port: int = getattr(gw, "port")  # noqa: B009 - set by gateway_process
        base = f"http://127.0.0.1:{http_port}"
        rtsp_port = int((await get_json(f"{base}/api/v1/config"))["server"]["rtsp_port"])
        url = f"rtsp://127.0.0.1:{rtsp_port}/lobby"

        async def source_frames() -> float:
            text = (await get_text(f"{base}/metrics"))[1]
            return metric(text, "coaxgate_source_frames_total", channel="lobby")

        for _ in range(100):
            if await source_frames() >= FPS:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        fds_idle, rss_idle = open_fds(gw.pid), rss_kib(gw.pid)

        stop = asyncio.Event()

        async def churn(kind: str, rate: float) -> None:
            while not stop.is_set():
                probes.append(await misbehave(base, rtsp_port, kind, rate))

        async def sample() -> None:
            while True:
                samples.rss.append(rss_kib(gw.pid))
                samples.fds.append(open_fds(gw.pid))
                await asyncio.sleep(SAMPLE_EVERY)

        tasks: list[asyncio.Task[None]] = []
        try:
            for _ in range(HONEST_RTSP):
                viewer = RtspViewer()
                await connect(rtsp_port, viewer)
                await viewer.play(url)
                honest.append(viewer)
            for _ in range(HONEST_MJPEG):
                m = MjpegViewer()
                await connect(http_port, m)
                mjpeg.append(m)

            # The stream's byte rate on the wire, as an honest viewer sees it.
            b0, t0 = honest[0].bytes, time.monotonic()
            await asyncio.sleep(4.0)
            byte_rate = (honest[0].bytes - b0) / (time.monotonic() - t0)
            tasks += [
                asyncio.create_task(churn("slow", byte_rate / 10)),
                asyncio.create_task(churn("stopped", 0.0)),
            ]
            await asyncio.sleep(WARMUP)

            # The measured window.
            src0, w0 = await source_frames(), time.monotonic()
            honest0 = [v.frames for v in honest]
            mjpeg0 = [m.frames for m in mjpeg]
            tasks.append(asyncio.create_task(sample()))
            await asyncio.sleep(SOAK)
            src1, w1 = await source_frames(), time.monotonic()
            honest_frames = [v.frames - f for v, f in zip(honest, honest0, strict=True)]
            mjpeg_frames = [m.frames - f for m, f in zip(mjpeg, mjpeg0, strict=True)]
            sessions = await sessions_by_port(base)
            still_connected = sum(v.connected for v in honest)
            samples.rss.append(rss_kib(gw.pid))
            # Let the misbehaving viewers under way be cut off rather than leave.
            stop.set()
            churners = tasks[:2]
            async with asyncio.timeout(150):
                await asyncio.gather(*churners)
            metrics = (await get_text(f"{base}/metrics"))[1]
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for v in honest:
                v.close()
            for m in mjpeg:
                m.close()

        for _ in range(75):
            if not (await get_json(f"{base}/api/v1/sessions"))["sessions"]:
                break
            await asyncio.sleep(0.2)
        fds_after = open_fds(gw.pid)
        for _ in range(50):
            if fds_after <= fds_idle:
                break
            await asyncio.sleep(0.2)
            fds_after = open_fds(gw.pid)
        log = gw.log()

    window, produced, rss = w1 - w0, src1 - src0, samples.rss
    slow = [p for p in probes if p.kind == "slow"]
    stopped = [p for p in probes if p.kind == "stopped"]
    report = {
        "window_s": round(window, 1),
        "source_fps": round(produced / window, 2),
        "honest_rtsp_fps": (
            round(min(honest_frames) / window, 2),
            round(max(honest_frames) / window, 2),
        ),
        "honest_seq_gaps": sum(v.seq_gaps for v in honest),
        "honest_ts_skips": sum(v.ts_skips for v in honest),
        "honest_dropped_by_gateway": sum(sessions[v.local_port]["frames_dropped"] for v in honest),
        "mjpeg_fps": [round(f / window, 2) for f in mjpeg_frames],
        "stream_Bps": round(byte_rate),
        "slow_Bps": round(byte_rate / 10),
        "slow_probes": len(slow),
        "stopped_probes": len(stopped),
        "stall_to_cut_s": (
            round(min(p.stall_to_cut for p in probes), 2),
            round(max(p.stall_to_cut for p in probes), 2),
        ),
        "first_slow": slow[0].summary(),
        "first_stopped": stopped[0].summary(),
        "slow_viewer_drops_total": metric(
            metrics,
            "coaxgate_frames_dropped_total",
            channel="lobby",
            protocol="rtsp_tcp",
            reason="slow_viewer",
        ),
        "rss_idle_kib": rss_idle,
        "rss_window_kib": (min(rss), max(rss), rss[0], rss[-1]),
        "fds": {"idle": fds_idle, "loaded": (min(samples.fds), max(samples.fds))},
        "fds_after": fds_after,
        "run_s": round(time.monotonic() - started, 1),
    }
    print("\nbackpressure soak:", report)

    # Every honest viewer got every frame the source produced, in order, whole.
    assert abs(produced / window - FPS) < FPS * 0.03, report
    for v, got in zip(honest, honest_frames, strict=True):
        assert abs(got - produced) <= max(3, produced * 0.005), (got, produced, report)
        assert v.seq_gaps == 0 and v.foreign == 0, report
        assert sessions[v.local_port]["frames_dropped"] == 0, sessions[v.local_port]
    assert still_connected == HONEST_RTSP, report
    for m, got in zip(mjpeg, mjpeg_frames, strict=True):
        assert m.errors == 0
        assert abs(got - produced) <= max(3, produced * 0.005), (got, produced, report)
        assert sessions[m.local_port]["frames_dropped"] == 0, sessions[m.local_port]

    # Each misbehaving viewer lost whole frames, was cut off a stall time after it
    # started to lose them, and what it did receive was whole frames in order.
    # (The slow one is cut off only because nothing reaches it for the stall time:
    # Linux wakes a writer once a third of the autotuned 4 MB send buffer is free,
    # some 30 s at its rate. With a small SO_SNDBUF, frames would trickle through,
    # each restarting the stall clock, and it would never be cut off.)
    assert len(slow) >= 2 and len(stopped) >= 2, report
    for p in probes:
        v = p.viewer
        assert p.first_drop is not None and p.gone is not None and p.closed is not None
        # The first drop is seen up to one poll late, the disconnection one poll late too.
        assert STALL - POLL - 0.1 < p.stall_to_cut < STALL + 1.5, p.summary()
        assert set(p.dropped) == {"slow_viewer"} and p.dropped["slow_viewer"] >= 1, p.summary()
        assert v.seq_gaps == 0 and v.foreign == 0, p.summary()
        assert v.depacketizer is not None and v.jpegs == v.frames >= 2, p.summary()
        assert v.depacketizer.dropped == dict.fromkeys(v.depacketizer.dropped, 0), p.summary()
    for p in slow:
        # It read at about a tenth of the stream's rate all along (the bucket allows a burst).
        assert p.gone is not None
        assert p.received_by_cut / (p.gone - p.viewer.played_at) < byte_rate / 10 * 1.5
    for p in (slow[0], slow[-1], stopped[0]):
        for frame in p.viewer.kept:
            assert decode_jpeg(frame) == (352, 288)
    total = report["slow_viewer_drops_total"]
    assert total >= sum(p.dropped["slow_viewer"] for p in probes), report
    assert log.count("stalled for 3 s; disconnecting") >= len(probes), report

    # Memory stays flat under load, and every descriptor comes back.
    assert max(rss) <= min(rss) * 1.10, report
    assert fds_after <= fds_idle, report


@pytest.mark.loops("uvloop")
async def test_a_stopped_viewer_is_sent_little_more_than_high_water(loop_name: str) -> None:
    """What a viewer that stops reading is sent before it loses frames: the high-water
    mark and the kernel's fixed send buffer ([egress] socket_buffer, which Linux
    doubles), not the seconds of video its autotuning would let pile up."""
    high_water, socket_buffer = 64 * 1024, 128 * 1024
    allowance = 2 * socket_buffer + 128 * 1024
    gw = Gateway(
        config.parse(
            {
                "server": {"host": "127.0.0.1", "http_port": free_port(), "rtsp_port": free_port()},
                "rtsp": {"rtp_port": 0},
                "egress": {
                    "high_water": high_water,
                    "stall_timeout": 30.0,
                    "socket_buffer": socket_buffer,
                },
                "channels": [{"name": "lobby", "source": SOURCE}],
            }
        )
    )
    await gw.start()
    viewer = RtspViewer()
    try:
        await until(lambda: gw.channels["lobby"].frames_in >= FPS, 20)
        await connect(gw.rtsp_port, viewer, rcvbuf=4096)
        await viewer.play(f"rtsp://127.0.0.1:{gw.rtsp_port}/lobby")
        await until(lambda: viewer.frames >= 2, 10)
        assert viewer.transport is not None
        viewer.transport.pause_reading()
        (session,) = list(gw.sessions)
        await until(lambda: session.dropped["slow_viewer"] > 0, 30)
        assert session.bytes_sent < high_water + allowance, (
            f"{session.bytes_sent} bytes ({session.frames_sent} frames, "
            f"{session.frames_sent / FPS:.1f} s of video) sent before the first drop"
        )
    finally:
        viewer.close()
        await gw.stop()
