"""Checks a JPEG frame from a source before it becomes a Unit."""

from __future__ import annotations

from dataclasses import dataclass

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
# Start-of-frame markers (C0-CF) except DHT (C4), JPG (C8) and DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_TRAILER_SLACK = 32  # cameras pad parts with CR/LF/NUL after EOI
_MAX_SEGMENTS = 256  # header segments before SOS; real encoders write fewer than 20


@dataclass(frozen=True, slots=True)
class FrameCheck:
    """Outcome of checking one frame: `reason` is None when it is usable."""

    reason: str | None
    data: bytes = b""
    width: int = 0
    height: int = 0


def check_frame(data: bytes, limit: int) -> FrameCheck:
    """Validate SOI ... EOI, the size cap and the header segments up to SOS.

    Returns the frame trimmed to its EOI, with the size from its SOF marker.
    Reasons: empty, too_large, not_jpeg, truncated, corrupt.
    """
    n = len(data)
    if n == 0:
        return FrameCheck("empty")
    if n > limit:
        return FrameCheck("too_large")
    if not data.startswith(SOI):
        return FrameCheck("not_jpeg")
    end = data.rfind(EOI, max(2, n - _TRAILER_SLACK))
    if end < 0:
        return FrameCheck("truncated")
    if end + 2 != n:
        data = data[: end + 2]
        n = end + 2
    width = height = 0
    i = 2
    for _ in range(_MAX_SEGMENTS):
        if i + 4 > n or data[i] != 0xFF:
            return FrameCheck("corrupt")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker in (0xD8, 0xD9):  # SOI or EOI before any scan
            return FrameCheck("corrupt")
        length = (data[i + 2] << 8) | data[i + 3]
        if length < 2 or i + 2 + length > n:
            return FrameCheck("corrupt")
        if marker in _SOF:
            if length < 8:
                return FrameCheck("corrupt")
            height = (data[i + 5] << 8) | data[i + 6]
            width = (data[i + 7] << 8) | data[i + 8]
        elif marker == 0xDA:  # SOS: entropy-coded data follows
            if width == 0 or height == 0:
                return FrameCheck("corrupt")
            return FrameCheck(None, data, width, height)
        i += 2 + length
    return FrameCheck("corrupt")
