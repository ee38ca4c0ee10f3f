"""Feeding WebRTC peers the shared encoder's H.264, without encoding it again.

aiortc's RTCRtpSender sends what its track returns through its encoder's
`pack()`. Here every frame is packetized once, in Cython (RFC 6184, 1200-byte
payloads to leave room for SRTP and header extensions), into a `PackedFrame`
shared by every peer, and each sender's encoder is a `SharedPacker` that just
hands those payloads over. Each peer has a bounded queue: a peer that falls
behind drops what it has queued and skips to the next IDR (asking the encoder
for one), so it never decodes a broken reference chain and never holds more
than a few frames.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .._ext.egress import TokenBucket, admit
from .._ext.rtph264 import RtpH264Packetizer
from ..media.limits import ViewerLimits
from ..media.rate import FpsLimiter
from ..media.session import Session
from ..media.unit import Unit

WEBRTC_PAYLOAD_SIZE = 1200


class PackedFrame:
    """One access unit as RTP payloads, built once and sent to every peer."""

    __slots__ = ("payloads", "size", "timestamp")

    def __init__(self, payloads: list[bytes], timestamp: int, size: int) -> None:
        self.payloads = payloads
        self.timestamp = timestamp
        self.size = size


class SharedPacker:
    """Stands in for a sender's H.264 encoder: the payloads are already made."""

    def pack(self, frame: PackedFrame) -> tuple[list[bytes], int]:
        """aiortc's Encoder.pack: (payloads, 90 kHz timestamp)."""
        return frame.payloads, frame.timestamp


class Packer:
    """Packetizes each access unit of a channel once for all its peers."""

    def __init__(self) -> None:
        self._packetizer = RtpH264Packetizer(WEBRTC_PAYLOAD_SIZE)

    def pack(self, unit: Unit) -> PackedFrame:
        """The frame's payloads (RTP timestamps are the sender's offset plus unit.pts)."""
        data, offsets = self._packetizer.packetize(unit.data)
        view = memoryview(data)
        payloads = [bytes(view[a:b]) for a, b in itertools.pairwise(offsets)]
        return PackedFrame(payloads, unit.pts & 0xFFFFFFFF, len(unit.data))


def use_shared_packer(sender: RTCRtpSender) -> None:
    """Make a sender send PackedFrames as they are (its encoder is created lazily otherwise)."""
    sender._RTCRtpSender__encoder = SharedPacker()  # type: ignore[attr-defined]


class PeerTrack(MediaStreamTrack):
    """One peer's view of a channel's H.264 track."""

    kind = "video"

    def __init__(
        self,
        session: Session,
        queue_frames: int,
        request_keyframe: Callable[[str], object],
        on_drop: Callable[[str, int], None],
        limits: ViewerLimits | None = None,
        shared: TokenBucket | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self._queue: asyncio.Queue[PackedFrame | None] = asyncio.Queue(queue_frames)
        self._request_keyframe = request_keyframe
        self._on_drop = on_drop
        limits = limits or ViewerLimits()
        self._limiter = FpsLimiter(limits.fps) if limits.fps else None
        self._bucket = limits.bucket()
        self._shared = shared
        self.waiting_for_idr = True
        self.sent_frames = 0

    def offer(self, frame: PackedFrame, unit: Unit) -> None:
        """Queue one frame for this peer (called on the event loop, once per frame)."""
        if self.readyState != "live":
            return
        if self.waiting_for_idr:
            if not unit.keyframe:
                self.session.dropped["waiting_idr"] += 1
                return
            self.waiting_for_idr = False
        if self._limiter is not None and not self._limiter.admit(unit.pts):
            self._skip("fps_limit")
            return
        if (self._bucket is not None or self._shared is not None) and not admit(
            8 * frame.size, self._bucket, self._shared
        ):
            self._skip("rate_limit")
            return
        if self._queue.full():
            # Behind: whatever is queued depends on frames this peer will not
            # get in time; drop it all and resume at the next IDR.
            dropped = self._queue.qsize()
            while not self._queue.empty():
                self._queue.get_nowait()
            self.session.dropped["slow_viewer"] += dropped + 1
            self._on_drop("slow_viewer", dropped + 1)
            self.waiting_for_idr = True
            self._request_keyframe("slow_peer")
            return
        self._queue.put_nowait(frame)

    def _skip(self, reason: str) -> None:
        # A skipped H.264 frame breaks the references of the next ones: resume at an IDR.
        self.session.dropped[reason] += 1
        self._on_drop(reason, 1)
        self.waiting_for_idr = True
        self._request_keyframe(reason)

    async def recv(self) -> PackedFrame:  # type: ignore[override]
        """The next access unit, already packetized, for the sender to send."""
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._queue.get()
        if frame is None:
            raise MediaStreamError
        self.sent_frames += 1
        self.session.frames_sent += 1
        self.session.bytes_sent += frame.size
        return frame

    def stop(self) -> None:
        """End the track; aiortc's sender stops with it."""
        if self.readyState == "live":
            if self._queue.full():
                self._queue.get_nowait()
            self._queue.put_nowait(None)
        super().stop()
