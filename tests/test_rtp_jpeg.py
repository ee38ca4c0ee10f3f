"""RFC 2435 (RTP/JPEG): walker, packetizer, depacketizer, payloader, and GStreamer as the judge.

The frames and packet streams are the tables of tests/rtp_jpeg_cases.py, shared with
the fuzz seeds; that module also holds the pure-Python reference every result is
compared with.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway._ext.rtpjpeg import (
    DROP_REASONS,
    MAX_PAYLOAD_SIZE,
    MIN_PAYLOAD_SIZE,
    REASONS,
    NotCarriable,
    Packets,
    RtpJpegDepacketizer,
    RtpJpegPacketizer,
    make_qtables,
    walk_jpeg,
)
from gateway.rtp.jpeg import JpegPayloader, reencode_size
from gateway.sources.jpeg_encoder import ZIGZAG, quant_tables

from .fuzz.common import StreamCase, decode_packet_stream
from .gst import depacketize_datagrams, parse_rtp, receive_from_gst, send_to_gst
from .rtp_jpeg_cases import (
    CASES,
    CASES_BY_NAME,
    Case,
    RefDepacketizer,
    dqt_16bit,
    expected_packets,
    main_header,
    ours,
    ref_packetize,
    ref_walk,
    rfc_make_tables,
    stream_cases,
    synthetic_fast,
)
from .support import require_peer

MALFORMED = [c for c in CASES if c.error is not None]
CARRIABLE = [c for c in CASES if c.error is None and c.reason is None]
REFUSED = [c for c in CASES if c.error is None and c.reason is not None]


def ids(cases: Sequence[Case]) -> list[str]:
    return [c.name for c in cases]


def decode(data: bytes) -> tuple[str, int, int, list[np.ndarray]]:
    """(pixel format, width, height, planes) of a JPEG decoded by FFmpeg."""
    codec = av.CodecContext.create("mjpeg", "r")
    frames = codec.decode(av.Packet(data))
    assert len(frames) == 1, "FFmpeg decoded no picture"
    frame = frames[0]
    assert isinstance(frame, av.VideoFrame)
    planes = [
        np.frombuffer(bytes(p), np.uint8).reshape(p.height, p.line_size)[:, : p.width]
        for p in frame.planes
    ]
    return frame.format.name, frame.width, frame.height, planes


def assert_same_picture(got: bytes, want: bytes) -> None:
    """Both JPEGs decode to the same pixels, exactly."""
    a, b = decode(got), decode(want)
    assert a[:3] == b[:3]
    for plane_a, plane_b in zip(a[3], b[3], strict=True):
        assert np.array_equal(plane_a, plane_b)


def depacketize(
    payloads: list[bytes] | Packets,
    depacketizer: RtpJpegDepacketizer | RefDepacketizer | None = None,
    seq: int = 1000,
    ts: int = 3600,
) -> bytes:
    """Push one frame's payloads; the JPEG the last one completes."""
    d = depacketizer or RtpJpegDepacketizer()
    items: list[bytes | memoryview] = list(payloads)
    out = None
    for i, payload in enumerate(items):
        out = d.push((seq + i) & 0xFFFF, ts, i == len(items) - 1, payload)
        assert (out is None) == (i < len(items) - 1)
    assert out is not None
    return out


def scan_bytes(data: bytes) -> bytes:
    info = walk_jpeg(data)
    return data[info.scan_offset : info.scan_end]


# --------------------------------------------------------------------------------------
# Walker


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_walk(case: Case) -> None:
    data = case.data()
    if case.error is not None:
        for walk in (walk_jpeg, ref_walk):
            with pytest.raises(ValueError) as e:
                walk(data)
            assert str(e.value) == case.error
        return
    info, ref = walk_jpeg(data), ref_walk(data)
    fields = ("width", "height", "rtp_type", "restart_interval", "qtables", "scan_offset",
              "scan_end", "reason")  # fmt: skip
    assert {f: getattr(info, f) for f in fields} == {f: getattr(ref, f) for f in fields}
    assert info.reason == case.reason
    assert 0 < info.scan_offset < info.scan_end <= len(data)
    if case.reason is None:
        assert (info.width, info.height) == case.size
        assert info.rtp_type == case.rtp_type
        assert info.restart_interval == case.restart_interval
        assert len(info.qtables) == 128
    else:
        assert info.reason in REASONS
        assert info.qtables == b""


