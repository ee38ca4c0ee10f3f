"""CPU of MJPEG fan-out: coaxgate next to GStreamer, same source, same viewers.

One emulated Axis 2400 input (D1 704x576, 25 fps) feeds both servers:
coaxgate (`coaxgate run`) and a GStreamer pipeline that demuxes the same
multipart stream and re-muxes it to every client of a tcpserversink. A load
client in its own process opens N viewers against each and counts frames;
the server's CPU time over the measured window comes from /proc.

    python bench/fanout_mjpeg.py [--viewers 1,10,100] [--seconds 10]

Prints a table: CPU % of one core, CPU microseconds per delivered frame per
viewer, and GStreamer's cost over coaxgate's (higher means coaxgate is cheaper).
"""

from __future__ import annotations

import argparse
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


def load(url: str, viewers: int, seconds: float, raw: bool) -> list[str]:
    """The MJPEG load client's command line."""
    cmd = [
        PY,
        str(ROOT / "bench" / "loadclient.py"),
        "--url",
        url,
        "--viewers",
        str(viewers),
        "--seconds",
        str(seconds),
        "--warmup",
        "3",
    ]
    return cmd + (["--raw"] if raw else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", default="1,10,100")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--resolution", default="704x576")
    args = parser.parse_args()
    counts = [int(n) for n in args.viewers.split(",")]
    rows: list[Measurement] = []
    with Processes() as procs:
        source = start_emulator(procs, args.resolution)
        gw, http, _ = start_coaxgate(procs, source, Path(tempfile.mkdtemp(prefix="coaxgate-")))
        time.sleep(2)
        url = f"http://127.0.0.1:{http}/channels/lobby/mjpeg"
        rows += [measure("coaxgate", gw.pid, n, load(url, n, args.seconds, False)) for n in counts]
        gst = shutil.which("gst-launch-1.0")
        if gst:
            port = free_port()
            pipeline = (
                f'souphttpsrc location="{source}" is-live=true ! multipartdemux ! image/jpeg ! '
                f"multipartmux boundary=myboundary ! tcpserversink host=127.0.0.1 port={port} "
                "recover-policy=keyframe sync-method=latest"
            )
            g = procs.start([gst, "-q", *pipeline.split()])
            wait_port(port)
            time.sleep(2)
            url = f"http://127.0.0.1:{port}/"
            rows += [
                measure("gstreamer", g.pid, n, load(url, n, args.seconds, True)) for n in counts
            ]
    print(f"\nMJPEG fan-out, one {args.resolution} 25 fps channel, {args.seconds:g} s windows")
    print(
        f"{'server':10} {'viewers':>7} {'min fps':>8} {'mean fps':>8} {'CPU %':>7} "
        f"{'us/frame':>9} {'gst/coax':>8}"
    )
    ours = {r.load: r for r in rows if r.server == "coaxgate"}
    for r in rows:
        ratio = ""
        if r.server == "gstreamer" and r.load in ours:
            ratio = f"{r.per('frames') / ours[r.load].per('frames'):8.2f}"
        res = r.result
        print(
            f"{r.server:10} {res['viewers']:7d} {res['min_fps']:8.1f} {res['mean_fps']:8.1f} "
            f"{r.cpu_pct:7.1f} {r.per('frames'):9.1f} {ratio:>8}"
        )


if __name__ == "__main__":
    main()
