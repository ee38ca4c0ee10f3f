"""What bench_rtpjpeg.py and bench_rtph264.py share to put coaxgate and GStreamer side by side.

Our side: RTP datagrams from a packetizer's payloads, and the depacketizer loop
that parses the RTP header in Python as the gateway would. GStreamer's side:
bench/gst_rtppay.py run under the system Python (PyGObject is not in the venv)
on the same frames or packets, written to files, and its figures recorded both
as run and net of a run without the element.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
from conftest import Recorder
from pytest_benchmark.fixture import BenchmarkFixture

SYSTEM_PYTHON = "/usr/bin/python3"
HELPER = Path(__file__).with_name("gst_rtppay.py")
GST_RUNS = 3
_SEQ_TS = struct.Struct(">HI")


class Depacketizer(Protocol):
    """RtpJpegDepacketizer, RtpH264Depacketizer: one packet in, a frame out when complete."""

    def push(self, seq: int, timestamp: int, marker: bool, payload: memoryview) -> bytes | None:
        """Take one packet's payload; the frame it completes, if any."""
        ...


def rtp_datagrams(
    frames: Iterable[Sequence[bytes | memoryview]], pt: int, ssrc: int
) -> list[list[bytes]]:
    """Per frame, its payloads behind 12-byte RTP headers, the last one marked."""
    out, seq = [], 0
    for k, payloads in enumerate(frames):
        items = []
        for i, payload in enumerate(payloads):
            marker = 0x80 if i == len(payloads) - 1 else 0
            header = struct.pack(">BBHII", 0x80, marker | pt, seq & 0xFFFF, k * 3600, ssrc)
            items.append(header + bytes(payload))
            seq += 1
        out.append(items)
    return out


def depacketizer_rows(
    benchmark: BenchmarkFixture,
    throughput: Recorder,
    group: str,
    depacketizer: Callable[[], Depacketizer],
    datagrams: Sequence[Sequence[bytes]],
) -> None:
    """Ours: push per packet, RTP header parsed in Python as the gateway would; one frame each."""
    flat = [d for frame in datagrams for d in frame]
    nbytes = sum(len(d) for d in flat)

    def run() -> int:
        return _count_frames(depacketizer(), flat)

    assert benchmark(run) == len(datagrams)
    benchmark.extra_info.update(bytes=nbytes, packets=len(flat))
    if not benchmark.disabled:
        throughput(group, "coaxgate", nbytes, benchmark.stats.stats.mean)


def _count_frames(depacketizer: Depacketizer, datagrams: list[bytes]) -> int:
    unpack = _SEQ_TS.unpack_from
    out = 0
    for datagram in datagrams:
        seq, ts = unpack(datagram, 2)
        frame = depacketizer.push(seq, ts, datagram[1] >= 0x80, memoryview(datagram)[12:])
        if frame is not None:
            out += 1
    return out


def write_datagrams(directory: Path, datagrams: Sequence[Sequence[bytes]]) -> None:
    """One .rtp file per frame (16-bit length, packet, ...), as `gst_rtppay.py depay` reads."""
    for k, frame in enumerate(datagrams):
        data = b"".join(struct.pack(">H", len(d)) + d for d in frame)
        (directory / f"{k:05d}.rtp").write_bytes(data)


def _gstreamer(
    codec: str, mode: str, directory: Path, rounds: int, mtu: int, baseline: bool = False
) -> dict[str, float]:
    """Run the GStreamer helper under the system Python; skip when it cannot run."""
    if shutil.which(SYSTEM_PYTHON) is None or shutil.which("gst-launch-1.0") is None:
        pytest.skip("GStreamer or the system Python is not installed")
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('Gst', '1.0')"],
        capture_output=True,
        check=False,
    )
    if probe.returncode:
        pytest.skip("the system Python has no PyGObject for GStreamer")
    cmd = [SYSTEM_PYTHON, str(HELPER), codec, mode, str(directory), "--rounds", str(rounds)]
    cmd += ["--mtu", str(mtu)] + (["--baseline"] if baseline else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _fastest(
    codec: str, mode: str, directory: Path, rounds: int, mtu: int, baseline: bool = False
) -> dict[str, float]:
    """Best of GST_RUNS runs: one run lasts tens of milliseconds, so it is noisy."""
    runs = [_gstreamer(codec, mode, directory, rounds, mtu, baseline) for _ in range(GST_RUNS)]
    return min(runs, key=lambda r: r["seconds"])


@dataclass(frozen=True)
class GstComparison:
    """One codec's GStreamer side: `gst_rtppay.py CODEC pay|depay` on the bench's load."""

    codec: str  # gst_rtppay.py's first argument
    suffix: str  # of the frame files `pay` reads
    frames: int  # per round
    rounds: int
    mtu: int  # RTP header included, as GStreamer counts it

    def write_frames(self, directory: Path, frames: Sequence[bytes]) -> None:
        """One file per frame, in order, as `gst_rtppay.py CODEC pay` reads them."""
        for k, frame in enumerate(frames):
            (directory / f"{k:05d}{self.suffix}").write_bytes(frame)

    def rows(
        self,
        benchmark: BenchmarkFixture,
        throughput: Recorder,
        group: str,
        mode: str,
        directory: Path,
    ) -> None:
        """Run the element and the baseline on `directory`; record both figures: as run, and net."""
        rounds = self.rounds if not benchmark.disabled else 1
        args = (self.codec, mode, directory, rounds, self.mtu)
        result = benchmark.pedantic(_fastest, args=args, rounds=1, iterations=1, warmup_rounds=0)
        base = _fastest(*args, baseline=True)
        assert result["frames"] == base["frames"] == rounds * self.frames
        benchmark.extra_info.update(result, baseline_seconds=base["seconds"])
        if not benchmark.disabled:
            nbytes = int(result["bytes"]) // rounds
            throughput(group, "gstreamer", nbytes, result["seconds"] / rounds)
            # appsrc and fakesink are our harness, not the element's work: also the net figure.
            net = max(result["seconds"] - base["seconds"], 1e-9)
            throughput(group, "gst-net", nbytes, net / rounds)
