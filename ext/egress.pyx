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


from clock cimport monotonic
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



# -- token buckets ---------------------------------------------------------------------

cdef struct Bucket:
    double rate          # bits per second; 0: no limit
    double capacity      # bits
    double tokens
    double last


cdef inline void bucket_init(Bucket *b, double rate, double capacity, double now) noexcept nogil:
    b.rate = rate
    b.capacity = capacity
    b.tokens = capacity
    b.last = now


cdef inline bint bucket_allows(Bucket *b, double bits, double now) noexcept nogil:
    """Refill, then whether a whole frame of `bits` may go now."""
    if b.rate <= 0:
        return True
    # A frame larger than the whole burst waits until the bucket holds all of
    # it: the bucket may fill past its burst for that frame only, so the long-run
    # rate is the configured one and the frame is not starved forever.
    cdef double cap = b.capacity if b.capacity >= bits else bits
    b.tokens += (now - b.last) * b.rate
    if b.tokens > cap:
        b.tokens = cap
    b.last = now
    return b.tokens >= bits


cdef inline void bucket_take(Bucket *b, double bits) noexcept nogil:
    if b.rate > 0:
        b.tokens -= bits


cdef class TokenBucket:
    """Bits per second with a burst, spent by whole frames (a viewer's, or a channel's)."""

    cdef Bucket b

    def __cinit__(self, double rate, double capacity, now=None):
        if rate < 0 or capacity <= 0:
            raise ValueError("rate must be >= 0 and capacity > 0")
        bucket_init(&self.b, rate, capacity, monotonic() if now is None else now)

    @property
    def rate(self) -> float:
        return self.b.rate

    @property
    def capacity(self) -> float:
        return self.b.capacity

    @property
    def tokens(self) -> float:
        return self.b.tokens

    def allows(self, double bits, now=None) -> bool:
        """Whether a frame of `bits` may go (refills the bucket first)."""
        return bucket_allows(&self.b, bits, monotonic() if now is None else now)

    def take(self, double bits) -> None:
        """Spend a frame that was allowed."""
        bucket_take(&self.b, bits)


def admit(double bits, TokenBucket viewer, TokenBucket shared, now=None) -> bool:
    """Whether a frame may go to a viewer under its own bucket and its channel's; spends both."""
    cdef double t = monotonic() if now is None else now
    if viewer is not None and not bucket_allows(&viewer.b, bits, t):
        return False
    if shared is not None and not bucket_allows(&shared.b, bits, t):
        return False
    if viewer is not None:
        bucket_take(&viewer.b, bits)
    if shared is not None:
        bucket_take(&shared.b, bits)
    return True


