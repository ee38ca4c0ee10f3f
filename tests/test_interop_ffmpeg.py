"""Real clients: ffmpeg and ffprobe against the running gateway."""

from __future__ import annotations

import json

from .support import emulator_stack, require_peer, run_peer


async def test_ffmpeg_decodes_mjpeg(loop_name: str) -> None:
    ffmpeg = require_peer("ffmpeg")
    async with emulator_stack() as gw:
        base = f"http://127.0.0.1:{gw.http_port}"
        for url in (f"{base}/channels/cam1/mjpeg", f"{base}/axis-cgi/mjpg/video.cgi?camera=2"):
            rc, _, err = await run_peer(
                ffmpeg, "-hide_banner", "-nostdin", "-i", url, "-frames:v", "25", "-f", "null", "-"
            )
            assert rc == 0, err
            assert "frame=   25" in err or "frame=25" in err.replace(" ", ""), err


async def test_ffprobe_reads_snapshot(loop_name: str) -> None:
    ffprobe = require_peer("ffprobe")
    async with emulator_stack() as gw:
        base = f"http://127.0.0.1:{gw.http_port}"
        for url in (
            f"{base}/channels/cam2/snapshot.jpg",
            f"{base}/axis-cgi/jpg/image.cgi?camera=1",
        ):
            rc, out, err = await run_peer(
                ffprobe, "-v", "error", "-print_format", "json", "-show_streams", url
            )
            assert rc == 0, err
            (stream,) = json.loads(out)["streams"]
            assert stream["codec_name"] == "mjpeg"
            assert (stream["width"], stream["height"]) == (352, 288)
