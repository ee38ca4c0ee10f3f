"""RFC 2435 cases shared by the RTP/JPEG tests and the fuzz seeds, and a pure-Python reference.

Each case is a JPEG frame as some encoder or camera could send it, with what
``walk_jpeg`` must say about it: a ValueError message for malformed headers, a
reason RFC 2435 cannot carry it, or the RTP/JPEG type, size and packet count
when it can. Run this file to rewrite the fuzz seed corpora after changing the
table:

    .venv/bin/python tests/rtp_jpeg_cases.py

``ref_walk`` and ``RefDepacketizer`` restate ext/rtpjpeg.pyx rule for rule in
plain Python: atheris cannot see inside the compiled module, so the fuzz
targets instrument these instead and turn any divergence into a crash.
"""

from __future__ import annotations

import functools
import io
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from gateway._ext import jpegenc  # noqa: E402
from gateway.sources.frames import encode_jpeg  # noqa: E402
from gateway.sources.jpeg_encoder import ZIGZAG, jpeg_header, sampling_for  # noqa: E402
from tests.fuzz import seeds  # noqa: E402
from tests.fuzz.common import Record, StreamCase, encode_packet_stream, records  # noqa: E402

CORPUS_WALK = seeds.CORPUS_ROOT / "jpeg_walk"
CORPUS_RTP = seeds.CORPUS_ROOT / "rtpjpeg"

SOI, EOI = b"\xff\xd8", b"\xff\xd9"
DQT, SOF0, SOF1, SOF2, DHT, DRI, SOS, COM = 0xDB, 0xC0, 0xC1, 0xC2, 0xC4, 0xDD, 0xDA, 0xFE

# --------------------------------------------------------------------------------------
# Pictures and encoders


@functools.cache
def _pattern(width: int, height: int, seed: int) -> np.ndarray:
    """Smooth bands, edges and mild noise in 0..255, float (height, width, 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 128 + 80 * np.sin(xx / 23.0 + seed) * np.cos(yy / 31.0)
    g = 128 + 70 * np.cos((xx + yy) / 19.0)
    b = np.where((xx // 64 + yy // 48) % 2 == 0, 200.0, 60.0)
    rgb = np.stack([r, g, b], axis=-1) + rng.normal(0, 6, (height, width, 3))
    return np.clip(rgb, 0, 255)


def rgb_picture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """An RGB test picture, uint8 (height, width, 3)."""
    return _pattern(width, height, seed).astype(np.uint8)


def planes(
    width: int, height: int, subsampling: str, seed: int = 0
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """JFIF Y, Cb, Cr planes of the test picture at a subsampling (cb, cr None for gray)."""
    rgb = _pattern(width, height, seed)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = np.clip(np.rint(0.299 * r + 0.587 * g + 0.114 * b), 0, 255).astype(np.uint8)
    sampling = sampling_for(subsampling)
    if not sampling.chroma:
        return y, None, None
    ch, cw = sampling.chroma_shape(height, width)
    chroma = []
    for plane in (
        128 - 0.168736 * r - 0.331264 * g + 0.5 * b,
        128 + 0.5 * r - 0.418688 * g - 0.081312 * b,
    ):
        padded = np.pad(
            plane, ((0, ch * sampling.v - height), (0, cw * sampling.h - width)), "edge"
        )
        sub = padded.reshape(ch, sampling.v, cw, sampling.h).mean(axis=(1, 3))
        chroma.append(np.clip(np.rint(sub), 0, 255).astype(np.uint8))
    return y, chroma[0], chroma[1]


@functools.cache
def ours(
    width: int,
    height: int,
    subsampling: str = "422",
    restart_interval: int = 0,
    quality: int = 70,
    seed: int = 0,
) -> bytes:
    """Our baseline encoder: JFIF APP0, DQT, SOF0, standard DHT, [DRI], SOS."""
    return encode_jpeg(
        *planes(width, height, subsampling, seed),
        quality=quality,
        subsampling=subsampling,
        restart_interval=restart_interval,
    )


@functools.cache
def pillow(width: int, height: int, mode: str = "RGB", **save: object) -> bytes:
    """libjpeg through Pillow (quality 75, 4:2:0 and standard tables unless told)."""
    from PIL import Image

    image = Image.fromarray(rgb_picture(width, height))
    if mode != "RGB":
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, "JPEG", **save)
    return out.getvalue()


@functools.cache
def pyav(
    width: int,
    height: int,
    pix_fmt: str = "yuvj422p",
    huffman: str = "default",
    codec: str = "mjpeg",
) -> bytes:
    """FFmpeg's mjpeg (or ljpeg) encoder through PyAV."""
    import av

    enc = av.CodecContext.create(codec, "w")
    assert isinstance(enc, av.VideoCodecContext)
    enc.width, enc.height, enc.pix_fmt = width, height, pix_fmt
    enc.time_base = Fraction(1, 25)
    enc.thread_count = 1  # with slice threads FFmpeg adds DRI, one interval per slice
    if codec == "mjpeg":
        enc.options = {"huffman": huffman}
        enc.qmin = enc.qmax = 4
    frame = av.VideoFrame.from_ndarray(rgb_picture(width, height), format="rgb24")
    frame = frame.reformat(format=pix_fmt)
    frame.pts = 0
    packets = enc.encode(frame) + enc.encode(None)
    return b"".join(bytes(p) for p in packets)


# --------------------------------------------------------------------------------------
# JPEG surgery: enough to make every shape of header a case needs


