"""MJPEG server push: one multipart part per frame, written to every viewer.

The part is built once per frame for the whole track; each viewer costs one
`transport.write` of that shared bytes object. A viewer whose transport
buffer is above the high-water mark is skipped for that frame (it loses a
whole frame, never part of one) and is cut off if it stays there for the
stall timeout, so a slow viewer never holds more than about one high-water
mark of memory and never delays anyone else.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from .._ext.egress import admit
from ..config import EgressConfig
from ..media.channel import Channel
from ..media.limits import ViewerLimits
from ..media.rate import FpsLimiter, StallWatch
from ..media.session import Session, Sessions
from ..media.unit import Unit
from ..net.buffers import set_send_buffer
from ..net.dscp import DscpMarker

BOUNDARY = "myboundary"
CONTENT_TYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
CLOSING = f"--{BOUNDARY}--\r\n".encode()
FRESH = 2.0  # seconds: a newcomer gets the last frame at once if it is this recent


def mjpeg_part(unit: Unit) -> bytes:
    """One multipart part carrying the frame, as Axis devices write it."""
    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(unit.data)}\r\n\r\n"
    return b"".join((head.encode(), unit.data, b"\r\n"))


class RawStreamResponse(web.StreamResponse):
    """A streamed response without chunked coding: the body goes straight to the transport.

    Server push has no length and ends when the connection does, which is how
    Axis devices send it and what every MJPEG client expects.
    """

    _length_check = False


class MjpegViewer:
    """One server-push viewer."""

    __slots__ = ("bucket", "done", "limiter", "session", "stall", "transport")

    def __init__(
        self, session: Session, transport: asyncio.Transport, limits: ViewerLimits
    ) -> None:
        self.session = session
        self.transport = transport
        self.limiter = FpsLimiter(limits.fps) if limits.fps else None
        self.bucket = limits.bucket()
        self.stall: StallWatch | None = None  # set by the fanout, which knows the timeout
        self.done: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def end(self, why: str, *, abort: bool = False) -> None:
        """Finish the viewer's response; `abort` drops what is still buffered."""
        if abort:
            self.transport.abort()
        if not self.done.done():
            self.done.set_result(why)


