"""WHEP load client: N aiortc peers that receive, decrypt and reassemble, but do not decode.

    python bench/whepload.py URL --peers N [--warmup 5] [--seconds 10]

Run inside a network namespace (aiortc gathers every address it finds). The
decoder is replaced by a counter, so the client's CPU goes to what every
viewer must do (ICE, DTLS, SRTP, jitter buffer) and hundreds of frames a
second fit on one core. Prints {"event": "start"} when the measured window
opens and one JSON object of totals when it closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from typing import Any
from urllib.parse import urljoin

import aiohttp
import aiortc.rtcrtpreceiver
from aiortc import RTCPeerConnection, RTCSessionDescription

FRAMES: dict[int, int] = {}
LOCK = threading.Lock()


class CountingDecoder:
    """Stands in for the H.264 decoder: counts the access units the jitter buffer completes."""

    def __init__(self) -> None:
        self.id = id(self)

    def decode(self, encoded_frame: Any) -> list[Any]:
        with LOCK:
            FRAMES[self.id] = FRAMES.get(self.id, 0) + 1
        return []


aiortc.rtcrtpreceiver.get_decoder = lambda codec: CountingDecoder()  # type: ignore[attr-defined]


async def open_peer(http: aiohttp.ClientSession, url: str) -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    async with http.post(
        url, data=pc.localDescription.sdp, headers={"Content-Type": "application/sdp"}
    ) as resp:
        if resp.status != 201:
            raise RuntimeError(f"WHEP {resp.status}: {await resp.text()}")
        answer, location = await resp.text(), resp.headers["Location"]
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return pc, location


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--peers", type=int, default=10)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    async with aiohttp.ClientSession() as http:
        peers = [await open_peer(http, args.url) for _ in range(args.peers)]
        await asyncio.sleep(args.warmup)
        with LOCK:
            before = dict(FRAMES)
        print(json.dumps({"event": "start"}), flush=True)
        start = time.monotonic()
        await asyncio.sleep(args.seconds)
        elapsed = time.monotonic() - start
        with LOCK:
            after = dict(FRAMES)
        counts = [after.get(k, 0) - before.get(k, 0) for k in after]
        connected = sum(pc.connectionState == "connected" for pc, _ in peers)
        print(
            json.dumps(
                {
                    "peers": args.peers,
                    "connected": connected,
                    "seconds": elapsed,
                    "frames": sum(counts),
                    "min_fps": min(counts) / elapsed if counts else 0.0,
                    "mean_fps": sum(counts) / len(counts) / elapsed if counts else 0.0,
                }
            ),
            flush=True,
        )
        for pc, location in peers:
            async with http.delete(urljoin(args.url, location)):
                pass
            await pc.close()


if __name__ == "__main__":
    asyncio.run(main())
