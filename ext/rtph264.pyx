"""RFC 6184 (RTP payload format for H.264): Annex B scanning, packetizer, depacketizer, SPS. Sans-IO.

The gateway encodes each channel once to H.264 and serves it as RTP/H.264 in
packetization-mode=1 (non-interleaved: single NAL unit packets, STAP-A, FU-A).

``split_annexb`` cuts an Annex B byte stream into NAL units: it looks for the
0x01 of each 00 00 01 start code with memchr (emulation prevention guarantees
that 00 00 01 never occurs inside a NAL unit, so nothing else needs reading)
and trims the zero bytes ending each unit, which takes care of 4-byte start
codes (their first zero is a trailing_zero_8bits of the unit before) and of
trailing zeros; units left empty are skipped. Only zero bytes may precede the
first start code (leading_zero_8bits); anything else is a ValueError.

``RtpH264Packetizer.packetize`` turns one access unit into one buffer of
back-to-back payloads and an array of offsets (payload i is
``data[offsets[i]:offsets[i + 1]]``), the layout the egress sends from: the
sender writes the 12-byte RTP headers, with the marker on the last packet.
Access unit delimiters (type 9) and filler data (12) are dropped: in RTP the
marker bit and the timestamp delimit access units, and filler only pads a
constant-rate channel. Then, in order:

- a NAL unit larger than payload_size is cut into FU-As, every fragment
  exactly payload_size bytes but the last of that NAL unit, so that the egress
  can batch them into one UDP GSO send;
- consecutive NAL units that fit are aggregated into one STAP-A while the
  STAP-A fits payload_size (typically SPS, PPS and SEI before an IDR slice,
  or the small slices of a P frame);
- a NAL unit that fits but has no neighbour to share a packet with goes alone,
  as a single NAL unit packet (a STAP-A of one only costs three bytes).

NAL unit types 0 and 24..31 are not H.264 NAL units (RFC 6184 uses 24..29 for
its own packet types): the packetizer refuses them with a ValueError rather
than send what a receiver would misread. The NAL unit bytes are copied once,
into the output buffer; with the GIL released for big access units.

``RtpH264Depacketizer`` rebuilds Annex B access units (a 4-byte start code
before every NAL unit) from packets. An access unit ends with its marked
packet, or, for senders that do not mark, when a packet with another
timestamp arrives. What cannot be trusted is dropped a whole access unit at a
time, counted once by the first reason met (DROP_REASONS), and the rest of
that access unit (same timestamp) is ignored silently:

- seq_gap: packets are missing (lost or reordered) inside the access unit, or
  just before a packet that opens one without looking like the first packet
  of an access unit (see ``_begins_access_unit``);
- fu_no_start: an FU-A continuation or end without its start fragment;
- fu_no_end: a fragmented NAL unit cut short by another NAL unit, a marker or
  a new timestamp before its end fragment;
- too_large: the access unit would exceed max_access_unit (checked before
  copying);
- unsupported_type: STAP-B, MTAP16, MTAP24, FU-B (packetization-mode=2 only)
  and the reserved types 0, 30, 31;
- malformed: an empty payload, a truncated STAP-A, a zero-length aggregated
  unit, an FU-A with both S and E set, or a type 0 or 24..31 inside a STAP-A
  or an FU header.

NAL unit bodies are the sender's bytes, not inspected: a sender's NAL unit that
carries a start code pattern (invalid H.264) comes out as it came in. An exact
duplicate of the previous packet is ignored. ``push`` returns at most one access
unit: a packet that both starts a new timestamp (completing the previous,
unmarked access unit) and carries the marker leaves its own access unit open
until the next timestamp change or a later marked packet of the same timestamp.

``sps_info`` reads a sequence parameter set up to frame cropping (the VUI is
not needed for size and profile): exp-Golomb codes of at most 32 bits,
emulation prevention bytes removed first, every field that bounds a loop or a
size checked; ValueError on anything malformed.

Raw pointers are never bounds-checked by Cython, whatever the directives say,
so every read below is preceded by an explicit length comparison.
"""

cimport cython
from cpython cimport array
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int64_t, uint8_t, uint32_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcpy

import array
import base64

