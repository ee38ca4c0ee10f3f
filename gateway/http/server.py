"""The gateway's HTTP application: media routes, VAPIX-compatible routes, API, metrics."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import MultiDict

from .. import vapix
from ..media.channel import Channel
from ..media.limits import LimitError, ViewerLimits, viewer_limits
from ..security import auth
from ..webrtc import whep
from . import api, index, metrics
from .context import GATEWAY, gateway_of
from .mjpeg import serve

if TYPE_CHECKING:
    from ..app import Gateway


def build_app(gateway: Gateway) -> web.Application:
    """The aiohttp application serving every HTTP route of the gateway."""
    app = web.Application(middlewares=[management_dscp, rtsp_tunnel, authenticate])
    app[GATEWAY] = gateway
    app.add_routes(
        [
            web.get("/", index.page),
            web.get("/channels/{name}.sdp", channel_sdp),
            web.get("/channels/{name}/mjpeg", channel_mjpeg),
            web.get("/channels/{name}/snapshot.jpg", channel_snapshot),
            web.get("/axis-cgi/mjpg/video.cgi", vapix_video),
            web.get("/axis-cgi/jpg/image.cgi", vapix_image),
            web.get("/axis-cgi/param.cgi", vapix_params),
            web.get("/api/v1/channels", api.channels),
            web.get("/api/v1/sessions", api.sessions),
            web.get("/api/v1/config", api.config),
            web.get("/healthz", api.healthz),
            web.get("/metrics", metrics.handler),
            web.post("/channels/{name}/whep", whep_post),
            web.options("/channels/{name}/whep", whep.options),
            web.patch("/channels/{name}/whep", whep.patch),
            web.delete("/channels/{name}/whep/{session}", whep_delete),
            web.options("/channels/{name}/whep/{session}", whep.options),
            web.patch("/channels/{name}/whep/{session}", whep.patch),
        ]
    )
    app.router.add_static("/static", index.STATIC, append_version=False)
    return app


async def whep_post(request: web.Request) -> web.Response:
    """POST /channels/{name}/whep: a WebRTC viewer's offer."""
    return await whep.post(gateway_of(request), request)


async def whep_delete(request: web.Request) -> web.Response:
    """DELETE /channels/{name}/whep/{session}: end a WebRTC viewer."""
    return await whep.delete(gateway_of(request), request)


