"""Open a page in headless Chromium and read `window.coaxgate` over the DevTools protocol.

    python tests/browser_check.py URL [--seconds S] [--chromium PATH]

Prints JSON: the page's per-channel state sampled once a second. Run inside a
test network namespace: Chromium's WebRTC gathers the namespace's addresses,
and mDNS candidate obfuscation is turned off so that none leaves it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any

import aiohttp

FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--mute-audio",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def evaluate(ws: aiohttp.ClientWebSocketResponse, expression: str, ident: int) -> Any:
    await ws.send_json(
        {
            "id": ident,
            "method": "Runtime.evaluate",
            "params": {"expression": expression, "returnByValue": True},
        }
    )
    while True:
        message = await ws.receive_json(timeout=10)
        if message.get("id") == ident:
            return message.get("result", {}).get("result", {}).get("value")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    port = free_port()
    profile = tempfile.mkdtemp(prefix="coaxgate-chromium-")
    browser = subprocess.Popen(  # noqa: ASYNC220 - it runs beside the loop until the end
        [
            args.chromium,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--remote-debugging-port={port}",
            args.url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    samples: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession() as http:
            target = None
            for _ in range(100):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                        pages = [t for t in await resp.json() if t.get("type") == "page"]
                        if pages:
                            target = pages[0]
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
            assert target is not None, "Chromium did not start"
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                start = time.monotonic()
                ident = 0
                while time.monotonic() - start < args.seconds:
                    await asyncio.sleep(1.0)
                    ident += 1
                    value = await evaluate(ws, "JSON.stringify(window.coaxgate || null)", ident)
                    samples.append(
                        {
                            "t": round(time.monotonic() - start, 2),
                            "state": json.loads(value) if value else None,
                        }
                    )
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()
        shutil.rmtree(profile, ignore_errors=True)
    print(json.dumps({"samples": samples}))


if __name__ == "__main__":
    asyncio.run(main())
