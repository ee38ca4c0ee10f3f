# cython: language_level=3
"""Counting RTP at line rate, for load clients and tests.

A load test of hundreds of RTSP viewers receives hundreds of thousands of
packets a second; Python cannot look at each. `RtpCounter` watches many
sockets with epoll, drains UDP sockets with `recvmmsg` and TCP (interleaved)
sockets with `recv`, and per socket counts packets, bytes, frames (marker
bits) and sequence gaps, all with the GIL released.
"""

from libc.errno cimport EINTR, errno
from libc.stdint cimport uint8_t, uint16_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memset

cimport cython


from clock cimport monotonic
from socketapi cimport MSG_DONTWAIT, iovec, mmsghdr, recv, recvmmsg


cdef extern from "<sys/epoll.h>" nogil:
    union epoll_data_t:
        void *ptr
        int fd
        unsigned int u32
        unsigned long u64

    struct epoll_event:
        unsigned int events
        epoll_data_t data

    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event *event)
    int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout)
    int EPOLLIN
    int EPOLL_CTL_ADD


cdef extern from "<unistd.h>" nogil:
    int close(int fd)



cdef enum:
    BATCH = 64
    SLOT = 2048          # largest UDP packet we look at (payloads are ~1400 bytes)
    TCP_BUFFER = 262144


cdef struct Stream:
    int fd
    bint tcp
    bint started
    uint16_t next_seq
    uint64_t packets
    uint64_t bytes
    uint64_t frames
    uint64_t lost
    uint64_t reordered
    # Interleaved framing state for TCP.
    int state          # 0: expect '$', 1: channel, 2: length high, 3: length low, 4: body
    int channel        # the RTP channel to count
    int frame_channel  # the channel of the frame being read
    int remaining
    int length
    uint8_t head[12]
    int head_pos



cdef inline void account(Stream *s, const uint8_t *p, int n) noexcept nogil:
    """One RTP packet: count it, its marker bit, and the gap before its sequence number."""
    cdef uint16_t seq, gap
    if n < 12 or (p[0] >> 6) != 2:
        return
    seq = (p[2] << 8) | p[3]
    s.packets += 1
    s.bytes += n
    if p[1] & 0x80:
        s.frames += 1
    if s.started:
        gap = <uint16_t>(seq - s.next_seq)
        if gap == 0:
            pass
        elif gap < 0x8000:
            s.lost += gap
        else:
            s.reordered += 1
            return
    s.started = True
    s.next_seq = <uint16_t>(seq + 1)


