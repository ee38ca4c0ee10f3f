"""Capture-to-arrival latency over RTSP: H.264 (transcoded) next to JPEG (passed through).

    python bench/latency.py [--seconds 20] [--resolution 704x576]

Runs `coaxgate run` with an emulated input (inside the gateway, so a frame's
capture timestamp is the emulator's own), plays the channel's /h264 and /jpeg
streams over RTSP/UDP from this process, and for every frame computes
arrival time minus capture time. The capture time of a frame comes from its
RTP timestamp through the gateway's RTCP sender reports, which map RTP time
to wall-clock time on the capture clock (RFC 3550 6.4.1); sender and
receiver share the host's clock. Prints p50, p90, p99 and max per codec.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness import PY, Processes, free_port, wait_port
from rtspload import _request, _udp_pair

from gateway.rtp import rtcp


def play(url: str) -> tuple[socket.socket, socket.socket, socket.socket]:
    """DESCRIBE, SETUP over UDP, PLAY; returns (control, RTP, RTCP) sockets."""
    parts = urlsplit(url)
    ctl = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 554))
    sdp = _request(ctl, "DESCRIBE", url, 1, "Accept: application/sdp\r\n")
    control = next(
        line.split(":", 1)[1].strip()
        for line in sdp.splitlines()
        if line.startswith("a=control:") and "trackID" in line
    )
    rtp, rtcp_sock = _udp_pair(ctl.getsockname()[0])
    port = rtp.getsockname()[1]
    reply = _request(
        ctl, "SETUP", control, 2, f"Transport: RTP/AVP;unicast;client_port={port}-{port + 1}\r\n"
    )
    session = next(
        line.split(":", 1)[1].split(";")[0].strip()
        for line in reply.splitlines()
        if line.lower().startswith("session:")
    )
    _request(ctl, "PLAY", url, 3, f"Session: {session}\r\n")
    rtcp_sock.setblocking(False)
    return ctl, rtp, rtcp_sock


def measure(url: str, seconds: float) -> list[float]:
    """Latency in seconds of every frame completed in the window."""
    ctl, rtp, rtcp_sock = play(url)
    rtp.setblocking(True)
    rtp.settimeout(0.05)
    mapping: tuple[float, int] | None = None  # (wall-clock, RTP timestamp) from the last SR
    arrivals: list[tuple[float, int]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            while True:
                for packet in rtcp.parse_compound(rtcp_sock.recv(2048)):
                    if isinstance(packet, rtcp.SenderReport):
                        mapping = (rtcp.unix_from_ntp(packet.ntp_timestamp), packet.rtp_timestamp)
        except (BlockingIOError, ValueError):
            pass
        try:
            data = rtp.recv(65536)
        except TimeoutError:
            continue
        if len(data) >= 12 and data[1] & 0x80:  # the last packet of a frame
            arrivals.append((time.time(), int.from_bytes(data[4:8], "big")))
    ctl.close()
    if mapping is None:
        raise RuntimeError("no RTCP sender report arrived")
    wall, ts = mapping
    out = []
    for arrived, frame_ts in arrivals:
        delta = ((frame_ts - ts + (1 << 31)) % (1 << 32)) - (1 << 31)
        out.append(arrived - (wall + delta / 90000))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--resolution", default="704x576")
    args = parser.parse_args()
    http, rtsp = free_port(), free_port()
    tmp = Path(tempfile.mkdtemp(prefix="coaxgate-latency-"))
    (tmp / "gw.toml").write_text(
        f'[server]\nhost = "127.0.0.1"\nhttp_port = {http}\nrtsp_port = {rtsp}\n'
        f"[rtsp]\nrtp_port = 0\nsender_report_interval = 1.0\n"
        f'[[channels]]\nname = "lobby"\nsource = "emulator:1?resolution={args.resolution}&fps=25"\n'
    )
    with Processes() as procs:
        procs.start(
            [PY, "-m", "gateway.cli", "--log-level", "warning", "run", "-c", str(tmp / "gw.toml")]
        )
        wait_port(rtsp)
        time.sleep(2)
        results = {
            codec: measure(f"rtsp://127.0.0.1:{rtsp}/lobby/{codec}", args.seconds)
            for codec in ("h264", "jpeg")
        }
    print(
        f"\nCapture-to-arrival latency over RTSP/UDP, {args.resolution} 25 fps, "
        f"{args.seconds:g} s per codec"
    )
    print(f"{'codec':6} {'frames':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for codec, values in results.items():
        q = statistics.quantiles(values, n=100)
        print(
            f"{codec:6} {len(values):7d} {1000 * q[49]:8.1f} {1000 * q[89]:8.1f} "
            f"{1000 * q[98]:8.1f} {1000 * max(values):8.1f}"
        )


if __name__ == "__main__":
    main()
