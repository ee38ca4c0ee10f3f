"""Baseline JPEG entropy coding with the standard Huffman tables (ITU T.81 Annex F, K.3).

Input is quantized DCT coefficients in zigzag order, one row of 64 per block, the
blocks in scan order (MCU after MCU, and inside an MCU in the order given by
``comps``: the component index 0 = Y, 1 = Cb, 2 = Cr of each block position).
Component 0 uses the luminance tables, 1 and 2 the chrominance tables.

Three entry points:

- ``encode_intervals``: a whole scan or a run of complete restart intervals,
  byte-stuffed, each interval padded with 1-bits and separated by RSTn markers.
- ``encode_bits``: an unstuffed, unpadded bit string for a run of MCUs that starts
  with given DC predictors, so that pieces can be joined later.
- ``compose``: joins two such bit strings, stuffs and pads them, between a prefix
  and a suffix, into one frame.

and the step before them, ``fdct_quantize``: blocks of samples to quantized
coefficients with integer arithmetic only (IJG's ``jpeg_fdct_islow``), so that a
block's coefficients depend on the block alone, never on the CPU, the compiler's
vector width or where the block sits in a batch.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int16_t, int32_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memchr, memcpy, memset

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* Big-endian 64-bit load and store: one bswap on little-endian hosts. */
    static inline uint64_t jpegenc_load_be64(const uint8_t* p) {
    #if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint64_t v;
        memcpy(&v, p, 8);
        return __builtin_bswap64(v);
    #else
        uint64_t v = 0;
        for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
        return v;
    #endif
    }
    static inline void jpegenc_store_be64(uint8_t* p, uint64_t v) {
    #if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        v = __builtin_bswap64(v);
        memcpy(p, &v, 8);
    #else
        for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
    #endif
    }
    """
    uint64_t load_be64 "jpegenc_load_be64"(const uint8_t* p) noexcept nogil
    void store_be64 "jpegenc_store_be64"(uint8_t* p, uint64_t v) noexcept nogil

# ITU T.81 Annex K.3, Tables K.3 to K.6: code counts per length 1..16, then symbols.
DC_LUMA_BITS = bytes((0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0))
DC_LUMA_VALS = bytes(range(12))
DC_CHROMA_BITS = bytes((0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0))
DC_CHROMA_VALS = bytes(range(12))
AC_LUMA_BITS = bytes((0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D))
AC_LUMA_VALS = bytes((
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51,
    0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1,
    0x15, 0x52, 0xD1, 0xF0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18,
    0x19, 0x1A, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
    0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57,
    0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75,
    0x76, 0x77, 0x78, 0x79, 0x7A, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92,
    0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7,
    0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3,
    0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8,
    0xD9, 0xDA, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF1, 0xF2,
    0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
))
AC_CHROMA_BITS = bytes((0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77))
AC_CHROMA_VALS = bytes((
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07,
    0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09,
    0x23, 0x33, 0x52, 0xF0, 0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25,
    0xF1, 0x17, 0x18, 0x19, 0x1A, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38,
    0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56,
    0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74,
    0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5,
    0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA,
    0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6,
    0xD7, 0xD8, 0xD9, 0xDA, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF2,
    0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
))

# T.81 B.2.3: a baseline MCU holds at most 10 blocks.
MAX_BLOCKS_PER_MCU = 10
# T.81 B.2.4.4: the restart interval is a 16-bit field.
MAX_RESTART_INTERVAL = 65535

# Worst case for one block: DC code (11) + 11 extra bits, then 63 AC codes of at most
# 16 + 10 bits: 1660 bits = 208 bytes; stuffing can double that.
cdef enum:
    _MAX_BLOCK_BYTES = 420

cdef struct HuffTable:
    uint32_t code[256]
    uint8_t size[256]

cdef struct BitWriter:
    uint8_t* buf
    Py_ssize_t pos
    uint64_t acc    # pending bits are the low `nbits` bits
    int nbits
    bint stuff

