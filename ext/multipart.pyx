"""Incremental scanner for multipart/x-mixed-replace streams (MJPEG over HTTP), sans-IO.

``MultipartScanner.feed(chunk)`` returns the parts that the chunk completes
(``Part``) and the parts it refuses (``ScanError``). The events are the same
however the stream is split, down to single bytes; bench/pymultipart.py is the
pure-Python twin of this module and must stay byte-for-byte equivalent.

Framing, tolerant of what cameras really send:

- The boundary is normalised: a leading "--" is stripped. A delimiter line is
  the boundary at the start of a line, optionally after "--", then either "--"
  (the closing delimiter, accepted at once: later data is ignored) or up to
  MAX_PADDING spaces or tabs and CRLF or LF. The start of a line is: after an
  LF, the start of the stream, or the first byte after a Content-Length body
  and the CR/LFs that follow it.
- Bytes before the first delimiter (a preamble) and between a Content-Length
  body and the next delimiter are dropped silently.
- The header block ends at the first empty line; it is limited to
  max_header_size bytes and max_headers lines. Names are lower-cased, names and
  values stripped.
- With Content-Length the body is exactly that many bytes, checked against
  max_part_size before any is held. Without it the body runs up to the line
  break before the next delimiter; only delimiters that would keep the body
  within max_part_size + 1 bytes are looked for, so the verdict on an
  oversized part never depends on how much data happened to be buffered.
- A refused part gives a ScanError and the scanner searches for the next
  delimiter, from the offending header line (it may itself be a delimiter) or
  from the end of the data it judged. ``discarded`` counts the bytes of the
  refused part (after its delimiter line) dropped when it was refused; what
  the resync drops afterwards is not counted.

Memory: at most max(max_header_size, max_part_size + len(boundary) +
MAX_PADDING + 8) bytes stay held between calls (``buffered``), plus one 64 KiB
slice of input while a call runs; the buffer's capacity is at most about twice
that. A Content-Length body is allocated at its declared size (already checked
against max_part_size) and filled straight from the caller's chunks. Searches
are incremental: a boundary hit is examined once, except the one at the very
end that waits for its line break.

Raw pointers are never bounds-checked by Cython, whatever the directives say,
so every index below is kept inside [_start, _end) of the buffer by explicit
comparisons; no function relies on boundscheck or wraparound.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdlib cimport free, malloc
from libc.string cimport memchr, memcpy, memmove

cdef extern from "<string.h>" nogil:
    # GNU extension; pyconfig.h defines _GNU_SOURCE before string.h is included.
    void *memmem(const void *haystack, size_t haystacklen, const void *needle, size_t needlelen)

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX

__all__ = ["MAX_PADDING", "MultipartScanner", "Part", "ScanError", "boundary_from_content_type"]

# Transport padding allowed between a boundary and its line break (RFC 2046 LWSP).
MAX_PADDING = 16
cdef Py_ssize_t _MAX_PADDING = MAX_PADDING

cdef enum:
    _SEEK = 0        # looking for a delimiter, dropping what precedes it
    _HEADERS = 1
    _BODY = 2        # no Content-Length: up to the next delimiter
    _BODY_CL = 3     # Content-Length: copied straight into the body
    _AFTER_CL = 4    # skipping CR/LF after a Content-Length body

cdef enum:
    _NOT_FOUND = 0
    _FOUND = 1
    _PARTIAL = 2     # a boundary at a line start whose line is not complete yet

cdef enum:
    _CL_MAX_DIGITS = 19      # fits in 64 bits unsigned
    _BOUNDARY_MAX = 70       # RFC 2046

cdef struct Hit:
    Py_ssize_t spos     # in: first boundary hit to examine; out: where to resume
    Py_ssize_t q        # start of the delimiter line (its "--" if any)
    Py_ssize_t end      # just past the delimiter line
    bint closing

# Input goes into the buffer a slice at a time so that one huge chunk cannot
# inflate memory beyond the limits plus this much.
cdef Py_ssize_t _SLICE = 1 << 16
cdef Py_ssize_t _INITIAL_CAP = 1 << 12
# Searches shorter than this are not worth the GIL round trip.
cdef Py_ssize_t _NOGIL_MIN = 1 << 15


@cython.final
cdef class Part:
    """One complete part: headers (lower-cased names), Content-Type and body."""

    cdef readonly tuple headers
    cdef readonly object content_type
    cdef readonly bytes body

    def __init__(self, tuple headers not None, bytes content_type, bytes body not None):
        self.headers = headers
        self.content_type = content_type
        self.body = body

    def __repr__(self):
        return (f"Part(content_type={self.content_type!r}, body=<{len(self.body)} bytes>, "
                f"headers={self.headers!r})")

    def __eq__(self, other):
        if not isinstance(other, Part):
            return NotImplemented
        cdef Part o = <Part>other
        return self.headers == o.headers and self.content_type == o.content_type and self.body == o.body

    def __hash__(self):
        return hash((self.headers, self.content_type, self.body))


@cython.final
cdef class ScanError:
    """A refused part; the scanner resynchronises on the next delimiter."""

    cdef readonly str reason
    cdef readonly Py_ssize_t discarded

    def __init__(self, str reason not None, Py_ssize_t discarded):
        self.reason = reason
        self.discarded = discarded

    def __repr__(self):
        return f"ScanError(reason={self.reason!r}, discarded={self.discarded})"

    def __eq__(self, other):
        if not isinstance(other, ScanError):
            return NotImplemented
        cdef ScanError o = <ScanError>other
        return self.reason == o.reason and self.discarded == o.discarded

    def __hash__(self):
        return hash((self.reason, self.discarded))


cdef inline Part _new_part(tuple headers, object ctype, bytes body):
    cdef Part p = Part.__new__(Part)
    p.headers = headers
    p.content_type = ctype
    p.body = body
    return p


cdef inline ScanError _new_error(str reason, Py_ssize_t discarded):
    cdef ScanError e = ScanError.__new__(ScanError)
    e.reason = reason
    e.discarded = discarded
    return e


cdef inline bint _is_space(char c) noexcept nogil:
    # The set bytes.strip() removes, so that the Python twin agrees.
    return c == c' ' or c == c'\t' or c == c'\r' or c == c'\n' or c == c'\x0b' or c == c'\x0c'


cdef inline bint _line_start(const char *buf, Py_ssize_t start, bint ls, Py_ssize_t q) noexcept nogil:
    # Callers guarantee start <= q; the byte before start is summarised by ls.
    if q == start:
        return ls
    return buf[q - 1] == c'\n'


cdef int _suffix(const char *buf, Py_ssize_t i, Py_ssize_t end, Hit *hit) noexcept nogil:
    """Classify what follows a boundary ending at i, reading only buf[i:end]."""
    cdef Py_ssize_t j
    if i >= end:
        return _PARTIAL
    if buf[i] == c'-':
        if i + 1 >= end:
            return _PARTIAL
        if buf[i + 1] == c'-':
            hit.end = i + 2
            hit.closing = True
            return _FOUND
        return _NOT_FOUND
    j = i
    while j < end and (buf[j] == c' ' or buf[j] == c'\t'):
        if j - i >= _MAX_PADDING:
            return _NOT_FOUND
        j += 1
    if j >= end:
        return _PARTIAL
    if buf[j] == c'\n':
        hit.end = j + 1
        hit.closing = False
        return _FOUND
    if buf[j] == c'\r':
        if j + 1 >= end:
            return _PARTIAL
        if buf[j + 1] == c'\n':
            hit.end = j + 2
            hit.closing = False
            return _FOUND
    return _NOT_FOUND


cdef int _find_delimiter(const char *buf, Py_ssize_t start, Py_ssize_t end, bint ls,
                         const char *b, Py_ssize_t blen, Py_ssize_t qlast, Hit *hit) noexcept nogil:
    """First delimiter line starting in [start, qlast] whose boundary is at or after hit.spos.

    Requires start <= hit.spos <= end and blen >= 1. Boundary hits are visited in
    order and each is examined once; hit.spos is left at the first one not yet
    decided, so the next call carries on from there.
    """
    cdef Py_ssize_t last = end - blen
    cdef Py_ssize_t p = hit.spos
    cdef Py_ssize_t q
    cdef const char *h
    cdef int r
    if qlast <= last - 2:
        last = qlast + 2   # a "--" form starting at qlast has its boundary at qlast + 2
    while p <= last:
        h = <const char *>memmem(buf + p, <size_t>(last + blen - p), b, <size_t>blen)
        if h == NULL:
            break
        p = h - buf
        q = -1
        if p - 2 >= start and buf[p - 2] == c'-' and buf[p - 1] == c'-' and _line_start(buf, start, ls, p - 2):
            q = p - 2
        elif _line_start(buf, start, ls, p):
            q = p
        if q >= 0 and q <= qlast:
            r = _suffix(buf, p + blen, end, hit)
            if r == _FOUND:
                hit.q = q
                return _FOUND
            if r == _PARTIAL:
                hit.spos = p
                return _PARTIAL
        p += 1
    if last + 1 > hit.spos:
        hit.spos = last + 1
    return _NOT_FOUND


@cython.final
cdef class MultipartScanner:
    """Incremental sans-IO scanner of a multipart/x-mixed-replace byte stream."""

    cdef bytes _boundary
    cdef Py_ssize_t _max_part, _max_header, _max_headers
    # Held bytes are _buf[_start:_end]; _start is where the current state's region
    # begins (bytes searched while discarding, a header block, a body).
    cdef char *_buf
    cdef Py_ssize_t _cap, _start, _end
    cdef bint _ls               # is _buf[_start] at the start of a line?
    cdef int _state
    cdef bint _closed, _busy
    cdef Py_ssize_t _spos       # next boundary hit to examine
    cdef Py_ssize_t _hpos       # next header line
    cdef Py_ssize_t _hscan      # no LF in the current header line before this
    cdef Py_ssize_t _hdr_len    # header block length of the part being read
    cdef list _hdrs
    cdef tuple _headers
    cdef object _ctype
    cdef bytes _pending         # Content-Length body, filled in place
    cdef Py_ssize_t _need, _filled

    def __cinit__(self, *args, **kwargs):
        self._buf = <char *>malloc(_INITIAL_CAP)
        if self._buf == NULL:
            raise MemoryError()
        self._cap = _INITIAL_CAP

    def __dealloc__(self):
        free(self._buf)
        self._buf = NULL

    def __init__(self, boundary, *, Py_ssize_t max_part_size=4 << 20,
                 Py_ssize_t max_header_size=8192, Py_ssize_t max_headers=32):
        if not 0 <= max_part_size <= (1 << 32):
            raise ValueError("max_part_size must be 0 to 2**32")
        if not 1 <= max_header_size <= (1 << 32):
            raise ValueError("max_header_size must be 1 to 2**32")
        if not 0 <= max_headers <= (1 << 16):
            raise ValueError("max_headers must be 0 to 65536")
        b = bytes(boundary)
        if b.startswith(b"--"):
            b = b[2:]
        if not 1 <= len(b) <= _BOUNDARY_MAX:
            raise ValueError(f"boundary must be 1 to {_BOUNDARY_MAX} bytes, got {len(b)}")
        if b"\r" in b or b"\n" in b:
            raise ValueError("boundary must not contain CR or LF")
        self._boundary = b
        self._max_part = max_part_size
        self._max_header = max_header_size
        self._max_headers = max_headers
        self._start = self._end = 0
        self._ls = True   # the stream starts at a line start
        self._state = _SEEK
        self._closed = False
        self._busy = False
        self._spos = self._hpos = self._hscan = self._hdr_len = 0
        self._hdrs = []
        self._headers = ()
        self._ctype = None
        self._pending = None
        self._need = self._filled = 0

    @property
    def boundary(self):
        """The normalised boundary (no leading "--")."""
        return self._boundary

    @property
    def closed(self):
        """True once the closing delimiter was seen; later data is ignored."""
        return self._closed

    @property
    def buffered(self):
        """Bytes currently held."""
        return (self._end - self._start) + self._filled

    def feed(self, data):
        """Take the next chunk of the stream; return the parts completed or refused by it."""
        cdef Py_buffer view
        cdef list events = []
        if self._busy:
            # The GIL is released during long searches; a second thread must not
            # move the buffer under the first.
            raise RuntimeError("MultipartScanner.feed() called while another feed() is running")
        if self._boundary is None:
            raise RuntimeError("MultipartScanner.__init__() was not called")
        if self._closed:
            return events
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        self._busy = True
        try:
            self._feed(<const char *>view.buf, view.len, events)
        finally:
            self._busy = False
            PyBuffer_Release(&view)
        return events

    cdef int _feed(self, const char *data, Py_ssize_t n, list events) except -1:
        cdef Py_ssize_t ip = 0
        cdef Py_ssize_t take
        while ip < n and not self._closed:
            if self._state == _BODY_CL:
                # _run leaves this state only with an empty buffer: copy the body
                # from the caller's chunk into its bytes object, one copy in all.
                take = self._need - self._filled
                if take > n - ip:
                    take = n - ip
                memcpy(PyBytes_AS_STRING(self._pending) + self._filled, data + ip, <size_t>take)
                self._filled += take
                ip += take
                if self._filled == self._need:
                    self._finish_body_cl(events)
                continue
            take = n - ip
            if take > _SLICE:
                take = _SLICE
            self._append(data + ip, take)
            ip += take
            self._run(events)
        return 0

    cdef void _shift(self, Py_ssize_t k) noexcept:
        """Renumber offsets after the held bytes moved k places towards the front."""
        self._start -= k
        self._end -= k
        # Offsets of other states may be stale; they are reset on entry.
        self._spos = self._spos - k if self._spos > k else 0
        self._hpos = self._hpos - k if self._hpos > k else 0
        self._hscan = self._hscan - k if self._hscan > k else 0

    cdef int _append(self, const char *data, Py_ssize_t n) except -1:
        cdef Py_ssize_t held = self._end - self._start
        cdef Py_ssize_t newcap
        cdef char *nb
        if self._end + n > self._cap:
            if held + n <= self._cap // 2:
                # At least half the buffer is free after the move, so moves cost
                # O(1) per byte appended over time.
                if held > 0:
                    memmove(self._buf, self._buf + self._start, <size_t>held)
            else:
                newcap = 2 * (held + n)
                if newcap < 2 * self._cap:
                    newcap = 2 * self._cap
                nb = <char *>malloc(<size_t>newcap)
                if nb == NULL:
                    raise MemoryError()
                if held > 0:
                    memcpy(nb, self._buf + self._start, <size_t>held)
                free(self._buf)
                self._buf = nb
                self._cap = newcap
            self._shift(self._start)
        memcpy(self._buf + self._end, data, <size_t>n)
        self._end += n
        return 0

    cdef void _drop_to(self, Py_ssize_t pos) noexcept:
        """Forget held bytes before pos, remembering whether pos starts a line."""
        if pos <= self._start:
            return
        if pos > self._end:
            pos = self._end
        self._ls = self._buf[pos - 1] == c'\n'
        self._start = pos

    cdef int _find(self, Py_ssize_t qlast, Hit *hit) noexcept:
        cdef const char *buf = self._buf
        cdef const char *b = PyBytes_AS_STRING(self._boundary)
        cdef Py_ssize_t blen = len(self._boundary)
        cdef Py_ssize_t start = self._start
        cdef Py_ssize_t end = self._end
        cdef bint ls = self._ls
        cdef int r
        hit.spos = self._spos
        if end - hit.spos >= _NOGIL_MIN:
            with nogil:
                r = _find_delimiter(buf, start, end, ls, b, blen, qlast, hit)
        else:
            r = _find_delimiter(buf, start, end, ls, b, blen, qlast, hit)
        self._spos = hit.spos
        return r

    cdef int _run(self, list events) except -1:
        """Advance the state machine until it needs more data."""
        cdef int progress = 1
        while progress and not self._closed:
            if self._state == _SEEK:
                progress = self._step_seek()
            elif self._state == _HEADERS:
                progress = self._step_headers(events)
            elif self._state == _BODY:
                progress = self._step_body(events)
            elif self._state == _BODY_CL:
                progress = self._step_body_cl(events)
            else:
                progress = self._step_after_cl()
        return 0

    cdef int _after_delimiter(self, Py_ssize_t end, bint closing) except -1:
        if closing:
            self._closed = True
            self._start = self._end = 0
            self._pending = None
            self._filled = 0
            return 0
        self._drop_to(end)
        self._state = _HEADERS
        self._hpos = self._hscan = self._start
        self._hdrs = []
        return 0

    cdef void _resync(self, Py_ssize_t at) noexcept:
        """Drop up to at and search for the next delimiter from there."""
        if at > self._start:
            self._drop_to(at)
        else:
            self._ls = True   # every resync point is a line start
        self._state = _SEEK
        self._spos = self._start

    cdef int _step_seek(self) except -1:
        cdef Hit hit
        cdef int r = self._find(PY_SSIZE_T_MAX, &hit)
        if r == _FOUND:
            self._after_delimiter(hit.end, hit.closing)
            return 1
        # Keep the two bytes before the next hit for a "--" prefix; _ls stands for
        # the byte before those.
        self._drop_to(self._spos - 2)
        return 0

    cdef int _step_headers(self, list events) except -1:
        cdef const char *buf = self._buf
        cdef Py_ssize_t start = self._start
        cdef Py_ssize_t window = self._end
        cdef Py_ssize_t line, lf, stop, n0, n1, v0, v1, i
        cdef const char *p
        cdef bytes name
        cdef char *out
        if window - start > self._max_header:
            window = start + self._max_header
        while True:
            p = NULL
            if window > self._hscan:
                p = <const char *>memchr(buf + self._hscan, c'\n', <size_t>(window - self._hscan))
            if p == NULL:
                self._hscan = window
                if window - start >= self._max_header:
                    return self._refuse_headers(events, "headers_too_large", self._hpos)
                return 0
            lf = p - buf
            line = self._hpos
            self._hpos = self._hscan = lf + 1
            stop = lf
            if stop > line and buf[stop - 1] == c'\r':
                stop -= 1
            if stop == line:
                return self._end_headers(events)
            p = <const char *>memchr(buf + line, c':', <size_t>(stop - line))
            if p == NULL:
                return self._refuse_headers(events, "bad_header", line)
            n0 = line
            n1 = p - buf
            v0 = n1 + 1
            v1 = stop
            while n0 < n1 and _is_space(buf[n0]):
                n0 += 1
            while n1 > n0 and _is_space(buf[n1 - 1]):
                n1 -= 1
            if n0 == n1:
                return self._refuse_headers(events, "bad_header", line)
            if len(self._hdrs) >= self._max_headers:
                return self._refuse_headers(events, "too_many_headers", line)
            while v0 < v1 and _is_space(buf[v0]):
                v0 += 1
            while v1 > v0 and _is_space(buf[v1 - 1]):
                v1 -= 1
            name = PyBytes_FromStringAndSize(NULL, n1 - n0)
            out = PyBytes_AS_STRING(name)
            for i in range(n1 - n0):
                out[i] = buf[n0 + i] + 32 if c'A' <= buf[n0 + i] <= c'Z' else buf[n0 + i]
            self._hdrs.append((name, PyBytes_FromStringAndSize(buf + v0, v1 - v0)))

    cdef int _refuse_headers(self, list events, str reason, Py_ssize_t at) except -1:
        # Resync from the offending line: it may itself be the next delimiter.
        events.append(_new_error(reason, at - self._start))
        self._resync(at)
        return 1

    cdef int _end_headers(self, list events) except -1:
        cdef tuple hdrs = tuple(self._hdrs)
        cdef Py_ssize_t hdr_len = self._hpos - self._start
        cdef object ctype = None
        cdef bint bad = False, have_length = False
        cdef unsigned long long length = 0, value
        cdef bytes hname, hvalue
        cdef const char *v
        cdef Py_ssize_t n, i
        for hname, hvalue in hdrs:
            if hname == b"content-type":
                if ctype is None:
                    ctype = hvalue
            elif hname == b"content-length":
                n = len(hvalue)
                v = PyBytes_AS_STRING(hvalue)
                value = 0
                if n == 0 or n > _CL_MAX_DIGITS:
                    bad = True
                for i in range(n):
                    if not c'0' <= v[i] <= c'9':
                        bad = True
                        break
                    value = value * 10 + <unsigned long long>(v[i] - c'0')
                if bad:
                    continue
                if not have_length:
                    have_length = True
                    length = value
                elif value != length:
                    bad = True
        self._hdr_len = hdr_len
        self._drop_to(self._hpos)
        self._ls = True
        if bad:
            events.append(_new_error("bad_content_length", hdr_len))
            self._resync(self._start)
        elif not have_length:
            self._headers = hdrs
            self._ctype = ctype
            self._state = _BODY
            self._spos = self._start
        elif length > <unsigned long long>self._max_part:
            # Refused before a single body byte is held.
            events.append(_new_error("part_too_large", hdr_len))
            self._resync(self._start)
        elif length == 0:
            events.append(_new_part(hdrs, ctype, b""))
            self._state = _AFTER_CL
        else:
            self._headers = hdrs
            self._ctype = ctype
            self._pending = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>length)
            self._need = <Py_ssize_t>length
            self._filled = 0
            self._state = _BODY_CL
        return 1

    cdef int _step_body(self, list events) except -1:
        cdef Hit hit
        cdef Py_ssize_t start = self._start
        cdef Py_ssize_t limit = self._max_part
        # Only delimiters that keep the body within limit + 1 bytes are looked for,
        # so the verdict does not depend on how much data is buffered.
        cdef Py_ssize_t qlast = start + limit + 2
        cdef Py_ssize_t size
        cdef int r = self._find(qlast, &hit)
        if r == _FOUND:
            size = hit.q - start
            if size > 0:
                # Strip the line break before the delimiter (its LF is at q - 1).
                size -= 1
                if hit.q - 2 >= start and self._buf[hit.q - 2] == c'\r':
                    size -= 1
            if size <= limit:
                events.append(_new_part(self._headers, self._ctype,
                                        PyBytes_FromStringAndSize(self._buf + start, size)))
            else:
                events.append(_new_error("part_too_large", self._hdr_len + size))
            self._after_delimiter(hit.end, hit.closing)
            return 1
        if r == _NOT_FOUND and self._spos > qlast + 2:
            events.append(_new_error("part_too_large", self._hdr_len + limit + 1))
            self._drop_to(start + limit + 1)
            self._state = _SEEK
            # Boundary hits at qlast + 1 and + 2 were only tried in their "--" form.
            self._spos = qlast + 1
            return 1
        return 0

    cdef int _step_body_cl(self, list events) except -1:
        cdef Py_ssize_t take = self._need - self._filled
        if take > self._end - self._start:
            take = self._end - self._start
        if take <= 0:
            return 0
        memcpy(PyBytes_AS_STRING(self._pending) + self._filled, self._buf + self._start, <size_t>take)
        self._filled += take
        self._start += take
        if self._filled < self._need:
            return 0
        return self._finish_body_cl(events)

    cdef int _finish_body_cl(self, list events) except -1:
        events.append(_new_part(self._headers, self._ctype, self._pending))
        self._pending = None
        self._filled = self._need = 0
        self._state = _AFTER_CL
        return 1

    cdef int _step_after_cl(self) noexcept:
        cdef Py_ssize_t i = self._start
        while i < self._end and (self._buf[i] == c'\r' or self._buf[i] == c'\n'):
            i += 1
        self._start = i
        if i == self._end:
            return 0
        # The first byte after the body is a line start even without a line break.
        self._ls = True
        self._state = _SEEK
        self._spos = i
        return 1


def boundary_from_content_type(value):
    """The boundary parameter of a multipart Content-Type, without a leading "--"."""
    cdef bytes raw
    cdef Py_ssize_t i, j, n, eq, semi, end
    if isinstance(value, str):
        try:
            raw = value.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError("Content-Type is not ASCII") from None
    else:
        raw = bytes(value)
    n = len(raw)
    i = raw.find(b";")
    while 0 <= i < n:
        i += 1
        eq = raw.find(b"=", i)
        semi = raw.find(b";", i)
        if eq < 0 or 0 <= semi < eq:
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
            val = raw[j:n if end < 0 else end].strip()
            i = end
        if name == b"boundary":
            return _check_boundary(val)
    raise ValueError("no boundary parameter")


cdef bytes _check_boundary(bytes val):
    if val.startswith(b"--"):
        val = val[2:]
    if not 1 <= len(val) <= _BOUNDARY_MAX:
        raise ValueError(f"boundary must be 1 to {_BOUNDARY_MAX} characters, got {len(val)}")
    # RFC 2046 bchars are printable ASCII and space, never a trailing space.
    for c in val:
        if c < 0x20 or c > 0x7E:
            raise ValueError(f"invalid character in boundary {val!r}")
    if val.endswith(b" "):
        raise ValueError(f"invalid character in boundary {val!r}")
    return val
