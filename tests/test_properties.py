"""Round-trip properties of the wire formats: what we write, we read back the same.

RTSP requests and responses (whole and as a stream cut anywhere), the Transport
header, RTCP built by the builders, RTP/JPEG and RTP/H.264 through packetizer
and depacketizer, multipart parts through the scanner, and Digest auth-params
through quoting. Example counts are modest: the fuzz targets (tests/fuzz) and
the per-module properties go deeper; these pin the round trips down in a few
seconds.
"""

from __future__ import annotations

import base64
import itertools
import string

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gateway._ext.multipart import MultipartScanner, Part
from gateway._ext.rtph264 import (
    MAX_PAYLOAD_SIZE as H264_MAX,
)
from gateway._ext.rtph264 import (
    MIN_PAYLOAD_SIZE as H264_MIN,
)
from gateway._ext.rtph264 import (
    RtpH264Depacketizer,
    RtpH264Packetizer,
)
from gateway._ext.rtpjpeg import (
    MAX_PAYLOAD_SIZE as JPEG_MAX,
)
from gateway._ext.rtpjpeg import (
    MIN_PAYLOAD_SIZE as JPEG_MIN,
)
from gateway._ext.rtpjpeg import (
    RtpJpegDepacketizer,
    RtpJpegPacketizer,
    walk_jpeg,
)
from gateway.rtp import rtcp
from gateway.rtsp.message import (
    Headers,
    Interleaved,
    Request,
    Response,
    RtspParser,
)
from gateway.rtsp.transport import (
    MAX_HEADER,
    TransportSpec,
    parse_transport,
    serialize_transport,
)
from gateway.security.digest import (
    DigestUser,
    DigestVerifier,
    ha1,
    parse_auth_params,
    response_for,
)
from gateway.sources.jpeg_encoder import jpeg_header, sampling_for
from tests.rtp_h264_cases import expected_access_unit

FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)  # fmt: skip


def _cuts(data: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted({p % (len(data) + 1) for p in points})
    return [data[a:b] for a, b in itertools.pairwise([0, *cuts, len(data)])]


# -- RTSP messages ---------------------------------------------------------------------------

TOKEN = "!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits
tokens = st.text(TOKEN, min_size=1, max_size=12)
# Header text: any character but the controls a value may not hold (HT is allowed inside).
value_chars = st.characters(
    blacklist_categories=("Cs",), blacklist_characters="\x7f", min_codepoint=0x09
).filter(lambda c: c == "\t" or c >= " ")
values = st.text(value_chars, max_size=40)
uris = st.text(
    st.characters(blacklist_categories=("Cs",), min_codepoint=0x21).filter(lambda c: c != "\x7f"),
    min_size=1,
    max_size=60,
)
headers = st.lists(
    st.tuples(tokens.filter(lambda n: n.lower() != "content-length"), values), max_size=8
)
bodies = st.binary(max_size=300)


def _framed(items: list[tuple[str, str]], body: bytes) -> Headers:
    """Headers as a parser gives them back: with the Content-Length serialize adds."""
    out = Headers(items)
    if body:
        out.add("Content-Length", str(len(body)))
    return out


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(tokens.filter(lambda m: not m.startswith("$")))
    body = draw(bodies)
    return Request(method, draw(uris), _framed(draw(headers), body), body)


@st.composite
def responses(draw: st.DrawFn) -> Response:
    reason = draw(st.text(value_chars.filter(lambda c: c != "\t"), max_size=30))
    body = draw(bodies)
    return Response(draw(st.integers(100, 999)), reason, _framed(draw(headers), body), body)


@FAST
@given(message=st.one_of(requests(), responses()))
def test_rtsp_message_serialize_parse(message: Request | Response) -> None:
    wire = message.serialize()
    parsed = (Request if isinstance(message, Request) else Response).parse(wire)
    assert parsed == message
    assert parsed.serialize() == wire


@FAST
@given(
    events=st.lists(
        st.one_of(
            requests(),
            st.builds(Interleaved, st.integers(0, 255), st.binary(max_size=200)),
        ),
        min_size=1,
        max_size=5,
    ),
    points=st.lists(st.integers(0, 1 << 16), max_size=6),
)
def test_rtsp_stream_cut_anywhere(events: list[Request | Interleaved], points: list[int]) -> None:
    wire = b"".join(e.serialize() for e in events)
    parser = RtspParser("server")
    got = [e for chunk in _cuts(wire, points) for e in parser.feed(chunk)]
    assert got == events
    assert parser.buffered == 0


# -- Transport header ------------------------------------------------------------------------

pairs = st.tuples(st.integers(0, 65535), st.integers(0, 65535))
# What a Transport value may hold unquoted; leading or trailing blanks make it quoted.
tvalues = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=';,"\x7f'),
    max_size=16,
)
extras = st.lists(
    st.tuples(st.from_regex(r"x-[a-z0-9]{1,8}", fullmatch=True), st.one_of(st.none(), tvalues)),
    max_size=3,
    unique_by=lambda kv: kv[0],
)


