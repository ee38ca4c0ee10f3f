"""The HTTP client toward cameras: one session per source, with its credentials."""

from __future__ import annotations

import aiohttp
from aiohttp import hdrs

from ..config import ChannelConfig
from ..media.channel import Channel
from .base import Source, SourceError

MAX_REDIRECTS = 3


class BasicOnChallenge:
    """Client middleware: answer a `WWW-Authenticate: Basic` challenge once.

    In "auto" mode no credential is sent before the camera asks, so a camera
    that speaks Digest never sees the password in the clear; an old camera
    (the Axis 2400 speaks only Basic) gets it after its 401.
    """

    def __init__(self, login: str, password: str) -> None:
        self._auth = aiohttp.BasicAuth(login, password).encode()

    async def __call__(
        self, request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        response = await handler(request)
        if response.status != 401 or hdrs.AUTHORIZATION in request.headers:
            return response
        challenge = response.headers.get(hdrs.WWW_AUTHENTICATE, "")
        if not challenge.lower().startswith("basic"):
            return response
        response.release()
        request.headers[hdrs.AUTHORIZATION] = self._auth
        return await handler(request)


def client_session(config: ChannelConfig) -> aiohttp.ClientSession:
    """A client session for one source, authenticating the way its config says."""
    middlewares: list[aiohttp.ClientMiddlewareType] = []
    auth: aiohttp.BasicAuth | None = None
    if config.username is not None:
        user, password = config.username, config.password or ""
        if config.auth == "basic":
            auth = aiohttp.BasicAuth(user, password)
        elif config.auth == "digest":
            middlewares.append(aiohttp.DigestAuthMiddleware(user, password, preemptive=True))
        else:
            middlewares.append(BasicOnChallenge(user, password))
            middlewares.append(aiohttp.DigestAuthMiddleware(user, password, preemptive=True))
    return aiohttp.ClientSession(
        auth=auth,
        middlewares=tuple(middlewares),
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=config.connect_timeout, sock_read=None
        ),
        connector=aiohttp.TCPConnector(limit=4, ttl_dns_cache=60),
        max_line_size=8190,
        max_field_size=8190,
        headers={hdrs.USER_AGENT: "coaxgate"},
    )


class HttpSource(Source):
    """A source that talks HTTP to its camera through one client session."""

    def __init__(self, channel: Channel) -> None:
        super().__init__(channel)
        self._http: aiohttp.ClientSession | None = None

    @property
    def http(self) -> aiohttp.ClientSession:
        """The client session, opened on first use."""
        if self._http is None:
            self._http = client_session(self.config)
        return self._http

    async def close(self) -> None:
        """Close the upstream connection."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    def request(self) -> aiohttp.client._RequestContextManager:
        """GET the source URL, following at most a few redirects."""
        return self.http.get(self.config.source, max_redirects=MAX_REDIRECTS)


def expect_ok(resp: aiohttp.ClientResponse) -> None:
    """Raise SourceError unless the camera answered 200."""
    if resp.status != 200:
        raise SourceError(f"HTTP {resp.status} {resp.reason or ''}".rstrip())
