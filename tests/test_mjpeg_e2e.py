"""End to end on loopback: Axis 2400 emulator -> gateway -> MJPEG viewers."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from pathlib import Path

import aiohttp
import pytest

from gateway._ext.multipart import MultipartScanner, Part
from gateway.media.jpeg import check_frame

from .support import (
    decode_jpeg,
    emulator_process,
    gateway_process,
    get_bytes,
    get_json,
    get_text,
    metric,
    read_mjpeg,
    rss_kib,
)

CIF = "352x288"


def _channel(
    name: str, eport: int, camera: int = 1, resolution: str = CIF, **extra: object
) -> dict[str, object]:
    return {
        "name": name,
        "source": f"http://127.0.0.1:{eport}/axis-cgi/mjpg/video.cgi?camera={camera}"
        f"&resolution={resolution}",
        "stall_timeout": 2.0,
        "reconnect_min": 0.1,
        "reconnect_max": 0.5,
        **extra,
    }


async def _wait_up(base: str, name: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        data = await get_json(f"{base}/api/v1/channels")
        ch = next(c for c in data["channels"] if c["name"] == name)
        if ch["source_state"]["state"] == "up" and ch["frames_in"] > 3:
            return ch
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} not up: {ch}")
        await asyncio.sleep(0.1)


def _whole(frames: list[bytes]) -> None:
    for f in frames:
        assert check_frame(f, 4 << 20).reason is None


async def test_fifty_viewers_at_source_rate(tmp_path: Path, loop_name: str) -> None:
    async with (
        emulator_process(tmp_path, "--fps", "25", "--resolution", CIF) as emu,
        gateway_process(tmp_path, {"channels": [_channel("lobby", emu.port)]}, loop_name) as gw,
    ):
        base = f"http://127.0.0.1:{gw.port}"
        await _wait_up(base, "lobby")
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            readers = asyncio.gather(
                *(
                    read_mjpeg(f"{base}/channels/lobby/mjpeg", duration=4.0, http=http)
                    for _ in range(50)
                )
            )
            await asyncio.sleep(2.0)
            sessions = await get_json(f"{base}/api/v1/sessions")
            metrics = (await get_text(f"{base}/metrics"))[1]
            results = await readers
        for got in results:
            _whole(got.frames)
            assert got.fps() > 22.0, got.fps()
            assert got.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            assert "Transfer-Encoding" not in got.headers
        # Decode a sample from every viewer with PyAV.
        rng = random.Random(0)
        for got in results:
            for frame in rng.sample(got.frames, 3):
                assert decode_jpeg(frame) == (352, 288)
        assert sum(s["protocol"] == "mjpeg" for s in sessions["sessions"]) == 50
        assert metric(metrics, "coaxgate_viewers", channel="lobby", protocol="mjpeg") == 50


async def test_fps_limit_and_vapix_routes(tmp_path: Path, loop_name: str) -> None:
    async with (
        emulator_process(tmp_path, "--fps", "25", "--resolution", CIF) as emu,
        gateway_process(
            tmp_path,
            {"channels": [_channel("lobby", emu.port), _channel("dock", emu.port, camera=2)]},
            loop_name,
        ) as gw,
    ):
        base = f"http://127.0.0.1:{gw.port}"
        await _wait_up(base, "lobby")
        await _wait_up(base, "dock")
        five, vapix_five, vapix = await asyncio.gather(
            read_mjpeg(f"{base}/channels/lobby/mjpeg?fps=5", duration=6.5),
            read_mjpeg(f"{base}/axis-cgi/mjpg/video.cgi?camera=2&fps=5", duration=6.5),
            read_mjpeg(f"{base}/axis-cgi/mjpg/video.cgi?camera=2", frames=10),
        )
        for got in (five, vapix_five):
            _whole(got.frames)
            assert 4.5 <= got.fps() <= 5.5, got.fps()
        _whole(vapix.frames)
        # The two channels are different inputs: their frames differ.
        assert five.frames[-1] != vapix.frames[-1]

        status, ctype, body = await get_bytes(f"{base}/channels/lobby/snapshot.jpg")
        assert status == 200 and ctype == "image/jpeg"
        assert decode_jpeg(body) == (352, 288)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/axis-cgi/jpg/image.cgi?camera=2") as resp:
                assert resp.status == 200 and resp.content_type == "image/jpeg"
                assert decode_jpeg(await resp.read()) == (352, 288)
            for url, code in [
                ("/channels/nope/mjpeg", 404),
                ("/channels/nope/snapshot.jpg", 404),
                ("/axis-cgi/mjpg/video.cgi?camera=9", 404),
                ("/axis-cgi/jpg/image.cgi?camera=x", 404),
                ("/channels/lobby/mjpeg?fps=abc", 400),
                ("/channels/lobby/mjpeg?fps=-2", 400),
                ("/axis-cgi/param.cgi?action=update", 400),
            ]:
                async with http.get(base + url) as resp:
                    assert resp.status == code, url
                    assert (await resp.text()).strip(), "errors carry a message"
        async with aiohttp.ClientSession() as http, http.head(base + "/channels/lobby/mjpeg") as r:
            assert r.status == 200 and r.content_type == "multipart/x-mixed-replace"
            assert await r.read() == b""
        status, params = await get_text(f"{base}/axis-cgi/param.cgi?action=list&group=ImageSource")
        assert status == 200 and "root.ImageSource.NbrOfSources=2" in params

        metrics = (await get_text(f"{base}/metrics"))[1]
        assert metric(metrics, "coaxgate_source_up", channel="lobby") == 1
        assert metric(metrics, "coaxgate_source_frames_total", channel="lobby") > 50
        assert metric(metrics, "coaxgate_source_bytes_total", channel="lobby") > 50_000
        assert (
            metric(
                metrics,
                "coaxgate_frames_dropped_total",
                channel="lobby",
                protocol="mjpeg",
                reason="fps_limit",
            )
            > 50
        )
        assert metric(metrics, "coaxgate_egress_bytes_total", channel="dock", protocol="mjpeg") > 0
        assert "coaxgate_process_resident_memory_bytes" in metrics
        api = await get_json(f"{base}/api/v1/channels")
        lobby = api["channels"][0]
        assert lobby["width"] == 352 and lobby["height"] == 288
        assert 20 < lobby["fps_in"] < 30 and lobby["bitrate_in"] > 100_000


async def test_source_restart_and_stall(tmp_path: Path, loop_name: str) -> None:
    eport = 0
    async with emulator_process(tmp_path, "--resolution", CIF, "--stall", "2") as emu:
        eport = emu.port
        channels = [_channel("lobby", eport), _channel("stuck", eport, camera=2)]
        async with gateway_process(tmp_path, {"channels": channels}, loop_name) as gw:
            base = f"http://127.0.0.1:{gw.port}"
            await _wait_up(base, "lobby")
            # Camera 2 sends 25 frames then keeps the connection open in silence.
            deadline = time.monotonic() + 15
            while True:
                metrics = (await get_text(f"{base}/metrics"))[1]
                if metric(metrics, "coaxgate_source_stalls_total", channel="stuck") >= 1:
                    break
                assert time.monotonic() < deadline, "stall not detected"
                await asyncio.sleep(0.2)
            assert metric(metrics, "coaxgate_source_up", channel="lobby") == 1

            emu.kill()
            deadline = time.monotonic() + 10
            while True:
                api = await get_json(f"{base}/api/v1/channels")
                lobby = api["channels"][0]
                if lobby["source_state"]["state"] != "up":
                    break
                assert time.monotonic() < deadline, "source loss not noticed"
                await asyncio.sleep(0.1)
            before = lobby["source_state"]["reconnects"]
            await asyncio.sleep(1.0)

            async with emulator_process(tmp_path, "--resolution", CIF, port=eport):
                up = await _wait_up(base, "lobby", timeout=20)
                assert up["source_state"]["reconnects"] > before
                got = await read_mjpeg(f"{base}/channels/lobby/mjpeg", frames=10)
                _whole(got.frames)
            metrics = (await get_text(f"{base}/metrics"))[1]
            assert metric(metrics, "coaxgate_source_reconnects_total", channel="lobby") > before
        assert "reconnecting" in gw.log()


async def test_bad_parts_are_counted_and_skipped(tmp_path: Path, loop_name: str) -> None:
    async with (
        emulator_process(tmp_path, "--resolution", CIF, "--corrupt-every", "4") as emu,
        gateway_process(tmp_path, {"channels": [_channel("lobby", emu.port)]}, loop_name) as gw,
    ):
        base = f"http://127.0.0.1:{gw.port}"
        await _wait_up(base, "lobby")
        got = await read_mjpeg(f"{base}/channels/lobby/mjpeg", duration=3.0)
        _whole(got.frames)
        assert got.fps() > 15
        metrics = (await get_text(f"{base}/metrics"))[1]
        truncated = metric(
            metrics, "coaxgate_source_bad_frames_total", channel="lobby", reason="truncated"
        )
        garbage = metric(
            metrics, "coaxgate_source_bad_frames_total", channel="lobby", reason="not_jpeg"
        )
        assert truncated >= 3 and garbage >= 3
        assert metric(metrics, "coaxgate_source_up", channel="lobby") == 1


@pytest.mark.parametrize(
    "quirks",
    [("--no-content-length",), ("--restart-interval", "22"), ("--video-loss", "1")],
    ids=["no-content-length", "dri", "video-loss"],
)
@pytest.mark.loops("uvloop")
async def test_device_quirks(tmp_path: Path, loop_name: str, quirks: tuple[str, ...]) -> None:
    async with (
        emulator_process(tmp_path, "--resolution", CIF, *quirks) as emu,
        gateway_process(tmp_path, {"channels": [_channel("lobby", emu.port)]}, loop_name) as gw,
    ):
        base = f"http://127.0.0.1:{gw.port}"
        await _wait_up(base, "lobby")
        got = await read_mjpeg(f"{base}/channels/lobby/mjpeg", frames=10)
        _whole(got.frames)
        assert decode_jpeg(got.frames[-1]) == (352, 288)
        if "--restart-interval" in quirks:
            assert b"\xff\xdd" in got.frames[-1][:700], "DRI passed through unchanged"


@pytest.mark.parametrize("scheme", ["basic", "digest"])
@pytest.mark.loops("uvloop")
async def test_upstream_authentication(tmp_path: Path, loop_name: str, scheme: str) -> None:
    async with emulator_process(
        tmp_path, "--resolution", CIF, "--user", "root:pass word", "--auth", scheme
    ) as emu:
        good = _channel("good", emu.port, username="root", password_env="TEST_PASS")
        wrong = _channel("wrong", emu.port, camera=2, username="root", password="nope")
        async with gateway_process(
            tmp_path, {"channels": [good, wrong]}, loop_name, env={"TEST_PASS": "pass word"}
        ) as gw:
            base = f"http://127.0.0.1:{gw.port}"
            await _wait_up(base, "good")
            await asyncio.sleep(1.0)
            api = await get_json(f"{base}/api/v1/channels")
            bad = api["channels"][1]
            assert bad["source_state"]["state"] != "up"
            assert "401" in bad["source_state"]["last_error"]
            text = str(api) + (await get_text(f"{base}/metrics"))[1]
            text += str(await get_json(f"{base}/api/v1/config"))
            assert "pass word" not in text and "nope" not in text
        assert "pass word" not in gw.log() and "nope" not in gw.log()


async def test_slow_viewer_loses_frames_others_do_not(tmp_path: Path, loop_name: str) -> None:
    async with emulator_process(tmp_path, "--resolution", "704x576") as emu:
        data = {
            "channels": [_channel("lobby", emu.port, resolution="704x576")],
            "egress": {"high_water": "64K"},
        }
        async with gateway_process(tmp_path, data, loop_name) as gw:
            base = f"http://127.0.0.1:{gw.port}"
            await _wait_up(base, "lobby")
            slow = asyncio.create_task(_slow_reader(gw.port, "/channels/lobby/mjpeg", 12.0))
            await asyncio.sleep(2.0)
            rss_start = rss_kib(gw.pid)
            fast = await asyncio.gather(
                *(read_mjpeg(f"{base}/channels/lobby/mjpeg", duration=8.0) for _ in range(5))
            )
            rss_end = rss_kib(gw.pid)
            sessions = await get_json(f"{base}/api/v1/sessions")
            slow_body = await slow
            metrics = (await get_text(f"{base}/metrics"))[1]
        for got in fast:
            _whole(got.frames)
            assert got.fps() > 22, got.fps()
        drops = metric(
            metrics,
            "coaxgate_frames_dropped_total",
            channel="lobby",
            protocol="mjpeg",
            reason="slow_viewer",
        )
        assert drops > 50, "the slow viewer lost whole frames"
        (slow_session,) = [s for s in sessions["sessions"] if s["frames_dropped"] > 0]
        assert slow_session["frames_dropped_by_reason"]["slow_viewer"] > 20
        assert rss_end < rss_start * 1.10 + 2048, (rss_start, rss_end)
        # What the slow viewer got is a sequence of whole frames, never part of one.
        head, _, body = slow_body.partition(b"\r\n\r\n")
        assert b"multipart/x-mixed-replace" in head
        parts = MultipartScanner(b"myboundary").feed(body)
        assert len(parts) > 10
        for part in parts:
            assert isinstance(part, Part)
            assert check_frame(part.body, 4 << 20).reason is None


async def _slow_reader(port: int, path: str, seconds: float) -> bytes:
    """An HTTP client that reads at about a tenth of a D1 25 fps stream's rate."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=4096)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    received = bytearray()
    start = time.monotonic()
    rate = 100_000  # bytes per second; the stream is about 1 MB/s
    while time.monotonic() - start < seconds:
        chunk = await reader.read(4096)
        if not chunk:
            break
        received += chunk
        await asyncio.sleep(len(chunk) / rate)
    writer.close()
    return bytes(received)
