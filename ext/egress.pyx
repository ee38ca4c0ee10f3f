# cython: language_level=3
"""RTP egress: one frame's payloads, many viewers, few system calls.

A frame is packetized once per track into one buffer of payloads (`data`,
with `offsets[i]:offsets[i+1]` the i-th payload). For each viewer this module
writes only the 12-byte RTP header (its own SSRC, sequence number and
timestamp) and points the kernel at the shared payload bytes with scattered
iovecs. Every UDP viewer's packets of a frame go out in batched `sendmmsg`
calls, one message per viewer and run of equal-sized packets when the
kernel accepts UDP GSO (`UDP_SEGMENT`), one message per packet otherwise.
The GIL is released around the system calls.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.errno cimport EAGAIN, EINVAL, EIO, errno
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset

cimport cython


from socketapi cimport (
    AF_INET,
    AF_INET6,
    CMSG_DATA,
    CMSG_FIRSTHDR,
    CMSG_LEN,
    CMSG_SPACE,
    MSG_DONTWAIT,
    cmsghdr,
    iovec,
    mmsghdr,
    msghdr,
    sendmmsg,
    socklen_t,
    sockaddr_storage,
)


cdef extern from "<netinet/in.h>" nogil:
    struct in_addr:
        uint32_t s_addr

    struct sockaddr_in:
        unsigned short sin_family
        uint16_t sin_port
        in_addr sin_addr

    struct in6_addr:
        unsigned char s6_addr[16]

    struct sockaddr_in6:
        unsigned short sin6_family
        uint16_t sin6_port
        uint32_t sin6_flowinfo
        in6_addr sin6_addr
        uint32_t sin6_scope_id

    uint16_t htons(uint16_t)


cdef extern from "<arpa/inet.h>" nogil:
    int inet_pton(int af, const char *src, void *dst)


cdef extern from *:
    """
    #ifndef SOL_UDP
    #define SOL_UDP 17
    #endif
    #ifndef UDP_SEGMENT
    #define UDP_SEGMENT 103
    #endif
    """
    int SOL_UDP
    int UDP_SEGMENT


cdef enum:
    HEADER = 12
    MAX_BATCH = 1024          # messages per sendmmsg (UIO_MAXIOV)
    GSO_MAX_SEGMENTS = 64     # UDP_MAX_SEGMENTS on every kernel that has GSO
    GSO_MAX_BYTES = 65000     # one GSO send is one UDP datagram before segmentation
    MAX_PAYLOAD = 65000

cdef struct Dest:
    sockaddr_storage addr
    socklen_t addrlen
    uint32_t ssrc
    uint16_t seq
    uint32_t ts_offset
    int64_t period        # 90 kHz ticks between admitted frames; 0 = every frame
    int64_t tolerance
    int64_t next_due
    bint has_due
    bint playing
    bint gated            # the codec has inter frames: never start or resume between IDRs
    bint wait_key         # skip frames until a keyframe
    uint64_t packets
    uint64_t octets
    uint64_t frames
    uint64_t fps_dropped
    uint64_t send_failed
    uint64_t key_waits
    uint32_t last_ts
    int id


cdef inline void put_header(uint8_t *h, int pt, bint marker, uint16_t seq, uint32_t ts,
                            uint32_t ssrc) noexcept nogil:
    h[0] = 0x80
    h[1] = (pt & 0x7F) | (0x80 if marker else 0)
    h[2] = seq >> 8
    h[3] = seq & 0xFF
    h[4] = ts >> 24
    h[5] = (ts >> 16) & 0xFF
    h[6] = (ts >> 8) & 0xFF
    h[7] = ts & 0xFF
    h[8] = ssrc >> 24
    h[9] = (ssrc >> 16) & 0xFF
    h[10] = (ssrc >> 8) & 0xFF
    h[11] = ssrc & 0xFF


cdef int fill_addr(Dest *d, str host, int port) except -1:
    cdef bytes h = host.encode("ascii")
    cdef sockaddr_in *v4 = <sockaddr_in *>&d.addr
    cdef sockaddr_in6 *v6 = <sockaddr_in6 *>&d.addr
    if not 0 < port < 65536:
        raise ValueError(f"port must be 1..65535, got {port}")
    memset(&d.addr, 0, sizeof(sockaddr_storage))
    if inet_pton(AF_INET, h, &v4.sin_addr) == 1:
        v4.sin_family = AF_INET
        v4.sin_port = htons(port)
        d.addrlen = sizeof(sockaddr_in)
        return 0
    if inet_pton(AF_INET6, h, &v6.sin6_addr) == 1:
        v6.sin6_family = AF_INET6
        v6.sin6_port = htons(port)
        d.addrlen = sizeof(sockaddr_in6)
        return 0
    raise ValueError(f"not a numeric IP address: {host!r}")


cdef struct Batch:
    Py_ssize_t first
    Py_ssize_t count
    uint16_t segment


def frame_batches(const uint32_t[::1] offsets, bint gso):
    """(first packet, count, segment size) per message of one viewer's frame."""
    cdef Py_ssize_t n = offsets.shape[0] - 1
    cdef Batch *b = <Batch *>malloc(max(n, 1) * sizeof(Batch))
    if b == NULL:
        raise MemoryError()
    try:
        nb = _batches(offsets, gso, b)
        return [(b[i].first, b[i].count, b[i].segment) for i in range(nb)]
    finally:
        free(b)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef Py_ssize_t _batches(const uint32_t[::1] offsets, bint gso, Batch *out) noexcept:
    """Split a frame's packets into messages; `out` has room for one per packet."""
    cdef Py_ssize_t n = offsets.shape[0] - 1
    cdef Py_ssize_t i = 0, j, nb = 0
    cdef uint32_t seg, size
    while i < n:
        seg = offsets[i + 1] - offsets[i] + HEADER
        j = i + 1
        if gso:
            # A GSO message carries equal segments; only its last may be shorter.
            while (j < n and j - i < GSO_MAX_SEGMENTS and (j - i + 1) * seg <= GSO_MAX_BYTES):
                size = offsets[j + 1] - offsets[j] + HEADER
                if size > seg:
                    break
                j += 1
                if size < seg:
                    break
        out[nb].first = i
        out[nb].count = j - i
        out[nb].segment = <uint16_t>seg
        nb += 1
        i = j
    return nb


