"""Which channel and codec an RTSP URL asks for.

    rtsp://host:port/{name}[/jpeg|/h264][/trackID=N][?fps=F]
    rtsp://host:port/axis-media/media.amp[/trackID=N]?camera=N[&videocodec=jpeg|h264][&fps=F]

The second is the Axis form (camera = 1-based channel position in the
config) that video management systems already know.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from .. import vapix

CODECS = ("jpeg", "h264")
_TRACK = re.compile(r"/trackID=(\d{1,3})$")
AXIS_PATH = "/axis-media/media.amp"
MAX_URL = 2048
_UNSAFE = re.compile(r"[\x00-\x20\x7f\ud800-\udfff]")


class UrlError(ValueError):
    """A URL that names nothing we serve: `status` is the RTSP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved RTSP URL."""

    channel: str
    codec: str  # "jpeg", "h264", or "" for the channel's native codec
    fps: float | None
    track: int | None  # the trackID the URL names, if it names one
    base: str  # the aggregate URL: Content-Base, PLAY/TEARDOWN on the whole stream
    query: str  # the query string to keep on control URLs

    def control(self, track: int = 0) -> str:
        """Absolute control URL of a track, query kept (Axis style)."""
        parts = urlsplit(self.base)
        path = parts.path.rstrip("/") + f"/trackID={track}"
        return urlunsplit((parts.scheme, parts.netloc, path, self.query, ""))


def resolve(uri: str, channels: Sequence[str]) -> Target:
    """Resolve a Request-URI against the configured channel names (in config order)."""
    if len(uri) > MAX_URL:
        raise UrlError(414, "URL too long")
    # The base and control URLs built from it go into headers and the UTF-8 SDP body:
    # refuse what they could not carry (bytes that are not UTF-8, controls, spaces).
    if _UNSAFE.search(uri):
        raise UrlError(400, f"not an RTSP URL: {uri[:200]!r}")
    try:
        parts = urlsplit(uri)
    except ValueError as e:  # a bracketed host that is not one, an NFKC trick
        raise UrlError(400, f"not an RTSP URL: {e}") from None
    if parts.scheme.lower() not in ("rtsp", "rtsps", "rtspu", "") or not parts.path:
        raise UrlError(400, f"not an RTSP URL: {uri[:200]!r}")
    path = parts.path
    track: int | None = None
    m = _TRACK.search(path)
    if m:
        track = int(m.group(1))
        path = path[: m.start()]
    path = path.rstrip("/") or "/"
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    try:
        fps = vapix.fps_param(query.get("fps"))
    except vapix.VapixError as e:
        raise UrlError(400, str(e)) from None

    if path.lower() == AXIS_PATH:
        try:
            camera = vapix.camera_param(query.get("camera"), len(channels))
        except vapix.VapixError as e:
            raise UrlError(404, str(e)) from None
        name = channels[camera - 1]
        codec = query.get("videocodec", "").lower()
        if codec not in ("", *CODECS):
            raise UrlError(404, f"videocodec {codec!r} is not served")
    else:
        segments = [s for s in path.split("/") if s]
        if not segments or len(segments) > 2:
            raise UrlError(404, f"no stream at {path!r}")
        name = segments[0]
        if name not in channels:
            raise UrlError(404, f"no channel {name!r}")
        codec = segments[1].lower() if len(segments) == 2 else ""
        if codec not in ("", *CODECS):
            raise UrlError(404, f"no stream {segments[1]!r} on channel {name!r}")
        # Empty segments dropped: "//lobby" as a path would read back as a host.
        path = "/" + "/".join(segments)
    base = urlunsplit((parts.scheme or "rtsp", parts.netloc, quote(path, safe="/"), "", ""))
    return Target(name, codec, fps, track, base, parts.query)
