"""RFC 6184 (RTP/H.264): Annex B, packetizer, depacketizer, SPS, and GStreamer as the judge.

The access units, SPSs and packet streams are the tables of tests/rtp_h264_cases.py,
shared with the fuzz seeds; that module also holds the pure-Python reference every
result is compared with, and the libx264 encoder the real-stream tests use.
"""

from __future__ import annotations

import array
import base64
import threading
from collections.abc import Sequence
from pathlib import Path

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway._ext.rtph264 import (
    DROP_REASONS,
    MAX_PAYLOAD_SIZE,
    MIN_PAYLOAD_SIZE,
    RtpH264Depacketizer,
    RtpH264Packetizer,
    nal_type,
    parameter_sets,
    profile_level_id,
    split_annexb,
    sprop_parameter_sets,
    sps_info,
)

from .fuzz.common import StreamCase, decode_packet_stream
from .gst import (
    depacketize_datagrams,
    parse_rtp,
    receive_from_gst,
    require_elements,
    send_to_gst,
)
from .rtp_h264_cases import (
    AU_CASES,
    AU_CASES_BY_NAME,
    CORPUS,
    FU_A,
    PPS,
    SPS,
    SPS_CASES,
    SPS_CASES_BY_NAME,
    STAP_A,
    AuCase,
    RefDepacketizer,
    SpsCase,
    annexb,
    corpus_files,
    expected_access_unit,
    nal,
    ref_packetize,
    ref_profile_level_id,
    ref_split_annexb,
    ref_sps_info,
    stream_cases,
    x264_access_units,
)
from .support import require_peer

PACKETIZED = [c for c in AU_CASES if c.error is None]
REFUSED = [c for c in AU_CASES if c.error is not None]
NO_DROPS: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)


def ids(cases: Sequence[AuCase | SpsCase | StreamCase]) -> list[str]:
    return [c.name for c in cases]


def payloads(data: bytes, offsets: array.array[int]) -> list[bytes]:
    return [data[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]


def depacketize(
    items: Sequence[bytes | memoryview],
    depacketizer: RtpH264Depacketizer | RefDepacketizer | None = None,
    seq: int = 1000,
    ts: int = 3600,
) -> bytes:
    """Push one access unit's payloads, the last marked; the access unit it completes."""
    d = depacketizer if depacketizer is not None else RtpH264Depacketizer()
    out = None
    for i, payload in enumerate(items):
        out = d.push((seq + i) & 0xFFFF, ts, i == len(items) - 1, payload)
        assert (out is None) == (i < len(items) - 1)
    assert out is not None
    return out


def decode_all(access_units: Sequence[bytes]) -> int:
    """Frames FFmpeg's H.264 decoder makes of the access units, failing on any error."""
    codec = av.CodecContext.create("h264", "r")
    codec.options = {"err_detect": "explode"}
    frames = 0
    for au in access_units:
        frames += len(codec.decode(av.Packet(au)))
    return frames + len(codec.decode(None))


# --------------------------------------------------------------------------------------
# Annex B


def test_split_annexb_start_codes_and_zeros() -> None:
    data = AU_CASES_BY_NAME["start_codes_3_and_4_bytes"].data
    units = split_annexb(data)
    assert [bytes(u) for u in units] == [SPS, PPS, nal(5, 300, seed=1)]
    assert all(isinstance(u, memoryview) and u.obj is data for u in units), "views, not copies"
    assert [bytes(u) for u in units] == ref_split_annexb(data)


@pytest.mark.parametrize(
    ("data", "want"),
    [
        (b"", []),
        (b"\0\0\1\x65", [b"\x65"]),
        (b"\0\0\0\1\x65\0\0\0", [b"\x65"]),
        (b"\0\0\0\0\0\0\1\x09\xf0\0\0\1\x65\x88", [b"\x09\xf0", b"\x65\x88"]),
        (b"\0\0\1\0\0\1\0\0\0\1\x65", [b"\x65"]),
        (b"\0\0\1\x65\0\0\3\0\1\x02", [b"\x65\0\0\3\0\1\x02"]),  # escaped 00 00 01 inside
        (b"\0\0\1\x01\0\0\1\x01", [b"\x01", b"\x01"]),
        (b"\0\0\1", []),
    ],
)
def test_split_annexb_table(data: bytes, want: list[bytes]) -> None:
    assert [bytes(u) for u in split_annexb(data)] == want == ref_split_annexb(data)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\0\0", "no start code (00 00 01) in the data"),
        (b"\x65\x88\x84", "no start code (00 00 01) in the data"),
        (b"\x01\0\0\1\x65", "byte 0x01 at offset 0 before the first start code"),
        (b"\0\0\2\0\0\0\1\x65", "byte 0x02 at offset 2 before the first start code"),
    ],
)
def test_split_annexb_errors(data: bytes, error: str) -> None:
    for split in (split_annexb, ref_split_annexb):
        with pytest.raises(ValueError) as e:
            split(data)
        assert str(e.value) == error


