"""DSCP marking on the wire, per traffic class.

The codepoints of the test config are none of the defaults, and differ from
each other, so no check here can pass on an unmarked or wrongly marked socket.
UDP receivers read the TOS byte (IP_RECVTOS / IPV6_RECVTCLASS) of RTP, RTCP and
multicast packets; a tshark capture reads the DSCP of the gateway's TCP data
segments (RTSP interleaved, MJPEG, the RTSP-over-HTTP tunnel, API, metrics,
snapshots, the viewer page) and of its WebRTC media. Audio and event have no
traffic source yet: config parsing, the API and real sockets cover them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import select
import signal
import socket
import sys
import time
from base64 import b64encode
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway import config
from gateway.app import Gateway
from gateway.config import ConfigError
from gateway.net.dscp import DscpMarker

from .netns import NetnsPair, gateway_in, require_netns, run_in
from .rtsp_client import RtspClient
from .support import require_peer

# Defaults are video 34, audio 46, event 26, management 16: use none of them.
VIDEO, AUDIO, EVENT, MANAGEMENT = 40, 44, 20, 12
EXPECTED = {"video": VIDEO, "audio": AUDIO, "event": EVENT, "management": MANAGEMENT}
# As a config file may spell them: integers, a hex string, a decimal string.
QOS: dict[str, Any] = {"video": VIDEO, "audio": "0x2c", "event": " 20 ", "management": MANAGEMENT}
SOURCE = "emulator:1?resolution=176x144&fps=25"


# -- helpers -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running(host: str = "127.0.0.1", **extra: dict[str, Any]) -> AsyncIterator[Gateway]:
    """An in-process gateway with the test codepoints and one emulated channel, cam1."""
    data: dict[str, Any] = {
        "server": {"host": host, "http_port": 0, "rtsp_port": 0},
        "rtsp": {"rtp_port": 0, "sender_report_interval": 0.5},
        "qos": QOS,
        "channels": [{"name": "cam1", "source": SOURCE}],
        **extra,
    }
    gw = Gateway(config.parse(data))
    await gw.start()
    try:
        for _ in range(200):
            if gw.channels["cam1"].frames_in > 2:
                break
            await asyncio.sleep(0.05)
        yield gw
    finally:
        await gw.stop()


def ipv6_loopback() -> bool:
    """Whether ::1 can be bound here."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def tos_of(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    """The TOS byte (IPv4) or traffic class (IPv6) in a datagram's ancillary data."""
    for level, kind, value in ancillary:
        if level == socket.IPPROTO_IP and kind == socket.IP_TOS:
            return value[0]
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_TCLASS:
            return int.from_bytes(value[:4], sys.byteorder)
    return None


def tos_receiver(family: socket.AddressFamily, host: str, port: int) -> socket.socket:
    """A UDP socket bound to (host, port) that reports each datagram's TOS / traffic class."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
    except OSError:
        sock.close()
        raise
    return sock


def port_pair(family: socket.AddressFamily, host: str) -> tuple[socket.socket, socket.socket]:
    """An RTP receiver on an even port and an RTCP receiver on the next one."""
    for _ in range(100):
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
        if port % 2 or port > 65000:
            continue
        try:
            rtp = tos_receiver(family, host, port)
        except OSError:
            continue
        try:
            return rtp, tos_receiver(family, host, port + 1)
        except OSError:
            rtp.close()
    raise RuntimeError("no free UDP port pair")


def collect_tos(
    socks: list[socket.socket], seconds: float, enough: list[int]
) -> list[list[tuple[int | None, int, bytes]]]:
    """(TOS, source port, payload) of the datagrams on each socket, until each has `enough`.

    Blocking: run it in a thread while the event loop serves.
    """
    got: list[list[tuple[int | None, int, bytes]]] = [[] for _ in socks]
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if all(len(g) >= n for g, n in zip(got, enough, strict=True)):
            break
        for sock in select.select(socks, [], [], left)[0]:
            data, anc, _, source = sock.recvmsg(65536, 256)
            got[socks.index(sock)].append((tos_of(anc), source[1], data))
    return got


async def rtsp_play(c: RtspClient, url: str, transport: str) -> str:
    """DESCRIBE, SETUP with `transport`, PLAY; returns the SETUP response's Transport."""
    desc = await c.request("DESCRIBE", url, {"Accept": "application/sdp"})
    assert desc.status == 200, desc
    control = next(
        line[len("a=control:") :]
        for line in desc.body.decode().splitlines()
        if line.startswith("a=control:") and "trackID" in line
    )
    if "://" not in control:
        control = (desc.headers.get("Content-Base") or url + "/") + control
    setup = await c.request("SETUP", control, {"Transport": transport})
    assert setup.status == 200, setup
    c.session = (setup.headers.get("Session") or "").split(";")[0]
    play = await c.request("PLAY", url, {"Range": "npt=0.000-"})
    assert play.status == 200, play
    return setup.headers.get("Transport") or ""


