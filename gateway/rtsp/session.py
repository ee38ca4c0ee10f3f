"""RTSP sessions: random ids, bound to their connection, timed out unless kept alive."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..media.session import Session
from .url import Target

if TYPE_CHECKING:
    from ..rtp.egress import RtpViewer, TrackEgress
    from ..transcode.feed import H264Feed
    from .server import RtspConnection

SESSION_ID_BYTES = 12  # 96 random bits


class RtspSession:
    """One RTSP session: a single track of a single channel, over one transport."""

    def __init__(self, owner: RtspConnection, target: Target, timeout: float) -> None:
        self.id = secrets.token_hex(SESSION_ID_BYTES).upper()
        self.owner = owner
        self.target = target
        self.timeout = timeout
        self.state = "init"  # init -> ready (SETUP) -> playing (PLAY) -> ready (PAUSE)
        self.last_activity = time.monotonic()
        self.egress: TrackEgress | None = None
        self.viewer: RtpViewer | Session | None = None  # a Session stands for a multicast member
        self.record: Session | None = None
        self.rtcp_addr: tuple[str, int] | None = None
        self.feed: H264Feed | None = None  # the encoder this session keeps running
        self.user = ""  # who created it ("" anonymous): only they may use it

    def touch(self) -> None:
        """Keep-alive: a request on the session or an RTCP report from its client."""
        self.last_activity = time.monotonic()

    def expired(self, now: float) -> bool:
        """Whether nothing kept the session alive for its timeout."""
        return now - self.last_activity > self.timeout

    @property
    def header(self) -> str:
        """The Session header value, with the timeout announced."""
        return f"{self.id};timeout={int(self.timeout)}"


class SessionTable:
    """Every RTSP session, by id and by the address its RTCP reports come from."""

    def __init__(self) -> None:
        self._by_id: dict[str, RtspSession] = {}
        self._by_rtcp: dict[tuple[str, int], RtspSession] = {}

    def add(self, session: RtspSession) -> None:
        """Register a new session."""
        self._by_id[session.id] = session

    def get(self, session_id: str) -> RtspSession | None:
        """The session with this id, if any."""
        return self._by_id.get(session_id)

    def bind_rtcp(self, session: RtspSession, addr: tuple[str, int]) -> None:
        """Route RTCP from `addr` (the client's RTCP port) to `session`."""
        session.rtcp_addr = addr
        self._by_rtcp[addr] = session

    def by_rtcp(self, addr: tuple[str, int]) -> RtspSession | None:
        """The session whose client sends RTCP from `addr`."""
        return self._by_rtcp.get(addr)

    def remove(self, session: RtspSession) -> None:
        """Forget a session."""
        self._by_id.pop(session.id, None)
        if session.rtcp_addr is not None and self._by_rtcp.get(session.rtcp_addr) is session:
            del self._by_rtcp[session.rtcp_addr]

    def __iter__(self) -> Iterator[RtspSession]:
        return iter(tuple(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)