def test_split_annexb_takes_any_buffer() -> None:
    data = annexb(SPS, PPS)
    for view in (bytearray(data), memoryview(data), memoryview(b"xx" + data)[2:],
                 array.array("B", data)):  # fmt: skip
        assert [bytes(u) for u in split_annexb(view)] == [SPS, PPS]
    with pytest.raises(TypeError):
        split_annexb("text")  # type: ignore[arg-type]


def test_split_annexb_on_a_real_stream() -> None:
    stream = b"".join(x264_access_units())
    units = split_annexb(stream)
    assert [bytes(u) for u in units] == ref_split_annexb(stream)
    types = [nal_type(u) for u in units]
    assert types[:4] == [7, 8, 6, 5] and types.count(7) == 1, "one IDR in 50 frames"
    # libx264 writes 4-byte start codes before SPS, PPS and first slices, 3-byte ones else.
    payload = sum(len(u) for u in units)
    assert payload + 3 * len(units) < len(stream) < payload + 4 * len(units)


def test_nal_type() -> None:
    assert [nal_type(n) for n in (SPS, PPS, b"\x65", b"\xff", bytearray(b"\x41"))] == [
        7, 8, 5, 31, 1,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="empty NAL unit"):
        nal_type(b"")


def test_parameter_sets() -> None:
    idr = AU_CASES_BY_NAME["stap_then_fu"].data
    assert parameter_sets(idr) == (SPS, PPS)
    assert parameter_sets(annexb(nal(1, 50))) == (None, None)
    assert parameter_sets(annexb(PPS, SPS, PPS + b"\x01", SPS + b"\x01")) == (SPS, PPS)
    assert parameter_sets(b"") == (None, None)
    with pytest.raises(ValueError, match="no start code"):
        parameter_sets(SPS)


# --------------------------------------------------------------------------------------
# Packetizer


@pytest.mark.parametrize("case", PACKETIZED, ids=ids(PACKETIZED))
def test_packetize_cases(case: AuCase) -> None:
    data, offsets = RtpH264Packetizer(case.payload_size).packetize(case.data)
    assert isinstance(data, bytes)
    assert isinstance(offsets, array.array) and offsets.typecode == "I"
    assert offsets[0] == 0 and offsets[-1] == len(data)
    got = payloads(data, offsets)
    assert got == list(case.payloads), "RFC 6184 layout, byte for byte"
    assert got == ref_packetize(case.data, case.payload_size)
    for payload in got:
        assert 0 < len(payload) <= case.payload_size
        if payload[0] & 0x1F == FU_A and not payload[1] & 0x40:
            assert len(payload) == case.payload_size, "FU-A fragments are equal-sized"
    assert depacketize(got) == expected_access_unit(case.data)


@pytest.mark.parametrize("case", REFUSED, ids=ids(REFUSED))
def test_packetize_refuses(case: AuCase) -> None:
    for packetize in (RtpH264Packetizer().packetize, lambda d: ref_packetize(d, 1400)):
        with pytest.raises(ValueError) as e:
            packetize(case.data)
        assert str(e.value) == case.error


