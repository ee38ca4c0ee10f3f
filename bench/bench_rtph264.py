"""RFC 6184 on D1 H.264: coaxgate's packetizer and depacketizer next to GStreamer's, same run.

    .venv/bin/pytest bench/bench_rtph264.py --benchmark-enable -p no:cacheprovider

The load is what the gateway's transcoder makes of the emulator: the 50 frames of
the 2 s D1 (704x576) 4:2:2 loop from FrameLoop, twice over (100 frames, 4 s),
decoded by FFmpeg and encoded by libx264 through PyAV as the transcoder does
(superfast, zerolatency, baseline, level 3.0, SPS and PPS before every IDR, one
IDR every 50 frames, CRF 23), cut into 1400-byte payloads. GStreamer gets the same
access units through `bench/gst_rtppay.py h264` under the system Python (PyGObject):
appsrc caps=video/x-h264,stream-format=byte-stream,alignment=au ! rtph264pay
mtu=1412 ! fakesink (its MTU counts the 12-byte RTP header; aggregate-mode
left at its default, none), and appsrc ! rtph264depay ! fakesink on our packets
of the same access units. Packetizing counts Annex B bytes in; depacketizing
counts RTP bytes in, and our side parses the RTP header in Python as the gateway
would. Both sides start from data already in memory (~1 MB: cache-warm on most
machines). GStreamer's figures are the best of three runs of 20 rounds each, as
run ("gstreamer": appsrc, the element, fakesink; one appsrc signal per access
unit) and net of a run without the element ("gst-net"); ours are
pytest-benchmark means.
"""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import av
import pytest
from conftest import Recorder
from gst_compare import GstComparison, depacketizer_rows, rtp_datagrams, write_datagrams
from pytest_benchmark.fixture import BenchmarkFixture

from gateway._ext.rtph264 import RtpH264Depacketizer, RtpH264Packetizer, split_annexb
from gateway.sources.frames import FrameLoop

WIDTH, HEIGHT, FPS = 704, 576, 25.0
PAYLOAD_SIZE = 1400
FRAMES = 100  # two passes over the emulator's 2 s loop
GOP = 50
GST_ROUNDS = 20  # 2000 access units through GStreamer, all built up front
NOW = float(int(time.time()))
PACKETIZE = "rtph264 packetize, 100 D1 access units"
DEPACKETIZE = "rtph264 depacketize, 100 D1 access units"
GSTREAMER = GstComparison("h264", ".h264", frames=FRAMES, rounds=GST_ROUNDS, mtu=PAYLOAD_SIZE + 12)


@pytest.fixture(scope="module")
def access_units() -> list[bytes]:
    """The emulator's D1 loop, transcoded to H.264 as the gateway's transcoder would."""
    loop = FrameLoop(camera=1, label="CAM 1", width=WIDTH, height=HEIGHT, fps=FPS)
    decoder = av.CodecContext.create("mjpeg", "r")
    encoder = av.CodecContext.create("libx264", "w")
    assert isinstance(encoder, av.VideoCodecContext)
    encoder.width, encoder.height, encoder.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    encoder.time_base = Fraction(1, 25)
    encoder.framerate = Fraction(25, 1)
    encoder.gop_size = GOP
    encoder.max_b_frames = 0
    encoder.options = {
        "preset": "superfast",
        "tune": "zerolatency",
        "profile": "baseline",
        "level": "3.0",
        "crf": "23",
        "x264-params": "repeat-headers=1",
    }
    out: list[bytes] = []
    for i in range(FRAMES):
        (picture,) = decoder.decode(av.Packet(loop.frame(i % len(loop), NOW + i / FPS)))
        assert isinstance(picture, av.VideoFrame)
        frame = picture.reformat(format="yuv420p")
        frame.pts = i
        out += [bytes(p) for p in encoder.encode(frame)]
    out += [bytes(p) for p in encoder.encode(None)]
    assert len(out) == FRAMES
    return out


@pytest.fixture(scope="module")
def datagrams(access_units: list[bytes]) -> list[list[bytes]]:
    """Per access unit, our RTP packets (12-byte header and payload)."""
    packetizer = RtpH264Packetizer(PAYLOAD_SIZE)
    payloads = []
    for au in access_units:
        data, offsets = packetizer.packetize(au)
        payloads.append([data[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)])
    return rtp_datagrams(payloads, pt=96, ssrc=0x264)


@pytest.mark.benchmark(group=PACKETIZE)
def test_packetize_coaxgate(
    benchmark: BenchmarkFixture, throughput: Recorder, access_units: list[bytes]
) -> None:
    """RtpH264Packetizer.packetize on every access unit: scan the NAL units, one copy."""
    packetizer = RtpH264Packetizer(PAYLOAD_SIZE)
    nbytes = sum(len(au) for au in access_units)

    def run() -> int:
        return sum(len(packetizer.packetize(au)[1]) - 1 for au in access_units)

    packets = benchmark(run)
    assert packets > 2 * len(access_units)
    benchmark.extra_info.update(bytes=nbytes, packets=packets)
    if not benchmark.disabled:
        throughput(PACKETIZE, "coaxgate", nbytes, benchmark.stats.stats.mean)


@pytest.mark.benchmark(group=PACKETIZE)
def test_packetize_gstreamer(
    benchmark: BenchmarkFixture,
    throughput: Recorder,
    access_units: list[bytes],
    tmp_path: Path,
) -> None:
    """rtph264pay on the same access units, in one GStreamer run (the figure is per round)."""
    GSTREAMER.write_frames(tmp_path, access_units)
    GSTREAMER.rows(benchmark, throughput, PACKETIZE, "pay", tmp_path)


@pytest.mark.benchmark(group=DEPACKETIZE)
def test_depacketize_coaxgate(
    benchmark: BenchmarkFixture, throughput: Recorder, datagrams: list[list[bytes]]
) -> None:
    """RtpH264Depacketizer.push per packet, RTP header parsed in Python, one AU per frame."""
    depacketizer_rows(benchmark, throughput, DEPACKETIZE, RtpH264Depacketizer, datagrams)


@pytest.mark.benchmark(group=DEPACKETIZE)
def test_depacketize_gstreamer(
    benchmark: BenchmarkFixture,
    throughput: Recorder,
    datagrams: list[list[bytes]],
    tmp_path: Path,
) -> None:
    """rtph264depay on the same packets, in one GStreamer run (the figure is per round)."""
    write_datagrams(tmp_path, datagrams)
    GSTREAMER.rows(benchmark, throughput, DEPACKETIZE, "depay", tmp_path)


@pytest.mark.benchmark(group="rtph264 split_annexb, one D1 IDR")
def test_split_annexb(benchmark: BenchmarkFixture, access_units: list[bytes]) -> None:
    """split_annexb alone on the biggest access unit: the memchr walk and the views."""
    idr = max(access_units, key=len)
    units = benchmark(split_annexb, idr)
    assert [u[0] & 0x1F for u in units][:3] == [7, 8, 6]
