"""WebRTC fan-out: the gateway's CPU per WHEP viewer of one D1 channel, and viewers per core.

    sudo .venv/bin/python bench/fanout_webrtc.py [--peers 5,10,20,40] [--seconds 10]

Needs root: the gateway and the load client (`bench/whepload.py`, aiortc
peers that do ICE, DTLS and SRTP but skip decoding) run in two network
namespaces joined by a veth pair, so that ICE stays off the machine's
network. The encoder runs once for the channel whatever the number of peers;
what grows with them is per-peer packetization, SRTP and sending, which is
what this measures. Prints the CPU % of one core per configuration and the
viewers one core would sustain at that cost.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from harness import PY, Measurement, Processes, measure  # noqa: E402

from tests.netns import NetnsPair  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default="5,10,20,40")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--resolution", default="704x576")
    args = parser.parse_args()
    rows: list[Measurement] = []
    tmp = Path(tempfile.mkdtemp(prefix="coaxgate-webrtc-"))
    (tmp / "gw.toml").write_text(
        '[server]\nhost = "0.0.0.0"\nhttp_port = 8080\nrtsp_port = 8554\n[rtsp]\nrtp_port = 0\n'
        f'[[channels]]\nname = "lobby"\nsource = "emulator:1?resolution={args.resolution}&fps=25"\n'
    )
    with NetnsPair() as nets, Processes() as procs:
        gw = procs.start(
            nets.run_in(
                nets.gw,
                PY,
                "-m",
                "gateway.cli",
                "--log-level",
                "warning",
                "run",
                "-c",
                str(tmp / "gw.toml"),
            )
        )
        time.sleep(4)
        url = f"http://{nets.gw_ip}:8080/channels/lobby/whep"
        for n in (int(x) for x in args.peers.split(",")):
            cmd = nets.python(
                nets.viewer,
                "bench/whepload.py",
                url,
                "--peers",
                str(n),
                "--seconds",
                str(args.seconds),
            )
            rows.append(measure("coaxgate", gw.pid, n, cmd))
            time.sleep(2)
    print(
        f"\nWebRTC (WHEP) fan-out, one {args.resolution} 25 fps channel, H.264 encoded once, "
        f"{args.seconds:g} s windows"
    )
    print(
        f"{'peers':>5} {'connected':>9} {'min fps':>8} {'mean fps':>8} {'CPU %':>7} "
        f"{'CPU % per peer':>14} {'peers per core':>14}"
    )
    base = rows[0]
    for r in rows:
        res = r.result
        # The encoder's cost is shared: the marginal cost per peer is the slope from the
        # smallest run, and a core holds what is left after the encoder divided by it.
        per_peer = (r.cpu_pct - base.cpu_pct) / (r.load - base.load) if r.load > base.load else 0
        per_core = (100 - (base.cpu_pct - per_peer * base.load)) / per_peer if per_peer > 0 else 0
        print(
            f"{r.load:5d} {res['connected']:9d} {res['min_fps']:8.1f} {res['mean_fps']:8.1f} "
            f"{r.cpu_pct:7.1f} {per_peer:14.2f} {per_core:14.0f}"
        )


if __name__ == "__main__":
    main()
