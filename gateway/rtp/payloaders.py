"""RTP payloaders by codec, in the shape the egress sends from."""

from __future__ import annotations

import numpy as np

from .jpeg import JpegPayloader

JPEG_PAYLOAD_TYPE = 26  # static RTP/AVP payload type of JPEG (RFC 3551)


class RtpJpeg:
    """RFC 2435 payloads of a JPEG track: one buffer, equal-sized payloads but the last."""

    payload_type = JPEG_PAYLOAD_TYPE

    def __init__(self, payload_size: int) -> None:
        self._payloader = JpegPayloader(payload_size)
        self._payload_size = payload_size
        self._steps = np.arange(0, 4096, dtype=np.uint32) * payload_size

    def payload(self, frame: bytes) -> tuple[bytes, np.ndarray, str | None]:
        """(payloads back to back, uint32 offsets, re-encode reason or None)."""
        packets, reason = self._payloader.payload(frame)
        data = packets.data
        n = len(packets)
        steps = self._steps
        if n + 1 > len(steps):
            steps = np.arange(0, n + 1, dtype=np.uint32) * self._payload_size
        offsets = np.minimum(steps[: n + 1], len(data))
        return data, offsets, reason


def make_payloader(codec: str, payload_size: int) -> RtpJpeg:
    """The payloader of a track's codec."""
    if codec == "jpeg":
        return RtpJpeg(payload_size)
    raise ValueError(f"no RTP payloader for {codec!r}")
