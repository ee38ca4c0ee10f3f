"""What pacing and rate limiting cost on the 500-viewer UDP fan-out.

The same emulated D1 25 fps input and the same load client as
`bench/fanout_rtsp.py`, against coaxgate three ways, alternated over several
rounds so that drift on the machine hits every configuration alike:

- burst: `[egress] pacing = 0`, no limits: each frame leaves in one burst;
- paced: `pacing = 0.25` (the default), each frame spread over a quarter of
  the frame interval in chunks at least 2 ms apart;
- paced + limited: paced, and every viewer and the channel behind token
  buckets (per-viewer cap above the stream's rate, so the buckets are checked
  on every frame but drop nothing, and the delivered packets stay equal).

    python bench/qos_cost.py [--sessions 500] [--seconds 10] [--rounds 3]

Prints CPU % of one core and CPU microseconds per delivered packet, with each
configuration's cost over the burst one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fanout_rtsp import load
from harness import Measurement, Processes, measure, start_coaxgate, start_emulator

CONFIGS = {
    "burst": ("pacing = 0", ""),
    "paced": ("pacing = 0.25", ""),
    "paced + limited": (
        "pacing = 0.25",
        'max_bitrate = "100M"\nchannel_bitrate = "5G"\nmax_fps = 50',
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--resolution", default="704x576")
    args = parser.parse_args()
    rows: dict[str, list[Measurement]] = {name: [] for name in CONFIGS}
    with Processes() as procs:
        source = start_emulator(procs, args.resolution)
        servers = {}
        for name, (egress, limits) in CONFIGS.items():
            tmp = Path(tempfile.mkdtemp(prefix="coaxgate-"))
            servers[name] = start_coaxgate(procs, source, tmp, egress, limits)
        time.sleep(2)
        for _ in range(args.rounds):
            for name, (gw, _, rtsp) in servers.items():
                url = f"rtsp://127.0.0.1:{rtsp}/lobby"
                command = load(url, args.sessions, "udp", args.seconds)
                rows[name].append(measure(name, gw.pid, args.sessions, command))
    print(
        f"\nUDP fan-out to {args.sessions} sessions, one {args.resolution} 25 fps channel, "
        f"{args.rounds} rounds of {args.seconds:g} s (medians)"
    )
    print(f"{'config':16} {'min fps':>8} {'lost':>7} {'CPU %':>7} {'us/packet':>9} {'vs burst':>8}")
    base = statistics.median(r.per("packets") for r in rows["burst"])
    for name, runs in rows.items():
        per = statistics.median(r.per("packets") for r in runs)
        cpu = statistics.median(r.cpu_pct for r in runs)
        min_fps = min(r.result["min_fps"] for r in runs)
        lost = sum(r.result["lost"] for r in runs)
        print(f"{name:16} {min_fps:8.1f} {lost:7d} {cpu:7.1f} {per:9.2f} {per / base:8.2f}")


if __name__ == "__main__":
    main()
