"""Prometheus metrics, built at scrape time from the live objects."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.process_collector import ProcessCollector

from ..net.gatekeeper import REASONS as REFUSAL_REASONS
from .context import gateway_of

if TYPE_CHECKING:
    from ..app import Gateway


class GatewayCollector:
    """Reads channels, sources and sessions when Prometheus scrapes; keeps no copies."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[Metric]:
        """Yield every coaxgate_ metric family."""
        gw = self.gateway
        up = GaugeMetricFamily(
            "coaxgate_source_up", "1 while the source delivers frames", labels=["channel"]
        )
        frames = CounterMetricFamily(
            "coaxgate_source_frames", "Frames received from the source", labels=["channel"]
        )
        nbytes = CounterMetricFamily(
            "coaxgate_source_bytes", "JPEG bytes received from the source", labels=["channel"]
        )
        reconnects = CounterMetricFamily(
            "coaxgate_source_reconnects", "Reconnects to the source", labels=["channel"]
        )
        stalls = CounterMetricFamily(
            "coaxgate_source_stalls", "Sessions ended by the stall watchdog", labels=["channel"]
        )
        bad = CounterMetricFamily(
            "coaxgate_source_bad_frames",
            "Frames from the source dropped as unusable",
            labels=["channel", "reason"],
        )
        fps = GaugeMetricFamily(
            "coaxgate_source_fps", "Frames per second received, over 2 s", labels=["channel"]
        )
        errors = CounterMetricFamily(
            "coaxgate_source_errors",
            "Source sessions that ended on an error, by reason",
            labels=["channel", "reason"],
        )
        for name, channel in gw.channels.items():
            source = gw.sources[name]
            up.add_metric([name], 1.0 if source.up else 0.0)
            frames.add_metric([name], channel.frames_in)
            nbytes.add_metric([name], channel.bytes_in)
            reconnects.add_metric([name], source.reconnects)
            stalls.add_metric([name], source.stalls)
            for reason, n in sorted(source.errors.items()):
                errors.add_metric([name, reason], n)
            for reason, n in channel.bad_frames.items():
                bad.add_metric([name, reason], n)
            fps.add_metric([name], channel.meter.rates(time.monotonic())[0])
        yield from (up, frames, nbytes, reconnects, stalls, bad, fps, errors)

        viewers = GaugeMetricFamily(
            "coaxgate_viewers", "Viewers connected", labels=["channel", "protocol"]
        )
        for (channel_name, protocol), n in sorted(gw.sessions.viewers().items()):
            viewers.add_metric([channel_name, protocol], n)
        yield viewers

        dropped = CounterMetricFamily(
            "coaxgate_frames_dropped",
            "Frames not sent to a viewer",
            labels=["channel", "protocol", "reason"],
        )
        egress = CounterMetricFamily(
            "coaxgate_egress_bytes", "Bytes sent to viewers", labels=["channel", "protocol"]
        )
        egress_frames = CounterMetricFamily(
            "coaxgate_egress_frames", "Frames sent to viewers", labels=["channel", "protocol"]
        )
        for name, channel in gw.channels.items():
            for (protocol, reason), n in channel.dropped.items():
                dropped.add_metric([name, protocol, reason], n)
            for protocol, n in channel.egress_bytes.items():
                egress.add_metric([name, protocol], n)
            for protocol, n in channel.egress_frames.items():
                egress_frames.add_metric([name, protocol], n)
        packets = CounterMetricFamily(
            "coaxgate_egress_packets", "RTP packets sent to viewers", labels=["channel", "protocol"]
        )
        reencoded = CounterMetricFamily(
            "coaxgate_jpeg_reencoded",
            "Frames re-encoded because RFC 2435 could not carry them as they were",
            labels=["channel", "reason"],
        )
        for name, channel in gw.channels.items():
            for protocol, n in channel.egress_packets.items():
                packets.add_metric([name, protocol], n)
            for reason, n in channel.reencoded.items():
                reencoded.add_metric([name, reason], n)
        yield from (dropped, egress, egress_frames, packets, reencoded)

        loss = GaugeMetricFamily(
            "coaxgate_rtcp_receiver_loss_ratio",
            "Mean fraction lost in the latest RTCP receiver reports of the viewers",
            labels=["channel", "protocol"],
        )
        jitter = GaugeMetricFamily(
            "coaxgate_rtcp_receiver_jitter_seconds",
            "Mean interarrival jitter in the latest RTCP receiver reports of the viewers",
            labels=["channel", "protocol"],
        )
        reports: dict[tuple[str, str], list[dict[str, float]]] = {}
        for session in gw.sessions:
            if session.rtcp is not None:
                reports.setdefault((session.channel, session.protocol), []).append(session.rtcp)
        for key, rows in sorted(reports.items()):
            loss.add_metric(list(key), sum(r["fraction_lost"] for r in rows) / len(rows))
            jitter.add_metric(list(key), sum(r["jitter_seconds"] for r in rows) / len(rows))
        yield from (loss, jitter)
        yield from self._transcode()
        failures = CounterMetricFamily(
            "coaxgate_webrtc_failures", "WebRTC peers closed on failure", labels=["reason"]
        )
        for reason, n in sorted(gw.webrtc.failures.items()):
            failures.add_metric([reason], n)
        yield failures
        errors = CounterMetricFamily(
            "coaxgate_rtsp_parse_errors", "Malformed RTSP requests answered with an error"
        )
        errors.add_metric([], gw.rtsp.parse_errors)
        yield errors
        http_errors = CounterMetricFamily(
            "coaxgate_http_parse_errors", "Malformed HTTP requests answered with an error"
        )
        http_errors.add_metric([], gw.malformed_http.count)
        yield http_errors
        auth_failures = CounterMetricFamily(
            "coaxgate_auth_failures",
            "Requests with wrong or refused credentials",
            labels=["protocol"],
        )
        for protocol in ("http", "rtsp"):
            auth_failures.add_metric([protocol], gw.auth.failures[protocol])
        yield auth_failures
        lockouts = CounterMetricFamily(
            "coaxgate_auth_lockouts", "Addresses locked out after repeated failed logins"
        )
        lockouts.add_metric([], gw.auth.lockouts)
        yield lockouts
        yield from self._connections()

    def _connections(self) -> Iterator[Metric]:
        keeper = self.gateway.gatekeeper
        open_ = GaugeMetricFamily(
            "coaxgate_connections", "Connections open, by listener", labels=["listener"]
        )
        refused = CounterMetricFamily(
            "coaxgate_connections_refused",
            "Connections refused before any byte was parsed, or cut off for a slow first head",
            labels=["listener", "reason"],
        )
        for listener in keeper.listeners:
            open_.add_metric([listener], keeper.open[listener])
            for reason in REFUSAL_REASONS:
                refused.add_metric([listener, reason], keeper.refused[(listener, reason)])
        yield from (open_, refused)

    def _transcode(self) -> Iterator[Metric]:
        gw = self.gateway
        running = GaugeMetricFamily(
            "coaxgate_transcoder_running",
            "1 while the channel's H.264 encoder runs",
            labels=["channel"],
        )
        frames = CounterMetricFamily(
            "coaxgate_transcode_frames", "Frames encoded to H.264", labels=["channel"]
        )
        dropped = CounterMetricFamily(
            "coaxgate_transcode_dropped",
            "Source frames the encoder's queue dropped",
            labels=["channel"],
        )
        requests = CounterMetricFamily(
            "coaxgate_keyframe_requests", "Requests for an IDR", labels=["channel", "reason"]
        )
        seconds = HistogramMetricFamily(
            "coaxgate_transcode_seconds",
            "Time to decode and encode one frame",
            labels=["channel"],
        )
        reduced = GaugeMetricFamily(
            "coaxgate_reduced_rate_transcoders",
            "Reduced-rate H.264 encoders running (for viewers below the source rate)",
            labels=["channel"],
        )
        reduced_frames = CounterMetricFamily(
            "coaxgate_reduced_rate_frames",
            "Frames encoded by the reduced-rate H.264 encoders",
            labels=["channel"],
        )
        for name in gw.h264:
            mine = [f for (n, _), f in gw.h264_rates.items() if n == name]
            reduced.add_metric([name], sum(1.0 for f in mine if f.running))
            reduced_frames.add_metric([name], sum(f.total("frames_encoded") for f in mine))
        yield from (reduced, reduced_frames)
        for name, feed in gw.h264.items():
            running.add_metric([name], 1.0 if feed.running else 0.0)
            frames.add_metric([name], feed.total("frames_encoded"))
            dropped.add_metric([name], feed.total("dropped"))
            for reason, n in sorted(feed.keyframe_requests().items()):
                requests.add_metric([name, reason], n)
            hist = feed.encode_seconds()
            buckets = [
                ("+Inf" if bound == float("inf") else repr(bound), n)
                for bound, n in hist.cumulative()
            ]
            seconds.add_metric([name], buckets, hist.sum)
        yield from (running, frames, dropped, requests, seconds)


def registry(gateway: Gateway) -> CollectorRegistry:
    """A registry of the gateway's metrics and this process's CPU and memory."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(GatewayCollector(gateway))
    ProcessCollector(namespace="coaxgate", registry=reg)
    return reg


async def handler(request: web.Request) -> web.Response:
    """GET /metrics in the Prometheus text format."""
    body = generate_latest(gateway_of(request).metrics)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