# 0: DC luma, 1: AC luma, 2: DC chroma, 3: AC chroma.
cdef HuffTable _TABLES[4]
# Magnitude category (bit length) of 0..2047, the DC difference range of 8-bit baseline.
cdef uint8_t _CATEGORY[2048]


cdef int _build_table(bytes bits, bytes vals, HuffTable* table) except -1:
    # T.81 Annex C: codes of one length are consecutive, lengths in increasing order.
    if len(bits) != 16 or sum(bits) != len(vals) or len(vals) > 256:
        raise ValueError("malformed Huffman table specification")
    memset(table, 0, sizeof(HuffTable))
    cdef uint32_t code = 0
    cdef Py_ssize_t k = 0
    cdef int length, i
    for length in range(1, 17):
        for i in range(bits[length - 1]):
            table.code[vals[k]] = code
            table.size[vals[k]] = length
            code += 1
            k += 1
        code <<= 1
    return 0


cdef int _init_tables() except -1:
    _build_table(DC_LUMA_BITS, DC_LUMA_VALS, &_TABLES[0])
    _build_table(AC_LUMA_BITS, AC_LUMA_VALS, &_TABLES[1])
    _build_table(DC_CHROMA_BITS, DC_CHROMA_VALS, &_TABLES[2])
    _build_table(AC_CHROMA_BITS, AC_CHROMA_VALS, &_TABLES[3])
    cdef int v, n
    _CATEGORY[0] = 0
    for v in range(1, 2048):
        n = 0
        while (v >> n) != 0:
            n += 1
        _CATEGORY[v] = n
    return 0


_init_tables()


cdef inline void _put(BitWriter* w, uint32_t bits, int n) noexcept nogil:
    # n <= 26 (16-bit code + 10 bits) on top of < 8 pending bits: fits the accumulator.
    cdef uint8_t byte
    w.acc = (w.acc << n) | bits
    w.nbits += n
    while w.nbits >= 8:
        w.nbits -= 8
        byte = <uint8_t>(w.acc >> w.nbits)
        w.buf[w.pos] = byte
        w.pos += 1
        if byte == 0xFF and w.stuff:
            w.buf[w.pos] = 0
            w.pos += 1


cdef inline void _pad_ones(BitWriter* w) noexcept nogil:
    # T.81 F.1.2.3: fill the last byte of an interval with 1-bits.
    if w.nbits > 0:
        _put(w, (1u << (8 - w.nbits)) - 1, 8 - w.nbits)


cdef int _encode_mcus(
    BitWriter* w, const int16_t* coefs, const uint8_t* comps, Py_ssize_t bpm,
    Py_ssize_t n_mcus, int* preds,
) noexcept nogil:
    """Encode n_mcus MCUs; return -1 - block index on an out-of-range coefficient."""
    cdef const HuffTable* dc_tables[10]
    cdef const HuffTable* ac_tables[10]
    cdef Py_ssize_t b, m, k, block = 0
    cdef const HuffTable* dc
    cdef const HuffTable* ac
    cdef const int16_t* blk
    cdef int v, diff, mag, size, run, sym, comp
    for b in range(bpm):
        comp = comps[b]
        dc_tables[b] = &_TABLES[0 if comp == 0 else 2]
        ac_tables[b] = &_TABLES[1 if comp == 0 else 3]
    for m in range(n_mcus):
        for b in range(bpm):
            blk = coefs + block * 64
            dc = dc_tables[b]
            ac = ac_tables[b]
            comp = comps[b]
            v = blk[0]
            diff = v - preds[comp]
            preds[comp] = v
            mag = diff if diff >= 0 else -diff
            if mag > 2047:
                return -1 - <int>block
            size = _CATEGORY[mag]
            if diff < 0:
                diff -= 1
            _put(w, (dc.code[size] << size) | (<uint32_t>diff & ((1u << size) - 1)),
                 dc.size[size] + size)
            run = 0
            for k in range(1, 64):
                v = blk[k]
                if v == 0:
                    run += 1
                    continue
                while run > 15:
                    _put(w, ac.code[0xF0], ac.size[0xF0])
                    run -= 16
                mag = v if v >= 0 else -v
                if mag > 1023:
                    return -1 - <int>block
                size = _CATEGORY[mag]
                if v < 0:
                    v -= 1
                sym = (run << 4) | size
                _put(w, (ac.code[sym] << size) | (<uint32_t>v & ((1u << size) - 1)),
                     ac.size[sym] + size)
                run = 0
            if run > 0:
                _put(w, ac.code[0], ac.size[0])
            block += 1
    return 0


