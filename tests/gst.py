"""GStreamer at the other end of a UDP socket: what the RTP interop tests share.

Our packets go to a gst-launch-1.0 pipeline that starts with udpsrc
(``send_to_gst``), and a pipeline that ends with udpsink sends its packets to
a socket a thread reads (``receive_from_gst``). Both run on 127.0.0.1, with
RTP headers written and parsed here, so that the codec under test is the only
thing that differs between the RTP/JPEG and RTP/H.264 tests.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import pytest

from .support import require_peer


class Depacketizer(Protocol):
    """RtpJpegDepacketizer, RtpH264Depacketizer: one packet in, a frame out when complete."""

    def push(self, seq: int, timestamp: int, marker: bool, payload: bytes) -> bytes | None:
        """Take one packet's payload; the frame it completes, if any."""
        ...


def rtp_packet(seq: int, ts: int, marker: bool, payload: bytes, *, pt: int, ssrc: int) -> bytes:
    """A 12-byte RTP header (version 2, no CSRC, no extension) and the payload."""
    return (
        struct.pack(
            ">BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc
        )
        + payload
    )


def parse_rtp(datagram: bytes) -> tuple[int, int, bool, bytes]:
    """(seq, timestamp, marker, payload) of an RTP packet (CSRCs, extension, padding skipped)."""
    if len(datagram) < 12 or datagram[0] >> 6 != 2:
        raise ValueError("not an RTP packet")
    cc = datagram[0] & 15
    pos = 12 + 4 * cc
    if datagram[0] & 0x10:
        words = int.from_bytes(datagram[pos + 2 : pos + 4], "big")
        pos += 4 + 4 * words
    end = len(datagram) - (datagram[-1] if datagram[0] & 0x20 else 0)
    seq, ts = struct.unpack(">HI", datagram[2:8])
    return seq, ts, bool(datagram[1] & 0x80), datagram[pos:end]


def depacketize_datagrams(depacketizer: Depacketizer, datagrams: Sequence[bytes]) -> list[bytes]:
    """The frames a depacketizer makes of received datagrams, in order."""
    out = []
    for datagram in datagrams:
        frame = depacketizer.push(*parse_rtp(datagram))
        if frame is not None:
            out.append(frame)
    return out


def require_elements(*elements: str) -> None:
    """Skip without these GStreamer elements, or fail under REQUIRE_PEERS=1, like require_peer."""
    inspect = require_peer("gst-inspect-1.0")
    for element in elements:
        probe = subprocess.run([inspect, element], capture_output=True, check=False)
        if probe.returncode == 0:
            continue
        message = f"GStreamer element {element} is not installed"
        if os.environ.get("REQUIRE_PEERS") == "1":
            pytest.fail(message + " (REQUIRE_PEERS=1)")
        pytest.skip(message)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _udp_bound(port: int) -> bool:
    suffix = f":{port:04X}"
    text = Path("/proc/net/udp").read_text()
    return any(line.split()[1].endswith(suffix) for line in text.splitlines()[1:])


def _launch(cmd: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _log(proc: subprocess.Popen[bytes], timeout: float = 30) -> str:
    """Wait for the pipeline to end; its output. A pipeline that hangs fails the test."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"gst-launch-1.0 timed out:\n{out.decode(errors='replace')}")
    return out.decode(errors="replace")


def _send_until_exit(
    proc: subprocess.Popen[bytes],
    port: int,
    frames: Sequence[Sequence[bytes]],
    *,
    pt: int,
    ssrc: int,
    seq: int,
    frame_gap: float,
) -> None:
    """Each frame's payloads with a 12-byte RTP header, paced, until the pipeline has had enough."""
    deadline = time.monotonic() + 15
    while not _udp_bound(port):
        assert proc.poll() is None, _log(proc)
        assert time.monotonic() < deadline, "udpsrc never bound its port"
        time.sleep(0.02)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for k, payloads in enumerate(frames):
            last = len(payloads) - 1
            for i, payload in enumerate(payloads):
                datagram = rtp_packet(seq, k * 3600, i == last, payload, pt=pt, ssrc=ssrc)
                sock.sendto(datagram, ("127.0.0.1", port))
                seq += 1
                if i % 32 == 31:
                    time.sleep(0.002)  # let udpsrc drain a D1 IDR
            time.sleep(frame_gap)
            if proc.poll() is not None:
                return


def send_to_gst(
    gst: str,
    caps: str,
    pipeline: list[str],
    frames: Sequence[Sequence[bytes]],
    *,
    pt: int,
    ssrc: int,
    seq: int,
    frame_gap: float,
) -> str:
    """Run `udpsrc caps=CAPS PIPELINE...` and send it our frames; its log, once it exited 0.

    `pipeline` goes on from udpsrc: more of its properties, then "!" and the
    elements; it must end by itself (identity eos-after=N, num-buffers=N) when it
    has had what it checks. `frames` are each frame's RTP payloads, in order.
    """
    port = _free_udp_port()
    cmd = [gst, "-q", "udpsrc", "address=127.0.0.1", f"port={port}", f"caps={caps}", *pipeline]
    proc = _launch(cmd)
    try:
        _send_until_exit(proc, port, frames, pt=pt, ssrc=ssrc, seq=seq, frame_gap=frame_gap)
        log = _log(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log
    return log


class _Receiver:
    """A UDP socket read by a thread while a peer sends to it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.datagrams: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.datagrams.append(self.sock.recv(65536))
            except TimeoutError:
                continue

    def close(self) -> list[bytes]:
        time.sleep(0.2)  # what is in flight
        self._stop.set()
        self._thread.join()
        self.sock.close()
        return self.datagrams


def receive_from_gst(gst: str, pipeline: list[str]) -> tuple[list[bytes], str]:
    """Run `PIPELINE... ! udpsink` to a socket of ours; the datagrams it sent, and its log."""
    receiver = _Receiver()
    sink = ["udpsink", "host=127.0.0.1", f"port={receiver.port}", "sync=false"]
    cmd = [gst, "-q", *pipeline, "!", *sink]
    try:
        log = _log(_launch(cmd))
    finally:
        datagrams = receiver.close()
    return datagrams, log


def rtspsrc_ok(rc: int, output: str) -> bool:
    """Whether an rtspsrc pipeline that ends at fakesink's num-buffers succeeded.

    rtspsrc 1.22 can race with itself at that end: the state change from
    PLAYING flushes the connection while its own PAUSE request is in flight,
    and it reports "Received end-of-file" from gst_rtspsrc_pause although the
    server answered (the TEARDOWN that follows on the same connection gets its
    200). PAUSE is only sent after the sink has had all its buffers, so an
    exit whose only errors come from that path is a success.
    """
    if rc == 0:
        return True
    places = set(re.findall(r"gstrtspsrc\.c\(\d+\): (\w+) \(\)", output))
    return "gst_rtspsrc_pause" in places and places <= {"gst_rtspsrc_pause", "gst_rtspsrc_try_send"}
