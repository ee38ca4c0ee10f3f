"""RTCP (RFC 3550 section 6): build and parse SR, RR, SDES and BYE, sans-IO.

The gateway sends a sender report with the CNAME every few seconds per
stream and a BYE when a stream ends, and reads the receiver reports viewers
send back (loss, jitter, round trip). Packets are small classes with
``serialize()``; ``parse_compound`` validates a whole datagram as RFC 3550
A.2 says (version 2, the first packet an SR or RR, padding only at the end,
lengths adding up) and raises ``ValueError`` with a precise message. Every
length read from the wire is checked against the bytes actually there before
anything is sliced or allocated from it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias

SR, RR, SDES, BYE, APP = 200, 201, 202, 203, 204
NAMES = {SR: "SR", RR: "RR", SDES: "SDES", BYE: "BYE", APP: "APP"}
CNAME, NAME, EMAIL, PHONE, LOC, TOOL, NOTE, PRIV = range(1, 9)  # SDES item types (6.5)

MAX_COMPOUND = 65535  # what one UDP datagram or one interleaved frame can carry
MAX_REPORTS = 31  # the 5-bit count; more sources need another RR packet (6.4.2)
NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)

_U32 = 0xFFFFFFFF
# A BYE reason should be UTF-8 but may not be: undecodable bytes become surrogate
# escapes (as os.fsdecode does), so that a parsed BYE serializes back to its bytes.
_ESCAPE = "surrogateescape"
_U64 = 0xFFFFFFFFFFFFFFFF


# -- NTP time ------------------------------------------------------------------------------


def ntp_from_unix(seconds: float) -> int:
    """64-bit NTP timestamp (32.32 fixed point) of a Unix time, wrapped to its era."""
    whole = math.floor(seconds)
    frac = round((seconds - whole) * 2**32)  # may round up to 2**32: the carry is right
    return (((whole + NTP_EPOCH_OFFSET) << 32) + frac) & _U64


def unix_from_ntp(ntp: int) -> float:
    """Unix time of a 64-bit NTP timestamp, for 1968-01-20 to 2104-02-26.

    NTP seconds wrap in 2036; as RFC 4330 section 3 suggests, a timestamp whose
    top bit is clear is taken to be after the wrap.
    """
    if not 0 <= ntp <= _U64:
        raise ValueError(f"NTP timestamp must be a 64-bit number, got {ntp}")
    secs = ntp >> 32
    if secs < 0x80000000:
        secs += 1 << 32
    return secs - NTP_EPOCH_OFFSET + (ntp & _U32) / 2**32


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp: what LSR holds (6.4.1)."""
    return (ntp >> 16) & _U32


def dlsr_from_seconds(delay: float) -> int:
    """A delay in the DLSR unit of 1/65536 s, clamped to 32 bits."""
    return min(max(round(delay * 65536), 0), _U32)


def round_trip_seconds(lsr: int, dlsr: int, arrival_unix: float) -> float | None:
    """Round-trip time from a report block (6.4.1: A - LSR - DLSR); None without an SR yet."""
    if lsr == 0:
        return None
    arrival = ntp_middle(ntp_from_unix(arrival_unix))
    return ((arrival - lsr - dlsr) & _U32) / 65536


# -- packets -------------------------------------------------------------------------------


def _check_u32(name: str, value: int) -> None:
    if not isinstance(value, int) or not 0 <= value <= _U32:
        raise ValueError(f"{name} must be a 32-bit unsigned number, got {value!r}")


