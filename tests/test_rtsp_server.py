"""The RTSP server against a protocol-level client: methods, transports, RTCP, errors."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway import config
from gateway.app import Gateway
from gateway.rtp import rtcp

from .rtsp_client import RtspClient
from .support import decode_jpeg, free_port, get_text, metric

CIF = "352x288"


@contextlib.asynccontextmanager
async def running(extra: dict[str, Any] | None = None, **channel: Any) -> AsyncIterator[Gateway]:
    """An in-process gateway with one emulated CIF 25 fps channel."""
    data: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "http_port": free_port(), "rtsp_port": free_port()},
        "rtsp": {"rtp_port": 0},
        "channels": [
            {"name": "lobby", "source": f"emulator:1?resolution={CIF}&fps=25", **channel},
            {"name": "dock", "source": f"emulator:2?resolution={CIF}&fps=25"},
        ],
    }
    for key, value in (extra or {}).items():
        data[key] = {**data.get(key, {}), **value}
    gw = Gateway(config.parse(data))
    await gw.start()
    try:
        for _ in range(200):
            if gw.channels["lobby"].frames_in > 2:
                break
            await asyncio.sleep(0.05)
        yield gw
    finally:
        await gw.stop()


@contextlib.asynccontextmanager
async def client(gw: Gateway) -> AsyncIterator[RtspClient]:
    c = RtspClient("127.0.0.1", gw.rtsp_port)
    await c.connect()
    try:
        yield c
    finally:
        await c.close()


def url(gw: Gateway, path: str = "lobby") -> str:
    return f"rtsp://127.0.0.1:{gw.rtsp_port}/{path}"


async def _until(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_options_and_describe(loop_name: str) -> None:
    async with running() as gw, client(gw) as c:
        opts = await c.request("OPTIONS", url(gw))
        assert opts.status == 200
        assert "DESCRIBE" in (opts.headers.get("Public") or "")
        desc = await c.request("DESCRIBE", url(gw), {"Accept": "application/sdp"})
        assert desc.status == 200
        assert desc.headers.get("Content-Type") == "application/sdp"
        assert desc.headers.get("Content-Base") == url(gw) + "/"
        sdp = desc.body.decode()
        assert sdp.startswith("v=0\r\n")
        for line in (
            "m=video 0 RTP/AVP 26",
            "a=rtpmap:26 JPEG/90000",
            f"a=control:{url(gw)}/trackID=0",
            "a=framerate:25",
            "a=range:npt=now-",
            "c=IN IP4 0.0.0.0",
            "a=x-dimensions:352,288",
        ):
            assert line + "\r\n" in sdp, line
        axis = await c.request("DESCRIBE", url(gw, "axis-media/media.amp?camera=2&videocodec=jpeg"))
        assert axis.status == 200
        assert (
            f"a=control:{url(gw, 'axis-media/media.amp')}/trackID=0?camera=2&videocodec=jpeg"
            in axis.body.decode()
        )


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_session_delivers_frames_and_rtcp(loop_name: str, transport: str) -> None:
    extra = {"rtsp": {"sender_report_interval": 0.5}}
    async with running(extra) as gw, client(gw) as c:
        setup = await c.play_session(url(gw), transport)
        spec = setup.headers.get("Transport") or ""
        session_header = setup.headers.get("Session") or ""
        assert ";timeout=60" in session_header and len(c.session or "") >= 16
        ssrc = int(spec.split("ssrc=")[1].split(";")[0], 16)
        if transport == "udp":
            assert f"client_port={c.client_ports[0]}-{c.client_ports[1]}" in spec  # type: ignore[index]
            assert "server_port=" in spec
        else:
            assert "interleaved=0-1" in spec
        rtp_info = c.play_response.headers.get("RTP-Info") or ""
        first_seq = int(rtp_info.split("seq=")[1].split(";")[0])
        rtptime = int(rtp_info.split("rtptime=")[1].split(";")[0])

        await _until(lambda: len(c.media.frames) >= 25 and c.media.rtcp, timeout=10)
        packets = c.media.packets
        assert all(p.ssrc == ssrc and p.payload_type == 26 for p in packets)
        assert packets[0].seq == first_seq
        seqs = [p.seq for p in packets]
        assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(seqs)), "no loss"
        assert abs((packets[0].timestamp - rtptime) % (1 << 32)) < 90000 / 2
        assert sum(p.marker for p in packets) >= 25
        for frame in c.media.frames[:3]:
            assert decode_jpeg(frame) == (352, 288)
        assert c.media.depacketizer.frames >= 25
        assert 20 < c.media.fps() < 30

        # The sender report maps the same instant on both clocks.
        sr = next(p for p in c.media.rtcp if isinstance(p, rtcp.SenderReport))
        assert sr.ssrc == ssrc
        assert abs(rtcp.unix_from_ntp(sr.ntp_timestamp) - time.time()) < 2.0
        last = packets[-1]
        drift = ((sr.rtp_timestamp - last.timestamp + (1 << 31)) % (1 << 32)) - (1 << 31)
        assert abs(drift) < 90000 * 2
        assert sr.packet_count > 0 and sr.octet_count > 0

        # A receiver report's loss and jitter show up in the API and metrics.
        block = rtcp.ReportBlock(ssrc, 64, 12, last.seq, 900, 0, 0)
        report = rtcp.compound(rtcp.receiver_report(0x1234, [block]), rtcp.sdes_cname(0x1234, "t"))
        if transport == "udp":
            port = int(spec.split("server_port=")[1].split("-")[1].split(";")[0])
            c.send_rtcp(report, ("127.0.0.1", port))
        else:
            from gateway.rtsp.message import Interleaved

            c.send_raw(Interleaved(1, report).serialize())
        await _until(lambda: any(s.rtcp for s in gw.sessions))
        (session,) = [s.to_json() for s in gw.sessions if s.channel == "lobby"]
        assert session["rtcp"] == {
            "fraction_lost": 0.25,
            "cumulative_lost": 12,
            "jitter_seconds": 0.01,
        }
        assert session["protocol"] == f"rtsp_{transport}"
        assert session["bytes_sent"] > 100_000 and session["frames_sent"] >= 25

        teardown = await c.request("TEARDOWN", url(gw))
        assert teardown.status == 200
        await _until(lambda: any(isinstance(p, rtcp.Bye) for p in c.media.rtcp))
        assert not list(gw.sessions)
        again = await c.request("OPTIONS", url(gw))
        assert again.status == 200, "the connection stays usable"


async def test_pause_and_resume(loop_name: str) -> None:
    async with running() as gw, client(gw) as c:
        await c.play_session(url(gw), "tcp")
        await _until(lambda: len(c.media.frames) >= 5)
        assert (await c.request("PAUSE", url(gw))).status == 200
        await asyncio.sleep(0.2)
        paused_at = len(c.media.packets)
        await asyncio.sleep(0.5)
        assert len(c.media.packets) == paused_at
        assert (await c.request("PLAY", url(gw))).status == 200
        await _until(lambda: len(c.media.packets) > paused_at + 10)


async def test_fps_limit(loop_name: str) -> None:
    async with running() as gw, client(gw) as c:
        await c.play_session(url(gw, "axis-media/media.amp?camera=1&fps=5"), "udp")
        await asyncio.sleep(4.2)
        assert 4.5 <= c.media.fps() <= 5.5, c.media.fps()


async def test_errors_keep_the_connection(loop_name: str) -> None:
    async with running() as gw, client(gw) as c:
        u = url(gw)
        cases: list[tuple[bytes, int]] = [
            (f"OPTIONS {u} RTSP/1.0\r\n\r\n".encode(), 400),  # no CSeq
            (f"OPTIONS {u} RTSP/2.0\r\nCSeq: 1\r\n\r\n".encode(), 505),
            (f"FLY {u} RTSP/1.0\r\nCSeq: 2\r\n\r\n".encode(), 501),
            (f"RECORD {u} RTSP/1.0\r\nCSeq: 3\r\n\r\n".encode(), 405),
            (f"PLAY {u} RTSP/1.0\r\nCSeq: 4\r\n\r\n".encode(), 454),
            (f"PLAY {u} RTSP/1.0\r\nCSeq: 5\r\nSession: 0123456789ABCDEF\r\n\r\n".encode(), 454),
            (f"DESCRIBE {url(gw, 'nope')} RTSP/1.0\r\nCSeq: 6\r\n\r\n".encode(), 404),
            (f"DESCRIBE {u}?fps=x RTSP/1.0\r\nCSeq: 7\r\n\r\n".encode(), 400),
            (f"DESCRIBE {u}/h265 RTSP/1.0\r\nCSeq: 8\r\n\r\n".encode(), 404),
            (f"SETUP {u}/trackID=0 RTSP/1.0\r\nCSeq: 9\r\n\r\n".encode(), 400),
            (
                f"SETUP {u}/trackID=0 RTSP/1.0\r\nCSeq: 10\r\n"
                "Transport: RTP/SAVP;unicast\r\n\r\n".encode(),
                461,
            ),
            (
                f"SETUP {u}/trackID=0 RTSP/1.0\r\nCSeq: 11\r\n"
                "Transport: RTP/AVP;multicast\r\n\r\n".encode(),
                461,
            ),
            (f"SETUP {u}/trackID=3 RTSP/1.0\r\nCSeq: 12\r\nTransport: x\r\n\r\n".encode(), 404),
            (f"OPTIONS {u} RTSP/1.0\r\nCSeq: 13\r\nRequire: funky\r\n\r\n".encode(), 551),
            (f"OPTIONS {u} RTSP/1.0\r\nCSeq: 14\r\nBad Header\r\n\r\n".encode(), 400),
            (f"DESCRIBE {u} RTSP/1.0\r\nCSeq: 15\r\nAccept: text/html\r\n\r\n".encode(), 406),
        ]
        for raw, status in cases:
            c.send_raw(raw)
            resp = await c.response()
            assert resp.status == status, (raw, resp)
        assert (await c.request("OPTIONS", u)).status == 200


async def test_session_bound_to_its_connection(loop_name: str) -> None:
    async with running() as gw, client(gw) as owner, client(gw) as thief:
        await owner.play_session(url(gw), "tcp")
        thief.session = owner.session
        for method in ("PLAY", "PAUSE", "TEARDOWN", "GET_PARAMETER"):
            resp = await thief.request(method, url(gw))
            assert resp.status == 454, method
        assert len(list(gw.sessions)) == 1
        # Closing the owner's connection ends its session.
        await owner.close()
        await _until(lambda: not list(gw.sessions))


async def test_session_timeout_and_keepalive(loop_name: str) -> None:
    async with (
        running({"rtsp": {"session_timeout": 5}}) as gw,
        client(gw) as kept,
        client(gw) as idle,
    ):
        setup = await kept.play_session(url(gw), "udp")
        assert "timeout=5" in (setup.headers.get("Session") or "")
        await idle.play_session(url(gw), "udp")
        for _ in range(4):
            await asyncio.sleep(1.8)
            assert (await kept.request("GET_PARAMETER", url(gw))).status == 200
        assert len(list(gw.sessions)) == 1, "the idle session timed out, the kept one did not"
        assert any(isinstance(p, rtcp.Bye) for p in idle.media.rtcp)


async def test_reencodes_what_rfc2435_cannot_carry(loop_name: str) -> None:
    async with running(source=f"emulator:1?resolution={CIF}&fps=25&subsampling=444") as gw:
        async with client(gw) as c:
            await c.play_session(url(gw), "tcp")
            await _until(lambda: len(c.media.frames) >= 10)
            for frame in c.media.frames[:3]:
                assert decode_jpeg(frame) == (352, 288)
        assert gw.channels["lobby"].reencoded["sampling"] >= 10
        text = (await get_text(f"http://127.0.0.1:{gw.http_port}/metrics"))[1]
        assert (
            metric(text, "coaxgate_jpeg_reencoded_total", channel="lobby", reason="sampling") >= 10
        )


async def test_many_sessions_share_one_packetization(loop_name: str) -> None:
    async with running() as gw:
        clients = [RtspClient("127.0.0.1", gw.rtsp_port) for _ in range(20)]
        for i, c in enumerate(clients):
            await c.connect()
            await c.play_session(url(gw), "udp" if i % 2 else "tcp")
        try:
            await _until(lambda: all(len(c.media.frames) >= 10 for c in clients), timeout=10)
            ssrcs = {c.media.packets[0].ssrc for c in clients}
            assert len(ssrcs) == 20, "each viewer has its own SSRC"
            text = (await get_text(f"http://127.0.0.1:{gw.http_port}/metrics"))[1]
            assert metric(text, "coaxgate_viewers", channel="lobby", protocol="rtsp_udp") == 10
            assert metric(text, "coaxgate_viewers", channel="lobby", protocol="rtsp_tcp") == 10
            assert (
                metric(text, "coaxgate_egress_packets_total", channel="lobby", protocol="rtsp_udp")
                > 0
            )
        finally:
            for c in clients:
                await c.close()


async def test_slow_tcp_viewer_loses_whole_frames_then_is_cut_off(loop_name: str) -> None:
    extra = {"egress": {"high_water": "64K", "stall_timeout": 1.0}}
    async with running(extra, source="emulator:1?resolution=704x576&fps=25") as gw:
        async with client(gw) as fast, client(gw) as slow:
            await fast.play_session(url(gw), "tcp")
            await slow.play_session(url(gw), "tcp")
            # The slow viewer stops reading: the kernel's buffers fill, then the
            # gateway's, and from then on it loses whole frames until cut off.
            slow.writer.transport.pause_reading()
            slow._task.cancel()
            start, frames = time.monotonic(), len(fast.media.frames)
            await _until(lambda: len(list(gw.sessions)) == 1, timeout=30)
            rate = (len(fast.media.frames) - frames) / (time.monotonic() - start)
            assert rate > 22, "the other viewer keeps full rate"
        channel = gw.channels["lobby"]
        assert channel.dropped[("rtsp_tcp", "slow_viewer")] > 5
        # What the fast viewer got decodes: whole frames only.
        assert fast.media.depacketizer.dropped["offset"] == 0
        assert fast.media.depacketizer.dropped["seq_gap"] == 0


async def test_h264_session_starts_with_an_idr(loop_name: str) -> None:
    from gateway._ext.rtph264 import nal_type, split_annexb

    async with running({"transcode": {"idle_timeout": 0.5}}) as gw, client(gw) as c:
        desc = await c.request("DESCRIBE", url(gw, "lobby/h264"))
        sdp = desc.body.decode()
        assert "m=video 0 RTP/AVP 96\r\n" in sdp and "a=rtpmap:96 H264/90000" in sdp
        assert "packetization-mode=1" in sdp and "profile-level-id=42" in sdp
        await c.play_session(url(gw, "lobby/h264"), "udp")
        played = time.monotonic()
        await _until(lambda: len(c.media.frames) >= 30, timeout=10)
        first = c.media.frames[0]
        types = [nal_type(n) for n in split_annexb(first)]
        assert types[:2] == [7, 8] and 5 in types, types  # SPS, PPS, (SEI,) the IDR slice
        assert c.media.frame_times[0] - played < 1.0, "an IDR within a second of PLAY"
        assert c.media.packets[0].payload_type == 96
        assert c.media.h264.dropped == dict.fromkeys(c.media.h264.dropped, 0)
        assert decode_h264(c.media.frames[:30]) == [(352, 288)] * 30
        feed = gw.h264["lobby"]
        assert feed.running and feed.sps is not None
        assert (await c.request("TEARDOWN", url(gw, "lobby/h264"))).status == 200
        await _until(lambda: not feed.running, timeout=5)


def decode_h264(access_units: list[bytes]) -> list[tuple[int, int]]:
    """Decode a stream of access units in order; the sizes of the pictures."""
    import av

    codec = av.CodecContext.create("h264", "r")
    sizes = []
    for au in access_units:
        sizes += [(f.width, f.height) for f in codec.decode(av.Packet(au))]
    sizes += [(f.width, f.height) for f in codec.decode(None)]
    return sizes
