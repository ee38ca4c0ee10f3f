"""Wiring and lifecycle: channels, their sources, and the listeners in front of them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable

from aiohttp import web

from . import __version__
from .config import Config
from .http.metrics import registry
from .http.mjpeg import MjpegFanout
from .http.server import build_app
from .log import MalformedHttp
from .media.channel import Channel
from .media.session import Sessions
from .net.dscp import DscpMarker
from .net.gatekeeper import Gatekeeper, GuardedSite
from .rtsp.server import RtspServer
from .rtsp.tunnel import TunnelRegistry
from .security.auth import Authenticator
from .security.tls import redirect_app, server_context
from .sources.base import Source
from .sources.emulated import EmulatedSource
from .sources.mjpeg_http import MjpegHttpSource
from .sources.rtsp_pull import RtspPullSource
from .sources.snapshot import SnapshotSource
from .transcode.feed import H264Feed
from .webrtc.whep import WebRtcServer

log = logging.getLogger(__name__)

MAX_REDUCED_RATES = 3  # reduced-rate H.264 encoders per channel

SOURCE_KINDS: dict[str, type[Source]] = {
    "mjpeg": MjpegHttpSource,
    "snapshot": SnapshotSource,
    "emulator": EmulatedSource,
    "rtsp": RtspPullSource,
}


class Gateway:
    """The running gateway: one Channel and one Source per configured input."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.started = time.time()
        self.sessions = Sessions()
        self.dscp = DscpMarker(config.qos.codepoints())
        self.auth = Authenticator(config.auth)
        self.malformed_http = MalformedHttp()
        self.gatekeeper = Gatekeeper(config.server, config.ip_filter)
        self.tls_context = server_context(config.tls) if config.tls.enabled else None
        self.profiles = {p.name: p for p in config.profiles}
        self.channels: dict[str, Channel] = {}
        self.sources: dict[str, Source] = {}
        self.mjpeg: dict[str, MjpegFanout] = {}
        self.h264: dict[str, H264Feed] = {}
        self.h264_rates: dict[tuple[str, float], H264Feed] = {}  # reduced-rate feeds
        for cfg in config.channels:
            channel = Channel(cfg)
            self.channels[cfg.name] = channel
            self.sources[cfg.name] = SOURCE_KINDS[cfg.kind](channel)
            self.mjpeg[cfg.name] = MjpegFanout(channel, config.egress)
            self.h264[cfg.name] = H264Feed(channel, cfg.transcode)
        self._by_index = {c.index: c for c in self.channels.values()}
        self.rtsp = RtspServer(self)
        self.tunnels = TunnelRegistry(self.rtsp)
        self.webrtc = WebRtcServer(self)
        self.metrics = registry(self)
        self._runner: web.AppRunner | None = None
        self._redirect: web.AppRunner | None = None  # the plain HTTP port under tls.redirect_http
        self.http_port = 0
        self.https_port = 0

    @property
    def rtsp_port(self) -> int:
        """The port the RTSP server listens on (after start)."""
        return self.rtsp.port

    @property
    def rtsps_port(self) -> int:
        """The port the RTSPS server listens on (after start; 0 without TLS)."""
        return self.rtsp.tls_port

    def h264_feed(self, name: str, fps: float = 0.0) -> tuple[H264Feed, float]:
        """The H.264 feed for a viewer of channel `name` limited to `fps` (0: none).

        Below the source rate a viewer gets an encoder running at its rate, one
        per distinct rate and channel, up to MAX_REDUCED_RATES; past that, the
        nearest slower one. Returns the feed and the frame-rate limit the viewer
        still needs on top of it (0 when the feed's rate is the limit).
        """
        native = self.h264[name]
        channel = self.channels[name]
        source = channel.nominal_fps()
        if not fps or (source and fps >= 0.95 * source) or native.native:
            # A passed-through stream has no reduced-rate encoder: dropping frames of it
            # would break the references of the ones after, so it is served whole.
            return native, 0.0
        key = (name, round(fps, 2))
        feed = self.h264_rates.get(key)
        if feed is None:
            mine = [f for (n, _), f in self.h264_rates.items() if n == name]
            if len(mine) < MAX_REDUCED_RATES:
                feed = H264Feed(channel, native.settings, fps)
                self.h264_rates[key] = feed
            else:
                slower = [f for f in mine if f.fps <= fps]
                by_rate = sorted(slower or mine, key=lambda f: f.fps)
                feed = by_rate[-1] if slower else by_rate[0]
        # A feed faster than asked (every slot taken by slower rates) still needs the limit.
        return feed, (fps if feed.fps > 1.05 * fps else 0.0)

    def channel_by_index(self, index: int) -> Channel:
        """The channel at 1-based config position `index` (the VAPIX camera number)."""
        return self._by_index[index]

    async def start(self) -> None:
        """Start the sources and the listeners."""
        self.auth.warn_if_open()
        logging.getLogger("aiohttp.server").addFilter(self.malformed_http)
        for source in self.sources.values():
            source.start()
        server = self.config.server
        self._runner = web.AppRunner(
            build_app(self),
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=server.shutdown_grace,
            keepalive_timeout=75.0,  # an idle keep-alive connection is not kept for an hour
        )
        await self._runner.setup()
        tls = self.config.tls
        if self.tls_context is not None:
            https = GuardedSite(
                self._runner,
                self.gatekeeper,
                "https",
                server.host,
                tls.https_port,
                tls=self.tls_context,
            )
            await https.start()
            for sock in https.sockets:
                self.dscp.mark(sock, "management")
            self.https_port = https.port
        plain = self._runner
        if tls.redirect_http:
            self._redirect = web.AppRunner(
                redirect_app(lambda: self.https_port), access_log=None, shutdown_timeout=0.5
            )
            await self._redirect.setup()
            plain = self._redirect
        site = GuardedSite(plain, self.gatekeeper, "http", server.host, server.http_port)
        await site.start()
        # Accepted connections inherit the listener's TOS: the handshake is management too.
        for sock in site.sockets:
            self.dscp.mark(sock, "management")
        self.http_port = site.port
        await self.rtsp.start()
        log.info(
            "HTTP on %s:%d%s, %d channels",
            server.host,
            self.http_port,
            " (redirects to HTTPS)" if tls.redirect_http else "",
            len(self.channels),
        )
        if self.tls_context is not None:
            log.info(
                "HTTPS on %s:%d, RTSPS on %s:%d",
                server.host,
                self.https_port,
                server.host,
                self.rtsps_port,
            )
        gk = self.gatekeeper
        log.info(
            "connections: at most %d, %d per address, %g s for the first request head; "
            "IP filter: %d allowed, %d denied ranges",
            gk.max_connections,
            gk.max_per_address,
            gk.header_timeout,
            len(gk.filter.allow),
            len(gk.filter.deny),
        )

    async def stop(self) -> None:
        """Finish every response, close upstream connections, stop listening."""
        logging.getLogger("aiohttp.server").removeFilter(self.malformed_http)
        await self.rtsp.stop()
        await self.webrtc.stop()
        for feed in (*self.h264.values(), *self.h264_rates.values()):
            feed.stop()
        for fanout in self.mjpeg.values():
            fanout.close_all()
        await asyncio.gather(*(s.stop() for s in self.sources.values()))
        if self._redirect is not None:
            await self._redirect.cleanup()
            self._redirect = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.gatekeeper.close()

    def vapix_params(self) -> dict[str, str]:
        """The parameter tree the gateway reports to VAPIX clients."""
        p = {
            "root.Brand.Brand": "coaxgate",
            "root.Brand.ProdFullName": "coaxgate streaming gateway",
            "root.Brand.ProdNbr": "coaxgate",
            "root.Brand.ProdType": "Video Server",
            "root.Properties.API.HTTP.Version": "3",
            "root.Properties.Firmware.Version": __version__,
            "root.Properties.Image.Format": "jpeg,mjpeg",
            "root.ImageSource.NbrOfSources": str(len(self.channels)),
        }
        for channel in self.channels.values():
            prefix = f"root.Image.I{channel.index - 1}"
            p[f"{prefix}.Name"] = channel.name
            if channel.width:
                p[f"{prefix}.Appearance.Resolution"] = f"{channel.width}x{channel.height}"
        return p


async def until_signalled() -> None:
    """Wait for SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)


async def serve_until_signalled(
    gateway: Gateway, on_ready: Callable[[], None] | None = None
) -> None:
    """Run the gateway until SIGINT or SIGTERM, then shut it down cleanly."""
    try:
        await gateway.start()
        if on_ready is not None:
            on_ready()
        await until_signalled()
        log.info("shutting down")
    finally:
        await gateway.stop()