def _packet(packet_type: int, count: int, body: bytes) -> bytes:
    """Common header (6.4.1) + body; a body of odd length gets RFC padding (P bit)."""
    pad = -len(body) % 4
    if pad:
        body += bytes(pad - 1) + bytes((pad,))
    words = len(body) // 4  # the length field: size in 32-bit words, minus one
    if words > 0xFFFF:
        raise ValueError(f"RTCP packet of {4 + len(body)} bytes is too long")
    first = 0x80 | (0x20 if pad else 0) | count
    return bytes((first, packet_type)) + words.to_bytes(2, "big") + body


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """Reception statistics for one source (6.4.1).

    ``fraction`` is the raw 8-bit fraction lost (lost/expected * 256);
    ``fraction_lost`` is the same as a number between 0 and 1.
    ``cumulative_lost`` is signed (duplicates can make it negative).
    ``jitter`` is in RTP timestamp units; ``lsr`` and ``dlsr`` in NTP short units.
    """

    ssrc: int
    fraction: int
    cumulative_lost: int
    highest_seq: int
    jitter: int
    lsr: int
    dlsr: int

    SIZE = 24

    def __post_init__(self) -> None:
        for name in ("ssrc", "highest_seq", "jitter", "lsr", "dlsr"):
            _check_u32(name, getattr(self, name))
        if not 0 <= self.fraction <= 255:
            raise ValueError(f"fraction must be 0..255, got {self.fraction}")
        if not -(1 << 23) <= self.cumulative_lost < 1 << 23:
            raise ValueError(
                f"cumulative_lost must fit in signed 24 bits, got {self.cumulative_lost}"
            )

    @property
    def fraction_lost(self) -> float:
        """Fraction of packets lost since the previous report, 0 to 255/256."""
        return self.fraction / 256

    def serialize(self) -> bytes:
        """The 24-byte block."""
        return (
            self.ssrc.to_bytes(4, "big")
            + bytes((self.fraction,))
            + (self.cumulative_lost & 0xFFFFFF).to_bytes(3, "big")
            + self.highest_seq.to_bytes(4, "big")
            + self.jitter.to_bytes(4, "big")
            + self.lsr.to_bytes(4, "big")
            + self.dlsr.to_bytes(4, "big")
        )

    @classmethod
    def parse(cls, data: bytes, pos: int = 0) -> ReportBlock:
        """The block at data[pos:pos + 24] (the caller checked that it is there)."""
        lost = int.from_bytes(data[pos + 5 : pos + 8], "big")
        if lost & 0x800000:
            lost -= 1 << 24
        u32 = [int.from_bytes(data[i : i + 4], "big") for i in range(pos + 8, pos + 24, 4)]
        ssrc = int.from_bytes(data[pos : pos + 4], "big")
        return cls(ssrc, data[pos + 4], lost, *u32)


def _check_reports(reports: tuple[ReportBlock, ...]) -> None:
    if len(reports) > MAX_REPORTS:
        raise ValueError(f"{len(reports)} report blocks in one packet; at most {MAX_REPORTS} fit")
    for r in reports:
        if not isinstance(r, ReportBlock):
            raise ValueError(f"report blocks must be ReportBlock, got {type(r).__name__}")


@dataclass(frozen=True, slots=True)
class SenderReport:
    """SR (6.4.1): what a sender sent, when, and optional reception report blocks."""

    ssrc: int
    ntp_timestamp: int  # 64-bit NTP
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""  # profile-specific, kept as is

    def __post_init__(self) -> None:
        for name in ("ssrc", "rtp_timestamp", "packet_count", "octet_count"):
            _check_u32(name, getattr(self, name))
        if not 0 <= self.ntp_timestamp <= _U64:
            raise ValueError(f"ntp_timestamp must be a 64-bit number, got {self.ntp_timestamp}")
        object.__setattr__(self, "reports", tuple(self.reports))
        _check_reports(self.reports)

    @property
    def ntp_time(self) -> float:
        """The NTP timestamp as Unix seconds."""
        return unix_from_ntp(self.ntp_timestamp)

    def serialize(self) -> bytes:
        """The SR packet."""
        body = (
            self.ssrc.to_bytes(4, "big")
            + self.ntp_timestamp.to_bytes(8, "big")
            + self.rtp_timestamp.to_bytes(4, "big")
            + self.packet_count.to_bytes(4, "big")
            + self.octet_count.to_bytes(4, "big")
            + b"".join(r.serialize() for r in self.reports)
            + self.extension
        )
        return _packet(SR, len(self.reports), body)


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RR (6.4.2): reception report blocks from a receiver that does not send."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    def __post_init__(self) -> None:
        _check_u32("ssrc", self.ssrc)
        object.__setattr__(self, "reports", tuple(self.reports))
        _check_reports(self.reports)

    def serialize(self) -> bytes:
        """The RR packet."""
        body = (
            self.ssrc.to_bytes(4, "big")
            + b"".join(r.serialize() for r in self.reports)
            + self.extension
        )
        return _packet(RR, len(self.reports), body)


