"""A fixed UDP port range for WebRTC host candidates.

Firewalls in front of a surveillance network open a known range, not every
ephemeral port. aioice binds each host candidate with
`loop.create_datagram_endpoint(..., local_addr=(address, 0))` and offers no
range; this module gives aioice's module a view of the event loop whose
`create_datagram_endpoint` turns port 0 into the next free port of the range.
Nothing else in the process is affected.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import aioice.ice


class _RangeLoop:
    """Delegates to the running loop; binds port-0 datagram endpoints inside the range."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ports: PortRange) -> None:
        self._loop = loop
        self._ports = ports

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    async def create_datagram_endpoint(self, factory: Any, *args: Any, **kwargs: Any) -> Any:
        local = kwargs.get("local_addr")
        if local is None or local[1] != 0:
            return await self._loop.create_datagram_endpoint(factory, *args, **kwargs)
        last: OSError | None = None
        for port in self._ports.candidates():
            try:
                kwargs["local_addr"] = (local[0], port)
                return await self._loop.create_datagram_endpoint(factory, *args, **kwargs)
            except OSError as e:  # taken: try the next port of the range
                last = e
        raise OSError(f"no free UDP port in {self._ports.low}-{self._ports.high}") from last


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


class _AsyncioView:
    """What aioice.ice sees as `asyncio`: the real module, but a ranged running loop."""

    def __init__(self, ports: PortRange) -> None:
        self._ports = ports

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    def get_running_loop(self) -> Any:
        return _RangeLoop(asyncio.get_running_loop(), self._ports)

    def get_event_loop(self) -> Any:
        return _RangeLoop(asyncio.get_event_loop(), self._ports)


def use_port_range(low: int, high: int) -> PortRange:
    """Make aioice bind its host candidates inside low..high."""
    ports = PortRange(low, high)
    aioice.ice.asyncio = _AsyncioView(ports)  # type: ignore[assignment]
    return ports


def use_any_port() -> None:
    """Undo use_port_range: ephemeral ports again."""
    aioice.ice.asyncio = asyncio
