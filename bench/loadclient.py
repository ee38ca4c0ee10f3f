"""Load client: N concurrent MJPEG viewers that count frames and bytes.

Runs in its own process so that the process under test is measured alone:

    python bench/loadclient.py --url http://127.0.0.1:8080/channels/lobby/mjpeg \
        --viewers 100 --warmup 2 --seconds 10

Prints `{"event": "start"}` when the measured window opens, then one JSON
object when it closes: viewers connected, frames and bytes received during
the measured window, and the slowest viewer's frame rate. With --raw it
connects without sending a request, for servers that stream on connect
(GStreamer's tcpserversink).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit

import uvloop

MARK = b"--myboundary"


class Viewer:
    """One connection; counts delimiters, so frames are counted without parsing them."""

    def __init__(self) -> None:
        self.frames = 0
        self.bytes = 0
        self.counting = False
        self.connected = False

    async def run(self, host: str, port: int, path: str | None, stop: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        self.connected = True
        if path is not None:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        tail = b""
        try:
            while not stop.is_set():
                chunk = await reader.read(1 << 18)
                if not chunk:
                    break
                if self.counting:
                    self.bytes += len(chunk)
                    # A delimiter may straddle two reads: look at the seam too.
                    self.frames += (tail + chunk).count(MARK)
                tail = chunk[-(len(MARK) - 1) :]
        finally:
            writer.close()


async def main(args: argparse.Namespace) -> dict[str, object]:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    path = None if args.raw else (url.path + (f"?{url.query}" if url.query else ""))
    stop = asyncio.Event()
    viewers = [Viewer() for _ in range(args.viewers)]
    tasks = [asyncio.create_task(v.run(host, port, path, stop)) for v in viewers]
    await asyncio.sleep(args.warmup)
    for v in viewers:
        v.counting = True
    print(json.dumps({"event": "start"}), flush=True)
    start = time.monotonic()
    await asyncio.sleep(args.seconds)
    elapsed = time.monotonic() - start
    for v in viewers:
        v.counting = False
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    fps = [v.frames / elapsed for v in viewers]
    return {
        "viewers": sum(v.connected for v in viewers),
        "seconds": elapsed,
        "frames": sum(v.frames for v in viewers),
        "bytes": sum(v.bytes for v in viewers),
        "min_fps": min(fps) if fps else 0.0,
        "mean_fps": sum(fps) / len(fps) if fps else 0.0,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--viewers", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--raw", action="store_true", help="read without sending a request")
    print(json.dumps(uvloop.run(main(parser.parse_args()))))