def test_fu_a_headers_byte_exact() -> None:
    """IDR slice (NRI 3) of 5000 bytes at 1400: FU indicator 0x7C, FU headers 85 05 05 45."""
    case = AU_CASES_BY_NAME["stap_then_fu"]
    got = payloads(*RtpH264Packetizer(1400).packetize(case.data))
    assert [len(p) for p in got] == [74, 1400, 1400, 1400, 807]
    assert got[0][:3] == bytes.fromhex("780017") and got[0][3:26] == SPS
    assert got[0][26:32] == bytes.fromhex("0004") + PPS
    assert [p[:2].hex() for p in got[1:]] == ["7c85", "7c05", "7c05", "7c45"]
    idr = nal(5, 5000, seed=4)
    assert b"".join(p[2:] for p in got[1:]) == idr[1:]
    p_slice = payloads(*RtpH264Packetizer(1400).packetize(AU_CASES_BY_NAME["fu_nri2_p_slice"].data))
    assert [p[:2].hex() for p in p_slice] == ["5c81", "5c01", "5c41"]
    b_slice = payloads(*RtpH264Packetizer(1400).packetize(AU_CASES_BY_NAME["fu_nri0_b_slice"].data))
    assert [p[:2].hex() for p in b_slice] == ["1c81", "1c41"]


def test_stap_a_header_byte_exact() -> None:
    got = payloads(*RtpH264Packetizer().packetize(AU_CASES_BY_NAME["stap_sps_pps"].data))
    assert got == [bytes.fromhex("780017") + SPS + bytes.fromhex("0004") + PPS]
    mixed = AU_CASES_BY_NAME["stap_nri_is_the_highest"]
    assert payloads(*RtpH264Packetizer().packetize(mixed.data))[0][0] == 0x40 | STAP_A
    forbidden = AU_CASES_BY_NAME["forbidden_bit_propagates"]
    assert payloads(*RtpH264Packetizer().packetize(forbidden.data))[0][0] == 0xE0 | STAP_A


@pytest.mark.parametrize("size", [MIN_PAYLOAD_SIZE - 1, MAX_PAYLOAD_SIZE + 1, 0, -1400])
def test_payload_size_is_validated(size: int) -> None:
    with pytest.raises(ValueError, match=r"payload_size must be in 200\.\.65000"):
        RtpH264Packetizer(size)
    assert RtpH264Packetizer(MAX_PAYLOAD_SIZE).payload_size == 65000


def test_packetize_takes_any_buffer() -> None:
    data = AU_CASES_BY_NAME["mixed_slices"].data
    want = RtpH264Packetizer().packetize(data)
    for view in (bytearray(data), memoryview(data), memoryview(b"\1" + data)[1:]):
        assert RtpH264Packetizer().packetize(view) == want
    with pytest.raises(TypeError):
        RtpH264Packetizer().packetize("text")  # type: ignore[arg-type]


def test_big_access_units_copy_without_the_gil() -> None:
    """Access units from 256 KiB up are scanned and copied with the GIL released."""
    data = annexb(SPS, PPS, *(nal(5, 150_000, seed=k, first_mb=k == 0) for k in range(3)))
    want = b"".join(ref_packetize(data, 1400))
    results: list[bytes] = []

    def work() -> None:
        for _ in range(5):
            results.append(RtpH264Packetizer(1400).packetize(data)[0])

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 15 and all(r == want for r in results)


_TYPES = st.sampled_from([1, 1, 1, 5, 5, 6, 7, 8, 9, 12, 2, 3, 4, 10, 11, 13, 14, 19, 20, 23])


