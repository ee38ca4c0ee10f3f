"""RTSP 1.0 messages (RFC 2326): wire types and a sans-IO stream parser.

The parser takes bytes as they arrive and returns events, like h11's
``receive_data``/``next_event``: requests (server role) or responses (client
role), interleaved ``$`` frames (RFC 2326 10.12) found between messages, and
``ParseError`` values for what cannot be parsed. It never raises on input.

Every limit is checked before the bytes are copied: a start line, a header
line or a header block that would grow past its limit is refused as soon as
the bytes held reach the limit, without waiting for a line break that may
never come; bodies and interleaved frames are held only up to their limit and
skipped (never held) beyond it. ``RtspParser.buffered`` says how many bytes
are held and ``Limits.max_buffered`` bounds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

RTSP_VERSION = "RTSP/1.0"

# RFC 2326 7.1.1, the reason phrases of the status codes RTSP 1.0 defines.
REASONS: dict[int, str] = {
    100: "Continue",
    200: "OK",
    201: "Created",
    250: "Low on Storage Space",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    303: "See Other",
    304: "Not Modified",
    305: "Use Proxy",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Time-out",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Large",
    415: "Unsupported Media Type",
    451: "Parameter Not Understood",
    452: "Conference Not Found",
    453: "Not Enough Bandwidth",
    454: "Session Not Found",
    455: "Method Not Valid in This State",
    456: "Header Field Not Valid for Resource",
    457: "Invalid Range",
    458: "Parameter Is Read-Only",
    459: "Aggregate Operation Not Allowed",
    460: "Only Aggregate Operation Allowed",
    461: "Unsupported Transport",
    462: "Destination Unreachable",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Time-out",
    505: "RTSP Version Not Supported",
    551: "Option not supported",
}

# Header text is UTF-8 (RFC 2326 1.3), but a peer may send anything: surrogateescape
# keeps every byte, so a parsed message serializes back to the bytes it came from.
_ENCODING = "utf-8"
_ERRORS = "surrogateescape"

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN_B = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(r"[A-Za-z]+/[0-9]+\.[0-9]+")
# Control characters other than HT: a CR or LF in a value would split the message.
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_BAD_VALUE_B = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_BAD_URI = re.compile(r"[\x00-\x20\x7f]")
_REQUEST_LINE = re.compile(
    rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) +([^\x00-\x20\x7f]+) +([A-Za-z]+/[0-9]+\.[0-9]+) *"
)
_STATUS_LINE = re.compile(
    rb"([A-Za-z]+/[0-9]+\.[0-9]+) +([1-9][0-9][0-9])(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?"
)
_MAX_LENGTH_DIGITS = 18  # 10**18 bytes: nobody skips that; also keeps int() cheap
_SHOW = 64  # bytes of a bad line quoted in an error message


def _show(data: bytes) -> str:
    """A bad line for an error message: truncated, decoded, quoted and escaped."""
    text = data[:_SHOW].decode(_ENCODING, "replace")
    return repr(text + "...") if len(data) > _SHOW else repr(text)


# -- headers -------------------------------------------------------------------------------

HeadersInput: TypeAlias = "Headers | Mapping[str, str] | Iterable[tuple[str, str]] | None"


class Headers:
    """Case-insensitive, order-preserving multi-map of header names to values."""

    __slots__ = ("_items",)

    def __init__(self, items: HeadersInput = None) -> None:
        self._items: list[tuple[str, str]] = []
        if items is None:
            return
        if isinstance(items, Headers):
            self._items = list(items._items)
            return
        pairs = items.items() if isinstance(items, Mapping) else items
        for name, value in pairs:
            self.add(name, value)

    @staticmethod
    def _checked(name: str, value: str) -> tuple[str, str]:
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        if not isinstance(value, str):
            raise ValueError(f"header {name} value must be str, got {type(value).__name__}")
        # Refusing CR and LF here is what stops header injection through echoed values.
        if _BAD_VALUE.search(value):
            raise ValueError(f"header {name} value contains a control character: {value!r}")
        return name, value.strip(" \t")

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of a header, or default."""
        key = name.lower()
        for n, v in self._items:
            if n.lower() == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of a header, in order."""
        key = name.lower()
        return [v for n, v in self._items if n.lower() == key]

    def items(self) -> list[tuple[str, str]]:
        """(name, value) pairs in order, names spelled as given."""
        return list(self._items)

    def add(self, name: str, value: str) -> None:
        """Append a header, keeping the ones already there."""
        self._items.append(self._checked(name, value))

    def set(self, name: str, value: str) -> None:
        """Replace every value of a header by one, in the place of the first."""
        pair = self._checked(name, value)
        key = name.lower()
        out: list[tuple[str, str]] = []
        placed = False
        for item in self._items:
            if item[0].lower() != key:
                out.append(item)
            elif not placed:
                out.append(pair)
                placed = True
        if not placed:
            out.append(pair)
        self._items = out

    def remove(self, name: str) -> None:
        """Remove every value of a header (no error when there is none)."""
        key = name.lower()
        self._items = [item for item in self._items if item[0].lower() != key]

    def copy(self) -> Headers:
        """An independent copy."""
        return Headers(self)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.lower()
        return any(n.lower() == key for n, _ in self._items)

    def __iter__(self) -> Iterator[str]:
        return (n for n, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def _serialize_into(self, out: bytearray) -> None:
        for name, value in self._items:
            out += f"{name}: {value}\r\n".encode(_ENCODING, _ERRORS)


def _body_framing(headers: Headers, body: bytes) -> bytes:
    """The Content-Length line to add, or b"" when the headers already say it right."""
    declared = headers.get_all("Content-Length")
    if not declared:
        return b"Content-Length: %d\r\n" % len(body) if body else b""
    for value in declared:
        # Compared as numbers: a parsed "Content-Length: 02" must serialize back.
        numeric = value.isascii() and value.isdigit() and len(value) <= _MAX_LENGTH_DIGITS
        if not numeric or int(value) != len(body):
            raise ValueError(
                f"Content-Length header says {value!r} but the body is {len(body)} bytes"
            )
    return b""


# -- wire types ----------------------------------------------------------------------------


class _Message:
    """What requests and responses share: headers, body, CSeq, serialization, equality."""

    __slots__ = ()
    headers: Headers
    body: bytes
    version: str

    def _start_line(self) -> str:
        raise NotImplementedError

    def _key(self) -> tuple[object, ...]:
        raise NotImplementedError

    @property
    def cseq(self) -> int | None:
        """The CSeq header as a number; None when it is missing or not a number."""
        return _cseq(self.headers)

    def serialize(self) -> bytes:
        """The message on the wire; Content-Length is added when there is a body."""
        out = bytearray(f"{self._start_line()}\r\n".encode(_ENCODING, _ERRORS))
        self.headers._serialize_into(out)
        out += _body_framing(self.headers, self.body)
        out += b"\r\n"
        out += self.body
        return bytes(out)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Message)
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]


class Request(_Message):
    """An RTSP request: method, URI, headers, body."""

    __slots__ = ("body", "headers", "method", "uri", "version")

    def __init__(
        self,
        method: str,
        uri: str,
        headers: HeadersInput = None,
        body: bytes = b"",
        version: str = RTSP_VERSION,
    ) -> None:
        # '$' is a token character, but at the start of a message it means an
        # interleaved frame (RFC 2326 10.12): such a method could not be read back.
        if not _TOKEN.fullmatch(method) or method.startswith("$"):
            raise ValueError(f"invalid method {method!r}")
        if not uri or _BAD_URI.search(uri):
            raise ValueError(f"invalid request URI {uri!r}")
        if not _VERSION.fullmatch(version):
            raise ValueError(f"invalid version {version!r}")
        self.method = method
        self.uri = uri
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = bytes(body)
        self.version = version

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    def _key(self) -> tuple[object, ...]:
        return (self.method, self.uri, self.version, self.headers, self.body)

    @classmethod
    def parse(cls, data: bytes, limits: Limits | None = None) -> Request:
        """Parse exactly one whole request; raise ParseError or ValueError otherwise."""
        event = _parse_one("server", data, limits)
        assert isinstance(event, Request)
        return event

    def __repr__(self) -> str:
        return (
            f"Request({self.method!r}, {self.uri!r}, {self.headers.items()!r}, "
            f"body=<{len(self.body)} bytes>, version={self.version!r})"
        )


class Response(_Message):
    """An RTSP response: status, reason phrase, headers, body."""

    __slots__ = ("body", "headers", "reason", "status", "version")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: HeadersInput = None,
        body: bytes = b"",
        version: str = RTSP_VERSION,
    ) -> None:
        if not isinstance(status, int) or not 100 <= status <= 999:
            raise ValueError(f"status must be a 3-digit number, got {status!r}")
        if reason is None:
            if status not in REASONS:
                raise ValueError(f"no default reason phrase for status {status}; pass one")
            reason = REASONS[status]
        elif _BAD_VALUE.search(reason):
            raise ValueError(f"reason phrase contains a control character: {reason!r}")
        else:
            reason = reason.strip(" \t")  # as the parser reads it back (and as Headers do)
        if not _VERSION.fullmatch(version):
            raise ValueError(f"invalid version {version!r}")
        self.status = status
        self.reason = reason
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = bytes(body)
        self.version = version

    def _start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    def _key(self) -> tuple[object, ...]:
        return (self.status, self.reason, self.version, self.headers, self.body)

    @classmethod
    def parse(cls, data: bytes, limits: Limits | None = None) -> Response:
        """Parse exactly one whole response; raise ParseError or ValueError otherwise."""
        event = _parse_one("client", data, limits)
        assert isinstance(event, Response)
        return event

    def __repr__(self) -> str:
        return (
            f"Response({self.status}, {self.reason!r}, {self.headers.items()!r}, "
            f"body=<{len(self.body)} bytes>, version={self.version!r})"
        )


def _cseq(headers: Headers) -> int | None:
    value = headers.get("CSeq")
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 10:
        return None
    return int(value)


@dataclass(frozen=True, slots=True)
class Interleaved:
    """An interleaved binary frame (RFC 2326 10.12): ``$``, channel, 16-bit length, data."""

    channel: int
    data: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.channel <= 255:
            raise ValueError(f"interleaved channel must be 0..255, got {self.channel}")
        if len(self.data) > 0xFFFF:
            raise ValueError(f"interleaved frame of {len(self.data)} bytes exceeds 65535")

    def serialize(self) -> bytes:
        """The frame on the wire."""
        return b"$" + bytes((self.channel,)) + len(self.data).to_bytes(2, "big") + self.data

    @classmethod
    def parse(cls, data: bytes) -> Interleaved:
        """Parse exactly one whole frame."""
        if len(data) < 4 or data[0] != 0x24:
            raise ValueError("not an interleaved frame: it must start with '$' and 4 header bytes")
        size = int.from_bytes(data[2:4], "big")
        if len(data) != 4 + size:
            raise ValueError(f"interleaved frame says {size} bytes, {len(data) - 4} follow")
        return cls(data[1], bytes(data[4:]))

    def __repr__(self) -> str:
        return f"Interleaved({self.channel}, <{len(self.data)} bytes>)"


@dataclass(frozen=True, slots=True)
class InterleavedDropped:
    """An interleaved frame over ``Limits.max_interleaved``, skipped without being held."""

    channel: int
    size: int


class ParseError(ValueError):
    """Input that is not a valid message, as a parser event (or raised by ``parse``).

    ``status`` is the RTSP status to answer with. ``recoverable`` is True when the
    parser found the end of the bad message and goes on with the next one; when
    False, framing is lost: answer, close, and the parser ignores further input.
    ``head`` is the request (or response) line and the headers read before the
    error, when the start line could be parsed: the CSeq to echo, and for an
    HTTP request (``is_http``) what an RTSP-over-HTTP tunnel needs.
    """

    def __init__(
        self,
        status: int,
        message: str,
        recoverable: bool,
        head: Request | Response | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.recoverable = recoverable
        self.head = head

    @property
    def is_http(self) -> bool:
        """The bad message was an HTTP request or response (an HTTP peer on this port)."""
        return self.head is not None and self.head.version.upper().startswith("HTTP/")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParseError):
            return NotImplemented
        return (self.status, self.message, self.recoverable, self.head) == (
            other.status,
            other.message,
            other.recoverable,
            other.head,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"ParseError({self.status}, {self.message!r}, recoverable={self.recoverable}, "
            f"head={self.head!r})"
        )


Event: TypeAlias = Request | Response | Interleaved | InterleavedDropped | ParseError


# -- the parser ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """Hard limits of one parser, in bytes (line lengths count their line break)."""

    max_start_line: int = 4096
    max_header_line: int = 8192
    max_headers: int = 64
    max_header_bytes: int = 16384
    max_body: int = 65536
    max_interleaved: int = 65535

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            low = 0 if name == "max_body" else 1  # no bodies at all is a valid policy
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")

    @property
    def max_buffered(self) -> int:
        """The most bytes a parser holds between two feeds."""
        head = self.max_start_line + self.max_header_bytes
        return max(head + self.max_body, 4 + self.max_interleaved)


_IDLE, _START, _HEADER, _BODY, _FRAME_HEAD, _FRAME, _SKIP, _FAILED = range(8)
_CRLF = b"\r\n"


class RtspParser:
    """Sans-IO RTSP stream parser: ``feed(bytes) -> events``; any split gives the same events."""

    def __init__(self, role: Literal["server", "client"], limits: Limits | None = None) -> None:
        if role not in ("server", "client"):
            raise ValueError(f"role must be 'server' or 'client', got {role!r}")
        self.role = role
        self.limits = limits if limits is not None else Limits()
        self._state = _IDLE
        self._line = bytearray()  # the line being read, without its line break yet
        self._buf = bytearray()  # body, interleaved header or data
        self._need = 0  # bytes the body or frame still needs; bytes left to skip
        self._channel = 0
        self._held = 0  # start line and header bytes of the message being read
        self._start_len = 0
        self._head: Request | Response | None = None
        self._headers = Headers()
        self._last = -1  # index of the header a continuation line extends
        self._count = 0
        self._error: tuple[int, str] | None = None  # first error in a head still being read
        self._framing_lost = False
        self._unparsed = b""

    # -- public --------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Bytes held now; never more than ``limits.max_buffered``."""
        return self._held + len(self._line) + len(self._buf)

    @property
    def failed(self) -> bool:
        """An unrecoverable error was returned; further input is ignored."""
        return self._state == _FAILED

    def take_unparsed(self) -> bytes:
        """After an HTTP request (``ParseError.is_http``), the bytes that followed its head.

        They were in the same feed as the end of the head and belong to whoever takes
        the connection over (the RTSP-over-HTTP tunnel). Returned once, then forgotten.
        """
        data, self._unparsed = self._unparsed, b""
        return data

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Consume bytes; return the events they complete, in order."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"feed() takes bytes, not {type(data).__name__}")
        if self._state == _FAILED:
            return []
        data = bytes(data)
        out: list[Event] = []
        pos, end = 0, len(data)
        while pos < end:
            state = self._state
            if state == _IDLE:
                pos = self._idle(data, pos, end)
            elif state in (_START, _HEADER):
                pos = self._read_line(data, pos, end, out)
            elif state == _BODY:
                pos = self._read_body(data, pos, end, out)
            elif state == _FRAME_HEAD:
                pos = self._read_frame_head(data, pos, end, out)
            elif state == _FRAME:
                pos = self._read_frame(data, pos, end, out)
            elif state == _SKIP:
                n = min(self._need, end - pos)
                pos += n
                self._need -= n
                if self._need == 0:
                    self._state = _IDLE
            else:  # _FAILED
                if out and isinstance(out[-1], ParseError) and out[-1].is_http:
                    self._unparsed = data[pos:]
                break
        return out

    # -- states --------------------------------------------------------------------------

    def _idle(self, data: bytes, pos: int, end: int) -> int:
        # Empty lines between messages are allowed (clients send a CRLF keep-alive).
        while pos < end and data[pos] in _CRLF:
            pos += 1
        if pos < end:
            if data[pos] == 0x24:  # '$'
                self._state = _FRAME_HEAD
            else:
                self._state = _START
        return pos

    def _allowance(self) -> tuple[int, str]:
        """Most bytes the current line may have, with the message for going past it."""
        lim = self.limits
        if self._state == _START:
            what = "request" if self.role == "server" else "status"
            return lim.max_start_line, f"{what} line longer than {lim.max_start_line} bytes"
        left = lim.max_header_bytes - (self._held - self._start_len)
        # The tighter limit decides, whatever the line turns out to be, so that an
        # early refusal (no line break yet) and a late one give the same error.
        if left <= lim.max_header_line:
            return left, f"header block longer than {lim.max_header_bytes} bytes"
        return lim.max_header_line, f"header line longer than {lim.max_header_line} bytes"

    def _read_line(self, data: bytes, pos: int, end: int, out: list[Event]) -> int:
        allowance, message = self._allowance()
        nl = data.find(b"\n", pos, end)
        stop = end if nl < 0 else nl + 1
        size = len(self._line) + stop - pos
        # Without a line break yet, the line will be at least one byte longer.
        if size > allowance or (nl < 0 and size >= allowance):
            status = 414 if self._state == _START and self.role == "server" else 400
            self._fail(out, status, message)
            return end
        self._line += data[pos:stop]
        if nl < 0:
            return end
        line = bytes(self._line)
        self._line.clear()
        if self._state == _START:
            self._start_line(line, out)
        else:
            self._header_line(line, out)
        return stop

    def _start_line(self, raw: bytes, out: list[Event]) -> None:
        line = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
        self._start_len = len(raw)
        self._held = len(raw)
        self._headers = Headers()
        self._last = -1
        self._count = 0
        self._error = None
        self._framing_lost = False
        if self.role == "server":
            m = _REQUEST_LINE.fullmatch(line)
            if m is None:
                self._fail(out, 400, f"malformed request line {_show(line)}")
                return
            method, uri, version = (g.decode(_ENCODING, _ERRORS) for g in m.groups())
            self._head = Request(method, uri, self._headers, b"", version)
        else:
            m = _STATUS_LINE.fullmatch(line)
            if m is None:
                self._fail(out, 400, f"malformed status line {_show(line)}")
                return
            version = m.group(1).decode()
            reason = (m.group(3) or b"").decode(_ENCODING, _ERRORS).strip(" \t")
            self._head = Response(int(m.group(2)), reason, self._headers, b"", version)
        if version != RTSP_VERSION:
            self._error = (505, f"unsupported version {version!r}, expected {RTSP_VERSION}")
        self._state = _HEADER

    def _header_line(self, raw: bytes, out: list[Event]) -> None:
        self._held += len(raw)
        line = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
        if not line:
            self._end_of_head(out)
            return
        if line[0] in b" \t":  # obs-fold: this line continues the previous value
            more = line.strip(b" \t")
            if self._last < 0:
                self._bad_header(f"continuation line {_show(line)} before any header")
            elif _BAD_VALUE_B.search(more):
                self._bad_header(f"malformed header line {_show(line)}")
            elif more:
                items = self._headers._items
                key, old = items[self._last]
                text = more.decode(_ENCODING, _ERRORS)
                items[self._last] = (key, f"{old} {text}" if old else text)
            return
        self._count += 1
        if self._count > self.limits.max_headers:
            self._fail(out, 400, f"more than {self.limits.max_headers} header lines")
            return
        colon = line.find(b":")
        name = line[:colon].rstrip(b" \t") if colon > 0 else b""
        value = line[colon + 1 :].strip(b" \t")
        if not name or not _TOKEN_B.fullmatch(name) or _BAD_VALUE_B.search(value):
            if line[:14].lower() == b"content-length":
                self._framing_lost = True  # the body's length is unknown
            self._last = -1
            self._bad_header(f"malformed header line {_show(line)}")
            return
        self._last = len(self._headers._items)
        self._headers._items.append(
            (name.decode(_ENCODING, _ERRORS), value.decode(_ENCODING, _ERRORS))
        )

    def _bad_header(self, message: str) -> None:
        if self._error is None:
            self._error = (400, message)

    def _content_length(self) -> tuple[int, tuple[int, str] | None]:
        """The body length, or the error that makes it unknown (framing lost)."""
        length = -1
        for value in self._headers.get_all("Content-Length"):
            if not value.isascii() or not value.isdigit():
                return 0, (400, f"bad Content-Length {value!r}")
            if len(value) > _MAX_LENGTH_DIGITS:
                return 0, (413, f"Content-Length {value[:24]!r} is too large to skip")
            n = int(value)
            if length >= 0 and n != length:
                return 0, (400, f"conflicting Content-Length values {length} and {n}")
            length = n
        return max(length, 0), None

    def _end_of_head(self, out: list[Event]) -> None:
        length, framing = self._content_length()
        head = self._head
        assert head is not None
        if framing is not None or self._framing_lost:
            status, message = self._error or framing or (400, "bad Content-Length")
            self._fail(out, status, message)
            return
        if head.version.upper().startswith("HTTP/"):
            # Not ours to parse further (an HTTP body need not have a Content-Length);
            # the caller may hand the connection to the RTSP-over-HTTP tunnel.
            assert self._error is not None
            self._fail(out, *self._error)
            return
        if self._error is None and length > self.limits.max_body:
            self._error = (413, f"body of {length} bytes exceeds {self.limits.max_body}")
        if self._error is not None:
            out.append(ParseError(*self._error, recoverable=True, head=head))
            self._reset()
            self._skip(length)
            return
        if length == 0:
            out.append(head)
            self._reset()
            return
        self._state = _BODY
        self._need = length

    def _read_body(self, data: bytes, pos: int, end: int, out: list[Event]) -> int:
        stop = min(end, pos + self._need - len(self._buf))
        self._buf += data[pos:stop]
        if len(self._buf) == self._need:
            head = self._head
            assert head is not None
            head.body = bytes(self._buf)
            out.append(head)
            self._reset()
        return stop

    def _read_frame_head(self, data: bytes, pos: int, end: int, out: list[Event]) -> int:
        stop = min(end, pos + 4 - len(self._buf))
        self._buf += data[pos:stop]
        if len(self._buf) < 4:
            return stop
        self._channel = self._buf[1]
        size = int.from_bytes(self._buf[2:4], "big")
        self._buf.clear()
        if size > self.limits.max_interleaved:
            out.append(InterleavedDropped(self._channel, size))
            self._skip(size)
        elif size == 0:
            out.append(Interleaved(self._channel, b""))
            self._state = _IDLE
        else:
            self._need = size
            self._state = _FRAME
        return stop

    def _read_frame(self, data: bytes, pos: int, end: int, out: list[Event]) -> int:
        stop = min(end, pos + self._need - len(self._buf))
        self._buf += data[pos:stop]
        if len(self._buf) == self._need:
            out.append(Interleaved(self._channel, bytes(self._buf)))
            self._buf.clear()
            self._state = _IDLE
        return stop

    # -- transitions ---------------------------------------------------------------------

    def _skip(self, n: int) -> None:
        self._need = n
        self._state = _SKIP if n else _IDLE

    def _reset(self) -> None:
        self._state = _IDLE
        self._held = 0
        self._head = None
        self._headers = Headers()
        self._buf.clear()
        self._error = None

    def _fail(self, out: list[Event], status: int, message: str) -> None:
        out.append(ParseError(status, message, recoverable=False, head=self._head))
        self._state = _FAILED
        self._held = 0
        self._head = None
        self._line.clear()
        self._buf.clear()


def _parse_one(role: Literal["server", "client"], data: bytes, limits: Limits | None) -> Event:
    parser = RtspParser(role, limits)
    events = parser.feed(data)
    for event in events:
        if isinstance(event, ParseError):
            raise event
    if len(events) != 1 or not isinstance(events[0], Request | Response):
        raise ValueError(f"expected one whole message, got {len(events)} events")
    if parser.buffered:
        raise ValueError(f"{parser.buffered} bytes after the message are incomplete")
    return events[0]