CANARY_PORT = 9  # discard: the datagrams that tell a capture has started
CANARY = f"udp and dst host 127.0.0.1 and dst port {CANARY_PORT}"
CANARY_SENDER = f"""
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(400):
    s.sendto(b"canary", ("127.0.0.1", {CANARY_PORT}))
    time.sleep(0.05)
"""


class Capture:
    """tshark printing fields of the packets it sees, live.

    "Capturing on" is printed before the capture filter sees packets: the
    capture counts as started when a canary datagram (UDP to 127.0.0.1:9, sent
    from the same namespace) comes through.
    """

    def __init__(
        self, tshark: str, iface: str, bpf: str, fields: list[str], ns: str | None = None
    ) -> None:
        argv = [tshark, "-n", "-l", "-i", iface, "-f", f"({bpf}) or ({CANARY})"]
        argv += ["-o", "tcp.desegment_tcp_streams:FALSE", "-T", "fields", "-e", "udp.dstport"]
        for name in fields:
            argv += ["-e", name]
        self.ns = ns
        self.argv = NetnsPair.run_in(ns, *argv) if ns else argv
        self.proc: asyncio.subprocess.Process | None = None
        self.rows: list[list[str]] = []
        self.stderr = ""
        self._started = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Capture:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        self._tasks = [asyncio.create_task(self._out()), asyncio.create_task(self._err())]
        canary = [sys.executable, "-c", CANARY_SENDER]
        sender = await asyncio.create_subprocess_exec(
            *(NetnsPair.run_in(self.ns, *canary) if self.ns else canary)
        )
        try:
            async with asyncio.timeout(20):
                await self._started.wait()
        except TimeoutError:
            await self.stop()
            pytest.fail(f"tshark did not start capturing: {self.stderr}")
        finally:
            sender.kill()
            await sender.wait()
        return self

    async def _out(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            row = line.decode(errors="replace").rstrip("\n").split("\t")
            if row[0] == str(CANARY_PORT):
                self._started.set()
            elif self._started.is_set():
                self.rows.append(row[1:])

    async def _err(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.stderr += line.decode(errors="replace")

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop capturing; every packet seen so far is in `rows`."""
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None:
            await asyncio.sleep(0.3)  # the last segments reach the capture
            proc.send_signal(signal.SIGINT)
            try:
                async with asyncio.timeout(15):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await asyncio.gather(*self._tasks)


async def http_exchange(port: int, path: str, stream_for: float = 0.0) -> tuple[int, bytes]:
    """One HTTP/1.1 GET on its own connection: (the client's port, what came back).

    A stream is read for `stream_for` seconds, then the connection is closed.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    local = writer.get_extra_info("sockname")[1]
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    data = b""
    try:
        async with asyncio.timeout(stream_for or 10):
            while chunk := await reader.read(65536):
                data += chunk
    except TimeoutError:
        assert stream_for, f"{path}: no end of response"
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return local, data


def phases(dscps: list[int], first: int, then: int) -> tuple[int, int]:
    """Check `dscps` is `first`* then `then`* (a mark that changes once, never back).

    Returns how many segments carry each.
    """
    assert set(dscps) <= {first, then}, dscps
    switch = dscps.index(then) if then in dscps else len(dscps)
    assert all(d == then for d in dscps[switch:]), dscps
    return switch, len(dscps) - switch


# -- config, API and the marker on real sockets (every class, audio and event included) ----


def test_codepoints_parse_as_integers_or_strings() -> None:
    assert config.parse({}).qos.codepoints() == {
        "video": 34,
        "audio": 46,
        "event": 26,
        "management": 16,
    }
    assert config.parse({"qos": QOS}).qos.codepoints() == EXPECTED
    spellings = {"0x22": 34, "0X2E": 46, "34": 34, " 0x0a ": 10, 0: 0, 63: 63, "0x3f": 63}
    for value, want in spellings.items():
        assert config.parse({"qos": {"video": value}}).qos.video == want, value
    for name in EXPECTED:
        for bad in (64, -1, "64", "0x40", "AF41", "", "0x", True, 34.0, [34]):
            with pytest.raises(ConfigError) as e:
                config.parse({"qos": {name: bad}})
            assert e.value.key == f"qos.{name}", bad
            assert "DSCP 0-63" in e.value.reason, bad
    with pytest.raises(ConfigError) as e:
        config.parse({"qos": {"bulk": 8}})
    assert e.value.key == "qos.bulk"


async def test_api_reports_codepoints_in_decimal(loop_name: str) -> None:
    async with running() as gw:
        _, raw = await http_exchange(gw.http_port, "/api/v1/config")
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert json.loads(body)["qos"] == EXPECTED
        assert gw.dscp.codepoints == EXPECTED


def test_marker_sets_every_class_on_real_sockets() -> None:
    marker = DscpMarker(config.parse({"qos": QOS}).qos.codepoints())
    families = [socket.AF_INET] + ([socket.AF_INET6] if ipv6_loopback() else [])
    for family in families:
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            for traffic, dscp in EXPECTED.items():
                with socket.socket(family, kind) as sock:
                    assert marker.mark(sock, traffic), (family, kind, traffic)
                    if family == socket.AF_INET6:
                        tclass = sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS)
                        assert tclass == dscp << 2, (kind, traffic, tclass)
                    # A dual-stack socket's IPv4 path is marked too.
                    tos = sock.getsockopt(socket.IPPROTO_IP, socket.IP_TOS)
                    assert tos == dscp << 2, (family, kind, traffic, tos)
                    assert tos >> 2 == dscp and tos & 3 == 0, "DSCP in the top six bits"
    assert marker.failures == 0
    assert not marker.mark(None, "video")
    assert not marker.mark_transport(None, "video")
    for bad in ({"video": 64}, {"video": -1}, {"bulk": 8}):
        with pytest.raises(ValueError):
            DscpMarker(bad)


async def test_marker_reaches_the_socket_under_each_loops_transports(loop_name: str) -> None:
    """uvloop hands out pseudo-sockets, asyncio real ones: both must take the mark."""
    marker = DscpMarker(EXPECTED)
    loop = asyncio.get_running_loop()
    udp, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for traffic, dscp in EXPECTED.items():
            for transport in (udp, writer.transport):
                assert marker.mark_transport(transport, traffic)
                sock = transport.get_extra_info("socket")
                assert sock.getsockopt(socket.IPPROTO_IP, socket.IP_TOS) == dscp << 2
        assert marker.failures == 0
    finally:
        udp.close()
        writer.close()
        server.close()
        await server.wait_closed()


class _Refusing:
    """A socket whose OS refuses every option (as a sandbox or a policy can)."""

    def __init__(self, family: socket.AddressFamily, refuse: set[int]) -> None:
        self.family = family
        self.refuse = refuse
        self.set: list[tuple[int, int, int]] = []

    def setsockopt(self, level: int, option: int, value: int) -> None:
        if level in self.refuse:
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))
        self.set.append((level, option, value))