def test_walk_accepts_any_buffer() -> None:
    data = CASES_BY_NAME["ours_422"].data()
    for view in (bytearray(data), memoryview(data), memoryview(b"xx" + data)[2:]):
        assert walk_jpeg(view).scan_end == walk_jpeg(data).scan_end
    with pytest.raises(TypeError):
        walk_jpeg("not bytes")  # type: ignore[arg-type]


def test_walk_reports_the_scan_around_eoi_padding() -> None:
    base = CASES_BY_NAME["ours_422"].data()
    info = walk_jpeg(base + b"\r\n\0\0")
    assert (info.scan_offset, info.scan_end) == (607, len(base) - 2)
    # Past the trailer slack the search stops: the scan runs to the end.
    assert walk_jpeg(base + bytes(40)).scan_end == len(base) + 40
    assert walk_jpeg(base[:-2]).scan_end == len(base) - 2


# --------------------------------------------------------------------------------------
# Packetizer


@pytest.mark.parametrize("case", CARRIABLE, ids=ids(CARRIABLE))
def test_packetize_layout(case: Case) -> None:
    data = case.data()
    assert case.size is not None and case.rtp_type is not None
    info = walk_jpeg(data)
    scan = data[info.scan_offset : info.scan_end]
    size = case.payload_size
    packets = RtpJpegPacketizer(size).packetize(data)
    count = expected_packets(len(scan), size, info.restart_interval > 0)
    assert len(packets) == count
    if case.packets is not None:
        assert count == case.packets
    assert (packets.width, packets.height, packets.rtp_type) == (*case.size, case.rtp_type)
    assert packets.payload_size == size
    assert packets.data == b"".join(ref_packetize(data, size))
    assert packets.data == b"".join(bytes(p) for p in packets)
    received = b""
    for i, payload in enumerate(packets):
        if i < count - 1:
            assert len(payload) == size
        else:
            assert 0 < len(payload) <= size
        h = main_header(bytes(payload))
        assert (h.type_specific, h.type, h.q) == (0, case.rtp_type, 255)
        assert (h.width8 * 8, h.height8 * 8) == case.size
        assert h.offset == len(received), "fragment offsets are contiguous"
        if case.rtp_type >= 64:
            assert h.restart == struct.pack(">HH", case.restart_interval, 0xFFFF)
        else:
            assert h.restart is None
        if i == 0:
            assert h.qtable == b"\0\0\0\x80"
            assert bytes(payload[h.data_start - 128 : h.data_start]) == info.qtables
        else:
            assert h.qtable is None
        received += bytes(payload[h.data_start :])
    assert received == scan


# Headers of the first, second and last packets, byte for byte (5000-byte scan, 1400-byte
# payloads: 1260 bytes of scan in the first packet, then 1392, or 1256 and 1388 with
# the restart header).
EXACT = {
    "synthetic_type0": ("00000000 00ff0806", "000004ec 00ff0806", "00000fcc 00ff0806", 964),
    "synthetic_type1": ("00000000 01ff0806", "000004ec 01ff0806", "00000fcc 01ff0806", 964),
    "synthetic_type64": ("00000000 40ff0806 0003ffff", "000004e8 40ff0806 0003ffff",
                         "00000fc0 40ff0806 0003ffff", 980),
    "synthetic_type65": ("00000000 41ff0806 0002ffff", "000004e8 41ff0806 0002ffff",
                         "00000fc0 41ff0806 0002ffff", 980),
}  # fmt: skip


@pytest.mark.parametrize("name", list(EXACT))
def test_headers_byte_exact(name: str) -> None:
    first, middle, last, last_len = EXACT[name]
    data = CASES_BY_NAME[name].data()
    info = walk_jpeg(data)
    scan = data[info.scan_offset : info.scan_end]
    packets = RtpJpegPacketizer(1400).packetize(data)
    assert len(packets) == 4
    head = bytes.fromhex(first)
    assert bytes(packets[0]) == head + b"\0\0\0\x80" + info.qtables + scan[: 1400 - len(head) - 132]
    assert bytes(packets[1][: len(head)]) == bytes.fromhex(middle)
    assert bytes(packets[-1][: len(head)]) == bytes.fromhex(last)
    assert len(packets[-1]) == last_len
    assert [len(p) for p in packets] == [1400, 1400, 1400, last_len]