# -- destinations ----------------------------------------------------------------------

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
    Bucket bucket         # the viewer's own rate limit
    uint64_t packets
    uint64_t octets
    uint64_t frames
    uint64_t fps_dropped
    uint64_t rate_dropped
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
        nb = _batches(offsets, 0, n, gso, b)
        return [(b[i].first, b[i].count, b[i].segment) for i in range(nb)]
    finally:
        free(b)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef Py_ssize_t _batches(const uint32_t[::1] offsets, Py_ssize_t first, Py_ssize_t last,
                         bint gso, Batch *out) noexcept:
    """Split packets first..last-1 into messages; `out` has room for one per packet."""
    cdef Py_ssize_t i = first, j, nb = 0
    cdef uint32_t seg, size
    while i < last:
        seg = offsets[i + 1] - offsets[i] + HEADER
        j = i + 1
        if gso:
            # A GSO message carries equal segments; only its last may be shorter.
            while (j < last and j - i < GSO_MAX_SEGMENTS and (j - i + 1) * seg <= GSO_MAX_BYTES):
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
    """Every UDP destination of one track on one socket: unicast viewers or a multicast group.

    A frame goes out in three steps so that the caller can pace it: `begin`
    decides who gets it (play state, keyframe gating, frame-rate and bit-rate
    limits) and writes every header; `flush` sends a range of its packets to
    everyone due; `end` accounts for it. `send` does the three at once.
    """

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
    cdef public TokenBucket shared  # the channel's bucket, spent by every viewer of it
    cdef uint64_t rotation
    # The frame in flight, between begin() and end().
    cdef object f_data
    cdef const uint8_t[::1] f_view
    cdef const uint32_t[::1] f_offsets
    cdef Py_ssize_t f_n
    cdef int *f_order
    cdef int *f_failed
    cdef int f_due
    cdef int f_order_cap
    cdef bint f_open
    cdef uint64_t f_pts
    cdef uint64_t f_octets

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
        free(self.f_order)
        free(self.f_failed)

    def __len__(self):
        return self.count

    def add(self, str host, int port, uint32_t ssrc, uint16_t seq, uint32_t ts_offset,
            double fps=0.0, bint playing=False, bint wait_keyframe=False,
            double bitrate=0.0, double burst=0.0) -> int:
        """Add a destination; returns its handle."""
        cdef Dest *grown
        if self.f_open:
            raise RuntimeError("a frame is in flight")
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
        bucket_init(&d.bucket, bitrate, burst if burst > 0 else max(bitrate, 1.0), monotonic())
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
        if self.f_open:
            self._abort()
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

    def set_bitrate(self, int handle, double bitrate, double burst, now=None) -> None:
        """Limit a destination to `bitrate` bits per second with `burst` bits of slack."""
        bucket_init(&self._dest(handle).bucket, bitrate, burst if burst > 0 else max(bitrate, 1.0),
                    monotonic() if now is None else now)

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
            "rate_dropped": d.rate_dropped,
            "send_failed": d.send_failed,
            "key_waits": d.key_waits,
            "last_ts": d.last_ts,
        }

    @property
    def in_flight(self) -> bool:
        """Whether a frame was begun and not ended."""
        return self.f_open

    cdef int _reserve(self, size_t nheaders, size_t niov, int ndests) except -1:
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
        if ndests > self.f_order_cap:
            p = realloc(self.f_order, ndests * sizeof(int))
            if p == NULL:
                raise MemoryError()
            self.f_order = <int *>p
            p = realloc(self.f_failed, ndests * sizeof(int))
            if p == NULL:
                raise MemoryError()
            self.f_failed = <int *>p
            self.f_order_cap = ndests
        return 0

    def send(self, const uint8_t[::1] data, const uint32_t[::1] offsets, uint64_t pts,
             bint keyframe=True, now=None) -> tuple:
        """Send one frame to everyone due, in one burst.

        Returns (destinations sent to, packets sent, destinations that were due
        but failed, skipped by their frame-rate limit, waiting for a keyframe,
        skipped by a bit-rate limit).
        """
        skipped, waiting, limited = self.begin(data, offsets, pts, keyframe, now)
        self.flush(0, offsets.shape[0] - 1)
        ok, packets, failed = self.end()
        return (ok, packets, failed, skipped, waiting, limited)

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def begin(self, const uint8_t[::1] data, const uint32_t[::1] offsets, uint64_t pts,
              bint keyframe=True, now=None) -> tuple:
        """Decide who gets this frame and write their headers (at `now`, monotonic seconds).

        Returns (skipped by frame-rate limits, waiting for a keyframe, skipped by
        bit-rate limits).
        """
        cdef Py_ssize_t n = offsets.shape[0] - 1
        cdef Py_ssize_t i, p, k, j
        if self.f_open:
            raise RuntimeError("the previous frame was not ended")
        # Validate the layout once; the loops below trust it.
        if n > 0 and (offsets[0] != 0 or offsets[n] > <uint64_t>data.shape[0]):
            raise ValueError("payload offsets do not fit the data")
        for i in range(n):
            if offsets[i + 1] < offsets[i] or offsets[i + 1] - offsets[i] > MAX_PAYLOAD:
                raise ValueError(f"payload {i} has a bad length")
        self._reserve(<size_t>max(self.count, 1) * max(n, 1), <size_t>max(self.count, 1) * max(n, 1) * 2,
                      max(self.count, 1))
        cdef int skipped = 0, waiting = 0, limited = 0, due = 0
        cdef int64_t t = <int64_t>pts
        cdef double t_now = monotonic() if now is None else now
        cdef double bits = 8.0 * ((offsets[n] if n > 0 else 0) + HEADER * n)
        cdef Dest *d
        cdef uint32_t ts
        cdef TokenBucket shared = self.shared
        # Start at a different viewer each frame: under a shared channel limit,
        # the viewers that lose frames change from frame to frame.
        cdef int start = <int>(self.rotation % <uint64_t>max(self.count, 1))
        for j in range(self.count if n > 0 else 0):
            k = (start + j) % self.count
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
            if not bucket_allows(&d.bucket, bits, t_now) or (
                shared is not None and not bucket_allows(&shared.b, bits, t_now)
            ):
                d.rate_dropped += 1
                limited += 1
                d.wait_key = d.gated
                continue
            bucket_take(&d.bucket, bits)
            if shared is not None:
                bucket_take(&shared.b, bits)
                # Round robin by service: the next frame starts after the last viewer
                # served. Rotating by frame count instead aliases with the cap's period
                # (a frame every 3rd under a cap, 3 viewers) and starves the others.
                self.rotation = <uint64_t>(k + 1)
            d.wait_key = False
            self.f_order[due] = <int>k
            self.f_failed[due] = 0
            ts = <uint32_t>((<uint64_t>d.ts_offset + pts) & 0xFFFFFFFF)
            for p in range(n):
                put_header(self.headers + (due * n + p) * HEADER, self.payload_type,
                           p == n - 1, <uint16_t>(d.seq + p), ts, d.ssrc)
                self.iov[(due * n + p) * 2].iov_base = self.headers + (due * n + p) * HEADER
                self.iov[(due * n + p) * 2].iov_len = HEADER
                self.iov[(due * n + p) * 2 + 1].iov_base = <void *>&data[offsets[p]]
                self.iov[(due * n + p) * 2 + 1].iov_len = offsets[p + 1] - offsets[p]
            due += 1
        self.f_data = data.base if data.base is not None else data
        self.f_view = data
        self.f_offsets = offsets
        self.f_n = n
        self.f_due = due
        self.f_pts = pts
        self.f_octets = offsets[n] if n > 0 else 0
        self.f_open = True
        return (skipped, waiting, limited)

    @property
    def due(self) -> int:
        """Destinations getting the frame in flight."""
        return self.f_due if self.f_open else 0

    def flush(self, Py_ssize_t first, Py_ssize_t count, int lo=0, int hi=-1) -> int:
        """Send packets first..first+count-1 of the frame in flight to the due
        destinations lo..hi-1 (all of them by default), in `due` order.

        Returns how many destinations failed for this range (socket full, ...).
        """
        if not self.f_open:
            raise RuntimeError("no frame in flight")
        cdef Py_ssize_t n = self.f_n
        if first < 0 or count < 0 or first + count > n:
            raise ValueError("packet range outside the frame")
        if hi < 0 or hi > self.f_due:
            hi = self.f_due
        if lo < 0 or lo > hi:
            raise ValueError("destination range outside the frame's")
        if count == 0 or lo == hi:
            return 0
        cdef Batch *batches = <Batch *>malloc(count * sizeof(Batch))
        if batches == NULL:
            raise MemoryError()
        cdef Py_ssize_t nb
        cdef object failed
        try:
            while True:
                nb = _batches(self.f_offsets, first, first + count, self.gso, batches)
                failed = self._flush(batches, nb, self.gso, lo, hi)
                if failed is not None:
                    return failed
                # The kernel refused GSO: remember, and send this range again without it.
                self.gso = False
                self.gso_fallbacks += 1
        finally:
            free(batches)

    def end(self) -> tuple:
        """Account for the frame in flight; returns (sent to, packets sent, failed)."""
        if not self.f_open:
            raise RuntimeError("no frame in flight")
        cdef int k, ok = 0, failed = 0
        cdef Dest *d
        cdef Py_ssize_t n = self.f_n
        for k in range(self.f_due):
            d = &self.dests[self.f_order[k]]
            # Sequence numbers advance for every due viewer, sent or not: a
            # failed send is loss, which receivers must be able to see.
            d.seq = <uint16_t>(d.seq + n)
            d.last_ts = <uint32_t>((<uint64_t>d.ts_offset + self.f_pts) & 0xFFFFFFFF)
            if self.f_failed[k]:
                d.send_failed += 1
                failed += 1
            else:
                d.frames += 1
                d.packets += n
                d.octets += self.f_octets
                ok += 1
        self._abort()
        return (ok, ok * n, failed)

    cdef void _abort(self):
        self.f_open = False
        self.f_data = None
        self.f_view = None
        self.f_offsets = None
        self.f_due = 0

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef object _flush(self, Batch *batches, Py_ssize_t nb, bint use_gso, int lo, int hi):
        cdef size_t per_cmsg = CMSG_SPACE(sizeof(uint16_t))
        cdef Py_ssize_t k, b, m = 0, start, n = self.f_n
        cdef int due = hi
        cdef Dest *d
        cdef msghdr *h
        cdef cmsghdr *c
        cdef uint16_t seg
        cdef int ret, err = 0, sent_any = 0, failed = 0
        k = lo
        b = 0
        while k < due:
            # Fill up to MAX_BATCH messages.
            m = 0
            while k < due and m < MAX_BATCH:
                d = &self.dests[self.f_order[k]]
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
                self.msg_dest[m] = <int>k
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
                    sent_any = 1
                    continue
                if use_gso and (err == EIO or err == EINVAL) and not sent_any:
                    return None
                # This message failed: count it against its viewer and go on.
                if not self.f_failed[self.msg_dest[start]]:
                    self.f_failed[self.msg_dest[start]] = 1
                    failed += 1
                start += 1
                if err == EAGAIN:  # EWOULDBLOCK is the same value on Linux
                    # The socket buffer is full: every message left in this
                    # batch would fail the same way.
                    while start < m:
                        if not self.f_failed[self.msg_dest[start]]:
                            self.f_failed[self.msg_dest[start]] = 1
                            failed += 1
                        start += 1
        return failed


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
