"""RTSP pull ingest: SDP offers, RTP receiving, the client, and GStreamer's RTSP server upstream."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway import config
from gateway._ext.rtph264 import RtpH264Depacketizer, nal_type, split_annexb
from gateway.app import Gateway
from gateway.media.unit import Unit
from gateway.rtp import packet as rtp
from gateway.rtsp.client import Credentials, RtspClient, RtspClientError
from gateway.rtsp.sdp import MAX_OFFERED_MEDIA, parse_offer
from gateway.security.digest import ha1, parse_auth_params, response_for
from gateway.sources.base import SourceError
from gateway.sources.rtsp_pull import pick_video, sprop_parameter_sets

from .gst import require_elements
from .support import free_port, get_bytes, require_peer, run_peer, serving

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM = ROOT / "tests" / "gst_rtsp_upstream.py"
AXIS_PATH = "/axis-media/media.amp"

# An Axis encoder's DESCRIBE answer, shortened: H.264 video and AAC audio.
AXIS_SDP = """v=0\r
o=- 1234 1 IN IP4 10.0.0.7\r
s=Session streamed with GStreamer\r
t=0 0\r
a=control:rtsp://10.0.0.7/axis-media/media.amp?camera=1\r
m=video 0 RTP/AVP 96\r
b=AS:50000\r
a=rtpmap:96 H264/90000\r
a=fmtp:96 packetization-mode=1;profile-level-id=4d0029;\
sprop-parameter-sets=Z00AKeKQDwBE/LgLcBAQGkHiRFQ=,aO48gA==\r
a=control:rtsp://10.0.0.7/axis-media/media.amp/trackID=1?camera=1\r
m=audio 0 RTP/AVP 97\r
a=rtpmap:97 mpeg4-generic/16000/1\r
a=fmtp:97 streamtype=5; profile-level-id=15; mode=AAC-hbr; config=1408\r
a=control:rtsp://10.0.0.7/axis-media/media.amp/trackID=2?camera=1\r
"""


# -- SDP offers --------------------------------------------------------------------------


def test_parse_axis_offer() -> None:
    control, media = parse_offer(AXIS_SDP)
    assert control == "rtsp://10.0.0.7/axis-media/media.amp?camera=1"
    video, audio = media
    assert (video.kind, video.payload_type, video.encoding, video.clock_rate) == (
        "video",
        96,
        "H264",
        90000,
    )
    assert video.control == "rtsp://10.0.0.7/axis-media/media.amp/trackID=1?camera=1"
    assert video.fmtp["profile-level-id"] == "4d0029"
    assert (audio.encoding, audio.clock_rate, audio.fmtp["mode"]) == (
        "MPEG4-GENERIC",
        16000,
        "AAC-hbr",
    )
    assert pick_video(media) is video
    sps, pps = sprop_parameter_sets(video.fmtp) or (b"", b"")
    assert sps[0] & 0x1F == 7 and pps[0] & 0x1F == 8
    assert base64.b64encode(pps) == b"aO48gA=="


def test_static_payload_types_need_no_rtpmap() -> None:
    _, media = parse_offer("v=0\nm=video 0 RTP/AVP 26\na=control:trackID=0\n")
    assert (media[0].encoding, media[0].clock_rate, media[0].control) == (
        "JPEG",
        90000,
        "trackID=0",
    )


def test_offer_errors() -> None:
    with pytest.raises(ValueError, match="no media"):
        parse_offer("v=0\ns=nothing\n")
    with pytest.raises(ValueError, match="malformed media line"):
        parse_offer("m=video 0 RTP/AVP\n")
    with pytest.raises(ValueError, match="malformed rtpmap"):
        parse_offer("m=video 0 RTP/AVP 96\na=rtpmap:96 H264/fast\n")
    with pytest.raises(ValueError, match=f"more than {MAX_OFFERED_MEDIA}"):
        parse_offer("m=video 0 RTP/AVP 26\n" * (MAX_OFFERED_MEDIA + 1))
    _, media = parse_offer("m=audio 0 RTP/AVP 0\nm=application 0 RTP/AVP 107\n")
    with pytest.raises(SourceError, match=r"no H\.264 or JPEG video track offered"):
        pick_video(media)


# -- RTP receiving -----------------------------------------------------------------------


def _rtp(seq: int, ts: int, payload: bytes = b"x", *, ssrc: int = 7, extra: bytes = b"") -> bytes:
    return (
        bytes([0x80, 0x60])
        + seq.to_bytes(2, "big")
        + ts.to_bytes(4, "big")
        + (ssrc.to_bytes(4, "big"))
        + extra
        + payload
    )


def test_parse_rtp_header_csrc_extension_padding() -> None:
    csrc = (2).to_bytes(4, "big") * 2
    ext = b"\xbe\xde\x00\x01" + b"\x10\xaa\x00\x00"
    data = bytes([0xB2, 0xE0]) + (513).to_bytes(2, "big") + (9).to_bytes(4, "big")
    data += (5).to_bytes(4, "big") + csrc + ext + b"payload" + b"\x00\x00\x03"
    p = rtp.parse(data)
    assert (p.payload_type, p.marker, p.seq, p.timestamp, p.ssrc) == (96, True, 513, 9, 5)
    assert bytes(p.payload) == b"payload"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x60\x00", "shorter than its 12-byte header"),
        (bytes([0x40]) + bytes(11), "RTP version 1"),
        (bytes([0x90]) + bytes(11) + b"\xbe\xde", "extension runs past"),
        (bytes([0xA0]) + bytes(11) + b"\x05", "longer than the packet"),
        (bytes([0x8F]) + bytes(11), "longer than the packet"),
    ],
)
def test_parse_rtp_errors(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rtp.parse(data)


def test_receiver_stats_loss_wraparound_and_restart() -> None:
    stats = rtp.ReceiverStats(90000)
    seqs = [65533, 65534, 65535, 0, 2, 3]  # 1 is lost, across the wrap
    stamps = [(0xFFFFFFFF - 3600 + i * 3600) & 0xFFFFFFFF for i in range(len(seqs))]
    out = [
        stats.update(7, s, t, i * 0.04) for i, (s, t) in enumerate(zip(seqs, stamps, strict=True))
    ]
    assert out == [i * 3600 for i in range(len(seqs))]  # unwrapped through the 32-bit wrap
    assert (stats.expected, stats.received, stats.lost) == (7, 6, 1)
    assert stats.jitter == pytest.approx(0.0)  # packets exactly on their timestamps
    # A late packet shows as jitter: 10 ms late at 90 kHz.
    stats.update(7, 4, (stamps[-1] + 3600) & 0xFFFFFFFF, 6 * 0.04 + 0.01)
    assert stats.jitter == pytest.approx(0.01 / 16)
    # The camera restarts with a new SSRC: counting starts over, time never steps back.
    before = stats.update(7, 5, (stamps[-1] + 7200) & 0xFFFFFFFF, 7 * 0.04)
    after = stats.update(99, 12000, 5, 8 * 0.04)
    assert after > before and stats.restarts == 1 and stats.lost == 0


# -- authentication toward the camera ------------------------------------------------------


def test_digest_prefers_sha256_and_answers_with_qop() -> None:
    creds = Credentials("root", "secret")
    creds.take_challenge(
        [
            'Digest realm="AXIS_ACCC8E", nonce="abc", algorithm=MD5, qop="auth"',
            'Digest realm="AXIS_ACCC8E", nonce="def", algorithm=SHA-256, qop="auth"',
            'Basic realm="AXIS_ACCC8E"',
        ]
    )
    header = creds.header("DESCRIBE", "rtsp://cam/axis-media/media.amp")
    scheme, _, rest = header.partition(" ")
    p = parse_auth_params(rest)
    assert scheme == "Digest" and p["algorithm"] == "SHA-256" and p["nonce"] == "def"
    key = ha1("SHA-256", "root", "AXIS_ACCC8E", "secret")
    expected = response_for(
        "SHA-256", key, "def", "DESCRIBE", p["uri"], p["nc"], p["cnonce"], "auth"
    )
    assert p["response"] == expected and p["nc"] == "00000001"
    assert parse_auth_params(creds.header("PLAY", "x").partition(" ")[2])["nc"] == "00000002"


def test_basic_only_when_offered_alone_and_unknown_schemes_refused() -> None:
    creds = Credentials("root", "pw")
    creds.take_challenge(['Basic realm="cam"'])
    assert creds.header("OPTIONS", "*") == "Basic " + base64.b64encode(b"root:pw").decode()
    with pytest.raises(RtspClientError, match="no authentication scheme"):
        Credentials("a", "b").take_challenge(["Negotiate abc"])


# -- GStreamer's RTSP server as the upstream --------------------------------------------------


class Upstream:
    """GStreamer's RTSP server in a child process, on a port that stays the same."""

    def __init__(self, codec: str, user: str | None) -> None:
        self.port = free_port()
        self.args = ["/usr/bin/python3", str(UPSTREAM), "--port", str(self.port), "--codec", codec]
        if user:
            self.args += ["--user", user, "--password", "secret"]
        self.url = f"rtsp://127.0.0.1:{self.port}{AXIS_PATH}?camera=1"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start and wait until it listens (blocking: run in a thread)."""
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == b"ready", line

    def stop(self) -> None:
        """Terminate it (blocking: run in a thread)."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


