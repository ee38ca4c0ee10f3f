"""RTSP load client: N sessions (UDP with distinct port pairs, or TCP interleaved).

    python bench/rtspload.py --url rtsp://127.0.0.1:8554/lobby --sessions 500 \
        --transport udp --warmup 3 --seconds 10

Sets every session up (DESCRIBE, SETUP, PLAY) over its own connection, then
counts packets, frames and sequence gaps on every socket with the compiled
counter (`gateway._ext.rtpcount`), so that the client keeps up with hundreds
of thousands of packets a second. Prints `{"event": "start"}` when the
measured window opens and one JSON object with the totals when it closes.
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import time
from urllib.parse import urlsplit

from gateway._ext.rtpcount import RtpCounter

RCVBUF = 1 << 20


def _request(sock: socket.socket, method: str, url: str, cseq: int, extra: str = "") -> str:
    sock.sendall(f"{method} {url} RTSP/1.0\r\nCSeq: {cseq}\r\n{extra}\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"{method}: connection closed")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    text = head.decode(errors="replace")
    status = int(text.split(" ", 2)[1])
    length = 0
    for line in text.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    while len(rest) < length:
        rest += sock.recv(65536)
    if status != 200:
        raise RuntimeError(f"{method} {url}: {text.splitlines()[0]}")
    return text + "\r\n\r\n" + rest[:length].decode(errors="replace")


def _udp_pair(host: str) -> tuple[socket.socket, socket.socket]:
    while True:
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind((host, 0))
        port = rtp.getsockname()[1]
        if port % 2 == 0 and port < 65535:
            rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                rtcp.bind((host, port + 1))
                rtp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
                rtp.setblocking(False)
                return rtp, rtcp
            except OSError:
                rtcp.close()
        rtp.close()


def open_session(url: str, transport: str, counter: RtpCounter, keep: list[socket.socket]) -> None:
    parts = urlsplit(url)
    ctl = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 554))
    keep.append(ctl)
    sdp = _request(ctl, "DESCRIBE", url, 1, "Accept: application/sdp\r\n")
    control = next(
        line.split(":", 1)[1].strip()
        for line in sdp.splitlines()
        if line.startswith("a=control:") and line.strip() != "a=control:*"
    )
    if not control.startswith("rtsp://"):
        control = url.rstrip("/") + "/" + control
    if transport == "udp":
        # The server sends to the address our control connection comes from.
        rtp, rtcp = _udp_pair(ctl.getsockname()[0])
        keep += [rtp, rtcp]
        a = rtp.getsockname()[1]
        spec = f"RTP/AVP;unicast;client_port={a}-{a + 1}"
    else:
        spec = "RTP/AVP/TCP;unicast;interleaved=0-1"
    reply = _request(ctl, "SETUP", control, 2, f"Transport: {spec}\r\n")
    session = next(
        line.split(":", 1)[1].split(";")[0].strip()
        for line in reply.splitlines()
        if line.lower().startswith("session:")
    )
    _request(ctl, "PLAY", url, 3, f"Session: {session}\r\nRange: npt=0.000-\r\n")
    if transport == "udp":
        counter.add(rtp.fileno(), False)
    else:
        ctl.setblocking(False)
        counter.add(ctl.fileno(), True, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    counter = RtpCounter(args.sessions + 16)
    keep: list[socket.socket] = []
    for _ in range(args.sessions):
        open_session(args.url, args.transport, counter, keep)
    counter.run(args.warmup)
    counter.reset()
    print(json.dumps({"event": "start"}), flush=True)
    start = time.monotonic()
    counter.run(args.seconds)
    elapsed = time.monotonic() - start
    stats = counter.stats()
    fps = [s[2] / elapsed for s in stats]
    result = {
        "sessions": len(stats),
        "seconds": elapsed,
        "packets": sum(s[0] for s in stats),
        "bytes": sum(s[1] for s in stats),
        "frames": sum(s[2] for s in stats),
        "lost": sum(s[3] for s in stats),
        "reordered": sum(s[4] for s in stats),
        "min_fps": min(fps) if fps else 0.0,
        "mean_fps": sum(fps) / len(fps) if fps else 0.0,
    }
    print(json.dumps(result), flush=True)
    for sock in keep:
        sock.close()


if __name__ == "__main__":
    main()