cdef Py_ssize_t _check_blocks(const int16_t[:, ::1] coefs, const uint8_t[::1] comps) except -1:
    """Validate the block layout; return the number of MCUs."""
    cdef Py_ssize_t bpm = comps.shape[0], b
    if coefs.shape[1] != 64:
        raise ValueError(f"coefficient rows must hold 64 values, got {coefs.shape[1]}")
    if bpm < 1 or bpm > MAX_BLOCKS_PER_MCU:
        raise ValueError(f"an MCU holds 1..{MAX_BLOCKS_PER_MCU} blocks, got {bpm}")
    for b in range(bpm):
        if comps[b] > 2:
            raise ValueError(f"component index must be 0, 1 or 2, got {comps[b]}")
    if coefs.shape[0] % bpm:
        raise ValueError(
            f"{coefs.shape[0]} blocks is not a whole number of {bpm}-block MCUs")
    return coefs.shape[0] // bpm


cdef _range_error(int err, Py_ssize_t bpm):
    block = -1 - err
    return ValueError(
        f"coefficient out of baseline range in MCU {block // bpm}, block {block % bpm}"
        " (DC difference must be within +-2047, AC within +-1023)")


def encode_intervals(
    const int16_t[:, ::1] coefs not None,
    const uint8_t[::1] comps not None,
    Py_ssize_t restart_interval=0,
    Py_ssize_t first_index=0,
) -> bytes:
    """Encode MCUs as complete restart intervals: stuffed, padded, RSTn between them."""
    cdef Py_ssize_t n_mcus = _check_blocks(coefs, comps)
    cdef Py_ssize_t bpm = comps.shape[0]
    if restart_interval < 0 or restart_interval > MAX_RESTART_INTERVAL:
        raise ValueError(
            f"restart_interval must be in 0..{MAX_RESTART_INTERVAL}, got {restart_interval}")
    if first_index < 0:
        raise ValueError(f"first_index must be >= 0, got {first_index}")
    if n_mcus == 0:
        return b""
    cdef Py_ssize_t interval = restart_interval if restart_interval > 0 else n_mcus
    cdef Py_ssize_t n_intervals = (n_mcus + interval - 1) // interval
    cdef Py_ssize_t cap = coefs.shape[0] * _MAX_BLOCK_BYTES + n_intervals * 2 + 8
    cdef BitWriter w
    w.buf = <uint8_t*>malloc(cap)
    if w.buf == NULL:
        raise MemoryError()
    w.pos = 0
    w.acc = 0
    w.nbits = 0
    w.stuff = True
    cdef int preds[3]
    cdef int err = 0
    cdef Py_ssize_t j, start, count
    cdef const int16_t* base = &coefs[0, 0]
    cdef const uint8_t* comp_ptr = &comps[0]
    try:
        with nogil:
            for j in range(n_intervals):
                # T.81 F.1.1.5.1: predictors restart at 0 with every interval.
                preds[0] = 0
                preds[1] = 0
                preds[2] = 0
                start = j * interval
                count = min(interval, n_mcus - start)
                err = _encode_mcus(&w, base + start * bpm * 64, comp_ptr, bpm, count, preds)
                if err:
                    break
                _pad_ones(&w)
                if j + 1 < n_intervals:
                    w.buf[w.pos] = 0xFF
                    w.buf[w.pos + 1] = 0xD0 + <uint8_t>((first_index + j) & 7)
                    w.pos += 2
        if err:
            # err counts blocks from the start of the failing interval.
            raise _range_error(err - <int>(start * bpm), bpm)
        return PyBytes_FromStringAndSize(<char*>w.buf, w.pos)
    finally:
        free(w.buf)


