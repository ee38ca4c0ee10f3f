"""JSON API: channels, sessions, configuration (secrets left out), health."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .context import gateway_of

if TYPE_CHECKING:
    from ..app import Gateway


def channel_json(gw: Gateway, name: str) -> dict[str, Any]:
    """One channel as the API shows it: source state, rates in, viewers by protocol."""
    channel = gw.channels[name]
    viewers = gw.sessions.viewers()
    data = channel.status()
    data["source_state"] = gw.sources[name].status()
    data["viewers"] = {proto: n for (ch, proto), n in viewers.items() if ch == name}
    data["urls"] = {
        "mjpeg": f"/channels/{name}/mjpeg",
        "snapshot": f"/channels/{name}/snapshot.jpg",
        "vapix_mjpeg": f"/axis-cgi/mjpg/video.cgi?camera={channel.index}",
        "vapix_snapshot": f"/axis-cgi/jpg/image.cgi?camera={channel.index}",
    }
    return data


async def channels(request: web.Request) -> web.Response:
    """GET /api/v1/channels."""
    gw = gateway_of(request)
    return web.json_response({"channels": [channel_json(gw, name) for name in gw.channels]})


async def sessions(request: web.Request) -> web.Response:
    """GET /api/v1/sessions: every viewer connection."""
    gw = gateway_of(request)
    return web.json_response({"sessions": [s.to_json() for s in gw.sessions]})


async def config(request: web.Request) -> web.Response:
    """GET /api/v1/config: the configuration in force, without secrets."""
    return web.json_response(gateway_of(request).config.public())


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: the process serves; how many sources are up."""
    gw = gateway_of(request)
    up = sum(1 for s in gw.sources.values() if s.up)
    return web.json_response({"status": "ok", "sources_up": up, "sources": len(gw.sources)})