def test_a_refused_mark_is_logged_once_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    marker = DscpMarker(EXPECTED)
    caplog.set_level(logging.WARNING, logger="gateway.net.dscp")
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.close()
    for _ in range(3):
        assert not marker.mark(closed, "audio")
    assert marker.failures == 3
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "audio" in message and str(AUDIO) in message and "sending unmarked" in message
    assert os.strerror(errno.EBADF) in message, "the reason is logged"
    # Another class, or another reason, is news: logged once more each.
    assert not marker.mark(closed, "event")
    assert not marker.mark(closed, "event")
    assert not marker.mark(_Refusing(socket.AF_INET, {socket.IPPROTO_IP}), "event")
    assert marker.failures == 6
    assert len(caplog.records) == 3, [r.getMessage() for r in caplog.records]
    assert str(EVENT) in caplog.records[1].getMessage()
    assert os.strerror(errno.EPERM) in caplog.records[2].getMessage()
    # An IPv6 socket whose IPv4 path refuses IP_TOS is still marked (traffic class).
    v6only = _Refusing(socket.AF_INET6, {socket.IPPROTO_IP})
    assert marker.mark(v6only, "management")
    assert v6only.set == [(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, MANAGEMENT << 2)]
    assert marker.failures == 6 and len(caplog.records) == 3
    # A socket that is not IP has no DSCP: left alone, without raising.
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as unix:
        assert not marker.mark(unix, "video")
    assert marker.failures == 6 and len(caplog.records) == 3


