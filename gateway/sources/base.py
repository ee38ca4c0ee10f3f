"""What every source shares: reconnect with backoff, the stall watchdog, state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from abc import ABC, abstractmethod
from typing import Any

import aiohttp

from ..media.channel import Channel

log = logging.getLogger(__name__)


class SourceError(Exception):
    """Why a source session ended, in words safe to log (never a credential)."""


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
                reason = "stream ended"
            except SourceError as e:
                reason = str(e)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # any failure of a camera session leads to a reconnect
                reason = describe(e)
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
                    raise SourceError(f"stalled: no valid frame for {stall:g} s")
                await asyncio.wait({task}, timeout=remaining)
            task.result()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

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
        }


def describe(e: BaseException) -> str:
    """A one-line description of a connection failure that carries no URL or credential."""
    if isinstance(e, aiohttp.ClientConnectorError):
        return f"cannot connect: {e.os_error.strerror or type(e.os_error).__name__}"
    if isinstance(e, aiohttp.ClientResponseError):
        return f"HTTP {e.status}"
    if isinstance(e, aiohttp.ServerDisconnectedError):
        return "camera closed the connection"
    if isinstance(e, aiohttp.ClientPayloadError):
        return "broken response body"
    if isinstance(e, TimeoutError):
        return "timed out"
    if isinstance(e, OSError):
        return e.strerror or type(e).__name__
    return type(e).__name__
