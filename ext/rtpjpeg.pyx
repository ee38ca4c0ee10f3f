"""RFC 2435 (RTP payload format for JPEG): JPEG header walk, packetizer, depacketizer. Sans-IO.

The gateway forwards a camera's JPEG as RTP/JPEG without decoding it. RFC 2435
carries only the entropy-coded scan data; the receiver rebuilds every header
from the 8-byte main header (type, size, Q), the restart marker header and the
in-band quantization tables. So a frame is carriable only when the headers the
receiver will rebuild decode the scan exactly as the original headers did:

- one baseline (SOF0) frame, 8-bit samples, one interleaved scan of Y, Cb, Cr in
  that order, Y sampled 2x1 (type 0, "4:2:2") or 2x2 (type 1, "4:2:0"), chroma
  1x1;
- 8-bit quantization tables, Cb and Cr sharing one (the receiver has two slots);
- the Annex K Huffman tables, the ones the receiver writes: a DHT is compared
  with them table by table, by content, for the role (luma or chroma) each
  component gives it; slots a frame uses without defining them hold the
  standard tables implicitly (slot 0 luma, slot 1 chroma), as for AVI1 MJPEG;
- width and height multiples of 8 up to 2040 (one byte of 8-pixel units).

``walk_jpeg`` checks all of that in one pass over the header segments (the scan
is never read, only its end is located) and gives a reason from a fixed
vocabulary when the frame cannot be carried; malformed headers raise
ValueError. ``RtpJpegPacketizer.packetize`` turns a carriable frame into one
buffer of back-to-back payloads, each exactly ``payload_size`` bytes but the
last, so that a sender slices payloads by offset and writes only the 12-byte
RTP header per viewer. The packetizer always sends Q=255 (tables in band, in
every frame's first packet) and, for types 64/65, F=L=1 with count 0x3FFF since
fragments do not follow restart intervals.

``RtpJpegDepacketizer`` reassembles frames from packets and rebuilds decodable
JPEGs (SOI, one DQT, SOF0 with JFIF component ids 1-3, the standard DHT, DRI,
SOS, the scan, EOI; EOI is always appended, a second one after a sender's is
harmless). What cannot be trusted is dropped a whole frame at a time and
counted once per frame, by the first reason met:

- seq_gap: a packet of the frame is missing or out of order (an exact duplicate
  of the previous packet is ignored instead);
- offset: a fragment offset that does not continue the frame, a frame whose
  first packet never came (without a sequence gap), or a new timestamp before
  the marked packet that should have ended the frame;
- too_large: the rebuilt frame would exceed max_frame_size (checked before copying);
- bad_header: a truncated or inconsistent header (type, Q, size or restart
  interval changing mid-frame, width or height 0, a quantization table header
  that is short, or says length 0 with no tables sent before for that Q, or Q
  255), or a frame with no scan data;
- unsupported_type: anything but types 0, 1, 64, 65;
- reserved_q: Q 0 and 100-127 (1-99 derive tables per RFC 2435 Appendix A,
  128-254 are kept for later frames that send length 0, 255 are per frame).

After a drop the rest of that frame (same timestamp) is ignored silently.

Raw pointers are never bounds-checked by Cython, whatever the directives say,
so every read below is preceded by an explicit length comparison; no function
relies on boundscheck or wraparound.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t, uint32_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcmp, memcpy, memset

from gateway._ext import jpegenc as _jpegenc

__all__ = [
    "DROP_REASONS",
    "MAX_PAYLOAD_SIZE",
    "MIN_PAYLOAD_SIZE",
    "REASONS",
    "JpegInfo",
    "NotCarriable",
    "Packets",
    "RtpJpegDepacketizer",
    "RtpJpegPacketizer",
    "make_qtables",
    "walk_jpeg",
]

# The first packet must hold its headers (8 + 4 + 4 + 128 bytes) and some scan
# data; 65000 keeps a payload plus IP/UDP/RTP headers inside one UDP datagram.
MIN_PAYLOAD_SIZE = 200
MAX_PAYLOAD_SIZE = 65000
cdef Py_ssize_t _MIN_PAYLOAD = MIN_PAYLOAD_SIZE
cdef Py_ssize_t _MAX_PAYLOAD = MAX_PAYLOAD_SIZE

REASONS = (
    "progressive", "not_baseline", "precision", "grayscale", "sampling",
    "qtable_16bit", "qtable_layout", "huffman", "size",
)
DROP_REASONS = ("seq_gap", "offset", "too_large", "bad_header", "unsupported_type", "reserved_q")

cdef enum:
    _MAX_DIM = 2040                 # 255 units of 8 pixels
    _MAX_SCAN = 1 << 24             # the fragment offset is 24 bits
    _TRAILER_SLACK = 32             # cameras pad frames with CR/LF/NUL after EOI
    _MAIN_HDR = 8
    _RESTART_HDR = 4
    _QT_HDR = 4 + 128               # quantization table header and two 8-bit tables
    _NOGIL_MIN = 256 * 1024         # see packetize

# Depacketizer drop reasons, indexes into its counters (same order as DROP_REASONS).
cdef enum:
    _R_SEQ_GAP = 0
    _R_OFFSET = 1
    _R_TOO_LARGE = 2
    _R_BAD_HEADER = 3
    _R_UNSUPPORTED_TYPE = 4
    _R_RESERVED_Q = 5
    _N_REASONS = 6

cdef enum:
    _IDLE = 0           # the next packet must start a frame (fragment offset 0)
    _ASSEMBLING = 1
    _SKIPPING = 2       # discarding the rest of a dropped frame (same timestamp)


class NotCarriable(ValueError):
    """RFC 2435 cannot carry this JPEG as it is; ``reason`` says why (see REASONS)."""

    def __init__(self, reason):
        super().__init__(f"RFC 2435 cannot carry this frame: {reason}")
        self.reason = reason


# --------------------------------------------------------------------------------------
# Tables

# T.81 Annex K.1, Tables K.1 and K.2, natural (row-major) order: RFC 2435 Appendix A.
cdef int _LUMA_Q[64]
cdef int _CHROMA_Q[64]
# Natural index of each zigzag position (T.81 Figure A.6): DQT stores zigzag order.
cdef int _ZIGZAG[64]

_LUMA_Q_INIT = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)
_CHROMA_Q_INIT = (
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
)

# Standard Huffman tables as they appear in a DHT (16 counts, then the symbols),
# by role: 0 DC luma, 1 AC luma, 2 DC chroma, 3 AC chroma.
cdef uint8_t _STD_HUFF[4][16 + 256]
cdef Py_ssize_t _STD_HUFF_LEN[4]
# The DHT segment the depacketizer writes: all four, luma in slot 0, chroma in slot 1.
cdef uint8_t _DHT[4 + 4 * 17 + 2 * 12 + 2 * 162]
cdef Py_ssize_t _DHT_LEN = 0


def _init_tables():
    global _DHT_LEN
    cdef int i, k, v
    for i in range(64):
        _LUMA_Q[i] = _LUMA_Q_INIT[i]
        _CHROMA_Q[i] = _CHROMA_Q_INIT[i]
    # Walk the anti-diagonals, alternating direction (T.81 Figure 5).
    k = 0
    for v in range(15):
        cells = [(r, v - r) for r in range(8) if 0 <= v - r < 8]
        if v % 2 == 0:
            cells.reverse()          # even diagonals run up-right: row decreasing
        for r, c in cells:
            _ZIGZAG[k] = r * 8 + c
            k += 1
    specs = (
        (_jpegenc.DC_LUMA_BITS, _jpegenc.DC_LUMA_VALS, 0x00),
        (_jpegenc.AC_LUMA_BITS, _jpegenc.AC_LUMA_VALS, 0x10),
        (_jpegenc.DC_CHROMA_BITS, _jpegenc.DC_CHROMA_VALS, 0x01),
        (_jpegenc.AC_CHROMA_BITS, _jpegenc.AC_CHROMA_VALS, 0x11),
    )
    body = b"".join(bytes([tcth]) + bits + vals for bits, vals, tcth in specs)
    segment = b"\xff\xc4" + (len(body) + 2).to_bytes(2, "big") + body
    if len(segment) != sizeof(_DHT):
        raise ImportError("jpegenc's Huffman tables are not the Annex K ones")
    for i in range(len(segment)):
        _DHT[i] = segment[i]
    _DHT_LEN = len(segment)
    for role, (bits, vals, _) in enumerate(specs):
        table = bits + vals
        for i in range(len(table)):
            _STD_HUFF[role][i] = table[i]
        _STD_HUFF_LEN[role] = len(table)


_init_tables()


cdef void _make_tables(int q, uint8_t* out) noexcept nogil:
    # RFC 2435 Appendix A MakeTables, written in zigzag order as DQT stores tables
    # (the RFC's listing copies them in natural order, a known erratum that
    # GStreamer and FFmpeg also correct). Same scaling as the IJG quality setting.
    cdef int i, lq, cq
    cdef int factor = 1 if q < 1 else (99 if q > 99 else q)
    cdef int scale = 5000 // factor if factor < 50 else 200 - factor * 2
    for i in range(64):
        lq = (_LUMA_Q[_ZIGZAG[i]] * scale + 50) // 100
        cq = (_CHROMA_Q[_ZIGZAG[i]] * scale + 50) // 100
        out[i] = 1 if lq < 1 else (255 if lq > 255 else lq)
        out[64 + i] = 1 if cq < 1 else (255 if cq > 255 else cq)


def make_qtables(int q):
    """The 128 bytes (luma, chroma; zigzag order) RFC 2435 Appendix A derives from Q 1..99."""
    if not 1 <= q <= 99:
        raise ValueError(f"Q must be in 1..99 to derive tables, got {q}")
    cdef uint8_t out[128]
    _make_tables(q, out)
    return PyBytes_FromStringAndSize(<char*>out, 128)


# --------------------------------------------------------------------------------------
# JPEG walk

cdef struct Component:
    int id
    int hv          # horizontal << 4 | vertical sampling factor
    int tq

cdef struct Walk:
    int sof             # SOFn marker, 0 before one is seen
    int precision
    int width
    int height
    int nf
    Component comp[4]
    int ns
    int scan_comp[4]    # index into comp of each scan component
    int scan_td[4]
    int scan_ta[4]
    int ss
    int se
    int ahal
    int dri
    Py_ssize_t qt_off[4]    # offset of each table's values in the frame, -1 if undefined
    int qt_prec[4]
    int huff[2][4]      # per class and slot: 0 undefined, 1 + role of the standard table, 5 other
    Py_ssize_t scan_offset
    Py_ssize_t scan_end


cdef str _marker_name(int m):
    if m == 0xC4:
        return "DHT"
    if m == 0xCC:
        return "DAC"
    if 0xC0 <= m <= 0xCF:
        return f"SOF{m - 0xC0}"
    if m == 0xDA:
        return "SOS"
    if m == 0xDB:
        return "DQT"
    if m == 0xDD:
        return "DRI"
    if 0xE0 <= m <= 0xEF:
        return f"APP{m - 0xE0}"
    if m == 0xFE:
        return "COM"
    return f"marker 0xFF{m:02X}"


cdef int _classify_huffman(const uint8_t* table, Py_ssize_t length, int tc) noexcept nogil:
    # Which standard table (by role) this DHT table is, if any; tc 0 DC, 1 AC.
    if length == _STD_HUFF_LEN[tc] and memcmp(table, _STD_HUFF[tc], length) == 0:
        return 1 + tc               # luma
    if length == _STD_HUFF_LEN[tc + 2] and memcmp(table, _STD_HUFF[tc + 2], length) == 0:
        return 3 + tc               # chroma
    return 5


cdef int _walk(const uint8_t* p, Py_ssize_t n, Walk* w) except -1:
    """Fill ``w`` from the header segments up to SOS; raise ValueError on malformed input."""
    cdef Py_ssize_t i, j, k, start, length, seg_off, seg_len, size, count
    cdef int m, pq, tq, tc, th, c, cs, e
    cdef const uint8_t* seg
    memset(w, 0, sizeof(Walk))
    for k in range(4):
        w.qt_off[k] = -1
    if n < 2 or p[0] != 0xFF or p[1] != 0xD8:
        raise ValueError("no SOI marker at offset 0")
    i = 2
    while True:
        if i >= n:
            raise ValueError(f"the frame ends at offset {n} before any SOS marker")
        if p[i] != 0xFF:
            raise ValueError(f"expected a marker at offset {i}, found byte 0x{p[i]:02X}")
        j = i + 1
        while j < n and p[j] == 0xFF:     # fill bytes before a marker
            j += 1
        if j >= n:
            raise ValueError(f"the frame ends at offset {n} before any SOS marker")
        start = j - 1
        m = p[j]
        i = j + 1
        if m == 0x01 or 0xD0 <= m <= 0xD7:      # TEM, RSTn: no length
            continue
        if m == 0x00:
            raise ValueError(f"stuffed 0xFF00 outside the scan at offset {start}")
        if m == 0xD8:
            raise ValueError(f"second SOI marker at offset {start}")
        if m == 0xD9:
            raise ValueError(f"EOI marker before any SOS at offset {start}")
        if i + 2 > n:
            raise ValueError(
                f"{_marker_name(m)} length runs past the end of the frame at offset {start}"
            )
        length = (p[i] << 8) | p[i + 1]
        if length < 2:
            raise ValueError(f"{_marker_name(m)} length {length} is below 2 at offset {start}")
        if i + length > n:
            raise ValueError(
                f"{_marker_name(m)} length runs past the end of the frame at offset {start}"
            )
        seg_off = i + 2
        seg_len = length - 2
        seg = p + seg_off
        i += length

        if m == 0xDB:
            k = 0
            while k < seg_len:
                pq = seg[k] >> 4
                tq = seg[k] & 15
                if pq > 1:
                    raise ValueError(f"DQT table precision {pq} is not 0 or 1 at offset {start}")
                if tq > 3:
                    raise ValueError(f"DQT table id {tq} is above 3 at offset {start}")
                size = 64 * (pq + 1)
                if k + 1 + size > seg_len:
                    raise ValueError(
                        f"DQT table {tq} runs past the end of its segment at offset {start}"
                    )
                w.qt_off[tq] = seg_off + k + 1
                w.qt_prec[tq] = pq
                k += 1 + size
        elif m == 0xC4:
            k = 0
            while k < seg_len:
                tc = seg[k] >> 4
                th = seg[k] & 15
                if tc > 1 or th > 3:
                    raise ValueError(
                        f"DHT table class {tc} id {th} is not a valid destination at offset {start}"
                    )
                if k + 17 > seg_len:
                    raise ValueError(
                        f"DHT table counts run past the end of their segment at offset {start}"
                    )
                count = 0
                for c in range(16):
                    count += seg[k + 1 + c]
                if count > 256:
                    raise ValueError(f"DHT table has {count} codes, more than 256, at offset {start}")
                if k + 17 + count > seg_len:
                    raise ValueError(
                        f"DHT table symbols run past the end of their segment at offset {start}"
                    )
                w.huff[tc][th] = _classify_huffman(seg + k + 1, 16 + count, tc)
                k += 17 + count
        elif 0xC0 <= m <= 0xCF and m != 0xC4 and m != 0xC8 and m != 0xCC:
            if w.sof:
                raise ValueError(f"second SOF marker ({_marker_name(m)}) at offset {start}")
            if seg_len < 6:
                raise ValueError(f"{_marker_name(m)} segment is too short at offset {start}")
            w.sof = m
            w.precision = seg[0]
            w.height = (seg[1] << 8) | seg[2]
            w.width = (seg[3] << 8) | seg[4]
            w.nf = seg[5]
            if w.nf == 0:
                raise ValueError(f"{_marker_name(m)} declares no component at offset {start}")
            if seg_len != 6 + 3 * w.nf:
                raise ValueError(
                    f"{_marker_name(m)} length does not match its {w.nf} components "
                    f"at offset {start}"
                )
            if w.width == 0:
                raise ValueError(f"{_marker_name(m)} width is 0 at offset {start}")
            for c in range(min(w.nf, 4)):
                w.comp[c].id = seg[6 + 3 * c]
                w.comp[c].hv = seg[7 + 3 * c]
                w.comp[c].tq = seg[8 + 3 * c]
        elif m == 0xDD:
            if seg_len != 2:
                raise ValueError(f"DRI length {length} is not 4 at offset {start}")
            w.dri = (seg[0] << 8) | seg[1]
        elif m == 0xDA:
            if not w.sof:
                raise ValueError(f"SOS marker before any SOF at offset {start}")
            w.ns = seg[0] if seg_len >= 1 else 0
            if w.ns < 1 or w.ns > 4 or seg_len != 4 + 2 * w.ns:
                raise ValueError(
                    f"SOS length does not match its {w.ns} components at offset {start}"
                )
            for c in range(w.ns):
                cs = seg[1 + 2 * c]
                w.scan_comp[c] = -1
                for e in range(min(w.nf, 4)):
                    if w.comp[e].id == cs:
                        w.scan_comp[c] = e
                        break
                if w.scan_comp[c] < 0 and w.nf <= 4:
                    raise ValueError(
                        f"SOS names component {cs}, which the SOF does not declare, "
                        f"at offset {start}"
                    )
                w.scan_td[c] = seg[2 + 2 * c] >> 4
                w.scan_ta[c] = seg[2 + 2 * c] & 15
            w.ss = seg[1 + 2 * w.ns]
            w.se = seg[2 + 2 * w.ns]
            w.ahal = seg[3 + 2 * w.ns]
            if (w.sof == 0xC0 or w.sof == 0xC1) and (w.ss != 0 or w.se != 63 or w.ahal != 0):
                raise ValueError(
                    f"SOS of a sequential frame selects coefficients {w.ss}..{w.se} "
                    f"with approximation 0x{w.ahal:02X} at offset {start}"
                )
            w.scan_offset = i
            # The scan runs to EOI; look for it only near the end so that the scan
            # itself is never read (a scan cannot contain FF D9).
            w.scan_end = n
            if not (n - i >= 2 and p[n - 2] == 0xFF and p[n - 1] == 0xD9):
                k = n - 3
                while k >= i and k >= n - 2 - _TRAILER_SLACK:
                    if p[k] == 0xFF and p[k + 1] == 0xD9:
                        w.scan_end = k
                        break
                    k -= 1
            else:
                w.scan_end = n - 2
            if w.scan_end <= w.scan_offset:
                raise ValueError(f"no scan data after the SOS at offset {start}")
            return 0
        # APPn, COM and anything else with a length: skipped.


cdef inline bint _huff_ok(Walk* w, int tc, int th, int role) noexcept nogil:
    # role 0 luma, 1 chroma. An undefined slot 0 or 1 holds the standard table of
    # that slot's usual role, as decoders assume for DHT-less (AVI1) frames. SOS
    # selectors are 4-bit fields: ids above 3 name no table at all.
    if th > 3:
        return False
    cdef int state = w.huff[tc][th]
    if state == 0:
        return th == role
    return state == 1 + tc + 2 * role


cdef object _reason(Walk* w):
    """First reason RFC 2435 cannot carry the frame, or None; checked in REASONS order."""
    cdef int c
    cdef int m = w.sof
    if m == 0xC2 or m == 0xC6 or m == 0xCA or m == 0xCE:
        return "progressive"
    if m != 0xC0:
        return "not_baseline"     # extended, lossless, hierarchical, arithmetic
    if w.precision != 8:
        return "precision"
    if w.nf == 1:
        return "grayscale"
    if _rtp_type(w) < 0:
        return "sampling"
    for c in range(3):
        if w.comp[c].tq > 3 or w.qt_off[w.comp[c].tq] < 0:
            raise ValueError(
                f"component {w.comp[c].id} uses quantization table {w.comp[c].tq}, "
                "which no DQT defines"
            )
        if w.qt_prec[w.comp[c].tq]:
            return "qtable_16bit"
    if w.comp[1].tq != w.comp[2].tq:
        return "qtable_layout"
    for c in range(3):
        if not (
            _huff_ok(w, 0, w.scan_td[c], 0 if c == 0 else 1)
            and _huff_ok(w, 1, w.scan_ta[c], 0 if c == 0 else 1)
        ):
            return "huffman"
    if (
        w.width % 8 or w.height % 8 or w.height == 0
        or w.width > _MAX_DIM or w.height > _MAX_DIM
    ):
        return "size"
    return None


cdef int _rtp_type(Walk* w) noexcept nogil:
    # The RFC 2435 type of the component layout, -1 if no type describes it: one
    # interleaved scan of Y, Cb, Cr in SOF order, Y 2x1 (type 0) or 2x2 (type 1),
    # chroma 1x1. (FFmpeg's 4:2:2, Y 2x2 with chroma 1x2, is not type 0.)
    cdef int base
    if (
        w.nf != 3 or w.ns != 3
        or w.comp[1].hv != 0x11 or w.comp[2].hv != 0x11
        or w.scan_comp[0] != 0 or w.scan_comp[1] != 1 or w.scan_comp[2] != 2
    ):
        return -1
    if w.comp[0].hv == 0x21:
        base = 0
    elif w.comp[0].hv == 0x22:
        base = 1
    else:
        return -1
    return base + 64 if w.dri > 0 else base


@cython.final
cdef class JpegInfo:
    """What walk_jpeg learned from a frame's headers."""

    cdef readonly int width
    cdef readonly int height
    cdef readonly int rtp_type
    cdef readonly int restart_interval
    cdef readonly bytes qtables
    cdef readonly Py_ssize_t scan_offset
    cdef readonly Py_ssize_t scan_end
    cdef readonly object reason

    def __repr__(self):
        return (
            f"JpegInfo(width={self.width}, height={self.height}, rtp_type={self.rtp_type}, "
            f"restart_interval={self.restart_interval}, scan_offset={self.scan_offset}, "
            f"scan_end={self.scan_end}, reason={self.reason!r})"
        )


