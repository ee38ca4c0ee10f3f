"""Admission at the door of every listener, before a byte is parsed.

A `Gatekeeper` wraps a listener's protocol factory (`loop.create_server`, or
aiohttp's `runner.server` through `GuardedSite`). In `connection_made` it
checks the peer against the IP filter, the global connection cap and the
per-address cap; a refused connection is aborted at once (a reset, no
response). An admitted one gets `header_timeout` seconds to deliver its first
request head (an empty line after the request line and headers; on RTSP also
the `$` of an interleaved frame), else it is aborted: slow-header clients and
half-open connections cannot pile up. TLS listeners are plain TCP listeners
wrapped the same way: the checks run before the handshake, which then runs on
the same socket (`loop.connect_accepted_socket`) under the same deadline.

After the first head the guard is a plain pass-through to the protocol it
wraps. Memory is bounded whatever clients do: per connection a few fields,
per address a counter while it has connections open, and the refusal log
remembers at most LOG_ADDRESSES addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import ssl
import struct
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from ..config import IpFilterConfig, ServerConfig

log = logging.getLogger(__name__)

REASONS = ("ip_filter", "max_connections", "per_address", "header_timeout")
BACKLOG = 1024  # a burst of viewers (or of a flood) waits in the kernel, not in SYN retries
LOG_INTERVAL = 60.0  # one refusal log line per address per minute at most
LOG_ADDRESSES = 1024  # addresses the refusal log remembers

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ProtocolFactory = Callable[[], asyncio.BaseProtocol]

_V4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_LINGER_0 = struct.pack("ii", 1, 0)


def peer_address(peername: Any) -> IPAddress | None:
    """The peer's address from `get_extra_info("peername")`; IPv4-mapped IPv6 as IPv4."""
    if not isinstance(peername, tuple) or not peername or not isinstance(peername[0], str):
        return None
    try:
        addr = ipaddress.ip_address(peername[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    net = ipaddress.ip_network(text, strict=False)
    if isinstance(net, ipaddress.IPv6Network) and net.subnet_of(_V4_MAPPED):
        # ::ffff:10.0.0.0/104 is 10.0.0.0/8: peers are compared as IPv4.
        return ipaddress.IPv4Network((int(net.network_address) & 0xFFFFFFFF, net.prefixlen - 96))
    return net


class IpFilter:
    """Allow and deny lists of networks: with an allow list only those get in; deny wins."""

    def __init__(self, allow: Iterable[str] = (), deny: Iterable[str] = ()) -> None:
        self.allow = [_network(n) for n in allow]
        self.deny = [_network(n) for n in deny]
        # (version, network, mask) as integers: a few hundred compares per connection at most.
        self._allow = [(n.version, int(n.network_address), int(n.netmask)) for n in self.allow]
        self._deny = [(n.version, int(n.network_address), int(n.netmask)) for n in self.deny]

    @property
    def active(self) -> bool:
        """Whether any list is configured."""
        return bool(self._allow or self._deny)

    def permits(self, addr: IPAddress | None) -> bool:
        """Whether a peer at `addr` may connect (None: not an IP peer)."""
        if not self.active:
            return True
        if addr is None:
            return not self._allow
        version, value = addr.version, int(addr)
        if any(v == version and value & mask == net for v, net, mask in self._deny):
            return False
        if self._allow:
            return any(v == version and value & mask == net for v, net, mask in self._allow)
        return True


class RefusalLog:
    """Log a refused address at most once per LOG_INTERVAL, remembering LOG_ADDRESSES at most."""

    def __init__(
        self,
        interval: float = LOG_INTERVAL,
        capacity: int = LOG_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.capacity = capacity
        self._clock = clock
        self._last: OrderedDict[str, float] = OrderedDict()  # in the order they were logged
        self.suppressed = 0  # refusals not logged because the table was full

    def __len__(self) -> int:
        return len(self._last)

    def should_log(self, key: str) -> bool:
        """Whether a refusal of `key` is logged now."""
        now = self._clock()
        while self._last:
            oldest, when = next(iter(self._last.items()))
            if when > now - self.interval:
                break
            del self._last[oldest]
        if key in self._last:
            return False
        if len(self._last) >= self.capacity:
            self.suppressed += 1
            return False
        self._last[key] = now
        return True


class Gatekeeper:
    """IP filter, connection caps and the first-head deadline for every listener."""

    def __init__(self, server: ServerConfig, ip_filter: IpFilterConfig) -> None:
        self.filter = IpFilter(ip_filter.allow, ip_filter.deny)
        self.max_connections = server.max_connections
        self.max_per_address = server.max_connections_per_address
        self.header_timeout = server.header_timeout
        self.open: Counter[str] = Counter()  # admitted connections open, by listener
        self.refused: Counter[tuple[str, str]] = Counter()  # by (listener, reason)
        self.listeners: list[str] = []
        self.total = 0
        self._per_address: dict[str, int] = {}
        self._live: set[_GuardBase] = set()
        self._log = RefusalLog()

    def wrap(
        self,
        factory: ProtocolFactory,
        listener: str,
        *,
        rtsp: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> ProtocolFactory:
        """A protocol factory that admits connections before `factory`'s protocol sees them.

        `rtsp`: a `$` (interleaved frame) also ends the first head. `tls`: do the
        server side of a TLS handshake after admission, then connect the protocol
        to the TLS transport.
        """
        if listener not in self.listeners:
            self.listeners.append(listener)

        def make() -> asyncio.BaseProtocol:
            inner = factory()
            if isinstance(inner, asyncio.BufferedProtocol):
                return _BufferedGuard(self, listener, inner, rtsp, tls)
            assert isinstance(inner, asyncio.Protocol)
            return _Guard(self, listener, inner, rtsp, tls)

        return make

    def per_address(self, addr: str) -> int:
        """Connections open from one address (its normalized string)."""
        return self._per_address.get(addr, 0)

    def close(self) -> None:
        """At shutdown: end TLS handshakes still in progress, stop the deadlines."""
        for guard in list(self._live):
            guard.shutdown()

    # -- for the guards ------------------------------------------------------------

    def _admit(self, guard: _GuardBase, addr: IPAddress | None) -> str | None:
        """Admit a connection (counted) or return why not."""
        if not self.filter.permits(addr):
            return "ip_filter"
        if self.total >= self.max_connections:
            return "max_connections"
        if self._per_address.get(guard.address, 0) >= self.max_per_address:
            return "per_address"
        self.total += 1
        self._per_address[guard.address] = self._per_address.get(guard.address, 0) + 1
        self.open[guard.listener] += 1
        self._live.add(guard)
        return None

    def _release(self, guard: _GuardBase) -> None:
        self.total -= 1
        n = self._per_address[guard.address] - 1
        if n:
            self._per_address[guard.address] = n
        else:
            del self._per_address[guard.address]
        self.open[guard.listener] -= 1
        self._live.discard(guard)

    def _refused(self, listener: str, address: str, reason: str) -> None:
        self.refused[(listener, reason)] += 1
        if self._log.should_log(address):
            more = self._log.suppressed
            self._log.suppressed = 0
            log.info(
                "%s: %s a connection from %s (%s)%s",
                listener,
                "cut off" if reason == "header_timeout" else "refused",
                address,
                reason,
                f"; {more} more from other addresses not logged" if more else "",
            )


def _hard_close(transport: asyncio.BaseTransport) -> None:
    """Abort with a reset (SO_LINGER 0): no response, and no TIME_WAIT left behind here."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_0)
    transport.abort()  # type: ignore[attr-defined]


class _Discard(asyncio.Protocol):
    """The protocol of a raw transport whose socket went on to a TLS transport."""


class _GuardBase(asyncio.BaseProtocol):
    """One connection at the door, then a pass-through to the protocol it wraps."""

    __slots__ = (
        "_inner",
        "_keeper",
        "_made",
        "_rtsp",
        "_slow",
        "_started",
        "_state",
        "_tail",
        "_task",
        "_timer",
        "_tls",
        "_transport",
        "_write_paused",
        "address",
        "listener",
    )

    # _state: NEW, then ADMITTED (counted) or REFUSED, then CLOSED once released.
    NEW, ADMITTED, REFUSED, CLOSED = range(4)

    def __init__(
        self,
        keeper: Gatekeeper,
        listener: str,
        inner: asyncio.BaseProtocol,
        rtsp: bool,
        tls: ssl.SSLContext | None,
    ) -> None:
        self._keeper = keeper
        self.listener = listener
        self._inner: Any = inner
        self._rtsp = rtsp
        self._tls = tls
        self._state = self.NEW
        self._made = False  # the inner protocol has its transport
        self._slow = True  # watching for the first head
        self._started = False  # a byte other than CR/LF arrived
        self._tail = b""  # the last two bytes, for a head end split between reads
        self._write_paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None  # the TLS handshake
        self._transport: asyncio.BaseTransport | None = None
        self.address = "?"

    # -- the door -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._state == self.ADMITTED:
            # The second call, on TLS listeners: the handshake is done.
            self._connect(transport)
            return
        self._transport = transport
        addr = peer_address(transport.get_extra_info("peername"))
        self.address = str(addr) if addr is not None else "?"
        keeper = self._keeper
        reason = keeper._admit(self, addr)
        if reason is not None:
            self._state = self.REFUSED
            _hard_close(transport)
            keeper._refused(self.listener, self.address, reason)
            return
        self._state = self.ADMITTED
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(keeper.header_timeout, self._expired)
        if self._tls is None:
            self._connect(transport)
            return
        # Nothing has been read yet: hand the socket to a TLS transport of its own
        # (connect_accepted_socket does the handshake, then calls connection_made again).
        try:
            sock = _detach(transport)
        except OSError as e:
            log.warning("%s %s: cannot start TLS: %s", self.listener, self.address, e)
            self._release()
            return
        self._task = loop.create_task(self._handshake(sock, self._tls))

    async def _handshake(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(
                lambda: self,
                sock,
                ssl=context,
                # Our own deadline comes first and is the one counted.
                ssl_handshake_timeout=self._keeper.header_timeout + 5.0,
            )
        except asyncio.CancelledError:
            self._release()  # the deadline, or shutdown; the transport is closed
            raise
        except Exception as e:  # a failed handshake: the transport is closed already
            log.debug("%s %s: TLS handshake failed: %r", self.listener, self.address, e)
            self._release()
        finally:
            self._task = None

    def _connect(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._made = True
        self._inner.connection_made(transport)
        if self._write_paused and self._state == self.ADMITTED:
            self._inner.pause_writing()

    def _expired(self) -> None:
        self._timer = None
        if self._state != self.ADMITTED:
            return
        self._keeper._refused(self.listener, self.address, "header_timeout")
        if self._made and self._transport is not None:
            _hard_close(self._transport)
        elif self._task is not None:
            self._task.cancel()  # a TLS handshake in progress

    def _release(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._state == self.ADMITTED:
            self._state = self.CLOSED
            self._keeper._release(self)

    def shutdown(self) -> None:
        """Gateway shutdown: stop the deadline; end a TLS handshake still in progress."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()

    # -- watching for the first request head ------------------------------------------------

    def _watch(self, data: bytes) -> None:
        """Cancel the deadline once the first head (or, on RTSP, an interleaved frame) is in."""
        if not self._started:
            data = data.lstrip(b"\r\n")
            if not data:
                return
            self._started = True
            if self._rtsp and data[0] == 0x24:  # "$"
                self._seen()
                return
        edge = self._tail + data[:2]
        if b"\n\n" in edge or b"\n\r\n" in edge or b"\n\n" in data or b"\n\r\n" in data:
            self._seen()
            return
        self._tail = (self._tail + data[-2:])[-2:]

    def _seen(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._slow = False

    # -- pass-through ---------------------------------------------------------------------

    def eof_received(self) -> bool | None:
        if self._made:
            result: bool | None = self._inner.eof_received()
            return result
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        made, self._made = self._made, False
        self._release()
        if made:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._write_paused = True
        if self._made:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._made:
            self._inner.resume_writing()


class _Guard(_GuardBase, asyncio.Protocol):
    """The guard of a Protocol."""

    __slots__ = ()

    def data_received(self, data: bytes) -> None:
        if self._slow and self._state == self.ADMITTED:
            self._watch(data)
        self._inner.data_received(data)


class _BufferedGuard(_GuardBase, asyncio.BufferedProtocol):
    """The guard of a BufferedProtocol: reads land in the wrapped protocol's own buffer."""

    __slots__ = ("_buffer",)

    def __init__(
        self,
        keeper: Gatekeeper,
        listener: str,
        inner: asyncio.BaseProtocol,
        rtsp: bool,
        tls: ssl.SSLContext | None,
    ) -> None:
        super().__init__(keeper, listener, inner, rtsp, tls)
        self._buffer: Any = None  # the buffer handed out last, while watching

    def get_buffer(self, sizehint: int) -> Any:
        buf = self._inner.get_buffer(sizehint)
        if self._slow:
            self._buffer = buf
        return buf

    def buffer_updated(self, nbytes: int) -> None:
        if self._slow:
            buf, self._buffer = self._buffer, None
            if buf is not None and self._state == self.ADMITTED:
                self._watch(bytes(memoryview(buf)[:nbytes]))
        self._inner.buffer_updated(nbytes)


def _detach(transport: asyncio.BaseTransport) -> socket.socket:
    """A duplicate of a transport's socket, and the transport closed without touching it."""
    raw = transport.get_extra_info("socket")
    if raw is None:
        raise OSError("the transport has no socket")
    sock = socket.socket(fileno=os.dup(raw.fileno()))
    try:
        transport.set_protocol(_Discard())
        transport.abort()  # type: ignore[attr-defined]  # the duplicate keeps the connection
    except BaseException:
        sock.close()
        raise
    return sock


class GuardedSite(web.BaseSite):
    """An aiohttp TCP site whose connections pass a Gatekeeper (and, with `tls`, a handshake)."""

    __slots__ = ("_bound_port", "_host", "_keeper", "_listener", "_port", "_tls")

    def __init__(
        self,
        runner: web.BaseRunner,
        keeper: Gatekeeper,
        listener: str,
        host: str | None,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        backlog: int = BACKLOG,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._keeper = keeper
        self._listener = listener
        self._host = host
        self._port = port
        self._tls = tls
        self._bound_port = 0

    @property
    def port(self) -> int:
        """The bound port (after start)."""
        return self._bound_port or self._port

    @property
    def name(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{self._host or '0.0.0.0'}:{self.port}"

    @property
    def sockets(self) -> list[Any]:
        """The listening sockets (after start)."""
        return list(getattr(self._server, "sockets", None) or ())

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        self._server = await loop.create_server(
            self._keeper.wrap(server, self._listener, tls=self._tls),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=True,
        )
        self._bound_port = self._server.sockets[0].getsockname()[1]
