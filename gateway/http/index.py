"""The viewer page: every channel live over WebRTC, MJPEG where WebRTC cannot connect."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).resolve().parent / "static"


async def page(request: web.Request) -> web.FileResponse:
    """GET /: plain HTML and JavaScript shipped in the package, no build step."""
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})
