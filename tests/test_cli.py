"""The command line: help, demo, clean shutdown."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .support import (
    Process,
    emulator_process,
    free_port,
    gateway_process,
    get_json,
    get_text,
    read_mjpeg,
    wait_http,
)


@pytest.mark.parametrize("command", [[], ["demo"], ["run"], ["emulate"], ["check"]])
def test_help(command: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0
    assert "usage: coaxgate" in out.stdout
    assert len(out.stdout.splitlines()) > 5


def test_bad_arguments_exit_2() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "emulate", "--port", "99999"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "port" in out.stderr


@pytest.mark.loops("uvloop")
async def test_demo_serves_four_channels(tmp_path: Path, loop_name: str) -> None:
    http_port = free_port()
    proc = Process(
        [
            "demo",
            "--http-port",
            str(http_port),
            "--rtsp-port",
            str(free_port()),
            "--resolution",
            "352x288",
        ]
    )
    proc.start(tmp_path / "demo.log")
    try:
        base = f"http://127.0.0.1:{http_port}"
        await wait_http(f"{base}/healthz", proc=proc)
        status, page = await get_text(f"{base}/")
        assert status == 200 and "/static/viewer.js" in page
        status, script = await get_text(f"{base}/static/viewer.js")
        assert status == 200 and "/whep" in script
        channels = (await get_json(f"{base}/api/v1/channels"))["channels"]
        names = [c["name"] for c in channels]
        assert names == ["lobby", "entrance", "parking", "loading-dock"]
        for name in names:
            got = await read_mjpeg(f"{base}/channels/{name}/mjpeg", frames=3, timeout=30)
            assert len(got.frames) == 3
    finally:
        code = proc.stop(signal.SIGINT)
    assert code == 0, proc.log()
    log = proc.log()
    assert f"http://127.0.0.1:{http_port}/channels/lobby/mjpeg" in log
    assert "rtsp://127.0.0.1:" in log
    assert "Ctrl-C" in log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_shuts_down_cleanly(tmp_path: Path, loop_name: str, sig: int) -> None:
    async with emulator_process(tmp_path, "--resolution", "176x144") as emu:
        channel = {
            "name": "lobby",
            "source": f"http://127.0.0.1:{emu.port}/axis-cgi/mjpg/video.cgi?resolution=176x144",
        }
        async with gateway_process(tmp_path, {"channels": [channel]}, loop_name) as gw:
            url = f"http://127.0.0.1:{gw.port}/channels/lobby/mjpeg"
            viewer = asyncio.create_task(read_mjpeg(url, duration=30))
            await asyncio.sleep(1.5)
            code = await asyncio.to_thread(gw.stop, sig)
            got = await viewer
        assert code == 0, gw.log()
        assert got.ended, "the response was finished, not cut"
        assert len(got.frames) > 10
