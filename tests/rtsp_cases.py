"""Byte-exact RTSP streams shared by the message codec tests and the fuzz seeds.

Each case is what one peer sends on one connection, the parser role that reads
it, the limits, and the events the parser must return whatever the chunking.
The client sequences are what the clients send: ffmpeg's and GStreamer's were
captured from ffmpeg 5.1 (libavformat 59.27) and GStreamer 1.22 rtspsrc
talking to a stub server; VLC's follow live555's RTSPClient. Hosts are moved
to 192.0.2.10 (TEST-NET-1). Rewrite the fuzz seed corpus after changing the
table with:

    .venv/bin/python -m tests.rtsp_cases
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gateway.rtp import rtcp
from gateway.rtsp.message import (
    Event,
    Headers,
    Interleaved,
    InterleavedDropped,
    Limits,
    ParseError,
    Request,
    Response,
)
from tests.fuzz import seeds

ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = seeds.CORPUS_ROOT / "rtsp_message"

Role = Literal["server", "client"]


@dataclass(frozen=True)
class Case:
    """One stream, the role and limits of its parser, and the events expected from it."""

    name: str
    role: Role
    stream: bytes
    expected: tuple[Event, ...]
    limits: Limits = field(default_factory=Limits)
    # The events serialize back to exactly these bytes (canonical CRLF, "Name: value").
    exact: bool = False


def req(method: str, uri: str, *headers: tuple[str, str], body: bytes = b"",
        version: str = "RTSP/1.0") -> Request:  # fmt: skip
    """Expected Request."""
    return Request(method, uri, Headers(headers), body, version)


def resp(status: int, reason: str, *headers: tuple[str, str], body: bytes = b"") -> Response:
    """Expected Response."""
    return Response(status, reason, Headers(headers), body)


def err(status: int, message: str, recoverable: bool,
        head: Request | Response | None = None) -> ParseError:  # fmt: skip
    """Expected ParseError."""
    return ParseError(status, message, recoverable, head)


def wire(*events: Event) -> bytes:
    """Events serialized back to back."""
    out = b""
    for e in events:
        assert isinstance(e, Request | Response | Interleaved)
        out += e.serialize()
    return out


CAM = "rtsp://192.0.2.10:8554/cam1"
SESSION = ("Session", "12345678")

# -- ffmpeg (libavformat 59.27) --------------------------------------------------------------

FF_UA = ("User-Agent", "Lavf59.27.100")


def _ffmpeg(transport: str, rr: bool) -> tuple[Event, ...]:
    events: list[Event] = [
        req("OPTIONS", CAM, ("CSeq", "1"), FF_UA),
        req("DESCRIBE", CAM, ("Accept", "application/sdp"), ("CSeq", "2"), FF_UA),
        req("SETUP", CAM + "/trackID=0", ("Transport", transport), ("CSeq", "3"), FF_UA),
        req("PLAY", CAM + "/", ("Range", "npt=0.000-"), ("CSeq", "4"), FF_UA, SESSION),
    ]
    if rr:
        events.append(Interleaved(1, FF_RR))
    events += [
        req("GET_PARAMETER", CAM + "/", ("CSeq", "5"), FF_UA, SESSION),
        req("TEARDOWN", CAM + "/", ("CSeq", "6"), FF_UA, SESSION),
    ]
    return tuple(events)


# What ffmpeg sends back on the RTCP channel: an RR about our stream and its CNAME.
FF_RR = rtcp.compound(
    rtcp.receiver_report(
        0x5E1F00D5, [rtcp.ReportBlock(0x0C0A7A7E, 0, 0, 4711, 37, 0x52153F7C, 9830)]
    ),
    rtcp.sdes_cname(0x5E1F00D5, "viewer"),
)

# As captured (host moved), with the RR and the two requests after PLAY appended.
FFMPEG_TCP = (
    b"OPTIONS rtsp://192.0.2.10:8554/cam1 RTSP/1.0\r\n"
    b"CSeq: 1\r\n"
    b"User-Agent: Lavf59.27.100\r\n"
    b"\r\n"
    b"DESCRIBE rtsp://192.0.2.10:8554/cam1 RTSP/1.0\r\n"
    b"Accept: application/sdp\r\n"
    b"CSeq: 2\r\n"
    b"User-Agent: Lavf59.27.100\r\n"
    b"\r\n"
    b"SETUP rtsp://192.0.2.10:8554/cam1/trackID=0 RTSP/1.0\r\n"
    b"Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
    b"CSeq: 3\r\n"
    b"User-Agent: Lavf59.27.100\r\n"
    b"\r\n"
    b"PLAY rtsp://192.0.2.10:8554/cam1/ RTSP/1.0\r\n"
    b"Range: npt=0.000-\r\n"
    b"CSeq: 4\r\n"
    b"User-Agent: Lavf59.27.100\r\n"
    b"Session: 12345678\r\n"
    b"\r\n"
)

# -- GStreamer 1.22 rtspsrc ----------------------------------------------------------------

GST_UA = ("User-Agent", "GStreamer/1.22.0")
GST_DATE = ("Date", "Sat, 21 Nov 2026 13:22:39 GMT")


def _gstreamer(transport: str, pause: bool) -> tuple[Event, ...]:
    events = [
        req("OPTIONS", CAM, ("CSeq", "1"), GST_UA, GST_DATE),
        req("DESCRIBE", CAM, ("CSeq", "2"), GST_UA, ("Accept", "application/sdp"), GST_DATE),
        req("SETUP", CAM + "/trackID=0", ("CSeq", "3"), GST_UA, ("Transport", transport),
            GST_DATE),
        req("PLAY", CAM + "/", ("CSeq", "4"), GST_UA, ("Range", "npt=0-"), SESSION, GST_DATE),
    ]  # fmt: skip
    n = 5
    if pause:
        events.append(req("PAUSE", CAM + "/", ("CSeq", "5"), GST_UA, SESSION, GST_DATE))
        n = 6
    events.append(req("TEARDOWN", CAM + "/", ("CSeq", str(n)), GST_UA, SESSION, GST_DATE))
    return tuple(events)


GSTREAMER_TCP = (
    b"OPTIONS rtsp://192.0.2.10:8554/cam1 RTSP/1.0\r\n"
    b"CSeq: 1\r\n"
    b"User-Agent: GStreamer/1.22.0\r\n"
    b"Date: Sat, 21 Nov 2026 13:22:39 GMT\r\n"
    b"\r\n"
    b"DESCRIBE rtsp://192.0.2.10:8554/cam1 RTSP/1.0\r\n"
    b"CSeq: 2\r\n"
    b"User-Agent: GStreamer/1.22.0\r\n"
    b"Accept: application/sdp\r\n"
    b"Date: Sat, 21 Nov 2026 13:22:39 GMT\r\n"
    b"\r\n"
    b"SETUP rtsp://192.0.2.10:8554/cam1/trackID=0 RTSP/1.0\r\n"
    b"CSeq: 3\r\n"
    b"User-Agent: GStreamer/1.22.0\r\n"
    b"Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
    b"Date: Sat, 21 Nov 2026 13:22:39 GMT\r\n"
    b"\r\n"
    b"PLAY rtsp://192.0.2.10:8554/cam1/ RTSP/1.0\r\n"
    b"CSeq: 4\r\n"
    b"User-Agent: GStreamer/1.22.0\r\n"
    b"Range: npt=0-\r\n"
    b"Session: 12345678\r\n"
    b"Date: Sat, 21 Nov 2026 13:22:39 GMT\r\n"
    b"\r\n"
    b"PAUSE rtsp://192.0.2.10:8554/cam1/ RTSP/1.0\r\n"
    b"CSeq: 5\r\n"
    b"User-Agent: GStreamer/1.22.0\r\n"
    b"Session: 12345678\r\n"
    b"Date: Sat, 21 Nov 2026 13:22:39 GMT\r\n"
    b"\r\n"
    b"TEARDOWN rtsp://192.0.2.10:8554/cam1/ RTSP/1.0\r\n"
    b"CSeq: 6\r\n"
    b"User-Agent: GStreamer/1.22.0\r\n"
    b"Session: 12345678\r\n"
    b"Date: Sat, 21 Nov 2026 13:22:39 GMT\r\n"
    b"\r\n"
)

# -- VLC 3 (live555 RTSPClient) ------------------------------------------------------------

VLC_UA = ("User-Agent", "LibVLC/3.0.18 (LIVE555 Streaming Media v2021.08.24)")


def _vlc(transport: str, rr: bool) -> tuple[Event, ...]:
    events: list[Event] = [
        req("OPTIONS", CAM, ("CSeq", "2"), VLC_UA),
        req("DESCRIBE", CAM, ("CSeq", "3"), VLC_UA, ("Accept", "application/sdp")),
        req("SETUP", CAM + "/trackID=0", ("CSeq", "4"), VLC_UA, ("Transport", transport)),
        req("PLAY", CAM + "/", ("CSeq", "5"), VLC_UA, SESSION, ("Range", "npt=0.000-")),
    ]
    if rr:
        events.append(Interleaved(1, VLC_RR))
    events += [
        req("GET_PARAMETER", CAM + "/", ("CSeq", "6"), VLC_UA, SESSION),
        req("TEARDOWN", CAM + "/", ("CSeq", "7"), VLC_UA, SESSION),
    ]
    return tuple(events)


VLC_RR = rtcp.compound(
    rtcp.receiver_report(
        0x2F6A61C3, [rtcp.ReportBlock(0x0C0A7A7E, 3, 12, 0x0001_2345, 410, 0x1B52153F, 131072)]
    ),
    rtcp.sdes_cname(0x2F6A61C3, "vlc-viewer.local"),
)

# -- a server's answers (client role) ------------------------------------------------------

SDP = (
    b"v=0\r\n"
    b"o=- 1700000000 1 IN IP4 192.0.2.10\r\n"
    b"s=cam1\r\n"
    b"c=IN IP4 0.0.0.0\r\n"
    b"t=0 0\r\n"
    b"a=control:*\r\n"
    b"m=video 0 RTP/AVP 26\r\n"
    b"a=control:trackID=0\r\n"
    b"a=framerate:25\r\n"
)
SERVER = ("Server", "coaxgate/0.1")
ANSWERS = (
    resp(200, "OK", ("CSeq", "1"), SERVER,
         ("Public", "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, GET_PARAMETER, TEARDOWN")),
    resp(200, "OK", ("CSeq", "2"), SERVER, ("Content-Type", "application/sdp"),
         ("Content-Base", CAM + "/"), ("Content-Length", str(len(SDP))), body=SDP),
    resp(200, "OK", ("CSeq", "3"), SERVER,
         ("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=0C0A7A7E"),
         ("Session", "12345678;timeout=60")),
    resp(200, "OK", ("CSeq", "4"), SERVER, SESSION, ("Range", "npt=now-"),
         ("RTP-Info", f"url={CAM}/trackID=0;seq=17;rtptime=2290123")),
)  # fmt: skip
RTP_0 = bytes.fromhex("80 9a 00 11 00 22 f1 4b 0c 0a 7a 7e") + b"\x00\x00\x00\x00\x01\x10\x28\x1e"
RTP_1 = bytes.fromhex("80 1a 00 12 00 22 f1 4b 0c 0a 7a 7e") + b"$\r\n\r\nRTSP/1.0 200 OK\r\n"
SR = rtcp.compound(
    rtcp.sender_report(0x0C0A7A7E, 1_700_000_000.25, 2290123, 2, 40),
    rtcp.sdes_cname(0x0C0A7A7E, "coaxgate"),
)

# -- pieces of the error cases -------------------------------------------------------------

OPTIONS_2 = req("OPTIONS", "*", ("CSeq", "2"))
NEXT = wire(OPTIONS_2)  # a good request after a bad one shows that parsing goes on
SMALL = Limits(max_start_line=40, max_header_line=24, max_headers=3, max_header_bytes=60,
               max_body=16, max_interleaved=8)  # fmt: skip
HTTP_GET = (
    b"GET /cam1 HTTP/1.1\r\n"
    b"x-sessioncookie: 0f3d9a1c66e0\r\n"
    b"Accept: application/x-rtsp-tunnelled\r\n"
    b"Pragma: no-cache\r\n"
    b"Cache-Control: no-cache\r\n"
    b"\r\n"
)
HTTP_GET_HEAD = req(
    "GET", "/cam1",
    ("x-sessioncookie", "0f3d9a1c66e0"), ("Accept", "application/x-rtsp-tunnelled"),
    ("Pragma", "no-cache"), ("Cache-Control", "no-cache"),
    version="HTTP/1.1",
)  # fmt: skip
HTTP_POST = (
    b"POST /cam1 HTTP/1.0\r\n"
    b"x-sessioncookie: 0f3d9a1c66e0\r\n"
    b"Content-Type: application/x-rtsp-tunnelled\r\n"
    b"Content-Length: 32767\r\n"
    b"\r\n"
    b"T1BUSU9OUyBydHNwOi8vMTkyLjAuMi4xMDo4NTU0L2NhbTEgUlRTUC8xLjANCkNTZXE6IDENCg0K"
)
HTTP_POST_HEAD = req(
    "POST", "/cam1",
    ("x-sessioncookie", "0f3d9a1c66e0"), ("Content-Type", "application/x-rtsp-tunnelled"),
    ("Content-Length", "32767"),
    version="HTTP/1.0",
)  # fmt: skip
HTTP_VERSION = "unsupported version {!r}, expected RTSP/1.0"


def _bad_length(name: str, value: bytes, status: int = 400, message: str = "") -> Case:
    """A request whose Content-Length is refused: framing is lost, nothing after it is read."""
    head = req("SET_PARAMETER", CAM, ("CSeq", "7"), ("Content-Length", value.decode()))
    stream = (
        b"SET_PARAMETER " + CAM.encode() + b" RTSP/1.0\r\nCSeq: 7\r\n"
        b"Content-Length: " + value + b"\r\n\r\nbody" + NEXT
    )
    message = message or f"bad Content-Length {value.decode()!r}"
    return Case(name, "server", stream, (err(status, message, False, head),))


# The table keeps one line per protocol element; the formatter would split every "+".
# fmt: off
CASES: tuple[Case, ...] = (
    # -- real clients, as they send -----------------------------------------------------
    Case("ffmpeg_tcp", "server",
         FFMPEG_TCP + Interleaved(1, FF_RR).serialize()
         + b"GET_PARAMETER rtsp://192.0.2.10:8554/cam1/ RTSP/1.0\r\nCSeq: 5\r\n"
           b"User-Agent: Lavf59.27.100\r\nSession: 12345678\r\n\r\n"
           b"TEARDOWN rtsp://192.0.2.10:8554/cam1/ RTSP/1.0\r\nCSeq: 6\r\n"
           b"User-Agent: Lavf59.27.100\r\nSession: 12345678\r\n\r\n",
         _ffmpeg("RTP/AVP/TCP;unicast;interleaved=0-1", rr=True), exact=True),
    Case("ffmpeg_udp", "server",
         wire(*_ffmpeg("RTP/AVP/UDP;unicast;client_port=21236-21237", rr=False)),
         _ffmpeg("RTP/AVP/UDP;unicast;client_port=21236-21237", rr=False), exact=True),
    Case("ffmpeg_multicast", "server",
         wire(*_ffmpeg("RTP/AVP/UDP;multicast", rr=False)),
         _ffmpeg("RTP/AVP/UDP;multicast", rr=False), exact=True),
    Case("gstreamer_tcp", "server",
         GSTREAMER_TCP,
         _gstreamer("RTP/AVP/TCP;unicast;interleaved=0-1", pause=True), exact=True),
    Case("gstreamer_udp", "server",
         wire(*_gstreamer("RTP/AVP;unicast;client_port=48614-48615", pause=False)),
         _gstreamer("RTP/AVP;unicast;client_port=48614-48615", pause=False), exact=True),
    Case("gstreamer_alternatives", "server",
         wire(*_gstreamer("RTP/AVP;multicast;client_port=48614-48615,"
                          "RTP/AVP;unicast;client_port=48614-48615,"
                          "RTP/AVP/TCP;unicast;interleaved=0-1", pause=False)),
         _gstreamer("RTP/AVP;multicast;client_port=48614-48615,"
                    "RTP/AVP;unicast;client_port=48614-48615,"
                    "RTP/AVP/TCP;unicast;interleaved=0-1", pause=False), exact=True),
    Case("vlc_udp", "server",
         wire(*_vlc("RTP/AVP;unicast;client_port=54390-54391", rr=False)),
         _vlc("RTP/AVP;unicast;client_port=54390-54391", rr=False), exact=True),
    Case("vlc_tcp", "server",
         wire(*_vlc("RTP/AVP/TCP;unicast;interleaved=0-1", rr=True)),
         _vlc("RTP/AVP/TCP;unicast;interleaved=0-1", rr=True), exact=True),
    Case("server_answers_with_sdp_and_media", "client",
         wire(*ANSWERS, Interleaved(0, RTP_0), Interleaved(1, SR), Interleaved(0, RTP_1)),
         (*ANSWERS, Interleaved(0, RTP_0), Interleaved(1, SR), Interleaved(0, RTP_1)),
         exact=True),
    Case("unauthorized_then_ok", "client",
         b"RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\n"
         b'WWW-Authenticate: Digest realm="coaxgate", nonce="a1b2c3", algorithm=MD5\r\n'
         b'WWW-Authenticate: Basic realm="coaxgate"\r\n\r\n'
         b"RTSP/1.0 454 Session Not Found\r\nCSeq: 3\r\n\r\n",
         (resp(401, "Unauthorized", ("CSeq", "2"),
               ("WWW-Authenticate", 'Digest realm="coaxgate", nonce="a1b2c3", algorithm=MD5'),
               ("WWW-Authenticate", 'Basic realm="coaxgate"')),
          resp(454, "Session Not Found", ("CSeq", "3"))),
         exact=True),
    # -- framing variants -----------------------------------------------------------------
    Case("lf_only", "server",
         b"DESCRIBE rtsp://cam/1 RTSP/1.0\nCSeq: 2\nContent-Length: 3\n\nabc"
         b"OPTIONS * RTSP/1.0\nCSeq: 3\n\n",
         (req("DESCRIBE", "rtsp://cam/1", ("CSeq", "2"), ("Content-Length", "3"), body=b"abc"),
          req("OPTIONS", "*", ("CSeq", "3")))),
    Case("mixed_line_breaks", "client",
         b"RTSP/1.0 200 OK\r\nCSeq: 1\nContent-Length: 2\r\n\nhi"
         b"RTSP/1.0 200 OK\nCSeq: 2\r\n\r\n",
         (resp(200, "OK", ("CSeq", "1"), ("Content-Length", "2"), body=b"hi"),
          resp(200, "OK", ("CSeq", "2")))),
    Case("empty_lines_between_messages", "server",
         b"\r\n\r\n\nOPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n\r\n\n\r"
         b"OPTIONS * RTSP/1.0\r\nCSeq: 2\r\n\r\n\r\n",
         (req("OPTIONS", "*", ("CSeq", "1")), OPTIONS_2)),
    Case("interleaved_between_requests", "server",
         b"$\x01\x00\x04\x80\xc9\x00\x00"
         b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n"
         b"$\x00\x00\x00$\x03\x00\x0aOPTIONS * "
         b"\r\n$\xff\x00\x01$" + NEXT,
         (Interleaved(1, b"\x80\xc9\x00\x00"), req("OPTIONS", "*", ("CSeq", "1")),
          Interleaved(0, b""), Interleaved(3, b"OPTIONS * "), Interleaved(255, b"$"),
          OPTIONS_2)),
    Case("body_holding_crlf_and_dollar", "server",
         b"SET_PARAMETER rtsp://cam/1 RTSP/1.0\r\nCSeq: 9\r\nContent-Type: text/parameters\r\n"
         b"Content-Length: 28\r\n\r\n$\x00\x00\x01x\r\n\r\nRTSP/1.0 200 OK\r\n\r\n" + NEXT,
         (req("SET_PARAMETER", "rtsp://cam/1", ("CSeq", "9"), ("Content-Type", "text/parameters"),
              ("Content-Length", "28"), body=b"$\x00\x00\x01x\r\n\r\nRTSP/1.0 200 OK\r\n\r\n"),
          OPTIONS_2)),
    Case("header_spelling", "server",
         b"OPTIONS  rtsp://cam/1   RTSP/1.0 \r\n"
         b"cseq:5\r\n"
         b"X-Spaced \t:\t  value with  inner  spaces \t\r\n"
         b"X-Empty:\r\n"
         b"X-Time: 12:34:56\r\n"
         b"X-Utf8: caf\xc3\xa9\r\n"
         b"x-spaced: again\r\n\r\n",
         (req("OPTIONS", "rtsp://cam/1", ("cseq", "5"), ("X-Spaced", "value with  inner  spaces"),
              ("X-Empty", ""), ("X-Time", "12:34:56"), ("X-Utf8", "caf\u00e9"),
              ("x-spaced", "again")),)),
    Case("folded_header", "server",
         b"SETUP rtsp://cam/1/trackID=0 RTSP/1.0\r\n"
         b"CSeq: 3\r\n"
         b"Transport: RTP/AVP;unicast;\r\n"
         b"  client_port=5000-5001,\r\n"
         b"\tRTP/AVP/TCP;unicast\r\n"
         b"X-Empty:\r\n"
         b" now set\r\n"
         b"User-Agent: folded\r\n"
         b" \r\n"
         b"\r\n",
         (req("SETUP", "rtsp://cam/1/trackID=0", ("CSeq", "3"),
              ("Transport", "RTP/AVP;unicast; client_port=5000-5001, RTP/AVP/TCP;unicast"),
              ("X-Empty", "now set"), ("User-Agent", "folded")),)),
    Case("status_line_variants", "client",
         b"RTSP/1.0 200\r\nCSeq: 1\r\n\r\n"
         b"RTSP/1.0 200 \r\nCSeq: 2\r\n\r\n"
         b"RTSP/1.0 299 Vendor Thing\r\nCSeq: 3\r\n\r\n"
         b"RTSP/1.0 404 Stream  Not Found \r\nCSeq: 4\r\n\r\n",
         (resp(200, "", ("CSeq", "1")), resp(200, "", ("CSeq", "2")),
          resp(299, "Vendor Thing", ("CSeq", "3")), resp(404, "Stream  Not Found", ("CSeq", "4")))),
    Case("same_content_length_twice", "server",
         b"SET_PARAMETER * RTSP/1.0\r\nContent-Length: 2\r\ncontent-length: 02\r\n\r\nhi",
         (req("SET_PARAMETER", "*", ("Content-Length", "2"), ("content-length", "02"),
              body=b"hi"),)),
    Case("content_length_zero", "server",
         b"GET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 0\r\n\r\n" + NEXT,
         (req("GET_PARAMETER", "*", ("CSeq", "1"), ("Content-Length", "0")), OPTIONS_2),
         exact=True),
    Case("limits_exactly_reached", "server",
         b"OPTIONS rtsp://cam/1/abcdefgh RTSP/1.0\r\n"  # 40 bytes: max_start_line
         b"CSeq: 10\r\n"
         b"X-A: 12345678901234567\r\n"  # 24 bytes: max_header_line
         b"X-B: 12345678901234567\r\n"  # 3 headers: max_headers
         b"\r\n"  # 10 + 24 + 24 + 2 = 60: max_header_bytes
         b"SET_PARAMETER * RTSP/1.0\r\nA: 123456789012345\r\nB: 1234567890\r\n"
         b"Content-Length: 16\r\n\r\n0123456789abcdef"  # max_body
         b"$\x07\x00\x08ABCDEFGH",  # max_interleaved
         (req("OPTIONS", "rtsp://cam/1/abcdefgh", ("CSeq", "10"), ("X-A", "12345678901234567"),
              ("X-B", "12345678901234567")),
          req("SET_PARAMETER", "*", ("A", "123456789012345"), ("B", "1234567890"),
              ("Content-Length", "16"), body=b"0123456789abcdef"),
          Interleaved(7, b"ABCDEFGH")),
         limits=SMALL),
    # -- errors the parser recovers from --------------------------------------------------
    Case("rtsp_2_0", "server",
         b"OPTIONS * RTSP/2.0\r\nCSeq: 1\r\nContent-Length: 4\r\n\r\nbody" + NEXT,
         (err(505, "unsupported version 'RTSP/2.0', expected RTSP/1.0", True,
              req("OPTIONS", "*", ("CSeq", "1"), ("Content-Length", "4"), version="RTSP/2.0")),
          OPTIONS_2)),
    Case("malformed_header_line", "server",
         b"DESCRIBE rtsp://cam/1 RTSP/1.0\r\nCSeq: 2\r\nno colon here\r\n"
         b"Accept: application/sdp\r\n"
         b"\r\n" + NEXT,
         (err(400, "malformed header line 'no colon here'", True,
              req("DESCRIBE", "rtsp://cam/1", ("CSeq", "2"), ("Accept", "application/sdp"))),
          OPTIONS_2)),
    Case("malformed_header_line_body_skipped", "server",
         b"SET_PARAMETER * RTSP/1.0\r\nCSeq: 3\r\n: no name\r\nContent-Length: 24\r\n\r\n"
         b"OPTIONS * RTSP/1.0\r\n\r\n" + b"\r\n" + NEXT,
         (err(400, "malformed header line ': no name'", True,
              req("SET_PARAMETER", "*", ("CSeq", "3"), ("Content-Length", "24"))),
          OPTIONS_2)),
    Case("header_name_with_space", "server",
         b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nBad Name: x\r\n\r\n" + NEXT,
         (err(400, "malformed header line 'Bad Name: x'", True, req("OPTIONS", "*", ("CSeq", "1"))),
          OPTIONS_2)),
    Case("control_character_in_value", "server",
         b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Bad: a\x00b\r\nX-Cr: a\rb\r\n\r\n" + NEXT,
         (err(400, "malformed header line 'X-Bad: a\\x00b'", True,
              req("OPTIONS", "*", ("CSeq", "1"))),
          OPTIONS_2)),
    Case("continuation_before_any_header", "server",
         b"OPTIONS * RTSP/1.0\r\n folded\r\nCSeq: 1\r\n\r\n" + NEXT,
         (err(400, "continuation line ' folded' before any header", True,
              req("OPTIONS", "*", ("CSeq", "1"))),
          OPTIONS_2)),
    Case("body_over_limit_skipped", "server",
         b"SET_PARAMETER * RTSP/1.0\r\nCSeq: 4\r\nContent-Length: 17\r\n\r\n"
         b"OPTIONS * RTSP/1." + NEXT,
         (err(413, "body of 17 bytes exceeds 16", True,
              req("SET_PARAMETER", "*", ("CSeq", "4"), ("Content-Length", "17"))),
          OPTIONS_2),
         limits=SMALL),
    Case("interleaved_over_limit_skipped", "server",
         b"$\x01\x00\x09OPTIONS *" + b"$\x00\x00\x08RTSP/1.0" + NEXT,
         (InterleavedDropped(1, 9), Interleaved(0, b"RTSP/1.0"), OPTIONS_2),
         limits=SMALL),
    Case("interleaved_at_the_16_bit_limit", "server",
         b"$\x02\xff\xff" + bytes(range(256)) * 255 + b"\xff" * 255 + NEXT,
         (Interleaved(2, bytes(range(256)) * 255 + b"\xff" * 255), OPTIONS_2)),
    Case("response_with_bad_version_client", "client",
         b"RTSP/1.1 200 OK\r\nCSeq: 1\r\n\r\nRTSP/1.0 200 OK\r\nCSeq: 2\r\n\r\n",
         (err(505, "unsupported version 'RTSP/1.1', expected RTSP/1.0", True,
              Response(200, "OK", Headers([("CSeq", "1")]), version="RTSP/1.1")),
          resp(200, "OK", ("CSeq", "2")))),
    # -- errors that lose framing: answered once, then nothing more is read -------------
    Case("garbage_request_line", "server",
         b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n" + NEXT,
         (err(400, "malformed request line "
                   "'\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\ufffd\\x03\\x03'", False),)),
    Case("request_line_without_version", "server",
         b"OPTIONS rtsp://cam/1\r\nCSeq: 1\r\n\r\n" + NEXT,
         (err(400, "malformed request line 'OPTIONS rtsp://cam/1'", False),)),
    Case("response_sent_to_server", "server",
         b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n",
         (err(400, "malformed request line 'RTSP/1.0 200 OK'", False),)),
    Case("request_sent_to_client", "client",
         b"ANNOUNCE rtsp://cam/1 RTSP/1.0\r\nCSeq: 1\r\n\r\n",
         (err(400, "malformed status line 'ANNOUNCE rtsp://cam/1 RTSP/1.0'", False),)),
    Case("http_get_tunnel", "server",
         HTTP_GET + NEXT,
         (err(505, HTTP_VERSION.format("HTTP/1.1"), False, HTTP_GET_HEAD),)),
    Case("http_post_tunnel", "server",
         HTTP_POST,
         (err(505, HTTP_VERSION.format("HTTP/1.0"), False, HTTP_POST_HEAD),)),
    _bad_length("content_length_non_numeric", b"abc"),
    _bad_length("content_length_negative", b"-5"),
    _bad_length("content_length_hex", b"0x10"),
    _bad_length("content_length_inner_space", b"1 2"),
    _bad_length("content_length_empty", b""),
    _bad_length("content_length_huge", b"1" + b"0" * 18, 413,
                "Content-Length '1000000000000000000' is too large to skip"),
    Case("content_length_conflicting", "server",
         b"SET_PARAMETER * RTSP/1.0\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc" + NEXT,
         (err(400, "conflicting Content-Length values 2 and 3", False,
              req("SET_PARAMETER", "*", ("Content-Length", "2"), ("Content-Length", "3"))),)),
    Case("content_length_line_malformed", "server",
         b"SET_PARAMETER * RTSP/1.0\r\nCSeq: 5\r\nContent-Length 5\r\n\r\nhello" + NEXT,
         (err(400, "malformed header line 'Content-Length 5'", False,
              req("SET_PARAMETER", "*", ("CSeq", "5"))),)),
    Case("request_line_over_limit_by_its_crlf", "server",
         b"OPTIONS rtsp://cam/1/abcd RTSP/1.0\r\n\r\n" + NEXT,  # 34 + 2 bytes
         (err(414, "request line longer than 35 bytes", False),),
         limits=Limits(max_start_line=35)),
    Case("request_line_at_limit_with_lf", "server",
         b"OPTIONS rtsp://cam/1/abcd RTSP/1.0\n\n" + NEXT,  # 34 + 1 bytes
         (req("OPTIONS", "rtsp://cam/1/abcd"), OPTIONS_2),
         limits=Limits(max_start_line=35)),
    Case("endless_request_line", "server",
         b"OPTIONS rtsp://cam/" + b"a" * 100,
         (err(414, "request line longer than 40 bytes", False),),
         limits=SMALL),
    Case("status_line_over_limit", "client",
         b"RTSP/1.0 200 OK, and a very long reason phrase\r\n\r\n",
         (err(400, "status line longer than 40 bytes", False),),
         limits=SMALL),
    Case("header_line_over_limit", "server",
         b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-A: 123456789012345678\r\n\r\n" + NEXT,
         (err(400, "header line longer than 24 bytes", False, req("OPTIONS", "*", ("CSeq", "1"))),),
         limits=SMALL),
    Case("header_block_over_limit", "server",
         b"OPTIONS * RTSP/1.0\r\nX-A: 12345678901234567\r\nX-B: 12345678901234567\r\n"
         b"X-C: 123456\r\n\r\n" + NEXT,  # 24 + 24 + 13 = 61
         (err(400, "header block longer than 60 bytes", False,
              req("OPTIONS", "*", ("X-A", "12345678901234567"), ("X-B", "12345678901234567"))),),
         limits=SMALL),
    Case("header_block_over_limit_by_its_empty_line", "server",
         b"OPTIONS * RTSP/1.0\r\nX-A: 12345678901234567\r\nX-B: 12345678901234567\r\n"
         b"X-C: 12345\r\n\r\n" + NEXT,  # 24 + 24 + 12 = 60, then 2 more
         (err(400, "header block longer than 60 bytes", False,
              req("OPTIONS", "*", ("X-A", "12345678901234567"), ("X-B", "12345678901234567"),
                  ("X-C", "12345"))),),
         limits=SMALL),
    Case("too_many_headers", "server",
         b"OPTIONS * RTSP/1.0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n" + NEXT,
         (err(400, "more than 3 header lines", False,
              req("OPTIONS", "*", ("A", "1"), ("B", "2"), ("C", "3"))),),
         limits=SMALL),
    Case("endless_header_line", "server",
         b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX: " + b"y" * 100,
         (err(400, "header line longer than 24 bytes", False, req("OPTIONS", "*", ("CSeq", "1"))),),
         limits=SMALL),
    Case("recoverable_errors_in_a_row", "server",
         b"OPTIONS * RTSP/2.0\r\n\r\n"
         b"OPTIONS * RTSP/1.0\r\nbad\r\n\r\n"
         b"SET_PARAMETER * RTSP/1.0\r\nContent-Length: 17\r\n\r\n" + b"x" * 17
         + b"$\x01\x00\x10" + b"\x00" * 16 + NEXT,
         (err(505, "unsupported version 'RTSP/2.0', expected RTSP/1.0", True,
              req("OPTIONS", "*", version="RTSP/2.0")),
          err(400, "malformed header line 'bad'", True, req("OPTIONS", "*")),
          err(413, "body of 17 bytes exceeds 16", True,
              req("SET_PARAMETER", "*", ("Content-Length", "17"))),
          InterleavedDropped(1, 16),
          OPTIONS_2),
         limits=SMALL),
)
# fmt: on


# -- fuzz input format: shared by tests/fuzz/fuzz_rtsp_message.py and its seed corpus ------
#
#   1 byte   flags: bit 0 set = client role
#   6 x 4    limits, little-endian uint32, in Limits field order (0 becomes 1, but
#            max_body may be 0)
#   1 byte   number of split points k (modulo 16), then k little-endian uint16 offsets
#   rest     the stream

_LIMIT_FIELDS = tuple(Limits.__dataclass_fields__)


@dataclass(frozen=True)
class FuzzInput:
    """A decoded fuzz input: role, limits, stream and split points."""

    role: Role
    limits: Limits
    stream: bytes
    splits: tuple[int, ...]

    def chunks(self) -> list[bytes]:
        """The stream cut at the split points."""
        cuts = [0, *self.splits, len(self.stream)]
        return [self.stream[a:b] for a, b in itertools.pairwise(cuts)]


def encode_fuzz_input(case: Case, splits: tuple[int, ...] = ()) -> bytes:
    """Encode a case (and split points) in the fuzz target's input format."""
    out = bytearray([1 if case.role == "client" else 0])
    out += struct.pack("<6I", *(getattr(case.limits, f) for f in _LIMIT_FIELDS))
    out.append(len(splits))
    for s in splits:
        out += struct.pack("<H", s)
    return bytes(out + case.stream)


