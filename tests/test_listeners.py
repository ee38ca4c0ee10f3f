"""The door of every listener: IP filter, connection caps, the first-head deadline.

Against the running gateway on loopback, with client sockets bound to other
127.0.0.0/8 addresses to play other hosts: refused connections get no byte
back and are counted, honest viewers keep their frames while half-open and
slow-header connections are cut off, and the gateway's descriptors come back
to where they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import resource
import socket
import ssl
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway import config
from gateway.app import Gateway
from gateway.net.gatekeeper import Gatekeeper, IpFilter, RefusalLog, peer_address
from gateway.security import tls

from .rtsp_client import RtspClient
from .support import (
    gateway_process,
    gateway_running,
    get_text,
    metric,
    open_fds,
    read_mjpeg,
)

HTTP_GET = b"GET /api/v1/channels HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
RTSP_OPTIONS = b"OPTIONS rtsp://127.0.0.1/cam1 RTSP/1.0\r\nCSeq: 1\r\n\r\n"


# -- units -------------------------------------------------------------------------------


def test_ip_filter() -> None:
    f = IpFilter(allow=["127.0.0.0/30", "2001:db8::/32"], deny=["127.0.0.2"])
    ip = ipaddress.ip_address
    assert f.permits(ip("127.0.0.1")) and f.permits(ip("127.0.0.3"))
    assert not f.permits(ip("127.0.0.2"))  # deny wins
    assert not f.permits(ip("127.0.0.4")) and not f.permits(ip("10.0.0.1"))
    assert f.permits(ip("2001:db8::1")) and not f.permits(ip("::1"))
    assert not f.permits(None)  # with an allow list, only known addresses get in
    deny_only = IpFilter(deny=["::1", "::ffff:10.0.0.0/104"])  # mapped ranges compare as IPv4
    assert not deny_only.permits(ip("::1")) and deny_only.permits(ip("::2"))
    assert not deny_only.permits(ip("10.1.2.3")) and deny_only.permits(ip("11.0.0.1"))
    assert deny_only.permits(None)
    assert IpFilter().permits(ip("192.0.2.1")) and not IpFilter().active


def test_peer_address_normalizes_mapped_ipv6() -> None:
    assert peer_address(("::ffff:127.0.0.2", 80, 0, 0)) == ipaddress.IPv4Address("127.0.0.2")
    assert peer_address(("::1", 80, 0, 0)) == ipaddress.IPv6Address("::1")
    assert peer_address(("10.0.0.1", 80)) == ipaddress.IPv4Address("10.0.0.1")
    assert peer_address(None) is None and peer_address("/tmp/sock") is None


def test_refusal_log_is_bounded() -> None:
    now = [0.0]
    rlog = RefusalLog(interval=60.0, capacity=3, clock=lambda: now[0])
    assert rlog.should_log("a") and not rlog.should_log("a")
    assert rlog.should_log("b") and rlog.should_log("c")
    assert not rlog.should_log("d") and rlog.suppressed == 1  # full: not logged, counted
    assert len(rlog) == 3
    now[0] = 61.0
    assert rlog.should_log("a") and rlog.should_log("d")  # a minute later: again
    assert len(rlog) == 2
    for i in range(10_000):
        rlog.should_log(str(i))
    assert len(rlog) <= 3


class _BufferedEcho(asyncio.BufferedProtocol):
    """A BufferedProtocol that echoes what lands in its buffer."""

    def __init__(self) -> None:
        self.buffer = bytearray(7)  # small: reads take several buffers
        self.transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        assert self.transport is not None
        self.transport.write(bytes(self.buffer[:nbytes]))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


async def test_buffered_protocol_pass_through(loop_name: str) -> None:
    cfg = config.parse({"server": {"header_timeout": 0.5}})
    keeper = Gatekeeper(cfg.server, cfg.ip_filter)
    made: list[_BufferedEcho] = []

    def factory() -> _BufferedEcho:
        made.append(_BufferedEcho())
        return made[-1]

    loop = asyncio.get_running_loop()
    server = await loop.create_server(keeper.wrap(factory, "echo"), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        message = b"HELLO / X\r\nA: b\r\n\r\nand a body after the head"
        writer.write(message[:5])
        await asyncio.sleep(0.05)
        writer.write(message[5:])
        assert await asyncio.wait_for(reader.readexactly(len(message)), 5) == message
        await asyncio.sleep(0.7)  # past the deadline: the head was in, the connection stays
        writer.write(b"more")
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"more"
        assert keeper.open["echo"] == 1
        writer.close()
        # A connection that never ends its head is cut at the deadline.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"HELLO / X\r\n")
        assert await asyncio.wait_for(reader.readexactly(11), 5) == b"HELLO / X\r\n"
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        for _ in range(50):
            if keeper.open["echo"] == 0:
                break
            await asyncio.sleep(0.02)
        assert keeper.open["echo"] == 0 and keeper.total == 0
        assert keeper.refused[("echo", "header_timeout")] == 1
        assert all(p.lost for p in made)
    finally:
        server.close()


# -- against the gateway -------------------------------------------------------------------


async def exchange(
    port: int,
    source: str = "127.0.0.1",
    send: bytes = b"",
    *,
    host: str = "127.0.0.1",
    until: bytes | None = None,
    timeout: float = 5.0,
) -> bytes:
    """Connect from `source`, send, and return what comes back until close (or `until`)."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    got = b""
    try:
        sock.bind((source, 0))
        await loop.sock_connect(sock, (host, port))
        if send:
            with contextlib.suppress(ConnectionError):
                await loop.sock_sendall(sock, send)
        async with asyncio.timeout(timeout):
            while until is None or until not in got:
                try:
                    chunk = await loop.sock_recv(sock, 65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                got += chunk
    finally:
        sock.close()
    return got


def client_hello() -> bytes:
    """The first flight of a TLS client, to send on a raw socket."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def tls_section(tmp_path: Path) -> dict[str, Any]:
    """A [tls] table with a fresh self-signed pair, on any free ports."""
    cert, key = tls.self_signed()
    (tmp_path / "cert.pem").write_bytes(cert)
    tls.write_private(tmp_path / "key.pem", key, force=True)
    return {
        "cert": str(tmp_path / "cert.pem"),
        "key": str(tmp_path / "key.pem"),
        "https_port": 0,
        "rtsps_port": 0,
    }


async def test_allow_list_refuses_before_parsing(loop_name: str, tmp_path: Path) -> None:
    data = {"ip_filter": {"allow": ["127.0.0.1/32"]}, "tls": tls_section(tmp_path)}
    async with gateway_running(data) as gw:
        hello = client_hello()
        outside = [
            ("http", gw.http_port, HTTP_GET),
            ("rtsp", gw.rtsp_port, b"NONSENSE\r\n\r\n"),  # parsed, it would get a 400
            ("https", gw.https_port, hello),  # parsed, it would get a ServerHello
            ("rtsps", gw.rtsps_port, hello),
        ]
        for listener, port, payload in outside:
            assert await exchange(port, "127.0.0.2", payload) == b"", listener
            assert gw.gatekeeper.refused[(listener, "ip_filter")] == 1, listener
        assert gw.rtsp.parse_errors == 0
        # The allowed address is served on every port.
        assert (await exchange(gw.http_port, "127.0.0.1", HTTP_GET)).startswith(b"HTTP/1.1 200")
        reply = await exchange(gw.rtsp_port, send=RTSP_OPTIONS, until=b"\r\n\r\n")
        assert reply.startswith(b"RTSP/1.0 200")
        assert (await exchange(gw.https_port, send=hello, until=b"\x16\x03"))[:1] == b"\x16"
        status, text = await get_text(f"http://127.0.0.1:{gw.http_port}/metrics")
        assert status == 200
        for listener in ("http", "rtsp", "https", "rtsps"):
            labels = {"listener": listener, "reason": "ip_filter"}
            assert metric(text, "coaxgate_connections_refused_total", **labels) == 1
        assert metric(text, "coaxgate_connections", listener="http") == 1  # this scrape


async def test_deny_list(loop_name: str) -> None:
    async with gateway_running({"ip_filter": {"deny": ["127.0.0.3", "127.0.9.0/24"]}}) as gw:
        for source in ("127.0.0.3", "127.0.9.200"):
            assert await exchange(gw.http_port, source, HTTP_GET) == b""
            assert await exchange(gw.rtsp_port, source, RTSP_OPTIONS) == b""
        for source in ("127.0.0.1", "127.0.0.2"):
            assert (await exchange(gw.http_port, source, HTTP_GET)).startswith(b"HTTP/1.1 200")
        assert gw.gatekeeper.refused[("http", "ip_filter")] == 2
        assert gw.gatekeeper.refused[("rtsp", "ip_filter")] == 2


def _ipv6_loopback() -> None:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")


async def test_ipv6_allow_and_deny(loop_name: str) -> None:
    _ipv6_loopback()
    v6 = {"host": "::1"}
    async with gateway_running({"server": v6, "ip_filter": {"deny": ["::1/128"]}}) as gw:
        assert await exchange(gw.http_port, "::1", HTTP_GET, host="::1") == b""
        assert await exchange(gw.rtsp_port, "::1", RTSP_OPTIONS, host="::1") == b""
        assert gw.gatekeeper.refused[("http", "ip_filter")] == 1
    async with gateway_running({"server": v6, "ip_filter": {"allow": ["::1"]}}) as gw:
        reply = await exchange(gw.http_port, "::1", HTTP_GET, host="::1")
        assert reply.startswith(b"HTTP/1.1 200")
        reply = await exchange(gw.rtsp_port, "::1", RTSP_OPTIONS, host="::1", until=b"\r\n\r\n")
        assert reply.startswith(b"RTSP/1.0 200")
    async with gateway_running({"server": v6, "ip_filter": {"allow": ["127.0.0.0/8"]}}) as gw:
        assert await exchange(gw.http_port, "::1", HTTP_GET, host="::1") == b""


async def _idle(port: int, source: str) -> socket.socket:
    """A connected socket that sends nothing."""
    sock = socket.socket()
    sock.setblocking(False)
    sock.bind((source, 0))
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return sock


async def _until(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_per_address_cap(loop_name: str) -> None:
    async with gateway_running({"server": {"max_connections_per_address": 3}}) as gw:
        keeper = gw.gatekeeper
        idle = [await _idle(gw.http_port, "127.0.0.2") for _ in range(2)]
        idle.append(await _idle(gw.rtsp_port, "127.0.0.2"))  # the cap spans listeners
        try:
            await _until(lambda: keeper.per_address("127.0.0.2") == 3)
            assert await exchange(gw.http_port, "127.0.0.2", HTTP_GET) == b""
            assert await exchange(gw.rtsp_port, "127.0.0.2", RTSP_OPTIONS) == b""
            assert keeper.refused[("http", "per_address")] == 1
            assert keeper.refused[("rtsp", "per_address")] == 1
            # Another address is served meanwhile.
            reply = await exchange(gw.http_port, "127.0.0.3", HTTP_GET)
            assert reply.startswith(b"HTTP/1.1 200")
            idle.pop().close()
            await _until(lambda: keeper.per_address("127.0.0.2") == 2)
            reply = await exchange(gw.http_port, "127.0.0.2", HTTP_GET)
            assert reply.startswith(b"HTTP/1.1 200")
        finally:
            for sock in idle:
                sock.close()
        await _until(lambda: keeper.total == 0)


async def test_global_cap(loop_name: str) -> None:
    async with gateway_running({"server": {"max_connections": 16}}) as gw:
        keeper = gw.gatekeeper
        idle = [await _idle(gw.http_port, f"127.0.1.{i}") for i in range(16)]
        try:
            await _until(lambda: keeper.total == 16)
            assert await exchange(gw.http_port, "127.0.0.2", HTTP_GET) == b""
            assert await exchange(gw.rtsp_port, "127.0.0.2", RTSP_OPTIONS) == b""
            assert keeper.refused[("http", "max_connections")] == 1
            assert keeper.refused[("rtsp", "max_connections")] == 1
        finally:
            for sock in idle:
                sock.close()
        await _until(lambda: keeper.total == 0)
        reply = await exchange(gw.http_port, "127.0.0.2", HTTP_GET)
        assert reply.startswith(b"HTTP/1.1 200")


async def _slowloris(port: int, head: bytes, source: str) -> tuple[float, bytes]:
    """Send a request head one byte a second; (seconds until cut off, bytes received)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    sock.bind((source, 0))
    start = time.monotonic()
    await loop.sock_connect(sock, ("127.0.0.1", port))

    async def trickle() -> None:
        for i in range(len(head)):
            with contextlib.suppress(ConnectionError, OSError):
                await loop.sock_sendall(sock, head[i : i + 1])
            await asyncio.sleep(1.0)

    sender = asyncio.create_task(trickle())
    got = b""
    try:
        async with asyncio.timeout(15):
            while True:
                try:
                    chunk = await loop.sock_recv(sock, 4096)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                got += chunk
        return time.monotonic() - start, got
    finally:
        sender.cancel()
        sock.close()


@pytest.mark.loops("uvloop")
async def test_slowloris_cut_off_at_header_timeout(loop_name: str) -> None:
    async with gateway_running({"server": {"header_timeout": 2.0}}) as gw:
        url = f"http://127.0.0.1:{gw.http_port}/channels/cam1/mjpeg"
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0)))
        rtsp = RtspClient("127.0.0.1", gw.rtsp_port)
        try:
            await rtsp.connect()
            await rtsp.play_session(f"rtsp://127.0.0.1:{gw.rtsp_port}/cam1", "tcp")
            start = time.monotonic()
            viewer = asyncio.create_task(read_mjpeg(url, duration=4.5, http=http))
            (http_cut, http_got), (rtsp_cut, rtsp_got) = await asyncio.gather(
                _slowloris(gw.http_port, b"GET /channels/cam1/mjpeg HTTP/1.1\r\n", "127.0.0.4"),
                _slowloris(
                    gw.rtsp_port, b"DESCRIBE rtsp://127.0.0.1/cam1 RTSP/1.0\r\n", "127.0.0.4"
                ),
            )
            received = await viewer
        finally:
            await http.close()
            await rtsp.close()
        print(
            f"\nslowloris cut off after {http_cut:.2f} s (HTTP), {rtsp_cut:.2f} s (RTSP); "
            f"honest MJPEG {len(received.frames)} frames, RTSP {len(rtsp.media.frames)}"
        )
        assert http_got == b"" and rtsp_got == b""
        assert 1.9 <= http_cut <= 3.0 and 1.9 <= rtsp_cut <= 3.0, (http_cut, rtsp_cut)
        assert gw.gatekeeper.refused[("http", "header_timeout")] == 1
        assert gw.gatekeeper.refused[("rtsp", "header_timeout")] == 1
        # The honest viewers kept streaming through and past the cut-off.
        assert len(received.frames) >= 50, len(received.frames)
        gaps = [b - a for a, b in zip(received.times, received.times[1:], strict=False)]
        assert max(gaps) < 0.5, max(gaps)
        assert received.times[-1] - start > 4.0
        rtsp_times = rtsp.media.frame_times
        assert len([t for t in rtsp_times if t > start]) >= 50
        assert rtsp_times[-1] - start > 4.0


