"""RTP/JPEG (RFC 2435) for a JPEG track: packetize as is, or re-encode what RFC 2435 cannot carry.

Most cameras send frames RFC 2435 carries untouched (baseline, 4:2:2 or 4:2:0,
standard Huffman tables): those are packetized once per frame and cost one
copy. The rest (progressive, optimized Huffman tables, 4:4:4, grayscale, odd
or oversized pictures...) are decoded and re-encoded once per frame with
PyAV's mjpeg encoder into a conformant baseline JPEG; the reason is returned so
that the caller counts ``coaxgate_jpeg_reencoded_total{channel,reason}``.
"""

from __future__ import annotations

from fractions import Fraction

import av

from .._ext.rtpjpeg import (
    JpegInfo,
    NotCarriable,
    Packets,
    RtpJpegDepacketizer,
    RtpJpegPacketizer,
    walk_jpeg,
)

__all__ = [
    "MAX_DIMENSION",
    "JpegInfo",
    "JpegPayloader",
    "NotCarriable",
    "Packets",
    "RtpJpegDepacketizer",
    "RtpJpegPacketizer",
    "reencode_size",
    "walk_jpeg",
]

MAX_DIMENSION = 2040  # RFC 2435 sends width and height as one byte of 8-pixel units
DEFAULT_QSCALE = 4  # about IJG quality 80-85: re-encoding should not be the visible loss


def reencode_size(width: int, height: int, *, chroma_420: bool) -> tuple[int, int]:
    """Nearest size RFC 2435 carries to (width, height), keeping the aspect ratio.

    Widths are multiples of 8 and heights of 8, or of 16 for 4:2:0 so that the
    frame holds whole MCU rows; neither side goes above 2040.
    """
    if width < 1 or height < 1:
        raise ValueError(f"picture size {width}x{height} is empty")
    step_h = 16 if chroma_420 else 8
    max_w = MAX_DIMENSION
    max_h = MAX_DIMENSION // step_h * step_h
    if width % 8 == 0 and height % step_h == 0 and width <= max_w and height <= max_h:
        return width, height
    scale = min(1.0, max_w / width, max_h / height)
    # Nearest multiple, not the one below: a 50x30 picture becomes 48x32, not 48x16.
    return (
        min(max_w, max(8, round(width * scale / 8) * 8)),
        min(max_h, max(step_h, round(height * scale / step_h) * step_h)),
    )


class JpegPayloader:
    """Packetizes one track's JPEG frames, re-encoding those RFC 2435 cannot carry.

    Not thread-safe: one per track, used from one thread at a time. The PyAV
    decoder and encoder are kept between frames; the encoder is re-opened when
    the picture size or pixel format changes.
    """

    def __init__(self, payload_size: int = 1400, *, qscale: int = DEFAULT_QSCALE) -> None:
        if not 1 <= qscale <= 31:
            raise ValueError(f"qscale must be in 1..31, got {qscale}")
        self._packetizer = RtpJpegPacketizer(payload_size)
        self._qscale = qscale
        self._decoder: av.VideoCodecContext | None = None
        self._encoder: av.VideoCodecContext | None = None
        self._encoder_key: tuple[int, int, str] | None = None
        self._pts = 0

    @property
    def payload_size(self) -> int:
        """Size of every payload but a frame's last."""
        return self._packetizer.payload_size

    def payload(self, frame: bytes) -> tuple[Packets, str | None]:
        """Payloads of one frame and the reason it was re-encoded (None: sent as is).

        ValueError (NotCarriable included) when the frame is malformed or cannot be
        decoded: the caller counts and drops it.
        """
        try:
            return self._packetizer.packetize(frame), None
        except NotCarriable as e:
            reason: str = e.reason
        return self._packetizer.packetize(self._reencode(frame)), reason

    def _reencode(self, frame: bytes) -> bytes:
        """Decode with FFmpeg's mjpeg decoder; encode a baseline JPEG RFC 2435 carries."""
        image = self._decode(frame)
        # Always 4:2:0 (type 1), even from a 4:2:2 camera: FFmpeg's mjpeg encoder
        # writes 4:2:2 as Y 2x2 with chroma 1x2 (its MCU is always 16x16), a layout
        # RFC 2435 type 0 (Y 2x1, chroma 1x1) cannot describe.
        pix_fmt = "yuvj420p"
        width, height = reencode_size(image.width, image.height, chroma_420=True)
        if (image.width, image.height, image.format.name) != (width, height, pix_fmt):
            image = image.reformat(width=width, height=height, format=pix_fmt)
        encoder = self._encoder_for(width, height, pix_fmt)
        image.pts = self._pts
        self._pts += 1
        try:
            packets = encoder.encode(image)
        except av.FFmpegError as e:
            self._encoder = None
            raise ValueError(f"re-encoding the frame failed: {e}") from e
        data = b"".join(bytes(p) for p in packets)
        if not data:
            raise ValueError("the mjpeg encoder returned no data")
        return data

    def _decode(self, frame: bytes) -> av.VideoFrame:
        if self._decoder is None:
            decoder = av.CodecContext.create("mjpeg", "r")
            assert isinstance(decoder, av.VideoCodecContext)
            # Fail on damaged entropy data instead of concealing it: a frame we
            # re-encode must be the camera's picture, not a plausible grey patch.
            decoder.options = {"err_detect": "explode"}
            self._decoder = decoder
        try:
            images = self._decoder.decode(av.Packet(frame))
        except av.FFmpegError as e:
            self._decoder = None  # start clean on the next frame
            raise ValueError(f"the frame cannot be decoded: {e}") from e
        for image in images:
            if isinstance(image, av.VideoFrame):
                return image
        raise ValueError("the frame cannot be decoded: the decoder returned no picture")

    def _encoder_for(self, width: int, height: int, pix_fmt: str) -> av.VideoCodecContext:
        key = (width, height, pix_fmt)
        if self._encoder is None or self._encoder_key != key:
            encoder = av.CodecContext.create("mjpeg", "w")
            assert isinstance(encoder, av.VideoCodecContext)
            encoder.width, encoder.height, encoder.pix_fmt = width, height, pix_fmt
            encoder.time_base = Fraction(1, 25)  # intra-only: timing does not matter
            encoder.options = {"huffman": "default"}  # the Annex K tables RFC 2435 implies
            encoder.qmin = encoder.qmax = self._qscale
            encoder.thread_count = 1
            self._encoder, self._encoder_key = encoder, key
        return self._encoder