@settings(max_examples=150, deadline=None)
@given(
    units=st.lists(st.tuples(_TYPES, st.integers(1, 5000), st.integers(0, 3)), min_size=1,
                   max_size=12),
    payload_size=st.integers(MIN_PAYLOAD_SIZE, 3000),
    four=st.booleans(),
)  # fmt: skip
def test_packetize_property(
    units: list[tuple[int, int, int]], payload_size: int, four: bool
) -> None:
    """Any NAL units, any payload size: the reference's payloads, and the access unit back."""
    nals = [nal(t, size, nri, seed=k) for k, (t, size, nri) in enumerate(units)]
    data = annexb(*nals, start=b"\0\0\0\1" if four else b"\0\0\1")
    sent = [n for n in nals if n[0] & 0x1F not in (9, 12)]
    if not sent:
        with pytest.raises(ValueError, match="no NAL unit to send"):
            RtpH264Packetizer(payload_size).packetize(data)
        return
    got = payloads(*RtpH264Packetizer(payload_size).packetize(data))
    assert got == ref_packetize(data, payload_size)
    for payload in got:
        assert len(payload) <= payload_size
        if payload[0] & 0x1F == FU_A and not payload[1] & 0x40:
            assert len(payload) == payload_size
    assert depacketize(got) == b"".join(b"\0\0\0\1" + n for n in sent)
    # Packets: one per group of small units that fit together, ceil per FU-A.
    assert len(got) <= sum(
        -(-(len(n) - 1) // (payload_size - 2)) if len(n) > payload_size else 1 for n in sent
    )


# --------------------------------------------------------------------------------------
# Real streams: libx264 -> packetize -> depacketize -> FFmpeg decodes every frame


@pytest.mark.parametrize("payload_size", [MIN_PAYLOAD_SIZE, 1400, MAX_PAYLOAD_SIZE])
def test_round_trip_x264(payload_size: int) -> None:
    aus = x264_access_units()  # D1 baseline, 50 frames, SPS/PPS before the IDR
    packetizer = RtpH264Packetizer(payload_size)
    d = RtpH264Depacketizer()
    out, seq = [], 65000  # and through the sequence wraparound
    kinds: set[int] = set()
    for k, au in enumerate(aus):
        data, offsets = packetizer.packetize(au)
        got = payloads(data, offsets)
        assert got == ref_packetize(au, payload_size)
        kinds.update(p[0] & 0x1F for p in got)
        for i, payload in enumerate(got):
            frame = d.push(seq & 0xFFFF, k * 3600, i == len(got) - 1, payload)
            seq += 1
            assert (frame is None) == (i < len(got) - 1)
            if frame is not None:
                out.append(frame)
    assert out == [expected_access_unit(au) for au in aus], "identical NAL units"
    assert d.frames == len(aus) and d.dropped == NO_DROPS
    assert decode_all(out) == len(aus)
    largest = max(len(n) for au in aus for n in ref_split_annexb(au))
    assert STAP_A in kinds and (FU_A in kinds) == (largest > payload_size)


X264_SPS = [
    # (width, height, profile, level, pix_fmt, params) -> (profile_idc, flags, level_idc)
    ((176, 144, "baseline", "1.1", "yuv420p", ""), (66, 0xC0, 11)),
    ((704, 576, "baseline", "3.0", "yuv420p", ""), (66, 0xC0, 30)),
    ((642, 362, "baseline", None, "yuv420p", ""), (66, 0xC0, 30)),
    ((1280, 720, "main", "3.1", "yuv420p", ""), (77, 0x40, 31)),
    ((1920, 1080, "high", "4.0", "yuv420p", ""), (100, 0, 40)),
    ((1920, 1080, "high", "4.1", "yuv420p", "interlaced=1"), (100, 0, 41)),
    ((720, 576, "high422", "3.0", "yuv422p", ""), (122, 0, 30)),
    ((352, 288, "high444", "2.0", "yuv444p", ""), (244, 0, 20)),
]


@pytest.mark.parametrize(("args", "want"), X264_SPS, ids=[
    f"{a[0]}x{a[1]}-{a[2]}{'-' + a[5] if a[5] else ''}" for a, _ in X264_SPS])  # fmt: skip
def test_sps_from_x264(
    args: tuple[int, int, str, str | None, str, str], want: tuple[int, int, int]
) -> None:
    width, height, profile, level, pix_fmt, params = args
    aus = x264_access_units(width, height, 1, profile, level=level, pix_fmt=pix_fmt, params=params)
    au = aus[0]
    sps, pps = parameter_sets(au)
    assert sps is not None and pps is not None
    info = sps_info(sps)
    assert info == (*want, width, height) == ref_sps_info(sps)
    assert profile_level_id(sps) == f"{want[0]:02x}{want[1]:02x}{want[2]:02x}"
    assert profile_level_id(sps) == ref_profile_level_id(sps)
    codec = av.CodecContext.create("h264", "r")
    frames = codec.decode(av.Packet(au)) + codec.decode(None)
    assert [(f.width, f.height) for f in frames] == [(width, height)], "FFmpeg agrees"


# --------------------------------------------------------------------------------------
# SPS, SDP


@pytest.mark.parametrize("case", SPS_CASES, ids=ids(SPS_CASES))
def test_sps_info(case: SpsCase) -> None:
    if case.error is not None:
        for read in (sps_info, ref_sps_info):
            with pytest.raises(ValueError) as e:
                read(case.data)
            assert str(e.value) == case.error
        return
    assert sps_info(case.data) == case.info == ref_sps_info(case.data)
    assert profile_level_id(case.data) == "{:02x}{:02x}{:02x}".format(*case.info[:3])


def test_sps_with_emulation_prevention() -> None:
    data = SPS_CASES_BY_NAME["poc_type_1_with_emulation_prevention"].data
    assert b"\x00\x00\x03" in data, "the case must exercise emulation prevention"
    assert sps_info(bytearray(data)) == (77, 0, 30, 352, 288)
    # The x264 SPS has emulation prevention bytes in its VUI, after what is read.
    assert b"\x00\x00\x03" in SPS and sps_info(SPS)[3:] == (704, 576)


def test_profile_level_id() -> None:
    assert profile_level_id(SPS) == "42c01e"
    # Only the first three bytes matter: a truncated SPS still has a profile.
    assert profile_level_id(SPS[:4]) == "42c01e"
    for bad, error in ((b"", "empty NAL unit"), (PPS, "not an SPS: NAL unit type 8"),
                       (SPS[:3], "SPS is truncated in level_idc")):  # fmt: skip
        with pytest.raises(ValueError) as e:
            profile_level_id(bad)
        assert str(e.value) == error
        with pytest.raises(ValueError):
            ref_profile_level_id(bad)


def test_sprop_parameter_sets() -> None:
    value = sprop_parameter_sets(SPS, PPS)
    assert value == "Z0LAHtoCwEmhAAADAAEAAAMAMo8WLqA=,aM4PyA=="
    assert [base64.b64decode(v) for v in value.split(",")] == [SPS, PPS]
    with pytest.raises(ValueError, match="not an SPS: NAL unit type 8"):
        sprop_parameter_sets(PPS, PPS)
    with pytest.raises(ValueError, match="not a PPS: NAL unit type 7"):
        sprop_parameter_sets(SPS, SPS)
    with pytest.raises(ValueError, match="empty NAL unit"):
        sprop_parameter_sets(SPS, b"")


# --------------------------------------------------------------------------------------
# Depacketizer


@pytest.mark.parametrize("stream", stream_cases(), ids=ids(stream_cases()))
def test_depacketizer_streams(stream: StreamCase) -> None:
    decoded = decode_packet_stream(stream.data[1:])
    assert decoded is not None
    d = RtpH264Depacketizer(decoded.max_size)
    ref = RefDepacketizer(decoded.max_size)
    for seq, ts, marker, payload in decoded.packets:
        got = d.push(seq, ts, marker, payload)
        assert got == ref.push(seq, ts, marker, payload)
        assert d.buffered == ref.buffered <= decoded.max_size
        if got is not None:
            assert got.startswith(b"\0\0\0\1")
    assert d.frames == ref.frames == stream.frames
    assert d.dropped == ref.dropped == {**NO_DROPS, **stream.dropped}


def _stream(aus: Sequence[bytes], payload_size: int = 1400) -> list[list[bytes]]:
    packetizer = RtpH264Packetizer(payload_size)
    return [payloads(*packetizer.packetize(au)) for au in aus]


def test_gap_drops_the_access_unit_and_recovers() -> None:
    aus = x264_access_units()[:6]
    packets = _stream(aus)
    d, seq, out = RtpH264Depacketizer(), 65530, []
    for k, items in enumerate(packets):
        for i, payload in enumerate(items):
            seq = (seq + 1) & 0xFFFF
            if k == 0 and i == 3:
                continue  # lost: an FU-A in the middle of the IDR
            frame = d.push(seq, 1000 + k * 3600, i == len(items) - 1, payload)
            if frame is not None:
                out.append(frame)
    assert d.dropped == {**NO_DROPS, "seq_gap": 1}
    assert out == [expected_access_unit(au) for au in aus[1:]]


def test_unmarked_sender_completes_on_timestamp_change() -> None:
    aus = x264_access_units()[:4]
    d, out, seq = RtpH264Depacketizer(), [], 0
    for k, items in enumerate(_stream(aus)):
        for payload in items:
            frame = d.push(seq, k * 3600, False, payload)
            seq += 1
            if frame is not None:
                out.append(frame)
    assert out == [expected_access_unit(au) for au in aus[:-1]]
    assert d.buffered == len(expected_access_unit(aus[-1])), "the last waits for the next"


def test_memory_is_bounded_by_max_access_unit() -> None:
    d = RtpH264Depacketizer(64 * 1024)
    idr = x264_access_units()[0]
    assert len(idr) > 64 * 1024
    items = _stream([idr, *x264_access_units()[1:3]])
    seq = 0
    for k, au in enumerate(items):
        for i, payload in enumerate(au):
            frame = d.push(seq, k, i == len(au) - 1, payload)
            seq += 1
            assert d.buffered <= 64 * 1024 and d.capacity <= 64 * 1024
            if k == 0:
                assert frame is None
    assert d.dropped == {**NO_DROPS, "too_large": 1} and d.frames == 2


def test_duplicate_of_the_marked_packet_is_ignored() -> None:
    items = _stream(x264_access_units()[1:2])[0]
    d = RtpH264Depacketizer()
    assert depacketize(items, d, seq=10) is not None
    assert d.push(10 + len(items) - 1, 3600, True, items[-1]) is None
    assert d.frames == 1 and d.dropped == NO_DROPS


def test_reset_forgets_the_partial_access_unit() -> None:
    items = _stream(x264_access_units()[:1])[0]
    d = RtpH264Depacketizer()
    d.push(0, 0, False, items[0])
    d.push(1, 0, False, items[1])
    assert d.buffered > 0
    d.reset()
    assert d.buffered == 0
    # After a reset a sequence jump is no gap: the next packet starts cleanly.
    assert depacketize(items, d, seq=40000, ts=1) == expected_access_unit(x264_access_units()[0])
    assert d.dropped == NO_DROPS and d.frames == 1


def test_depacketizer_validates_arguments() -> None:
    for limit in (1023, (1 << 30) + 1):
        with pytest.raises(ValueError, match="max_access_unit must be in 1024"):
            RtpH264Depacketizer(limit)
    d = RtpH264Depacketizer()
    assert d.max_access_unit == 4 << 20
    with pytest.raises(ValueError, match=r"seq must be in 0\.\.65535"):
        d.push(65536, 0, False, b"\x65")
    with pytest.raises(ValueError, match="timestamp must be in"):
        d.push(0, -1, False, b"\x65")
    with pytest.raises(TypeError):
        d.push(0, 0, False, "text")  # type: ignore[arg-type]
    assert d.frames == 0 and d.buffered == 0


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=3000))
def test_depacketizer_matches_the_reference(data: bytes) -> None:
    """Arbitrary packet streams (the fuzz input format): same output, same counters."""
    decoded = decode_packet_stream(data)
    if decoded is None:
        return
    d, ref = RtpH264Depacketizer(decoded.max_size), RefDepacketizer(decoded.max_size)
    for seq, ts, marker, payload in decoded.packets:
        assert d.push(seq, ts, marker, payload) == ref.push(seq, ts, marker, payload)
    assert (d.frames, d.dropped, d.buffered) == (ref.frames, ref.dropped, ref.buffered)


