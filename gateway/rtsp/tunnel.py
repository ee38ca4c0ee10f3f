"""RTSP over HTTP (the QuickTime/Axis tunnel) on the HTTP port.

The client opens a GET and a POST carrying the same `x-sessioncookie`. RTSP
requests arrive base64-encoded in the POST body, which never ends; the
responses and the interleaved media go out, unencoded, on the GET response,
which never ends either. Firewalls that pass only HTTP pass this.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
from typing import TYPE_CHECKING

from aiohttp import web

from ..http.mjpeg import RawStreamResponse
from ..net.buffers import set_send_buffer
from .server import RtspConnection

if TYPE_CHECKING:
    from .server import RtspServer

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-rtsp-tunnelled"
COOKIE_RE = re.compile(r"^[A-Za-z0-9+/=_.:-]{1,128}$")
MAX_TUNNELS = 1024


class Base64Stream:
    """Incremental base64 decoding of a body that arrives in arbitrary pieces.

    Clients encode each RTSP request on its own, so a padded quantum ("...=")
    may end one request with the next one right behind it in the same read:
    the text is decoded up to each padded quantum separately, which gives the
    same bytes (or the same refusal) however the body is split.
    """

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        """Decode what can be decoded; keep the last incomplete quantum."""
        chunk = self._pending + re.sub(rb"\s+", b"", data)
        usable = len(chunk) - len(chunk) % 4
        self._pending = chunk[usable:]
        out = bytearray()
        start = 0
        try:
            while start < usable:
                pad = chunk.find(b"=", start, usable)
                end = usable if pad < 0 else pad - pad % 4 + 4  # the padded quantum's end
                out += base64.b64decode(chunk[start:end], validate=True)
                start = end
        except binascii.Error as e:
            raise ValueError(f"bad base64 in the tunnel: {e}") from None
        return bytes(out)


class Tunnel:
    """One tunnelled RTSP connection: its GET leg and whichever POST feeds it."""

    def __init__(self, server: RtspServer, cookie: str, request: web.Request) -> None:
        transport = request.transport
        assert transport is not None
        peer = transport.get_extra_info("peername") or ("?", 0)
        local = transport.get_extra_info("sockname") or ("0.0.0.0", 0)
        self.cookie = cookie
        self.conn = RtspConnection(server, transport, peer[:2], local[:2], "rtsp_http")
        self.conn.secure = transport.get_extra_info("sslcontext") is not None  # HTTPS tunnel
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.conn.on_close.append(self._closed)
        server.connections.add(self.conn)

    def _closed(self) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class TunnelRegistry:
    """Tunnels by cookie, so a POST finds its GET."""

    def __init__(self, server: RtspServer) -> None:
        self.server = server
        self.tunnels: dict[str, Tunnel] = {}

    def _cookie(self, request: web.Request) -> str:
        cookie = request.headers.get("x-sessioncookie", "")
        if not COOKIE_RE.match(cookie):
            raise web.HTTPBadRequest(text="bad x-sessioncookie\n")
        return cookie

    async def get(self, request: web.Request) -> web.StreamResponse:
        """The GET leg: answer, then carry RTSP responses and media until closed."""
        cookie = self._cookie(request)
        if cookie in self.tunnels:
            raise web.HTTPConflict(text="x-sessioncookie already in use\n")
        if len(self.tunnels) >= MAX_TUNNELS:
            raise web.HTTPServiceUnavailable(text="too many tunnels\n")
        resp = RawStreamResponse(
            headers={
                "Content-Type": CONTENT_TYPE,
                "Cache-Control": "no-store",
                "Pragma": "no-cache",
            }
        )
        resp.force_close()
        self.server.gateway.dscp.mark_transport(request.transport, "video")  # header included
        set_send_buffer(request.transport, self.server.config.egress.socket_buffer)
        await resp.prepare(request)
        await resp.write(b"")
        tunnel = Tunnel(self.server, cookie, request)
        self.tunnels[cookie] = tunnel
        try:
            await tunnel.closed
        finally:
            self.tunnels.pop(cookie, None)
            tunnel.conn.connection_lost()
        return resp

    async def post(self, request: web.Request) -> web.StreamResponse:
        """The POST leg: base64 RTSP requests for the tunnel with the same cookie."""
        cookie = self._cookie(request)
        tunnel = self.tunnels.get(cookie)
        if tunnel is None:
            raise web.HTTPNotFound(text="no GET leg with this x-sessioncookie\n")
        decoder = Base64Stream()
        while not tunnel.conn.closed:
            chunk = await request.content.readany()
            if not chunk:
                break
            try:
                data = decoder.feed(chunk)
            except ValueError as e:
                log.info("RTSP tunnel %s: %s", cookie[:16], e)
                tunnel.conn.sink.close()
                tunnel.conn.connection_lost()
                break
            if data:
                tunnel.conn.data_received(data)
        # The client closed its POST; it may open another one for the same GET.
        resp = web.Response(status=200)
        resp.force_close()
        return resp
