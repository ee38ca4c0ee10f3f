"""RFC 6184 (RTP/H.264): Annex B scanning, packetizer, depacketizer, SPS (from ext/rtph264.pyx)."""

import array
from typing import Final, Literal, final

from typing_extensions import Buffer

__all__ = [
    "DROP_REASONS",
    "MAX_PAYLOAD_SIZE",
    "MIN_PAYLOAD_SIZE",
    "RtpH264Depacketizer",
    "RtpH264Packetizer",
    "nal_type",
    "parameter_sets",
    "profile_level_id",
    "split_annexb",
    "sprop_parameter_sets",
    "sps_info",
]

DropReason = Literal[
    "seq_gap", "fu_no_start", "fu_no_end", "too_large", "unsupported_type", "malformed"
]

MIN_PAYLOAD_SIZE: Final[int]
MAX_PAYLOAD_SIZE: Final[int]
DROP_REASONS: Final[tuple[DropReason, ...]]
"""Why the depacketizer dropped an access unit."""

def split_annexb(data: Buffer) -> list[memoryview]:
    """NAL units of an Annex B byte stream, as views of it without their start codes."""

def nal_type(nal: Buffer) -> int:
    """nal_unit_type (the low 5 bits of the first byte) of a NAL unit without start code."""

def parameter_sets(access_unit: Buffer) -> tuple[bytes | None, bytes | None]:
    """The first SPS and the first PPS NAL units of an Annex B access unit (None if absent)."""

def sps_info(sps: Buffer) -> tuple[int, int, int, int, int]:
    """(profile_idc, constraint flags, level_idc, width, height) of an SPS NAL unit."""

def profile_level_id(sps: Buffer) -> str:
    """The SDP profile-level-id of an SPS NAL unit: profile_idc, constraint flags, level_idc."""

def sprop_parameter_sets(sps: Buffer, pps: Buffer) -> str:
    """The SDP sprop-parameter-sets value: base64 of the SPS and of the PPS, comma-separated."""

@final
class RtpH264Packetizer:
    """Cuts Annex B access units into RFC 6184 payloads (packetization-mode=1)."""

    def __init__(self, payload_size: int = 1400) -> None: ...
    @property
    def payload_size(self) -> int: ...
    def packetize(self, access_unit: Buffer) -> tuple[bytes, array.array[int]]:
        """All payloads of one access unit, back to back, and their offsets (packets + 1)."""

@final
class RtpH264Depacketizer:
    """Reassembles RFC 6184 packets into Annex B access units; bounded by max_access_unit."""

    def __init__(self, max_access_unit: int = 4 << 20) -> None: ...
    @property
    def max_access_unit(self) -> int: ...
    @property
    def frames(self) -> int:
        """Access units completed and returned."""
    @property
    def dropped(self) -> dict[DropReason, int]:
        """Access units dropped, by reason (every reason of DROP_REASONS, zero included)."""
    @property
    def buffered(self) -> int:
        """Bytes held for the access unit being assembled."""
    @property
    def capacity(self) -> int:
        """Bytes allocated for reassembly (at most max_access_unit)."""
    def reset(self) -> None:
        """Forget the partial access unit and the sequence state (counters are kept)."""
    def push(self, seq: int, timestamp: int, marker: bool, payload: Buffer) -> bytes | None:
        """Take one packet's payload; return an Annex B access unit when one is complete."""