# --------------------------------------------------------------------------------------
# GStreamer: rtph264depay ! avdec_h264 takes our packets; our depacketizer takes rtph264pay's

GST_CAPS = "application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96"


def _send(gst: str, pipeline: list[str], aus: Sequence[bytes]) -> str:
    """Our packets of `aus` to udpsrc ! PIPELINE, until it has had enough; its log."""
    packetizer = RtpH264Packetizer(1400)
    frames = [payloads(*packetizer.packetize(au)) for au in aus]
    return send_to_gst(
        gst, GST_CAPS, pipeline, frames, pt=96, ssrc=0x264, seq=65000, frame_gap=0.01
    )


@pytest.mark.peer
def test_gstreamer_depayloads_and_decodes_our_packets() -> None:
    gst = require_peer("gst-launch-1.0")
    require_elements("rtph264depay", "avdec_h264")
    aus = x264_access_units()
    frames = 30  # of 50 sent: the decoder may hold a few back until more arrive
    pipeline = [
        "buffer-size=4194304", "!", "rtph264depay", "!", "avdec_h264", "!", "fakesink",
        f"num-buffers={frames}",
    ]  # fmt: skip
    _send(gst, pipeline, aus)


@pytest.mark.peer
def test_gstreamer_depayloads_our_nal_units_exactly(tmp_path: Path) -> None:
    """rtph264depay's byte stream is our access units, NAL unit for NAL unit."""
    gst = require_peer("gst-launch-1.0")
    require_elements("rtph264depay")
    aus = x264_access_units()[:12]
    out = tmp_path / "out.h264"
    # identity lets N-1 buffers through and ends the stream on the N-th.
    pipeline = [
        "buffer-size=4194304", "!", "rtph264depay", "!",
        "video/x-h264,stream-format=byte-stream,alignment=au", "!", "identity",
        f"eos-after={len(aus)}", "!", "filesink", f"location={out}",
    ]  # fmt: skip
    log = _send(gst, pipeline, aus)
    got = [bytes(u) for u in split_annexb(out.read_bytes())]
    want = [n for au in aus[: len(aus) - 1] for n in ref_split_annexb(au)]
    assert got == want, log


