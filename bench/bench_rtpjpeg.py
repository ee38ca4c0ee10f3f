"""RFC 2435 on D1 frames: coaxgate's packetizer and depacketizer next to GStreamer's, same run.

    .venv/bin/pytest bench/bench_rtpjpeg.py --benchmark-enable -p no:cacheprovider

The load is the emulator's: the 50 frames of a 2 s D1 (704x576) 4:2:2 loop at
quality 70 from FrameLoop, 37-40 KB each, cut into 1400-byte payloads. GStreamer
gets the same frames through `bench/gst_rtppay.py jpeg` under the system Python
(PyGObject): appsrc ! rtpjpegpay mtu=1412 ! fakesink (its MTU counts the 12-byte
RTP header), and appsrc ! rtpjpegdepay ! fakesink on the packets of the same
frames. Packetizing counts JPEG bytes in; depacketizing counts RTP bytes in, and
our side parses the RTP header in Python as the gateway would. Both sides start
from data already in memory (50 frames, 2 MB: cache-warm on most machines).
GStreamer's figures are the best of three runs of 40 rounds each, as run
("gstreamer": appsrc, the element, fakesink; one appsrc signal per frame) and net
of a run without the element ("gst-net"); ours are pytest-benchmark means.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import Recorder
from gst_compare import GstComparison, depacketizer_rows, rtp_datagrams, write_datagrams
from pytest_benchmark.fixture import BenchmarkFixture

from gateway._ext.rtpjpeg import RtpJpegDepacketizer, RtpJpegPacketizer, walk_jpeg
from gateway.sources.frames import FrameLoop

WIDTH, HEIGHT, FPS = 704, 576, 25.0
PAYLOAD_SIZE = 1400
GST_ROUNDS = 40  # 2000 frames, ~80 MB through GStreamer, all built up front
FRAMES = 50  # a 2 s loop at 25 fps
NOW = float(int(time.time()))
PACKETIZE = "rtpjpeg packetize, 50 D1 4:2:2 frames"
DEPACKETIZE = "rtpjpeg depacketize, 50 D1 4:2:2 frames"
GSTREAMER = GstComparison("jpeg", ".jpg", frames=FRAMES, rounds=GST_ROUNDS, mtu=PAYLOAD_SIZE + 12)


@pytest.fixture(scope="module")
def frames() -> list[bytes]:
    """The emulator's D1 loop, one composed frame per loop index."""
    loop = FrameLoop(camera=1, label="CAM 1", width=WIDTH, height=HEIGHT, fps=FPS)
    assert len(loop) == FRAMES
    return [loop.frame(i, NOW) for i in range(len(loop))]


@pytest.fixture(scope="module")
def datagrams(frames: list[bytes]) -> list[list[bytes]]:
    """Per frame, its RTP packets (12-byte header and payload)."""
    packetizer = RtpJpegPacketizer(PAYLOAD_SIZE)
    return rtp_datagrams((packetizer.packetize(frame) for frame in frames), pt=26, ssrc=0x2400)


@pytest.mark.benchmark(group=PACKETIZE)
def test_packetize_coaxgate(
    benchmark: BenchmarkFixture, throughput: Recorder, frames: list[bytes]
) -> None:
    """RtpJpegPacketizer.packetize on every frame: walk the headers, one copy of the scan."""
    packetizer = RtpJpegPacketizer(PAYLOAD_SIZE)
    nbytes = sum(len(f) for f in frames)

    def run() -> int:
        return sum(len(packetizer.packetize(frame)) for frame in frames)

    packets = benchmark(run)
    assert packets > 25 * len(frames)
    benchmark.extra_info.update(bytes=nbytes, packets=packets)
    if not benchmark.disabled:
        throughput(PACKETIZE, "coaxgate", nbytes, benchmark.stats.stats.mean)


@pytest.mark.benchmark(group=PACKETIZE)
def test_packetize_gstreamer(
    benchmark: BenchmarkFixture, throughput: Recorder, frames: list[bytes], tmp_path: Path
) -> None:
    """rtpjpegpay on the same frames, in one GStreamer run (the figure is per round)."""
    GSTREAMER.write_frames(tmp_path, frames)
    GSTREAMER.rows(benchmark, throughput, PACKETIZE, "pay", tmp_path)


@pytest.mark.benchmark(group=DEPACKETIZE)
def test_depacketize_coaxgate(
    benchmark: BenchmarkFixture, throughput: Recorder, datagrams: list[list[bytes]]
) -> None:
    """RtpJpegDepacketizer.push per packet, RTP header parsed in Python, one JPEG per frame."""
    depacketizer_rows(benchmark, throughput, DEPACKETIZE, RtpJpegDepacketizer, datagrams)


@pytest.mark.benchmark(group=DEPACKETIZE)
def test_depacketize_gstreamer(
    benchmark: BenchmarkFixture,
    throughput: Recorder,
    datagrams: list[list[bytes]],
    tmp_path: Path,
) -> None:
    """rtpjpegdepay on the same packets, in one GStreamer run (the figure is per round)."""
    write_datagrams(tmp_path, datagrams)
    GSTREAMER.rows(benchmark, throughput, DEPACKETIZE, "depay", tmp_path)


@pytest.mark.benchmark(group="rtpjpeg walk, one D1 frame")
def test_walk(benchmark: BenchmarkFixture, frames: list[bytes]) -> None:
    """walk_jpeg alone: the per-frame cost that does not grow with the frame."""
    info = benchmark(walk_jpeg, frames[0])
    assert info.reason is None and info.rtp_type == 0