@st.composite
def transport_specs(draw: st.DrawFn) -> TransportSpec:
    tcp = draw(st.booleans())
    unicast = tcp or draw(st.booleans())
    return TransportSpec(
        lower_transport="TCP" if tcp else "UDP",
        unicast=unicast,
        destination=draw(st.one_of(st.none(), tvalues)),
        source=draw(st.one_of(st.none(), tvalues.filter(bool))),
        interleaved=draw(st.tuples(st.integers(0, 255), st.integers(0, 255))) if tcp else None,
        port=None if unicast else draw(st.one_of(st.none(), pairs)),
        ttl=None if unicast else draw(st.one_of(st.none(), st.integers(0, 255))),
        client_port=None if tcp else draw(st.one_of(st.none(), pairs)),
        server_port=draw(st.one_of(st.none(), pairs)),
        ssrc=draw(st.one_of(st.none(), st.integers(0, 0xFFFFFFFF))),
        mode=draw(st.sampled_from([None, "PLAY", "RECORD", "PLAY,RECORD"])),
        extra=tuple(draw(extras)),
        explicit_udp=draw(st.booleans()),
    )


@FAST
@given(specs=st.lists(transport_specs(), min_size=1, max_size=4))
def test_transport_serialize_parse(specs: list[TransportSpec]) -> None:
    text = serialize_transport(specs)
    assume(len(text) <= MAX_HEADER)
    assert parse_transport(text) == specs
    # As the server sends it: through a header, and read back by a client.
    response = Response(200, headers={"Transport": text})
    echoed = Response.parse(response.serialize()).headers.get("Transport")
    assert echoed is not None and parse_transport(echoed) == specs


# -- RTCP ------------------------------------------------------------------------------------

u32 = st.integers(0, 0xFFFFFFFF)
blocks = st.builds(
    rtcp.ReportBlock,
    ssrc=u32,
    fraction=st.integers(0, 255),
    cumulative_lost=st.integers(-(1 << 23), (1 << 23) - 1),
    highest_seq=u32,
    jitter=u32,
    lsr=u32,
    dlsr=u32,
)


@FAST
@given(
    ssrc=u32,
    ntp_time=st.floats(0, 4_000_000_000, allow_nan=False),
    rtp_ts=st.integers(0, 1 << 40),
    counts=st.tuples(st.integers(0, 1 << 40), st.integers(0, 1 << 40)),
    reports=st.lists(blocks, max_size=rtcp.MAX_REPORTS),
    cname=st.text(max_size=60).filter(lambda t: len(t.encode()) <= 255),
    leaving=st.lists(u32, min_size=1, max_size=rtcp.MAX_REPORTS),
    reason=st.one_of(st.none(), st.text(max_size=40)),
)
def test_rtcp_build_parse(
    ssrc: int,
    ntp_time: float,
    rtp_ts: int,
    counts: tuple[int, int],
    reports: list[rtcp.ReportBlock],
    cname: str,
    leaving: list[int],
    reason: str | None,
) -> None:
    data = rtcp.compound(
        rtcp.sender_report(ssrc, ntp_time, rtp_ts, *counts, reports),
        rtcp.sdes_cname(ssrc, cname),
        rtcp.bye(leaving, reason),
    )
    sr, sdes, bye = rtcp.parse_compound(data)
    assert isinstance(sr, rtcp.SenderReport)
    assert (sr.ssrc, sr.rtp_timestamp) == (ssrc, rtp_ts & 0xFFFFFFFF)
    assert (sr.packet_count, sr.octet_count) == (counts[0] & 0xFFFFFFFF, counts[1] & 0xFFFFFFFF)
    assert sr.ntp_timestamp == rtcp.ntp_from_unix(ntp_time)
    assert list(sr.reports) == reports
    assert isinstance(sdes, rtcp.Sdes) and sdes.chunks[0].cname == cname
    assert isinstance(bye, rtcp.Bye) and list(bye.ssrcs) == leaving and bye.reason == reason
    assert b"".join(p.serialize() for p in (sr, sdes, bye)) == data


# -- RTP/JPEG --------------------------------------------------------------------------------