@contextlib.asynccontextmanager
async def upstream(codec: str = "h264", user: str | None = "root") -> AsyncIterator[Upstream]:
    """GStreamer's RTSP server on a free port, serving `codec` on an Axis-shaped path."""
    require_peer("gst-launch-1.0")
    require_elements("x264enc", "rtph264pay", "rtpjpegpay", "jpegenc")
    up = Upstream(codec, user)
    await asyncio.wait_for(asyncio.to_thread(up.start), 20)
    try:
        yield up
    finally:
        await asyncio.to_thread(up.stop)


def _gateway_config(source: str, **channel: Any) -> config.Config:
    return config.parse(
        {
            "server": {"host": "127.0.0.1", "http_port": 0, "rtsp_port": 0},
            "rtsp": {"rtp_port": 0},
            "channels": [
                {
                    "name": "dock",
                    "source": source,
                    "username": "root",
                    "password": "secret",
                    "stall_timeout": 2.0,
                    "reconnect_min": 0.2,
                    "reconnect_max": 1.0,
                    **channel,
                }
            ],
        }
    )


async def _until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def pull_access_units(url: str, seconds: float, creds: Credentials | None) -> list[bytes]:
    """The access units of an RTSP H.264 stream over TCP for `seconds`, in order."""
    depack = RtpH264Depacketizer()
    units: list[bytes] = []

    def on_frame(channel: int, data: bytes) -> None:
        if channel == 0:
            p = rtp.parse(data)
            au = depack.push(p.seq, p.timestamp, p.marker, p.payload)
            if au is not None:
                units.append(au)

    client = RtspClient(url, creds, on_interleaved=on_frame)
    await client.connect()
    try:
        describe = await client.request("DESCRIBE", headers={"Accept": "application/sdp"})
        base = describe.headers.get("Content-Base") or url
        control, media = parse_offer(describe.body.decode())
        track = client.control_url(base, pick_video(media).control)
        await client.request("SETUP", track, {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"})
        await client.request("PLAY", client.control_url(base, control) if control else base)
        await asyncio.sleep(seconds)
    finally:
        await client.close()
    assert not depack.dropped or not any(depack.dropped.values()), depack.dropped
    return units


async def _ffmpeg_decodes(gw: Gateway, path: str, transport: str, frames: int = 50) -> None:
    ffmpeg = require_peer("ffmpeg")
    url = f"rtsp://127.0.0.1:{gw.rtsp_port}/{path}"
    rc, _, err = await run_peer(
        ffmpeg, "-v", "error", "-rtsp_transport", transport, "-i", url,
        "-frames:v", str(frames), "-f", "null", "-", timeout=30,
    )  # fmt: skip
    assert rc == 0 and not err.strip(), err


async def test_h264_passed_through_with_digest_to_every_rtsp_transport(loop_name: str) -> None:
    async with upstream("h264") as up, serving(_gateway_config(up.url)) as gw:
        channel, source, feed = gw.channels["dock"], gw.sources["dock"], gw.h264["dock"]
        await _until(lambda: channel.frames_in >= 10, 15, "frames from the upstream")
        assert (channel.width, channel.height) == (352, 288)
        for transport in ("tcp", "udp"):
            await _ffmpeg_decodes(gw, "dock/h264", transport)
        await _ffmpeg_decodes(gw, "axis-media/media.amp?camera=1&videocodec=h264", "tcp")
        # Passed through: no encoder ever ran for this channel.
        assert feed.native and feed.starts == 0 and feed.total("frames_encoded") == 0
        assert source.stats is not None and source.stats.lost == 0
        assert source.bad_packets == 0 and source.status()["state"] == "up"


class Tap:
    """A reader of a track that keeps what it is given."""

    def __init__(self) -> None:
        self.units: list[bytes] = []

    def on_unit(self, unit: Unit) -> None:
        self.units.append(unit.data)


async def test_passthrough_is_bit_exact(loop_name: str) -> None:
    async with upstream("h264") as up, serving(_gateway_config(up.url)) as gw:
        channel, source = gw.channels["dock"], gw.sources["dock"]
        await _until(lambda: channel.frames_in >= 10, 15, "frames from the upstream")
        # What the source took from the upstream, next to what a viewer gets on the wire.
        tap = Tap()
        channel.h264_native.add_reader(tap)
        relayed = await pull_access_units(f"rtsp://127.0.0.1:{gw.rtsp_port}/dock/h264", 2.0, None)
        channel.h264_native.remove_reader(tap)
        assert source.stats is not None and source.stats.lost == 0
    assert len(relayed) >= 25
    # The relayed stream starts at an IDR with SPS and PPS in front (the gateway may
    # repeat them there), and is then the upstream's, unit for unit, byte for byte,
    # but for the delimiters RTP does not carry.
    assert [nal_type(n) for n in split_annexb(relayed[0])][-3:] == [7, 8, 5]
    ingested = [_pictures(au) for au in tap.units]
    relayed_pictures = [_pictures(au) for au in relayed]
    # A new viewer may start with units from before the tap (the cached IDR and what
    # followed it); from the first unit the tap saw on, the two are the same.
    while relayed_pictures and relayed_pictures[0] not in ingested:
        relayed_pictures.pop(0)
    assert len(relayed_pictures) >= 25
    start = ingested.index(relayed_pictures[0])
    assert relayed_pictures == ingested[start : start + len(relayed_pictures)]


def _pictures(access_unit: bytes) -> list[bytes]:
    """The NAL units of an access unit that RTP carries as they are, as bytes.

    Left out: SPS and PPS (repeated before IDRs), and access unit delimiters and
    filler, which RFC 6184 packetizers drop (the RTP marker bit delimits units).
    """
    return [bytes(n) for n in split_annexb(access_unit) if nal_type(n) not in (7, 8, 9, 12)]


async def test_h264_with_b_frames_is_passed_through(loop_name: str) -> None:
    async with upstream("h264-bframes") as up, serving(_gateway_config(up.url)) as gw:
        channel = gw.channels["dock"]
        await _until(lambda: channel.frames_in >= 10, 15, "frames from the upstream")
        await _ffmpeg_decodes(gw, "dock/h264", "tcp")
        assert gw.h264["dock"].starts == 0


async def test_rtp_jpeg_upstream_feeds_the_mjpeg_path(loop_name: str) -> None:
    async with upstream("jpeg") as up, serving(_gateway_config(up.url)) as gw:
        channel = gw.channels["dock"]
        await _until(lambda: channel.frames_in >= 10, 15, "frames from the upstream")
        status, ctype, body = await get_bytes(
            f"http://127.0.0.1:{gw.http_port}/axis-cgi/jpg/image.cgi?camera=1"
        )
        assert status == 200 and ctype == "image/jpeg" and body[:2] == b"\xff\xd8"
        await _ffmpeg_decodes(gw, "dock", "tcp", frames=25)
        assert not channel.bad_frames


async def test_wrong_password_is_an_auth_error(loop_name: str) -> None:
    async with (
        upstream("h264") as up,
        serving(_gateway_config(up.url, password="wrong")) as gw,
    ):
        source = gw.sources["dock"]
        await _until(lambda: source.errors["auth"] >= 1, 10, "the refusal")
        assert source.status()["state"] in ("down", "connecting")
        assert "401" in (source.last_error or "") and "wrong" not in (source.last_error or "")


async def test_recovers_after_the_upstream_restarts(loop_name: str) -> None:
    async with upstream("h264") as up, serving(_gateway_config(up.url)) as gw:
        channel, source = gw.channels["dock"], gw.sources["dock"]
        await _until(lambda: channel.frames_in >= 10, 15, "frames from the upstream")
        # Killed, and back on the same port a moment later.
        await asyncio.to_thread(up.stop)
        await _until(lambda: source.status()["state"] != "up", 10, "the source to notice")
        await asyncio.wait_for(asyncio.to_thread(up.start), 20)
        frames = channel.frames_in
        await _until(lambda: channel.frames_in >= frames + 25, 15, "frames after the restart")
        assert source.status()["state"] == "up" and source.reconnects >= 1
        await _ffmpeg_decodes(gw, "dock/h264", "tcp", frames=25)


# -- configuration -----------------------------------------------------------------------


def test_config_rtsp_sources() -> None:
    cfg = config.parse(
        {"channels": [{"name": "dock", "source": "rtsp://root:pw@10.0.0.7/axis-media/media.amp"}]}
    )
    (channel,) = cfg.channels
    assert (channel.kind, channel.rtsp_transport, channel.username) == ("rtsp", "tcp", "root")
    assert channel.source == "rtsp://10.0.0.7/axis-media/media.amp"  # no credentials kept
    with pytest.raises(config.ConfigError, match=r"rtsp_transport.*must be one of tcp"):
        config.parse(
            {"channels": [{"name": "a", "source": "rtsp://h/x", "rtsp_transport": "carrier"}]}
        )
    with pytest.raises(config.ConfigError, match="must be an rtsp:// URL"):
        config.parse({"channels": [{"name": "a", "source": "http://h/x", "kind": "rtsp"}]})
