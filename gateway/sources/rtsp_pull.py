"""Pulling from an RTSP camera or encoder (Axis Q7404, AXIS OS cameras, another gateway).

One session: OPTIONS, DESCRIBE, SETUP of the first video track the camera
offers (H.264 or Motion JPEG), PLAY, then RTP interleaved in the RTSP
connection until something fails, with GET_PARAMETER (or OPTIONS) keeping the
session alive inside the camera's timeout. H.264 access units are passed to the
channel as they came; RTP/JPEG frames are rebuilt into JPEGs and take the MJPEG
path (checked, and re-encoded to H.264 where someone asks for it).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time
from urllib.parse import urlsplit

from .._ext.rtph264 import RtpH264Depacketizer, nal_type, split_annexb, sps_info
from .._ext.rtpjpeg import RtpJpegDepacketizer
from ..log import Aggregated
from ..media.channel import Channel
from ..rtp import packet as rtp
from ..rtsp.client import Credentials, RtspClient, RtspClientError
from ..rtsp.sdp import OfferedMedia, parse_offer
from .base import Source, SourceError

log = logging.getLogger(__name__)

VIDEO_ENCODINGS = ("H264", "JPEG")
RTP_CHANNEL, RTCP_CHANNEL = 0, 1
NAL_IDR, NAL_SPS = 5, 7


def pick_video(media: list[OfferedMedia]) -> OfferedMedia:
    """The first video track we can take: H.264 or Motion JPEG."""
    for m in media:
        if m.kind == "video" and m.encoding in VIDEO_ENCODINGS:
            return m
    offered = ", ".join(f"{m.kind}/{m.encoding or m.payload_type}" for m in media)
    raise SourceError(f"no H.264 or JPEG video track offered ({offered})", "unsupported")


def sprop_parameter_sets(fmtp: dict[str, str]) -> tuple[bytes, bytes] | None:
    """SPS and PPS from an fmtp's sprop-parameter-sets (RFC 6184 8.1), if both are there."""
    sps = pps = None
    for item in fmtp.get("sprop-parameter-sets", "").split(","):
        try:
            nal = base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError):
            continue
        if nal and nal[0] & 0x1F == NAL_SPS:
            sps = nal
        elif nal and nal[0] & 0x1F == 8:
            pps = nal
    return (sps, pps) if sps and pps else None


class RtspPullSource(Source):
    """Keeps a channel fed from an RTSP upstream, over TCP interleaved."""

    def __init__(self, channel: Channel) -> None:
        super().__init__(channel)
        self._base = self.config.source  # the aggregate control URL once DESCRIBE told it
        self.stats: rtp.ReceiverStats | None = None
        self.codec = ""
        self.bad_packets = 0
        self._depacketizer: RtpH264Depacketizer | RtpJpegDepacketizer | None = None
        self._payload_type = -1
        self._bad_log = Aggregated(log, f"{self.config.name}: bad RTP packet from the camera")

    async def session(self) -> None:
        cfg = self.config
        credentials = None
        if cfg.username is not None:
            credentials = Credentials(cfg.username, cfg.password or "")
        client = RtspClient(
            cfg.source,
            credentials,
            timeout=cfg.connect_timeout,
            on_interleaved=self._on_interleaved,
        )
        try:
            await self._pull(client)
        except RtspClientError as e:
            raise SourceError(str(e), e.reason) from None
        finally:
            if client.session is not None and client.error is None:
                with contextlib.suppress(Exception):
                    client.timeout = 1.0
                    await client.request("TEARDOWN", self._base)
            await client.close()

    async def _pull(self, client: RtspClient) -> None:
        self._base = self.config.source
        await client.connect()
        options = await client.request("OPTIONS")
        public = {m.strip().upper() for m in (options.headers.get("Public") or "").split(",")}
        describe = await client.request("DESCRIBE", headers={"Accept": "application/sdp"})
        self._base = describe.headers.get("Content-Base") or self.config.source
        try:
            session_control, media = parse_offer(describe.body.decode("utf-8", "replace"))
        except ValueError as e:
            raise SourceError(f"unusable SDP: {e}", "bad_response") from None
        video = pick_video(media)
        self._start_track(video)
        track_url = client.control_url(self._base, video.control)
        transport = f"RTP/AVP/TCP;unicast;interleaved={RTP_CHANNEL}-{RTCP_CHANNEL}"
        await client.request("SETUP", track_url, {"Transport": transport})
        play_url = client.control_url(self._base, session_control) if session_control else None
        self._base = play_url or self._base
        await client.request("PLAY", self._base, {"Range": "npt=0.000-"})
        host = urlsplit(self.config.source).netloc
        log.info("source %s: %s over RTSP/TCP from %s", self.channel.name, video.encoding, host)
        keepalive = "GET_PARAMETER" if "GET_PARAMETER" in public else "OPTIONS"
        while not client.ended.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.ended.wait(), max(1.0, client.session_timeout / 2))
            if not client.ended.is_set():
                await client.request(keepalive, self._base)
        raise client.error or SourceError("the camera closed the connection", "closed")

    def _start_track(self, video: OfferedMedia) -> None:
        self.codec = video.encoding
        self._payload_type = video.payload_type
        self.stats = rtp.ReceiverStats(video.clock_rate or 90000)
        if video.encoding == "H264":
            self._depacketizer = RtpH264Depacketizer(self.config.max_ingest_frame)
            sets = sprop_parameter_sets(video.fmtp)
            if sets is not None:
                self.channel.h264_parameter_sets = sets
                self._note_sps(sets[0])
        else:
            self._depacketizer = RtpJpegDepacketizer(self.config.max_ingest_frame)

    def _on_interleaved(self, channel: int, data: bytes) -> None:
        if channel != RTP_CHANNEL:
            return  # RTCP from the camera: sender reports are not used yet
        try:
            packet = rtp.parse(data)
        except ValueError as e:
            self._bad_packet(str(e))
            return
        if packet.payload_type != self._payload_type or self._depacketizer is None:
            self._bad_packet(f"payload type {packet.payload_type}")
            return
        assert self.stats is not None
        pts = self.stats.update(packet.ssrc, packet.seq, packet.timestamp, time.monotonic())
        try:
            frame = self._depacketizer.push(packet.seq, pts, packet.marker, packet.payload)
        except ValueError as e:
            self._bad_packet(str(e))
            return
        if frame is None:
            return
        if isinstance(self._depacketizer, RtpJpegDepacketizer):
            self.deliver(frame)
            return
        keyframe = False
        for nal in split_annexb(frame):
            kind = nal_type(nal)
            if kind == NAL_IDR:
                keyframe = True
            elif kind == NAL_SPS:
                self._note_sps(bytes(nal))
        self.channel.ingest_h264(frame, pts, keyframe)
        self.delivered()

    def _note_sps(self, sps: bytes) -> None:
        try:
            width, height = sps_info(sps)[3:]
        except ValueError:
            return
        if (width, height) != (self.channel.width, self.channel.height):
            self.channel.width, self.channel.height = width, height

    def _bad_packet(self, reason: str) -> None:
        self.bad_packets += 1
        self._bad_log.add(reason)
