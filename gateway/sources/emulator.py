"""A built-in Axis 2400 video server: four analog inputs served over VAPIX, for real.

A real HTTP server (aiohttp) with the 2400's CGI paths: `mjpg/video.cgi`
(multipart/x-mixed-replace, `--myboundary` parts), `jpg/image.cgi` and
`param.cgi`. Frames come from pre-rendered loops (`frames.FrameLoop`); each
(camera, size, compression) is composed once per tick and shared by every
client watching it. Switches reproduce what real devices do wrong.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Handler

from ..media.rate import FpsLimiter
from ..media.unit import CLOCK_RATE
from ..security.digest import AuthError, DigestUser, DigestVerifier, ha1
from ..vapix import VapixError, camera_param, fps_param, param_list, resolution_param
from .frames import FrameLoop

log = logging.getLogger(__name__)

BOUNDARY = "myboundary"
SUPPORTED = (
    (720, 576),
    (704, 576),
    (704, 288),
    (352, 288),
    (176, 144),
    (720, 480),
    (704, 480),
    (704, 240),
    (352, 240),
    (176, 120),
)
MAX_LOOPS = 16  # rendered loops kept; each D1 loop is a few MB
CLIENT_BACKLOG = 1 << 20  # a client this far behind loses frames, as on the device


@dataclass(frozen=True)
class EmulatorOptions:
    """What the emulated device looks like and which faults it has."""

    channels: int = 4
    fps: float = 25.0
    resolution: tuple[int, int] = (704, 576)
    compression: int = 30
    user: str | None = None
    password: str | None = None
    auth: str = "basic"  # "basic" (as the 2400 has) or "digest"
    labels: tuple[str, ...] = ()
    no_content_length: bool = False
    restart_interval: int = 0
    video_loss: frozenset[int] = field(default_factory=frozenset)
    stall: frozenset[int] = field(default_factory=frozenset)
    stall_after: int = 25
    corrupt_every: int = 0
    loop_seconds: float = 2.0
    subsampling: str = "422"

    @property
    def standard(self) -> str:
        """The video standard, "pal" or "ntsc", from the default resolution."""
        return "ntsc" if self.resolution[1] in (480, 240, 120) else "pal"

    def label(self, camera: int) -> str:
        """The name burned into the picture of input `camera`."""
        if camera <= len(self.labels):
            return self.labels[camera - 1]
        return f"CAM {camera}"


def compression_to_quality(compression: int) -> int:
    """VAPIX compression 0..100 (0 = best) to a JPEG quality 1..100."""
    return max(5, min(100, 100 - compression))


class Feed:
    """One camera at one size and compression: ticks at the device rate while watched."""

    def __init__(self, emulator: Emulator, key: tuple[int, int, int, int], frames: FrameLoop):
        self.emulator = emulator
        self.key = key
        self.frames = frames
        self.clients: set[Client] = set()
        self.index = 0
        self.task: asyncio.Task[None] | None = None

    def subscribe(self, client: Client) -> None:
        """Add a client; starts the ticker if it was idle."""
        self.clients.add(client)
        if self.task is None:
            self.task = asyncio.create_task(self._tick(), name=f"emulator-feed-{self.key}")

    def unsubscribe(self, client: Client) -> None:
        """Remove a client; the ticker stops when the last one leaves."""
        self.clients.discard(client)
        if not self.clients and self.task is not None:
            self.task.cancel()
            self.task = None

    async def _tick(self) -> None:
        period = 1.0 / self.frames.fps
        start = time.monotonic()
        n = 0
        opts = self.emulator.options
        while True:
            now = time.time()
            data = self.frames.frame(self.index, now)
            self.index += 1
            n += 1
            if opts.corrupt_every and n % opts.corrupt_every == 0:
                # Alternate the two faults seen in the field: a part cut short, and junk.
                data = data[: len(data) // 2] if (n // opts.corrupt_every) % 2 else os.urandom(700)
            chunk = self.emulator.part(data)
            pts = int(n * period * CLOCK_RATE)
            for client in tuple(self.clients):
                try:
                    client.offer(pts, chunk)
                except Exception:  # one broken client must not stop the feed
                    log.exception("emulator: dropping a client after an error")
                    client._finish()
            delay = start + n * period - time.monotonic()
            if delay < -1.0:  # fell far behind (suspended host): restart the grid
                start, n = time.monotonic(), 0
            await asyncio.sleep(max(0.0, delay))


class Client:
    """One HTTP client of video.cgi."""

    def __init__(
        self,
        transport: asyncio.Transport,
        fps: float | None,
        frames_left: int | None,
        stall_after: int | None,
    ) -> None:
        self.transport = transport
        self.limiter = FpsLimiter(fps) if fps else None
        self.frames_left = frames_left
        self.stall_after = stall_after
        self.sent = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def offer(self, pts: int, chunk: bytes) -> None:
        """Send a frame unless this client is rate limited, stalled or behind."""
        t = self.transport
        if t.is_closing():
            self._finish()
            return
        if self.limiter is not None and not self.limiter.admit(pts):
            return
        if self.stall_after is not None and self.sent >= self.stall_after:
            return  # the stall quirk: keep the connection, send nothing
        if t.get_write_buffer_size() > CLIENT_BACKLOG:
            return
        t.write(chunk)
        self.sent += 1
        if self.frames_left is not None:
            self.frames_left -= 1
            if self.frames_left <= 0:
                self._finish()

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class _RawStream(web.StreamResponse):
    """A response written straight to the transport: no chunked coding, closed at the end."""

    _length_check = False


class Emulator:
    """The emulated Axis 2400: an aiohttp application and the feeds behind it."""

    def __init__(self, options: EmulatorOptions) -> None:
        self.options = options
        self.loops: OrderedDict[tuple[int, int, int, int], asyncio.Future[FrameLoop]] = (
            OrderedDict()
        )
        self.feeds: dict[tuple[int, int, int, int], Feed] = {}
        self.app = web.Application(middlewares=[self._auth_middleware])
        self.app.add_routes(
            [
                web.get("/axis-cgi/mjpg/video.cgi", self.video),
                web.get("/axis-cgi/jpg/image.cgi", self.image),
                web.get("/axis-cgi/param.cgi", self.params),
            ]
        )
        self._runner: web.AppRunner | None = None
        self._digest: DigestVerifier | None = None
        if options.user is not None and options.auth == "digest":
            realm = "AXIS_00408C000001"
            stored = DigestUser(
                options.user,
                {
                    a: ha1(a, options.user, realm, options.password or "")
                    for a in ("SHA-256", "MD5")
                },
            )
            self._digest = DigestVerifier(
                realm, lambda name: stored if name == options.user else None
            )
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen; returns the port (useful with port 0)."""
        self._runner = web.AppRunner(self.app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info(
            "Axis 2400 emulator on http://%s:%d/ (%d inputs)",
            host,
            self.port,
            self.options.channels,
        )
        return self.port

    async def stop(self) -> None:
        """Stop listening and end every stream."""
        for feed in list(self.feeds.values()):
            for client in tuple(feed.clients):
                client._finish()
            if feed.task is not None:
                feed.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await feed.task
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def part(self, jpeg: bytes) -> bytes:
        """One multipart part as the 2400 writes it."""
        if self.options.no_content_length:
            head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n\r\n"
        else:
            head = (
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            )
        return head.encode() + jpeg + b"\r\n"

    @web.middleware
    async def _auth_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        opts = self.options
        if opts.user is None:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        if self._digest is not None:
            try:
                self._digest.verify(request.method, header, request.path_qs)
                return await handler(request)
            except AuthError as e:
                challenge = self._digest.challenges(stale=e.stale)
            resp = web.Response(status=401, text="Unauthorized\n")
            for value in challenge:
                resp.headers.add("WWW-Authenticate", value)
            return resp
        expected = base64.b64encode(f"{opts.user}:{opts.password or ''}".encode()).decode()
        if hmac.compare_digest(header.encode(), f"Basic {expected}".encode()):
            return await handler(request)
        return web.Response(
            status=401,
            text="Unauthorized\n",
            headers={"WWW-Authenticate": 'Basic realm="AXIS_00408C000001"'},
        )

    async def _loop(self, camera: int, width: int, height: int, compression: int) -> FrameLoop:
        key = (camera, width, height, compression)
        fut = self.loops.get(key)
        if fut is None:
            opts = self.options
            fut = asyncio.get_running_loop().create_future()
            self.loops[key] = fut
            try:
                frames = await asyncio.to_thread(
                    lambda: FrameLoop(
                        camera=camera,
                        label=opts.label(camera),
                        width=width,
                        height=height,
                        fps=opts.fps,
                        quality=compression_to_quality(compression),
                        restart_interval=opts.restart_interval,
                        video_loss=camera in opts.video_loss,
                        loop_seconds=opts.loop_seconds,
                        subsampling=opts.subsampling,
                    )
                )
                fut.set_result(frames)
            except BaseException as e:
                del self.loops[key]
                fut.set_exception(e)
                fut.exception()  # retrieved: the waiter below re-raises it
                raise
            self._evict()
        else:
            self.loops.move_to_end(key)
        return await asyncio.shield(fut)

    def _evict(self) -> None:
        """Drop the least recently used loops that nobody is watching."""
        for old in list(self.loops):
            if len(self.loops) <= MAX_LOOPS:
                break
            feed = self.feeds.get(old)
            if feed is None or not feed.clients:
                del self.loops[old]
                self.feeds.pop(old, None)

    def _stream_params(self, request: web.Request) -> tuple[int, int, int, int]:
        opts = self.options
        q = request.query
        camera = camera_param(q.get("camera"), opts.channels)
        width, height = opts.resolution
        if q.get("resolution"):
            width, height = resolution_param(q["resolution"], opts.standard)
            if (width, height) not in SUPPORTED:
                raise VapixError(f"resolution {width}x{height} not supported")
        compression = opts.compression
        if q.get("compression"):
            text = q["compression"]
            if not text.isdigit() or not 0 <= int(text) <= 100:
                raise VapixError(f"compression must be 0..100, got {text!r}")
            compression = int(text)
        return camera, width, height, compression

    async def video(self, request: web.Request) -> web.StreamResponse:
        """GET /axis-cgi/mjpg/video.cgi: multipart server push."""
        try:
            key = self._stream_params(request)
            fps = fps_param(request.query.get("fps"), self.options.fps)
            frames_left = _count_param(request.query.get("nbrofframes"))
        except VapixError as e:
            return web.Response(status=400, text=f"Error: {e}\n")
        frames = await self._loop(*key)
        transport = request.transport
        if transport is None:
            return web.Response(status=499)
        resp = _RawStream(
            headers={
                "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                "Cache-Control": "no-cache",
                "Pragma": "no-cache",
            }
        )
        resp.force_close()
        await resp.prepare(request)
        await resp.write(b"")  # flush the header now; parts go straight to the transport
        camera = key[0]
        stall_after = self.options.stall_after if camera in self.options.stall else None
        # No isinstance check: uvloop's transports are not asyncio.Transport subclasses.
        client = Client(transport, fps, frames_left, stall_after)
        feed = self.feeds.get(key)
        if feed is None:
            feed = self.feeds[key] = Feed(self, key, frames)
        feed.subscribe(client)
        try:
            await client.done
        finally:
            feed.unsubscribe(client)
        return resp

    async def image(self, request: web.Request) -> web.Response:
        """GET /axis-cgi/jpg/image.cgi: one JPEG."""
        try:
            key = self._stream_params(request)
        except VapixError as e:
            return web.Response(status=400, text=f"Error: {e}\n")
        frames = await self._loop(*key)
        now = time.time()
        data = frames.frame(int(now * frames.fps), now)
        return web.Response(
            body=data, content_type="image/jpeg", headers={"Cache-Control": "no-cache"}
        )

    async def params(self, request: web.Request) -> web.Response:
        """GET /axis-cgi/param.cgi?action=list[&group=...]."""
        action = request.query.get("action", "list")
        if action != "list":
            return web.Response(status=400, text=f"# Error: action {action} not supported\n")
        return web.Response(text=param_list(self.device_params(), request.query.get("group")))

    def device_params(self) -> dict[str, str]:
        """The parameter tree this device reports."""
        opts = self.options
        pal = opts.standard == "pal"
        sizes = [f"{w}x{h}" for w, h in SUPPORTED if (h in (576, 288, 144)) == pal]
        p = {
            "root.Brand.Brand": "AXIS",
            "root.Brand.ProdFullName": "AXIS 2400 Video Server",
            "root.Brand.ProdNbr": "2400",
            "root.Brand.ProdShortName": "AXIS 2400",
            "root.Brand.ProdType": "Video Server",
            "root.Properties.API.HTTP.Version": "2",
            "root.Properties.Firmware.Version": "2.43",
            "root.Properties.Image.Format": "jpeg,mjpeg",
            "root.Properties.Image.Resolution": ",".join(sizes),
            "root.Properties.Image.Rotation": "0",
            "root.ImageSource.NbrOfSources": str(opts.channels),
        }
        w, h = opts.resolution
        for i in range(opts.channels):
            prefix = f"root.Image.I{i}"
            p[f"{prefix}.Name"] = opts.label(i + 1)
            p[f"{prefix}.Appearance.Resolution"] = f"{w}x{h}"
            p[f"{prefix}.Appearance.Compression"] = str(opts.compression)
            p[f"{prefix}.Stream.FPS"] = f"{opts.fps:g}"
            p[f"{prefix}.Source"] = str(i)
        return p


def _count_param(value: str | None) -> int | None:
    if value is None or value == "" or value == "0":
        return None
    if not value.isdigit():
        raise VapixError(f"nbrofframes must be a number, got {value!r}")
    return int(value)