# -- UDP: RTP and RTCP from the server's port pair, IPv4 and IPv6 --------------------------


async def _udp_session(family: socket.AddressFamily, host: str) -> None:
    async with running(host) as gw:
        rtp, rtcp = port_pair(family, host)
        name = f"[{host}]" if family == socket.AF_INET6 else host
        c = RtspClient(host, gw.rtsp_port)
        await c.connect()
        try:
            a, b = rtp.getsockname()[1], rtcp.getsockname()[1]
            answer = await rtsp_play(
                c, f"rtsp://{name}:{gw.rtsp_port}/cam1", f"RTP/AVP;unicast;client_port={a}-{b}"
            )
            got = await asyncio.to_thread(collect_tos, [rtp, rtcp], 10.0, [25, 2])
        finally:
            await c.close()
            rtp.close()
            rtcp.close()
        assert f"server_port={gw.rtsp.sockets.ports[0]}-{gw.rtsp.sockets.ports[1]}" in answer
        media, reports = got
        assert len(media) >= 25, f"{len(media)} RTP packets"
        assert len(reports) >= 2, f"{len(reports)} RTCP packets"
        assert {port for _, port, _ in media} == {gw.rtsp.sockets.ports[0]}
        assert {port for _, port, _ in reports} == {gw.rtsp.sockets.ports[1]}
        assert all(data[1] == 200 for _, _, data in reports), "RTCP sender reports"
        assert {tos for tos, _, _ in media} == {VIDEO << 2}, "RTP carries the video DSCP"
        assert {tos for tos, _, _ in reports} == {VIDEO << 2}, "RTCP carries the video DSCP"
        assert gw.dscp.failures == 0


async def test_udp_rtp_and_rtcp_carry_video_ipv4(loop_name: str) -> None:
    await _udp_session(socket.AF_INET, "127.0.0.1")


async def test_udp_rtp_and_rtcp_carry_video_ipv6(loop_name: str) -> None:
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    await _udp_session(socket.AF_INET6, "::1")


# -- TCP: one capture of every kind of connection the gateway serves ----------------------