def walk_jpeg(data):
    """Walk a JPEG's header segments up to the scan; ValueError when they are malformed."""
    cdef Py_buffer view
    cdef Walk w
    cdef const uint8_t* p
    cdef JpegInfo info = JpegInfo.__new__(JpegInfo)
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        p = <const uint8_t*>view.buf
        _walk(p, view.len, &w)
        info.reason = _reason(&w)
        info.width = w.width
        info.height = w.height
        info.rtp_type = _rtp_type(&w)
        info.restart_interval = w.dri
        info.scan_offset = w.scan_offset
        info.scan_end = w.scan_end
        if info.reason is None:
            info.qtables = (
                PyBytes_FromStringAndSize(<const char*>p + w.qt_off[w.comp[0].tq], 64)
                + PyBytes_FromStringAndSize(<const char*>p + w.qt_off[w.comp[1].tq], 64)
            )
        else:
            info.qtables = b""
    finally:
        PyBuffer_Release(&view)
    return info


# --------------------------------------------------------------------------------------
# Packetizer

@cython.final
cdef class Packets:
    """The RTP/JPEG payloads of one frame, back to back in one buffer."""

    cdef readonly bytes data
    cdef readonly Py_ssize_t payload_size
    cdef readonly int width
    cdef readonly int height
    cdef readonly int rtp_type
    cdef Py_ssize_t _count
    cdef object _view

    def __init__(self):
        raise TypeError("Packets are made by RtpJpegPacketizer.packetize")

    def __len__(self):
        return self._count

    def __getitem__(self, Py_ssize_t i):
        if i < 0:
            i += self._count
        if i < 0 or i >= self._count:
            raise IndexError(f"packet index out of range (0..{self._count - 1})")
        if self._view is None:
            self._view = memoryview(self.data)
        cdef Py_ssize_t start = i * self.payload_size
        return self._view[start:min(start + self.payload_size, len(self.data))]

    def __iter__(self):
        cdef Py_ssize_t i
        for i in range(self._count):
            yield self[i]

    def __repr__(self):
        return (
            f"Packets({self._count} x {self.payload_size} B, {len(self.data)} B, "
            f"type {self.rtp_type}, {self.width}x{self.height})"
        )