def encode_bits(
    const int16_t[:, ::1] coefs not None,
    const uint8_t[::1] comps not None,
    tuple predictors not None,
) -> tuple:
    """Encode MCUs from the given DC predictors as unstuffed bits: (data, bit count, predictors)."""
    cdef Py_ssize_t n_mcus = _check_blocks(coefs, comps)
    cdef Py_ssize_t bpm = comps.shape[0]
    if len(predictors) != 3:
        raise ValueError(f"predictors must be 3 integers, got {len(predictors)}")
    cdef int preds[3]
    cdef int i
    for i in range(3):
        preds[i] = predictors[i]
        if preds[i] < -2048 or preds[i] > 2047:
            raise ValueError(f"DC predictor out of range: {preds[i]}")
    if n_mcus == 0:
        return b"", 0, (preds[0], preds[1], preds[2])
    cdef Py_ssize_t cap = coefs.shape[0] * _MAX_BLOCK_BYTES + 8
    cdef BitWriter w
    w.buf = <uint8_t*>malloc(cap)
    if w.buf == NULL:
        raise MemoryError()
    w.pos = 0
    w.acc = 0
    w.nbits = 0
    w.stuff = False
    cdef int err
    cdef Py_ssize_t nbits
    cdef const int16_t* base = &coefs[0, 0]
    cdef const uint8_t* comp_ptr = &comps[0]
    try:
        with nogil:
            err = _encode_mcus(&w, base, comp_ptr, bpm, n_mcus, preds)
            nbits = w.pos * 8 + w.nbits
            if w.nbits > 0:
                # Zero fill: compose() ORs the next piece into these bits.
                w.buf[w.pos] = <uint8_t>(w.acc << (8 - w.nbits))
                w.pos += 1
        if err:
            raise _range_error(err, bpm)
        data = PyBytes_FromStringAndSize(<char*>w.buf, w.pos)
        return data, nbits, (preds[0], preds[1], preds[2])
    finally:
        free(w.buf)


cdef Py_ssize_t _merge(
    const uint8_t* tail, Py_ssize_t tail_bits, const uint8_t* head, Py_ssize_t head_bits,
    uint8_t* out,
) noexcept nogil:
    """Bit-concatenate tail and head into out, pad with 1-bits; return the byte count."""
    cdef Py_ssize_t full = tail_bits >> 3
    cdef int r = tail_bits & 7
    cdef Py_ssize_t head_bytes = (head_bits + 7) >> 3
    cdef Py_ssize_t total = tail_bits + head_bits
    cdef Py_ssize_t n_out = (total + 7) >> 3
    cdef Py_ssize_t i, n_words
    cdef uint8_t carry, h
    cdef uint64_t word
    memcpy(out, tail, full)
    if r == 0:
        memcpy(out + full, head, head_bytes)
    else:
        carry = tail[full] & <uint8_t>(0xFF << (8 - r))
        # Eight bytes at a time: a big-endian word shifted right by r, topped up with
        # the carried bits of the previous word.
        n_words = head_bytes >> 3
        for i in range(n_words):
            word = load_be64(head + i * 8)
            store_be64(out + full + i * 8, (<uint64_t>carry << 56) | (word >> r))
            carry = <uint8_t>(word << (8 - r))
        for i in range(n_words * 8, head_bytes):
            h = head[i]
            out[full + i] = carry | (h >> r)
            carry = <uint8_t>(h << (8 - r))
        out[full + head_bytes] = carry
    r = total & 7
    if r:
        out[n_out - 1] = (out[n_out - 1] & <uint8_t>(0xFF << (8 - r))) | <uint8_t>(0xFF >> r)
    return n_out