@web.middleware
async def management_dscp(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HTTP is management traffic (API, metrics, snapshots, page) unless it streams video."""
    gateway_of(request).dscp.mark_transport(request.transport, "management")
    return await handler(request)


@web.middleware
async def rtsp_tunnel(request: web.Request, handler: Handler) -> web.StreamResponse:
    """RTSP over HTTP: both legs of a tunnel carry x-sessioncookie, on any path."""
    if "x-sessioncookie" in request.headers:
        tunnels = gateway_of(request).tunnels
        if request.method == "GET":
            return await tunnels.get(request)
        if request.method == "POST":
            return await tunnels.post(request)
    return await handler(request)


# What each route needs; anything else (the page, static files, VAPIX) needs VIEW.
ACCESS: dict[object, str] = {
    api.healthz: auth.PUBLIC,
    api.sessions: auth.OPERATE,
    api.config: auth.ADMIN,
    metrics.handler: auth.METRICS,
    whep.options: auth.PUBLIC,  # CORS preflights carry no credentials
    whep.patch: auth.PUBLIC,
}
IDENTITY = web.RequestKey("identity", auth.Identity)


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Users and roles on every route (the RTSP tunnel authenticates inside, per RTSP request)."""
    gw = gateway_of(request)
    need = ACCESS.get(request.match_info.handler, auth.VIEW)
    outcome = gw.auth.check(
        protocol="http",
        method=request.method,
        uri=request.path_qs,
        authorization=request.headers.get("Authorization"),
        peer=request.remote or "?",
        secure=request.secure,
        need=need,
        channel=_channel_of(request),
        loopback=_loopback(request.remote),
    )
    if isinstance(outcome, auth.BasicPending):
        ok = await asyncio.to_thread(gw.auth.check_basic, outcome)
        outcome = gw.auth.settle(outcome, ok)
    if isinstance(outcome, auth.Refusal):
        if outcome.delay:
            await asyncio.sleep(outcome.delay)
        headers = [("WWW-Authenticate", c) for c in outcome.challenges]
        text = f"{outcome.reason}\n"
        if outcome.status == 401:
            raise web.HTTPUnauthorized(text=text, headers=MultiDict(headers))
        if outcome.status == 429:
            raise web.HTTPTooManyRequests(text=text)
        raise web.HTTPForbidden(text=text)
    request[IDENTITY] = outcome
    return await handler(request)


def _channel_of(request: web.Request) -> str | None:
    """The channel a request is about, for per-user allow lists."""
    gw = gateway_of(request)
    name = request.match_info.get("name")
    if name is not None:
        return name
    if request.path.startswith("/axis-cgi/") and "camera" in request.query:
        try:
            index = vapix.camera_param(request.query.get("camera"), len(gw.channels))
        except vapix.VapixError:
            return None
        return gw.channel_by_index(index).name
    return None


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _named_channel(request: web.Request) -> Channel:
    channel = gateway_of(request).channels.get(request.match_info["name"])
    if channel is None:
        raise web.HTTPNotFound(text=f"no channel {request.match_info['name']!r}\n")
    return channel


def _vapix_channel(request: web.Request) -> Channel:
    gw = gateway_of(request)
    try:
        camera = vapix.camera_param(request.query.get("camera"), len(gw.channels))
    except vapix.VapixError as e:
        raise web.HTTPNotFound(text=f"Error: {e}\n") from None
    return gw.channel_by_index(camera)


def limits_of(request: web.Request, channel: Channel) -> ViewerLimits:
    """The viewer's limits: the channel's caps, `?streamprofile=`, `?fps=`, `?bitrate=`."""
    try:
        return viewer_limits(channel.limits, gateway_of(request).profiles, request.query)
    except LimitError as e:
        raise web.HTTPBadRequest(text=f"{e}\n") from None


async def channel_mjpeg(request: web.Request) -> web.StreamResponse:
    """GET /channels/{name}/mjpeg[?fps=F][&bitrate=B][&streamprofile=P]: multipart server push."""
    channel = _named_channel(request)
    limits = limits_of(request, channel)
    gw = gateway_of(request)
    return await serve(request, gw.mjpeg[channel.name], gw.sessions, limits, gw.dscp)


async def vapix_video(request: web.Request) -> web.StreamResponse:
    """GET /axis-cgi/mjpg/video.cgi?camera=N[&fps=F]...: the same stream, VAPIX style."""
    channel = _vapix_channel(request)
    limits = limits_of(request, channel)
    gw = gateway_of(request)
    return await serve(request, gw.mjpeg[channel.name], gw.sessions, limits, gw.dscp)


def _snapshot(request: web.Request, channel: Channel) -> web.Response:
    unit = channel.jpeg.last
    if unit is None:
        raise web.HTTPServiceUnavailable(
            text=f"no frame from the source of {channel.name!r} yet\n",
            headers={"Retry-After": "1"},
        )
    channel.count_egress("snapshot", 1, len(unit.data))
    return web.Response(
        body=unit.data,
        content_type="image/jpeg",
        headers={"Cache-Control": "no-cache, no-store, must-revalidate"},
    )


async def channel_snapshot(request: web.Request) -> web.Response:
    """GET /channels/{name}/snapshot.jpg: the latest frame."""
    return _snapshot(request, _named_channel(request))


async def vapix_image(request: web.Request) -> web.Response:
    """GET /axis-cgi/jpg/image.cgi?camera=N: the latest frame, VAPIX style."""
    return _snapshot(request, _vapix_channel(request))


async def channel_sdp(request: web.Request) -> web.Response:
    """GET /channels/{name}.sdp: the multicast stream as an SDP file a player can open."""
    channel = _named_channel(request)
    if channel.config.multicast is None:
        raise web.HTTPNotFound(text=f"channel {channel.name!r} has no multicast group\n")
    host = request.url.host or "0.0.0.0"
    text = gateway_of(request).rtsp.multicast_sdp(channel, host)
    return web.Response(text=text, content_type="application/sdp")


async def vapix_params(request: web.Request) -> web.Response:
    """GET /axis-cgi/param.cgi?action=list: what a VMS asks a video server about itself."""
    if request.query.get("action", "list") != "list":
        raise web.HTTPBadRequest(text="# Error: only action=list is supported\n")
    return web.Response(
        text=vapix.param_list(gateway_of(request).vapix_params(), request.query.get("group"))
    )