@cython.cdivision(True)
cdef void _fill(
    uint8_t* o, const uint8_t* scan, Py_ssize_t scan_len, Py_ssize_t count,
    Py_ssize_t payload_size, const uint8_t* head, Py_ssize_t head_len,
    const uint8_t* luma, const uint8_t* chroma,
) noexcept nogil:
    # head: the main header (offset bytes patched here) and the restart header.
    cdef Py_ssize_t k, pos = 0, off = 0, chunk, room
    for k in range(count):
        memcpy(o + pos, head, head_len)
        o[pos + 1] = <uint8_t>(off >> 16)
        o[pos + 2] = <uint8_t>(off >> 8)
        o[pos + 3] = <uint8_t>off
        pos += head_len
        room = payload_size - head_len
        if k == 0:
            o[pos] = 0          # MBZ
            o[pos + 1] = 0      # precision: both tables 8-bit
            o[pos + 2] = 0
            o[pos + 3] = 128    # length
            memcpy(o + pos + 4, luma, 64)
            memcpy(o + pos + 68, chroma, 64)
            pos += _QT_HDR
            room -= _QT_HDR
        chunk = scan_len - off
        if chunk > room:
            chunk = room
        memcpy(o + pos, scan + off, chunk)
        pos += chunk
        off += chunk