cdef Py_ssize_t _count_ff(const uint8_t* data, Py_ssize_t n) noexcept nogil:
    # 0xFF is about one byte in 256 of entropy-coded data: memchr skips the rest fast.
    cdef Py_ssize_t count = 0
    cdef const uint8_t* p = data
    cdef const uint8_t* end = data + n
    while p < end:
        p = <const uint8_t*>memchr(p, 0xFF, end - p)
        if p == NULL:
            break
        count += 1
        p += 1
    return count


cdef void _stuff(const uint8_t* data, Py_ssize_t n, uint8_t* out) noexcept nogil:
    # T.81 F.1.2.3: every 0xFF in entropy-coded data is followed by a stuffed 0x00.
    cdef const uint8_t* p = data
    cdef const uint8_t* end = data + n
    cdef const uint8_t* ff
    cdef Py_ssize_t run
    while p < end:
        ff = <const uint8_t*>memchr(p, 0xFF, end - p)
        if ff == NULL:
            memcpy(out, p, end - p)
            return
        run = ff - p + 1
        memcpy(out, p, run)
        out[run] = 0
        out += run + 1
        p = ff + 1


def compose(
    bytes prefix not None,
    bytes tail not None,
    Py_ssize_t tail_bits,
    bytes head not None,
    Py_ssize_t head_bits,
    bytes suffix not None,
) -> bytes:
    """Return prefix + stuffed, 1-padded (tail bits + head bits) + suffix."""
    cdef Py_ssize_t tail_len = PyBytes_GET_SIZE(tail)
    cdef Py_ssize_t head_len = PyBytes_GET_SIZE(head)
    if tail_bits < 0 or (tail_bits + 7) >> 3 != tail_len:
        raise ValueError(f"tail_bits {tail_bits} does not match {tail_len} bytes of tail")
    if head_bits < 0 or (head_bits + 7) >> 3 != head_len:
        raise ValueError(f"head_bits {head_bits} does not match {head_len} bytes of head")
    cdef Py_ssize_t prefix_len = PyBytes_GET_SIZE(prefix)
    cdef Py_ssize_t suffix_len = PyBytes_GET_SIZE(suffix)
    cdef const uint8_t* tail_ptr = <const uint8_t*>PyBytes_AS_STRING(tail)
    cdef const uint8_t* head_ptr = <const uint8_t*>PyBytes_AS_STRING(head)
    # One spare byte: the merge writes the trailing carry even when it is not needed.
    cdef uint8_t* merged = <uint8_t*>malloc(tail_len + head_len + 1)
    if merged == NULL:
        raise MemoryError()
    cdef Py_ssize_t n_merged, n_ff
    cdef char* out
    try:
        with nogil:
            n_merged = _merge(tail_ptr, tail_bits, head_ptr, head_bits, merged)
            n_ff = _count_ff(merged, n_merged)
        result = PyBytes_FromStringAndSize(NULL, prefix_len + n_merged + n_ff + suffix_len)
        out = PyBytes_AS_STRING(result)
        memcpy(out, PyBytes_AS_STRING(prefix), prefix_len)
        with nogil:
            _stuff(merged, n_merged, <uint8_t*>out + prefix_len)
        memcpy(out + prefix_len + n_merged + n_ff, PyBytes_AS_STRING(suffix), suffix_len)
        return result
    finally:
        free(merged)


# Forward DCT and quantization, exact integer arithmetic.