@st.composite
def jpegs(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(a JPEG as a camera sends it, with APP0; the same without APP0, as RFC 2435 rebuilds it)."""
    sub = draw(st.sampled_from(["420", "422"]))
    mcu_h = 16 if sub == "420" else 8
    width = 16 * draw(st.integers(1, 2040 // 16))
    height = mcu_h * draw(st.integers(1, 2040 // mcu_h))
    head = jpeg_header(
        width=width,
        height=height,
        sampling=sampling_for(sub),
        quality=draw(st.integers(1, 100)),
        restart_interval=draw(st.sampled_from([0, 1, 7, 255, 65535])),
    )
    # Entropy-coded data: any bytes, a 0xFF always stuffed with a 0x00.
    scan = draw(st.binary(min_size=1, max_size=6000)).replace(b"\xff", b"\xff\x00")
    assert head.startswith(b"\xff\xd8\xff\xe0")  # SOI, then the JFIF APP0 segment
    app0_end = 4 + int.from_bytes(head[4:6], "big")
    return head + scan + b"\xff\xd9", head[:2] + head[app0_end:] + scan + b"\xff\xd9"


def _rtp_jpeg_round_trip(frame: bytes, payload_size: int, seq0: int) -> bytes:
    packets = RtpJpegPacketizer(payload_size).packetize(frame)
    depacketizer = RtpJpegDepacketizer(1 << 24)
    out = None
    for i, payload in enumerate(packets):
        assert len(payload) <= payload_size
        out = depacketizer.push((seq0 + i) & 0xFFFF, 7, i == len(packets) - 1, payload)
        assert (out is None) == (i < len(packets) - 1)
    assert out is not None
    return out


@FAST
@given(
    frames=jpegs(),
    payload_size=st.integers(JPEG_MIN, JPEG_MAX),
    seq0=st.integers(0, 0xFFFF),
)
def test_rtp_jpeg_packetize_depacketize(
    frames: tuple[bytes, bytes], payload_size: int, seq0: int
) -> None:
    sent, bare = frames
    out = _rtp_jpeg_round_trip(sent, payload_size, seq0)
    # Byte for byte the frame, less the APP0 segment RFC 2435 does not carry.
    assert out == bare
    assert _rtp_jpeg_round_trip(out, payload_size, seq0 ^ 0x8000) == out
    a, b = walk_jpeg(sent), walk_jpeg(out)
    assert (a.width, a.height, a.rtp_type, a.restart_interval, a.qtables) == (
        b.width, b.height, b.rtp_type, b.restart_interval, b.qtables)  # fmt: skip


# -- RTP/H.264 -------------------------------------------------------------------------------

NAL_TYPES = st.sampled_from([1, 5, 6, 7, 8, 1, 5, 9, 12, 2, 3, 4, 13, 19])


@st.composite
def access_units(draw: st.DrawFn) -> bytes:
    """An Annex B access unit: NAL units whose bodies hold no zero byte (no start codes)."""
    units = []
    for _ in range(draw(st.integers(1, 6))):
        t, nri = draw(NAL_TYPES), draw(st.integers(0, 3))
        body = draw(st.binary(max_size=4000)).replace(b"\0", b"\x01")
        if t in (1, 2, 5):
            body = b"\x88" + body  # first_mb_in_slice = 0: the slice opens a picture
        start = draw(st.sampled_from([b"\0\0\1", b"\0\0\0\1"]))
        units.append(start + bytes([nri << 5 | t]) + body)
    return b"".join(units)


@FAST
@given(
    aus=st.lists(access_units(), min_size=1, max_size=4),
    payload_size=st.integers(H264_MIN, H264_MAX),
    seq0=st.integers(0xFF00, 0xFFFF),  # the sequence number wraps inside the stream
)
def test_rtp_h264_packetize_depacketize(aus: list[bytes], payload_size: int, seq0: int) -> None:
    packetizer = RtpH264Packetizer(payload_size)
    depacketizer = RtpH264Depacketizer(1 << 24)
    seq = seq0
    for k, au in enumerate(aus):
        expected = expected_access_unit(au)
        if not expected:  # only AUD and filler: nothing to send
            continue
        data, offsets = packetizer.packetize(au)
        payloads = [data[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
        out = None
        for i, payload in enumerate(payloads):
            assert 0 < len(payload) <= payload_size
            out = depacketizer.push(seq & 0xFFFF, 3000 * k, i == len(payloads) - 1, payload)
            seq += 1
        assert out == expected
    assert sum(depacketizer.dropped.values()) == 0, depacketizer.dropped


# -- multipart -------------------------------------------------------------------------------

BOUNDARY = b"myboundary"
parts = st.lists(
    st.tuples(
        st.binary(max_size=500),  # body
        st.booleans(),  # with Content-Length
        st.lists(
            st.tuples(
                st.from_regex(rb"X-[A-Za-z0-9]{1,10}", fullmatch=True),
                st.from_regex(rb"[!-~]([ -~]{0,30}[!-~])?", fullmatch=True),
            ),
            max_size=3,
        ),
    ),
    min_size=1,
    max_size=5,
)


@FAST
@given(
    drawn=parts,
    points=st.lists(st.integers(0, 1 << 16), max_size=8),
    close=st.booleans(),
)
def test_multipart_parts_through_the_scanner(
    drawn: list[tuple[bytes, bool, list[tuple[bytes, bytes]]]], points: list[int], close: bool
) -> None:
    stream = bytearray()
    expected = []
    for body, with_length, extra in drawn:
        if not with_length:
            # Without a length, the body ends at the next delimiter: it may not hold one.
            assume(b"--" + BOUNDARY not in body and not body.endswith(b"\r"))
        head = [(b"Content-Type", b"image/jpeg"), *extra]
        if with_length:
            head.append((b"Content-Length", b"%d" % len(body)))
        stream += b"--" + BOUNDARY + b"\r\n"
        stream += b"".join(k + b": " + v + b"\r\n" for k, v in head) + b"\r\n"
        stream += body + b"\r\n"
        expected.append(Part(tuple((k.lower(), v) for k, v in head), b"image/jpeg", body))
    if close:
        stream += b"--" + BOUNDARY + b"--\r\n"
    else:
        stream += b"--" + BOUNDARY + b"\r\n"  # the next part's delimiter ends the last one
    scanner = MultipartScanner(BOUNDARY, max_part_size=1 << 16)
    got = [e for chunk in _cuts(bytes(stream), points) for e in scanner.feed(chunk)]
    assert got == expected
    assert scanner.closed == close


# -- Digest auth-params ----------------------------------------------------------------------


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


param_names = st.from_regex(r"[a-z][a-z0-9_-]{0,11}", fullmatch=True)
param_values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@FAST
@given(
    params=st.dictionaries(param_names, param_values, min_size=1, max_size=8),
    bare=st.sets(param_names),
    spacing=st.sampled_from([", ", ",", " ,\t", ",  "]),
)
def test_auth_params_quoting(params: dict[str, str], bare: set[str], spacing: str) -> None:
    """Quoted values come back whatever they hold; token values may also go unquoted."""
    items = []
    for name, value in params.items():
        token = value and all(c in TOKEN for c in value)
        items.append(f"{name}={value}" if name in bare and token else f"{name}={_quoted(value)}")
    assert parse_auth_params(spacing.join(items)) == params
    # Names are case-insensitive (RFC 7235): the parser gives them in lower case.
    upper = spacing.join(i.split("=", 1)[0].upper() + "=" + i.split("=", 1)[1] for i in items)
    assert parse_auth_params(upper) == params


@FAST
@given(
    user=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30),
    cnonce=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30),
    algorithm=st.sampled_from(["SHA-256", "MD5"]),
)
def test_digest_answer_with_any_user_name(user: str, cnonce: str, algorithm: str) -> None:
    """A client's answer for a user name full of quotes, commas and backslashes is accepted."""
    stored = DigestUser(user, {a: ha1(a, user, "coaxgate", "pw") for a in ("SHA-256", "MD5")})
    verifier = DigestVerifier("coaxgate", lambda n: stored if n == user else None)
    challenge = parse_auth_params(verifier.challenges()[0].partition(" ")[2])
    uri = "/axis-cgi/mjpg/video.cgi?camera=1"
    response = response_for(
        algorithm, stored.ha1[algorithm], challenge["nonce"], "GET", uri, "00000001", cnonce,
        "auth",
    )  # fmt: skip
    header = "Digest " + ", ".join(
        [
            f"username={_quoted(user)}",
            f"realm={_quoted(challenge['realm'])}",
            f"nonce={_quoted(challenge['nonce'])}",
            f"uri={_quoted(uri)}",
            f"response={_quoted(response)}",
            f"algorithm={algorithm}",
            "qop=auth",
            "nc=00000001",
            f"cnonce={_quoted(cnonce)}",
            f"opaque={_quoted(challenge['opaque'])}",
        ]
    )
    assert verifier.verify("GET", header, uri) == user


def test_basic_token_round_trip() -> None:
    """Basic credentials: user names without a colon, passwords with anything."""
    from gateway.security.digest import parse_basic

    for user, password in [("root", "pa:ss"), ("Jörg", 'ü ß"\\,'), ("a", "")]:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        assert parse_basic(f"Basic {token}") == (user, password)
