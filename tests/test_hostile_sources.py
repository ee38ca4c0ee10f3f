"""Hostile cameras against a running gateway: cut off, counted, bounded, and recovered from.

Each test runs `coaxgate run` in a child process with two channels: "hostile",
an MJPEG source pointed at a camera written here (raw asyncio on 127.0.0.1),
and "good", the built-in emulator. The camera starts well behaved; once the
gateway shows the channel up, it turns hostile in one way, and the test
checks that the gateway cuts it off (the camera sees its connection closed),
counts it (the source's error and bad-frame counters in the API and the
metrics), keeps its memory flat, keeps serving the good channel, and picks
the hostile channel up again once the camera behaves.

The last test gives the source a password and makes it fail every way it
can; the password (and the Basic token that carries it) must appear nowhere:
not in the log at debug level, the API, the config API or the metrics.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway import config
from gateway.media.channel import Channel
from gateway.sources.base import Source
from gateway.sources.frames import FrameLoop
from gateway.sources.http_client import MAX_HEADERS, MAX_REDIRECTS

from .support import (
    Process,
    free_port,
    get_json,
    metric,
    read_mjpeg,
    rss_kib,
    wait_http,
    write_config,
)

pytestmark = pytest.mark.loops("asyncio")  # the gateway runs its own loop in the child

BOUNDARY = b"myboundary"
PATH = "/axis-cgi/mjpg/video.cgi"
STALL = 1.5  # the hostile channel's stall_timeout
RSS_GROWTH_KIB = 48 << 10  # what a hostile camera may cost the gateway, at most
FLOOD = 256 << 20  # bytes a flooding camera sends before giving up on being cut off
USER, PASSWORD = "admin", "Pw-7c1e-NEVER-shown"
TOKEN = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()  # Basic credentials
# The JPEG that hostile cameras send: an APP0 segment whose length runs past the EOI.
BAD_JPEG = b"\xff\xd8\xff\xe0\xff\xff" + bytes(40) + b"\xff\xd9"


def _part(jpeg: bytes) -> bytes:
    head = b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % (BOUNDARY, len(jpeg))
    return head + jpeg + b"\r\n"


Send = Callable[[bytes], Awaitable[None]]
STREAM_HEAD = (
    b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=%s\r\n\r\n" % BOUNDARY
)


@dataclass
class Connection:
    """One request the camera answered: what came in, how long it lasted, who closed it."""

    head: bytes
    opened: float
    closed_by_peer: bool = False
    duration: float = 0.0
    sent: int = 0


@dataclass
class Camera:
    """A camera on 127.0.0.1 whose behaviour the test switches with `mode`."""

    mode: str = "good"
    port: int = 0
    connections: list[Connection] = field(default_factory=list)
    redirect_to: list[str] = field(default_factory=list)  # Locations, one per request in turn
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _kicked: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = FrameLoop(camera=1, label="hostile", width=176, height=144, fps=10)
        self._frames = [loop.frame(i, time.time()) for i in range(4)]
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.kick()
        if self._server is not None:
            self._server.close()
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def kick(self) -> None:
        """Close every open connection, so the gateway reconnects into the current mode."""
        for writer in tuple(self._writers):
            self._kicked.add(writer)
            writer.close()

    def cut_off(self, mode: str) -> list[Connection]:
        """Connections in `mode` that the gateway closed while the camera was still at it."""
        tag = mode.encode() + b" "
        return [c for c in self.connections if c.closed_by_peer and c.head.startswith(tag)]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            writer.close()
        finally:
            self._tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            self._writers.discard(writer)
            writer.close()
            return
        mode = self.mode
        conn = Connection(mode.encode() + b" " + request, time.monotonic())
        self.connections.append(conn)
        gone = asyncio.Event()

        async def watch() -> None:  # the peer closing shows as EOF on the read side
            with contextlib.suppress(ConnectionError):
                while await reader.read(1 << 16):
                    pass
            gone.set()

        watcher = asyncio.create_task(watch())

        async def send(data: bytes) -> None:
            if gone.is_set():
                raise ConnectionResetError
            writer.write(data)
            conn.sent += len(data)
            await writer.drain()

        broken = False
        try:
            await getattr(self, f"_{mode}")(send, gone)
            await asyncio.wait_for(gone.wait(), 30)  # said all it had to: wait for the close
        except ConnectionError:
            broken = True
        except TimeoutError:
            pass
        finally:
            conn.closed_by_peer = (broken or gone.is_set()) and writer not in self._kicked
            conn.duration = time.monotonic() - conn.opened
            watcher.cancel()
            self._writers.discard(writer)
            self._kicked.discard(writer)
            writer.close()

    # -- behaviours: each one answers a request, sending through `send` ----------------------

    async def _good(self, send: Send, gone: asyncio.Event) -> None:
        await send(STREAM_HEAD)
        for i in range(100_000):
            await send(_part(self._frames[i % len(self._frames)]))
            await asyncio.sleep(0.1)

    async def _endless_headers(self, send: Send, gone: asyncio.Event) -> None:
        await send(b"HTTP/1.1 200 OK\r\n")
        i = 0
        while i * 100 < FLOOD:
            await send(b"".join(b"X-Pad-%d: %s\r\n" % (i + k, b"a" * 80) for k in range(100)))
            i += 100

    async def _huge_part(self, send: Send, gone: asyncio.Event) -> None:
        await send(STREAM_HEAD)
        await send(
            b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % (BOUNDARY, 1 << 40)
        )
        zeros = bytes(1 << 16)
        for _ in range(FLOOD // len(zeros)):
            await send(zeros)

    async def _bad_jpeg(self, send: Send, gone: asyncio.Event) -> None:
        await send(STREAM_HEAD)
        for _ in range(100_000):
            await send(_part(BAD_JPEG))
            await asyncio.sleep(0.05)

    async def _long_part_header(self, send: Send, gone: asyncio.Event) -> None:
        await send(STREAM_HEAD)
        await send(b"--%s\r\nContent-Type: image/jpeg\r\nX-Long: " % BOUNDARY)
        line = b"a" * (1 << 16)
        for _ in range(FLOOD // len(line)):
            await send(line)

    async def _redirect(self, send: Send, gone: asyncio.Event) -> None:
        location = self.redirect_to[0] if self.redirect_to else PATH
        if len(self.redirect_to) > 1:
            self.redirect_to.append(self.redirect_to.pop(0))
        await send(
            b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            % location.encode()
        )

    async def _trickle(self, send: Send, gone: asyncio.Event) -> None:
        for byte in STREAM_HEAD + _part(self._frames[0]):
            await send(bytes([byte]))
            await asyncio.sleep(1.0)

    async def _basic_challenge(self, send: Send, gone: asyncio.Event) -> None:
        await send(
            b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="cam"\r\n'
            b"Content-Length: 0\r\nConnection: close\r\n\r\n"
        )

    async def _digest_challenge(self, send: Send, gone: asyncio.Event) -> None:
        await send(
            b"HTTP/1.1 401 Unauthorized\r\n"
            b'WWW-Authenticate: Digest realm="cam", qop="auth", nonce="abc123", algorithm=MD5\r\n'
            b"Content-Length: 0\r\nConnection: close\r\n\r\n"
        )

    async def _bad_status_line(self, send: Send, gone: asyncio.Event) -> None:
        await send(b"HTTP/1.1 2000 Nope\r\n\r\n")


@contextlib.asynccontextmanager
async def camera() -> AsyncIterator[Camera]:
    cam = Camera()
    await cam.start()
    try:
        yield cam
    finally:
        await cam.stop()


@contextlib.asynccontextmanager
async def gateway(tmp_path: Path, source: str, **hostile: Any) -> AsyncIterator[Gateway]:
    """`coaxgate run` at debug level with the "hostile" and "good" channels."""
    port = free_port()
    data = {
        "server": {"host": "127.0.0.1", "http_port": port, "rtsp_port": free_port()},
        "channels": [
            {
                "name": "hostile",
                "source": source,
                "stall_timeout": STALL,
                "reconnect_min": 0.1,
                "reconnect_max": 0.4,
                "connect_timeout": 2.0,
                "max_ingest_frame": "1M",
                **hostile,
            },
            {"name": "good", "source": "emulator:2?resolution=176x144&fps=10"},
        ],
    }
    path = write_config(tmp_path, data)
    proc = Process(["--log-level", "debug", "run", "-c", str(path)])
    proc.start(tmp_path / "gateway.log")
    gw = Gateway(proc, port)
    try:
        await wait_http(f"{gw.url}/healthz", proc=proc)
        yield gw
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.stop()


@dataclass
class Gateway:
    """The child process and what the tests ask it over HTTP."""

    proc: Process
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def channel(self, name: str) -> dict[str, Any]:
        channels = (await get_json(f"{self.url}/api/v1/channels"))["channels"]
        return next(c for c in channels if c["name"] == name)

    async def metrics(self) -> str:
        async with aiohttp.ClientSession() as http, http.get(f"{self.url}/metrics") as resp:
            assert resp.status == 200, resp.status
            return await resp.text()

    async def until(
        self, check: Callable[[dict[str, Any]], bool], name: str = "hostile", timeout: float = 20
    ) -> dict[str, Any]:
        """Poll the API until `check` holds for a channel; returns the channel."""
        deadline = time.monotonic() + timeout
        while True:
            ch = await self.channel(name)
            if check(ch):
                return ch
            assert time.monotonic() < deadline, f"not reached; last state: {ch}"
            await asyncio.sleep(0.1)

    def rss_kib(self) -> int:
        return rss_kib(self.proc.pid)


def _up(ch: dict[str, Any]) -> bool:
    return bool(ch["source_state"]["state"] == "up")


def _errors(ch: dict[str, Any], reason: str) -> int:
    return int(ch["source_state"].get("errors", {}).get(reason, 0))


def _bad(ch: dict[str, Any], reason: str) -> int:
    return int(ch["bad_frames"].get(reason, 0))


async def _attack(
    tmp_path: Path,
    mode: str,
    counted: Callable[[dict[str, Any]], bool],
    *,
    setup: Callable[[Camera], None] | None = None,
    cut_off: bool = True,
) -> tuple[Camera, dict[str, Any], str]:
    """Good camera, then `mode` until `counted`, then good again; returns what was seen.

    Checks on the way: the gateway cut the hostile connections off, its memory
    stayed flat, the good channel kept serving, the hostile one came back.
    """
    async with camera() as cam, gateway(tmp_path, f"http://127.0.0.1:{cam.port}{PATH}") as gw:
        await gw.until(_up)
        await gw.until(_up, "good")
        await asyncio.sleep(0.5)  # let the first frames settle the allocator
        rss_before = gw.rss_kib()
        if setup is not None:
            setup(cam)
        cam.mode = mode
        cam.kick()
        hostile = await gw.until(counted, timeout=30)
        assert not _up(hostile), hostile
        # The other channel carries on while this one is under attack.
        seen = await read_mjpeg(f"{gw.url}/channels/good/mjpeg", frames=5, timeout=10)
        assert len(seen.frames) >= 5
        growth = gw.rss_kib() - rss_before
        assert growth < RSS_GROWTH_KIB, f"gateway grew by {growth} KiB under {mode}"
        if cut_off:
            cut = cam.cut_off(mode)
            assert cut, f"the gateway never closed a {mode} connection: {cam.connections[-3:]}"
        metrics = await gw.metrics()
        assert metric(metrics, "coaxgate_source_reconnects_total", channel="hostile") >= 1
        # The camera behaves again: the channel comes back on its own.
        frames_before = hostile["frames_in"]
        cam.mode = "good"
        cam.kick()
        back = await gw.until(lambda ch: _up(ch) and ch["frames_in"] > frames_before + 3)
        assert back["source_state"]["state"] == "up"
        return cam, hostile, metrics


async def test_endless_response_head(tmp_path: Path) -> None:
    cam, hostile, _ = await _attack(
        tmp_path, "endless_headers", lambda ch: _errors(ch, "head_too_large") >= 2
    )
    assert "too many header lines" in (hostile["source_state"]["last_error"] or "")
    # Cut off at the header limit, not after the camera's whole flood.
    worst = max(c.sent for c in cam.cut_off("endless_headers"))
    assert worst < FLOOD // 4, worst
    assert worst > MAX_HEADERS * 80, "cut off before the header limit was reached"


async def test_part_content_length_of_2_to_the_40(tmp_path: Path) -> None:
    cam, _, metrics = await _attack(
        tmp_path,
        "huge_part",
        lambda ch: (
            _bad(ch, "bad_content_length") + _bad(ch, "too_large") >= 1
            and _errors(ch, "stalled") >= 1
        ),
    )
    counted = sum(
        metric(metrics, "coaxgate_source_bad_frames_total", channel="hostile", reason=r)
        for r in ("bad_content_length", "too_large")
    )
    assert counted >= 1
    # Read and thrown away at line rate, then cut off by the watchdog: no valid frame.
    assert all(c.duration < 3 * STALL for c in cam.cut_off("huge_part"))


async def test_jpeg_with_marker_lengths_past_its_end(tmp_path: Path) -> None:
    _, hostile, metrics = await _attack(
        tmp_path,
        "bad_jpeg",
        lambda ch: _bad(ch, "corrupt") >= 10 and _errors(ch, "stalled") >= 1,
    )
    assert metric(metrics, "coaxgate_source_bad_frames_total", channel="hostile", reason="corrupt")
    assert "stalled" in (hostile["source_state"]["last_error"] or "")


async def test_part_header_line_longer_than_any_limit(tmp_path: Path) -> None:
    cam, _, metrics = await _attack(
        tmp_path,
        "long_part_header",
        lambda ch: _bad(ch, "headers_too_large") >= 1 and _errors(ch, "stalled") >= 1,
    )
    assert metric(
        metrics, "coaxgate_source_bad_frames_total", channel="hostile", reason="headers_too_large"
    )
    assert all(c.duration < 3 * STALL for c in cam.cut_off("long_part_header"))


async def test_redirect_loop(tmp_path: Path) -> None:
    cam, hostile, _ = await _attack(
        tmp_path, "redirect", lambda ch: _errors(ch, "redirect") >= 2, cut_off=False
    )
    assert f"more than {MAX_REDIRECTS} redirects" in hostile["source_state"]["last_error"]
    # Each attempt follows MAX_REDIRECTS redirects, then gives up.
    hops = [c for c in cam.connections if c.head.startswith(b"redirect")]
    assert len(hops) >= 2 * (MAX_REDIRECTS + 1)


async def test_redirect_to_another_scheme_is_refused(tmp_path: Path) -> None:
    trap_hits: list[bytes] = []

    async def trap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        trap_hits.append(await reader.read(4096))
        writer.close()

    trap_server = await asyncio.start_server(trap, "127.0.0.1", 0)
    trap_port = trap_server.sockets[0].getsockname()[1]
    locations = [
        f"ftp://127.0.0.1:{trap_port}/video.mjpg",
        "file:///etc/passwd",
        f"https://127.0.0.1:{trap_port}{PATH}",  # http to https: another scheme too
        "gopher://127.0.0.1/",
    ]
    try:
        _, hostile, _ = await _attack(
            tmp_path,
            "redirect",
            lambda ch: _errors(ch, "redirect") >= 2 * len(locations),
            setup=lambda cam: cam.redirect_to.extend(locations),
            cut_off=False,
        )
    finally:
        trap_server.close()
        await trap_server.wait_closed()
    assert "refused" in hostile["source_state"]["last_error"]
    assert trap_hits == [], "a redirect across schemes was followed"


async def test_one_byte_per_second(tmp_path: Path) -> None:
    cam, _, metrics = await _attack(
        tmp_path, "trickle", lambda ch: _errors(ch, "stalled") + _errors(ch, "timeout") >= 2
    )
    assert metric(metrics, "coaxgate_source_stalls_total", channel="hostile") >= 1
    # Cut off by the watchdog, not after the whole slow response.
    assert all(c.duration < 4 * STALL for c in cam.cut_off("trickle"))


# -- credentials ------------------------------------------------------------------------------


async def test_source_password_never_shown(tmp_path: Path) -> None:
    """Fail with credentials every way a camera can; the password shows up nowhere."""
    other_hits: list[bytes] = []

    async def other_host(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        other_hits.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="x"\r\n\r\n')
        writer.close()

    other = await asyncio.start_server(other_host, "127.0.0.1", 0)
    other_port = other.sockets[0].getsockname()[1]
    secrets = (PASSWORD, TOKEN, PASSWORD.replace("-", "%2D"))
    try:
        async with camera() as cam:
            source = f"http://{USER}:{PASSWORD}@127.0.0.1:{cam.port}{PATH}?camera=1"
            async with gateway(tmp_path, source, auth="auto") as gw:
                await gw.until(_up)
                seen: list[str] = []
                plans = [
                    ("basic_challenge", [], "http_status"),
                    ("digest_challenge", [], "http_status"),
                    ("bad_status_line", [], "bad_response"),
                    (
                        "redirect",
                        [
                            f"ftp://{USER}:{PASSWORD}@127.0.0.1/x",
                            f"http://{USER}:{PASSWORD}@127.0.0.1:{other_port}/x",
                        ],
                        "redirect",
                    ),
                    ("stop", [], "connect"),  # nobody listens any more: connection refused
                ]
                for mode, locations, reason in plans:
                    before = _errors(await gw.channel("hostile"), reason)
                    cam.redirect_to[:] = locations
                    cam.mode = mode
                    if mode == "stop":
                        await cam.stop()
                    cam.kick()
                    ch = await gw.until(lambda ch, r=reason, n=before: _errors(ch, r) >= n + 2)
                    seen.append(ch["source_state"]["last_error"])
                texts = {
                    "channels": await _text(f"{gw.url}/api/v1/channels"),
                    "config": await _text(f"{gw.url}/api/v1/config"),
                    "metrics": await gw.metrics(),
                    "errors": "\n".join(seen),
                }
                # The camera did get the credentials it asked for, in Basic and in Digest.
                basic = [c for c in cam.connections if c.head.startswith(b"basic_challenge")]
                assert any(f"Basic {TOKEN}".encode() in c.head for c in basic)
                digest = [c for c in cam.connections if c.head.startswith(b"digest_challenge")]
                assert any(b'Digest username="admin"' in c.head for c in digest)
            texts["log"] = gw.proc.log()
    finally:
        other.close()
        await other.wait_closed()
    assert any("refused" in e for e in seen) and any("cannot connect" in e for e in seen), seen
    assert "DEBUG" in texts["log"], "the log is not at debug level"
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"the source password shows in the {where}"
    # A redirect to another host is followed, but never takes the credentials along.
    assert other_hits, "the redirect to another host was not followed"
    assert all(b"authorization" not in hit.lower() for hit in other_hits), other_hits


async def _text(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200, (url, resp.status)
        return await resp.text()


class _Failing(Source):
    async def session(self) -> None:
        raise RuntimeError(f"request info: Authorization: Basic {TOKEN}")


@pytest.mark.loops("uvloop", "asyncio")
async def test_session_failing_as_it_is_stopped_is_not_logged() -> None:
    """A session that fails in the same turn as stop() cancels it: its exception is not
    left to asyncio's "never retrieved" log, whose repr of aiohttp errors holds the
    request's Authorization header."""
    logged: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, ctx: logged.append(str(ctx.get("exception"))))
    cfg = config.parse({"channels": [{"name": "cam", "source": "http://127.0.0.1:9/x"}]})
    source = _Failing(Channel(cfg.channels[0]))
    for turns in range(6):  # cancel at every point of the session's first turns
        outer = asyncio.create_task(source._watched_session())
        for _ in range(turns):
            await asyncio.sleep(0)
        outer.cancel()
        with contextlib.suppress(asyncio.CancelledError, RuntimeError):
            await outer
        gc.collect()
    await asyncio.sleep(0)
    gc.collect()
    assert logged == []
