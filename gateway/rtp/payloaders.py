"""RTP payloaders by codec, in the shape the egress sends from."""

from __future__ import annotations

import numpy as np

from .._ext.rtph264 import RtpH264Packetizer
from .jpeg import JpegPayloader

JPEG_PAYLOAD_TYPE = 26  # static RTP/AVP payload type of JPEG (RFC 3551)
H264_PAYLOAD_TYPE = 96  # the first dynamic payload type, as most servers announce H.264


class RtpJpeg:
    """RFC 2435 payloads of a JPEG track: one buffer, equal-sized payloads but the last."""

    payload_type = JPEG_PAYLOAD_TYPE
    gated = False  # every JPEG frame stands alone

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


class RtpH264:
    """RFC 6184 payloads (packetization-mode 1) of an H.264 track."""

    payload_type = H264_PAYLOAD_TYPE
    gated = True  # P frames need their references: viewers start at an IDR

    def __init__(self, payload_size: int) -> None:
        self._packetizer = RtpH264Packetizer(payload_size)

    def payload(self, frame: bytes) -> tuple[bytes, np.ndarray, str | None]:
        """(payloads back to back, uint32 offsets, None): nothing is ever re-encoded here."""
        data, offsets = self._packetizer.packetize(frame)
        return data, np.frombuffer(offsets, dtype=np.uint32), None


def make_payloader(codec: str, payload_size: int) -> RtpJpeg | RtpH264:
    """The payloader of a track's codec."""
    if codec == "jpeg":
        return RtpJpeg(payload_size)
    if codec == "h264":
        return RtpH264(payload_size)
    raise ValueError(f"no RTP payloader for {codec!r}")