def segment(marker: int, payload: bytes) -> bytes:
    """One marker segment."""
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each header segment of a well-formed JPEG, up to SOS."""
    out, i = [], 2
    while True:
        while data[i + 1] == 0xFF:
            i += 1
        marker = data[i + 1]
        end = i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        out.append((marker, i, end))
        if marker == SOS:
            return out
        i = end


def find(data: bytes, marker: int) -> tuple[int, int]:
    """(start, end) of the first segment with this marker."""
    for m, start, end in segments(data):
        if m == marker:
            return start, end
    raise KeyError(hex(marker))


def payload_of(data: bytes, marker: int) -> bytes:
    """The payload (after the length) of the first segment with this marker."""
    start, end = find(data, marker)
    return data[start + 4 : end]


def replace(data: bytes, marker: int, new: bytes) -> bytes:
    """Replace the first segment with this marker by raw bytes (a segment, or nothing)."""
    start, end = find(data, marker)
    return data[:start] + new + data[end:]


def insert_before(data: bytes, marker: int, new: bytes) -> bytes:
    """Insert raw bytes before the first segment with this marker."""
    start, _ = find(data, marker)
    return data[:start] + new + data[start:]


def patch(data: bytes, offset: int, value: bytes) -> bytes:
    """Overwrite bytes at an absolute offset."""
    return data[:offset] + value + data[offset + len(value) :]


def scan_of(data: bytes) -> bytes:
    """The entropy-coded data of a well-formed JPEG ending in EOI."""
    return data[segments(data)[-1][2] : -2]


def dqt_16bit(data: bytes) -> bytes:
    """Every table of the DQT re-sent with 16-bit precision (same values)."""
    body, out, k = payload_of(data, DQT), b"", 0
    while k < len(body):
        tq = body[k] & 15
        out += bytes([0x10 | tq]) + b"".join(v.to_bytes(2, "big") for v in body[k + 1 : k + 65])
        k += 65
    return replace(data, DQT, segment(DQT, out))


def three_qtables(data: bytes) -> bytes:
    """Cr quantized with its own table 2 (a copy of table 1)."""
    body = payload_of(data, DQT)
    data = replace(data, DQT, segment(DQT, body + b"\x02" + body[66:130]))
    start, _ = find(data, SOF0)
    return patch(data, start + 4 + 6 + 3 * 2 + 2, b"\x02")


def huffman_slots_swapped(data: bytes) -> bytes:
    """Luma tables in slot 1 and chroma in slot 0, and SOS pointing at them: same codes."""
    tables = [
        (0x01, jpegenc.DC_LUMA_BITS, jpegenc.DC_LUMA_VALS),
        (0x11, jpegenc.AC_LUMA_BITS, jpegenc.AC_LUMA_VALS),
        (0x00, jpegenc.DC_CHROMA_BITS, jpegenc.DC_CHROMA_VALS),
        (0x10, jpegenc.AC_CHROMA_BITS, jpegenc.AC_CHROMA_VALS),
    ]
    data = replace(data, DHT, segment(DHT, b"".join(bytes([t]) + b + v for t, b, v in tables)))
    start, _ = find(data, SOS)
    return data[: start + 5] + b"\x01\x11\x02\x00\x03\x00" + data[start + 11 :]


def luma_ac_altered(data: bytes) -> bytes:
    """A DHT whose AC luma table differs from Annex K by one symbol's position."""
    vals = bytearray(jpegenc.AC_LUMA_VALS)
    vals[0], vals[1] = vals[1], vals[0]
    body = payload_of(data, DHT).replace(
        jpegenc.AC_LUMA_BITS + jpegenc.AC_LUMA_VALS, jpegenc.AC_LUMA_BITS + bytes(vals)
    )
    return replace(data, DHT, segment(DHT, body))


def sof_byte(data: bytes, index: int, value: int, marker: int = SOF0) -> bytes:
    """Overwrite byte `index` of the SOF payload."""
    start, _ = find(data, marker)
    return patch(data, start + 4 + index, bytes([value]))


def with_marker(data: bytes, old: int, new: int) -> bytes:
    """Rename a segment's marker (SOF0 -> SOF2, ...)."""
    start, _ = find(data, old)
    return patch(data, start + 1, bytes([new]))


def synthetic(
    width: int,
    height: int,
    subsampling: str = "422",
    scan_len: int = 5000,
    restart_interval: int = 0,
    quality: int = 70,
) -> bytes:
    """Real headers around a made-up scan of exactly scan_len bytes with no 0xFF (not decodable)."""
    head = jpeg_header(
        width=width,
        height=height,
        sampling=sampling_for(subsampling),
        quality=quality,
        restart_interval=restart_interval,
    )
    scan = bytes((i * 7 + 3) % 255 for i in range(scan_len))
    return head + scan + EOI