class MjpegFanout:
    """Every MJPEG viewer of one channel, fed from its JPEG track."""

    def __init__(self, channel: Channel, egress: EgressConfig, protocol: str = "mjpeg") -> None:
        self.channel = channel
        self.protocol = protocol
        self.high_water = egress.high_water
        self.stall_timeout = egress.stall_timeout
        self.socket_buffer = egress.socket_buffer
        self.viewers: list[MjpegViewer] = []
        self._last: tuple[Unit, bytes] | None = None
        self._turn = 0

    def add(self, viewer: MjpegViewer) -> None:
        """Start sending to a viewer, beginning with the latest frame if it is fresh."""
        if not self.viewers:
            self.channel.jpeg.add_reader(self)
        viewer.stall = StallWatch(self.stall_timeout)
        self.viewers.append(viewer)
        last = self.channel.jpeg.last
        if last is not None and time.time() - last.wallclock < FRESH:
            part = self._part(last)
            bucket = self.channel.bucket
            if (viewer.bucket is not None or bucket is not None) and not admit(
                8 * len(part), viewer.bucket, bucket
            ):
                return  # the next frame the limits allow comes soon enough
            if viewer.limiter is not None:
                viewer.limiter.admit(last.pts)
            viewer.transport.write(part)
            self._sent(viewer, len(part))
            self.channel.count_egress(self.protocol, 1, len(part))

    def remove(self, viewer: MjpegViewer) -> None:
        """Stop sending to a viewer."""
        if viewer in self.viewers:
            self.viewers.remove(viewer)
        if not self.viewers:
            self.channel.jpeg.remove_reader(self)
            self._last = None

    def _part(self, unit: Unit) -> bytes:
        last = self._last
        if last is not None and last[0] is unit:
            return last[1]
        part = mjpeg_part(unit)
        self._last = (unit, part)
        return part

    @staticmethod
    def _sent(viewer: MjpegViewer, size: int) -> None:
        viewer.session.bytes_sent += size
        viewer.session.frames_sent += 1

    def on_unit(self, unit: Unit) -> None:
        """Write this frame to every viewer that is due for it and keeping up."""
        part: bytes | None = None
        now = time.monotonic()
        sent = 0
        channel = self.channel
        viewers = self.viewers
        if channel.bucket is not None and viewers:
            # Under a channel-wide cap, round robin by service: start after the viewer
            # served last. (Rotating by frame count aliases with the cap's period: one
            # frame in three allowed, three viewers, and the same one wins every time.)
            turn = self._turn % len(viewers)
            viewers = viewers[turn:] + viewers[:turn]
        else:
            turn = 0
        count = len(viewers)
        for position, viewer in enumerate(tuple(viewers)):
            transport = viewer.transport
            if transport.is_closing():
                viewer.end("closed")
                continue
            if viewer.limiter is not None and not viewer.limiter.admit(unit.pts):
                viewer.session.dropped["fps_limit"] += 1
                channel.count_drop(self.protocol, "fps_limit")
                continue
            if transport.get_write_buffer_size() > self.high_water:
                viewer.session.dropped["slow_viewer"] += 1
                channel.count_drop(self.protocol, "slow_viewer")
                if viewer.stall is not None and viewer.stall.update(now, False):
                    viewer.end("stalled", abort=True)
                continue
            if viewer.stall is not None and viewer.stall.update(now, True):
                viewer.end("stalled", abort=True)
                continue
            if part is None:
                part = self._part(unit)
            if (viewer.bucket is not None or channel.bucket is not None) and not admit(
                8 * len(part), viewer.bucket, channel.bucket, now
            ):
                viewer.session.dropped["rate_limit"] += 1
                channel.count_drop(self.protocol, "rate_limit")
                continue
            transport.write(part)
            self._sent(viewer, len(part))
            sent += 1
            if channel.bucket is not None:
                self._turn = (turn + position + 1) % count
        if sent:
            assert part is not None
            channel.count_egress(self.protocol, sent, sent * len(part))

    def close_all(self) -> None:
        """End every response cleanly with the closing delimiter (shutdown)."""
        for viewer in tuple(self.viewers):
            if not viewer.transport.is_closing():
                viewer.transport.write(CLOSING)
            viewer.end("shutdown")


async def serve(
    request: web.Request,
    fanout: MjpegFanout,
    sessions: Sessions,
    limits: ViewerLimits,
    dscp: DscpMarker | None = None,
) -> web.StreamResponse:
    """Run one MJPEG viewer until it leaves, stalls, or the gateway stops."""
    headers = {
        "Content-Type": CONTENT_TYPE,
        "Cache-Control": "no-cache, no-store, must-revalidate",
        "Pragma": "no-cache",
    }
    if request.method == "HEAD":
        return web.Response(headers=headers)
    transport = request.transport
    if transport is None or transport.is_closing():
        raise web.HTTPBadRequest(text="connection closed\n")
    resp = RawStreamResponse(headers=headers)
    resp.force_close()
    if dscp is not None:
        dscp.mark_transport(transport, "video")  # the response header is video too
    set_send_buffer(transport, fanout.socket_buffer)
    await resp.prepare(request)
    await resp.write(b"")  # the header goes out now; parts go straight to the transport
    peer = _peer(request)
    session = Session(fanout.protocol, peer, fanout.channel.name, limits.fps_or_none)
    session.limits = limits
    sessions.add(session)
    # No isinstance check: uvloop's transports are not asyncio.Transport subclasses.
    viewer = MjpegViewer(session, transport, limits)
    fanout.add(viewer)
    try:
        await viewer.done
    finally:
        fanout.remove(viewer)
        sessions.remove(session)
    return resp


def _peer(request: web.Request) -> str:
    peername = request.transport.get_extra_info("peername") if request.transport else None
    if not peername:
        return "?"
    host, port = peername[0], peername[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
