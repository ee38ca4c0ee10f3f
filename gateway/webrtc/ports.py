"""How aioice binds WebRTC host candidates: inside a fixed UDP port range, DSCP-marked.

Firewalls in front of a surveillance network open a known range, not every
ephemeral port, and switches prioritise by DSCP. aioice binds each host
candidate with `loop.create_datagram_endpoint(..., local_addr=(address, 0))`
and offers neither a range nor socket options; this module gives aioice's
module a view of the event loop whose `create_datagram_endpoint` turns port 0
into the next free port of the range and marks the socket as video. Nothing
else in the process is affected.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import aioice.ice

from ..net.dscp import DscpMarker


class PortRange:
    """Ports low..high (inclusive), handed out round-robin."""

    def __init__(self, low: int, high: int) -> None:
        if not 1024 <= low <= high <= 65535:
            raise ValueError(f"bad UDP port range {low}-{high}")
        self.low, self.high = low, high
        self._cursor = itertools.cycle(range(low, high + 1))

    def candidates(self) -> list[int]:
        """Every port of the range once, starting after the last one handed out."""
        return [next(self._cursor) for _ in range(self.high - self.low + 1)]


class _IceLoop:
    """Delegates to the running loop; binds and marks aioice's datagram endpoints."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, ports: PortRange | None, dscp: DscpMarker | None
    ) -> None:
        self._loop = loop
        self._ports = ports
        self._dscp = dscp

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    async def create_datagram_endpoint(self, factory: Any, *args: Any, **kwargs: Any) -> Any:
        local = kwargs.get("local_addr")
        if self._ports is None or local is None or local[1] != 0:
            return self._marked(await self._loop.create_datagram_endpoint(factory, *args, **kwargs))
        last: OSError | None = None
        for port in self._ports.candidates():
            try:
                kwargs["local_addr"] = (local[0], port)
                endpoint = await self._loop.create_datagram_endpoint(factory, *args, **kwargs)
            except OSError as e:  # taken: try the next port of the range
                last = e
                continue
            return self._marked(endpoint)
        raise OSError(f"no free UDP port in {self._ports.low}-{self._ports.high}") from last

    def _marked(self, endpoint: Any) -> Any:
        if self._dscp is not None:
            self._dscp.mark_transport(endpoint[0], "video")
        return endpoint


class _AsyncioView:
    """What aioice.ice sees as `asyncio`: the real module, but the loop view above."""

    def __init__(self, ports: PortRange | None, dscp: DscpMarker | None) -> None:
        self._ports = ports
        self._dscp = dscp

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    def get_running_loop(self) -> Any:
        return _IceLoop(asyncio.get_running_loop(), self._ports, self._dscp)

    def get_event_loop(self) -> Any:
        return _IceLoop(asyncio.get_event_loop(), self._ports, self._dscp)


def install(ports: PortRange | None, dscp: DscpMarker | None) -> None:
    """Make aioice bind host candidates in `ports` (any port if None), marked with `dscp`."""
    aioice.ice.asyncio = _AsyncioView(ports, dscp)  # type: ignore[assignment]


def uninstall() -> None:
    """aioice binds as it would by itself again."""
    aioice.ice.asyncio = asyncio