def _raise_nofile(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need}")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    except (ValueError, OSError) as e:
        pytest.skip(f"cannot raise RLIMIT_NOFILE to {need}: {e}")


FLOOD = 2000
FLOOD_SOURCES = [f"127.0.2.{i}" for i in range(1, 9)]  # 250 connections each


async def _half_open(port: int, source: str, send: bytes) -> tuple[socket.socket, float]:
    """A connection that sends `send` (nothing, or half a request line); when it connected."""
    sock = socket.socket()
    sock.setblocking(False)
    sock.bind((source, 0))
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    connected = time.monotonic()
    if send:
        await loop.sock_sendall(sock, send)
    return sock, connected


async def _closed_after(sock: socket.socket, since: float) -> tuple[float, bytes]:
    """Wait until the peer closes; (seconds since `since`, bytes received)."""
    loop = asyncio.get_running_loop()
    got = b""
    while True:
        try:
            chunk = await loop.sock_recv(sock, 4096)
        except ConnectionResetError:
            break
        if not chunk:
            break
        got += chunk
    return time.monotonic() - since, got


async def _sample_fds(pid: int, peak: list[int]) -> None:
    while True:
        peak[0] = max(peak[0], open_fds(pid))
        await asyncio.sleep(0.05)


@pytest.mark.loops("uvloop")
async def test_half_open_flood(loop_name: str, tmp_path: Path) -> None:
    _raise_nofile(FLOOD + 1024)
    timeout = 2.0
    data = {
        "server": {"header_timeout": timeout, "max_connections_per_address": 300},
        "rtsp": {"rtp_port": 0},
        "channels": [{"name": "cam1", "source": "emulator:1?resolution=176x144&fps=25"}],
    }
    async with gateway_process(tmp_path, data, loop_name) as gw:
        http_port: int = gw.port  # type: ignore[attr-defined]
        base = f"http://127.0.0.1:{http_port}"
        cfg = (await get_text(f"{base}/api/v1/config"))[1]
        rtsp_port = int(json.loads(cfg)["server"]["rtsp_port"])
        await asyncio.sleep(1.0)  # the source up, the first scrapes done
        fds_before = open_fds(gw.pid)

        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0)))
        viewer = asyncio.create_task(
            read_mjpeg(f"{base}/channels/cam1/mjpeg", duration=timeout + 4.0, http=http)
        )
        rtsp = RtspClient("127.0.0.1", rtsp_port)
        opened: list[tuple[socket.socket, float]] = []
        peak = [0]
        sampler = asyncio.create_task(_sample_fds(gw.pid, peak))
        try:
            await rtsp.connect()
            await rtsp.play_session(f"rtsp://127.0.0.1:{rtsp_port}/cam1", "tcp")
            await asyncio.sleep(0.5)
            start = time.monotonic()
            plan = []
            for i in range(FLOOD):
                port = http_port if i % 2 == 0 else rtsp_port
                head = b"GET /channels/cam1/mj" if port == http_port else b"DESCRIBE rtsp://12"
                send = head if i % 4 >= 2 else b""  # half send nothing, half half a line
                plan.append((port, FLOOD_SOURCES[i % len(FLOOD_SOURCES)], send))
            for batch in range(0, FLOOD, 250):
                opened += await asyncio.gather(*(_half_open(*p) for p in plan[batch : batch + 250]))
            connected = time.monotonic() - start
            async with asyncio.timeout(timeout + 10):
                closed = await asyncio.gather(*(_closed_after(s, t) for s, t in opened))
            received = await viewer
        finally:
            sampler.cancel()
            for sock, _ in opened:
                sock.close()
            await http.close()
            rtsp_frames = list(rtsp.media.frame_times)
            await rtsp.close()

        times = [t for t, _ in closed]
        assert all(got == b"" for _, got in closed)  # cut off without a byte of answer
        # Each one was cut at its own deadline (measured from its connect).
        assert min(times) >= timeout - 0.1, min(times)
        assert max(times) <= timeout + 1.5, max(times)
        text = (await get_text(f"{base}/metrics"))[1]
        cut = sum(
            metric(text, "coaxgate_connections_refused_total", listener=x, reason="header_timeout")
            for x in ("http", "rtsp")
        )
        assert cut == FLOOD
        # The honest viewers kept their frames through the flood.
        assert len(received.frames) >= 25 * (timeout + 4.0) * 0.6, len(received.frames)
        gaps = [b - a for a, b in zip(received.times, received.times[1:], strict=False)]
        assert max(gaps) < 1.0, max(gaps)
        assert len([t for t in rtsp_frames if t > start]) >= 25 * (timeout + 3.0) * 0.6
        # Every descriptor the flood took is given back.
        for _ in range(100):
            fds_after = open_fds(gw.pid)
            if fds_after <= fds_before:
                break
            await asyncio.sleep(0.1)
        print(
            f"\nflood of {FLOOD}: connected in {connected:.2f} s; gateway fds "
            f"{fds_before} -> {peak[0]} (peak) -> {fds_after}; cut off after "
            f"{min(times):.2f}/{statistics.median(times):.2f}/{max(times):.2f} s "
            f"(min/median/max); honest MJPEG {len(received.frames)} frames, "
            f"max gap {max(gaps):.3f} s"
        )
        assert peak[0] >= fds_before + FLOOD * 0.9, peak[0]
        assert fds_after <= fds_before, (fds_before, fds_after)


def test_gateway_exposes_ports_without_tls() -> None:
    gw = Gateway(config.parse({}))
    assert gw.https_port == 0 and gw.tls_context is None
