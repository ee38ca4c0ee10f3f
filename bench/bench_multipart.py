"""Multipart scanner throughput: Cython against the pure-Python reference, same run, same load.

    .venv/bin/pytest bench/bench_multipart.py --benchmark-enable

The load is what an Axis 2400 sends: ~200 JPEG-like frames of 20-60 KB
(random entropy-coded data, so CR, LF and "--" occur inside bodies), with
Content-Length (the 2400's default) and without (the cameras that omit it),
fed in 64 KiB chunks as a busy socket hands them over, and in 1460-byte
chunks (one TCP segment each) where per-call cost dominates.
"""

from __future__ import annotations

import random
from types import ModuleType

import pymultipart
import pytest
from conftest import Recorder
from pytest_benchmark.fixture import BenchmarkFixture

from gateway._ext import multipart as cython_multipart

FRAMES = 200
BOUNDARY = b"myboundary"
IMPLS = {"cython": cython_multipart, "python": pymultipart}


def jpeg_like(rng: random.Random, size: int) -> bytes:
    """SOI, JFIF APP0, random scan data with 0xFF stuffed as in JPEG, EOI."""
    head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xda"
    scan = rng.randbytes(size - len(head) - 2).replace(b"\xff", b"\xff\x00")
    return head + scan[: size - len(head) - 2] + b"\xff\xd9"


def make_stream(with_length: bool, seed: int = 2400) -> tuple[bytes, int]:
    """The multipart stream and its body count."""
    rng = random.Random(seed)
    parts = []
    for _ in range(FRAMES):
        body = jpeg_like(rng, rng.randrange(20_000, 60_000))
        head = b"--myboundary\r\nContent-Type: image/jpeg\r\n"
        if with_length:
            head += b"Content-Length: %d\r\n" % len(body)
        parts.append(head + b"\r\n" + body + b"\r\n")
    return b"".join(parts) + b"--myboundary--\r\n", FRAMES


STREAMS = {True: make_stream(True), False: make_stream(False)}


@pytest.mark.parametrize("chunk_size", [65536, 1460], ids=["64KiB", "1460B"])
@pytest.mark.parametrize("with_length", [True, False], ids=["content-length", "no-length"])
@pytest.mark.parametrize("impl_name", list(IMPLS))
def test_scan(
    benchmark: BenchmarkFixture,
    throughput: Recorder,
    impl_name: str,
    with_length: bool,
    chunk_size: int,
) -> None:
    impl: ModuleType = IMPLS[impl_name]
    stream, frames = STREAMS[with_length]
    view = memoryview(stream)
    chunks = [bytes(view[i : i + chunk_size]) for i in range(0, len(stream), chunk_size)]

    def scan() -> int:
        scanner = impl.MultipartScanner(BOUNDARY)
        count = 0
        for chunk in chunks:
            count += len(scanner.feed(chunk))
        return count

    group = f"multipart, {'with' if with_length else 'no'} Content-Length, {chunk_size} B chunks"
    benchmark.group = group
    benchmark.extra_info["bytes"] = len(stream)
    assert benchmark(scan) == frames
    if not benchmark.disabled:
        seconds = benchmark.stats.stats.mean
        benchmark.extra_info["MB/s"] = round(len(stream) / seconds / 1e6, 1)
        throughput(group, impl_name, len(stream), seconds)
