"""Viewer sessions: who watches what, over which protocol, and how it goes."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .limits import ViewerLimits

RATE_WINDOW = 1.0  # seconds: the shortest span a send rate is measured over


class Session:
    """One viewer connection, as the sessions API lists it."""

    __slots__ = (
        "bytes_sent",
        "channel",
        "dropped",
        "fps_limit",
        "frames_sent",
        "id",
        "limits",
        "peer",
        "protocol",
        "rate_mark",
        "refresh",
        "rtcp",
        "send_rate",
        "since",
        "transport",
    )

    def __init__(self, protocol: str, peer: str, channel: str, fps_limit: float | None = None):
        self.id = secrets.token_hex(8)
        self.protocol = protocol
        self.peer = peer
        self.channel = channel
        self.since = time.time()
        self.bytes_sent = 0
        self.frames_sent = 0
        self.dropped: Counter[str] = Counter()
        self.fps_limit = fps_limit
        # Outputs whose counters live elsewhere (Cython egress) fill them in on read.
        self.refresh: Callable[[Session], None] | None = None
        self.transport: str | None = None
        self.rtcp: dict[str, float] | None = None
        self.limits: ViewerLimits | None = None
        # The send rate is measured between reads of the API (at least RATE_WINDOW apart).
        self.rate_mark = (time.monotonic(), 0)
        self.send_rate = 0.0

    def measure(self, now: float | None = None) -> float:
        """Bits per second sent since the previous measurement."""
        now = time.monotonic() if now is None else now
        then, sent = self.rate_mark
        if now - then >= RATE_WINDOW:
            self.send_rate = (self.bytes_sent - sent) * 8 / (now - then)
            self.rate_mark = (now, self.bytes_sent)
        return self.send_rate

    def to_json(self) -> dict[str, Any]:
        """The session as the API shows it."""
        if self.refresh is not None:
            self.refresh(self)
        return {
            "id": self.id,
            "protocol": self.protocol,
            "peer": self.peer,
            "channel": self.channel,
            "since": round(self.since, 3),
            "bytes_sent": self.bytes_sent,
            "frames_sent": self.frames_sent,
            "frames_dropped": sum(self.dropped.values()),
            "frames_dropped_by_reason": dict(self.dropped),
            "fps_limit": self.fps_limit,
            "limits": self.limits.to_json() if self.limits is not None else None,
            "send_rate_bps": round(self.measure()),
            "transport": self.transport,
            "rtcp": self.rtcp,
        }


class Sessions:
    """Every live viewer session of the gateway."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    def add(self, session: Session) -> Session:
        """Register a session and return it."""
        self._sessions[session.id] = session
        return session

    def remove(self, session: Session) -> None:
        """Forget a session; harmless if already gone."""
        self._sessions.pop(session.id, None)

    def __iter__(self) -> Iterator[Session]:
        return iter(tuple(self._sessions.values()))

    def __len__(self) -> int:
        return len(self._sessions)

    def viewers(self) -> Counter[tuple[str, str]]:
        """Live sessions counted by (channel, protocol)."""
        return Counter((s.channel, s.protocol) for s in self._sessions.values())
