"""RTSP fan-out: coaxgate next to GStreamer's RTSP server, same source, same viewers.

One emulated Axis 2400 input (D1 704x576, 25 fps, about 28 RTP packets a
frame) feeds coaxgate and gst-rtsp-server (`bench/gst_rtsp_server.py`,
shared media). The load client (`bench/rtspload.py`) opens N RTSP sessions
against each, UDP with a distinct port pair per session (or TCP), and counts
packets, frames and sequence gaps; the server's CPU time comes from /proc.

    python bench/fanout_rtsp.py [--sessions 20,100,500] [--transport udp] [--seconds 10]

Prints CPU % of one core, CPU microseconds per delivered packet, packets lost,
and GStreamer's cost per delivered packet over coaxgate's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (
    PY,
    ROOT,
    Measurement,
    Processes,
    free_port,
    measure,
    start_coaxgate,
    start_emulator,
    wait_port,
)

SYSTEM_PYTHON = "/usr/bin/python3"  # the one with GObject introspection for GStreamer


def load(url: str, sessions: int, transport: str, seconds: float) -> list[str]:
    """The RTSP load client's command line."""
    return [
        PY,
        str(ROOT / "bench" / "rtspload.py"),
        "--url",
        url,
        "--sessions",
        str(sessions),
        "--transport",
        transport,
        "--seconds",
        str(seconds),
        "--warmup",
        "3",
    ]


def gst_available() -> bool:
    """Whether GStreamer's RTSP server can run here."""
    return bool(shutil.which("gst-launch-1.0")) and os.access(SYSTEM_PYTHON, os.X_OK)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="20,100,500")
    parser.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--resolution", default="704x576")
    args = parser.parse_args()
    counts = [int(n) for n in args.sessions.split(",")]
    rows: list[Measurement] = []
    with Processes() as procs:
        source = start_emulator(procs, args.resolution)
        gw, _, rtsp = start_coaxgate(procs, source, Path(tempfile.mkdtemp(prefix="coaxgate-")))
        time.sleep(2)
        for n in counts:
            url = f"rtsp://127.0.0.1:{rtsp}/lobby"
            rows.append(measure("coaxgate", gw.pid, n, load(url, n, args.transport, args.seconds)))
        if gst_available():
            port = free_port()
            g = procs.start(
                [
                    SYSTEM_PYTHON,
                    str(ROOT / "bench" / "gst_rtsp_server.py"),
                    "--port",
                    str(port),
                    "--source",
                    source,
                ]
            )
            wait_port(port)
            time.sleep(1)
            for n in counts:
                url = f"rtsp://127.0.0.1:{port}/lobby"
                rows.append(
                    measure("gstreamer", g.pid, n, load(url, n, args.transport, args.seconds))
                )
    print(
        f"\nRTSP fan-out over {args.transport.upper()}, one {args.resolution} 25 fps channel, "
        f"{args.seconds:g} s windows"
    )
    print(
        f"{'server':10} {'sessions':>8} {'min fps':>8} {'mean fps':>8} {'lost':>7} "
        f"{'CPU %':>7} {'us/packet':>9} {'gst/coax':>8}"
    )
    ours = {r.load: r for r in rows if r.server == "coaxgate"}
    for r in rows:
        ratio = ""
        if r.server == "gstreamer" and r.load in ours:
            ratio = f"{r.per('packets') / ours[r.load].per('packets'):8.2f}"
        res = r.result
        print(
            f"{r.server:10} {res['sessions']:8d} {res['min_fps']:8.1f} {res['mean_fps']:8.1f} "
            f"{res['lost']:7d} {r.cpu_pct:7.1f} {r.per('packets'):9.2f} {ratio:>8}"
        )


if __name__ == "__main__":
    main()
