"""Multicast across a network boundary: the gateway in one namespace, viewers in another."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .gst import rtspsrc_ok
from .netns import NetnsPair, gateway_in, http_get, require_netns, run_in
from .support import metric, require_peer

GROUP = "239.255.42.7"
PORT = 5004


@pytest.fixture
def nets() -> Iterator[NetnsPair]:
    require_netns()
    with NetnsPair() as pair:
        yield pair


def multicast_gateway(
    nets: NetnsPair, tmp_path: Path, ttl: int, always_on: bool
) -> contextlib.AbstractAsyncContextManager[subprocess.Popen[bytes]]:
    """`coaxgate run` inside the gateway namespace, with one multicast channel."""
    data: dict[str, Any] = {
        "server": {"host": "0.0.0.0", "http_port": 8080, "rtsp_port": 8554},
        "rtsp": {"rtp_port": 0},
        "channels": [
            {
                "name": "lobby",
                "source": "emulator:1?resolution=352x288&fps=25",
                "multicast": {
                    "group": GROUP,
                    "port": PORT,
                    "ttl": ttl,
                    "interface": nets.gw_ip,
                    "always_on": always_on,
                },
            }
        ],
    }
    return gateway_in(nets, tmp_path, data, ["lobby"])


async def receive(nets: NetnsPair, ns: str, seconds: float, ifaddr: str) -> dict[str, Any]:
    rc, out = await run_in(
        nets.python(ns, "tests/mcast_receiver.py", GROUP, str(PORT), str(seconds), ifaddr)
    )
    assert rc == 0, out
    return dict(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.loops("uvloop")
async def test_receivers_get_the_group_with_its_ttl(
    nets: NetnsPair, tmp_path: Path, loop_name: str
) -> None:
    async with multicast_gateway(nets, tmp_path, ttl=7, always_on=True):
        got = await receive(nets, nets.viewer, 2.0, nets.viewer_ip)
        assert got["frames"] >= 40, got
        assert got["ttls"] == [7], "packets carry the configured TTL"
        assert got["ssrcs"] == 1, "one stream for everyone"
        # A player opens the SDP file directly.
        ffmpeg = require_peer("ffmpeg")
        sdp = await http_get(nets, f"http://{nets.gw_ip}:8080/channels/lobby.sdp")
        assert f"c=IN IP4 {GROUP}/7" in sdp and f"m=video {PORT} RTP/AVP 26" in sdp
        sdp_path = tmp_path / "lobby.sdp"
        sdp_path.write_text(sdp)
        rc, out = await run_in(
            nets.run_in(
                nets.viewer,
                ffmpeg,
                "-hide_banner",
                "-nostdin",
                "-protocol_whitelist",
                "file,udp,rtp",
                "-i",
                str(sdp_path),
                "-frames:v",
                "25",
                "-f",
                "null",
                "-",
            )
        )
        assert rc == 0, out
        assert "frame=   25" in out, out


@pytest.mark.loops("uvloop")
async def test_ttl_zero_stays_on_the_host(nets: NetnsPair, tmp_path: Path, loop_name: str) -> None:
    async with multicast_gateway(nets, tmp_path, ttl=0, always_on=True):
        # The remote receiver alone first: no local member may hide a leak.
        remote = await receive(nets, nets.viewer, 2.0, nets.viewer_ip)
        local = await receive(nets, nets.gw, 2.0, nets.gw_ip)
        assert local["frames"] >= 40, local
        assert remote["packets"] == 0, str(remote)


@pytest.mark.loops("uvloop")
async def test_rtsp_multicast_viewers_share_one_stream(
    nets: NetnsPair, tmp_path: Path, loop_name: str
) -> None:
    gst = require_peer("gst-launch-1.0")
    async with multicast_gateway(nets, tmp_path, ttl=4, always_on=False):
        idle = await receive(nets, nets.viewer, 1.0, nets.viewer_ip)
        assert idle["packets"] == 0, "the group starts with its first viewer"
        url = f"rtsp://{nets.gw_ip}:8554/lobby"
        argv = nets.run_in(
            nets.viewer,
            gst,
            "-q",
            "rtspsrc",
            f"location={url}",
            "protocols=udp-mcast",
            "!",
            "rtpjpegdepay",
            "!",
            "jpegdec",
            "!",
            "fakesink",
            "num-buffers=100",
        )
        viewers = [asyncio.create_task(run_in(argv)) for _ in range(2)]
        await asyncio.sleep(2.0)
        metrics = await http_get(nets, f"http://{nets.gw_ip}:8080/metrics")
        results = await asyncio.gather(*viewers)
        for rc, out in results:
            assert rtspsrc_ok(rc, out), out
        assert metric(metrics, "coaxgate_viewers", channel="lobby", protocol="multicast") == 2
        sent = metric(
            metrics, "coaxgate_egress_frames_total", channel="lobby", protocol="multicast"
        )
        received = metric(metrics, "coaxgate_source_frames_total", channel="lobby")
        assert 0 < sent <= received, "each frame goes to the group once, not once per viewer"
