"""MJPEG to H.264 on D1 frames: coaxgate's H264Encoder next to the ffmpeg CLI, same run.

    .venv/bin/python bench/bench_transcode.py [--frames 500] [--runs 3]
    .venv/bin/pytest bench/bench_transcode.py --benchmark-enable -p no:cacheprovider -s

Both sides decode the same emulator frames (D1 704x576 4:2:2 JPEG, quality 70,
~38 KB, a 2 s loop with the clock band changing every second), convert them to
limited-range 4:2:0 with a bicubic swscale, and encode them with libx264 at
the same settings: one thread everywhere, preset superfast, tune zerolatency,
Constrained Baseline level 3.0, no B-frames, a 50-frame GOP, CRF 23, SPS and
PPS before every IDR. ffmpeg reads the frames from an MJPEG file:

    ffmpeg -threads 1 -f mjpeg -i frames.mjpeg -c:v libx264 -preset superfast
        -tune zerolatency -profile:v baseline -level 3.0 -bf 0 -g 50 -crf 23
        -pix_fmt yuv420p -x264-params repeat-headers=1 -threads 1
        -filter_threads 1 -f null -

(`-pix_fmt yuv420p` is needed: ffmpeg would otherwise hand libx264 the JPEG's
4:2:2, which baseline refuses.) The figure tracked is frames per CPU second
(user + system, from wait4 for ffmpeg and process_time for us), best of the
runs; ffmpeg's includes its start-up, printed separately from a one-frame run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from gateway.sources.frames import FrameLoop
from gateway.transcode.encoder import H264Encoder
from gateway.transcode.settings import TranscodeSettings

WIDTH, HEIGHT, FPS = 704, 576, 25.0
T0 = 1_700_000_000.0
TICKS = 3600  # 90 kHz per frame at 25 fps
FFMPEG_ARGS = [
    "-hide_banner",
    "-nostats",
    "-loglevel",
    "error",
    "-threads",
    "1",
    "-f",
    "mjpeg",
    "-i",
    "{input}",
    "-c:v",
    "libx264",
    "-preset",
    "superfast",
    "-tune",
    "zerolatency",
    "-profile:v",
    "baseline",
    "-level",
    "3.0",
    "-bf",
    "0",
    "-g",
    "50",
    "-crf",
    "23",
    "-pix_fmt",
    "yuv420p",
    "-x264-params",
    "repeat-headers=1",
    "-threads",
    "1",
    "-filter_threads",
    "1",
]


@dataclass
class Run:
    """One pass over the frames: CPU and wall seconds, bytes out."""

    frames: int
    cpu: float
    wall: float
    nbytes: int = 0

    @property
    def fps_cpu(self) -> float:
        return self.frames / self.cpu

    @property
    def fps_wall(self) -> float:
        return self.frames / self.wall


def d1_frames(count: int) -> list[bytes]:
    """The emulator's D1 frames at 25 fps from a fixed start time."""
    loop = FrameLoop(camera=1, label="CAM 1", width=WIDTH, height=HEIGHT, fps=FPS)
    return [loop.frame(i, T0 + i / FPS) for i in range(count)]


def run_ours(frames: list[bytes]) -> Run:
    """H264Encoder over the frames on this thread (as the worker would run it)."""
    encoder = H264Encoder(TranscodeSettings(), FPS)
    nbytes = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i, jpeg in enumerate(frames):
        for item in encoder.encode(jpeg, i * TICKS):
            nbytes += len(item.data)
    for item in encoder.flush():
        nbytes += len(item.data)
    return Run(len(frames), time.process_time() - cpu0, time.perf_counter() - wall0, nbytes)


def ffmpeg_command(ffmpeg: str, source: Path, output: list[str]) -> list[str]:
    return [ffmpeg, *(arg.format(input=source) for arg in FFMPEG_ARGS), *output]