cdef extern from *:
    """
    #include <stdint.h>
    /* IJG jfdctint.c (jpeg_fdct_islow): the Loeffler-Ligtenberg-Moschytz 8-point DCT
       in 13-bit fixed point, rows then columns. Output is the orthonormal 2-D DCT
       scaled by 8. Integer only: the same block gives the same coefficients on every
       machine. Input samples are already level-shifted to -128..127. */
    #define JFDCT_CONST_BITS 13
    #define JFDCT_PASS1_BITS 2
    #define JFDCT_DESCALE(x, n) (((x) + ((int32_t)1 << ((n) - 1))) >> (n))
    /* The row pass keeps PASS1_BITS of extra precision, the column pass removes it. */
    #define JFDCT_ROW_DC(x) ((x) * (1 << JFDCT_PASS1_BITS))
    #define JFDCT_COL_DC(x) JFDCT_DESCALE(x, JFDCT_PASS1_BITS)
    /* One 1-D DCT of the 8 values d[0], d[s], ..., d[7s]: the DC and the 4th term
       go through DC(), the others are shifted right by ac_shift with rounding. */
    #define JFDCT_1D(d, s, DC, ac_shift) do { \
        int32_t t0 = d[0 * s] + d[7 * s], t7 = d[0 * s] - d[7 * s]; \
        int32_t t1 = d[1 * s] + d[6 * s], t6 = d[1 * s] - d[6 * s]; \
        int32_t t2 = d[2 * s] + d[5 * s], t5 = d[2 * s] - d[5 * s]; \
        int32_t t3 = d[3 * s] + d[4 * s], t4 = d[3 * s] - d[4 * s]; \
        int32_t t10 = t0 + t3, t13 = t0 - t3, t11 = t1 + t2, t12 = t1 - t2; \
        int32_t z1, z2, z3, z4, z5; \
        d[0 * s] = DC(t10 + t11); \
        d[4 * s] = DC(t10 - t11); \
        z1 = (t12 + t13) * 4433;                                  /* 0.541196100 */ \
        d[2 * s] = JFDCT_DESCALE(z1 + t13 * 6270, ac_shift);      /* 0.765366865 */ \
        d[6 * s] = JFDCT_DESCALE(z1 - t12 * 15137, ac_shift);     /* 1.847759065 */ \
        z1 = t4 + t7; z2 = t5 + t6; z3 = t4 + t6; z4 = t5 + t7; \
        z5 = (z3 + z4) * 9633;                                    /* 1.175875602 */ \
        t4 *= 2446;                                               /* 0.298631336 */ \
        t5 *= 16819;                                              /* 2.053119869 */ \
        t6 *= 25172;                                              /* 3.072711026 */ \
        t7 *= 12299;                                              /* 1.501321110 */ \
        z1 *= -7373;                                              /* 0.899976223 */ \
        z2 *= -20995;                                             /* 2.562915447 */ \
        z3 = z3 * -16069 + z5;                                    /* 1.961570560 */ \
        z4 = z4 * -3196 + z5;                                     /* 0.390180644 */ \
        d[7 * s] = JFDCT_DESCALE(t4 + z1 + z3, ac_shift); \
        d[5 * s] = JFDCT_DESCALE(t5 + z2 + z4, ac_shift); \
        d[3 * s] = JFDCT_DESCALE(t6 + z2 + z3, ac_shift); \
        d[1 * s] = JFDCT_DESCALE(t7 + z1 + z4, ac_shift); \
    } while (0)

    /* 8x8 samples to quantized coefficients in natural order. recip and half hold
       each coefficient's divisor (8 * quantizer) as a 32-bit reciprocal and its half. */
    static inline void jpegenc_fdct_quantize(
        const uint8_t* src, const uint32_t* recip, const uint32_t* half, int16_t* dst
    ) {
        int32_t w[64];
        int k;
        for (k = 0; k < 64; k++) w[k] = (int32_t)src[k] - 128;
        for (k = 0; k < 64; k += 8) {
            int32_t* d = w + k;
            JFDCT_1D(d, 1, JFDCT_ROW_DC, JFDCT_CONST_BITS - JFDCT_PASS1_BITS);
        }
        /* Columns side by side: the same operations on 8 lanes, which vectorizes. */
        for (k = 0; k < 8; k++) {
            int32_t* d = w + k;
            JFDCT_1D(d, 8, JFDCT_COL_DC, JFDCT_CONST_BITS + JFDCT_PASS1_BITS);
        }
        /* jcdctmgr.c: divide by 8 * quantizer, rounding half away from zero, without
           branches. The reciprocal is exact here (see fdct_quantize). */
        for (k = 0; k < 64; k++) {
            int32_t sign = w[k] >> 31;
            uint32_t mag = (uint32_t)((w[k] ^ sign) - sign) + half[k];
            int32_t q = (int32_t)(((uint64_t)mag * recip[k]) >> 32);
            dst[k] = (int16_t)((q ^ sign) - sign);
        }
    }
    """
    void fdct_quantize_block "jpegenc_fdct_quantize"(
        const uint8_t* src, const uint32_t* recip, const uint32_t* half, int16_t* dst
    ) noexcept nogil