@pytest.mark.parametrize("case", REFUSED, ids=ids(REFUSED))
def test_packetize_refuses_what_rfc2435_cannot_carry(case: Case) -> None:
    with pytest.raises(NotCarriable) as e:
        RtpJpegPacketizer().packetize(case.data())
    assert e.value.reason == case.reason
    assert isinstance(e.value, ValueError)
    assert str(e.value) == f"RFC 2435 cannot carry this frame: {case.reason}"


@pytest.mark.parametrize("case", MALFORMED[:6], ids=ids(MALFORMED[:6]))
def test_packetize_raises_on_malformed(case: Case) -> None:
    with pytest.raises(ValueError) as e:
        RtpJpegPacketizer().packetize(case.data())
    assert not isinstance(e.value, NotCarriable)
    assert str(e.value) == case.error


def test_packets_api() -> None:
    data = CASES_BY_NAME["synthetic_type64"].data()
    packets = RtpJpegPacketizer(1400).packetize(data)
    assert len(packets) == 4
    assert bytes(packets[-1]) == bytes(packets[3])
    assert bytes(packets[-4]) == bytes(packets[0])
    for index in (4, -5):
        with pytest.raises(IndexError):
            packets[index]
    view = packets[2]
    assert isinstance(view, memoryview)
    assert view.obj is packets.data, "payloads are slices of the one buffer, not copies"
    assert [bytes(p) for p in packets] == [bytes(packets[i]) for i in range(4)]
    assert "4 x 1400 B" in repr(packets)
    with pytest.raises(TypeError):
        Packets()


@pytest.mark.parametrize("size", [MIN_PAYLOAD_SIZE - 1, MAX_PAYLOAD_SIZE + 1, 0, -1400])
def test_payload_size_is_validated(size: int) -> None:
    with pytest.raises(ValueError, match=r"payload_size must be in 200\.\.65000"):
        RtpJpegPacketizer(size)


def test_payload_size_bounds_work() -> None:
    data = ours(176, 144, "420")
    for size in (MIN_PAYLOAD_SIZE, MAX_PAYLOAD_SIZE):
        packets = RtpJpegPacketizer(size).packetize(data)
        assert depacketize(packets) == depacketize(RtpJpegPacketizer(1400).packetize(data))


def test_packetize_takes_any_buffer() -> None:
    data = ours(176, 144, "422")
    want = RtpJpegPacketizer().packetize(data).data
    for view in (bytearray(data), memoryview(data)):
        assert RtpJpegPacketizer().packetize(view).data == want


def test_big_frames_copy_without_the_gil() -> None:
    """Scans from 256 KiB up are copied with the GIL released: same bytes, from any thread."""
    data = synthetic_fast(2040, 2040, "420", 600_000, 255)
    want = b"".join(ref_packetize(data, 1400))
    results: list[bytes] = []

    def work() -> None:
        for _ in range(5):
            results.append(RtpJpegPacketizer(1400).packetize(data).data)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 15 and all(r == want for r in results)


def test_scan_beyond_the_24bit_offset_is_refused() -> None:
    packetizer = RtpJpegPacketizer(65000)
    assert len(packetizer.packetize(synthetic_fast(64, 48, "422", 1 << 24))) == 259
    with pytest.raises(ValueError, match="beyond the 24-bit fragment offset"):
        packetizer.packetize(synthetic_fast(64, 48, "422", (1 << 24) + 1))


@settings(max_examples=150, deadline=None)
@given(
    scan_len=st.integers(1, 20_000),
    payload_size=st.integers(MIN_PAYLOAD_SIZE, 3000),
    sub=st.sampled_from(["420", "422"]),
    ri=st.sampled_from([0, 1, 7, 65535]),
    seed=st.integers(0, 1 << 16),
)
def test_packetize_property(scan_len: int, payload_size: int, sub: str, ri: int, seed: int) -> None:
    """Any scan, any payload size: the reference's payloads, and the scan back."""
    rng = np.random.default_rng(seed)
    scan = rng.integers(0, 255, scan_len, dtype=np.uint8).tobytes()  # no 0xFF
    data = _HEADERS[sub, ri] + scan + b"\xff\xd9"
    packets = RtpJpegPacketizer(payload_size).packetize(data)
    assert packets.data == b"".join(ref_packetize(data, payload_size))
    assert len(packets) == expected_packets(scan_len, payload_size, ri > 0)
    out = depacketize(packets)
    assert out[-scan_len - 2 : -2] == scan


