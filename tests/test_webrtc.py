"""WebRTC (WHEP) end to end, in network namespaces: aiortc and Chromium as viewers.

aiortc and Chromium gather every address of the host they run on, so the
gateway and its viewers live in two namespaces the tests create, joined by a
veth pair; nothing reaches the machine's own network.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from gateway import config
from gateway.app import Gateway

from .netns import NetnsPair, gateway_in, http_get, require_netns, run_in
from .support import free_port, metric, require_peer

CIF = "352x288"


@pytest.fixture
def nets() -> Iterator[NetnsPair]:
    require_netns()
    with NetnsPair() as pair:
        yield pair


def webrtc_gateway(
    nets: NetnsPair,
    tmp_path: Path,
    channels: int = 1,
    resolution: str = CIF,
    webrtc: dict[str, Any] | None = None,
) -> AbstractAsyncContextManager[subprocess.Popen[bytes]]:
    """`coaxgate run` inside the gateway namespace with emulated channels."""
    names = ["lobby", "entrance", "parking", "dock"][:channels]
    data: dict[str, Any] = {
        "server": {"host": "0.0.0.0", "http_port": 8080, "rtsp_port": 8554},
        "rtsp": {"rtp_port": 0},
        "transcode": {"idle_timeout": 1.0},
        "webrtc": webrtc or {},
        "channels": [
            {"name": name, "source": f"emulator:{i}?resolution={resolution}&fps=25"}
            for i, name in enumerate(names, 1)
        ],
    }
    return gateway_in(nets, tmp_path, data, names)


async def whep_clients(
    nets: NetnsPair, peers: int, seconds: float, *flags: str
) -> list[dict[str, Any]]:
    url = f"http://{nets.gw_ip}:8080/channels/lobby/whep"
    rc, out = await run_in(
        nets.python(
            nets.viewer,
            "tests/whep_client.py",
            url,
            "--peers",
            str(peers),
            "--seconds",
            str(seconds),
            *flags,
        )
    )
    assert rc == 0, out
    return list(json.loads(out.splitlines()[0])["peers"])


@pytest.mark.loops("uvloop")
async def test_whep_with_aiortc(nets: NetnsPair, tmp_path: Path, loop_name: str) -> None:
    webrtc = {"udp_ports": "41000-41009", "connect_timeout": 2.0}
    async with webrtc_gateway(nets, tmp_path, webrtc=webrtc):
        (peer,) = await whep_clients(nets, 1, 4.0, "--pli")
        assert peer["status"] == 201 and peer["location"].startswith("/channels/lobby/whep/")
        assert peer["candidate_ports"], peer
        assert all(41000 <= p <= 41009 for p in peer["candidate_ports"]), peer
        assert peer["codec"].startswith("H264/90000"), peer
        assert peer["sizes"] == ["352x288"], peer
        assert peer["frames"] >= 60, peer
        assert peer["delete"] == 200
        metrics = await http_get(nets, f"http://{nets.gw_ip}:8080/metrics")
        assert metric(metrics, "coaxgate_viewers", channel="lobby", protocol="webrtc") == 0
        assert metric(metrics, "coaxgate_transcode_frames_total", channel="lobby") >= 60
        pli = metric(metrics, "coaxgate_keyframe_requests_total", channel="lobby", reason="pli")
        assert pli >= 1, "a PLI from the peer reached the encoder"
        # An offer whose peer never connects is closed after connect_timeout and counted.
        (silent,) = await whep_clients(nets, 1, 3.0, "--no-connect")
        assert silent["status"] == 201
        metrics = await http_get(nets, f"http://{nets.gw_ip}:8080/metrics")
        assert metric(metrics, "coaxgate_webrtc_failures_total", reason="connect_timeout") == 1
        assert metric(metrics, "coaxgate_viewers", channel="lobby", protocol="webrtc") == 0
        await asyncio.sleep(2.0)  # idle_timeout is 1 s in this config
        metrics = await http_get(nets, f"http://{nets.gw_ip}:8080/metrics")
        assert metric(metrics, "coaxgate_transcoder_running", channel="lobby") == 0


@pytest.mark.loops("uvloop")
async def test_one_encode_for_every_viewer(nets: NetnsPair, tmp_path: Path, loop_name: str) -> None:
    async with webrtc_gateway(nets, tmp_path):
        base = f"http://{nets.gw_ip}:8080"
        rtsp = nets.python(
            nets.viewer,
            "bench/rtspload.py",
            "--url",
            f"rtsp://{nets.gw_ip}:8554/lobby/h264",
            "--sessions",
            "20",
            "--transport",
            "udp",
            "--warmup",
            "3",
            "--seconds",
            "6",
        )
        webrtc = asyncio.create_task(whep_clients(nets, 20, 9.0))
        rtsp_task = asyncio.create_task(run_in(rtsp))
        await asyncio.sleep(4.5)
        before = await http_get(nets, f"{base}/metrics")
        await asyncio.sleep(3.0)
        after = await http_get(nets, f"{base}/metrics")
        peers = await webrtc
        rc, out = await rtsp_task
        assert rc == 0, out
        rtsp_result = json.loads(out.splitlines()[-1])
    viewers = metric(before, "coaxgate_viewers", channel="lobby", protocol="webrtc")
    assert viewers == 20
    assert metric(before, "coaxgate_viewers", channel="lobby", protocol="rtsp_udp") == 20
    encoded = metric(after, "coaxgate_transcode_frames_total", channel="lobby") - metric(
        before, "coaxgate_transcode_frames_total", channel="lobby"
    )
    source = metric(after, "coaxgate_source_frames_total", channel="lobby") - metric(
        before, "coaxgate_source_frames_total", channel="lobby"
    )
    dropped = metric(after, "coaxgate_transcode_dropped_total", channel="lobby") - metric(
        before, "coaxgate_transcode_dropped_total", channel="lobby"
    )
    # Each source frame is encoded once (or dropped by the encoder's queue), never per viewer.
    assert abs(encoded + dropped - source) <= 2, (encoded, dropped, source)
    assert all(p["frames"] > 50 for p in peers), [p["frames"] for p in peers]
    assert rtsp_result["lost"] == 0 and rtsp_result["min_fps"] > 20, rtsp_result


@pytest.mark.loops("uvloop")
async def test_viewer_page_in_chromium(nets: NetnsPair, tmp_path: Path, loop_name: str) -> None:
    chromium = require_peer("chromium")
    # Three peers at most: the fourth channel cannot get WebRTC and falls back to MJPEG.
    async with webrtc_gateway(nets, tmp_path, channels=4, webrtc={"max_peers": 3}):
        rc, out = await run_in(
            nets.python(
                nets.viewer,
                "tests/browser_check.py",
                f"http://{nets.gw_ip}:8080/",
                "--seconds",
                "12",
                "--chromium",
                chromium,
            ),
            timeout=120,
        )
        assert rc == 0, out
    samples = json.loads(out.splitlines()[0])["samples"]
    last, earlier = samples[-1]["state"], samples[-4]["state"]
    assert last is not None and set(last) == {"lobby", "entrance", "parking", "dock"}, samples
    modes = sorted(state["mode"] for state in last.values())
    assert modes == ["mjpeg", "webrtc", "webrtc", "webrtc"], samples
    for name, state in last.items():
        if state["mode"] == "mjpeg":
            assert "503" in state["reason"], state
            continue
        assert state["frames"] > earlier[name]["frames"] + 30, (name, samples)
        assert state["fps"] > 15 and state["kbps"] > 50, (name, state)
        assert state["rtt"] is None or state["rtt"] < 0.5


async def test_whep_errors_without_media(loop_name: str) -> None:
    """The HTTP side of WHEP (no ICE gathering happens on these paths)."""
    import aiohttp

    cfg = config.parse(
        {
            "server": {"host": "127.0.0.1", "http_port": free_port(), "rtsp_port": free_port()},
            "rtsp": {"rtp_port": 0},
            "channels": [{"name": "lobby", "source": "emulator:1?resolution=176x144"}],
        }
    )
    gw = Gateway(cfg)
    await gw.start()
    base = f"http://127.0.0.1:{gw.http_port}/channels"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.options(f"{base}/lobby/whep") as r:
                assert r.status == 204
                assert r.headers["Accept-Post"] == "application/sdp"
                assert r.headers["Access-Control-Allow-Origin"] == "*"
            sdp = {"Content-Type": "application/sdp"}
            for method, url, kwargs, status in [
                ("POST", f"{base}/lobby/whep", {"data": "v=0", "headers": {}}, 415),
                ("POST", f"{base}/nope/whep", {"data": "v=0\r\n", "headers": sdp}, 404),
                ("POST", f"{base}/lobby/whep", {"data": "hello", "headers": sdp}, 400),
                ("POST", f"{base}/lobby/whep", {"data": "v=0\r\nm=x\r\n", "headers": sdp}, 400),
                ("PATCH", f"{base}/lobby/whep/abc", {"data": "", "headers": {}}, 405),
                ("DELETE", f"{base}/lobby/whep/abc", {}, 404),
            ]:
                async with http.request(method, url, **kwargs) as r:
                    assert r.status == status, (method, url, await r.text())
                    assert r.headers.get("Access-Control-Allow-Origin") == "*"
        assert not gw.webrtc.peers
        assert not gw.h264["lobby"].running
    finally:
        await gw.stop()


async def test_a_peer_that_falls_behind_skips_to_the_next_idr(loop_name: str) -> None:
    from gateway.media.session import Session
    from gateway.media.unit import Unit
    from gateway.webrtc.track import PackedFrame, PeerTrack

    requests: list[str] = []
    drops: list[tuple[str, int]] = []
    session = Session("webrtc", "peer", "lobby")
    track = PeerTrack(session, 3, requests.append, lambda reason, n: drops.append((reason, n)))

    def unit(keyframe: bool) -> Unit:
        return Unit("h264", b"\x00\x00\x00\x01\x65", 0, 0.0, keyframe)

    frames = [PackedFrame([bytes([i])], i, 1) for i in range(8)]
    track.offer(frames[0], unit(False))  # joined mid-GOP: nothing until an IDR
    assert session.dropped["waiting_idr"] == 1
    for i, key in ((1, True), (2, False), (3, False)):
        track.offer(frames[i], unit(key))
    track.offer(frames[4], unit(False))  # the queue is full: drop it all, wait for an IDR
    assert drops == [("slow_viewer", 4)] and requests == ["slow_peer"]
    track.offer(frames[5], unit(False))
    track.offer(frames[6], unit(True))
    assert await track.recv() is frames[6]
    track.stop()