cdef class UdpFanout:
    """Every UDP destination of one track on one socket: unicast viewers or a multicast group."""

    cdef int fd
    cdef int payload_type
    cdef public bint gso
    cdef Dest *dests
    cdef int count
    cdef int capacity
    cdef int next_id
    cdef dict slots               # id -> index in dests
    cdef uint8_t *headers
    cdef size_t headers_cap
    cdef iovec *iov
    cdef size_t iov_cap
    cdef mmsghdr *msgs
    cdef uint8_t *cmsgs
    cdef int *msg_dest
    cdef public uint64_t gso_fallbacks

    def __cinit__(self, int fd, int payload_type, bint gso=True):
        if fd < 0:
            raise ValueError("fd must be an open socket")
        if not 0 <= payload_type < 128:
            raise ValueError("payload type must be 0..127")
        self.fd = fd
        self.payload_type = payload_type
        self.gso = gso
        self.slots = {}
        self.msgs = <mmsghdr *>malloc(MAX_BATCH * sizeof(mmsghdr))
        self.cmsgs = <uint8_t *>malloc(MAX_BATCH * CMSG_SPACE(sizeof(uint16_t)))
        self.msg_dest = <int *>malloc(MAX_BATCH * sizeof(int))
        if self.msgs == NULL or self.cmsgs == NULL or self.msg_dest == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.dests)
        free(self.headers)
        free(self.iov)
        free(self.msgs)
        free(self.cmsgs)
        free(self.msg_dest)

    def __len__(self):
        return self.count

    def add(self, str host, int port, uint32_t ssrc, uint16_t seq, uint32_t ts_offset,
            double fps=0.0, bint playing=False, bint wait_keyframe=False) -> int:
        """Add a destination; returns its handle."""
        cdef Dest *grown
        if self.count == self.capacity:
            cap = max(16, self.capacity * 2)
            grown = <Dest *>realloc(self.dests, cap * sizeof(Dest))
            if grown == NULL:
                raise MemoryError()
            self.dests = grown
            self.capacity = cap
        cdef Dest *d = &self.dests[self.count]
        memset(d, 0, sizeof(Dest))
        fill_addr(d, host, port)
        d.ssrc = ssrc
        d.seq = seq
        d.ts_offset = ts_offset
        d.playing = playing
        d.gated = d.wait_key = wait_keyframe
        d.id = self.next_id
        self._set_fps(d, fps)
        self.slots[d.id] = self.count
        self.next_id += 1
        self.count += 1
        return d.id

    cdef void _set_fps(self, Dest *d, double fps):
        if fps > 0:
            d.period = <int64_t>(90000.0 / fps + 0.5)
            d.tolerance = d.period // 4
        else:
            d.period = 0
        d.has_due = False

    cdef Dest *_dest(self, int handle) except NULL:
        slot = self.slots.get(handle)
        if slot is None:
            raise KeyError(handle)
        return &self.dests[<int>slot]

    def remove(self, int handle) -> None:
        """Forget a destination; harmless if it is gone."""
        slot = self.slots.pop(handle, None)
        if slot is None:
            return
        cdef int i = slot
        self.count -= 1
        if i != self.count:
            self.dests[i] = self.dests[self.count]
            self.slots[self.dests[i].id] = i

    def set_playing(self, int handle, bint playing, bint wait_keyframe=False) -> None:
        """PLAY (True) or PAUSE (False); with wait_keyframe, (re)start at the next keyframe."""
        cdef Dest *d = self._dest(handle)
        d.playing = playing
        if wait_keyframe:
            d.wait_key = True

    def set_fps(self, int handle, double fps) -> None:
        """Limit a destination to `fps` whole frames per second (0: no limit)."""
        self._set_fps(self._dest(handle), fps)

    def next_seq(self, int handle) -> int:
        """The sequence number the destination's next packet will carry."""
        return self._dest(handle).seq

    def stats(self, int handle) -> dict:
        """Counters of one destination, for RTCP sender reports and the sessions API."""
        cdef Dest *d = self._dest(handle)
        return {
            "ssrc": d.ssrc,
            "seq": d.seq,
            "packets": d.packets,
            "octets": d.octets,
            "frames": d.frames,
            "fps_dropped": d.fps_dropped,
            "send_failed": d.send_failed,
            "key_waits": d.key_waits,
            "last_ts": d.last_ts,
        }

    cdef int _reserve(self, size_t nheaders, size_t niov) except -1:
        cdef void *p
        if nheaders * HEADER > self.headers_cap:
            p = realloc(self.headers, nheaders * HEADER)
            if p == NULL:
                raise MemoryError()
            self.headers = <uint8_t *>p
            self.headers_cap = nheaders * HEADER
        if niov > self.iov_cap:
            p = realloc(self.iov, niov * sizeof(iovec))
            if p == NULL:
                raise MemoryError()
            self.iov = <iovec *>p
            self.iov_cap = niov
        return 0

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def send(self, const uint8_t[::1] data, const uint32_t[::1] offsets, uint64_t pts,
             bint keyframe=True) -> tuple:
        """Send one frame to every playing destination that is due for it.

        A destination waiting for a keyframe skips frames until one comes.

        Returns (destinations sent to, packets sent, destinations that were due
        but failed, destinations skipped by their frame-rate limit, destinations
        waiting for a keyframe).
        """
        cdef Py_ssize_t n = offsets.shape[0] - 1
        cdef Py_ssize_t i
        if n <= 0:
            return (0, 0, 0, 0, 0)
        # Validate the layout once; the loops below trust it.
        if offsets[0] != 0 or offsets[n] > <uint64_t>data.shape[0]:
            raise ValueError("payload offsets do not fit the data")
        for i in range(n):
            if offsets[i + 1] < offsets[i] or offsets[i + 1] - offsets[i] > MAX_PAYLOAD:
                raise ValueError(f"payload {i} has a bad length")
        cdef bint use_gso = self.gso
        while True:
            result = self._send(data, offsets, n, pts, use_gso, keyframe)
            if result is not None:
                return result
            # The kernel refused GSO: remember, and send this frame again without it.
            self.gso = use_gso = False
            self.gso_fallbacks += 1

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef object _send(self, const uint8_t[::1] data, const uint32_t[::1] offsets,
                      Py_ssize_t n, uint64_t pts, bint use_gso, bint keyframe):
        cdef Py_ssize_t k, p
        cdef Dest *d
        cdef int due = 0, skipped = 0, waiting = 0
        cdef int64_t t = <int64_t>pts
        cdef uint32_t ts
        # Decide who gets this frame and write their headers.
        cdef int *order = <int *>malloc((self.count + 1) * sizeof(int))
        cdef Batch *batches = <Batch *>malloc(n * sizeof(Batch))
        if order == NULL or batches == NULL:
            free(order)
            free(batches)
            raise MemoryError()
        cdef Py_ssize_t nb = _batches(offsets, use_gso, batches)
        try:
            for k in range(self.count):
                d = &self.dests[k]
                if not d.playing:
                    continue
                if d.wait_key and not keyframe:
                    d.key_waits += 1
                    waiting += 1
                    continue
                if d.period:
                    if d.has_due and not (t - d.next_due > d.period or t < d.next_due - 2 * d.period):
                        if t < d.next_due - d.tolerance:
                            d.fps_dropped += 1
                            skipped += 1
                            # A dropped H.264 frame breaks the references: resume at an IDR.
                            d.wait_key = d.gated
                            continue
                        d.next_due += d.period
                    else:
                        d.next_due = t + d.period
                        d.has_due = True
                d.wait_key = False
                order[due] = k
                due += 1
            if due == 0:
                return (0, 0, 0, skipped, waiting)
            self._reserve(<size_t>due * n, <size_t>due * n * 2)
            for k in range(due):
                d = &self.dests[order[k]]
                ts = <uint32_t>((<uint64_t>d.ts_offset + pts) & 0xFFFFFFFF)
                for p in range(n):
                    put_header(self.headers + (k * n + p) * HEADER, self.payload_type,
                               p == n - 1, <uint16_t>(d.seq + p), ts, d.ssrc)
                    self.iov[(k * n + p) * 2].iov_base = self.headers + (k * n + p) * HEADER
                    self.iov[(k * n + p) * 2].iov_len = HEADER
                    self.iov[(k * n + p) * 2 + 1].iov_base = <void *>&data[offsets[p]]
                    self.iov[(k * n + p) * 2 + 1].iov_len = offsets[p + 1] - offsets[p]
            sent = self._flush(order, due, n, batches, nb, use_gso)
            if sent is None:
                return None
            ok, failed = sent
            # Sequence numbers advance for every due viewer, sent or not: a
            # failed send is loss, which receivers must be able to see.
            for k in range(due):
                d = &self.dests[order[k]]
                d.seq = <uint16_t>(d.seq + n)
                d.last_ts = <uint32_t>((<uint64_t>d.ts_offset + pts) & 0xFFFFFFFF)
            return (ok, ok * n, failed, skipped, waiting)
        finally:
            free(order)
            free(batches)

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef object _flush(self, int *order, int due, Py_ssize_t n, Batch *batches, Py_ssize_t nb,
                       bint use_gso):
        cdef size_t per_cmsg = CMSG_SPACE(sizeof(uint16_t))
        cdef Py_ssize_t k, b, m = 0, start
        cdef Dest *d
        cdef msghdr *h
        cdef cmsghdr *c
        cdef uint16_t seg
        cdef int ret, err = 0, ok = 0, failed = 0
        cdef int *dest_failed = <int *>malloc(due * sizeof(int))
        if dest_failed == NULL:
            raise MemoryError()
        memset(dest_failed, 0, due * sizeof(int))
        cdef int gso_refused = 0
        cdef uint64_t octets = 0
        for k in range(n):
            octets += self.iov[k * 2 + 1].iov_len
        try:
            k = 0
            b = 0
            while k < due:
                # Fill up to MAX_BATCH messages.
                m = 0
                while k < due and m < MAX_BATCH:
                    d = &self.dests[order[k]]
                    seg = batches[b].segment
                    h = &self.msgs[m].msg_hdr
                    h.msg_name = &d.addr
                    h.msg_namelen = d.addrlen
                    h.msg_iov = &self.iov[(k * n + batches[b].first) * 2]
                    h.msg_iovlen = batches[b].count * 2
                    h.msg_flags = 0
                    if use_gso and batches[b].count > 1:
                        h.msg_control = self.cmsgs + m * per_cmsg
                        h.msg_controllen = per_cmsg
                        c = CMSG_FIRSTHDR(h)
                        c.cmsg_level = SOL_UDP
                        c.cmsg_type = UDP_SEGMENT
                        c.cmsg_len = CMSG_LEN(sizeof(uint16_t))
                        memcpy(CMSG_DATA(c), &seg, sizeof(uint16_t))
                    else:
                        h.msg_control = NULL
                        h.msg_controllen = 0
                    self.msg_dest[m] = k
                    m += 1
                    b += 1
                    if b == nb:
                        b = 0
                        k += 1
                start = 0
                while start < m:
                    with nogil:
                        ret = sendmmsg(self.fd, &self.msgs[start], m - start, MSG_DONTWAIT)
                        err = errno
                    if ret > 0:
                        start += ret
                        continue
                    if use_gso and (err == EIO or err == EINVAL) and ok == 0 and failed == 0:
                        gso_refused = 1
                        break
                    # This message failed: count it against its viewer and go on.
                    dest_failed[self.msg_dest[start]] = 1
                    start += 1
                    if err == EAGAIN:  # EWOULDBLOCK is the same value on Linux
                        # The socket buffer is full: every message left in this
                        # batch would fail the same way.
                        while start < m:
                            dest_failed[self.msg_dest[start]] = 1
                            start += 1
                if gso_refused:
                    return None
            for k in range(due):
                d = &self.dests[order[k]]
                if dest_failed[k]:
                    d.send_failed += 1
                    failed += 1
                else:
                    d.frames += 1
                    d.packets += n
                    d.octets += octets
                    ok += 1
            return ok, failed
        finally:
            free(dest_failed)