async def test_tcp_segments_carry_their_class(loop_name: str) -> None:
    tshark = require_peer("tshark")
    async with running() as gw:
        http, rtsp = gw.http_port, gw.rtsp_port
        bpf = f"tcp and (src port {http} or src port {rtsp})"
        fields = ["tcp.dstport", "tcp.len", "ip.dsfield.dscp"]
        classes: dict[int, str] = {}  # the client's port -> what its connection is
        async with Capture(tshark, "lo", bpf, fields) as capture:
            for path in (
                "/api/v1/config",
                "/api/v1/channels",
                "/metrics",
                "/",
                "/channels/cam1/snapshot.jpg",
                "/axis-cgi/jpg/image.cgi?camera=1",
            ):
                port, data = await http_exchange(http, path)
                assert data.startswith(b"HTTP/1.1 200"), (path, data[:200])
                classes[port] = path
            # The streams run side by side, each on its own connection.
            mjpeg = asyncio.create_task(http_exchange(http, "/channels/cam1/mjpeg", 1.5))
            vapix = asyncio.create_task(
                http_exchange(http, "/axis-cgi/mjpg/video.cgi?camera=1", 1.5)
            )
            interleaved = RtspClient("127.0.0.1", rtsp)
            await interleaved.connect()
            p3, p4 = await asyncio.gather(
                rtsp_interleaved(interleaved, rtsp), rtsp_tunnel(http, rtsp)
            )
            (p1, d1), (p2, d2) = await mjpeg, await vapix
            for data in (d1, d2):
                assert data.startswith(b"HTTP/1.1 200") and data.count(b"\xff\xd8") >= 5
            classes[p1], classes[p2] = "mjpeg", "vapix mjpeg"
            classes[p3], classes[p4] = "rtsp interleaved", "rtsp tunnel"
        assert gw.dscp.failures == 0
    rows = [row for row in capture.rows if row[1] and int(row[1]) > 0]
    per_conn: dict[int, list[tuple[int, int]]] = {}
    for dst, length, dscp in rows:
        per_conn.setdefault(int(dst), []).append((int(length), int(dscp)))
    missing = {what for port, what in classes.items() if port not in per_conn}
    assert not missing, f"nothing captured for {missing}: {capture.stderr}"
    for port, what in classes.items():
        dscps = [d for _, d in per_conn[port]]
        if what.startswith("/"):
            assert set(dscps) == {MANAGEMENT}, (what, dscps)
        elif what in ("mjpeg", "vapix mjpeg"):
            # Marked before the response header goes: all of it is video.
            assert set(dscps) == {VIDEO} and len(dscps) >= 5, (what, dscps)
            video_bytes = sum(n for n, d in per_conn[port] if d == VIDEO)
            assert video_bytes > 0.9 * sum(n for n, _ in per_conn[port]), (what, per_conn[port])
        elif what == "rtsp interleaved":
            # OPTIONS and DESCRIBE answers are management; from SETUP on, video.
            before, after = phases(dscps, MANAGEMENT, VIDEO)
            assert 2 <= before <= 3 and after >= 10, (what, dscps)
        else:
            # The tunnel's GET leg, header included, and every RTSP answer on it: video.
            assert set(dscps) == {VIDEO} and len(dscps) >= 2, (what, dscps)


async def rtsp_interleaved(c: RtspClient, rtsp_port: int) -> int:
    """OPTIONS, DESCRIBE, SETUP over TCP, PLAY for a second: the client's port."""
    try:
        port = int(c.writer.get_extra_info("sockname")[1])
        url = f"rtsp://127.0.0.1:{rtsp_port}/cam1"
        assert (await c.request("OPTIONS", url)).status == 200
        await rtsp_play(c, url, "RTP/AVP/TCP;unicast;interleaved=0-1")
        await asyncio.sleep(1.5)
        assert len(c.media.packets) >= 10, len(c.media.packets)
        return port
    finally:
        await c.close()


async def rtsp_tunnel(http_port: int, rtsp_port: int) -> int:
    """An RTSP-over-HTTP tunnel (no media): OPTIONS and DESCRIBE; the GET leg's client port."""
    cookie = f"dscp{os.getpid()}"
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    port = int(writer.get_extra_info("sockname")[1])
    writer.write(
        f"GET /cam1 HTTP/1.0\r\nx-sessioncookie: {cookie}\r\n"
        "Accept: application/x-rtsp-tunnelled\r\n\r\n".encode()
    )
    _, post = await asyncio.open_connection("127.0.0.1", http_port)
    try:
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200"), head
            post.write(
                f"POST /cam1 HTTP/1.0\r\nx-sessioncookie: {cookie}\r\n"
                "Content-Type: application/x-rtsp-tunnelled\r\n"
                "Content-Length: 32767\r\n\r\n".encode()
            )
            url = f"rtsp://127.0.0.1:{rtsp_port}/cam1"
            for cseq, method in ((1, "OPTIONS"), (2, "DESCRIBE")):
                request = f"{method} {url} RTSP/1.0\r\nCSeq: {cseq}\r\n\r\n".encode()
                post.write(b64encode(request))
                answer = await reader.readuntil(f"CSeq: {cseq}\r\n".encode())
                assert b"RTSP/1.0 200" in answer, answer
                await asyncio.sleep(0.2)  # one answer, one segment
        return port
    finally:
        for w in (post, writer):
            w.close()
            with contextlib.suppress(ConnectionError):
                await w.wait_closed()


