"""Receiving RTP (RFC 3550): the fixed header, and what a receiver learns from a stream.

Sans-IO: `parse` takes a datagram or interleaved frame; `ReceiverStats` takes
the header fields and the arrival time, and keeps the extended sequence
number, the unwrapped timestamp, loss and interarrival jitter (Appendix A.1,
A.3, A.8) that metrics and receiver reports need.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_HEADER = 12
MAX_DROPOUT = 3000  # A.1: a jump this far ahead is taken as loss, not a restart
MAX_MISORDER = 100


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """The fields of one RTP packet a receiver uses, and its payload."""

    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    payload: memoryview


def parse(data: bytes | memoryview) -> RtpPacket:
    """Parse one RTP packet; ValueError names what is wrong with it."""
    view = memoryview(data)
    n = len(view)
    if n < MIN_HEADER:
        raise ValueError(f"RTP packet of {n} bytes is shorter than its 12-byte header")
    b0, b1 = view[0], view[1]
    if b0 >> 6 != 2:
        raise ValueError(f"RTP version {b0 >> 6}, expected 2")
    pos = MIN_HEADER + 4 * (b0 & 0x0F)
    if b0 & 0x10:  # header extension: 16-bit profile, 16-bit length in words
        if n < pos + 4:
            raise ValueError("RTP header extension runs past the packet")
        pos += 4 + 4 * int.from_bytes(view[pos + 2 : pos + 4], "big")
    end = n
    if b0 & 0x20:  # padding: the last byte counts it
        end -= view[n - 1]
    if pos > end:
        raise ValueError("RTP header, extension and padding are longer than the packet")
    return RtpPacket(
        payload_type=b1 & 0x7F,
        marker=bool(b1 & 0x80),
        seq=int.from_bytes(view[2:4], "big"),
        timestamp=int.from_bytes(view[4:8], "big"),
        ssrc=int.from_bytes(view[8:12], "big"),
        payload=view[pos:end],
    )


class ReceiverStats:
    """One source's sequence, timestamp and jitter state (RFC 3550 A.1, A.8)."""

    def __init__(self, clock_rate: int) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate must be positive, got {clock_rate}")
        self.clock_rate = clock_rate
        self.received = 0
        self.ssrc: int | None = None
        self._base_seq = 0
        self._max_seq = 0
        self._cycles = 0
        self._ts_last = 0
        self._ts_ext = 0
        self._transit: float | None = None
        self._jitter = 0.0  # in timestamp units
        self.restarts = 0

    @property
    def expected(self) -> int:
        """Packets expected from the first to the highest sequence number seen."""
        if not self.received:
            return 0
        return self._cycles + self._max_seq - self._base_seq + 1

    @property
    def lost(self) -> int:
        """Packets expected and not received (never negative: duplicates do not count back)."""
        return max(0, self.expected - self.received)

    @property
    def jitter(self) -> float:
        """Interarrival jitter in seconds."""
        return self._jitter / self.clock_rate

    def update(self, ssrc: int, seq: int, timestamp: int, arrival: float) -> int:
        """Count one packet; return its timestamp unwrapped to 64 bits (from 0 at the start)."""
        if self.ssrc != ssrc or not self.received:
            # A new source (a restarted camera): start over, as A.1 does on a new SSRC.
            # The unwrapped timestamp goes on from where it was, one nominal frame later,
            # so what readers see never steps back.
            if self.received:
                self.restarts += 1
                self._ts_ext += self.clock_rate // 25
            self.ssrc = ssrc
            self._base_seq = self._max_seq = seq
            self._cycles = 0
            self._ts_last = timestamp
            self._transit = None
        else:
            delta = (seq - self._max_seq) & 0xFFFF
            if delta < MAX_DROPOUT:
                if seq < self._max_seq:
                    self._cycles += 1 << 16
                self._max_seq = seq
            elif delta <= 0xFFFF - MAX_MISORDER:
                # A large jump: the sender restarted its sequence; resynchronize.
                self.restarts += 1
                self._base_seq = self._max_seq = seq
                self._cycles = 0
                self.received = 0
        self.received += 1
        # Timestamps: signed 32-bit difference to the last one, added to a 64-bit count.
        step = (timestamp - self._ts_last) & 0xFFFFFFFF
        if step >= 1 << 31:
            step -= 1 << 32
        self._ts_ext += step
        self._ts_last = timestamp
        transit = arrival * self.clock_rate - self._ts_ext
        if self._transit is not None:
            self._jitter += (abs(transit - self._transit) - self._jitter) / 16
        self._transit = transit
        return self._ts_ext