_HEADERS = {
    (sub, ri): synthetic_fast(720, 576, sub, 0, ri)[:-2]
    for sub in ("420", "422")
    for ri in (0, 1, 7, 65535)
}


# --------------------------------------------------------------------------------------
# Round trips: packetize, depacketize, decode the same pixels

ROUND_TRIPS = [
    (w, h, sub, ri)
    for w, h in ((704, 576), (720, 576), (352, 288), (176, 144))
    for sub in ("420", "422")
    for ri in (0, w // 16)
] + [(2040, 1088, "420", 2040 // 16), (2040, 1088, "422", 0)]


@pytest.mark.parametrize(
    ("width", "height", "sub", "ri"), ROUND_TRIPS,
    ids=[f"{w}x{h}-{s}-dri{r}" for w, h, s, r in ROUND_TRIPS],
)  # fmt: skip
def test_round_trip(width: int, height: int, sub: str, ri: int) -> None:
    data = ours(width, height, sub, ri, quality=75, seed=width + height)
    packets = RtpJpegPacketizer(1400).packetize(data)
    assert packets.rtp_type == (0 if sub == "422" else 1) + (64 if ri else 0)
    out = depacketize(packets)
    assert scan_bytes(out) == scan_bytes(data)
    assert out == depacketize(packets, RefDepacketizer())
    info = walk_jpeg(out)
    assert (info.width, info.height, info.rtp_type, info.reason) == (
        width, height, packets.rtp_type, None)  # fmt: skip
    assert info.qtables == walk_jpeg(data).qtables
    assert_same_picture(out, data)


# --------------------------------------------------------------------------------------
# Payloader: everything comes out decodable, re-encoded when it had to be


@pytest.fixture(scope="module")
def payloader() -> JpegPayloader:
    """One for the module, as a track keeps one: the encoder re-opens on size changes."""
    return JpegPayloader(1400)


CORPUS = [c for c in CASES if c.error is None]


@pytest.mark.parametrize("case", CORPUS, ids=ids(CORPUS))
def test_payloader_corpus(case: Case, payloader: JpegPayloader) -> None:
    data = case.data()
    if not case.decodable and case.reason is not None:
        # Patched headers FFmpeg may or may not make sense of: refused, or re-encoded.
        try:
            packets, reason = payloader.payload(data)
        except ValueError as e:
            assert not isinstance(e, NotCarriable)
            return
        assert reason == case.reason
        assert walk_jpeg(depacketize(packets)).reason is None
        return
    packets, reason = payloader.payload(data)
    assert reason == case.reason
    out = depacketize(packets)
    assert walk_jpeg(out).reason is None
    if case.reason is None:
        assert packets.data == RtpJpegPacketizer(1400).packetize(data).data
        assert scan_bytes(out) == scan_bytes(data)
        if case.decodable:
            assert_same_picture(out, data)
        return
    pix_fmt, width, height, _ = decode(out)
    assert (width, height) == case.reencoded
    assert pix_fmt == "yuvj420p"
    assert packets.rtp_type == 1


def test_payloader_keeps_the_picture_when_it_reencodes(payloader: JpegPayloader) -> None:
    """Progressive 4:2:0 in, baseline 4:2:0 out: the same picture up to re-quantization."""
    data = CASES_BY_NAME["pillow_progressive"].data()
    packets, reason = payloader.payload(data)
    assert reason == "progressive"
    got, want = decode(depacketize(packets)), decode(data)
    assert got[:3] == want[:3]
    error = np.abs(got[3][0].astype(int) - want[3][0].astype(int)).mean()
    assert error < 3.0, f"mean luma error {error:.2f}"


def test_payloader_reuses_its_codecs() -> None:
    p = JpegPayloader()
    p.payload(CASES_BY_NAME["pillow_progressive"].data())
    decoder, encoder = p._decoder, p._encoder
    p.payload(CASES_BY_NAME["pillow_optimized_huffman"].data())  # same size
    assert (p._decoder, p._encoder) == (decoder, encoder)
    p.payload(CASES_BY_NAME["ours_444"].data())  # another size: a new encoder
    assert p._decoder is decoder and p._encoder is not encoder


@pytest.mark.parametrize(
    "data",
    [CASES_BY_NAME["no_soi"].data(), CASES_BY_NAME["truncated_in_dqt"].data(),
     CASES_BY_NAME["sof9_arithmetic"].data(), CASES_BY_NAME["four_components"].data()],
    ids=["malformed", "truncated", "arithmetic", "cmyk"],
)  # fmt: skip
def test_payloader_raises_valueerror_on_what_it_cannot_use(data: bytes) -> None:
    with pytest.raises(ValueError):
        JpegPayloader().payload(data)


def test_payloader_survives_a_bad_frame(payloader: JpegPayloader) -> None:
    with pytest.raises(ValueError):
        payloader.payload(CASES_BY_NAME["sof9_arithmetic"].data())
    packets, reason = payloader.payload(CASES_BY_NAME["pillow_grayscale"].data())
    assert reason == "grayscale" and len(packets) >= 1


@pytest.mark.parametrize(
    ("size", "chroma_420", "want"),
    [
        ((704, 576), True, (704, 576)),
        ((705, 577), True, (704, 576)),
        ((720, 486), False, (720, 488)),
        ((720, 488), True, (720, 480)),
        ((2048, 1536), True, (2040, 1536)),
        ((4096, 2160), True, (2040, 1072)),
        ((1000, 4000), False, (512, 2040)),
        ((3, 3), True, (8, 16)),
    ],
)
def test_reencode_size(size: tuple[int, int], chroma_420: bool, want: tuple[int, int]) -> None:
    got = reencode_size(*size, chroma_420=chroma_420)
    assert got == want
    assert got[0] % 8 == 0 and got[1] % (16 if chroma_420 else 8) == 0
    assert max(got) <= 2040


# --------------------------------------------------------------------------------------
# Depacketizer


@pytest.mark.parametrize("stream", stream_cases(), ids=[s.name for s in stream_cases()])
def test_depacketizer_streams(stream: StreamCase) -> None:
    """Every drop path, counted once, and the next frame recovers; same as the reference."""
    ps = decode_packet_stream(stream.data)
    assert ps is not None
    results = []
    for d in (RtpJpegDepacketizer(ps.max_size), RefDepacketizer(ps.max_size)):
        outs = [out for p in ps.packets if (out := d.push(*p)) is not None]
        assert d.buffered == 0
        results.append((outs, d.frames, d.dropped))
    assert results[0] == results[1]
    outs, frames, dropped = results[0]
    assert frames == len(outs) == stream.frames
    want: dict[str, int] = {**dict.fromkeys(DROP_REASONS, 0), **stream.dropped}
    assert dropped == want
    for out in outs:
        assert walk_jpeg(out).reason is None
        decode(out)


@pytest.mark.parametrize("q", [50, 80])
def test_q_tables_match_rfc_make_tables(q: int) -> None:
    tables = make_qtables(q)
    assert tables == rfc_make_tables(q)
    luma, chroma = quant_tables(q)  # IJG quality scaling, natural order
    assert tables == bytes(luma[ZIGZAG].astype(np.uint8)) + bytes(chroma[ZIGZAG].astype(np.uint8))


@pytest.mark.parametrize("q", [0, 100, -1])
def test_make_qtables_range(q: int) -> None:
    with pytest.raises(ValueError, match=r"Q must be in 1\.\.99"):
        make_qtables(q)


@pytest.mark.parametrize("q", [50, 80])
def test_q_derived_tables_decode_like_the_original(q: int) -> None:
    """A sender using Q 1..99 sends no tables; the receiver's match the encoder's."""
    data = ours(176, 144, "422", quality=q)
    payloads = [bytes(p) for p in RtpJpegPacketizer().packetize(data)]
    payloads = [p[:5] + bytes([q]) + p[6:] for p in payloads]
    payloads[0] = payloads[0][:8] + payloads[0][8 + 132 :]
    out = depacketize(payloads)
    assert walk_jpeg(out).qtables == make_qtables(q)
    assert_same_picture(out, data)


def test_16bit_inband_tables() -> None:
    data = ours(176, 144, "420")
    info = walk_jpeg(data)
    payloads = [bytes(p) for p in RtpJpegPacketizer().packetize(data)]
    wide = b"".join(v.to_bytes(2, "big") for v in info.qtables)
    payloads[0] = payloads[0][:8] + b"\0\x03\x01\x00" + wide + payloads[0][8 + 132 :]
    out = depacketize(payloads)
    assert walk_jpeg(out).reason == "qtable_16bit"
    assert out == depacketize(payloads, RefDepacketizer())
    assert_same_picture(out, data)
    assert_same_picture(out, dqt_16bit(data))


def test_eoi_left_in_the_scan_by_a_sender() -> None:
    data = ours(176, 144, "422")
    payloads = [bytes(p) for p in RtpJpegPacketizer().packetize(data)]
    payloads[-1] += b"\xff\xd9"
    out = depacketize(payloads)
    assert out.endswith(b"\xff\xd9\xff\xd9")
    assert_same_picture(out, data)


def test_sequence_wraparound_and_gaps_with_real_frames() -> None:
    d = RtpJpegDepacketizer()
    frames = [ours(352, 288, "422", seed=k) for k in range(3)]
    seq = 65530
    payloads = [[bytes(p) for p in RtpJpegPacketizer().packetize(f)] for f in frames]
    # Frame 0 across the wrap, frame 1 with a packet lost, frame 2 clean.
    assert_same_picture(depacketize(payloads[0], d, seq=seq, ts=0), frames[0])
    seq = (seq + len(payloads[0])) & 0xFFFF
    lost = payloads[1][:3] + payloads[1][4:]
    for i, p in enumerate(lost):
        assert d.push((seq + i + (i >= 3)) & 0xFFFF, 3600, i == len(lost) - 1, p) is None
    seq = (seq + len(payloads[1])) & 0xFFFF
    assert_same_picture(depacketize(payloads[2], d, seq=seq, ts=7200), frames[2])
    assert d.frames == 2
    assert d.dropped["seq_gap"] == 1


def test_timestamp_change_mid_frame_recovers() -> None:
    d = RtpJpegDepacketizer()
    payloads = [bytes(p) for p in RtpJpegPacketizer().packetize(ours(176, 144, "420"))]
    for i, p in enumerate(payloads[:-1]):  # the marked packet never comes
        assert d.push(i, 0, False, p) is None
    out = depacketize(payloads, d, seq=len(payloads) - 1, ts=3600)
    assert_same_picture(out, ours(176, 144, "420"))
    assert d.dropped["offset"] == 1 and d.frames == 1


def test_memory_is_bounded_by_max_frame_size() -> None:
    limit = 32 * 1024
    d = RtpJpegDepacketizer(max_frame_size=limit)
    big = [bytes(p) for p in RtpJpegPacketizer(8000).packetize(ours(704, 576, "422"))]
    small = [bytes(p) for p in RtpJpegPacketizer(8000).packetize(ours(176, 144, "422"))]
    seq = 0
    for ts in range(5):
        for i, p in enumerate(big):
            d.push(seq, ts, i == len(big) - 1, p)
            seq += 1
            assert d.buffered <= limit and d.capacity <= limit
    assert d.dropped["too_large"] == 5
    out = depacketize(small, d, seq=seq, ts=99)
    assert len(out) <= limit
    assert d.capacity <= limit
    # A frame exactly at the limit passes; one byte more does not.
    exact = len(out)
    for size, frames, dropped in ((exact, 1, 0), (exact - 1, 0, 1)):
        d = RtpJpegDepacketizer(max_frame_size=size)
        for i, p in enumerate(small):
            d.push(i, 0, i == len(small) - 1, p)
        assert (d.frames, d.dropped["too_large"]) == (frames, dropped)


def test_depacketizer_validates_arguments() -> None:
    d = RtpJpegDepacketizer()
    for seq, ts in ((65536, 0), (-1, 0), (0, 1 << 32), (0, -1)):
        with pytest.raises(ValueError):
            d.push(seq, ts, False, b"\0" * 8)
    for limit in (1023, (1 << 30) + 1):
        with pytest.raises(ValueError, match="max_frame_size"):
            RtpJpegDepacketizer(limit)
    with pytest.raises(TypeError):
        d.push(0, 0, False, "text")  # type: ignore[arg-type]


def test_reset_forgets_the_partial_frame() -> None:
    d = RtpJpegDepacketizer()
    payloads = [bytes(p) for p in RtpJpegPacketizer().packetize(ours(176, 144, "420"))]
    d.push(0, 0, False, payloads[0])
    assert d.buffered > 0
    d.reset()
    assert d.buffered == 0
    assert_same_picture(depacketize(payloads, d, seq=500, ts=1), ours(176, 144, "420"))
    assert d.dropped == dict.fromkeys(DROP_REASONS, 0)


# --------------------------------------------------------------------------------------
# GStreamer: rtpjpegdepay ! jpegdec takes our packets; our depacketizer takes rtpjpegpay's

GST_CAPS = "application/x-rtp,media=video,clock-rate=90000,encoding-name=JPEG,payload=26"
INTEROP_FRAMES = (("422", 0), ("420", 0), ("422", 22), ("420", 11))


def _interop_frames() -> list[bytes]:
    return [ours(352, 288, sub, ri, seed=k) for k, (sub, ri) in enumerate(INTEROP_FRAMES)]


@pytest.mark.peer
def test_gstreamer_depayloads_and_decodes_our_packets(tmp_path: Path) -> None:
    gst = require_peer("gst-launch-1.0")
    frames = _interop_frames()
    packetizer = RtpJpegPacketizer(1400)
    payloads = [[bytes(p) for p in packetizer.packetize(f)] for f in [*frames, frames[0]]]
    # identity lets N-1 buffers through and ends the stream on the N-th.
    pipeline = [
        "!", "rtpjpegdepay", "!", "identity", f"eos-after={len(frames) + 1}",
        "!", "tee", "name=t",
        "t.", "!", "queue", "!", "jpegdec", "!", "fakesink",
        "t.", "!", "queue", "!", "multifilesink", f"location={tmp_path}/%05d.jpg",
    ]  # fmt: skip
    log = send_to_gst(
        gst, GST_CAPS, pipeline, payloads, pt=26, ssrc=0x2400, seq=40000, frame_gap=0.02
    )
    got = sorted(tmp_path.glob("*.jpg"))
    assert len(got) == len(frames), log
    for path, frame in zip(got, frames, strict=True):
        # GStreamer rebuilt the headers itself (component ids 0-2, one DQT per table).
        assert_same_picture(path.read_bytes(), frame)


@pytest.mark.peer
def test_our_depacketizer_takes_gstreamer_rtpjpegpay(tmp_path: Path) -> None:
    gst = require_peer("gst-launch-1.0")
    frames = _interop_frames()
    for k, frame in enumerate(frames):
        (tmp_path / f"{k:05d}.jpg").write_bytes(frame)
    pipeline = [
        "multifilesrc", f"location={tmp_path}/%05d.jpg", "index=0",
        "caps=image/jpeg,framerate=25/1,width=352,height=288",
        "!", "rtpjpegpay", "mtu=1400",
    ]  # fmt: skip
    datagrams, log = receive_from_gst(gst, pipeline)
    d = RtpJpegDepacketizer()
    got = depacketize_datagrams(d, datagrams)
    assert d.dropped == dict.fromkeys(DROP_REASONS, 0), log
    assert len(got) == len(frames), log
    types = [main_header(parse_rtp(x)[3]).type for x in datagrams]
    assert {0, 1, 64, 65} <= set(types)
    for out, frame in zip(got, frames, strict=True):
        # rtpjpegpay sends the frame's EOI as scan data; ours follows it, harmlessly.
        assert out.endswith(b"\xff\xd9\xff\xd9")
        assert scan_bytes(out) == scan_bytes(frame) + b"\xff\xd9"
        assert_same_picture(out, frame)


@pytest.mark.peer
def test_our_depacketizer_takes_gstreamer_jpegenc(tmp_path: Path) -> None:
    """libjpeg through GStreamer's jpegenc, then rtpjpegpay: what a GStreamer camera sends."""
    gst = require_peer("gst-launch-1.0")
    pipeline = [
        "videotestsrc", "num-buffers=4", "pattern=ball",
        "!", "video/x-raw,format=I420,width=320,height=240,framerate=25/1",
        "!", "jpegenc", "quality=85", "!", "tee", "name=t",
        "t.", "!", "queue", "!", "multifilesink", f"location={tmp_path}/%05d.jpg",
        "t.", "!", "queue", "!", "rtpjpegpay",
    ]  # fmt: skip
    datagrams, log = receive_from_gst(gst, pipeline)
    d = RtpJpegDepacketizer()
    got = depacketize_datagrams(d, datagrams)
    assert d.dropped == dict.fromkeys(DROP_REASONS, 0), log
    sent = [p.read_bytes() for p in sorted(tmp_path.glob("*.jpg"))]
    assert len(sent) == 4 and len(got) == 4, log
    for out, frame in zip(got, sent, strict=True):
        assert walk_jpeg(frame).reason is None, "jpegenc writes what RFC 2435 carries"
        assert_same_picture(out, frame)
