"""The packet stream fuzz input that the RTP/JPEG and RTP/H.264 depacketizer targets share.

A stream is an initial sequence number and a max-size selector, then records of
(control byte: sequence step, new timestamp, marker; 16-bit length; payload).
The case tables write it (``encode_packet_stream``), the tests and the fuzz
targets read it (``decode_packet_stream``), and the targets feed it to the
compiled depacketizer and to its pure-Python reference side by side
(``check_depacketizers``).

The fuzz targets import this module inside ``atheris.instrument_imports``, so
the decoding of their input is instrumented like the references are.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

_STEPS = (1, 2, -1, 0)  # sequence step per packet: next, gap, back, duplicate
NEXT, GAP, BACK, DUP = range(4)  # indexes into _STEPS
Record = tuple[int, bool, bool, bytes]  # (step index, new timestamp, marker, payload)


@dataclass(frozen=True)
class PacketStream:
    """A depacketizer fuzz input: limit and packets."""

    max_size: int  # the depacketizer's max_frame_size or max_access_unit
    packets: tuple[tuple[int, int, bool, bytes], ...]  # (seq, ts, marker, payload)


def encode_packet_stream(
    packets: Iterable[Record], *, seq0: int = 0, limit_kib: int = 64, prefix: bytes = b""
) -> bytes:
    """Fuzz input from (seq step index, new timestamp, marker, payload) records, after `prefix`."""
    out = bytearray(prefix + struct.pack(">HB", seq0, limit_kib - 1))
    for step, new_ts, marker, payload in packets:
        out.append(step << 2 | (2 if new_ts else 0) | (1 if marker else 0))
        out += struct.pack(">H", len(payload)) + payload
    return bytes(out)


def decode_packet_stream(data: bytes) -> PacketStream | None:
    """The packets a fuzz input (after any prefix) stands for; None when too short."""
    if len(data) < 3:
        return None
    seq, limit = struct.unpack(">HB", data[:3])
    ts, pos, packets, first = 90000, 3, [], True
    while pos + 3 <= len(data):
        control = data[pos]
        length = int.from_bytes(data[pos + 1 : pos + 3], "big")
        payload = data[pos + 3 : pos + 3 + length]
        pos += 3 + length
        if not first:
            seq = (seq + _STEPS[(control >> 2) & 3]) & 0xFFFF
        first = False
        if control & 2:
            ts = (ts + 3600) & 0xFFFFFFFF
        packets.append((seq, ts, bool(control & 1), payload))
    return PacketStream(1024 * (limit + 1), tuple(packets))


def records(
    payloads: Iterable[bytes | memoryview], *, new_ts: bool = True, marker: bool = True
) -> list[Record]:
    """Records of one frame's payloads, in order, the last one marked (if `marker`)."""
    items = [bytes(p) for p in payloads]
    return [(0, new_ts and i == 0, marker and i == len(items) - 1, p) for i, p in enumerate(items)]


@dataclass(frozen=True)
class StreamCase:
    """A packet stream (fuzz input format) and what the depacketizer makes of it."""

    name: str
    data: bytes
    frames: int
    dropped: dict[str, int]


class Depacketizer(Protocol):
    """The pure-Python reference: what the fuzz targets compare."""

    @property
    def frames(self) -> int: ...
    @property
    def dropped(self) -> dict[str, int]: ...
    @property
    def buffered(self) -> int: ...
    def push(self, seq: int, timestamp: int, marker: bool, payload: bytes) -> bytes | None:
        """Take one packet's payload; the frame it completes, if any."""
        ...


class Compiled(Depacketizer, Protocol):
    """The Cython depacketizer: the reference's state, and the buffer it allocated."""

    @property
    def capacity(self) -> int: ...


def check_depacketizers(
    data: bytes,
    compiled: Callable[[int], Compiled],
    reference: Callable[[int], Depacketizer],
    check_frame: Callable[[bytes, int], None],
) -> None:
    """Feed a packet stream to both: same output and counters, memory within the limit.

    `compiled` and `reference` make a depacketizer of a max size;
    `check_frame(frame, limit)` is what a returned frame of the codec must be.
    """
    stream = decode_packet_stream(data)
    if stream is None:
        return
    limit = stream.max_size
    a, b = compiled(limit), reference(limit)
    for seq, ts, marker, payload in stream.packets:
        got = a.push(seq, ts, marker, payload)
        want = b.push(seq, ts, marker, payload)
        assert got == want, (seq, ts, marker, got and len(got), want and len(want))
        assert a.frames == b.frames and a.dropped == b.dropped, (a.dropped, b.dropped)
        assert a.buffered == b.buffered, (a.buffered, b.buffered)
        assert a.buffered <= limit and a.capacity <= limit, (a.buffered, a.capacity, limit)
        if got is not None:
            check_frame(got, limit)
