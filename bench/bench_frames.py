"""Emulator frames at D1 4:2:2: FrameLoop.frame() next to FFmpeg's mjpeg encoder (PyAV).

Run: .venv/bin/pytest bench/bench_frames.py --benchmark-enable

Both sides make the same picture: FFmpeg encodes the planes that FrameLoop composes
for that frame, with the standard Huffman tables (huffman=default), one thread, and
a fixed qscale chosen so that its frames are about as large as ours. Absolute times
vary between machines; the ratio is what we track.
"""

from __future__ import annotations

import time
from fractions import Fraction

import av
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from gateway.sources.frames import FrameLoop

WIDTH, HEIGHT, FPS = 704, 576, 25.0
QUALITY = 70
FFMPEG_QSCALE = 4  # ~40 KB per frame here, like ours at quality 70
NOW = time.time()


def d1_loop(restart_interval: int = 0) -> FrameLoop:
    """The emulator's default input: D1 PAL, 4:2:2, quality 70, a 2 s loop at 25 fps."""
    return FrameLoop(
        camera=1,
        label="CAM 1",
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        quality=QUALITY,
        restart_interval=restart_interval,
    )


@pytest.fixture(scope="module")
def loop() -> FrameLoop:
    return d1_loop()


@pytest.fixture(scope="module")
def loop_dri() -> FrameLoop:
    return d1_loop(restart_interval=WIDTH // 16)


@pytest.mark.benchmark(group="d1-422-frame")
def test_frameloop_frame(benchmark: BenchmarkFixture, loop: FrameLoop) -> None:
    """A served frame: the second's band is cached, the loop index moves on every call."""
    second = float(int(NOW))
    counter = iter(range(1 << 62))
    loop.frame(0, second)
    data = benchmark(lambda: loop.frame(next(counter), second))
    benchmark.extra_info["bytes"] = len(data)


@pytest.mark.benchmark(group="d1-422-frame")
def test_frameloop_frame_dri_per_row(benchmark: BenchmarkFixture, loop_dri: FrameLoop) -> None:
    """Same, with DRI = one MCU row: every piece is byte aligned, a frame is a copy."""
    second = float(int(NOW))
    counter = iter(range(1 << 62))
    loop_dri.frame(0, second)
    data = benchmark(lambda: loop_dri.frame(next(counter), second))
    benchmark.extra_info["bytes"] = len(data)


@pytest.mark.benchmark(group="d1-422-frame")
def test_frameloop_frame_new_second(benchmark: BenchmarkFixture, loop: FrameLoop) -> None:
    """Worst case: every call is a new second, so the band is re-encoded each time."""
    counter = iter(range(1 << 62))
    base = int(NOW)
    data = benchmark(lambda: loop.frame(0, float(base + next(counter))))
    benchmark.extra_info["bytes"] = len(data)


@pytest.mark.benchmark(group="d1-422-frame")
def test_pyav_mjpeg_encode(benchmark: BenchmarkFixture, loop: FrameLoop) -> None:
    """FFmpeg's mjpeg encoder on the same planes, frame already in an AVFrame."""
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuvj422p"
    codec.time_base = Fraction(1, int(FPS))
    codec.options = {"huffman": "default"}
    codec.thread_count = 1
    codec.qmin = codec.qmax = FFMPEG_QSCALE
    frame = av.VideoFrame(WIDTH, HEIGHT, "yuvj422p")
    for plane, array in zip(frame.planes, loop.render_planes(0, NOW), strict=True):
        assert array is not None
        plane.update(array.tobytes())
    counter = iter(range(1 << 62))

    def encode() -> bytes:
        frame.pts = next(counter)
        (packet,) = codec.encode(frame)
        return bytes(packet)

    data = benchmark(encode)
    benchmark.extra_info["bytes"] = len(data)


@pytest.mark.benchmark(group="d1-422-prerender")
def test_frameloop_prerender(benchmark: BenchmarkFixture) -> None:
    """Building the loop: render and encode 50 D1 frames once."""
    loop = benchmark.pedantic(d1_loop, rounds=3, iterations=1, warmup_rounds=0)
    assert len(loop) == 50
