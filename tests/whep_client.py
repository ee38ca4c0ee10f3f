"""A WHEP client on aiortc: N peers watch one channel, decode, count; prints JSON.

    python tests/whep_client.py URL [--peers N] [--seconds S]

Run inside a test network namespace: aiortc gathers every address it finds.
Each peer POSTs its offer to URL (the channel's /whep endpoint), decodes the
H.264 it receives, and DELETEs its session at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from typing import Any
from urllib.parse import urljoin

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError


async def peer(
    http: aiohttp.ClientSession, url: str, seconds: float, pli: bool, connect: bool
) -> dict[str, Any]:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    received: asyncio.Queue[Any] = asyncio.Queue()
    pc.on("track", received.put_nowait)
    await pc.setLocalDescription(await pc.createOffer())
    async with http.post(
        url, data=pc.localDescription.sdp, headers={"Content-Type": "application/sdp"}
    ) as resp:
        answer = await resp.text()
        result: dict[str, Any] = {"status": resp.status, "location": resp.headers.get("Location")}
    if resp.status != 201:
        await pc.close()
        return {**result, "error": answer}
    result["candidate_ports"] = sorted(
        int(line.split()[5]) for line in answer.splitlines() if line.startswith("a=candidate:")
    )
    if not connect:  # an offer that never turns into a connection
        await asyncio.sleep(seconds)
        await pc.close()
        return result
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    result["codec"] = next(
        (line.split(" ", 1)[1] for line in answer.splitlines() if line.startswith("a=rtpmap:")),
        None,
    )
    track = await asyncio.wait_for(received.get(), 10)
    frames, sizes, first = 0, set(), None
    deadline = time.monotonic() + seconds
    with contextlib.suppress(TimeoutError, MediaStreamError):
        while (left := deadline - time.monotonic()) > 0:
            frame = await asyncio.wait_for(track.recv(), left)
            first = first or time.monotonic()
            frames += 1
            if pli and frames == 10:
                # Picture loss, as a decoder reports it: the gateway asks its encoder for an IDR.
                receiver = pc.getTransceivers()[0].receiver
                ssrc = receiver.getSynchronizationSources()[0].source
                await receiver._send_rtcp_pli(ssrc)
            sizes.add(f"{frame.width}x{frame.height}")
    result.update(frames=frames, sizes=sorted(sizes), state=pc.connectionState)
    if first is not None:
        result["fps"] = frames / max(0.001, time.monotonic() - first)
    async with http.delete(urljoin(url, result["location"])) as resp:
        result["delete"] = resp.status
    await pc.close()
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--peers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--pli", action="store_true", help="send a PLI after 10 frames")
    parser.add_argument("--no-connect", action="store_true", help="offer, then never connect")
    args = parser.parse_args()
    async with aiohttp.ClientSession() as http:
        results = await asyncio.gather(
            *(
                peer(http, args.url, args.seconds, args.pli, not args.no_connect)
                for _ in range(args.peers)
            )
        )
    print(json.dumps({"peers": results}))


if __name__ == "__main__":
    asyncio.run(main())