__all__ = [
    "DROP_REASONS",
    "MAX_PAYLOAD_SIZE",
    "MIN_PAYLOAD_SIZE",
    "RtpH264Depacketizer",
    "RtpH264Packetizer",
    "nal_type",
    "parameter_sets",
    "profile_level_id",
    "split_annexb",
    "sprop_parameter_sets",
    "sps_info",
]

# 200 leaves room for real slices; 65000 keeps a payload plus IP/UDP/RTP headers in
# one UDP datagram (and every STAP-A unit size in its 16-bit field).
MIN_PAYLOAD_SIZE = 200
MAX_PAYLOAD_SIZE = 65000
cdef Py_ssize_t _MIN_PAYLOAD = MIN_PAYLOAD_SIZE
cdef Py_ssize_t _MAX_PAYLOAD = MAX_PAYLOAD_SIZE

DROP_REASONS = ("seq_gap", "fu_no_start", "fu_no_end", "too_large", "unsupported_type", "malformed")

# Depacketizer drop reasons, indexes into its counters (same order as DROP_REASONS).
cdef enum:
    _R_SEQ_GAP = 0
    _R_FU_NO_START = 1
    _R_FU_NO_END = 2
    _R_TOO_LARGE = 3
    _R_UNSUPPORTED_TYPE = 4
    _R_MALFORMED = 5
    _N_REASONS = 6
    _OK = -1

cdef enum:
    _AUD = 9
    _FILLER = 12
    _STAP_A = 24
    _FU_A = 28
    _NOGIL_MIN = 256 * 1024     # see RtpH264Packetizer.packetize
    _MIN_AU_LIMIT = 1024
    _MAX_AU_LIMIT = 1 << 30
    _INITIAL_CAPACITY = 64 * 1024
    _MAX_MBS = 1055             # sqrt(8 * MaxFS) at level 6.2: the widest/tallest picture

cdef enum:
    _IDLE = 0           # the next packet opens an access unit
    _ASSEMBLING = 1
    _SKIPPING = 2       # discarding the rest of a dropped access unit (same timestamp)

cdef array.array _OFFSETS = array.array("I")
if _OFFSETS.itemsize != 4:
    raise ImportError("array('I') is not 32 bits on this platform")


# --------------------------------------------------------------------------------------
# Annex B

cdef struct Span:
    Py_ssize_t start
    Py_ssize_t end

cdef struct Spans:
    Span* items
    Py_ssize_t count
    Py_ssize_t cap
    Py_ssize_t first        # offset of the first start code, -1 without one


