"""What the side-by-side benchmarks share: processes, ports, CPU time over a window."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_port(port: int, timeout: float = 30.0) -> None:
    """Wait until something listens on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


@dataclass
class Measurement:
    """A load client's result and the server's CPU time over the same window."""

    server: str
    load: int
    result: dict[str, Any]
    cpu: float
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cpu_pct(self) -> float:
        """CPU time as a percentage of one core."""
        return 100 * self.cpu / self.seconds

    def per(self, key: str) -> float:
        """CPU microseconds per unit of a result counter (frames, packets)."""
        return 1e6 * self.cpu / max(1, self.result[key])


def measure(server: str, pid: int, load: int, command: list[str]) -> Measurement:
    """Run a load client that prints {"event": "start"} then its result; time the server."""
    client = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert client.stdout is not None
    line = client.stdout.readline()
    if not line or json.loads(line).get("event") != "start":
        client.wait()
        raise RuntimeError(f"load client failed: {line!r}")
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    result = json.loads(client.stdout.readline())
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    client.wait()
    return Measurement(server, load, result, cpu1 - cpu0, t1 - t0)


class Processes:
    """Child processes stopped in reverse order at the end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def start_emulator(procs: Processes, resolution: str, fps: float = 25.0) -> str:
    """One emulated Axis 2400 input; returns its MJPEG URL."""
    port = free_port()
    procs.start(
        [
            PY,
            "-m",
            "gateway.cli",
            "--log-level",
            "warning",
            "emulate",
            "--port",
            str(port),
            "--channels",
            "1",
            "--resolution",
            resolution,
            "--fps",
            str(fps),
        ]
    )
    wait_port(port)
    return f"http://127.0.0.1:{port}/axis-cgi/mjpg/video.cgi?camera=1"


def start_coaxgate(
    procs: Processes, source: str, tmp: Path, egress: str = "", limits: str = ""
) -> tuple[subprocess.Popen[bytes], int, int]:
    """`coaxgate run` with one channel from `source`; returns (process, HTTP port, RTSP port).

    `egress` and `limits` are extra TOML lines for those tables.
    """
    http, rtsp = free_port(), free_port()
    path = tmp / "coaxgate.toml"
    path.write_text(
        f'[server]\nhost = "127.0.0.1"\nhttp_port = {http}\nrtsp_port = {rtsp}\n'
        # Every load client connects from 127.0.0.1: no per-address cap here.
        f"max_connections_per_address = 100000\nmax_connections = 100000\n"
        f'[rtsp]\nrtp_port = 0\n[egress]\nhigh_water = "1M"\n{egress}\n'
        f"[limits]\n{limits}\n"
        f'[[channels]]\nname = "lobby"\nsource = "{source}"\n'
    )
    proc = procs.start([PY, "-m", "gateway.cli", "--log-level", "warning", "run", "-c", str(path)])
    wait_port(http)
    wait_port(rtsp)
    return proc, http, rtsp
