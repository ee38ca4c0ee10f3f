"""The HTTP client toward cameras: one session per source, with its credentials.

A camera is untrusted input like any peer. The response head is bounded
(line length and header count), every socket read has a timeout, cookies are
not kept, and redirects are followed by hand: at most MAX_REDIRECTS, never to
another scheme (http to https included: the config says which one to use),
and the credentials go only to the origin of the configured URL.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import hdrs
from yarl import URL

from ..config import ChannelConfig
from ..media.channel import Channel
from .base import Source, SourceError

MAX_REDIRECTS = 3
MAX_HEAD_LINE = 8190  # bytes in the status line or one header line
MAX_HEADERS = 64  # header lines in a response head; cameras send about ten
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]{0,15}")
_MAX_SHOWN = 64  # characters of camera-chosen text (reason phrase, type) in an error


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


def credentials(
    config: ChannelConfig,
) -> tuple[aiohttp.BasicAuth | None, tuple[aiohttp.ClientMiddlewareType, ...]]:
    """(auth, middlewares) of one source's requests to its own origin, as its config says."""
    if config.username is None:
        return None, ()
    user, password = config.username, config.password or ""
    if config.auth == "basic":
        return aiohttp.BasicAuth(user, password), ()
    digest = aiohttp.DigestAuthMiddleware(user, password, preemptive=True)
    if config.auth == "digest":
        return None, (digest,)
    return None, (BasicOnChallenge(user, password), digest)


def client_session(config: ChannelConfig) -> aiohttp.ClientSession:
    """A client session for one source; it holds no credentials (each request brings them)."""
    return aiohttp.ClientSession(
        auto_decompress=False,
        # Every read has a timeout: a backstop behind the stall watchdog, which ends a
        # silent (or trickling) camera's session first and counts it as a stall.
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=config.connect_timeout, sock_read=2 * config.stall_timeout
        ),
        connector=aiohttp.TCPConnector(limit=4, ttl_dns_cache=60),
        cookie_jar=aiohttp.DummyCookieJar(),  # a camera could otherwise grow it without end
        max_line_size=MAX_HEAD_LINE,
        max_field_size=MAX_HEAD_LINE,
        max_headers=MAX_HEADERS,
        # Not decompressed (a small body could inflate without bound): ask for none.
        headers={hdrs.USER_AGENT: "coaxgate", hdrs.ACCEPT_ENCODING: "identity"},
    )


class HttpSource(Source):
    """A source that talks HTTP to its camera through one client session."""

    def __init__(self, channel: Channel) -> None:
        super().__init__(channel)
        self._http: aiohttp.ClientSession | None = None
        self._auth, self._middlewares = credentials(self.config)

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

    @contextlib.asynccontextmanager
    async def request(self) -> AsyncIterator[aiohttp.ClientResponse]:
        """GET the source URL, following at most MAX_REDIRECTS redirects within its scheme."""
        url = origin = URL(self.config.source)
        for hop in range(MAX_REDIRECTS + 1):
            own = url.origin() == origin.origin()
            resp = await self.http.get(
                url,
                allow_redirects=False,
                auth=self._auth if own else None,
                middlewares=self._middlewares if own else (),
            )
            if resp.status not in REDIRECTS:
                break
            location = resp.headers.get(hdrs.LOCATION)
            resp.release()
            if hop == MAX_REDIRECTS:
                raise SourceError(f"more than {MAX_REDIRECTS} redirects", "redirect")
            url = _redirect_target(url, location, resp.status)
        try:
            yield resp
        finally:
            resp.release()


def _redirect_target(url: URL, location: str | None, status: int) -> URL:
    """Where a redirect leads; SourceError when it leads nowhere this source may go.

    The error never quotes the Location: a camera may put anything there,
    credentials included.
    """
    if not location:
        raise SourceError(f"HTTP {status} redirect without a Location", "redirect")
    try:
        target = url.join(URL(location))
    except (ValueError, TypeError):
        raise SourceError(f"HTTP {status} redirect to an invalid URL", "redirect") from None
    if target.scheme != url.scheme:
        scheme = target.scheme if _SCHEME.fullmatch(target.scheme) else "another"
        raise SourceError(
            f"redirect from {url.scheme} to {scheme} refused: redirects stay within the scheme",
            "redirect",
        )
    if not target.host:
        raise SourceError(f"HTTP {status} redirect to a URL without a host", "redirect")
    return target.with_user(None)  # never take credentials from a camera's redirect


def expect_ok(resp: aiohttp.ClientResponse) -> None:
    """Raise SourceError unless the camera answered 200."""
    if resp.status != 200:
        reason = "".join(c for c in (resp.reason or "")[:_MAX_SHOWN] if c.isprintable())
        raise SourceError(f"HTTP {resp.status} {reason}".rstrip(), "http_status")
