"""Pure-Python multipart/x-mixed-replace scanner: the reference for gateway._ext.multipart.

Same API and the same events, byte for byte, as the Cython scanner in
ext/multipart.pyx, written plainly with bytearray and bytes.find. The benchmark
runs it next to the Cython one, and the tests and the fuzz target use it as an
oracle, so every rule below has its twin there: change both or neither.

Rules in brief (the Cython module documents them in full):

- A delimiter line is the boundary at the start of a line, optionally after
  "--", then "--" (closing, accepted at once), or up to MAX_PADDING spaces or
  tabs and CRLF or LF. "Start of a line" is: after an LF, the start of the
  stream, or the first byte after a Content-Length body and its CR/LFs.
- Without Content-Length a body ends before the line break preceding the next
  delimiter; only delimiters that keep the body within max_part_size + 1 are
  looked for, so the outcome does not depend on how the stream is split.
- A refused part yields a ScanError whose ``discarded`` counts the bytes of
  that part (after its delimiter line) dropped when it was refused.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_PADDING", "MultipartScanner", "Part", "ScanError", "boundary_from_content_type"]

# Transport padding allowed between a boundary and its line break (RFC 2046 LWSP).
MAX_PADDING = 16

_SEEK, _HEADERS, _BODY, _BODY_CL, _AFTER_CL = range(5)
_CL_MAX_DIGITS = 19
_BOUNDARY_MAX = 70


@dataclass(frozen=True, slots=True)
class Part:
    """One complete part."""

    headers: tuple[tuple[bytes, bytes], ...]
    content_type: bytes | None
    body: bytes


@dataclass(frozen=True, slots=True)
class ScanError:
    """A refused part; the scanner resynchronises on the next delimiter."""

    reason: str
    discarded: int


def _normalise_boundary(boundary: bytes) -> bytes:
    if boundary.startswith(b"--"):
        boundary = boundary[2:]
    if not 1 <= len(boundary) <= _BOUNDARY_MAX:
        raise ValueError(f"boundary must be 1 to {_BOUNDARY_MAX} bytes, got {len(boundary)}")
    if b"\r" in boundary or b"\n" in boundary:
        raise ValueError("boundary must not contain CR or LF")
    return boundary


def boundary_from_content_type(value: str | bytes) -> bytes:
    """The boundary parameter of a multipart Content-Type, without a leading "--"."""
    if isinstance(value, str):
        try:
            raw = value.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError("Content-Type is not ASCII") from None
    else:
        raw = bytes(value)
    i = raw.find(b";")
    n = len(raw)
    while 0 <= i < n:
        i += 1  # past ';'
        eq = raw.find(b"=", i)
        semi = raw.find(b";", i)
        if eq < 0 or (0 <= semi < eq):
            i = semi
            continue
        name = raw[i:eq].strip().lower()
        j = eq + 1
        while j < n and raw[j] in b" \t":
            j += 1
        if j < n and raw[j] == 0x22:  # '"': quoted-string with backslash escapes
            out = bytearray()
            j += 1
            while j < n and raw[j] != 0x22:
                if raw[j] == 0x5C and j + 1 < n:
                    j += 1
                out.append(raw[j])
                j += 1
            if j >= n:
                raise ValueError("unterminated quoted boundary")
            val = bytes(out)
            i = raw.find(b";", j + 1)
        else:
            end = raw.find(b";", j)
            val = raw[j : n if end < 0 else end].strip()
            i = end
        if name == b"boundary":
            return _check_boundary(val)
    raise ValueError("no boundary parameter")


def _check_boundary(val: bytes) -> bytes:
    if val.startswith(b"--"):
        val = val[2:]
    if not 1 <= len(val) <= _BOUNDARY_MAX:
        raise ValueError(f"boundary must be 1 to {_BOUNDARY_MAX} characters, got {len(val)}")
    # RFC 2046 bchars are printable ASCII and space, never a trailing space.
    if any(c < 0x20 or c > 0x7E for c in val) or val.endswith(b" "):
        raise ValueError(f"invalid character in boundary {val!r}")
    return val


class MultipartScanner:
    """Incremental sans-IO scanner of a multipart/x-mixed-replace byte stream."""

    def __init__(
        self,
        boundary: bytes,
        *,
        max_part_size: int = 4 << 20,
        max_header_size: int = 8192,
        max_headers: int = 32,
    ) -> None:
        if not 0 <= max_part_size <= 1 << 32:
            raise ValueError("max_part_size must be 0 to 2**32")
        if not 1 <= max_header_size <= 1 << 32:
            raise ValueError("max_header_size must be 1 to 2**32")
        if not 0 <= max_headers <= 1 << 16:
            raise ValueError("max_headers must be 0 to 65536")
        self._b = _normalise_boundary(bytes(boundary))
        self._max_part = max_part_size
        self._max_header = max_header_size
        self._max_headers = max_headers
        # Index 0 of _buf is the start of the current state's region (body, header
        # block or the bytes still searched while discarding).
        self._buf = bytearray()
        self._state = _SEEK
        self._ls = True  # is _buf[0] at the start of a line?
        self._spos = 0  # next boundary hit to examine
        self._hpos = 0  # next header line
        self._hscan = 0  # no LF before this offset in the current header line
        self._hdrs: list[tuple[bytes, bytes]] = []
        self._hdr_len = 0
        self._headers: tuple[tuple[bytes, bytes], ...] = ()
        self._ctype: bytes | None = None
        self._pending = bytearray()
        self._need = 0
        self._closed = False

    @property
    def boundary(self) -> bytes:
        """The normalised boundary (no leading "--")."""
        return self._b

    @property
    def closed(self) -> bool:
        """True once the closing delimiter was seen; later data is ignored."""
        return self._closed

    @property
    def buffered(self) -> int:
        """Bytes currently held."""
        return len(self._buf) + len(self._pending)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Part | ScanError]:
        """Take the next chunk of the stream; return the parts completed or refused by it."""
        events: list[Part | ScanError] = []
        if self._closed:
            return events
        self._buf += data
        while not self._closed and self._step(events):
            pass
        return events

    # -- state machine -------------------------------------------------------

    def _step(self, events: list[Part | ScanError]) -> bool:
        state = self._state
        if state == _SEEK:
            return self._step_seek()
        if state == _HEADERS:
            return self._step_headers(events)
        if state == _BODY:
            return self._step_body(events)
        if state == _BODY_CL:
            return self._step_body_cl(events)
        return self._step_after_cl()

    def _drop(self, n: int) -> None:
        if n <= 0:
            return
        self._ls = self._buf[n - 1] == 0x0A
        del self._buf[:n]
        self._spos = max(self._spos - n, 0)
        self._hpos = max(self._hpos - n, 0)
        self._hscan = max(self._hscan - n, 0)

    def _find(self, qlast: int | None) -> tuple[int, int, int, bool]:
        """Search boundary hits from _spos: (status, q, end, closing); status 1 found, 2 partial."""
        buf, b = self._buf, self._b
        blen = len(b)
        last = len(buf) - blen
        if qlast is not None:
            last = min(last, qlast + 2)
        p = self._spos
        while p <= last:
            p = buf.find(b, p, last + blen)
            if p < 0:
                break
            q = -1
            if p >= 2 and buf[p - 2 : p] == b"--" and self._line_start(p - 2):
                q = p - 2
            elif self._line_start(p):
                q = p
            if q >= 0 and (qlast is None or q <= qlast):
                status, end, closing = self._suffix(p + blen)
                if status == 1:
                    return 1, q, end, closing
                if status == 2:
                    self._spos = p
                    return 2, q, 0, False
            p += 1
        self._spos = max(self._spos, last + 1)
        return 0, 0, 0, False

    def _line_start(self, q: int) -> bool:
        return self._ls if q == 0 else self._buf[q - 1] == 0x0A

    def _suffix(self, i: int) -> tuple[int, int, bool]:
        """What follows a boundary at i: (1 found / 0 not / 2 need more, end, closing)."""
        buf = self._buf
        n = len(buf)
        if i >= n:
            return 2, 0, False
        if buf[i] == 0x2D:  # '-'
            if i + 1 >= n:
                return 2, 0, False
            if buf[i + 1] == 0x2D:
                return 1, i + 2, True
            return 0, 0, False
        j = i
        while j < n and buf[j] in (0x20, 0x09):
            if j - i >= MAX_PADDING:
                return 0, 0, False
            j += 1
        if j >= n:
            return 2, 0, False
        if buf[j] == 0x0A:
            return 1, j + 1, False
        if buf[j] == 0x0D:
            if j + 1 >= n:
                return 2, 0, False
            if buf[j + 1] == 0x0A:
                return 1, j + 2, False
        return 0, 0, False

    def _after_delimiter(self, end: int, closing: bool) -> None:
        if closing:
            self._closed = True
            self._buf.clear()
            self._pending.clear()
            return
        self._drop(end)
        self._state = _HEADERS
        self._hpos = self._hscan = 0
        self._hdrs = []

    def _resync(self, at: int) -> None:
        """Discard up to offset ``at`` and search for the next delimiter from there."""
        self._drop(at)
        if at == 0:
            self._ls = True  # every resync point is a line start
        self._state = _SEEK
        self._spos = 0

    def _step_seek(self) -> bool:
        status, _q, end, closing = self._find(None)
        if status == 1:
            self._after_delimiter(end, closing)
            return True
        # Keep two bytes before the next hit for a "--" prefix; _ls covers the byte before.
        self._drop(self._spos - 2)
        return False

    def _step_headers(self, events: list[Part | ScanError]) -> bool:
        buf = self._buf
        window = min(len(buf), self._max_header)
        while True:
            lf = buf.find(b"\n", self._hscan, window)
            if lf < 0:
                self._hscan = window
                if window >= self._max_header:
                    self._refuse_headers(events, "headers_too_large", self._hpos)
                    return True
                return False
            start = self._hpos
            self._hpos = self._hscan = lf + 1
            line = bytes(buf[start:lf])
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                return self._end_headers(events)
            name, colon, value = line.partition(b":")
            name = name.strip().lower()
            if not colon or not name:
                self._refuse_headers(events, "bad_header", start)
                return True
            if len(self._hdrs) >= self._max_headers:
                self._refuse_headers(events, "too_many_headers", start)
                return True
            self._hdrs.append((name, value.strip()))

    def _refuse_headers(self, events: list[Part | ScanError], reason: str, at: int) -> None:
        # Resync from the offending line: it may itself be the next delimiter.
        events.append(ScanError(reason, at))
        self._resync(at)

    def _end_headers(self, events: list[Part | ScanError]) -> bool:
        hdrs = tuple(self._hdrs)
        self._hdr_len = hdr_len = self._hpos
        ctype: bytes | None = None
        length: int | None = None
        bad = False
        for name, value in hdrs:
            if name == b"content-type":
                if ctype is None:
                    ctype = value
            elif name == b"content-length":
                if len(value) > _CL_MAX_DIGITS or not value.isdigit():
                    bad = True
                elif length is None:
                    length = int(value)
                elif int(value) != length:
                    bad = True
        self._drop(hdr_len)
        self._ls = True
        if bad:
            events.append(ScanError("bad_content_length", hdr_len))
            self._resync(0)
        elif length is None:
            self._headers, self._ctype = hdrs, ctype
            self._state = _BODY
            self._spos = 0
        elif length > self._max_part:
            events.append(ScanError("part_too_large", hdr_len))
            self._resync(0)
        elif length == 0:
            events.append(Part(hdrs, ctype, b""))
            self._state = _AFTER_CL
        else:
            self._headers, self._ctype = hdrs, ctype
            self._need = length
            self._pending = bytearray()
            self._state = _BODY_CL
        return True

    def _step_body(self, events: list[Part | ScanError]) -> bool:
        limit = self._max_part
        # Only delimiters that keep the body within limit + 1 bytes count, so that the
        # verdict does not depend on how much data happens to be buffered.
        qlast = limit + 2
        status, q, end, closing = self._find(qlast)
        if status == 1:
            buf = self._buf
            size = q
            if q > 0:
                size = q - 1 - (q >= 2 and buf[q - 2] == 0x0D)
            if size <= limit:
                events.append(Part(self._headers, self._ctype, bytes(buf[:size])))
            else:
                events.append(ScanError("part_too_large", self._hdr_len + size))
            self._after_delimiter(end, closing)
            return True
        if status == 0 and self._spos > qlast + 2:
            events.append(ScanError("part_too_large", self._hdr_len + limit + 1))
            self._drop(limit + 1)
            self._state = _SEEK
            # Boundary hits at limit + 3 and + 4 were only tried as "--" forms.
            self._spos = qlast + 1 - (limit + 1)
            return True
        return False

    def _step_body_cl(self, events: list[Part | ScanError]) -> bool:
        take = min(self._need - len(self._pending), len(self._buf))
        if take <= 0:
            return False
        self._pending += self._buf[:take]
        del self._buf[:take]
        self._spos = self._hpos = self._hscan = 0
        if len(self._pending) < self._need:
            return False
        events.append(Part(self._headers, self._ctype, bytes(self._pending)))
        self._pending = bytearray()
        self._state = _AFTER_CL
        return True

    def _step_after_cl(self) -> bool:
        buf = self._buf
        i = 0
        n = len(buf)
        while i < n and buf[i] in (0x0D, 0x0A):
            i += 1
        del buf[:i]
        self._spos = self._hpos = self._hscan = 0
        if not buf:
            return False
        # The first byte after the body is a line start even without a line break.
        self._ls = True
        self._state = _SEEK
        return True
