"""Helpers shared by the tests: peers, processes, MJPEG clients."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway import config
from gateway._ext.multipart import MultipartScanner, Part, boundary_from_content_type
from gateway.app import Gateway
from gateway.sources.emulator import Emulator, EmulatorOptions

ROOT = Path(__file__).resolve().parent.parent


def require_peer(program: str) -> str:
    """Path of an external peer program; skip without it unless REQUIRE_PEERS=1."""
    path = shutil.which(program)
    if path:
        return path
    if os.environ.get("REQUIRE_PEERS") == "1":
        pytest.fail(f"{program} is required (REQUIRE_PEERS=1) but not on PATH")
    pytest.skip(f"{program} not installed")


def free_port() -> int:
    """A TCP port nobody listens on right now (on 127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    """Resident set size of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def open_fds(pid: int) -> int:
    """Number of open file descriptors of a process."""
    return len(os.listdir(f"/proc/{pid}/fd"))


class Process:
    """A coaxgate command in a child process, stopped with SIGTERM."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.args = [sys.executable, "-m", "gateway.cli", *args]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    def start(self, log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - kept open for the child's life
        self.proc = subprocess.Popen(
            self.args, stdout=self._log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the process and wait; returns its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self._log.close()


async def wait_http(url: str, timeout: float = 20.0, proc: Process | None = None) -> None:
    """Wait until an HTTP URL answers (any status)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as resp:
                    await resp.read()
                    return
            except aiohttp.ClientError:
                pass
            if proc is not None and proc.proc is not None and proc.proc.poll() is not None:
                raise RuntimeError(f"process exited early:\n{proc.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer in {timeout} s")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def emulator_process(tmp_path: Path, *args: str, port: int = 0) -> AsyncIterator[Process]:
    """`coaxgate emulate` in a child process."""
    port = port or free_port()
    proc = Process(["emulate", "--port", str(port), *args])
    proc.port = port  # type: ignore[attr-defined]
    proc.start(tmp_path / f"emulator-{port}.log")
    try:
        await wait_http(f"http://127.0.0.1:{port}/axis-cgi/param.cgi", proc=proc)
        yield proc
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.stop()


def write_config(tmp_path: Path, data: dict[str, Any]) -> Path:
    """Write a TOML config (a small writer: tables, arrays of tables, scalars)."""
    lines: list[str] = []

    def scalar(v: Any) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {scalar(x)}" for k, x in v.items()) + " }"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines.extend(f"{k} = {scalar(v)}" for k, v in value.items())
        elif isinstance(value, list):
            for item in value:
                lines.append(f"[[{key}]]")
                lines.extend(f"{k} = {scalar(v)}" for k, v in item.items())
        lines.append("")
    path = tmp_path / "coaxgate.toml"
    path.write_text("\n".join(lines))
    config.load(path, environ={**os.environ, "TEST_PASS": "x"})  # fail here, not in the child
    return path


@contextlib.asynccontextmanager
async def gateway_process(
    tmp_path: Path, data: dict[str, Any], loop: str = "uvloop", env: dict[str, str] | None = None
) -> AsyncIterator[Process]:
    """`coaxgate run` in a child process on free ports; `.port` is its HTTP port.

    Keys of `data["server"]` other than the ports are kept (host defaults to 127.0.0.1).
    """
    port = free_port()
    server = {**data.get("server", {}), "http_port": port, "rtsp_port": free_port()}
    data = {**data, "server": {"host": "127.0.0.1", **server}}
    path = write_config(tmp_path, data)
    proc = Process(["--loop", loop, "run", "-c", str(path)], env=env)
    proc.port = port  # type: ignore[attr-defined]
    proc.start(tmp_path / "gateway.log")
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
        yield proc
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.stop()


@dataclass
class Received:
    """What an MJPEG client got: frames with their arrival times."""

    frames: list[bytes] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    ended: bool = False

    def fps(self, skip: int = 1) -> float:
        """Frame rate between the `skip`-th frame and the last one."""
        t = self.times[skip:]
        if len(t) < 2:
            return 0.0
        return (len(t) - 1) / (t[-1] - t[0])


async def read_mjpeg(
    url: str,
    *,
    duration: float | None = None,
    frames: int | None = None,
    timeout: float = 30.0,
    http: aiohttp.ClientSession | None = None,
) -> Received:
    """Read a multipart MJPEG stream for `duration` seconds or until `frames` frames."""
    out = Received()
    own = http is None
    session = http or aiohttp.ClientSession()
    try:
        async with asyncio.timeout(timeout):
            async with session.get(url) as resp:
                resp.raise_for_status()
                out.headers = dict(resp.headers)
                scanner = MultipartScanner(boundary_from_content_type(resp.headers["Content-Type"]))
                end = None if duration is None else time.monotonic() + duration
                while True:
                    remaining = None if end is None else end - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    try:
                        chunk = await asyncio.wait_for(resp.content.readany(), remaining)
                    except TimeoutError:
                        break
                    if not chunk:
                        out.ended = True
                        break
                    now = time.monotonic()
                    for event in scanner.feed(chunk):
                        assert isinstance(event, Part), f"bad part: {event.reason}"
                        out.frames.append(event.body)
                        out.times.append(now)
                    if scanner.closed:
                        out.ended = True
                        break
                    if frames is not None and len(out.frames) >= frames:
                        break
    finally:
        if own:
            await session.close()
    return out


async def get_json(url: str) -> Any:
    """GET a URL and parse its JSON."""
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        resp.raise_for_status()
        return await resp.json()


async def get_bytes(url: str) -> tuple[int, str, bytes]:
    """GET a URL: (status, content type, body)."""
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, resp.content_type, await resp.read()


async def get_text(url: str) -> tuple[int, str]:
    """GET a URL: (status, text)."""
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.text()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text output (0 if absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric_name, _, rest = head.partition("{")
        if metric_name != name:
            continue
        got = ",".join(sorted(p for p in rest.rstrip("}").split(",") if p))
        if got == want:
            return float(value)
    return 0.0


@contextlib.asynccontextmanager
async def emulator_stack(
    channels: int = 2, resolution: tuple[int, int] = (352, 288)
) -> AsyncIterator[Gateway]:
    """The emulator over HTTP and a gateway in front of it (channels cam1..camN), in process."""
    emulator = Emulator(EmulatorOptions(channels=channels, resolution=resolution))
    eport = await emulator.start()
    cfg = config.parse(
        {
            "server": {"host": "127.0.0.1", "http_port": free_port(), "rtsp_port": free_port()},
            "rtsp": {"rtp_port": 0},
            "channels": [
                {
                    "name": f"cam{i}",
                    "source": f"http://127.0.0.1:{eport}/axis-cgi/mjpg/video.cgi?camera={i}",
                }
                for i in range(1, channels + 1)
            ],
        }
    )
    try:
        async with serving(cfg) as gateway:
            yield gateway
    finally:
        await emulator.stop()


@contextlib.asynccontextmanager
async def serving(cfg: config.Config) -> AsyncIterator[Gateway]:
    """A gateway started in process, once every channel has had a few frames; stopped after."""
    gateway = Gateway(cfg)
    await gateway.start()
    try:
        for _ in range(200):
            if all(c.frames_in > 2 for c in gateway.channels.values()):
                break
            await asyncio.sleep(0.05)
        yield gateway
    finally:
        await gateway.stop()


async def run_peer(*argv: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run a peer program beside the event loop: (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        return -9, out.decode(errors="replace"), err.decode(errors="replace")
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def decode_jpeg(data: bytes) -> tuple[int, int]:
    """Decode a JPEG with PyAV; returns its (width, height)."""
    import av

    codec = av.CodecContext.create("mjpeg", "r")
    frames = codec.decode(av.Packet(data))
    frames += codec.decode(None)
    assert frames, "PyAV decoded nothing"
    return frames[0].width, frames[0].height


@contextlib.asynccontextmanager
async def gateway_running(data: dict[str, Any], channels: int = 1) -> AsyncIterator[Gateway]:
    """A gateway in process on free loopback ports, with emulated inputs cam1..camN.

    `data` is config: its [server] keys are added to host 127.0.0.1 and ports 0.
    """
    server = {"host": "127.0.0.1", "http_port": 0, "rtsp_port": 0, **data.get("server", {})}
    cfg = config.parse(
        {
            "rtsp": {"rtp_port": 0},
            "channels": [
                {"name": f"cam{i}", "source": f"emulator:{i}?resolution=176x144&fps=25"}
                for i in range(1, channels + 1)
            ],
            **data,
            "server": server,
        }
    )
    async with serving(cfg) as gateway:
        yield gateway