cdef class RtpCounter:
    """Counts RTP on many sockets: UDP (one packet per datagram) or TCP (RTSP interleaved)."""

    cdef int ep
    cdef Stream *streams
    cdef int count
    cdef int capacity
    cdef uint8_t *buf
    cdef mmsghdr *msgs
    cdef iovec *iov
    cdef public bint counting

    def __cinit__(self, int capacity=4096):
        self.ep = epoll_create1(0)
        if self.ep < 0:
            raise OSError(errno, "epoll_create1 failed")
        self.capacity = capacity
        self.streams = <Stream *>calloc(capacity, sizeof(Stream))
        self.buf = <uint8_t *>malloc(max(BATCH * SLOT, TCP_BUFFER))
        self.msgs = <mmsghdr *>malloc(BATCH * sizeof(mmsghdr))
        self.iov = <iovec *>malloc(BATCH * sizeof(iovec))
        if not (self.streams and self.buf and self.msgs and self.iov):
            raise MemoryError()
        cdef int i
        for i in range(BATCH):
            self.iov[i].iov_base = self.buf + i * SLOT
            self.iov[i].iov_len = SLOT
            memset(&self.msgs[i], 0, sizeof(mmsghdr))
            self.msgs[i].msg_hdr.msg_iov = &self.iov[i]
            self.msgs[i].msg_hdr.msg_iovlen = 1
        self.counting = True

    def __dealloc__(self):
        if self.ep >= 0:
            close(self.ep)
        free(self.streams)
        free(self.buf)
        free(self.msgs)
        free(self.iov)

    def add(self, int fd, bint tcp, int rtp_channel=0) -> int:
        """Watch a socket (non-blocking); for TCP, count packets on `rtp_channel`."""
        if self.count == self.capacity:
            raise ValueError("too many sockets")
        cdef Stream *s = &self.streams[self.count]
        memset(s, 0, sizeof(Stream))
        s.fd = fd
        s.tcp = tcp
        s.channel = rtp_channel
        cdef epoll_event ev
        ev.events = EPOLLIN
        ev.data.u32 = self.count
        if epoll_ctl(self.ep, EPOLL_CTL_ADD, fd, &ev) < 0:
            raise OSError(errno, "epoll_ctl failed")
        self.count += 1
        return self.count - 1

    def reset(self) -> None:
        """Zero the counters (after a warm-up); sequence tracking carries on."""
        cdef int i
        for i in range(self.count):
            self.streams[i].packets = 0
            self.streams[i].bytes = 0
            self.streams[i].frames = 0
            self.streams[i].lost = 0
            self.streams[i].reordered = 0

    @cython.boundscheck(False)
    def run(self, double seconds) -> None:
        """Receive and count for `seconds`."""
        cdef epoll_event events[256]
        cdef double deadline = monotonic() + seconds
        cdef int n, i, timeout
        cdef Stream *s
        with nogil:
            while True:
                timeout = <int>((deadline - monotonic()) * 1000)
                if timeout <= 0:
                    break
                n = epoll_wait(self.ep, events, 256, timeout)
                if n < 0:
                    if errno == EINTR:
                        continue
                    break
                for i in range(n):
                    s = &self.streams[events[i].data.u32]
                    if s.tcp:
                        self._drain_tcp(s)
                    else:
                        self._drain_udp(s)

    cdef void _drain_udp(self, Stream *s) noexcept nogil:
        cdef int got, k
        while True:
            for k in range(BATCH):
                self.msgs[k].msg_hdr.msg_flags = 0
            got = recvmmsg(s.fd, self.msgs, BATCH, MSG_DONTWAIT, NULL)
            if got <= 0:
                return
            for k in range(got):
                account(s, self.buf + k * SLOT, self.msgs[k].msg_len)
            if got < BATCH:
                return

    cdef void _drain_tcp(self, Stream *s) noexcept nogil:
        cdef ssize_t got, i
        cdef uint8_t c
        cdef int take, need, j
        while True:
            got = recv(s.fd, self.buf, TCP_BUFFER, MSG_DONTWAIT)
            if got <= 0:
                return
            i = 0
            while i < got:
                if s.state == 4:
                    take = <int>min(<ssize_t>s.remaining, got - i)
                    if s.frame_channel == s.channel and s.head_pos < 12:
                        need = min(12 - s.head_pos, take)
                        for j in range(need):
                            s.head[s.head_pos + j] = self.buf[i + j]
                        s.head_pos += need
                        if s.head_pos == 12:
                            account(s, s.head, 12)
                            s.bytes += s.length - 12
                    s.remaining -= take
                    i += take
                    if s.remaining == 0:
                        s.state = 0
                    continue
                c = self.buf[i]
                i += 1
                if s.state == 0:
                    # RTSP responses may sit between frames: resynchronise on '$'.
                    if c == 0x24:
                        s.state = 1
                elif s.state == 1:
                    s.frame_channel = c
                    s.state = 2
                elif s.state == 2:
                    s.length = c << 8
                    s.state = 3
                else:
                    s.length |= c
                    s.remaining = s.length
                    s.head_pos = 0
                    s.state = 4 if s.length else 0

    def stats(self) -> list:
        """Per socket: (packets, bytes, frames, lost, reordered)."""
        return [
            (self.streams[i].packets, self.streams[i].bytes, self.streams[i].frames,
             self.streams[i].lost, self.streams[i].reordered)
            for i in range(self.count)
        ]