# Zigzag position of each natural (row-major) coefficient index, T.81 Figure 5.
cdef uint8_t _ZIGZAG_OF[64]


cdef int _init_zigzag() except -1:
    cdef int k = 0, s, i, row
    for s in range(15):  # anti-diagonals; odd ones run down-left, even ones up-right
        for i in range(max(0, s - 7), min(s, 7) + 1):
            row = i if s % 2 else s - i
            _ZIGZAG_OF[row * 8 + s - row] = k
            k += 1
    return 0


_init_zigzag()


@cython.boundscheck(False)  # i, j run over the shapes themselves
@cython.wraparound(False)
cdef void _fdct_quantize_blocks(
    const uint8_t[:, :, ::1] blocks, const uint32_t* recip, const uint32_t* half,
    int16_t[:, :, :] out,
) noexcept nogil:
    cdef int16_t natural[64]
    cdef Py_ssize_t i, j
    cdef int k
    cdef int16_t* dst
    for i in range(blocks.shape[0]):
        for j in range(blocks.shape[1]):
            fdct_quantize_block(&blocks[i, j, 0], recip, half, natural)
            dst = &out[i, j, 0]
            for k in range(64):
                dst[_ZIGZAG_OF[k]] = natural[k]


def fdct_quantize(
    const uint8_t[:, :, ::1] blocks not None,
    const uint16_t[::1] quant not None,
    int16_t[:, :, :] out not None,
) -> None:
    """Quantized DCT coefficients, zigzag order, of 8x8 sample blocks.

    ``blocks`` is (m, n, 64) samples in natural order, ``quant`` the 64 quantizers
    (1..255) in natural order, and ``out`` (m, n, 64) int16 receives the coefficients;
    it may be a view with any stride on its first two axes, such as a component's
    slots in an array of MCUs.
    """
    if blocks.shape[2] != 64 or out.shape[2] != 64:
        raise ValueError("blocks and out rows must hold 64 values")
    if out.strides[2] != sizeof(int16_t):
        raise ValueError("out rows must be contiguous")
    if blocks.shape[0] != out.shape[0] or blocks.shape[1] != out.shape[1]:
        raise ValueError(
            f"out is {out.shape[0]}x{out.shape[1]} blocks, "
            f"blocks are {blocks.shape[0]}x{blocks.shape[1]}")
    if quant.shape[0] != 64:
        raise ValueError(f"quant must hold 64 quantizers, got {quant.shape[0]}")
    cdef uint32_t recip[64]
    cdef uint32_t half[64]
    cdef uint32_t divisor
    cdef int k
    for k in range(64):
        if not 1 <= quant[k] <= 255:
            raise ValueError(f"quantizer {k} is {quant[k]}, outside 1..255")
        divisor = 8u * quant[k]
        # Dividends n stay below 2**17 and divisors d below 2**11: with m = 2**32 / d + e
        # (0 < e <= 1), n * m >> 32 overshoots n / d by n * e / 2**32 < 1 / d, too little
        # to reach the next integer, so it is floor(n / d) exactly.
        recip[k] = <uint32_t>((<uint64_t>1 << 32) // divisor + 1)
        half[k] = divisor >> 1
    with nogil:
        _fdct_quantize_blocks(blocks, recip, half, out)