# -- multicast, across a network boundary ----------------------------------------------------

GROUP, GROUP_PORT = "239.255.42.9", 5004


@pytest.fixture
def nets() -> Iterator[NetnsPair]:
    require_netns()
    with NetnsPair() as pair:
        yield pair


@pytest.mark.loops("uvloop")
async def test_multicast_rtp_and_rtcp_carry_video(
    nets: NetnsPair, tmp_path: Path, loop_name: str
) -> None:
    data: dict[str, Any] = {
        "server": {"host": "0.0.0.0", "http_port": 8080, "rtsp_port": 8554},
        "rtsp": {"rtp_port": 0, "sender_report_interval": 0.5},
        "qos": QOS,
        "channels": [
            {
                "name": "lobby",
                "source": SOURCE,
                "multicast": {
                    "group": GROUP,
                    "port": GROUP_PORT,
                    "ttl": 4,
                    "interface": nets.gw_ip,
                    "always_on": True,
                },
            }
        ],
    }
    async with gateway_in(nets, tmp_path, data, ["lobby"]):
        rc, out = await run_in(
            nets.python(
                nets.viewer,
                "tests/mcast_receiver.py",
                GROUP,
                str(GROUP_PORT),
                "2.5",
                nets.viewer_ip,
            )
        )
    assert rc == 0, out
    got = json.loads(out.strip().splitlines()[-1])
    assert got["frames"] >= 25, got
    assert got["sources"] == [nets.gw_ip], got
    assert got["dscps"] == [VIDEO], "multicast RTP carries the video DSCP"
    assert got["rtcp_packets"] >= 1, got
    assert got["rtcp_dscps"] == [VIDEO], "multicast RTCP carries the video DSCP"


# -- WebRTC media, captured on the gateway's side of the link ----------------------------------


@pytest.mark.loops("uvloop")
async def test_webrtc_media_carries_video(nets: NetnsPair, tmp_path: Path, loop_name: str) -> None:
    tshark = require_peer("tshark")
    data: dict[str, Any] = {
        "server": {"host": "0.0.0.0", "http_port": 8080, "rtsp_port": 8554},
        "rtsp": {"rtp_port": 0},
        "qos": QOS,
        "webrtc": {"udp_ports": "41000-41009", "connect_timeout": 2.0},
        "channels": [{"name": "lobby", "source": SOURCE}],
    }
    async with gateway_in(nets, tmp_path, data, ["lobby"]):
        bpf = f"udp and src host {nets.gw_ip} and src portrange 41000-41009"
        fields = ["udp.srcport", "udp.length", "ip.dsfield.dscp"]
        async with Capture(tshark, "any", bpf, fields, ns=nets.gw) as capture:
            rc, out = await run_in(
                nets.python(
                    nets.viewer,
                    "tests/whep_client.py",
                    f"http://{nets.gw_ip}:8080/channels/lobby/whep",
                    "--peers",
                    "1",
                    "--seconds",
                    "2.5",
                )
            )
            assert rc == 0, out
            (peer,) = json.loads(out.splitlines()[0])["peers"]
            assert peer["frames"] >= 25, peer
    rows = capture.rows
    assert rows, "nothing captured from the gateway's WebRTC ports"
    dscps = {int(row[2]) for row in rows}
    assert dscps == {VIDEO}, f"WebRTC datagrams carry DSCP {dscps}"
    # Most of them are media (SRTP), not just ICE checks and the DTLS handshake.
    big = [row for row in rows if int(row[1]) > 500]
    assert len(big) >= 25, f"{len(big)} large datagrams of {len(rows)}"
