"""Fitting source frames under a channel's `max_frame_size` (the Axis "maximum frame size").

A frame above the limit is decoded and encoded again at a coarser quantizer
until it fits, as a baseline 4:2:0 JPEG with the standard Huffman tables (so
RTP/JPEG still carries it as it is). The quantizer that last worked is where
the next oversized frame starts, so a camera that is always too large costs one
encode per frame, not a search.
"""

from __future__ import annotations

from fractions import Fraction

import av

QSCALES = (3, 5, 8, 12, 18, 24, 31)  # FFmpeg mjpeg qscale: 2 is finest, 31 coarsest
MAX_TRIES = 3


class FrameShrinker:
    """Re-encodes JPEG frames to fit under a byte limit. One per channel, one thread."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._start = 1  # index into QSCALES
        self._decoder: av.VideoCodecContext | None = None
        self._encoders: dict[tuple[int, int, int], av.VideoCodecContext] = {}

    def fit(self, frame: bytes) -> bytes | None:
        """The frame re-encoded under the limit, or None if no quantizer gets it there."""
        image = self._decode(frame)
        if image is None:
            return None
        if image.format.name != "yuvj420p" or image.width % 16 or image.height % 16:
            width = max(16, image.width // 16 * 16)
            height = max(16, image.height // 16 * 16)
            image = image.reformat(width=width, height=height, format="yuvj420p")
        index = self._start
        for _ in range(MAX_TRIES):
            data = self._encode(image, QSCALES[index])
            if data is not None and len(data) <= self.limit:
                # Next time, try one step finer first: quality comes back when it can.
                self._start = max(0, index - 1)
                return data
            if index == len(QSCALES) - 1:
                break
            # Jump further when far off: size falls roughly as 1/qscale.
            ratio = len(data) / self.limit if data else 2.0
            step = 2 if ratio > 1.5 else 1
            index = min(len(QSCALES) - 1, index + step)
        self._start = len(QSCALES) - 1
        return None

    def _decode(self, frame: bytes) -> av.VideoFrame | None:
        if self._decoder is None:
            decoder = av.CodecContext.create("mjpeg", "r")
            assert isinstance(decoder, av.VideoCodecContext)
            self._decoder = decoder
        try:
            images = self._decoder.decode(av.Packet(frame))
        except av.FFmpegError:
            self._decoder = None
            return None
        for image in images:
            if isinstance(image, av.VideoFrame):
                return image
        return None

    def _encode(self, image: av.VideoFrame, qscale: int) -> bytes | None:
        key = (image.width, image.height, qscale)
        encoder = self._encoders.get(key)
        if encoder is None:
            if len(self._encoders) >= 8:  # the picture size changed: forget the old ones
                self._encoders.clear()
            encoder = av.CodecContext.create("mjpeg", "w")
            assert isinstance(encoder, av.VideoCodecContext)
            encoder.width, encoder.height, encoder.pix_fmt = image.width, image.height, "yuvj420p"
            encoder.time_base = Fraction(1, 25)  # intra-only: timing does not matter
            encoder.options = {"huffman": "default"}  # what RFC 2435 implies
            encoder.qmin = encoder.qmax = qscale
            encoder.thread_count = 1
            self._encoders[key] = encoder
        image.pts = None
        try:
            packets = encoder.encode(image)
        except av.FFmpegError:
            self._encoders.pop(key, None)
            return None
        return b"".join(bytes(p) for p in packets) or None
