"""Logging helpers: warnings aggregated once a second instead of once per event."""

from __future__ import annotations

import logging
import time


class Aggregated:
    """A warning that may fire thousands of times a second, logged at most once a second.

    The first occurrence is logged at once; later ones within the interval are
    counted and reported with the count when the next one arrives after it.
    """

    __slots__ = ("_count", "_interval", "_last_detail", "_log", "_next", "_what")

    def __init__(self, logger: logging.Logger, what: str, interval: float = 1.0) -> None:
        self._log = logger
        self._what = what
        self._interval = interval
        self._next = 0.0
        self._count = 0
        self._last_detail = ""

    def add(self, detail: str = "", *, exc: BaseException | None = None) -> None:
        """Count one occurrence; log if the interval has passed."""
        now = time.monotonic()
        self._count += 1
        self._last_detail = detail
        if now < self._next:
            return
        count, self._count = self._count, 0
        suffix = f": {detail}" if detail else ""
        times = f" ({count} times since the last report)" if count > 1 else ""
        self._log.warning("%s%s%s", self._what, suffix, times, exc_info=exc if count == 1 else None)
        self._next = now + self._interval


def setup(level: str = "info") -> None:
    """Configure the root logger for the command line."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class MalformedHttp(logging.Filter):
    """Turns aiohttp's traceback per malformed request into a count and a rate-limited line.

    aiohttp answers a request it cannot parse with 400 (or 413, 431) and logs
    it with a traceback at ERROR; from a hostile client that is a log flood.
    Attached to the `aiohttp.server` logger: such records are counted in
    `count`, summarized through `Aggregated`, and dropped.
    """

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self._summary = Aggregated(
            logging.getLogger("gateway.http"), "malformed HTTP request refused", interval=10.0
        )

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        from aiohttp.http_exceptions import HttpProcessingError

        if isinstance(exc, HttpProcessingError):
            self.count += 1
            self._summary.add(str(exc.message).splitlines()[0][:200])
            return False
        return True
