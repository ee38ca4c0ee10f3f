"""RFC 2435 (RTP/JPEG): header walk, packetizer, depacketizer (compiled from ext/rtpjpeg.pyx)."""

from collections.abc import Iterator
from typing import Final, Literal, final

from typing_extensions import Buffer

__all__ = [
    "DROP_REASONS",
    "MAX_PAYLOAD_SIZE",
    "MIN_PAYLOAD_SIZE",
    "REASONS",
    "JpegInfo",
    "NotCarriable",
    "Packets",
    "RtpJpegDepacketizer",
    "RtpJpegPacketizer",
    "make_qtables",
    "walk_jpeg",
]

Reason = Literal[
    "progressive",
    "not_baseline",
    "precision",
    "grayscale",
    "sampling",
    "qtable_16bit",
    "qtable_layout",
    "huffman",
    "size",
]
DropReason = Literal[
    "seq_gap", "offset", "too_large", "bad_header", "unsupported_type", "reserved_q"
]

MIN_PAYLOAD_SIZE: Final[int]
MAX_PAYLOAD_SIZE: Final[int]
REASONS: Final[tuple[Reason, ...]]
"""Why a frame is not carriable, in the order walk_jpeg checks them."""
DROP_REASONS: Final[tuple[DropReason, ...]]
"""Why the depacketizer dropped a frame."""

class NotCarriable(ValueError):
    """RFC 2435 cannot carry this JPEG as it is; ``reason`` says why (see REASONS)."""

    reason: Reason
    def __init__(self, reason: Reason) -> None: ...

@final
class JpegInfo:
    """What walk_jpeg learned from a frame's headers."""

    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def rtp_type(self) -> int:
        """0 (Y 2x1) or 1 (Y 2x2) with chroma 1x1, +64 with a restart interval; else -1."""
    @property
    def restart_interval(self) -> int:
        """MCUs per restart interval (DRI), 0 without."""
    @property
    def qtables(self) -> bytes:
        """Luma then chroma table, 64 bytes each, zigzag order; empty unless carriable."""
    @property
    def scan_offset(self) -> int:
        """Offset of the first byte of entropy-coded data, after SOS."""
    @property
    def scan_end(self) -> int:
        """Offset where the scan data ends (at EOI, or the end of the frame without one)."""
    @property
    def reason(self) -> Reason | None:
        """None when RFC 2435 can carry the frame as it is; else the first reason it cannot."""

def walk_jpeg(data: Buffer) -> JpegInfo:
    """Walk a JPEG's header segments up to the scan; ValueError when they are malformed."""

def make_qtables(q: int) -> bytes:
    """The 128 bytes (luma, chroma; zigzag order) RFC 2435 Appendix A derives from Q 1..99."""

@final
class Packets:
    """The RTP/JPEG payloads of one frame, back to back in one buffer."""

    @property
    def data(self) -> bytes:
        """Every payload, concatenated; payload i starts at i * payload_size."""
    @property
    def payload_size(self) -> int:
        """Size of every payload but the last, which may be shorter."""
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def rtp_type(self) -> int:
        """RFC 2435 type of the frame: 0, 1, 64 or 65."""
    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> memoryview: ...
    def __iter__(self) -> Iterator[memoryview]: ...

@final
class RtpJpegPacketizer:
    """Cuts carriable JPEG frames into RFC 2435 payloads of payload_size bytes."""

    def __init__(self, payload_size: int = 1400) -> None: ...
    @property
    def payload_size(self) -> int: ...
    def packetize(self, data: Buffer) -> Packets:
        """All payloads of one frame; NotCarriable if RFC 2435 cannot carry it as it is."""

@final
class RtpJpegDepacketizer:
    """Reassembles RFC 2435 packets into JPEG frames; bounded by max_frame_size."""

    def __init__(self, max_frame_size: int = 4 << 20) -> None: ...
    @property
    def max_frame_size(self) -> int: ...
    @property
    def frames(self) -> int:
        """Frames completed and returned."""
    @property
    def dropped(self) -> dict[DropReason, int]:
        """Frames dropped, by reason (every reason of DROP_REASONS, zero included)."""
    @property
    def buffered(self) -> int:
        """Scan bytes held for the frame being assembled."""
    @property
    def capacity(self) -> int:
        """Bytes allocated for reassembly (at most max_frame_size)."""
    def reset(self) -> None:
        """Forget the partial frame and the sequence state (counters are kept)."""
    def push(self, seq: int, timestamp: int, marker: bool, payload: Buffer) -> bytes | None:
        """Take one packet's payload; return a complete JPEG when the marker bit ends a frame."""
