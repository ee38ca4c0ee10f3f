"""Sources in process: snapshot polling, the emulated input, backoff, bad cameras."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gateway import config
from gateway.media.channel import Channel
from gateway.sources.base import Source
from gateway.sources.emulated import EmulatedSource
from gateway.sources.emulator import Emulator, EmulatorOptions
from gateway.sources.frames import FrameLoop
from gateway.sources.mjpeg_http import MjpegHttpSource
from gateway.sources.snapshot import SnapshotSource


def _channel(**table: object) -> Channel:
    cfg = config.parse({"channels": [{"name": "cam", **table}]})
    return Channel(cfg.channels[0])


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def _running(source: Source) -> AsyncIterator[Source]:
    source.start()
    try:
        yield source
    finally:
        await source.stop()


async def test_snapshot_polling(loop_name: str) -> None:
    emulator = Emulator(EmulatorOptions(resolution=(176, 144)))
    port = await emulator.start()
    try:
        channel = _channel(
            source=f"http://127.0.0.1:{port}/axis-cgi/jpg/image.cgi?camera=2",
            kind="snapshot",
            poll_fps=5,
        )
        async with _running(SnapshotSource(channel)) as source:
            await _until(lambda: channel.frames_in >= 2)
            first = channel.frames_in
            await asyncio.sleep(2.0)
            rate = (channel.frames_in - first) / 2.0
            assert source.up
            assert 4.0 <= rate <= 6.0, rate
            assert (channel.width, channel.height) == (176, 144)
    finally:
        await emulator.stop()


async def test_emulated_input_and_stall_watchdog(loop_name: str) -> None:
    channel = _channel(
        source="emulator:2?resolution=176x144&fps=25&stall_after=5",
        stall_timeout=0.4,
        reconnect_min=0.05,
        reconnect_max=0.1,
    )
    async with _running(EmulatedSource(channel)) as source:
        await _until(lambda: source.stalls >= 2 and source.reconnects >= 2)
        assert channel.frames_in >= 10  # five per session, and sessions restart
        assert source.reconnects >= 2
        assert "stalled" in (source.last_error or "")


def test_backoff_is_capped_and_jittered() -> None:
    channel = _channel(source="http://127.0.0.1:9/x", reconnect_min=0.5, reconnect_max=8)
    source = MjpegHttpSource(channel)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (3, 4.0), (4, 8.0), (10, 8.0), (100, 8.0)]:
        delays = [source.backoff(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 100, "jittered"


async def test_unreachable_source_logs_once(
    loop_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    from .support import free_port

    channel = _channel(
        source=f"http://127.0.0.1:{free_port()}/axis-cgi/mjpg/video.cgi",
        reconnect_min=0.02,
        reconnect_max=0.05,
    )
    with caplog.at_level(logging.INFO, logger="gateway.sources.base"):
        async with _running(MjpegHttpSource(channel)) as source:
            await _until(lambda: source.reconnects >= 5)
            assert source.state in ("down", "connecting")
            assert "cannot connect" in (source.last_error or "")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def _camera(handler: Handler) -> AsyncIterator[int]:
    """A misbehaving camera: a raw TCP server running `handler` per connection."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def _jpeg() -> bytes:
    return FrameLoop(camera=1, label="x", width=176, height=144, fps=25).frame(0, time.time())


async def test_huge_content_length_is_refused_then_recovers(loop_name: str) -> None:
    good = _jpeg()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=b\r\n\r\n"
            b"--b\r\nContent-Type: image/jpeg\r\nContent-Length: 1099511627776\r\n\r\n"
            + bytes(5000)
        )
        part = b"--b\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(good)
        with contextlib.suppress(ConnectionError):
            for _ in range(50):
                writer.write(b"\r\n" + part + good)
                await writer.drain()
                await asyncio.sleep(0.02)
        writer.close()

    async with _camera(handler) as port:
        channel = _channel(source=f"http://127.0.0.1:{port}/", reconnect_min=0.05)
        async with _running(MjpegHttpSource(channel)):
            await _until(lambda: channel.frames_in >= 5)
    assert channel.bad_frames["bad_content_length"] + channel.bad_frames["too_large"] >= 1


async def test_unexpected_content_type_is_reported(loop_name: str) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>login</html>")
        writer.close()

    async with _camera(handler) as port:
        channel = _channel(source=f"http://127.0.0.1:{port}/", reconnect_min=0.05)
        async with _running(MjpegHttpSource(channel)) as source:
            await _until(lambda: source.last_error is not None)
            assert "text/html" in (source.last_error or "")
            assert not source.up
