"""Motion-JPEG over HTTP (multipart/x-mixed-replace), as Axis video.cgi serves it."""

from __future__ import annotations

from aiohttp import hdrs

from .._ext.multipart import MultipartScanner, Part, boundary_from_content_type
from .base import SourceError
from .http_client import HttpSource, expect_ok

# Scanner reasons, in the vocabulary of the bad-frame counter.
_REASONS = {"part_too_large": "too_large"}


class MjpegHttpSource(HttpSource):
    """Pulls a multipart MJPEG stream and publishes each JPEG part."""

    async def session(self) -> None:
        """Stream parts until the camera stops or sends something unusable."""
        async with self.request() as resp:
            expect_ok(resp)
            ctype = resp.headers.get(hdrs.CONTENT_TYPE, "")
            mime = ctype.partition(";")[0].strip().lower()
            if mime == "image/jpeg":
                raise SourceError(
                    'camera sent a single JPEG; use kind = "snapshot"', "content_type"
                )
            if not mime.startswith("multipart/"):
                shown = "".join(c for c in mime[:64] if c.isprintable()) or "(none)"
                raise SourceError(f"unexpected Content-Type {shown}", "content_type")
            try:
                boundary = boundary_from_content_type(ctype)
            except ValueError as e:
                raise SourceError(f"bad multipart boundary: {e}", "content_type") from None
            scanner = MultipartScanner(boundary, max_part_size=self.config.max_ingest_frame)
            while True:
                chunk = await resp.content.readany()
                if not chunk:
                    raise SourceError("camera closed the stream", "closed")
                for event in scanner.feed(chunk):
                    if isinstance(event, Part):
                        self.deliver(event.body)
                    else:
                        self.reject(_REASONS.get(event.reason, event.reason))
                if scanner.closed:
                    raise SourceError("camera ended the stream", "ended")
