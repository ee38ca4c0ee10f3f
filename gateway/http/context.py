"""Where handlers find the gateway they serve."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ..app import Gateway

GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway")


def gateway_of(request: web.Request) -> Gateway:
    """The Gateway behind this request's application."""
    return request.app[GATEWAY]
