"""Real RTSP clients against the running gateway: ffmpeg and GStreamer, every transport."""

from __future__ import annotations

import json

import pytest

from gateway.app import Gateway

from .gst import rtspsrc_ok
from .support import emulator_stack, require_peer, run_peer


def _urls(gw: Gateway, transport: str) -> list[str]:
    port = gw.http_port if transport == "http" else gw.rtsp_port
    return [
        f"rtsp://127.0.0.1:{port}/cam1",
        f"rtsp://127.0.0.1:{port}/axis-media/media.amp?camera=2&videocodec=jpeg",
    ]


@pytest.mark.parametrize("transport", ["udp", "tcp", "http"])
async def test_ffmpeg(loop_name: str, transport: str) -> None:
    ffmpeg = require_peer("ffmpeg")
    async with emulator_stack() as gw:
        for url in _urls(gw, transport):
            rc, _, err = await run_peer(
                ffmpeg,
                "-hide_banner",
                "-nostdin",
                "-rtsp_transport",
                transport,
                "-i",
                url,
                "-frames:v",
                "25",
                "-f",
                "null",
                "-",
            )
            assert rc == 0, err
            assert "mjpeg" in err and "352x288" in err, err
            assert "frame=   25" in err, err
        assert not list(gw.sessions)


@pytest.mark.parametrize("transport", ["udp", "tcp", "http"])
async def test_gstreamer(loop_name: str, transport: str) -> None:
    gst = require_peer("gst-launch-1.0")
    async with emulator_stack() as gw:
        for url in _urls(gw, transport):
            if transport == "http":
                url = url.replace("rtsp://", "rtsph://")
                protocols = []
            else:
                protocols = [f"protocols={transport}"]
            rc, out, err = await run_peer(
                gst,
                "-q",
                "rtspsrc",
                f"location={url}",
                *protocols,
                "!",
                "rtpjpegdepay",
                "!",
                "jpegdec",
                "!",
                "fakesink",
                "num-buffers=25",
            )
            assert rtspsrc_ok(rc, out + err), out + err


async def test_ffprobe_reports_stream(loop_name: str) -> None:
    ffprobe = require_peer("ffprobe")
    async with emulator_stack() as gw:
        rc, out, err = await run_peer(
            ffprobe,
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-print_format",
            "json",
            "-show_streams",
            f"rtsp://127.0.0.1:{gw.rtsp_port}/cam2/jpeg",
        )
        assert rc == 0, err
        (stream,) = json.loads(out)["streams"]
        assert stream["codec_name"] == "mjpeg"
        assert (stream["width"], stream["height"]) == (352, 288)
        # Frames are timestamped on arrival from the camera, so ffprobe's guess of
        # the rate carries that jitter; it must still be about the source's 25.
        num, _, den = stream["r_frame_rate"].partition("/")
        assert 20 <= int(num) / int(den or 1) <= 30, stream["r_frame_rate"]


async def test_ffprobe_reports_h264_constrained_baseline(loop_name: str) -> None:
    ffprobe = require_peer("ffprobe")
    async with emulator_stack() as gw:
        rc, out, err = await run_peer(
            ffprobe,
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-print_format",
            "json",
            "-show_streams",
            f"rtsp://127.0.0.1:{gw.rtsp_port}/cam1/h264",
        )
        assert rc == 0, err
        (stream,) = json.loads(out)["streams"]
        assert stream["codec_name"] == "h264"
        assert stream["profile"] == "Constrained Baseline"
        assert (stream["width"], stream["height"]) == (352, 288)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_h264_ffmpeg_and_gstreamer(loop_name: str, transport: str) -> None:
    ffmpeg = require_peer("ffmpeg")
    gst = require_peer("gst-launch-1.0")
    async with emulator_stack() as gw:
        for url in (
            f"rtsp://127.0.0.1:{gw.rtsp_port}/cam1/h264",
            f"rtsp://127.0.0.1:{gw.rtsp_port}/axis-media/media.amp?camera=2&videocodec=h264",
        ):
            rc, _, err = await run_peer(
                ffmpeg,
                "-hide_banner",
                "-nostdin",
                "-rtsp_transport",
                transport,
                "-i",
                url,
                "-frames:v",
                "50",
                "-f",
                "null",
                "-",
            )
            assert rc == 0, err
            assert "frame=   50" in err, err
            rc, out, err = await run_peer(
                gst,
                "-q",
                "rtspsrc",
                f"location={url}",
                f"protocols={transport}",
                "!",
                "rtph264depay",
                "!",
                "avdec_h264",
                "!",
                "fakesink",
                "num-buffers=50",
            )
            assert rtspsrc_ok(rc, out + err), out + err