@dataclass(frozen=True, slots=True)
class SdesChunk:
    """The SDES items (type, value) of one source; values are raw bytes (UTF-8 text)."""

    ssrc: int
    items: tuple[tuple[int, bytes], ...] = ()

    def __post_init__(self) -> None:
        _check_u32("ssrc", self.ssrc)
        object.__setattr__(self, "items", tuple((t, bytes(v)) for t, v in self.items))
        for kind, value in self.items:
            if not 1 <= kind <= 255:
                raise ValueError(f"SDES item type must be 1..255, got {kind}")
            if len(value) > 255:
                raise ValueError(f"SDES item of {len(value)} bytes; at most 255 fit")

    @property
    def cname(self) -> str | None:
        """The CNAME item as text, if there is one."""
        for kind, value in self.items:
            if kind == CNAME:
                return value.decode("utf-8", "replace")
        return None

    def serialize(self) -> bytes:
        """The chunk, ended by null octets up to a 32-bit boundary (6.5)."""
        out = bytearray(self.ssrc.to_bytes(4, "big"))
        for kind, value in self.items:
            out += bytes((kind, len(value))) + value
        out += bytes(4 - len(out) % 4)  # at least one null octet ends the item list
        return bytes(out)


@dataclass(frozen=True, slots=True)
class Sdes:
    """SDES (6.5): source descriptions, one chunk per source."""

    chunks: tuple[SdesChunk, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "chunks", tuple(self.chunks))
        if len(self.chunks) > MAX_REPORTS:
            raise ValueError(f"{len(self.chunks)} SDES chunks; at most {MAX_REPORTS} fit")

    def serialize(self) -> bytes:
        """The SDES packet."""
        return _packet(SDES, len(self.chunks), b"".join(c.serialize() for c in self.chunks))


@dataclass(frozen=True, slots=True)
class Bye:
    """BYE (6.6): these sources leave, optionally saying why (UTF-8, see _ESCAPE)."""

    ssrcs: tuple[int, ...]
    reason: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ssrcs", tuple(self.ssrcs))
        if len(self.ssrcs) > MAX_REPORTS:
            raise ValueError(f"{len(self.ssrcs)} sources in one BYE; at most {MAX_REPORTS} fit")
        for ssrc in self.ssrcs:
            _check_u32("ssrc", ssrc)
        if self.reason is not None and len(self.reason.encode("utf-8", _ESCAPE)) > 255:
            raise ValueError("BYE reason longer than 255 bytes")

    def serialize(self) -> bytes:
        """The BYE packet; the reason is padded with zeros to 32 bits (not with the P bit)."""
        body = bytearray(b"".join(s.to_bytes(4, "big") for s in self.ssrcs))
        if self.reason is not None:
            text = self.reason.encode("utf-8", _ESCAPE)
            body += bytes((len(text),)) + text
            body += bytes(-len(body) % 4)
        return _packet(BYE, len(self.ssrcs), bytes(body))


@dataclass(frozen=True, slots=True)
class UnknownRtcp:
    """A packet of a type this module does not interpret (APP, feedback, XR, ...)."""

    packet_type: int
    count: int
    payload: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.packet_type <= 255:
            raise ValueError(f"packet_type must be 0..255, got {self.packet_type}")
        if not 0 <= self.count <= 31:
            raise ValueError(f"count must be 0..31, got {self.count}")

    def serialize(self) -> bytes:
        """The packet, header rebuilt around the payload."""
        return _packet(self.packet_type, self.count, self.payload)


