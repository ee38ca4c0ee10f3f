"""Snapshot polling, for devices that serve only single JPEGs (image.cgi)."""

from __future__ import annotations

import asyncio
import time

from .base import SourceError
from .http_client import HttpSource, expect_ok


class SnapshotSource(HttpSource):
    """Fetches a JPEG URL `poll_fps` times a second over a kept-alive connection."""

    async def session(self) -> None:
        """Poll until a request fails."""
        period = 1.0 / self.config.poll_fps
        limit = self.config.max_ingest_frame
        deadline = time.monotonic()
        while True:
            async with self.request() as resp:
                expect_ok(resp)
                if resp.content_length is not None and resp.content_length > limit:
                    self.reject("too_large")
                    raise SourceError(
                        f"snapshot of {resp.content_length} bytes exceeds the limit", "too_large"
                    )
                body = bytearray()
                async for chunk in resp.content.iter_any():
                    body += chunk
                    if len(body) > limit:
                        self.reject("too_large")
                        raise SourceError("snapshot exceeds the size limit", "too_large")
            self.deliver(bytes(body))
            # Poll on a fixed grid; if a request ran late, skip ahead rather than burst.
            deadline = max(deadline + period, time.monotonic())
            await asyncio.sleep(deadline - time.monotonic())
