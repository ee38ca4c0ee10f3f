"""Hostile clients against the running gateway: each gets the right error or a close,
honest viewers keep their frames, and descriptors and memory come back to where they were."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from .support import gateway_process, get_json, get_text, metric, open_fds, read_mjpeg, rss_kib

SOURCE = "emulator:1?resolution=352x288&fps=25"


async def _exchange(port: int, data: bytes, *, read_for: float = 3.0) -> bytes:
    """Send `data`, return what comes back until the server closes or `read_for` passes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = b""
    try:
        writer.write(data)
        await writer.drain()
        deadline = time.monotonic() + read_for
        while time.monotonic() < deadline and len(out) < 1 << 16:
            try:
                chunk = await asyncio.wait_for(reader.read(4096), deadline - time.monotonic())
            except TimeoutError:
                break
            if not chunk:
                break
            out += chunk
    except ConnectionError:
        pass
    finally:
        writer.close()
    return out


def _status(reply: bytes) -> int:
    line = reply.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[1].isdigit() else 0


def _rtsp_cases(port: int) -> dict[str, tuple[bytes, set[int]]]:
    url = f"rtsp://127.0.0.1:{port}/lobby"
    return {
        "oversized request line": (
            b"OPTIONS rtsp://x/" + b"a" * 100_000 + b" RTSP/1.0\r\nCSeq: 1\r\n\r\n",
            {414},
        ),
        "a thousand headers": (
            f"OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\n".encode()
            + b"".join(b"X-%d: y\r\n" % i for i in range(1000))
            + b"\r\n",
            {400, 431},
        ),
        "oversized body": (
            f"SET_PARAMETER {url} RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 10000000\r\n\r\n".encode()
            + b"x" * 100_000,
            {413},
        ),
        "NUL in a header": (
            f"OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\nX-Bad: a\x00b\r\n\r\n".encode(),
            {400},
        ),
        # An interleaved frame announcing more than is sent, then garbage that never
        # becomes a request: refused at the request-line limit, not buffered forever.
        "interleaved length past the buffer": (b"$\x00\xff\xff" + b"z" * 140_000, {400, 414}),
        "not RTSP at all": (b"\x16\x03\x01\x02\x00" + bytes(range(256)) * 4 + b"\r\n\r\n", {400}),
    }


def _http_cases() -> dict[str, tuple[bytes, set[int]]]:
    whep = (
        b"POST /channels/lobby/whep HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\n"
        b"Content-Length: 10000000\r\n\r\n" + b"v" * 20_000
    )
    return {
        "oversized request line": (
            b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            {400, 414},
        ),
        "oversized header": (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
            {400, 431},
        ),
        "a thousand headers": (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-%d: y\r\n" % i for i in range(1000))
            + b"\r\n",
            {400, 431},
        ),
        "NUL in a header": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n", {400}),
        "oversized WHEP offer": (whep, {413}),
        "traversal": (
            b"GET /static/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
            {403, 404},
        ),
        "bad channel name": (
            b"GET /channels/%00x%2F..%2F/mjpeg HTTP/1.1\r\nHost: x\r\n\r\n",
            {404},
        ),
    }


@pytest.mark.loops("uvloop")
async def test_hostile_requests_get_errors_and_cost_nothing(tmp_path: Path, loop_name: str) -> None:
    data: dict[str, Any] = {
        "rtsp": {"rtp_port": 0},
        "channels": [{"name": "lobby", "source": SOURCE}],
    }
    async with gateway_process(tmp_path, data, loop_name) as gw:
        http_port: int = getattr(gw, "port")  # noqa: B009 - set by gateway_process
        base = f"http://127.0.0.1:{http_port}"
        rtsp_port = int((await get_json(f"{base}/api/v1/config"))["server"]["rtsp_port"])
        honest = asyncio.create_task(read_mjpeg(f"{base}/channels/lobby/mjpeg", duration=14))
        await asyncio.sleep(2)
        # Warm up every path once, then take the baseline.
        for port, cases in ((rtsp_port, _rtsp_cases(rtsp_port)), (http_port, _http_cases())):
            for payload, _ in cases.values():
                await _exchange(port, payload, read_for=0.5)
        await asyncio.sleep(0.5)
        fds, rss = open_fds(gw.pid), rss_kib(gw.pid)
        for _ in range(5):  # rounds: anything kept per request would show up
            for port, cases in ((rtsp_port, _rtsp_cases(rtsp_port)), (http_port, _http_cases())):
                replies = await asyncio.gather(
                    *(_exchange(port, payload) for payload, _ in cases.values())
                )
                for (name, (_, wanted)), reply in zip(cases.items(), replies, strict=True):
                    assert _status(reply) in wanted, (port, name, reply[:200])
        await asyncio.sleep(0.5)
        assert open_fds(gw.pid) <= fds + 2
        assert rss_kib(gw.pid) < rss * 1.10
        received = await honest
        assert received.fps() == pytest.approx(25, abs=1.5)
        assert max(b - a for a, b in zip(received.times, received.times[1:], strict=False)) < 0.5
        text = (await get_text(f"{base}/metrics"))[1]
        assert metric(text, "coaxgate_rtsp_parse_errors_total") >= 5 * 5
        assert metric(text, "coaxgate_http_parse_errors_total") >= 5 * 4
        log = gw.log()
        assert "Traceback" not in log, log[-3000:]