RtcpPacket: TypeAlias = SenderReport | ReceiverReport | Sdes | Bye | UnknownRtcp


# -- builders ------------------------------------------------------------------------------


def sender_report(
    ssrc: int,
    ntp_time: float,
    rtp_timestamp: int,
    packet_count: int,
    octet_count: int,
    reports: Iterable[ReportBlock] = (),
) -> bytes:
    """An SR packet; ntp_time in Unix seconds; timestamp and counters wrap at 32 bits."""
    for name, value in (("packet_count", packet_count), ("octet_count", octet_count)):
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")
    return SenderReport(
        ssrc,
        ntp_from_unix(ntp_time),
        rtp_timestamp & _U32,
        packet_count & _U32,
        octet_count & _U32,
        tuple(reports),
    ).serialize()


def receiver_report(ssrc: int, reports: Iterable[ReportBlock] = ()) -> bytes:
    """An RR packet."""
    return ReceiverReport(ssrc, tuple(reports)).serialize()


def sdes_cname(ssrc: int, cname: str) -> bytes:
    """An SDES packet with one chunk holding the CNAME."""
    return Sdes((SdesChunk(ssrc, ((CNAME, cname.encode()),)),)).serialize()


def bye(ssrcs: Iterable[int], reason: str | None = None) -> bytes:
    """A BYE packet."""
    return Bye(tuple(ssrcs), reason).serialize()


def compound(*packets: bytes) -> bytes:
    """Packets as one compound packet (6.1); one that starts otherwise gets an empty RR first.

    RFC 3550 wants every compound packet to start with an SR or RR, "even if
    no data has been sent or received": receivers that validate (GStreamer)
    drop a lone BYE. The RR takes the SSRC of the first packet.
    """
    if not packets:
        raise ValueError("a compound RTCP packet needs at least one packet")
    for i, p in enumerate(packets):
        if len(p) < 4 or len(p) % 4 or p[0] >> 6 != 2:
            raise ValueError(f"packet {i} is not an RTCP packet")
        if (int.from_bytes(p[2:4], "big") + 1) * 4 != len(p):
            raise ValueError(f"packet {i} length field says otherwise than its size")
        if p[0] & 0x20 and i != len(packets) - 1:
            raise ValueError(f"packet {i} is padded but not last")
    parts = list(packets)
    if packets[0][1] not in (SR, RR):
        if len(packets[0]) < 8:
            raise ValueError("packet 0 has no SSRC for the RR that must come first")
        parts.insert(0, ReceiverReport(int.from_bytes(packets[0][4:8], "big")).serialize())
    data = b"".join(parts)
    if len(data) > MAX_COMPOUND:
        raise ValueError(f"compound RTCP packet of {len(data)} bytes exceeds {MAX_COMPOUND}")
    return data


# -- parser --------------------------------------------------------------------------------


def parse_compound(data: bytes | bytearray | memoryview) -> list[RtcpPacket]:
    """Parse and validate one compound RTCP packet (RFC 3550 A.2)."""
    size = len(data)
    if size > MAX_COMPOUND:
        raise ValueError(f"compound RTCP packet of {size} bytes exceeds {MAX_COMPOUND}")
    data = bytes(data)
    if size < 4:
        raise ValueError(f"RTCP packet of {size} bytes is shorter than its 4-byte header")
    out: list[RtcpPacket] = []
    pos = 0
    while pos < size:
        left = size - pos
        if left < 4:
            raise ValueError(f"truncated RTCP header at offset {pos}: {left} of 4 bytes")
        first, packet_type = data[pos], data[pos + 1]
        if first >> 6 != 2:
            raise ValueError(f"RTCP version {first >> 6} at offset {pos}, expected 2")
        length = (int.from_bytes(data[pos + 2 : pos + 4], "big") + 1) * 4
        if length > left:
            raise ValueError(
                f"RTCP packet at offset {pos} says {length} bytes, only {left} are left"
            )
        if not out and packet_type not in (SR, RR):
            name = NAMES.get(packet_type, "unknown")
            raise ValueError(
                f"first RTCP packet is type {packet_type} ({name}), expected SR (200) or RR (201)"
            )
        end = pos + length
        if first & 0x20:
            if end != size:
                raise ValueError(f"padding bit set on the RTCP packet at offset {pos}, not last")
            pad = data[end - 1]
            if pad == 0 or pad > length - 4:
                raise ValueError(f"RTCP padding of {pad} bytes in a {length}-byte packet")
            end -= pad
        out.append(_parse_packet(packet_type, first & 0x1F, data, pos, end))
        pos += length
    return out