cdef int _add(Spans* s, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef Span* grown
    cdef Py_ssize_t cap
    if s.count == s.cap:
        cap = 32 if s.cap == 0 else 2 * s.cap
        grown = <Span*>realloc(s.items, cap * sizeof(Span))
        if grown == NULL:
            return -1
        s.items = grown
        s.cap = cap
    s.items[s.count].start = start
    s.items[s.count].end = end
    s.count += 1
    return 0


cdef int _scan(const uint8_t* p, Py_ssize_t n, Spans* s) noexcept nogil:
    """Fill ``s`` with the non-empty NAL units of p; -1 when out of memory."""
    cdef const uint8_t* q
    cdef Py_ssize_t i = 0, j, end, nal = -1
    s.count = 0
    s.first = -1
    while i < n:
        q = <const uint8_t*>memchr(p + i, 1, n - i)
        if q == NULL:
            break
        j = q - p
        i = j + 1
        if j < 2 or p[j - 1] != 0 or p[j - 2] != 0:
            continue
        if nal < 0:
            s.first = j - 2
        else:
            end = j - 2
            while end > nal and p[end - 1] == 0:
                end -= 1
            if end > nal and _add(s, nal, end) < 0:
                return -1
        nal = j + 1
    if nal >= 0:
        end = n
        while end > nal and p[end - 1] == 0:
            end -= 1
        if end > nal and _add(s, nal, end) < 0:
            return -1
    return 0


cdef int _split(const uint8_t* p, Py_ssize_t n, Spans* s) except -1:
    """_scan with the GIL released for big inputs, and the leading bytes checked."""
    cdef int rc
    cdef Py_ssize_t k
    if n >= _NOGIL_MIN:
        with nogil:
            rc = _scan(p, n, s)
    else:
        rc = _scan(p, n, s)
    if rc < 0:
        raise MemoryError()
    if n and s.first < 0:
        raise ValueError("no start code (00 00 01) in the data")
    for k in range(s.first if s.first > 0 else 0):
        if p[k] != 0:
            raise ValueError(f"byte 0x{p[k]:02X} at offset {k} before the first start code")
    return 0


def split_annexb(data):
    """NAL units of an Annex B byte stream, as views of it without their start codes."""
    cdef Py_buffer view
    cdef Spans s
    cdef Py_ssize_t k
    s.items = NULL
    s.cap = 0
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        _split(<const uint8_t*>view.buf, view.len, &s)
        mv = memoryview(data)
        if mv.ndim != 1 or mv.itemsize != 1:
            mv = mv.cast("B")
        return [mv[s.items[k].start:s.items[k].end] for k in range(s.count)]
    finally:
        free(s.items)
        PyBuffer_Release(&view)


def nal_type(nal):
    """nal_unit_type (the low 5 bits of the first byte) of a NAL unit without start code."""
    cdef Py_buffer view
    cdef int t
    PyObject_GetBuffer(nal, &view, PyBUF_SIMPLE)
    try:
        if view.len < 1:
            raise ValueError("empty NAL unit")
        t = (<const uint8_t*>view.buf)[0] & 0x1F
    finally:
        PyBuffer_Release(&view)
    return t


def parameter_sets(access_unit):
    """The first SPS and the first PPS NAL units of an Annex B access unit (None if absent)."""
    cdef Py_buffer view
    cdef Spans s
    cdef Py_ssize_t k
    cdef const uint8_t* p
    cdef int t
    s.items = NULL
    s.cap = 0
    sps = pps = None
    PyObject_GetBuffer(access_unit, &view, PyBUF_SIMPLE)
    try:
        p = <const uint8_t*>view.buf
        _split(p, view.len, &s)
        for k in range(s.count):
            t = p[s.items[k].start] & 0x1F
            if t == 7 and sps is None:
                sps = PyBytes_FromStringAndSize(
                    <const char*>p + s.items[k].start, s.items[k].end - s.items[k].start)
            elif t == 8 and pps is None:
                pps = PyBytes_FromStringAndSize(
                    <const char*>p + s.items[k].start, s.items[k].end - s.items[k].start)
    finally:
        free(s.items)
        PyBuffer_Release(&view)
    return sps, pps


# --------------------------------------------------------------------------------------
# SPS

cdef struct Bits:
    const uint8_t* d
    Py_ssize_t nbits
    Py_ssize_t pos


cdef int64_t _u(Bits* b, int n, str field) except? -1:
    cdef int64_t v = 0
    cdef int i
    if b.pos + n > b.nbits:
        raise ValueError(f"SPS is truncated in {field}")
    for i in range(n):
        v = (v << 1) | ((b.d[b.pos >> 3] >> (7 - (b.pos & 7))) & 1)
        b.pos += 1
    return v


cdef int64_t _ue(Bits* b, str field) except? -1:
    # ue(v): n zero bits, a one, n more bits; value 2**n - 1 + those bits.
    cdef int zeros = 0
    while True:
        if b.pos >= b.nbits:
            raise ValueError(f"SPS is truncated in {field}")
        if (b.d[b.pos >> 3] >> (7 - (b.pos & 7))) & 1:
            b.pos += 1
            break
        b.pos += 1
        zeros += 1
        if zeros > 31:
            raise ValueError(f"SPS {field} has an exp-Golomb code longer than 32 bits")
    return ((<int64_t>1) << zeros) - 1 + _u(b, zeros, field)


cdef int64_t _se(Bits* b, str field) except? -1:
    cdef int64_t k = _ue(b, field)
    return (k + 1) // 2 if k & 1 else -(k // 2)


cdef int64_t _ue_max(Bits* b, str field, int64_t limit) except? -1:
    cdef int64_t v = _ue(b, field)
    if v > limit:
        raise ValueError(f"SPS {field} {v} is above {limit}")
    return v


cdef Py_ssize_t _unescape(const uint8_t* p, Py_ssize_t n, uint8_t* out) noexcept nogil:
    # The RBSP: every 0x03 that follows two zero bytes is an emulation prevention byte.
    cdef Py_ssize_t i, k = 0
    cdef int zeros = 0
    for i in range(n):
        if zeros >= 2 and p[i] == 3:
            zeros = 0
            continue
        out[k] = p[i]
        k += 1
        zeros = zeros + 1 if p[i] == 0 else 0
    return k


# Profiles whose SPS carries chroma_format_idc, bit depths and scaling matrices (7.3.2.1.1).
_HIGH_PROFILES = frozenset((100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135))


cdef object _sps(object sps, bint header_only):
    cdef Py_buffer view
    cdef const uint8_t* p
    cdef uint8_t* rbsp = NULL
    cdef Bits b
    cdef int64_t profile, flags, level, chroma = 1, i, j, size, last, nxt, delta, cycle
    cdef int64_t poc_type, w_mbs, h_units, frame_mbs_only, h_mbs, width, height
    cdef int64_t left = 0, right = 0, top = 0, bottom = 0, unit_x, unit_y
    cdef bint separate = False
    PyObject_GetBuffer(sps, &view, PyBUF_SIMPLE)
    try:
        p = <const uint8_t*>view.buf
        if view.len < 1:
            raise ValueError("empty NAL unit")
        if p[0] & 0x1F != 7:
            raise ValueError(f"not an SPS: NAL unit type {p[0] & 0x1F}")
        rbsp = <uint8_t*>malloc(view.len)
        if rbsp == NULL:
            raise MemoryError()
        b.d = rbsp
        b.nbits = 8 * _unescape(p + 1, view.len - 1, rbsp)
        b.pos = 0
        profile = _u(&b, 8, "profile_idc")
        flags = _u(&b, 8, "constraint flags")
        level = _u(&b, 8, "level_idc")
        if header_only:
            return profile, flags, level
        _ue_max(&b, "seq_parameter_set_id", 31)
        if profile in _HIGH_PROFILES:
            chroma = _ue_max(&b, "chroma_format_idc", 3)
            if chroma == 3:
                separate = _u(&b, 1, "separate_colour_plane_flag")
            _ue_max(&b, "bit_depth_luma_minus8", 6)
            _ue_max(&b, "bit_depth_chroma_minus8", 6)
            _u(&b, 1, "qpprime_y_zero_transform_bypass_flag")
            if _u(&b, 1, "seq_scaling_matrix_present_flag"):
                for i in range(8 if chroma != 3 else 12):
                    if not _u(&b, 1, "seq_scaling_list_present_flag"):
                        continue
                    size = 16 if i < 6 else 64
                    last = nxt = 8
                    for j in range(size):
                        if nxt != 0:
                            delta = _se(&b, "delta_scale")
                            if not -128 <= delta <= 127:
                                raise ValueError(f"SPS delta_scale {delta} is outside -128..127")
                            nxt = (last + delta + 256) % 256
                        if nxt != 0:
                            last = nxt
        _ue_max(&b, "log2_max_frame_num_minus4", 12)
        poc_type = _ue_max(&b, "pic_order_cnt_type", 2)
        if poc_type == 0:
            _ue_max(&b, "log2_max_pic_order_cnt_lsb_minus4", 12)
        elif poc_type == 1:
            _u(&b, 1, "delta_pic_order_always_zero_flag")
            _se(&b, "offset_for_non_ref_pic")
            _se(&b, "offset_for_top_to_bottom_field")
            cycle = _ue_max(&b, "num_ref_frames_in_pic_order_cnt_cycle", 255)
            for i in range(cycle):
                _se(&b, "offset_for_ref_frame")
        _ue_max(&b, "max_num_ref_frames", 16)
        _u(&b, 1, "gaps_in_frame_num_value_allowed_flag")
        w_mbs = _ue_max(&b, "pic_width_in_mbs_minus1", _MAX_MBS - 1) + 1
        h_units = _ue_max(&b, "pic_height_in_map_units_minus1", _MAX_MBS - 1) + 1
        frame_mbs_only = _u(&b, 1, "frame_mbs_only_flag")
        h_mbs = (2 - frame_mbs_only) * h_units
        if h_mbs > _MAX_MBS:
            raise ValueError(f"SPS frame height of {h_mbs} macroblocks is above {_MAX_MBS}")
        if not frame_mbs_only:
            _u(&b, 1, "mb_adaptive_frame_field_flag")
        _u(&b, 1, "direct_8x8_inference_flag")
        if _u(&b, 1, "frame_cropping_flag"):
            left = _ue(&b, "frame_crop_left_offset")
            right = _ue(&b, "frame_crop_right_offset")
            top = _ue(&b, "frame_crop_top_offset")
            bottom = _ue(&b, "frame_crop_bottom_offset")
        # Crop units (7-19..7-22): chroma samples, and field pairs for interlaced frames.
        if separate or chroma == 0:
            unit_x = 1
            unit_y = 2 - frame_mbs_only
        else:
            unit_x = 1 if chroma == 3 else 2
            unit_y = (2 if chroma == 1 else 1) * (2 - frame_mbs_only)
        width = 16 * w_mbs - unit_x * (left + right)
        height = 16 * h_mbs - unit_y * (top + bottom)
        if width <= 0 or height <= 0:
            raise ValueError(
                f"SPS frame cropping leaves no picture of {16 * w_mbs}x{16 * h_mbs}"
            )
        return profile, flags, level, width, height
    finally:
        free(rbsp)
        PyBuffer_Release(&view)


def sps_info(sps):
    """(profile_idc, constraint flags, level_idc, width, height) of an SPS NAL unit."""
    return _sps(sps, False)


def profile_level_id(sps):
    """The SDP profile-level-id of an SPS NAL unit: profile_idc, constraint flags, level_idc."""
    profile, flags, level = _sps(sps, True)
    return f"{profile:02x}{flags:02x}{level:02x}"


def sprop_parameter_sets(sps, pps):
    """The SDP sprop-parameter-sets value: base64 of the SPS and of the PPS, comma-separated."""
    if nal_type(sps) != 7:
        raise ValueError(f"not an SPS: NAL unit type {nal_type(sps)}")
    if nal_type(pps) != 8:
        raise ValueError(f"not a PPS: NAL unit type {nal_type(pps)}")
    return base64.b64encode(sps).decode("ascii") + "," + base64.b64encode(pps).decode("ascii")


# --------------------------------------------------------------------------------------
# Packetizer

@cython.cdivision(True)
cdef Py_ssize_t _layout(
    const uint8_t* p, const Span* s, Py_ssize_t m, Py_ssize_t ps,
    uint8_t* o, uint32_t* offs, Py_ssize_t* total,
) noexcept nogil:
    """Packets for the NAL units s[:m]: the count, and the bytes in ``total``.

    With ``o`` NULL only counts; else writes the payloads to o and their offsets
    (count + 1 of them) to offs. One function for both, so they cannot disagree.
    """
    cdef Py_ssize_t i = 0, j, k, count = 0, pos = 0, size, length, body, chunk
    cdef const uint8_t* nal
    cdef uint8_t forbidden, nri, fu_type
    while i < m:
        nal = p + s[i].start
        length = s[i].end - s[i].start
        if length > ps:
            # FU-A: the NAL header travels in the FU indicator (F, NRI) and FU header
            # (type); every fragment carries ps - 2 bytes of the rest but the last.
            body = length - 1
            k = 0
            while k < body:
                chunk = body - k
                if chunk > ps - 2:
                    chunk = ps - 2
                if o != NULL:
                    offs[count] = <uint32_t>pos
                    o[pos] = (nal[0] & 0xE0) | _FU_A
                    fu_type = nal[0] & 0x1F
                    o[pos + 1] = fu_type | (0x80 if k == 0 else 0) | (
                        0x40 if k + chunk == body else 0)
                    memcpy(o + pos + 2, nal + 1 + k, chunk)
                pos += 2 + chunk
                count += 1
                k += chunk
            i += 1
            continue
        size = 1 + 2 + length
        j = i + 1
        while j < m and size + 2 + (s[j].end - s[j].start) <= ps:
            size += 2 + (s[j].end - s[j].start)
            j += 1
        if o != NULL:
            offs[count] = <uint32_t>pos
        if j == i + 1:
            if o != NULL:
                memcpy(o + pos, nal, length)
            pos += length
        else:
            if o != NULL:
                # F is set if any unit has it; NRI is the highest of the units (5.7.1).
                forbidden = 0
                nri = 0
                for k in range(i, j):
                    forbidden |= p[s[k].start] & 0x80
                    if (p[s[k].start] & 0x60) > nri:
                        nri = p[s[k].start] & 0x60
                o[pos] = forbidden | nri | _STAP_A
                pos += 1
                for k in range(i, j):
                    length = s[k].end - s[k].start
                    o[pos] = <uint8_t>(length >> 8)
                    o[pos + 1] = <uint8_t>length
                    memcpy(o + pos + 2, p + s[k].start, length)
                    pos += 2 + length
            else:
                pos += size
        count += 1
        i = j
    if o != NULL:
        offs[count] = <uint32_t>pos
    total[0] = pos
    return count


@cython.final
cdef class RtpH264Packetizer:
    """Cuts Annex B access units into RFC 6184 payloads (packetization-mode=1)."""

    cdef readonly Py_ssize_t payload_size

    def __init__(self, Py_ssize_t payload_size=1400):
        if not _MIN_PAYLOAD <= payload_size <= _MAX_PAYLOAD:
            raise ValueError(
                f"payload_size must be in {MIN_PAYLOAD_SIZE}..{MAX_PAYLOAD_SIZE}, "
                f"got {payload_size}"
            )
        self.payload_size = payload_size

    def packetize(self, access_unit):
        """All payloads of one access unit, back to back, and their offsets (packets + 1)."""
        cdef Py_buffer view
        cdef Spans s
        cdef const uint8_t* p
        cdef Py_ssize_t k, m, count, total = 0, written = 0
        cdef int t
        cdef bytes out
        cdef array.array offsets
        cdef uint8_t* o
        cdef uint32_t* offs
        s.items = NULL
        s.cap = 0
        PyObject_GetBuffer(access_unit, &view, PyBUF_SIMPLE)
        try:
            p = <const uint8_t*>view.buf
            _split(p, view.len, &s)
            m = 0
            for k in range(s.count):
                t = p[s.items[k].start] & 0x1F
                if t == _AUD or t == _FILLER:
                    continue
                if t == 0 or t >= 24:
                    raise ValueError(
                        f"NAL unit type {t} at offset {s.items[k].start} is not an H.264 "
                        "NAL unit RFC 6184 can carry"
                    )
                s.items[m] = s.items[k]
                m += 1
            if m == 0:
                raise ValueError("no NAL unit to send in the access unit")
            count = _layout(p, s.items, m, self.payload_size, NULL, NULL, &total)
            if total > 0xFFFFFFFF:
                raise ValueError(f"an access unit of {total} bytes is beyond 32-bit offsets")
            out = PyBytes_FromStringAndSize(NULL, total)
            offsets = array.clone(_OFFSETS, count + 1, False)
            o = <uint8_t*>PyBytes_AS_STRING(out)
            offs = <uint32_t*>offsets.data.as_uints
            # Releasing the GIL costs little, but getting it back behind a busy
            # thread can take a switch interval (5 ms): worth it only for big copies.
            if total >= _NOGIL_MIN:
                with nogil:
                    _layout(p, s.items, m, self.payload_size, o, offs, &written)
            else:
                _layout(p, s.items, m, self.payload_size, o, offs, &written)
        finally:
            free(s.items)
            PyBuffer_Release(&view)
        return out, offsets


# --------------------------------------------------------------------------------------
# Depacketizer

cdef bint _nal_begins_au(int t, const uint8_t* rest, Py_ssize_t n) noexcept nogil:
    # 7.4.1.2.3: an access unit opens with an AUD, SPS, PPS, SEI or types 14..18,
    # else with its first slice, whose first_mb_in_slice is 0: ue(v) 0 is one 1 bit.
    if 6 <= t <= 9 or 14 <= t <= 18:
        return True
    if t == 1 or t == 2 or t == 5:
        return n >= 1 and (rest[0] & 0x80) != 0
    return False


cdef bint _begins_access_unit(const uint8_t* p, Py_ssize_t n) noexcept nogil:
    """Whether a packet can be the first of an access unit (a gap came before it)."""
    cdef int t
    cdef Py_ssize_t size
    if n < 1:
        return False
    t = p[0] & 0x1F
    if t == _STAP_A:
        if n < 4:
            return False
        size = (p[1] << 8) | p[2]
        if size > n - 3:
            size = n - 3
        return _nal_begins_au(p[3] & 0x1F, p + 4, size - 1)
    if t == _FU_A:
        if n < 2 or not (p[1] & 0x80):
            return False
        return _nal_begins_au(p[1] & 0x1F, p + 2, n - 2)
    return _nal_begins_au(t, p + 1, n - 1)


@cython.final
cdef class RtpH264Depacketizer:
    """Reassembles RFC 6184 packets into Annex B access units; bounded by max_access_unit."""

    cdef readonly Py_ssize_t max_access_unit
    cdef readonly Py_ssize_t frames
    cdef Py_ssize_t _drops[_N_REASONS]
    cdef int _state
    cdef bint _have_seq
    cdef int _last_seq
    cdef uint32_t _ts
    cdef uint32_t _skip_ts
    cdef bint _fu_open          # a fragmented NAL unit is being rebuilt (S seen, E not yet)
    cdef uint8_t* _buf
    cdef Py_ssize_t _cap
    cdef Py_ssize_t _len

    def __cinit__(self):
        self._buf = NULL

    def __init__(self, Py_ssize_t max_access_unit=4 << 20):
        if not _MIN_AU_LIMIT <= max_access_unit <= _MAX_AU_LIMIT:
            raise ValueError(
                f"max_access_unit must be in {_MIN_AU_LIMIT}..{_MAX_AU_LIMIT}, "
                f"got {max_access_unit}"
            )
        self.max_access_unit = max_access_unit
        self.reset()

    def __dealloc__(self):
        free(self._buf)

    def reset(self):
        """Forget the partial access unit and the sequence state (counters are kept)."""
        self._state = _IDLE
        self._have_seq = False
        self._fu_open = False
        self._len = 0

    @property
    def dropped(self):
        """Access units dropped, by reason (every reason of DROP_REASONS, zero included)."""
        return {name: self._drops[k] for k, name in enumerate(DROP_REASONS)}

    @property
    def buffered(self):
        """Bytes held for the access unit being assembled."""
        return self._len if self._state == _ASSEMBLING else 0

    @property
    def capacity(self):
        """Bytes allocated for reassembly (at most max_access_unit)."""
        return self._cap

    cdef void _fail(self, int reason, uint32_t ts, bint marker) noexcept:
        # Drop the access unit this packet belongs to and ignore the rest of it.
        self._drops[reason] += 1
        self._len = 0
        self._fu_open = False
        if marker:
            self._state = _IDLE
        else:
            self._state = _SKIPPING
            self._skip_ts = ts

    cdef int _reserve(self, Py_ssize_t n) except -1:
        # Callers have checked that _len + n stays within max_access_unit.
        cdef Py_ssize_t need = self._len + n, cap
        cdef uint8_t* grown
        if need > self._cap:
            cap = max(need, min(2 * self._cap, self.max_access_unit), _INITIAL_CAPACITY)
            cap = min(cap, self.max_access_unit)
            grown = <uint8_t*>realloc(self._buf, cap)
            if grown == NULL:
                raise MemoryError()
            self._buf = grown
            self._cap = cap
        return 0

    cdef inline void _start_code(self) noexcept:
        self._buf[self._len] = 0
        self._buf[self._len + 1] = 0
        self._buf[self._len + 2] = 0
        self._buf[self._len + 3] = 1
        self._len += 4

    cdef int _consume(self, const uint8_t* p, Py_ssize_t n) except -2:
        """Append the NAL units of one packet; a drop reason, or _OK."""
        cdef int t, ft
        cdef Py_ssize_t pos, size, total
        if n < 1:
            return _R_MALFORMED
        t = p[0] & 0x1F
        if 1 <= t <= 23:
            if self._fu_open:
                return _R_FU_NO_END
            if self._len + 4 + n > self.max_access_unit:
                return _R_TOO_LARGE
            self._reserve(4 + n)
            self._start_code()
            memcpy(self._buf + self._len, p, n)
            self._len += n
            return _OK
        if t == _STAP_A:
            if self._fu_open:
                return _R_FU_NO_END
            # Validate every unit before copying any: a packet is taken whole or not at all.
            pos = 1
            total = 0
            while pos < n:
                if pos + 2 > n:
                    return _R_MALFORMED
                size = (p[pos] << 8) | p[pos + 1]
                pos += 2
                if size == 0 or size > n - pos:
                    return _R_MALFORMED
                ft = p[pos] & 0x1F
                if ft == 0 or ft >= 24:
                    return _R_MALFORMED
                total += 4 + size
                pos += size
            if total == 0:
                return _R_MALFORMED
            if self._len + total > self.max_access_unit:
                return _R_TOO_LARGE
            self._reserve(total)
            pos = 1
            while pos < n:
                size = (p[pos] << 8) | p[pos + 1]
                self._start_code()
                memcpy(self._buf + self._len, p + pos + 2, size)
                self._len += size
                pos += 2 + size
            return _OK
        if t == _FU_A:
            if n < 2:
                return _R_MALFORMED
            ft = p[1] & 0x1F
            if (p[1] & 0xC0) == 0xC0 or ft == 0 or ft >= 24:
                return _R_MALFORMED
            if p[1] & 0x80:
                if self._fu_open:
                    return _R_FU_NO_END
                if self._len + 4 + 1 + (n - 2) > self.max_access_unit:
                    return _R_TOO_LARGE
                self._reserve(4 + 1 + (n - 2))
                self._start_code()
                self._buf[self._len] = (p[0] & 0xE0) | ft
                self._len += 1
                self._fu_open = True
            else:
                if not self._fu_open:
                    return _R_FU_NO_START
                if self._len + (n - 2) > self.max_access_unit:
                    return _R_TOO_LARGE
                self._reserve(n - 2)
                if p[1] & 0x40:
                    self._fu_open = False
            memcpy(self._buf + self._len, p + 2, n - 2)
            self._len += n - 2
            return _OK
        return _R_UNSUPPORTED_TYPE

    cdef bytes _finish(self):
        cdef bytes out = PyBytes_FromStringAndSize(<const char*>self._buf, self._len)
        self._len = 0
        self._state = _IDLE
        self.frames += 1
        return out

    def push(self, int seq, long long timestamp, bint marker, payload):
        """Take one packet's payload; return an Annex B access unit when one is complete."""
        cdef Py_buffer view
        cdef const uint8_t* p
        cdef Py_ssize_t n
        cdef uint32_t ts
        cdef bint gap
        cdef int reason
        cdef object out = None
        if not 0 <= seq <= 0xFFFF:
            raise ValueError(f"seq must be in 0..65535, got {seq}")
        if not 0 <= timestamp <= 0xFFFFFFFF:
            raise ValueError(f"timestamp must be in 0..2**32-1, got {timestamp}")
        ts = <uint32_t>timestamp
        PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
        try:
            p = <const uint8_t*>view.buf
            n = view.len
            if self._have_seq and seq == self._last_seq:
                return None             # a duplicate: the copy already counted
            gap = self._have_seq and seq != ((self._last_seq + 1) & 0xFFFF)
            self._have_seq = True
            self._last_seq = seq

            if self._state == _ASSEMBLING:
                if ts != self._ts:
                    if gap:
                        # The missing packets may have ended this access unit.
                        self._drops[_R_SEQ_GAP] += 1
                        self._len = 0
                    elif self._fu_open:
                        self._drops[_R_FU_NO_END] += 1
                        self._len = 0
                    else:
                        # A sender that does not mark: the new timestamp ends the unit.
                        out = self._finish()
                    self._fu_open = False
                    self._state = _IDLE
                elif gap:
                    self._fail(_R_SEQ_GAP, ts, marker)
                    return None
            elif self._state == _SKIPPING:
                if ts == self._skip_ts:
                    if marker:
                        self._state = _IDLE
                    return None
                self._state = _IDLE

            if self._state == _IDLE:
                if gap and not _begins_access_unit(p, n):
                    # What was lost held the head of this access unit.
                    self._fail(_R_SEQ_GAP, ts, marker)
                    return out
                self._ts = ts
                self._len = 0
                self._fu_open = False
                self._state = _ASSEMBLING
            reason = self._consume(p, n)
            if reason != _OK:
                self._fail(reason, ts, marker)
                return out
            if marker and out is None:
                if self._fu_open:
                    self._fail(_R_FU_NO_END, ts, True)
                    return None
                out = self._finish()
            return out
        finally:
            PyBuffer_Release(&view)