def synthetic_fast(
    width: int, height: int, subsampling: str, scan_len: int, restart_interval: int = 0
) -> bytes:
    """Like synthetic, for big scans: a repeated pattern without 0xFF (may be empty)."""
    head = jpeg_header(
        width=width,
        height=height,
        sampling=sampling_for(subsampling),
        quality=70,
        restart_interval=restart_interval,
    )
    pattern = bytes(range(1, 255))
    return head + (pattern * (scan_len // len(pattern) + 1))[:scan_len] + EOI


# --------------------------------------------------------------------------------------
# The case table


@dataclass(frozen=True)
class Case:
    """One frame and what the walker, packetizer and payloader must make of it."""

    name: str
    build: Callable[[], bytes]
    reason: str | None = None  # walk_jpeg(...).reason
    error: str | None = None  # ValueError message for malformed headers
    rtp_type: int | None = None  # carriable frames
    size: tuple[int, int] | None = None  # (width, height) of the frame
    restart_interval: int = 0
    payload_size: int = 1400
    packets: int | None = None  # expected count at payload_size
    decodable: bool = True  # a real frame PyAV decodes (the payloader can re-encode it)
    reencoded: tuple[int, int] | None = None  # size after JpegPayloader re-encodes it
    seed: bool = True  # small enough for the fuzz seed corpus

    def data(self) -> bytes:
        """The frame."""
        return self.build()


def _c(name: str, build: Callable[[], bytes], **kw: Any) -> Case:
    return Case(name, build, **kw)


SMALL = (48, 32)
BASE = functools.partial(ours, 48, 32)  # offsets: APP0 2, DQT 20, SOF0 154, DHT 173, SOS 593
_BASE_SCAN = 607


def _with_dri(ri: int) -> bytes:
    return ours(48, 32, "422", ri)


CASES: tuple[Case, ...] = (
    # Carriable, byte-exact sizes: headers from our encoder around a made-up scan.
    _c("synthetic_type0", lambda: synthetic(64, 48, "422", 5000), rtp_type=0, size=(64, 48),
       packets=4, decodable=False),
    _c("synthetic_type1", lambda: synthetic(64, 48, "420", 5000), rtp_type=1, size=(64, 48),
       packets=4, decodable=False),
    _c("synthetic_type64", lambda: synthetic(64, 48, "422", 5000, 3), rtp_type=64,
       size=(64, 48), restart_interval=3, packets=4, decodable=False),
    _c("synthetic_type65", lambda: synthetic(64, 48, "420", 5000, 2), rtp_type=65,
       size=(64, 48), restart_interval=2, packets=4, decodable=False),
    _c("synthetic_one_full_packet", lambda: synthetic(64, 48, "422", 1260), rtp_type=0,
       size=(64, 48), packets=1, decodable=False),
    _c("synthetic_one_byte_over", lambda: synthetic(64, 48, "422", 1261), rtp_type=0,
       size=(64, 48), packets=2, decodable=False),
    _c("synthetic_min_payload", lambda: synthetic(64, 48, "420", 1000), rtp_type=1,
       size=(64, 48), payload_size=200, packets=6, decodable=False),
    _c("synthetic_max_size", lambda: synthetic(2040, 2040, "420", 3000), rtp_type=1,
       size=(2040, 2040), packets=3, decodable=False),
    # Carriable real frames.
    _c("ours_422", lambda: ours(48, 32, "422"), rtp_type=0, size=(48, 32)),
    _c("ours_420", lambda: ours(48, 32, "420"), rtp_type=1, size=(48, 32)),
    _c("ours_422_dri", lambda: _with_dri(2), rtp_type=64, size=(48, 32), restart_interval=2),
    _c("ours_420_dri", lambda: ours(48, 32, "420", 1), rtp_type=65, size=(48, 32),
       restart_interval=1),
    _c("ours_422_dri_zero", lambda: insert_before(BASE(), SOS, segment(DRI, b"\0\0")),
       rtp_type=0, size=(48, 32)),
    _c("ours_d1_422", lambda: ours(704, 576, "422"), rtp_type=0, size=(704, 576), seed=False),
    _c("ours_edge_2040x1088", lambda: ours(2040, 1088, "420", 255), rtp_type=65,
       size=(2040, 1088), restart_interval=255, seed=False),
    _c("pillow_420", lambda: pillow(64, 48), rtp_type=1, size=(64, 48)),
    _c("pillow_422", lambda: pillow(64, 48, subsampling=1), rtp_type=0, size=(64, 48)),
    _c("pillow_d1_420", lambda: pillow(704, 576, quality=85), rtp_type=1, size=(704, 576),
       seed=False),

    _c("pyav_420_default_huffman", lambda: pyav(64, 48, "yuvj420p"), rtp_type=1, size=(64, 48)),
    _c("no_dht_avi1", lambda: replace(BASE(), DHT, b""), rtp_type=0, size=(48, 32)),
    _c("huffman_slots_swapped", lambda: huffman_slots_swapped(BASE()), rtp_type=0,
       size=(48, 32)),
    _c("extra_app_and_com", lambda: insert_before(
        BASE(), DQT, segment(0xE1, b"Exif\0\0" + bytes(40)) + segment(COM, b"AXIS 2400")),
       rtp_type=0, size=(48, 32)),
    _c("fill_bytes_before_markers", lambda: BASE().replace(b"\xff\xdb", b"\xff\xff\xff\xdb", 1),
       rtp_type=0, size=(48, 32)),
    _c("trailing_padding_after_eoi", lambda: BASE() + b"\r\n\0\0", rtp_type=0, size=(48, 32)),
    _c("no_eoi", lambda: BASE()[:-2], rtp_type=0, size=(48, 32)),
    _c("tables_after_sof", lambda: insert_before(replace(BASE(), DQT, b""), SOS, BASE()[20:154]),
       rtp_type=0, size=(48, 32)),
    # Not carriable as they are: the reason, and the size they are re-encoded at.
    _c("pillow_progressive", lambda: pillow(64, 48, progressive=True), reason="progressive",
       reencoded=(64, 48)),
    _c("progressive_odd_size", lambda: pillow(50, 30, progressive=True), reason="progressive",
       reencoded=(48, 32)),
    _c("sof1_extended", lambda: with_marker(BASE(), SOF0, SOF1), reason="not_baseline",
       reencoded=(48, 32)),
    _c("sof3_lossless", lambda: pyav(32, 16, "bgr24", codec="ljpeg"), reason="not_baseline",
       reencoded=(32, 16)),
    _c("sof9_arithmetic", lambda: with_marker(BASE(), SOF0, 0xC9), reason="not_baseline",
       decodable=False),
    _c("precision_12", lambda: sof_byte(BASE(), 0, 12), reason="precision", decodable=False),
    _c("pillow_grayscale", lambda: pillow(64, 48, "L"), reason="grayscale", reencoded=(64, 48)),
    _c("ours_grayscale", lambda: ours(48, 32, "gray"), reason="grayscale", reencoded=(48, 32)),
    _c("pyav_422_y2x2_chroma1x2", lambda: pyav(64, 48), reason="sampling", reencoded=(64, 48)),
    _c("pillow_444", lambda: pillow(64, 48, subsampling=0), reason="sampling",
       reencoded=(64, 48)),
    _c("ours_444", lambda: ours(48, 32, "444"), reason="sampling", reencoded=(48, 32)),
    _c("luma_1x2", lambda: sof_byte(BASE(), 7, 0x12), reason="sampling", decodable=False),
    _c("four_components", lambda: (lambda d: replace(d, SOF0, segment(
        SOF0, payload_of(d, SOF0)[:5] + b"\x04" + payload_of(d, SOF0)[6:] + b"\x04\x11\x01")))(
        BASE()), reason="sampling", decodable=False),
    _c("qtable_16bit", lambda: dqt_16bit(BASE()), reason="qtable_16bit", reencoded=(48, 32)),
    _c("qtable_three_tables", lambda: three_qtables(BASE()), reason="qtable_layout",
       reencoded=(48, 32)),
    _c("pillow_optimized_huffman", lambda: pillow(64, 48, optimize=True), reason="huffman",
       reencoded=(64, 48)),
    _c("pyav_optimal_huffman", lambda: pyav(64, 48, "yuvj420p", "optimal"), reason="huffman",
       reencoded=(64, 48)),
    _c("huffman_one_table_altered", lambda: luma_ac_altered(BASE()), reason="huffman",
       decodable=False),
    _c("huffman_selector_above_3", lambda: (lambda d: patch(d, find(d, SOS)[0] + 8, b"\x1f"))(
        BASE()), reason="huffman", decodable=False),
    _c("huffman_undefined_slot_2", lambda: (lambda d: patch(d, find(d, SOS)[0] + 6, b"\x22"))(
        BASE()), reason="huffman", decodable=False),
    _c("size_not_multiple_of_8", lambda: ours(50, 30, "422"), reason="size", reencoded=(48, 32)),
    _c("pillow_odd_705x577", lambda: pillow(705, 577), reason="size", reencoded=(704, 576),
       seed=False),
    _c("oversized_2048x1536", lambda: ours(2048, 1536, "420"), reason="size",
       reencoded=(2040, 1536), seed=False),
    _c("height_zero_dnl", lambda: sof_byte(sof_byte(BASE(), 1, 0), 2, 0), reason="size",
       decodable=False),
    # Malformed: the exact ValueError.
    _c("empty", lambda: b"", error="no SOI marker at offset 0"),
    _c("no_soi", lambda: b"\0" + BASE()[1:], error="no SOI marker at offset 0"),
    _c("truncated_in_dqt", lambda: BASE()[:100],
       error="DQT length runs past the end of the frame at offset 20"),
    _c("truncated_in_marker_length", lambda: BASE()[:23],
       error="DQT length runs past the end of the frame at offset 20"),
    _c("truncated_after_marker_byte", lambda: BASE()[:21],
       error="the frame ends at offset 21 before any SOS marker"),
    _c("huge_app_length", lambda: patch(BASE(), 4, b"\xff\xf0"),
       error="APP0 length runs past the end of the frame at offset 2"),
    _c("length_below_2", lambda: patch(BASE(), 22, b"\x00\x01"),
       error="DQT length 1 is below 2 at offset 20"),
    _c("no_sos", lambda: BASE()[:593], error="the frame ends at offset 593 before any SOS marker"),
    _c("junk_between_segments", lambda: BASE()[:20] + b"\0" + BASE()[20:],
       error="expected a marker at offset 20, found byte 0x00"),
    _c("stuffed_byte_in_headers", lambda: BASE()[:20] + b"\xff\x00" + BASE()[20:],
       error="stuffed 0xFF00 outside the scan at offset 20"),
    _c("second_soi", lambda: BASE()[:20] + SOI + BASE()[20:],
       error="second SOI marker at offset 20"),
    _c("eoi_before_sos", lambda: SOI + EOI, error="EOI marker before any SOS at offset 2"),
    _c("dqt_precision_2", lambda: patch(BASE(), 24, b"\x20"),
       error="DQT table precision 2 is not 0 or 1 at offset 20"),
    _c("dqt_table_id_4", lambda: patch(BASE(), 24, b"\x04"),
       error="DQT table id 4 is above 3 at offset 20"),
    _c("dqt_table_past_segment", lambda: replace(BASE(), DQT, segment(DQT, payload_of(
        BASE(), DQT)[:-1])), error="DQT table 1 runs past the end of its segment at offset 20"),
    _c("dht_class_2", lambda: patch(BASE(), 177, b"\x20"),
       error="DHT table class 2 id 0 is not a valid destination at offset 173"),
    _c("dht_too_many_codes", lambda: replace(BASE(), DHT, segment(DHT, b"\x00" + b"\xff" * 16)),
       error="DHT table has 4080 codes, more than 256, at offset 173"),
    _c("dht_counts_past_segment", lambda: replace(BASE(), DHT, segment(DHT, b"\x00" + bytes(8))),
       error="DHT table counts run past the end of their segment at offset 173"),
    _c("dht_symbols_past_segment", lambda: replace(BASE(), DHT, segment(
        DHT, b"\x00" + jpegenc.DC_LUMA_BITS + b"\x00")),
       error="DHT table symbols run past the end of their segment at offset 173"),
    _c("sof_length_mismatch", lambda: replace(BASE(), SOF0, segment(SOF0, payload_of(
        BASE(), SOF0)[:-1])), error="SOF0 length does not match its 3 components at offset 154"),
    _c("sof_too_short", lambda: replace(BASE(), SOF0, segment(SOF0, b"\x08\x00")),
       error="SOF0 segment is too short at offset 154"),
    _c("sof_no_component", lambda: replace(BASE(), SOF0, segment(SOF0, b"\x08\0\x20\0\x30\0")),
       error="SOF0 declares no component at offset 154"),
    _c("sof_zero_width", lambda: sof_byte(sof_byte(BASE(), 3, 0), 4, 0),
       error="SOF0 width is 0 at offset 154"),
    _c("second_sof", lambda: insert_before(BASE(), DHT, BASE()[154:173]),
       error="second SOF marker (SOF0) at offset 173"),
    _c("sos_before_sof", lambda: replace(BASE(), SOF0, b""),
       error="SOS marker before any SOF at offset 574"),
    _c("dri_length_5", lambda: insert_before(BASE(), SOS, segment(DRI, b"\0\4\0")),
       error="DRI length 5 is not 4 at offset 593"),
    _c("sos_length_mismatch", lambda: patch(BASE(), 596, b"\x0d"),
       error="SOS length does not match its 3 components at offset 593"),
    _c("sos_unknown_component", lambda: patch(BASE(), 598, b"\x09"),
       error="SOS names component 9, which the SOF does not declare, at offset 593"),
    _c("sos_spectral_selection", lambda: patch(BASE(), 604, b"\x01"),
       error="SOS of a sequential frame selects coefficients 1..63 with approximation 0x00 "
       "at offset 593"),
    _c("empty_scan", lambda: BASE()[:_BASE_SCAN] + EOI,
       error="no scan data after the SOS at offset 593"),
    _c("undefined_qtable", lambda: sof_byte(BASE(), 8, 2),
       error="component 1 uses quantization table 2, which no DQT defines"),
)  # fmt: skip

CASES_BY_NAME = {c.name: c for c in CASES}
assert len(CASES_BY_NAME) == len(CASES), "duplicate case names"


def expected_packets(scan_len: int, payload_size: int, restart: bool) -> int:
    """Packet count RFC 2435 framing gives a scan (main, restart, table headers)."""
    head = 8 + (4 if restart else 0)
    first = payload_size - head - 132
    if scan_len <= first:
        return 1
    return 1 + -(-(scan_len - first) // (payload_size - head))


# --------------------------------------------------------------------------------------
# RTP packets


@dataclass(frozen=True)
class MainHeader:
    """Fields of an RFC 2435 main header, and the optional headers that follow it."""

    type_specific: int
    offset: int
    type: int
    q: int
    width8: int
    height8: int
    restart: bytes | None  # the 4-byte restart marker header, types 64-127
    qtable: bytes | None  # the 4-byte quantization table header, Q >= 128 at offset 0
    data_start: int  # where scan data starts in the payload


def main_header(payload: bytes) -> MainHeader:
    """Parse the headers in front of a payload's scan data (no validation)."""
    pos, restart, qtable = 8, None, None
    offset = int.from_bytes(payload[1:4], "big")
    if payload[4] >= 64:
        restart, pos = payload[pos : pos + 4], pos + 4
    if payload[5] >= 128 and offset == 0:
        qtable = payload[pos : pos + 4]
        pos += 4 + int.from_bytes(qtable[2:4], "big")
    return MainHeader(
        payload[0], offset, payload[4], payload[5], payload[6], payload[7], restart, qtable, pos
    )


# --------------------------------------------------------------------------------------
# Pure-Python reference (mirrors ext/rtpjpeg.pyx)

REASONS = (
    "progressive",
    "not_baseline",
    "precision",
    "grayscale",
    "sampling",
    "qtable_16bit",
    "qtable_layout",
    "huffman",
    "size",
)
DROP_REASONS = ("seq_gap", "offset", "too_large", "bad_header", "unsupported_type", "reserved_q")
_STD_HUFF = (
    jpegenc.DC_LUMA_BITS + jpegenc.DC_LUMA_VALS,
    jpegenc.AC_LUMA_BITS + jpegenc.AC_LUMA_VALS,
    jpegenc.DC_CHROMA_BITS + jpegenc.DC_CHROMA_VALS,
    jpegenc.AC_CHROMA_BITS + jpegenc.AC_CHROMA_VALS,
)
_LUMA_K1 = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
_CHROMA_K2 = (17, 18, 24, 47, *([99] * 4), 18, 21, 26, 66, *([99] * 4), 24, 26, 56,
              *([99] * 5), 47, 66, *([99] * 6), *([99] * 32))  # fmt: skip


def rfc_make_tables(q: int) -> bytes:
    """RFC 2435 Appendix A MakeTables, as printed (natural order), then put in zigzag order."""
    factor = min(max(q, 1), 99)
    scale = 5000 // factor if q < 50 else 200 - factor * 2
    luma = [min(max((v * scale + 50) // 100, 1), 255) for v in _LUMA_K1]
    chroma = [min(max((v * scale + 50) // 100, 1), 255) for v in _CHROMA_K2]
    return bytes(luma[i] for i in ZIGZAG) + bytes(chroma[i] for i in ZIGZAG)


def _marker_name(m: int) -> str:
    names = {0xC4: "DHT", 0xCC: "DAC", 0xDA: "SOS", 0xDB: "DQT", 0xDD: "DRI", 0xFE: "COM"}
    if m in names:
        return names[m]
    if 0xC0 <= m <= 0xCF:
        return f"SOF{m - 0xC0}"
    if 0xE0 <= m <= 0xEF:
        return f"APP{m - 0xE0}"
    return f"marker 0xFF{m:02X}"


@dataclass
class RefInfo:
    """What ref_walk returns; the fields of JpegInfo."""

    width: int
    height: int
    rtp_type: int
    restart_interval: int
    qtables: bytes
    scan_offset: int
    scan_end: int
    reason: str | None


def ref_walk(data: bytes) -> RefInfo:
    """walk_jpeg in plain Python."""
    n = len(data)
    qt: dict[int, tuple[int, int]] = {}  # id -> (offset, precision)
    huff: dict[tuple[int, int], int] = {}
    sof = precision = width = height = nf = dri = 0
    comps: list[tuple[int, int, int]] = []
    if n < 2 or data[0] != 0xFF or data[1] != 0xD8:
        raise ValueError("no SOI marker at offset 0")
    i = 2
    while True:
        if i >= n:
            raise ValueError(f"the frame ends at offset {n} before any SOS marker")
        if data[i] != 0xFF:
            raise ValueError(f"expected a marker at offset {i}, found byte 0x{data[i]:02X}")
        j = i + 1
        while j < n and data[j] == 0xFF:
            j += 1
        if j >= n:
            raise ValueError(f"the frame ends at offset {n} before any SOS marker")
        start, m, i = j - 1, data[j], j + 1
        if m == 0x01 or 0xD0 <= m <= 0xD7:
            continue
        if m == 0x00:
            raise ValueError(f"stuffed 0xFF00 outside the scan at offset {start}")
        if m == 0xD8:
            raise ValueError(f"second SOI marker at offset {start}")
        if m == 0xD9:
            raise ValueError(f"EOI marker before any SOS at offset {start}")
        name = _marker_name(m)
        if i + 2 > n:
            raise ValueError(f"{name} length runs past the end of the frame at offset {start}")
        length = (data[i] << 8) | data[i + 1]
        if length < 2:
            raise ValueError(f"{name} length {length} is below 2 at offset {start}")
        if i + length > n:
            raise ValueError(f"{name} length runs past the end of the frame at offset {start}")
        seg_off, seg = i + 2, data[i + 2 : i + length]
        i += length
        if m == DQT:
            k = 0
            while k < len(seg):
                pq, tq = seg[k] >> 4, seg[k] & 15
                if pq > 1:
                    raise ValueError(f"DQT table precision {pq} is not 0 or 1 at offset {start}")
                if tq > 3:
                    raise ValueError(f"DQT table id {tq} is above 3 at offset {start}")
                size = 64 * (pq + 1)
                if k + 1 + size > len(seg):
                    raise ValueError(
                        f"DQT table {tq} runs past the end of its segment at offset {start}"
                    )
                qt[tq] = (seg_off + k + 1, pq)
                k += 1 + size
        elif m == DHT:
            k = 0
            while k < len(seg):
                tc, th = seg[k] >> 4, seg[k] & 15
                if tc > 1 or th > 3:
                    raise ValueError(
                        f"DHT table class {tc} id {th} is not a valid destination at offset {start}"
                    )
                if k + 17 > len(seg):
                    raise ValueError(
                        f"DHT table counts run past the end of their segment at offset {start}"
                    )
                count = sum(seg[k + 1 : k + 17])
                if count > 256:
                    raise ValueError(
                        f"DHT table has {count} codes, more than 256, at offset {start}"
                    )
                if k + 17 + count > len(seg):
                    raise ValueError(
                        f"DHT table symbols run past the end of their segment at offset {start}"
                    )
                table = seg[k + 1 : k + 17 + count]
                huff[tc, th] = (
                    1 + tc
                    if table == _STD_HUFF[tc]
                    else 3 + tc
                    if table == _STD_HUFF[tc + 2]
                    else 5
                )
                k += 17 + count
        elif 0xC0 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC):
            if sof:
                raise ValueError(f"second SOF marker ({name}) at offset {start}")
            if len(seg) < 6:
                raise ValueError(f"{name} segment is too short at offset {start}")
            sof, precision = m, seg[0]
            height, width, nf = (seg[1] << 8) | seg[2], (seg[3] << 8) | seg[4], seg[5]
            if nf == 0:
                raise ValueError(f"{name} declares no component at offset {start}")
            if len(seg) != 6 + 3 * nf:
                raise ValueError(
                    f"{name} length does not match its {nf} components at offset {start}"
                )
            if width == 0:
                raise ValueError(f"{name} width is 0 at offset {start}")
            comps = [(seg[6 + 3 * c], seg[7 + 3 * c], seg[8 + 3 * c]) for c in range(min(nf, 4))]
        elif m == DRI:
            if len(seg) != 2:
                raise ValueError(f"DRI length {length} is not 4 at offset {start}")
            dri = (seg[0] << 8) | seg[1]
        elif m == SOS:
            if not sof:
                raise ValueError(f"SOS marker before any SOF at offset {start}")
            ns = seg[0] if seg else 0
            if ns < 1 or ns > 4 or len(seg) != 4 + 2 * ns:
                raise ValueError(f"SOS length does not match its {ns} components at offset {start}")
            scan = []
            for c in range(ns):
                cs = seg[1 + 2 * c]
                index = next((e for e, comp in enumerate(comps) if comp[0] == cs), -1)
                if index < 0 and nf <= 4:
                    raise ValueError(
                        f"SOS names component {cs}, which the SOF does not declare, "
                        f"at offset {start}"
                    )
                scan.append((index, seg[2 + 2 * c] >> 4, seg[2 + 2 * c] & 15))
            ss, se, ahal = seg[1 + 2 * ns], seg[2 + 2 * ns], seg[3 + 2 * ns]
            if sof in (0xC0, 0xC1) and (ss != 0 or se != 63 or ahal != 0):
                raise ValueError(
                    f"SOS of a sequential frame selects coefficients {ss}..{se} "
                    f"with approximation 0x{ahal:02X} at offset {start}"
                )
            scan_end = n
            if n - i >= 2 and data[n - 2 :] == EOI:
                scan_end = n - 2
            else:
                for k in range(n - 3, max(i, n - 2 - 32) - 1, -1):
                    if data[k] == 0xFF and data[k + 1] == 0xD9:
                        scan_end = k
                        break
            if scan_end <= i:
                raise ValueError(f"no scan data after the SOS at offset {start}")
            break
    reason = _ref_reason(sof, precision, width, height, nf, comps, scan, qt, huff)
    rtp_type = _ref_type(nf, comps, scan, dri)
    qtables = b""
    if reason is None:
        qtables = b"".join(data[qt[comps[c][2]][0] : qt[comps[c][2]][0] + 64] for c in (0, 1))
    return RefInfo(width, height, rtp_type, dri, qtables, i, scan_end, reason)


def _ref_type(
    nf: int, comps: list[tuple[int, int, int]], scan: list[tuple[int, int, int]], dri: int
) -> int:
    if (
        nf != 3
        or len(scan) != 3
        or comps[1][1] != 0x11
        or comps[2][1] != 0x11
        or [s[0] for s in scan] != [0, 1, 2]
        or comps[0][1] not in (0x21, 0x22)
    ):
        return -1
    return (0 if comps[0][1] == 0x21 else 1) + (64 if dri > 0 else 0)


def _ref_reason(
    sof: int,
    precision: int,
    width: int,
    height: int,
    nf: int,
    comps: list[tuple[int, int, int]],
    scan: list[tuple[int, int, int]],
    qt: dict[int, tuple[int, int]],
    huff: dict[tuple[int, int], int],
) -> str | None:
    if sof in (0xC2, 0xC6, 0xCA, 0xCE):
        return "progressive"
    if sof != 0xC0:
        return "not_baseline"
    if precision != 8:
        return "precision"
    if nf == 1:
        return "grayscale"
    if _ref_type(nf, comps, scan, 0) < 0:
        return "sampling"
    for cid, _, tq in comps:
        if tq not in qt:
            raise ValueError(f"component {cid} uses quantization table {tq}, which no DQT defines")
        if qt[tq][1]:
            return "qtable_16bit"
    if comps[1][2] != comps[2][2]:
        return "qtable_layout"

    def ok(tc: int, th: int, role: int) -> bool:
        state = huff.get((tc, th), 0)
        return th == role if state == 0 else state == 1 + tc + 2 * role

    for c, (_, td, ta) in enumerate(scan):
        role = 0 if c == 0 else 1
        if not (ok(0, td, role) and ok(1, ta, role)):
            return "huffman"
    if width % 8 or height % 8 or height == 0 or width > 2040 or height > 2040:
        return "size"
    return None


def ref_packetize(data: bytes, payload_size: int) -> list[bytes]:
    """RtpJpegPacketizer.packetize in plain Python: the payloads, one bytes each."""
    info = ref_walk(data)
    if info.reason is not None:
        raise ValueError(info.reason)
    scan = data[info.scan_offset : info.scan_end]
    head = bytes([0, 0, 0, 0, info.rtp_type, 255, info.width // 8, info.height // 8])
    if info.restart_interval:
        head += struct.pack(">HH", info.restart_interval, 0xFFFF)
    payloads: list[bytes] = []
    off = 0
    while off < len(scan) or not payloads:
        extra = b"\0\0\0\x80" + info.qtables if off == 0 else b""
        room = payload_size - len(head) - len(extra)
        header = head[:1] + off.to_bytes(3, "big") + head[4:]
        payloads.append(header + extra + scan[off : off + room])
        off += room
    return payloads


def rebuild_headers(
    rtp_type: int, width: int, height: int, qtables: bytes, precision: int, dri: int
) -> bytes:
    """SOI to SOS as the depacketizer writes them (RFC 2435 Appendix B, JFIF component ids)."""
    s0 = 128 if precision & 1 else 64
    dqt = bytes([(precision & 1) << 4]) + qtables[:s0]
    dqt += (
        bytes([((precision >> 1) & 1) << 4 | 1]) + qtables[s0 : s0 + (128 if precision & 2 else 64)]
    )
    hv = 0x22 if rtp_type & 63 == 1 else 0x21
    sof = struct.pack(">BHHB", 8, height, width, 3) + bytes([1, hv, 0, 2, 0x11, 1, 3, 0x11, 1])
    dht = b"".join(
        bytes([t]) + table for t, table in zip((0x00, 0x10, 0x01, 0x11), _STD_HUFF, strict=True)
    )
    out = SOI + segment(DQT, dqt) + segment(SOF0, sof) + segment(DHT, dht)
    if dri:
        out += segment(DRI, struct.pack(">H", dri))
    return out + segment(SOS, bytes([3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]))


class RefDepacketizer:
    """RtpJpegDepacketizer in plain Python (same drops, same output)."""

    def __init__(self, max_frame_size: int = 4 << 20) -> None:
        if not 1024 <= max_frame_size <= 1 << 30:
            raise ValueError(f"max_frame_size must be in 1024..{1 << 30}, got {max_frame_size}")
        self.max_frame_size = max_frame_size
        self.frames = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)
        self._qcache: dict[int, tuple[int, bytes]] = {}
        self._state = "idle"
        self._last_seq: int | None = None
        self._skip_ts = self._ts = 0
        self._buf = bytearray()
        self._frame: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)  # type, q, w8, h8, dri
        self._qt, self._prec, self._hdr_len = b"", 0, 0

    @property
    def buffered(self) -> int:
        return len(self._buf) if self._state == "assembling" else 0

    def _fail(self, reason: str, ts: int, marker: bool) -> bytes | None:
        self.dropped[reason] += 1
        self._buf.clear()
        self._state, self._skip_ts = ("idle", 0) if marker else ("skipping", ts)
        return None  # push returns what this returns: no frame

    def push(self, seq: int, ts: int, marker: bool, p: bytes | memoryview) -> bytes | None:
        if self._last_seq is not None and seq == self._last_seq:
            return None
        gap = self._last_seq is not None and seq != (self._last_seq + 1) & 0xFFFF
        self._last_seq = seq
        if self._state == "skipping":
            if ts == self._skip_ts:
                if marker:
                    self._state = "idle"
                return None
            self._state = "idle"
        elif self._state == "assembling":
            if gap:
                self.dropped["seq_gap"] += 1
                self._state = "idle"
                self._buf.clear()
                if ts == self._ts:
                    if not marker:
                        self._state, self._skip_ts = "skipping", ts
                    return None
            elif ts != self._ts:
                self.dropped["offset"] += 1
                self._state = "idle"
                self._buf.clear()
        n = len(p)
        if n < 8:
            return self._fail("bad_header", ts, marker)
        off, type_, q, w8, h8 = int.from_bytes(p[1:4], "big"), p[4], p[5], p[6], p[7]
        pos, dri = 8, 0
        if self._state == "assembling":
            if type_ >= 64:
                if n < pos + 4:
                    return self._fail("bad_header", ts, marker)
                dri, pos = (p[pos] << 8) | p[pos + 1], pos + 4
            if (type_, q, w8, h8, dri) != self._frame:
                return self._fail("bad_header", ts, marker)
            if off != len(self._buf):
                return self._fail("offset", ts, marker)
        else:
            if off != 0:
                return self._fail("seq_gap" if gap else "offset", ts, marker)
            if type_ not in (0, 1, 64, 65):
                return self._fail("unsupported_type", ts, marker)
            if type_ >= 64:
                if n < pos + 4:
                    return self._fail("bad_header", ts, marker)
                dri, pos = (p[pos] << 8) | p[pos + 1], pos + 4
            if w8 == 0 or h8 == 0:
                return self._fail("bad_header", ts, marker)
            if q == 0 or 100 <= q <= 127:
                return self._fail("reserved_q", ts, marker)
            if q < 100:
                qt, prec = rfc_make_tables(q), 0
            else:
                if n < pos + 4:
                    return self._fail("bad_header", ts, marker)
                prec, length = p[pos + 1] & 3, (p[pos + 2] << 8) | p[pos + 3]
                pos += 4
                need = (128 if prec & 1 else 64) + (128 if prec & 2 else 64)
                if length == 0:
                    cached = self._qcache.get(q) if q != 255 else None
                    if cached is None:
                        return self._fail("bad_header", ts, marker)
                    prec, qt = cached
                else:
                    if length < need or n < pos + length:
                        return self._fail("bad_header", ts, marker)
                    qt = bytes(p[pos : pos + need])
                    if q != 255:
                        self._qcache[q] = (prec, qt)
                    pos += length
            self._frame, self._qt, self._prec, self._ts = (type_, q, w8, h8, dri), qt, prec, ts
            self._buf.clear()
            self._hdr_len = len(rebuild_headers(type_, w8 * 8, h8 * 8, qt, prec, dri))
            self._state = "assembling"
        if self._hdr_len + len(self._buf) + (n - pos) + 2 > self.max_frame_size:
            return self._fail("too_large", ts, marker)
        self._buf += p[pos:]
        if not marker:
            return None
        if not self._buf:
            return self._fail("bad_header", ts, marker)
        self._state = "idle"
        self.frames += 1
        type_, _, w8, h8, dri = self._frame
        out = rebuild_headers(type_, w8 * 8, h8 * 8, self._qt, self._prec, dri)
        out += bytes(self._buf) + EOI
        self._buf.clear()
        return out


# --------------------------------------------------------------------------------------
# Fuzz inputs (the format is tests/fuzz/common.py's)


@functools.cache
def stream_cases() -> tuple[StreamCase, ...]:
    """Clean streams and one for every drop path, each followed by a frame that recovers."""
    from gateway._ext.rtpjpeg import RtpJpegPacketizer

    def frames(data: bytes, size: int) -> list[Record]:
        return records(list(RtpJpegPacketizer(size).packetize(data)))

    a = frames(ours(128, 96, "422"), 300)
    b = frames(ours(48, 32, "420", 1), 300)
    c = frames(pyav(64, 48, "yuvj420p"), 400)
    tiny = records(list(RtpJpegPacketizer(200).packetize(synthetic(16, 8, "422", 100))))
    assert len(a) >= 5, "the cases below cut a frame of at least five packets"

    def q(record: Record, value: int, tables: str = "keep") -> Record:
        """Another Q; in the first packet keep the table header, drop it, or empty it."""
        step, new_ts, marker, p = record
        p = p[:5] + bytes([value]) + p[6:]
        if main_header(p).offset == 0 and tables == "drop":
            p = p[:8] + p[8 + 132 :]
        elif main_header(p).offset == 0 and tables == "empty":
            p = p[:8] + b"\0\0\0\0" + p[8 + 132 :]  # length 0: "the tables sent before"
        return step, new_ts, marker, p

    def edit(record: Record, at: int, value: int) -> Record:
        step, new_ts, marker, p = record
        return step, new_ts, marker, p[:at] + bytes([value]) + p[at + 1 :]

    def seq_step(record: Record, step: int) -> Record:
        return step, record[1], record[2], record[3]

    def q128(record: Record) -> Record:
        return q(record, 128)

    def q128_empty(record: Record) -> Record:
        return q(record, 128, "empty")

    def case(
        name: str,
        rs: list[Record],
        frames: int,
        seq0: int = 0,
        limit_kib: int = 64,
        **dropped: int,
    ) -> StreamCase:
        data = encode_packet_stream(rs, seq0=seq0, limit_kib=limit_kib)
        return StreamCase(name, data, frames, dropped)

    return (
        case("clean_three_frames", a + b + c, 3),
        case("wraparound", b + a, 2, seq0=65530),
        case("q50_tables", [q(r, 50, "drop") for r in a] + a, 2),
        case("q128_static_tables_cached", [*map(q128, a), *map(q128_empty, a)], 2),
        case("q128_never_sent", [q(r, 128, "empty") for r in a] + b, 1, bad_header=1),
        case("q255_without_tables", [q(r, 255, "empty") for r in a] + b, 1, bad_header=1),
        case(
            "seq_gap_then_recovery",
            [seq_step(r, 1) if i == 2 else r for i, r in enumerate(a)] + b,
            1,
            seq_gap=1,
        ),
        case(
            "reordered",
            [a[0], seq_step(a[2], 1), seq_step(a[1], 2), seq_step(a[3], 1), *a[4:], *b],
            1,
            seq_gap=1,
        ),
        case("duplicate", [a[0], (3, False, *a[0][2:]), *a[1:], *b], 2),
        case("missing_marker", [(s, t, False, p) for s, t, _, p in a] + b, 1, offset=1),
        case("offset_mismatch", [a[0], edit(a[1], 3, 7), *a[2:], *b], 1, offset=1),
        case("first_packet_lost", a[1:] + b, 1, offset=1),
        case("first_packet_lost_after_gap", [*b, seq_step(a[1], 1), *a[2:], *b], 2, seq_gap=1),
        case("unsupported_type", [edit(r, 4, 5) for r in a] + b, 1, unsupported_type=1),
        case("reserved_q", [edit(r, 5, 100) for r in a] + b, 1, reserved_q=1),
        case("reserved_q_zero", [edit(r, 5, 0) for r in a] + b, 1, reserved_q=1),
        case("truncated_header", [(0, True, False, a[0][3][:6]), *a, *b], 2, bad_header=1),
        case("truncated_restart_header", [(0, True, True, b[0][3][:10]), *b], 1, bad_header=1),
        case("truncated_qtable", [(0, True, True, a[0][3][:100]), *b], 1, bad_header=1),
        case("zero_width", [edit(r, 6, 0) for r in a] + b, 1, bad_header=1),
        case("size_change_mid_frame", [a[0], edit(a[1], 6, 7), *a[2:], *b], 1, bad_header=1),
        case("headers_only_frame", [(0, True, True, a[0][3][: 8 + 132]), *b], 1, bad_header=1),
        case("too_large", a + tiny, 1, limit_kib=1, too_large=1),
    )


def write_corpora() -> None:
    """Rewrite both seed corpora from the case table."""
    walk = {
        # First byte: payload size selector (fuzz_jpeg_walk: 200 + 8 * byte).
        case.name: bytes([(k * 37) % 64]) + case.data()
        for k, case in enumerate(CASES)
        if case.seed and len(case.data()) <= 4096
    }
    seeds.write_corpus(CORPUS_WALK, walk)
    seeds.write_corpus(CORPUS_RTP, {stream.name: stream.data for stream in stream_cases()})


if __name__ == "__main__":
    write_corpora()
    for directory in (CORPUS_WALK, CORPUS_RTP):
        files = list(directory.iterdir())
        print(
            f"{directory.relative_to(ROOT)}: {len(files)} files, "
            f"{sum(f.stat().st_size for f in files)} bytes"
        )
