"""WebRTC viewing over WHEP: an SDP offer in, an answer out, the shared H.264 to each peer.

    POST   /channels/{name}/whep          offer (application/sdp) -> 201, Location, answer
    DELETE /channels/{name}/whep/{id}     end the session
    OPTIONS on both                       CORS and Accept-Post, as the WHEP draft says
    PATCH  (trickle ICE)                  405: the answer carries every candidate

Each peer reads the channel's H.264 track through its own bounded queue
(`PeerTrack`); a PLI or FIR from any peer asks the encoder for an IDR. A peer
whose ICE or DTLS fails, that does not connect in time, or that goes silent
(consent freshness) is closed and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)

from ..config import WebRtcConfig
from ..media.channel import Channel
from ..media.limits import LimitError, ViewerLimits, viewer_limits
from ..media.session import Session
from ..media.unit import Unit
from ..transcode.feed import H264Feed
from .ports import PortRange, install
from .track import Packer, PeerTrack, use_shared_packer

if TYPE_CHECKING:
    from ..app import Gateway

log = logging.getLogger(__name__)

MAX_OFFER = 64 * 1024
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "OPTIONS, POST, DELETE, PATCH",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, If-Match",
    "Access-Control-Expose-Headers": "Location, ETag, Link, Accept-Post",
}


def h264_preferences() -> list:  # list[RTCRtpCodecCapability]
    """The codecs to answer with: H.264 packetization-mode 1 (what the encoder sends)."""
    codecs = RTCRtpSender.getCapabilities("video").codecs
    return [c for c in codecs if c.mimeType == "video/H264"]


class WebRtcPeer:
    """One WHEP session."""

    def __init__(
        self, channel: Channel, feed: H264Feed, pc: RTCPeerConnection, track: PeerTrack
    ) -> None:
        self.id = secrets.token_urlsafe(16)
        self.channel = channel
        self.feed = feed
        self.pc = pc
        self.track = track
        self.session = track.session
        self.created = time.monotonic()
        self.connected = False
        self.closed = False


class WebRtcFanout:
    """Every WebRTC peer of one H.264 feed of a channel."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.peers: list[WebRtcPeer] = []
        self.packer = Packer()

    def on_unit(self, unit: Unit) -> None:
        """Packetize once per frame, queue the payloads to every peer."""
        if not self.peers:
            return
        frame = self.packer.pack(unit)
        for peer in self.peers:
            peer.track.offer(frame, unit)
        self.channel.count_egress("webrtc", len(self.peers), len(unit.data) * len(self.peers))


