"""Real clients: ffmpeg and ffprobe against the running gateway."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from gateway import config
from gateway.app import Gateway
from gateway.sources.emulator import Emulator, EmulatorOptions

from .support import free_port, require_peer


@contextlib.asynccontextmanager
async def _stack() -> AsyncIterator[Gateway]:
    emulator = Emulator(EmulatorOptions(channels=2, resolution=(352, 288)))
    eport = await emulator.start()
    cfg = config.parse(
        {
            "server": {"host": "127.0.0.1", "http_port": free_port(), "rtsp_port": free_port()},
            "channels": [
                {
                    "name": f"cam{i}",
                    "source": f"http://127.0.0.1:{eport}/axis-cgi/mjpg/video.cgi?camera={i}",
                }
                for i in (1, 2)
            ],
        }
    )
    gateway = Gateway(cfg)
    await gateway.start()
    try:
        for _ in range(200):
            if all(c.frames_in > 2 for c in gateway.channels.values()):
                break
            await asyncio.sleep(0.05)
        yield gateway
    finally:
        await gateway.stop()
        await emulator.stop()


async def _run(*argv: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_ffmpeg_decodes_mjpeg(loop_name: str) -> None:
    ffmpeg = require_peer("ffmpeg")
    async with _stack() as gw:
        base = f"http://127.0.0.1:{gw.http_port}"
        for url in (f"{base}/channels/cam1/mjpeg", f"{base}/axis-cgi/mjpg/video.cgi?camera=2"):
            rc, _, err = await _run(
                ffmpeg, "-hide_banner", "-nostdin", "-i", url, "-frames:v", "25", "-f", "null", "-"
            )
            assert rc == 0, err
            assert "frame=   25" in err or "frame=25" in err.replace(" ", ""), err


async def test_ffprobe_reads_snapshot(loop_name: str) -> None:
    ffprobe = require_peer("ffprobe")
    async with _stack() as gw:
        base = f"http://127.0.0.1:{gw.http_port}"
        for url in (
            f"{base}/channels/cam2/snapshot.jpg",
            f"{base}/axis-cgi/jpg/image.cgi?camera=1",
        ):
            rc, out, err = await _run(
                ffprobe, "-v", "error", "-print_format", "json", "-show_streams", url
            )
            assert rc == 0, err
            (stream,) = json.loads(out)["streams"]
            assert stream["codec_name"] == "mjpeg"
            assert (stream["width"], stream["height"]) == (352, 288)
