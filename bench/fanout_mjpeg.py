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
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


@dataclass
class Row:
    server: str
    viewers: int
    connected: int
    min_fps: float
    mean_fps: float
    cpu_pct: float
    us_per_frame: float


def measure(server: str, pid: int, url: str, viewers: int, seconds: float, raw: bool) -> Row:
    cmd = [PY, str(ROOT / "bench" / "loadclient.py"), "--url", url,
           "--viewers", str(viewers), "--seconds", str(seconds), "--warmup", "3"]
    if raw:
        cmd.append("--raw")
    load = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert load.stdout is not None
    line = load.stdout.readline()
    assert json.loads(line)["event"] == "start", line
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    result = json.loads(load.stdout.readline())
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    load.wait()
    used = cpu1 - cpu0
    frames = max(1, result["frames"])
    return Row(server, viewers, result["viewers"], result["min_fps"], result["mean_fps"],
               100 * used / (t1 - t0), 1e6 * used / frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", default="1,10,100")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--resolution", default="704x576")
    args = parser.parse_args()
    counts = [int(n) for n in args.viewers.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="coaxgate-bench-"))
    eport, hport = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen(
            [PY, "-m", "gateway.cli", "--log-level", "warning", "emulate", "--port", str(eport),
             "--channels", "1", "--resolution", args.resolution], cwd=ROOT))
        wait_port(eport)
        source = f"http://127.0.0.1:{eport}/axis-cgi/mjpg/video.cgi?camera=1"
        (tmp / "gw.toml").write_text(
            f'[server]\nhost = "127.0.0.1"\nhttp_port = {hport}\nrtsp_port = {free_port()}\n'
            f'[egress]\nhigh_water = "1M"\n'
            f'[[channels]]\nname = "lobby"\nsource = "{source}"\n'
        )
        gw = subprocess.Popen([PY, "-m", "gateway.cli", "--log-level", "warning", "run", "-c",
                               str(tmp / "gw.toml")], cwd=ROOT)
        procs.append(gw)
        wait_port(hport)
        time.sleep(2)
        rows = [measure("coaxgate", gw.pid, f"http://127.0.0.1:{hport}/channels/lobby/mjpeg",
                        n, args.seconds, raw=False) for n in counts]
        gst = shutil.which("gst-launch-1.0")
        if gst:
            gport = free_port()
            pipeline = (
                f'souphttpsrc location="{source}" is-live=true ! multipartdemux ! image/jpeg ! '
                f"multipartmux boundary=myboundary ! tcpserversink host=127.0.0.1 port={gport} "
                "recover-policy=keyframe sync-method=latest"
            )
            g = subprocess.Popen([gst, "-q", *pipeline.split()], cwd=ROOT)
            procs.append(g)
            wait_port(gport)
            time.sleep(2)
            rows += [measure("gstreamer", g.pid, f"http://127.0.0.1:{gport}/", n,
                             args.seconds, raw=True) for n in counts]
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    print(f"\nMJPEG fan-out, one {args.resolution} 25 fps channel, {args.seconds:g} s windows")
    print(f"{'server':10} {'viewers':>7} {'min fps':>8} {'mean fps':>8} {'CPU %':>7} "
          f"{'us/frame':>9} {'gst/coax':>8}")
    ours = {r.viewers: r for r in rows if r.server == "coaxgate"}
    for r in rows:
        ratio = ""
        if r.server == "gstreamer" and r.viewers in ours:
            ratio = f"{r.us_per_frame / ours[r.viewers].us_per_frame:8.2f}"
        print(f"{r.server:10} {r.connected:7d} {r.min_fps:8.1f} {r.mean_fps:8.1f} "
              f"{r.cpu_pct:7.1f} {r.us_per_frame:9.1f} {ratio:>8}")


if __name__ == "__main__":
    main()
