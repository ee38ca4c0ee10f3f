"""RTCP: byte-exact packets, packets from ffmpeg and aiortc, malformed input, properties.

The tables here also seed the fuzz corpus; rewrite it after changing them with:

    .venv/bin/python -m tests.test_rtcp
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
from aiortc import rtp as aiortc_rtp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.rtp import rtcp
from gateway.rtp.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    Sdes,
    SdesChunk,
    SenderReport,
    UnknownRtcp,
)
from tests.fuzz import seeds

from .support import require_peer

ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = seeds.CORPUS_ROOT / "rtcp"

SSRC = 0x12345678
T0 = 1_700_000_000.5  # NTP 0xE8FE6F80_80000000: both halves exact
BLOCK = ReportBlock(0x12345678, 0x40, -2, 0x0001_0203, 0x1F, 0x6F808000, 0x0001_8000)
RR_BYTES = bytes.fromhex("81c90007 0a0b0c0d 12345678 40fffffe 00010203 0000001f 6f808000 00018000")

# Captured from ffmpeg 5.1 (-f rtp -ssrc 305419896 -cname coaxgate-test -rtpflags send_bye):
# the SR + SDES sent with the first RTP packet, and the SR + SDES + BYE of the trailer.
FFMPEG_FIRST = bytes.fromhex(
    "80c80006 12345678 eeac1b52 153f7ced 2553b5c2 00000000 00000000"
    "81ca0005 12345678 010d636f 61786761 74652d74 65737400"
)
FFMPEG_LAST = bytes.fromhex(
    "80c80006 12345678 eeac1b52 15810624 2553b5ca 00000008 00001f40"
    "81ca0005 12345678 010d636f 61786761 74652d74 65737400"
    "81cb0001 12345678"
)
FF_SDES = Sdes((SdesChunk(SSRC, ((rtcp.CNAME, b"coaxgate-test"),)),))

# (name, bytes, packets): valid compound packets.
# fmt: off
VALID: list[tuple[str, bytes, list[RtcpPacket]]] = [
    ("sr", bytes.fromhex("80c80006 12345678 e8fe6f80 80000000 00abcdef 00000003 00000fa0"),
     [SenderReport(SSRC, 0xE8FE6F80_80000000, 0xABCDEF, 3, 4000)]),
    ("rr_one_block", RR_BYTES, [ReceiverReport(0x0A0B0C0D, (BLOCK,))]),
    ("rr_empty_bye", bytes.fromhex("80c90001 12345678 81cb0001 12345678"),
     [ReceiverReport(SSRC), Bye((SSRC,))]),
    ("sr_sdes_bye_reason",
     bytes.fromhex("80c80006 12345678 e8fe6f80 80000000 00abcdef 00000003 00000fa0"
                   "81ca0004 12345678 0107 63616d31 40677700 0000"
                   "81cb0004 12345678 08 74656172 646f776e 000000"),
     [SenderReport(SSRC, 0xE8FE6F80_80000000, 0xABCDEF, 3, 4000),
      Sdes((SdesChunk(SSRC, ((rtcp.CNAME, b"cam1@gw"),)),)),
      Bye((SSRC,), "teardown")]),
    ("sdes_aligned_item_needs_a_null_word",
     bytes.fromhex("80c90001 12345678 81ca0003 12345678 01026162 00000000"),
     [ReceiverReport(SSRC), Sdes((SdesChunk(SSRC, ((rtcp.CNAME, b"ab"),)),))]),
    ("sdes_many_chunks_and_items",
     bytes.fromhex("80c90001 00000001 83ca000b"
                   "00000001 0101 61 0203 626f62 00000000"  # CNAME a, NAME bob: 16 bytes
                   "00000002 00000000"  # no items: a null word
                   "00000003 0605 67737472 6d 0804 0178 7979 000000"),  # TOOL, PRIV: 20
     [ReceiverReport(1),
      Sdes((SdesChunk(1, ((rtcp.CNAME, b"a"), (rtcp.NAME, b"bob"))), SdesChunk(2, ()),
            SdesChunk(3, ((rtcp.TOOL, b"gstrm"), (rtcp.PRIV, b"\x01xyy")))))]),
    ("bye_two_sources_and_short_reason",
     bytes.fromhex("80c90001 00000001 82cb0003 00000001 00000002 03627965"),
     [ReceiverReport(1), Bye((1, 2), "bye")]),
    ("bye_empty_reason", bytes.fromhex("80c90001 00000001 81cb0002 00000001 00000000"),
     [ReceiverReport(1), Bye((1,), "")]),
    ("sr_with_block_and_extension",
     bytes.fromhex("81c8000d 12345678 e8fe6f80 80000000 00abcdef 00000003 00000fa0"
                   "12345678 40fffffe 00010203 0000001f 6f808000 00018000 cafebabe"),
     [SenderReport(SSRC, 0xE8FE6F80_80000000, 0xABCDEF, 3, 4000, (BLOCK,), b"\xca\xfe\xba\xbe")]),
    ("app_and_feedback_kept_as_unknown",
     bytes.fromhex("80c90001 00000001 85cc0003 00000001 6e616d65 64617461"
                   "81cd0002 00000001 00000002"),
     [ReceiverReport(1), UnknownRtcp(rtcp.APP, 5, bytes.fromhex("00000001 6e616d65 64617461")),
      UnknownRtcp(205, 1, bytes.fromhex("00000001 00000002"))]),
    ("padding_in_the_last_packet",
     bytes.fromhex("80c90001 00000001 a1cb0003 00000001 01780000 00000004"),
     [ReceiverReport(1), Bye((1,), "x")]),
    ("padding_in_a_lone_packet", bytes.fromhex("a0c90002 00000001 00000004"),
     [ReceiverReport(1)]),
    ("padding_leaving_an_odd_payload",
     bytes.fromhex("80c90001 00000001 a0cc0002 61626364 65000003"),
     [ReceiverReport(1), UnknownRtcp(rtcp.APP, 0, b"abcde")]),
    ("ffmpeg_first", FFMPEG_FIRST,
     [SenderReport(SSRC, 0xEEAC1B52_153F7CED, 0x2553B5C2, 0, 0), FF_SDES]),
    ("ffmpeg_last", FFMPEG_LAST,
     [SenderReport(SSRC, 0xEEAC1B52_15810624, 0x2553B5CA, 8, 8000), FF_SDES, Bye((SSRC,))]),
]

_RR = bytes.fromhex("80c90001 12345678")
# (name, bytes, message): what parse_compound refuses, and why.
MALFORMED: list[tuple[str, bytes, str]] = [
    ("empty", b"", "RTCP packet of 0 bytes is shorter than its 4-byte header"),
    ("short_header", bytes.fromhex("80c800"), "RTCP packet of 3 bytes is shorter"),
    ("version_1", bytes.fromhex("40c90001 12345678"), "RTCP version 1 at offset 0, expected 2"),
    ("version_0_later", _RR + bytes.fromhex("01cb0001 12345678"),
     "RTCP version 0 at offset 8, expected 2"),
    ("length_past_the_end", bytes.fromhex("80c90005 12345678"),
     "RTCP packet at offset 0 says 24 bytes, only 8 are left"),
    ("stray_bytes", _RR + b"\x81\xcb", "truncated RTCP header at offset 8: 2 of 4 bytes"),
    ("first_is_sdes", bytes.fromhex("80ca0000"),
     "first RTCP packet is type 202 \\(SDES\\), expected SR \\(200\\) or RR \\(201\\)"),
    ("first_is_bye", bytes.fromhex("81cb0001 12345678"), "first RTCP packet is type 203 \\(BYE\\)"),
    ("rtp_not_rtcp", bytes.fromhex("80600001 00000000 12345678"),
     "first RTCP packet is type 96 \\(unknown\\)"),
    ("padding_not_last", bytes.fromhex("a0c90002 12345678 00000004") + _RR,
     "padding bit set on the RTCP packet at offset 0, not last"),
    ("padding_of_zero", bytes.fromhex("a0c90002 12345678 00000000"),
     "RTCP padding of 0 bytes in a 12-byte packet"),
    ("padding_into_the_header", bytes.fromhex("a0c90002 12345678 00000009"),
     "RTCP padding of 9 bytes in a 12-byte packet"),
    ("sr_too_short", bytes.fromhex("80c80001 12345678"),
     "SR with 0 report blocks needs 28 bytes, the packet has 8"),
    ("sr_missing_its_block",
     bytes.fromhex("81c80006 12345678 e8fe6f80 80000000 00abcdef 00000003 00000fa0"),
     "SR with 1 report blocks needs 52 bytes, the packet has 28"),
    ("rr_count_over_length", bytes.fromhex("9fc90001 12345678"),
     "RR with 31 report blocks needs 752 bytes, the packet has 8"),
    ("rr_block_cut_by_padding", bytes.fromhex("a1c90007 0a0b0c0d 12345678 40fffffe 00010203"
                                              "0000001f 6f808000 00018004"),
     "RR with 1 report blocks needs 32 bytes, the packet has 28"),
    ("sdes_chunk_missing", _RR + bytes.fromhex("81ca0000"), "SDES chunk 0 of 1 is missing"),
    ("sdes_without_end", _RR + bytes.fromhex("81ca0002 12345678 01026162"),
     "SDES chunk for SSRC 12345678 has no end item"),
    ("sdes_item_past_the_end", _RR + bytes.fromhex("81ca0002 12345678 01096162"),
     "SDES item of type 1 runs past the packet"),
    ("sdes_item_header_cut", _RR + bytes.fromhex("81ca0002 12345678 01016105"),
     "SDES item of type 5 runs past the packet"),
    ("sdes_stray_bytes", _RR + bytes.fromhex("80ca0001 00000000"),
     "4 bytes after the last SDES chunk"),
    ("bye_missing_a_source", _RR + bytes.fromhex("82cb0001 12345678"),
     "BYE with 2 sources needs 12 bytes, has 8"),
    ("bye_reason_past_the_end", _RR + bytes.fromhex("81cb0002 12345678 09616263"),
     "BYE reason of 9 bytes runs past the packet"),
    ("over_65535_bytes", _RR + bytes(65528), "compound RTCP packet of 65536 bytes exceeds 65535"),
]
# fmt: on


def test_builders_byte_exact() -> None:
    assert rtcp.sender_report(SSRC, T0, 0xABCDEF, 3, 4000) == VALID[0][1]
    assert rtcp.receiver_report(0x0A0B0C0D, [BLOCK]) == RR_BYTES
    assert rtcp.receiver_report(1) == bytes.fromhex("80c90001 00000001")
    assert rtcp.sdes_cname(SSRC, "cam1@gw") == bytes.fromhex(
        "81ca0004 12345678 0107 63616d31 40677700 0000"
    )
    assert rtcp.sdes_cname(SSRC, "ab") == bytes.fromhex("81ca0003 12345678 01026162 00000000")
    assert rtcp.bye([SSRC]) == bytes.fromhex("81cb0001 12345678")
    assert rtcp.bye([1, 2], "bye") == bytes.fromhex("82cb0003 00000001 00000002 03627965")
    assert rtcp.bye([SSRC], "teardown") == bytes.fromhex(
        "81cb0004 12345678 08 74656172 646f776e 000000"
    )
    assert (
        rtcp.compound(
            rtcp.sender_report(SSRC, T0, 0xABCDEF, 3, 4000),
            rtcp.sdes_cname(SSRC, "cam1@gw"),
            rtcp.bye([SSRC], "teardown"),
        )
        == VALID[3][1]
    )


def test_sender_report_wraps_counters_and_timestamp() -> None:
    data = rtcp.sender_report(SSRC, T0, (1 << 32) + 7, (1 << 32) + 5, (3 << 32) + 9)
    [sr] = rtcp.parse_compound(data)
    assert isinstance(sr, SenderReport)
    assert (sr.rtp_timestamp, sr.packet_count, sr.octet_count) == (7, 5, 9)
    assert sr.ntp_time == T0


def test_compound_puts_an_rr_before_a_lone_bye() -> None:
    # A compound packet must start with SR or RR (6.1); GStreamer drops one that does not.
    assert rtcp.compound(rtcp.bye([SSRC])) == VALID[2][1]
    sdes_first = rtcp.compound(rtcp.sdes_cname(7, "x"))
    assert rtcp.parse_compound(sdes_first)[0] == ReceiverReport(7)


@pytest.mark.parametrize(("name", "data", "packets"), VALID, ids=[v[0] for v in VALID])
def test_parse_valid(name: str, data: bytes, packets: list[RtcpPacket]) -> None:
    assert rtcp.parse_compound(data) == packets
    assert rtcp.parse_compound(bytearray(data)) == packets
    assert rtcp.parse_compound(memoryview(data)) == packets
    again = b"".join(p.serialize() for p in packets)
    assert rtcp.parse_compound(again) == packets
    if "padding" not in name:
        assert again == data, "serialize gives back the same bytes"


@pytest.mark.parametrize(("name", "data", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_parse_malformed(name: str, data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rtcp.parse_compound(data)


def test_ffmpeg_packets() -> None:
    first, sdes = rtcp.parse_compound(FFMPEG_FIRST)
    assert isinstance(first, SenderReport) and isinstance(sdes, Sdes)
    assert sdes.chunks[0].cname == "coaxgate-test"
    assert first.packet_count == first.octet_count == 0
    last = rtcp.parse_compound(FFMPEG_LAST)
    assert isinstance(last[0], SenderReport) and last[-1] == Bye((SSRC,))
    assert last[0].ntp_time - first.ntp_time == pytest.approx(0.00101, abs=1e-4)
    # Our builders write the very bytes ffmpeg wrote.
    assert rtcp.compound(first.serialize(), rtcp.sdes_cname(SSRC, "coaxgate-test")) == FFMPEG_FIRST


def test_aiortc_reads_ours_and_we_read_aiortc() -> None:
    ours = rtcp.compound(
        rtcp.sender_report(SSRC, T0, 90000, 10, 1000, [BLOCK]),
        rtcp.sdes_cname(SSRC, "coaxgate"),
        rtcp.bye([SSRC]),
    )
    sr, sdes, bye = aiortc_rtp.RtcpPacket.parse(ours)
    assert isinstance(sr, aiortc_rtp.RtcpSrPacket) and sr.ssrc == SSRC
    assert sr.sender_info.ntp_timestamp == rtcp.ntp_from_unix(T0)
    assert sr.reports[0].packets_lost == -2 and sr.reports[0].fraction_lost == 0x40
    assert isinstance(sdes, aiortc_rtp.RtcpSdesPacket)
    assert sdes.chunks[0].items == [(rtcp.CNAME, b"coaxgate")]
    assert isinstance(bye, aiortc_rtp.RtcpByePacket) and bye.sources == [SSRC]

    info = aiortc_rtp.RtcpReceiverInfo(0x11, 25, -300, 65_600, 812, 0xAABBCCDD, 70_000)
    theirs = bytes(aiortc_rtp.RtcpRrPacket(ssrc=0x22, reports=[info])) + bytes(
        aiortc_rtp.RtcpSdesPacket(chunks=[aiortc_rtp.RtcpSourceInfo(0x22, [(1, b"{uuid}")])])
    )
    rr, sdes2 = rtcp.parse_compound(theirs)
    assert rr == ReceiverReport(
        0x22, (ReportBlock(0x11, 25, -300, 65_600, 812, 0xAABBCCDD, 70_000),)
    )
    assert isinstance(sdes2, Sdes) and sdes2.chunks[0].cname == "{uuid}"


def test_report_block_fields() -> None:
    assert BLOCK.fraction_lost == 0.25
    [rr] = rtcp.parse_compound(
        rtcp.receiver_report(1, [ReportBlock(2, 255, -(1 << 23), 0, 0, 0, 0)])
    )
    assert isinstance(rr, ReceiverReport)
    assert rr.reports[0].cumulative_lost == -(1 << 23) and rr.reports[0].fraction_lost == 255 / 256
    top = ReportBlock(2, 0, (1 << 23) - 1, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    assert ReportBlock.parse(top.serialize()) == top


def test_ntp_conversions() -> None:
    assert rtcp.ntp_from_unix(0) == 2_208_988_800 << 32
    assert rtcp.unix_from_ntp(2_208_988_800 << 32) == 0
    assert rtcp.ntp_from_unix(T0) == 0xE8FE6F80_80000000
    assert rtcp.ntp_middle(0xE8FE6F80_80000000) == 0x6F808000
    # The 2036 wrap: NTP seconds start again at 0, and come back as the later date.
    wrap = (1 << 32) - rtcp.NTP_EPOCH_OFFSET
    assert rtcp.ntp_from_unix(wrap + 0.5) == 0x80000000
    assert rtcp.unix_from_ntp(0x80000000) == wrap + 0.5
    for t in (0.0, 1.25e9, T0, 2.5e9, -5e7, wrap - 1e-6, 4e9):
        assert rtcp.unix_from_ntp(rtcp.ntp_from_unix(t)) == pytest.approx(t, abs=1e-9)
    assert rtcp.ntp_from_unix(0.9999999999) == (2_208_988_801 << 32)  # the fraction carries
    assert rtcp.dlsr_from_seconds(1.5) == 0x18000
    assert rtcp.dlsr_from_seconds(-1) == 0 and rtcp.dlsr_from_seconds(1e6) == 0xFFFFFFFF
    lsr = rtcp.ntp_middle(rtcp.ntp_from_unix(T0))
    assert rtcp.round_trip_seconds(lsr, rtcp.dlsr_from_seconds(1.5), T0 + 1.75) == 0.25
    assert rtcp.round_trip_seconds(0, 0, T0) is None
    with pytest.raises(ValueError, match="NTP timestamp must be a 64-bit number, got -1"):
        rtcp.unix_from_ntp(-1)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ReportBlock(1, 256, 0, 0, 0, 0, 0), "fraction must be 0..255, got 256"),
        (lambda: ReportBlock(1, 0, 1 << 23, 0, 0, 0, 0), "cumulative_lost must fit in signed 24"),
        (lambda: ReportBlock(-1, 0, 0, 0, 0, 0, 0), "ssrc must be a 32-bit unsigned number"),
        (lambda: ReportBlock(1, 0, 0, 1 << 32, 0, 0, 0), "highest_seq must be a 32-bit"),
        (lambda: rtcp.receiver_report(1, [BLOCK] * 32),
         "32 report blocks in one packet; at most 31 fit"),
        (lambda: rtcp.sender_report(1 << 32, T0, 0, 0, 0), "ssrc must be a 32-bit unsigned number"),
        (lambda: rtcp.sender_report(1, T0, 0, -1, 0), "packet_count must not be negative, got -1"),
        (lambda: rtcp.sdes_cname(1, "x" * 256), "SDES item of 256 bytes; at most 255 fit"),
        (lambda: SdesChunk(1, ((0, b"x"),)), "SDES item type must be 1..255, got 0"),
        (lambda: Sdes(tuple(SdesChunk(i) for i in range(32))), "32 SDES chunks; at most 31 fit"),
        (lambda: rtcp.bye([1], "x" * 256), "BYE reason longer than 255 bytes"),
        (lambda: rtcp.bye(range(32)), "32 sources in one BYE; at most 31 fit"),
        (lambda: UnknownRtcp(256, 0, b""), "packet_type must be 0..255, got 256"),
        (lambda: UnknownRtcp(204, 32, b""), "count must be 0..31, got 32"),
        (lambda: rtcp.compound(), "a compound RTCP packet needs at least one packet"),
        (lambda: rtcp.compound(b"abcdefgh"), "packet 0 is not an RTCP packet"),
        (lambda: rtcp.compound(bytes.fromhex("80ca0000")),
         "packet 0 has no SSRC for the RR that must come first"),
        (lambda: rtcp.compound(bytes.fromhex("80c90002 00000001")),
         "packet 0 length field says otherwise than its size"),
        (lambda: rtcp.compound(UnknownRtcp(204, 0, b"x").serialize(), rtcp.bye([1])),
         "packet 0 is padded but not last"),
        (lambda: rtcp.compound(*[rtcp.sdes_cname(1, "x" * 255)] * 256),
         "compound RTCP packet of 6.* bytes exceeds 65535"),
    ],
)  # fmt: skip
def test_build_errors(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


# -- a real sender ---------------------------------------------------------------------------


def _udp_pair() -> tuple[socket.socket, socket.socket, int]:
    """An even RTP port and its RTCP port + 1, both bound on loopback."""
    for _ in range(50):
        rtp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp_sock.bind(("127.0.0.1", 0))
        port = rtp_sock.getsockname()[1]
        if port % 2 == 0 and port < 65535:
            rtcp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                rtcp_sock.bind(("127.0.0.1", port + 1))
                return rtp_sock, rtcp_sock, port
            except OSError:
                rtcp_sock.close()
        rtp_sock.close()
    pytest.skip("no free even/odd UDP port pair")


@pytest.mark.peer
def test_ffmpeg_rtcp_parses() -> None:
    ffmpeg = require_peer("ffmpeg")
    rtp_sock, rtcp_sock, port = _udp_pair()
    cmd = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
        "sine=frequency=440:sample_rate=8000", "-t", "0.3", "-c:a", "pcm_mulaw",
        "-ssrc", str(SSRC), "-cname", "coaxgate-test", "-rtpflags", "send_bye",
        "-f", "rtp", f"rtp://127.0.0.1:{port}",
    ]  # fmt: skip
    packets: list[list[RtcpPacket]] = []
    with rtp_sock, rtcp_sock:
        rtcp_sock.settimeout(0.2)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        try:
            while time.monotonic() < deadline:
                try:
                    packets.append(rtcp.parse_compound(rtcp_sock.recv(2048)))
                except TimeoutError:
                    if proc.poll() is not None:
                        break
                    continue
                if isinstance(packets[-1][-1], Bye):
                    break
        finally:
            proc.kill()
            proc.wait()
    assert packets, "ffmpeg sent no RTCP"
    srs = [p[0] for p in packets]
    assert all(isinstance(sr, SenderReport) and sr.ssrc == SSRC for sr in srs)
    cnames = [c.cname for p in packets for s in p if isinstance(s, Sdes) for c in s.chunks]
    assert cnames and set(cnames) == {"coaxgate-test"}
    assert packets[-1][-1] == Bye((SSRC,))
    assert abs(srs[0].ntp_time - time.time()) < 30  # type: ignore[union-attr]


# -- properties ------------------------------------------------------------------------------

u32 = st.integers(0, 0xFFFFFFFF)
blocks = st.builds(
    ReportBlock,
    u32,
    st.integers(0, 255),
    st.integers(-(1 << 23), (1 << 23) - 1),
    u32,
    u32,
    u32,
    u32,
)
block_lists = st.lists(blocks, max_size=31).map(tuple)


def aligned(max_size: int) -> st.SearchStrategy[bytes]:
    """Bytes whose length is a multiple of 4 (anything else is padded: last packet only)."""
    return st.binary(max_size=max_size).map(lambda b: b[: len(b) - len(b) % 4])


@st.composite
def packets(draw: st.DrawFn, last: bool) -> RtcpPacket:
    """Any packet; the last one of a compound may have a payload that needs padding."""
    tail = st.binary(max_size=12) if last else aligned(12)
    kind = draw(st.sampled_from(["sr", "rr", "sdes", "bye", "unknown"]))
    if kind == "sr":
        return SenderReport(draw(u32), draw(st.integers(0, (1 << 64) - 1)), draw(u32), draw(u32),
                            draw(u32), draw(block_lists), draw(tail))  # fmt: skip
    if kind == "rr":
        return ReceiverReport(draw(u32), draw(block_lists), draw(tail))
    if kind == "sdes":
        items = st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=20)), max_size=4)
        chunks = st.lists(st.builds(SdesChunk, u32, items.map(tuple)), max_size=5)
        return Sdes(tuple(draw(chunks)))
    if kind == "bye":
        reason = st.none() | st.text(max_size=40)
        return Bye(tuple(draw(st.lists(u32, max_size=31))), draw(reason))
    return UnknownRtcp(draw(st.integers(0, 255).filter(lambda t: t not in range(200, 204))),
                       draw(st.integers(0, 31)), draw(tail))  # fmt: skip


@st.composite
def compounds(draw: st.DrawFn) -> list[RtcpPacket]:
    """A valid compound: an SR or RR first, padding only possible at the end."""
    first = draw(packets(last=False).filter(lambda p: isinstance(p, SenderReport | ReceiverReport)))
    middle = draw(st.lists(packets(last=False), max_size=4))
    out = [first, *middle]
    if draw(st.booleans()):
        out.append(draw(packets(last=True)))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(compounds())
def test_round_trip(packets: list[RtcpPacket]) -> None:
    data = rtcp.compound(*[p.serialize() for p in packets])
    assert rtcp.parse_compound(data) == packets


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from([v[1] for v in VALID]),
    edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 300),
)
def test_mutated_input_raises_only_value_error(
    base: bytes, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(base[: max(cut, 4)])
    for pos, value in edits:
        if pos < len(data):
            data[pos] = value
    try:
        parsed = rtcp.parse_compound(bytes(data))
    except ValueError:
        return
    again = b"".join(p.serialize() for p in parsed)
    assert len(again) <= len(data)
    assert rtcp.parse_compound(again) == parsed


# -- fuzz seeds ------------------------------------------------------------------------------


def corpus_files() -> dict[str, bytes]:
    """Seed corpus: every valid and every malformed table entry."""
    files = {name: data for name, data, _ in VALID}
    files.update((f"bad-{name}", data) for name, data, _ in MALFORMED if len(data) <= 4096)
    return files


def write_corpus(directory: Path = CORPUS_DIR) -> None:
    """Rewrite the seed corpus directory from the table."""
    seeds.write_corpus(directory, corpus_files())


def test_corpus_matches_tables() -> None:
    on_disk = {p.name: p.read_bytes() for p in CORPUS_DIR.iterdir()}
    assert on_disk == corpus_files(), "run: .venv/bin/python -m tests.test_rtcp"


if __name__ == "__main__":
    write_corpus()
    print(f"wrote {len(corpus_files())} seeds to {CORPUS_DIR}")