def decode_fuzz_input(data: bytes) -> FuzzInput | None:
    """Decode fuzzer bytes; None when too short to hold a configuration."""
    if len(data) < 26:
        return None
    role: Role = "client" if data[0] & 1 else "server"
    values = struct.unpack_from("<6I", data, 1)
    limits = Limits(**{
        f: v if v or f == "max_body" else 1 for f, v in zip(_LIMIT_FIELDS, values, strict=True)
    })  # fmt: skip
    k = data[25] % 16
    i = 26
    if len(data) < i + 2 * k:
        return None
    raw = struct.unpack_from(f"<{k}H", data, i)
    stream = data[i + 2 * k :]
    splits = tuple(sorted({s % (len(stream) + 1) for s in raw}))
    return FuzzInput(role, limits, stream, splits)


def corpus_files() -> dict[str, bytes]:
    """Seed corpus: every case whole, and every third case also cut at a few points."""
    files: dict[str, bytes] = {}
    for i, case in enumerate(CASES):
        if len(case.stream) > 4096:
            continue  # big seeds only slow the fuzzer down
        files[case.name] = encode_fuzz_input(case)
        if i % 3 == 0:
            n = len(case.stream)
            files[case.name + "-split"] = encode_fuzz_input(case, (1, n // 3, n // 2, n - 3))
    return files


def write_corpus(directory: Path = CORPUS_DIR) -> None:
    """Rewrite the seed corpus directory from the table."""
    seeds.write_corpus(directory, corpus_files())


if __name__ == "__main__":
    write_corpus()
    print(f"wrote {len(corpus_files())} seeds to {CORPUS_DIR}")
