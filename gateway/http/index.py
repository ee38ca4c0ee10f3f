"""The landing page: every channel, live, with its URLs."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from aiohttp import web

from .context import gateway_of

if TYPE_CHECKING:
    from ..app import Gateway


def render(gw: Gateway, host: str) -> str:
    """The page's HTML."""
    cards = []
    shown = f"[{host}]" if ":" in host else host
    rtsp_host = html.escape(f"{shown}:{gw.rtsp_port}")
    for channel in gw.channels.values():
        name = html.escape(channel.name)
        cards.append(
            f"""<figure><img src="/channels/{name}/mjpeg" alt="{name}" loading="lazy">
<figcaption><b>{name}</b> &middot; <a href="/channels/{name}/mjpeg">mjpeg</a>
&middot; <a href="/channels/{name}/snapshot.jpg">snapshot</a>
&middot; <code>/axis-cgi/mjpg/video.cgi?camera={channel.index}</code>
&middot; <code>rtsp://{rtsp_host}/{name}</code></figcaption></figure>"""
        )
    body = "\n".join(cards) or "<p>No channels configured.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>coaxgate</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,sans-serif;margin:1rem;background:#111;color:#ddd}}
a{{color:#8cf}}
main{{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:1rem}}
figure{{margin:0;background:#000}}
img{{width:100%;display:block;aspect-ratio:4/3;object-fit:contain}}
figcaption{{padding:.4rem;font-size:.85rem}}
</style></head><body>
<h1>coaxgate</h1>
<main>
{body}
</main>
<p><a href="/api/v1/channels">channels API</a> &middot; <a href="/api/v1/sessions">sessions</a>
&middot; <a href="/metrics">metrics</a></p>
</body></html>
"""


async def page(request: web.Request) -> web.Response:
    """GET /."""
    return web.Response(
        text=render(gateway_of(request), request.url.host or "127.0.0.1"), content_type="text/html"
    )