class WebRtcServer:
    """Creates, watches and closes the WebRTC peers of every channel."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.config: WebRtcConfig = gateway.config.webrtc
        self.peers: dict[str, WebRtcPeer] = {}
        self.fanouts: dict[H264Feed, WebRtcFanout] = {}
        self.failures: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[bool]] = set()
        self._answering = 0
        self.keyframe_requests: Counter[tuple[str, str]] = Counter()
        ports = None
        if self.config.udp_port_min:
            ports = PortRange(self.config.udp_port_min, self.config.udp_port_max)
        install(ports, gateway.dscp)

    def _configuration(self) -> RTCConfiguration:
        servers = [RTCIceServer(urls=url) for url in self.config.stun]
        servers += [
            RTCIceServer(urls=t.url, username=t.username, credential=t.credential)
            for t in self.config.turn
        ]
        return RTCConfiguration(iceServers=servers)

    async def offer(
        self, channel: Channel, offer_sdp: str, peer: str, limits: ViewerLimits | None = None
    ) -> tuple[WebRtcPeer, str]:
        """Answer a WHEP offer; the peer starts receiving once ICE and DTLS are up."""
        # Offers being answered count too: answering awaits, and offers arrive together.
        if len(self.peers) + self._answering >= self.config.max_peers:
            raise web.HTTPServiceUnavailable(text="too many WebRTC peers\n")
        self._answering += 1
        try:
            return await self._answer(channel, offer_sdp, peer, limits or ViewerLimits())
        finally:
            self._answering -= 1

    async def _answer(
        self, channel: Channel, offer_sdp: str, peer: str, limits: ViewerLimits
    ) -> tuple[WebRtcPeer, str]:
        feed, residual_fps = self.gateway.h264_feed(channel.name, limits.fps)
        session = Session("webrtc", peer, channel.name, limits.fps_or_none)
        session.transport = "webrtc"
        session.limits = limits
        track = PeerTrack(
            session,
            self.config.peer_queue_frames,
            self._keyframe_requester(feed, channel.name),
            lambda reason, n: channel.count_drop("webrtc", reason, n),
            dataclasses.replace(limits, fps=residual_fps),
            channel.bucket,
        )
        pc = RTCPeerConnection(self._configuration())
        webrtc_peer = WebRtcPeer(channel, feed, pc, track)
        try:
            # The transceiver exists before the offer is applied: codecs are
            # negotiated while applying it, and only H.264 is on offer here.
            transceiver = pc.addTransceiver(track, direction="sendonly")
            transceiver.setCodecPreferences(h264_preferences())
            use_shared_packer(transceiver.sender)
            self._hook_keyframe_requests(transceiver.sender, feed, channel.name)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            if transceiver.mid is None:
                raise web.HTTPBadRequest(text="the offer has no video section\n", headers=CORS)
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except web.HTTPException:
            await pc.close()
            raise
        except Exception as e:  # malformed SDP, no common codec, ...
            await pc.close()
            self.failures["bad_offer"] += 1
            raise web.HTTPBadRequest(text=f"cannot answer this offer: {e}\n") from None
        self.peers[webrtc_peer.id] = webrtc_peer
        self.gateway.sessions.add(session)
        fanout = self.fanouts.get(feed)
        if fanout is None:
            fanout = self.fanouts[feed] = WebRtcFanout(channel)
        if not fanout.peers:
            feed.track.add_reader(fanout)
        fanout.peers.append(webrtc_peer)
        feed.acquire()

        @pc.on("connectionstatechange")
        async def _state() -> None:
            state = pc.connectionState
            if state == "connected":
                webrtc_peer.connected = True
                feed.request_keyframe("new_viewer")
            elif state == "failed":
                await self.close(webrtc_peer.id, "ice_or_dtls_failed")
            elif state == "closed":
                await self.close(webrtc_peer.id, None)

        asyncio.get_running_loop().call_later(
            self.config.connect_timeout, self._check_connected, webrtc_peer.id
        )
        return webrtc_peer, pc.localDescription.sdp

    def _keyframe_requester(self, feed: H264Feed, name: str) -> Callable[[str], None]:
        def request(reason: str) -> None:
            self.keyframe_requests[(name, reason)] += 1
            feed.request_keyframe(reason)

        return request

    def _hook_keyframe_requests(self, sender: RTCRtpSender, feed: H264Feed, name: str) -> None:
        # aiortc handles PLI/FIR by flagging its own encoder, which a sender of
        # pre-encoded packets does not use; route the request to the shared encoder.
        original = sender._send_keyframe
        request = self._keyframe_requester(feed, name)

        def send_keyframe() -> None:
            original()
            request("pli")

        sender._send_keyframe = send_keyframe  # type: ignore[method-assign]

    def _check_connected(self, peer_id: str) -> None:
        peer = self.peers.get(peer_id)
        if peer is not None and not peer.connected:
            task = asyncio.ensure_future(self.close(peer_id, "connect_timeout"))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self, peer_id: str, failure: str | None) -> bool:
        """End a peer: stop its track, close the connection, release the encoder."""
        peer = self.peers.pop(peer_id, None)
        if peer is None:
            return False
        peer.closed = True
        if failure is not None:
            self.failures[failure] += 1
            log.info(
                "WebRTC peer %s of %s closed: %s", peer.session.peer, peer.channel.name, failure
            )
        feed = peer.feed
        fanout = self.fanouts.get(feed)
        if fanout is not None and peer in fanout.peers:
            fanout.peers.remove(peer)
            if not fanout.peers:
                feed.track.remove_reader(fanout)
        peer.track.stop()
        self.gateway.sessions.remove(peer.session)
        feed.release()
        with contextlib.suppress(Exception):
            await peer.pc.close()
        return True

    async def stop(self) -> None:
        """Close every peer."""
        await asyncio.gather(*(self.close(pid, None) for pid in list(self.peers)))


# -- HTTP ----------------------------------------------------------------------------


def _channel(gw: Gateway, request: web.Request) -> Channel:
    channel = gw.channels.get(request.match_info["name"])
    if channel is None:
        raise web.HTTPNotFound(text=f"no channel {request.match_info['name']!r}\n", headers=CORS)
    return channel


async def options(request: web.Request) -> web.Response:
    """OPTIONS: CORS preflight and what the endpoint accepts."""
    return web.Response(status=204, headers={**CORS, "Accept-Post": "application/sdp"})


async def post(gw: Gateway, request: web.Request) -> web.Response:
    """POST an SDP offer: 201 with the answer and the session's Location."""
    channel = _channel(gw, request)
    if request.content_type != "application/sdp":
        raise web.HTTPUnsupportedMediaType(text="the offer must be application/sdp\n", headers=CORS)
    if request.content_length is not None and request.content_length > MAX_OFFER:
        raise web.HTTPRequestEntityTooLarge(MAX_OFFER, request.content_length, headers=CORS)
    body = await request.content.read(MAX_OFFER + 1)
    if len(body) > MAX_OFFER:
        raise web.HTTPRequestEntityTooLarge(MAX_OFFER, len(body), headers=CORS)
    try:
        offer = body.decode("utf-8")
    except UnicodeDecodeError:
        raise web.HTTPBadRequest(text="the offer is not UTF-8\n", headers=CORS) from None
    if not offer.startswith("v=0"):
        raise web.HTTPBadRequest(text="the body is not an SDP offer\n", headers=CORS)
    peer_addr = request.remote or "?"
    try:
        limits = viewer_limits(channel.limits, gw.profiles, request.query)
    except LimitError as e:
        raise web.HTTPBadRequest(text=f"{e}\n", headers=CORS) from None
    try:
        peer, answer = await gw.webrtc.offer(channel, offer, peer_addr, limits)
    except web.HTTPException as e:
        e.headers.update(CORS)  # browsers only read cross-origin errors that carry CORS
        raise
    location = f"/channels/{channel.name}/whep/{peer.id}"
    return web.Response(
        status=201,
        text=answer,
        content_type="application/sdp",
        headers={**CORS, "Location": location, "ETag": f'"{peer.id}"'},
    )


async def delete(gw: Gateway, request: web.Request) -> web.Response:
    """DELETE the session resource: the peer is closed."""
    peer = gw.webrtc.peers.get(request.match_info["session"])
    if peer is None or peer.channel.name != request.match_info["name"]:
        raise web.HTTPNotFound(text="no such WHEP session\n", headers=CORS)
    await gw.webrtc.close(peer.id, None)
    return web.Response(status=200, headers=CORS)


async def patch(request: web.Request) -> web.Response:
    """Trickle ICE is not supported: every candidate is in the answer."""
    raise web.HTTPMethodNotAllowed("PATCH", ["OPTIONS", "POST", "DELETE"], headers=CORS)
