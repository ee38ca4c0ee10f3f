"""Multicast across a network boundary: the gateway in one namespace, viewers in another."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from .netns import NetnsPair, require_netns
from .support import ROOT, metric, require_peer, write_config

GROUP = "239.255.42.7"
PORT = 5004


@pytest.fixture
def nets() -> Iterator[NetnsPair]:
    require_netns()
    with NetnsPair() as pair:
        yield pair


@contextlib.asynccontextmanager
async def gateway_in(
    nets: NetnsPair, tmp_path: Path, ttl: int, always_on: bool
) -> AsyncIterator[subprocess.Popen[bytes]]:
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
    path = write_config(tmp_path, data)
    log_path = tmp_path / "gateway.log"
    with open(log_path, "wb") as log:  # noqa: ASYNC230 - a local file, opened once
        proc = subprocess.Popen(  # noqa: ASYNC220 - it runs beside the test, not awaited
            nets.run_in(nets.gw, sys.executable, "-m", "gateway.cli", "run", "-c", str(path)),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        deadline = time.monotonic() + 20
        while "source lobby up" not in log_path.read_text():
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            await asyncio.sleep(0.1)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def run(argv: list[str], timeout: float = 60) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        return -9, out.decode(errors="replace")
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def receive(nets: NetnsPair, ns: str, seconds: float, ifaddr: str) -> dict[str, Any]:
    rc, out = await run(
        nets.python(ns, "tests/mcast_receiver.py", GROUP, str(PORT), str(seconds), ifaddr)
    )
    assert rc == 0, out
    return dict(json.loads(out.strip().splitlines()[-1]))


async def http_get(nets: NetnsPair, url: str) -> str:
    code = (
        "import urllib.request, sys; "
        f"sys.stdout.write(urllib.request.urlopen({url!r}).read().decode())"
    )
    rc, out = await run(nets.run_in(nets.viewer, sys.executable, "-c", code))
    assert rc == 0, out
    return out


@pytest.mark.loops("uvloop")
async def test_receivers_get_the_group_with_its_ttl(
    nets: NetnsPair, tmp_path: Path, loop_name: str
) -> None:
    async with gateway_in(nets, tmp_path, ttl=7, always_on=True):
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
        rc, out = await run(
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
    async with gateway_in(nets, tmp_path, ttl=0, always_on=True):
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
    async with gateway_in(nets, tmp_path, ttl=4, always_on=False):
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
        viewers = [asyncio.create_task(run(argv)) for _ in range(2)]
        await asyncio.sleep(2.0)
        metrics = await http_get(nets, f"http://{nets.gw_ip}:8080/metrics")
        results = await asyncio.gather(*viewers)
        for rc, out in results:
            assert rc == 0, out
        assert metric(metrics, "coaxgate_viewers", channel="lobby", protocol="multicast") == 2
        sent = metric(
            metrics, "coaxgate_egress_frames_total", channel="lobby", protocol="multicast"
        )
        received = metric(metrics, "coaxgate_source_frames_total", channel="lobby")
        assert 0 < sent <= received, "each frame goes to the group once, not once per viewer"
