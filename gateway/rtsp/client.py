"""RTSP 1.0 client for pulling from cameras: requests, authentication, interleaved media.

The byte-level work is the sans-IO `RtspParser` (role "client"); this module
keeps the request/response bookkeeping (CSeq, Session, the credentials a
challenge asked for) and moves bytes over one TCP connection. Interleaved
frames go straight to a callback, in arrival order, with no queue in between.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

from .. import __version__
from ..security.digest import ALGORITHMS, AuthError, ha1, parse_auth_params, response_for
from .message import (
    Headers,
    Interleaved,
    InterleavedDropped,
    Limits,
    ParseError,
    Request,
    Response,
    RtspParser,
)

USER_AGENT = f"coaxgate/{__version__}"
DEFAULT_PORT = 554


class RtspClientError(Exception):
    """A request failed, the server broke the protocol, or the connection ended.

    `reason` is the short word the source's error counters use.
    """

    def __init__(self, message: str, reason: str = "error", status: int = 0) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


OnInterleaved = Callable[[int, bytes], None]


class Credentials:
    """What to answer a server's challenge with: Digest (MD5, SHA-256) or Basic."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self._password = password
        self._digest: dict[str, str] | None = None
        self._basic = False
        self._count = 0

    @property
    def ready(self) -> bool:
        """Whether a challenge has been taken, so requests can carry Authorization."""
        return self._digest is not None or self._basic

    def take_challenge(self, challenges: list[str]) -> None:
        """Pick the strongest scheme offered (SHA-256 Digest, MD5 Digest, then Basic)."""
        digests: list[dict[str, str]] = []
        basic = False
        for challenge in challenges:
            scheme, _, rest = challenge.strip().partition(" ")
            if scheme.lower() == "digest":
                try:
                    params = parse_auth_params(rest)
                except AuthError as e:
                    raise RtspClientError(f"malformed Digest challenge: {e}", "auth") from None
                algorithm = params.get("algorithm", "MD5").upper()
                if algorithm in ALGORITHMS and "nonce" in params and "realm" in params:
                    params["algorithm"] = algorithm
                    digests.append(params)
            elif scheme.lower() == "basic":
                basic = True
        if digests:
            digests.sort(key=lambda p: p["algorithm"] != "SHA-256")
            self._digest, self._count = digests[0], 0
        elif basic:
            self._basic = True
        else:
            raise RtspClientError("the camera offers no authentication scheme we speak", "auth")

    def header(self, method: str, uri: str) -> str:
        """The Authorization header for one request."""
        if self._digest is None:
            token = base64.b64encode(f"{self.username}:{self._password}".encode()).decode()
            return f"Basic {token}"
        d = self._digest
        algorithm = d["algorithm"]
        key = ha1(algorithm, self.username, d["realm"], self._password)
        qops = [q.strip() for q in d.get("qop", "").split(",")]
        fields = [
            f'username="{self.username}"',
            f'realm="{d["realm"]}"',
            f'nonce="{d["nonce"]}"',
            f'uri="{uri}"',
        ]
        if "auth" in qops:
            self._count += 1
            nc, cnonce = f"{self._count:08x}", os.urandom(8).hex()
            digest = response_for(algorithm, key, d["nonce"], method, uri, nc, cnonce, "auth")
            fields += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
        else:
            digest = response_for(algorithm, key, d["nonce"], method, uri)
        fields.append(f'response="{digest}"')
        if algorithm != "MD5" or "algorithm" in d:
            fields.append(f"algorithm={algorithm}")
        if "opaque" in d:
            fields.append(f'opaque="{d["opaque"]}"')
        return "Digest " + ", ".join(fields)


