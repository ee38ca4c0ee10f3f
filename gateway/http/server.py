"""The gateway's HTTP application: media routes, VAPIX-compatible routes, API, metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Handler

from .. import vapix
from ..media.channel import Channel
from ..media.limits import LimitError, ViewerLimits, viewer_limits
from ..webrtc import whep
from . import api, index, metrics
from .context import GATEWAY, gateway_of
from .mjpeg import serve

if TYPE_CHECKING:
    from ..app import Gateway


def build_app(gateway: Gateway) -> web.Application:
    """The aiohttp application serving every HTTP route of the gateway."""
    app = web.Application(middlewares=[management_dscp, rtsp_tunnel])
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
