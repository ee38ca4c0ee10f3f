"""What every source shares: reconnect with backoff, the stall watchdog, state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from abc import ABC, abstractmethod
from collections import Counter
from typing import Any

import aiohttp

from ..media.channel import Channel

log = logging.getLogger(__name__)


class SourceError(Exception):
    """Why a source session ended, in words safe to log (never a credential).

    `reason` is the short word the error counters use (see `classify`).
    """

    def __init__(self, message: str, reason: str = "error") -> None:
        super().__init__(message)
        self.reason = reason


class Source(ABC):
    """Keeps one channel fed: runs sessions against the camera, forever, until stopped.

    A session that ends for any reason is followed by a reconnect after a
    capped exponential backoff with jitter; the backoff resets once a session
    has delivered frames. A watchdog ends a session that delivers no valid
    frame for `stall_timeout` seconds, connected or not.
    """

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.config = channel.config
        self.state = "idle"
        self.state_since = time.time()
        self.last_error: str | None = None
        self.reconnects = 0
        self.stalls = 0
        self.errors: Counter[str] = Counter()  # sessions ended, by reason (see classify)
        self._progress = 0.0  # monotonic time of the session start or last good frame
        self._session_frames = 0
        self._task: asyncio.Task[None] | None = None
        self._outage_logged = False

    @property
    def up(self) -> bool:
        """Whether frames are flowing."""
        return self.state == "up"

    def start(self) -> None:
        """Start feeding the channel."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"source:{self.channel.name}")

    async def stop(self) -> None:
        """Stop and close the upstream connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.close()
        self._set_state("stopped")

    async def close(self) -> None:  # noqa: B027 - most sources hold nothing to release
        """Release what the source holds (HTTP client sessions)."""

    @abstractmethod
    async def session(self) -> None:
        """Connect and deliver frames until something goes wrong (raise SourceError)."""

    def deliver(self, data: bytes) -> None:
        """Pass one frame to the channel, which checks it before publishing."""
        if self.channel.ingest(data) is None:
            self.delivered()

    def delivered(self) -> None:
        """A good frame reached the channel: the session is making progress."""
        self._progress = time.monotonic()
        self._session_frames += 1
        if self.state != "up":
            self._set_state("up")
            self._outage_logged = False
            log.info(
                "source %s up (%dx%d)",
                self.channel.name,
                self.channel.width,
                self.channel.height,
            )

    def reject(self, reason: str) -> None:
        """Count a frame that never became a candidate (a multipart part refused)."""
        self.channel.reject(reason)

    def backoff(self, attempt: int) -> float:
        """Delay before reconnect attempt `attempt` (0-based): capped exponential, jittered."""
        ceiling = min(
            self.config.reconnect_max, self.config.reconnect_min * (2 ** min(attempt, 30))
        )
        return ceiling * random.uniform(0.5, 1.0)

    async def _run(self) -> None:
        attempt = 0
        while True:
            self._set_state("connecting")
            self._session_frames = 0
            was_up = False
            try:
                await self._watched_session()
                kind, reason = "ended", "stream ended"
            except asyncio.CancelledError:
                raise
            except Exception as e:  # any failure of a camera session leads to a reconnect
                kind, reason = classify(e)
            self.errors[kind] += 1
            was_up = self._session_frames > 0
            if was_up:
                attempt = 0
            delay = self.backoff(attempt)
            attempt += 1
            self.last_error = reason
            self._set_state("down")
            if was_up or not self._outage_logged:
                log.warning(
                    "source %s %s: %s; reconnecting with backoff",
                    self.channel.name,
                    "down" if was_up else "unreachable",
                    reason,
                )
                self._outage_logged = True
            else:
                log.debug("source %s retry failed: %s", self.channel.name, reason)
            await asyncio.sleep(delay)
            self.reconnects += 1

    async def _watched_session(self) -> None:
        stall = self.config.stall_timeout
        self._progress = time.monotonic()
        task = asyncio.create_task(self.session())
        try:
            while not task.done():
                remaining = self._progress + stall - time.monotonic()
                if remaining <= 0:
                    self.stalls += 1
                    raise SourceError(f"stalled: no valid frame for {stall:g} s", "stalled")
                await asyncio.wait({task}, timeout=remaining)
            task.result()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            elif not task.cancelled():
                # Cancelled (stop) just as the session failed: retrieve its exception, or
                # asyncio logs it with a repr whose request info holds the Authorization.
                task.exception()

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_since = time.time()

    def status(self) -> dict[str, Any]:
        """Source state for the API."""
        return {
            "state": self.state,
            "since": round(self.state_since, 3),
            "last_error": self.last_error,
            "reconnects": self.reconnects,
            "stalls": self.stalls,
            "errors": dict(self.errors),
        }


def describe(e: BaseException) -> str:
    """A one-line description of a session failure that carries no URL or credential."""
    return classify(e)[1]


def classify(e: BaseException) -> tuple[str, str]:
    """(reason, description) of a session failure; neither carries a URL or credential.

    aiohttp's own messages are not passed on: they quote the URL, and the
    request info in them holds the Authorization header.
    """
    if isinstance(e, SourceError):
        return e.reason, str(e)
    if isinstance(e, aiohttp.TooManyRedirects):
        return "redirect", "too many redirects"
    if isinstance(e, aiohttp.InvalidUrlRedirectClientError | aiohttp.NonHttpUrlRedirectClientError):
        return "redirect", "redirect to an unusable URL refused"
    if isinstance(e, aiohttp.ClientConnectorError):
        return "connect", f"cannot connect: {e.os_error.strerror or type(e.os_error).__name__}"
    if isinstance(e, TimeoutError):  # aiohttp's ServerTimeoutError (sock_read) included
        return "timeout", "timed out"
    if isinstance(e, aiohttp.ClientResponseError):
        # Raised by the response parser: the head broke a limit or the grammar.
        message = e.message or ""
        if message.startswith("Too many headers"):
            return "head_too_large", "too many header lines in the response"
        if message.startswith("Got more than"):
            return "head_too_large", "response header line too long"
        return "bad_response", f"malformed response (HTTP {e.status})"
    if isinstance(e, aiohttp.ServerDisconnectedError):
        return "closed", "camera closed the connection"
    if isinstance(e, aiohttp.ClientPayloadError):
        return "bad_response", "broken response body"
    if isinstance(e, OSError):
        return "network", e.strerror or type(e).__name__
    return "error", type(e).__name__