class RtspClient:
    """One RTSP connection to a camera."""

    def __init__(
        self,
        url: str,
        credentials: Credentials | None = None,
        *,
        timeout: float = 10.0,
        limits: Limits | None = None,
        on_interleaved: OnInterleaved | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme.lower() != "rtsp" or not parts.hostname:
            raise ValueError(f"not an rtsp:// URL with a host: {url!r}")
        self.url = url
        self.host = parts.hostname
        self.port = parts.port or DEFAULT_PORT
        self.credentials = credentials
        self.timeout = timeout
        self.session: str | None = None
        self.session_timeout = 60.0  # RFC 2326 12.37's default until the server says
        self.on_interleaved = on_interleaved
        self.interleaved_dropped = 0
        self._limits = limits or Limits()
        self.ended = asyncio.Event()  # set when the connection is gone, `error` says why
        self.error: RtspClientError | None = None
        self._cseq = 0
        self._pending: dict[int, asyncio.Future[Response]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        """Open the TCP connection and start reading."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout
            )
        except TimeoutError:
            raise RtspClientError("timed out connecting", "timeout") from None
        except OSError as e:
            raise RtspClientError(f"cannot connect: {e.strerror or e}", "connect") from None
        self._writer = writer
        self._reader_task = asyncio.create_task(self._read(reader))

    async def close(self) -> None:
        """Close the connection (no TEARDOWN; see `teardown`)."""
        task, self._reader_task = self._reader_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
            self._writer = None

    async def request(
        self, method: str, uri: str | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        """Send a request and wait for its answer; a 401 is answered once with credentials."""
        target = uri or self.url
        response = await self._exchange(method, target, headers)
        if response.status == 401 and self.credentials is not None:
            challenges = response.headers.get_all("WWW-Authenticate")
            self.credentials.take_challenge(challenges)
            response = await self._exchange(method, target, headers)
        if response.status == 401:
            raise RtspClientError(f"{method} refused: 401 Unauthorized", "auth", 401)
        if not 200 <= response.status < 300:
            raise RtspClientError(
                f"{method} refused: {response.status} {response.reason}", "status", response.status
            )
        session = response.headers.get("Session")
        if session is not None:
            sid, _, params = session.partition(";")
            self.session = sid.strip()
            for param in params.split(";"):
                name, _, value = param.strip().partition("=")
                if name.lower() == "timeout" and value.isdigit() and int(value) > 0:
                    self.session_timeout = float(value)
        return response

    def control_url(self, base: str, control: str | None) -> str:
        """The absolute URL of a control attribute (RFC 2326 C.1.1)."""
        if not control or control == "*":
            return base
        if "://" in control:
            return control
        return urljoin(base if base.endswith("/") else base + "/", control)

    async def _exchange(self, method: str, uri: str, extra: dict[str, str] | None) -> Response:
        if self.error is not None:
            raise self.error
        writer = self._writer
        if writer is None:
            raise RtspClientError("not connected", "closed")
        self._cseq += 1
        cseq = self._cseq
        headers = Headers([("CSeq", str(cseq)), ("User-Agent", USER_AGENT)])
        if self.session is not None:
            headers.add("Session", self.session)
        if self.credentials is not None and self.credentials.ready:
            headers.add("Authorization", self.credentials.header(method, uri))
        for name, value in (extra or {}).items():
            headers.add(name, value)
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[cseq] = future
        try:
            writer.write(Request(method, uri, headers).serialize())
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            raise RtspClientError(
                f"no answer to {method} in {self.timeout:g} s", "timeout"
            ) from None
        finally:
            self._pending.pop(cseq, None)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        parser = RtspParser("client", self._limits)
        error = RtspClientError("the camera closed the connection", "closed")
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for event in parser.feed(data):
                    if isinstance(event, Interleaved):
                        if self.on_interleaved is not None:
                            self.on_interleaved(event.channel, event.data)
                    elif isinstance(event, Response):
                        cseq = event.cseq
                        future = self._pending.get(cseq) if cseq is not None else None
                        if future is not None and not future.done():
                            future.set_result(event)
                    elif isinstance(event, InterleavedDropped):
                        self.interleaved_dropped += 1
                    elif isinstance(event, ParseError) and parser.failed:
                        error = RtspClientError(f"malformed answer: {event}", "bad_response")
                        return
                    # A request from the server (ANNOUNCE, GET_PARAMETER) needs no answer
                    # for media to flow; it is ignored.
        except OSError as e:
            error = RtspClientError(f"connection failed: {e.strerror or e}", "network")
        finally:
            self.error = error
            self.ended.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(error)