def _parse_packet(packet_type: int, count: int, data: bytes, pos: int, end: int) -> RtcpPacket:
    """One packet: header at data[pos], body up to end (padding removed)."""
    size = end - pos
    if packet_type in (SR, RR):
        fixed = 28 if packet_type == SR else 8
        need = fixed + ReportBlock.SIZE * count
        if size < need:
            name = NAMES[packet_type]
            raise ValueError(
                f"{name} with {count} report blocks needs {need} bytes, the packet has {size}"
            )
        start = pos + fixed
        reports = tuple(ReportBlock.parse(data, start + 24 * i) for i in range(count))
        ssrc = int.from_bytes(data[pos + 4 : pos + 8], "big")
        extension = data[pos + need : end]
        if packet_type == RR:
            return ReceiverReport(ssrc, reports, extension)
        return SenderReport(
            ssrc,
            int.from_bytes(data[pos + 8 : pos + 16], "big"),
            int.from_bytes(data[pos + 16 : pos + 20], "big"),
            int.from_bytes(data[pos + 20 : pos + 24], "big"),
            int.from_bytes(data[pos + 24 : pos + 28], "big"),
            reports,
            extension,
        )
    if packet_type == SDES:
        return _parse_sdes(count, data, pos, end)
    if packet_type == BYE:
        return _parse_bye(count, data, pos, end)
    return UnknownRtcp(packet_type, count, data[pos + 4 : end])


def _parse_sdes(count: int, data: bytes, pos: int, end: int) -> Sdes:
    base = pos
    i = pos + 4
    chunks = []
    for n in range(count):
        if end - i < 4:
            raise ValueError(f"SDES chunk {n} of {count} is missing")
        ssrc = int.from_bytes(data[i : i + 4], "big")
        i += 4
        items = []
        while True:
            if i >= end:
                raise ValueError(f"SDES chunk for SSRC {ssrc:08X} has no end item")
            kind = data[i]
            if kind == 0:
                # The null octet, then nulls up to the next 32-bit boundary.
                i = base + ((i + 1 - base + 3) & ~3)
                if i > end:
                    raise ValueError(f"SDES chunk for SSRC {ssrc:08X} runs past the packet")
                break
            if end - i < 2 or end - i - 2 < data[i + 1]:
                raise ValueError(f"SDES item of type {kind} runs past the packet")
            n_bytes = data[i + 1]
            items.append((kind, data[i + 2 : i + 2 + n_bytes]))
            i += 2 + n_bytes
        chunks.append(SdesChunk(ssrc, tuple(items)))
    if i != end:
        raise ValueError(f"{end - i} bytes after the last SDES chunk")
    return Sdes(tuple(chunks))


def _parse_bye(count: int, data: bytes, pos: int, end: int) -> Bye:
    i = pos + 4
    if end - i < 4 * count:
        raise ValueError(f"BYE with {count} sources needs {4 + 4 * count} bytes, has {end - pos}")
    ssrcs = tuple(int.from_bytes(data[i + 4 * k : i + 4 * k + 4], "big") for k in range(count))
    i += 4 * count
    reason = None
    if i < end:
        n = data[i]
        if end - i - 1 < n:
            raise ValueError(f"BYE reason of {n} bytes runs past the packet")
        reason = data[i + 1 : i + 1 + n].decode("utf-8", _ESCAPE)
    return Bye(ssrcs, reason)
