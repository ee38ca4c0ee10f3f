"""Two network namespaces joined by a veth pair: a gateway host and a viewer host.

Multicast tests need a real interface with multicast and routes of their own,
and must not touch the machine's network: everything here lives in the
namespaces the test creates and is deleted after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from .support import ROOT, run_peer, write_config


def require_netns() -> None:
    """Skip (or fail with REQUIRE_PEERS=1) where namespaces cannot be made."""
    why = None
    if os.geteuid() != 0:
        why = "network namespaces need root"
    elif not shutil.which("ip"):
        why = "iproute2 (ip) is not installed"
    if why:
        if os.environ.get("REQUIRE_PEERS") == "1":
            pytest.fail(why)
        pytest.skip(why)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=20)


class NetnsPair:
    """Namespace `gw` (10.203.N.1) and namespace `viewer` (10.203.N.2) on one veth link."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.gw = f"cg-gw-{tag}"
        self.viewer = f"cg-vw-{tag}"
        subnet = 10 + int(tag, 16) % 200
        self.gw_ip = f"10.203.{subnet}.1"
        self.viewer_ip = f"10.203.{subnet}.2"
        self._veth = (f"cgg{tag}", f"cgv{tag}")

    def __enter__(self) -> NetnsPair:
        try:
            _ip("netns", "add", self.gw)
            _ip("netns", "add", self.viewer)
            a, b = self._veth
            _ip("link", "add", a, "type", "veth", "peer", "name", b)
            _ip("link", "set", a, "netns", self.gw)
            _ip("link", "set", b, "netns", self.viewer)
            for ns, dev, addr in ((self.gw, a, self.gw_ip), (self.viewer, b, self.viewer_ip)):
                _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
                _ip("-n", ns, "link", "set", dev, "up")
                _ip("-n", ns, "link", "set", "lo", "up")
                # No default route in a fresh namespace: send multicast out of the link.
                _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", dev)
        except (subprocess.CalledProcessError, OSError) as e:
            self.__exit__()
            detail = getattr(e, "stderr", "") or str(e)
            if os.environ.get("REQUIRE_PEERS") == "1":
                pytest.fail(f"cannot create network namespaces: {detail}")
            pytest.skip(f"cannot create network namespaces: {detail}")
        return self

    def __exit__(self, *exc: object) -> None:
        for ns in (self.gw, self.viewer):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)

    @staticmethod
    def run_in(ns: str, *argv: str) -> list[str]:
        """The command line that runs `argv` inside namespace `ns`."""
        return ["ip", "netns", "exec", ns, *argv]

    def python(self, ns: str, script: str | Path, *args: str) -> list[str]:
        """Run a Python file of this repository inside a namespace."""
        return self.run_in(ns, sys.executable, str(Path(ROOT) / script), *args)


@contextlib.asynccontextmanager
async def gateway_in(
    nets: NetnsPair, tmp_path: Path, data: dict[str, Any], channels: list[str]
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """`coaxgate run` inside the gateway namespace, until every named channel is up.

    It must exit 0 on SIGTERM at the end. Its metrics are public: the tests read
    them from the other namespace, where an open gateway answers admin endpoints
    only on loopback.
    """
    data = {**data, "auth": {"metrics_public": True, **data.get("auth", {})}}
    path = write_config(tmp_path, data)
    log_path = tmp_path / "gateway.log"
    with open(log_path, "wb") as log:  # noqa: ASYNC230 - a local file, opened once
        proc = subprocess.Popen(  # noqa: ASYNC220 - it runs beside the test, not awaited
            nets.run_in(nets.gw, sys.executable, "-m", "gateway.cli", "run", "-c", str(path)),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        deadline = time.monotonic() + 20
        while any(f"source {name} up" not in log_path.read_text() for name in channels):
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            await asyncio.sleep(0.1)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log_path.read_text()


async def run_in(argv: list[str], timeout: float = 120) -> tuple[int, str]:
    """Run a command (in a namespace): exit status and its output, stderr last."""
    rc, out, err = await run_peer(*argv, timeout=timeout)
    return rc, out + err[-3000:]


async def http_get(nets: NetnsPair, url: str) -> str:
    """GET a URL from the viewer namespace (the test itself cannot reach it)."""
    code = (
        "import urllib.request, sys; "
        f"sys.stdout.write(urllib.request.urlopen({url!r}).read().decode())"
    )
    rc, out = await run_in(nets.run_in(nets.viewer, sys.executable, "-c", code))
    assert rc == 0, out
    return out