@cython.final
cdef class RtpJpegPacketizer:
    """Cuts carriable JPEG frames into RFC 2435 payloads of payload_size bytes."""

    cdef readonly Py_ssize_t payload_size

    def __init__(self, Py_ssize_t payload_size=1400):
        if not _MIN_PAYLOAD <= payload_size <= _MAX_PAYLOAD:
            raise ValueError(
                f"payload_size must be in {MIN_PAYLOAD_SIZE}..{MAX_PAYLOAD_SIZE}, "
                f"got {payload_size}"
            )
        self.payload_size = payload_size

    @cython.cdivision(True)
    def packetize(self, data):
        """All payloads of one frame; NotCarriable if RFC 2435 cannot carry it as it is."""
        cdef Py_buffer view
        cdef Walk w
        cdef const uint8_t* p
        cdef const uint8_t* luma
        cdef const uint8_t* chroma
        cdef uint8_t* o
        cdef uint8_t head[_MAIN_HDR + _RESTART_HDR]
        cdef Py_ssize_t head_len, scan_len, first_room, room, count, total
        cdef int rtp_type
        cdef bytes out
        cdef Packets packets
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            p = <const uint8_t*>view.buf
            _walk(p, view.len, &w)
            reason = _reason(&w)
            if reason is not None:
                raise NotCarriable(reason)
            scan_len = w.scan_end - w.scan_offset
            if scan_len > _MAX_SCAN:
                raise ValueError(
                    f"scan data of {scan_len} bytes is beyond the 24-bit fragment offset"
                )
            rtp_type = _rtp_type(&w)
            head[0] = 0                 # type-specific
            head[4] = <uint8_t>rtp_type
            head[5] = 255               # Q: tables in band, may change every frame
            head[6] = <uint8_t>(w.width // 8)
            head[7] = <uint8_t>(w.height // 8)
            head_len = _MAIN_HDR
            if w.dri > 0:
                # F = L = 1 and count 0x3FFF: fragments are not aligned to restart
                # intervals, so the receiver must reassemble the whole frame.
                head[8] = <uint8_t>(w.dri >> 8)
                head[9] = <uint8_t>w.dri
                head[10] = 0xFF
                head[11] = 0xFF
                head_len += _RESTART_HDR
            room = self.payload_size - head_len
            first_room = room - _QT_HDR
            count = 1
            if scan_len > first_room:
                count += (scan_len - first_room + room - 1) // room
            total = count * head_len + _QT_HDR + scan_len
            out = PyBytes_FromStringAndSize(NULL, total)
            # Releasing the GIL costs little, but getting it back behind a busy
            # thread can take a switch interval (5 ms): worth it only for big copies.
            o = <uint8_t*>PyBytes_AS_STRING(out)
            luma = p + w.qt_off[w.comp[0].tq]
            chroma = p + w.qt_off[w.comp[1].tq]
            if scan_len >= _NOGIL_MIN:
                with nogil:
                    _fill(o, p + w.scan_offset, scan_len, count, self.payload_size,
                          head, head_len, luma, chroma)
            else:
                _fill(o, p + w.scan_offset, scan_len, count, self.payload_size,
                      head, head_len, luma, chroma)
        finally:
            PyBuffer_Release(&view)
        packets = Packets.__new__(Packets)
        packets.data = out
        packets.payload_size = self.payload_size
        packets.width = w.width
        packets.height = w.height
        packets.rtp_type = rtp_type
        packets._count = count
        return packets


# --------------------------------------------------------------------------------------
# Depacketizer

# Rebuilt header pieces that do not depend on the frame.
cdef enum:
    _SOF_LEN = 19
    _SOS_LEN = 14
    _DRI_LEN = 6
    _MIN_FRAME_LIMIT = 1024      # above the largest rebuilt header (about 720 bytes)
    _MAX_FRAME_LIMIT = 1 << 30
    _INITIAL_CAPACITY = 64 * 1024


@cython.final
cdef class RtpJpegDepacketizer:
    """Reassembles RFC 2435 packets into JPEG frames; bounded by max_frame_size."""

    cdef readonly Py_ssize_t max_frame_size
    cdef readonly Py_ssize_t frames
    cdef Py_ssize_t _drops[_N_REASONS]
    cdef int _state
    cdef bint _have_seq
    cdef int _last_seq
    cdef uint32_t _ts
    cdef uint32_t _skip_ts
    # Frame being assembled: its header fields, tables and scan data.
    cdef int _type
    cdef int _q
    cdef int _width8
    cdef int _height8
    cdef int _dri
    cdef int _prec
    cdef uint8_t _qt[256]
    cdef Py_ssize_t _hdr_len
    cdef uint8_t* _buf
    cdef Py_ssize_t _cap
    cdef Py_ssize_t _len
    cdef dict _qcache    # Q 128..254 -> (precision, tables): RFC 2435 4.2 static tables

    def __cinit__(self):
        self._buf = NULL

    def __init__(self, Py_ssize_t max_frame_size=4 << 20):
        if not _MIN_FRAME_LIMIT <= max_frame_size <= _MAX_FRAME_LIMIT:
            raise ValueError(
                f"max_frame_size must be in {_MIN_FRAME_LIMIT}..{_MAX_FRAME_LIMIT}, "
                f"got {max_frame_size}"
            )
        self.max_frame_size = max_frame_size
        self._qcache = {}
        self.reset()

    def __dealloc__(self):
        free(self._buf)

    def reset(self):
        """Forget the partial frame and the sequence state (counters are kept)."""
        self._state = _IDLE
        self._have_seq = False
        self._len = 0

    @property
    def dropped(self):
        """Frames dropped, by reason (every reason of DROP_REASONS, zero included)."""
        return {name: self._drops[k] for k, name in enumerate(DROP_REASONS)}

    @property
    def buffered(self):
        """Scan bytes held for the frame being assembled."""
        return self._len if self._state == _ASSEMBLING else 0

    @property
    def capacity(self):
        """Bytes allocated for reassembly (at most max_frame_size)."""
        return self._cap

    cdef void _fail(self, int reason, uint32_t ts, bint marker) noexcept:
        # Drop the frame this packet belongs to and ignore the rest of it.
        self._drops[reason] += 1
        self._len = 0
        if marker:
            self._state = _IDLE
        else:
            self._state = _SKIPPING
            self._skip_ts = ts

    cdef int _append(self, const uint8_t* data, Py_ssize_t n) except -1:
        cdef Py_ssize_t need = self._len + n, cap
        cdef uint8_t* grown
        if need > self._cap:
            cap = max(need, min(2 * self._cap, self.max_frame_size), _INITIAL_CAPACITY)
            cap = min(cap, self.max_frame_size)
            grown = <uint8_t*>realloc(self._buf, cap)
            if grown == NULL:
                raise MemoryError()
            self._buf = grown
            self._cap = cap
        memcpy(self._buf + self._len, data, n)
        self._len = need
        return 0

    def push(self, int seq, long long timestamp, bint marker, payload):
        """Take one packet's payload; return a complete JPEG when the marker bit ends a frame."""
        cdef Py_buffer view
        cdef const uint8_t* p
        cdef Py_ssize_t n, pos, length, need, s0, s1
        cdef int type_, q, w8, h8, dri, prec
        cdef uint32_t ts, off
        cdef bint gap
        cdef bytes tables
        if not 0 <= seq <= 0xFFFF:
            raise ValueError(f"seq must be in 0..65535, got {seq}")
        if not 0 <= timestamp <= 0xFFFFFFFF:
            raise ValueError(f"timestamp must be in 0..2**32-1, got {timestamp}")
        ts = <uint32_t>timestamp
        if self._have_seq and seq == self._last_seq:
            return None             # a duplicate: the copy already counted
        gap = self._have_seq and seq != ((self._last_seq + 1) & 0xFFFF)
        self._have_seq = True
        self._last_seq = seq

        if self._state == _SKIPPING:
            if ts == self._skip_ts:
                if marker:
                    self._state = _IDLE
                return None
            self._state = _IDLE
        elif self._state == _ASSEMBLING:
            if gap:
                # Packets of this frame are missing (lost or reordered).
                self._drops[_R_SEQ_GAP] += 1
                self._state = _IDLE
                self._len = 0
                if ts == self._ts:
                    if not marker:
                        self._state = _SKIPPING
                        self._skip_ts = ts
                    return None
            elif ts != self._ts:
                # A new frame began but the last one never ended: the sender did
                # not mark its last packet, so its fragments do not make a frame.
                self._drops[_R_OFFSET] += 1
                self._state = _IDLE
                self._len = 0

        PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
        try:
            p = <const uint8_t*>view.buf
            n = view.len
            if n < _MAIN_HDR:
                self._fail(_R_BAD_HEADER, ts, marker)
                return None
            off = (p[1] << 16) | (p[2] << 8) | p[3]
            type_ = p[4]
            q = p[5]
            w8 = p[6]
            h8 = p[7]
            pos = _MAIN_HDR
            dri = 0
            if self._state == _ASSEMBLING:
                if type_ >= 64:
                    if n < pos + _RESTART_HDR:
                        self._fail(_R_BAD_HEADER, ts, marker)
                        return None
                    dri = (p[pos] << 8) | p[pos + 1]
                    pos += _RESTART_HDR
                if (
                    type_ != self._type or q != self._q or w8 != self._width8
                    or h8 != self._height8 or dri != self._dri
                ):
                    self._fail(_R_BAD_HEADER, ts, marker)
                    return None
                if off != self._len:
                    self._fail(_R_OFFSET, ts, marker)
                    return None
            else:
                if off != 0:
                    # The frame's first packet is gone.
                    self._fail(_R_SEQ_GAP if gap else _R_OFFSET, ts, marker)
                    return None
                if type_ != 0 and type_ != 1 and type_ != 64 and type_ != 65:
                    self._fail(_R_UNSUPPORTED_TYPE, ts, marker)
                    return None
                if type_ >= 64:
                    if n < pos + _RESTART_HDR:
                        self._fail(_R_BAD_HEADER, ts, marker)
                        return None
                    dri = (p[pos] << 8) | p[pos + 1]
                    pos += _RESTART_HDR
                if w8 == 0 or h8 == 0:
                    # Sizes over 2040 would need SDP x-dimensions: not supported.
                    self._fail(_R_BAD_HEADER, ts, marker)
                    return None
                if q == 0 or 100 <= q <= 127:
                    self._fail(_R_RESERVED_Q, ts, marker)
                    return None
                if q < 100:
                    _make_tables(q, self._qt)
                    prec = 0
                else:
                    if n < pos + 4:
                        self._fail(_R_BAD_HEADER, ts, marker)
                        return None
                    prec = p[pos + 1] & 3
                    length = (p[pos + 2] << 8) | p[pos + 3]
                    pos += 4
                    s0 = 128 if prec & 1 else 64
                    s1 = 128 if prec & 2 else 64
                    if length == 0:
                        # Static tables sent in an earlier frame (Q < 255 only).
                        cached = self._qcache.get(q) if q != 255 else None
                        if cached is None:
                            self._fail(_R_BAD_HEADER, ts, marker)
                            return None
                        prec = cached[0]
                        tables = cached[1]
                        memcpy(self._qt, <const char*>tables, len(tables))
                    else:
                        if length < s0 + s1 or n < pos + length:
                            self._fail(_R_BAD_HEADER, ts, marker)
                            return None
                        memcpy(self._qt, p + pos, s0 + s1)
                        if q != 255:
                            self._qcache[q] = (prec, PyBytes_FromStringAndSize(
                                <const char*>p + pos, s0 + s1))
                        pos += length
                self._type = type_
                self._q = q
                self._width8 = w8
                self._height8 = h8
                self._dri = dri
                self._prec = prec
                self._ts = ts
                self._len = 0
                self._hdr_len = (
                    2 + 4 + 2 + (128 if prec & 1 else 64) + (128 if prec & 2 else 64)
                    + _SOF_LEN + _DHT_LEN + (_DRI_LEN if dri else 0) + _SOS_LEN
                )
                self._state = _ASSEMBLING
            need = self._hdr_len + self._len + (n - pos) + 2
            if need > self.max_frame_size:
                self._fail(_R_TOO_LARGE, ts, marker)
                return None
            self._append(p + pos, n - pos)
        finally:
            PyBuffer_Release(&view)
        if not marker:
            return None
        if self._len == 0:
            self._fail(_R_BAD_HEADER, ts, marker)     # a frame of headers only
            return None
        self._state = _IDLE
        self.frames += 1
        return self._build()

    cdef bytes _build(self):
        cdef Py_ssize_t s0 = 128 if self._prec & 1 else 64
        cdef Py_ssize_t s1 = 128 if self._prec & 2 else 64
        cdef Py_ssize_t dqt_len = 2 + 2 + s0 + s1
        cdef int width = self._width8 * 8, height = self._height8 * 8
        cdef bytes out = PyBytes_FromStringAndSize(NULL, self._hdr_len + self._len + 2)
        cdef uint8_t* o = <uint8_t*>PyBytes_AS_STRING(out)
        cdef Py_ssize_t i = 0
        o[0] = 0xFF; o[1] = 0xD8                                    # SOI
        o[2] = 0xFF; o[3] = 0xDB; o[4] = dqt_len >> 8; o[5] = dqt_len & 0xFF
        o[6] = (self._prec & 1) << 4
        memcpy(o + 7, self._qt, s0)
        i = 7 + s0
        o[i] = (((self._prec >> 1) & 1) << 4) | 1
        memcpy(o + i + 1, self._qt + s0, s1)
        i += 1 + s1
        # SOF0; component ids 1, 2, 3 as JFIF has them; Y 2x1 or 2x2, chroma 1x1.
        o[i] = 0xFF; o[i + 1] = 0xC0; o[i + 2] = 0; o[i + 3] = 17; o[i + 4] = 8
        o[i + 5] = height >> 8; o[i + 6] = height & 0xFF
        o[i + 7] = width >> 8; o[i + 8] = width & 0xFF
        o[i + 9] = 3
        o[i + 10] = 1; o[i + 11] = 0x22 if (self._type & 63) == 1 else 0x21; o[i + 12] = 0
        o[i + 13] = 2; o[i + 14] = 0x11; o[i + 15] = 1
        o[i + 16] = 3; o[i + 17] = 0x11; o[i + 18] = 1
        i += _SOF_LEN
        memcpy(o + i, _DHT, _DHT_LEN)
        i += _DHT_LEN
        if self._dri:
            o[i] = 0xFF; o[i + 1] = 0xDD; o[i + 2] = 0; o[i + 3] = 4
            o[i + 4] = self._dri >> 8; o[i + 5] = self._dri & 0xFF
            i += _DRI_LEN
        o[i] = 0xFF; o[i + 1] = 0xDA; o[i + 2] = 0; o[i + 3] = 12; o[i + 4] = 3
        o[i + 5] = 1; o[i + 6] = 0x00
        o[i + 7] = 2; o[i + 8] = 0x11
        o[i + 9] = 3; o[i + 10] = 0x11
        o[i + 11] = 0; o[i + 12] = 63; o[i + 13] = 0
        i += _SOS_LEN
        memcpy(o + i, self._buf, self._len)
        i += self._len
        # Always: a sender that left EOI in its scan data gets a harmless second one.
        o[i] = 0xFF; o[i + 1] = 0xD9
        self._len = 0
        return out