@cython.boundscheck(False)
@cython.wraparound(False)
def interleave(const uint8_t[::1] data, const uint32_t[::1] offsets, int channel,
               int payload_type, uint32_t ssrc, uint16_t seq, uint32_t timestamp) -> bytes:
    """One frame as RTSP interleaved frames (`$`, channel, length, RTP packet) for a TCP viewer."""
    cdef Py_ssize_t n = offsets.shape[0] - 1
    cdef Py_ssize_t i, total = 0
    cdef uint32_t size
    if n <= 0:
        return b""
    if not 0 <= channel < 256:
        raise ValueError("channel must be 0..255")
    if offsets[0] != 0 or offsets[n] > <uint64_t>data.shape[0]:
        raise ValueError("payload offsets do not fit the data")
    for i in range(n):
        if offsets[i + 1] < offsets[i] or offsets[i + 1] - offsets[i] + HEADER > 65535:
            raise ValueError(f"payload {i} has a bad length")
        total += 4 + HEADER + offsets[i + 1] - offsets[i]
    cdef bytes out = PyBytes_FromStringAndSize(NULL, total)
    cdef uint8_t *w = <uint8_t *>PyBytes_AS_STRING(out)
    with nogil:
        for i in range(n):
            size = offsets[i + 1] - offsets[i]
            w[0] = 0x24
            w[1] = channel
            w[2] = (size + HEADER) >> 8
            w[3] = (size + HEADER) & 0xFF
            put_header(w + 4, payload_type, i == n - 1, <uint16_t>(seq + i), timestamp, ssrc)
            memcpy(w + 4 + HEADER, &data[offsets[i]], size)
            w += 4 + HEADER + size
    return out