@pytest.mark.peer
def test_our_depacketizer_takes_gstreamer_rtph264pay(tmp_path: Path) -> None:
    gst = require_peer("gst-launch-1.0")
    require_elements("h264parse", "rtph264pay")
    aus = x264_access_units(352, 288, 25, seed=1)
    source = tmp_path / "in.h264"
    source.write_bytes(b"".join(aus))
    pipeline = [
        "filesrc", f"location={source}", "!", "h264parse", "!", "rtph264pay",
        "config-interval=-1", "mtu=1400",
    ]  # fmt: skip
    datagrams, log = receive_from_gst(gst, pipeline)
    d = RtpH264Depacketizer()
    got = depacketize_datagrams(d, datagrams)
    assert d.dropped == NO_DROPS, log
    assert len(got) == len(aus), log
    kinds = {parse_rtp(x)[3][0] & 0x1F for x in datagrams}
    assert FU_A in kinds, "rtph264pay fragmented the IDR"
    for out, au in zip(got, aus, strict=True):
        # rtph264pay may repeat SPS and PPS before an IDR (config-interval=-1).
        mine = [n for n in ref_split_annexb(au) if nal_type(n) not in (7, 8)]
        theirs = [n for n in ref_split_annexb(out) if nal_type(n) not in (7, 8)]
        assert theirs == mine
    assert parameter_sets(got[0]) == parameter_sets(aus[0])
    assert decode_all(got) == len(aus)


def test_seed_corpus_matches_the_tables() -> None:
    """tests/fuzz/corpus/rtph264 is what the tables write (run rtp_h264_cases.py to refresh)."""
    on_disk = {p.name: p.read_bytes() for p in CORPUS.iterdir()}
    assert on_disk == corpus_files()