def run_ffmpeg(command: list[str], frames: int) -> Run:
    """One ffmpeg process; its CPU time from wait4."""
    wall0 = time.perf_counter()
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - wall0
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"ffmpeg failed ({process.returncode}): {' '.join(command)}")
    return Run(frames, usage.ru_utime + usage.ru_stime, wall)


@dataclass
class Comparison:
    ours: Run
    ffmpeg: Run
    ffmpeg_startup: Run
    ffmpeg_bytes: int
    command: list[str]

    @property
    def ratio(self) -> float:
        return self.ours.fps_cpu / self.ffmpeg.fps_cpu

    def report(self) -> str:
        o, f, s = self.ours, self.ffmpeg, self.ffmpeg_startup
        net = f.frames / max(1e-9, f.cpu - s.cpu)
        return "\n".join(
            [
                f"frames: {o.frames} D1 704x576 4:2:2 JPEG -> H.264 CB 3.0, superfast, CRF 23",
                f"{'':18s}{'fps/CPU s':>10s}{'fps wall':>10s}{'CPU s':>8s}{'bytes':>11s}",
                f"{'coaxgate':18s}{o.fps_cpu:10.1f}{o.fps_wall:10.1f}{o.cpu:8.3f}{o.nbytes:11,d}",
                f"{'ffmpeg CLI':18s}{f.fps_cpu:10.1f}{f.fps_wall:10.1f}{f.cpu:8.3f}"
                f"{self.ffmpeg_bytes:11,d}",
                f"ffmpeg start-up (1 frame): {s.cpu:.3f} CPU s; ffmpeg net of it: {net:.1f} fps",
                f"ratio coaxgate / ffmpeg (fps per CPU second): {self.ratio:.3f}"
                f"  (net of ffmpeg start-up: {o.fps_cpu / net:.3f})",
                "ffmpeg: " + " ".join(self.command),
            ]
        )


def compare(count: int, runs: int) -> Comparison:
    """Best of `runs` for each side, interleaved so that both see the same machine."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is not installed")
    frames = d1_frames(count)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp, "frames.mjpeg")
        source.write_bytes(b"".join(frames))
        one = Path(tmp, "one.mjpeg")
        one.write_bytes(frames[0])
        command = ffmpeg_command(ffmpeg, source, ["-f", "null", "-"])
        # Untimed: what ffmpeg writes, to check that both sides make the same stream.
        h264 = Path(tmp, "out.h264")
        run_ffmpeg(ffmpeg_command(ffmpeg, source, ["-f", "h264", "-y", str(h264)]), count)
        ffmpeg_bytes = h264.stat().st_size
        run_ours(frames[:25])  # warm the caches and the code paths
        ours, theirs, startup = [], [], []
        for _ in range(runs):
            ours.append(run_ours(frames))
            theirs.append(run_ffmpeg(command, count))
            startup.append(run_ffmpeg(ffmpeg_command(ffmpeg, one, ["-f", "null", "-"]), 1))
    return Comparison(
        ours=min(ours, key=lambda r: r.cpu),
        ffmpeg=min(theirs, key=lambda r: r.cpu),
        ffmpeg_startup=min(startup, key=lambda r: r.cpu),
        ffmpeg_bytes=ffmpeg_bytes,
        command=[Path(command[0]).name, *command[1:]],
    )


@pytest.mark.benchmark(group="transcode-d1")
def test_transcode_vs_ffmpeg(benchmark: BenchmarkFixture) -> None:
    """Best of 3 over 250 D1 frames on each side; the ratio goes to extra_info."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    result = benchmark.pedantic(compare, args=(250, 3), rounds=1, iterations=1)
    print("\n" + result.report())
    benchmark.extra_info.update(
        ours_fps=result.ours.fps_cpu, ffmpeg_fps=result.ffmpeg.fps_cpu, ratio=result.ratio
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--frames", type=int, default=500, help="D1 frames per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per side; the best counts")
    args = parser.parse_args()
    print(compare(args.frames, args.runs).report())


if __name__ == "__main__":
    main()
