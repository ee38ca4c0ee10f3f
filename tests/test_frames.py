"""The emulator's frame synthesizer and its baseline JPEG encoder, judged by FFmpeg (PyAV)."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import av
import av.logging
import numpy as np
import numpy.typing as npt
import pytest

from gateway._ext import jpegenc
from gateway.sources import font
from gateway.sources.frames import FrameLoop, encode_jpeg

SIZES = [
    (704, 576),
    (720, 576),
    (704, 480),
    (720, 480),
    (352, 288),
    (352, 240),
    (176, 144),
    (176, 120),
]
MCU_WIDTH = {"444": 8, "422": 16, "420": 16, "gray": 8}
MCU_HEIGHT = {"444": 8, "422": 8, "420": 16, "gray": 8}
PIX_FMT = {"444": "yuvj444p", "422": "yuvj422p", "420": "yuvj420p", "gray": "gray"}
NOON = time.mktime((2024, 5, 17, 12, 0, 0, 0, 0, -1))  # a local wall-clock second

# ITU T.81 Annex K.3, typed in independently of the encoder.
AC_LUMA_VALS = bytes.fromhex(
    "01020300041105122131410613516107227114328191A108"
    "2342B1C11552D1F02433627282090A161718191A25262728"
    "292A3435363738393A434445464748494A53545556575859"
    "5A636465666768696A737475767778797A83848586878889"
    "8A92939495969798999AA2A3A4A5A6A7A8A9AAB2B3B4B5B6"
    "B7B8B9BAC2C3C4C5C6C7C8C9CAD2D3D4D5D6D7D8D9DAE1E2"
    "E3E4E5E6E7E8E9EAF1F2F3F4F5F6F7F8F9FA"
)
AC_CHROMA_VALS = bytes.fromhex(
    "000102031104052131061241510761711322328108144291"
    "A1B1C109233352F0156272D10A162434E125F11718191A26"
    "2728292A35363738393A434445464748494A535455565758"
    "595A636465666768696A737475767778797A828384858687"
    "88898A92939495969798999AA2A3A4A5A6A7A8A9AAB2B3B4"
    "B5B6B7B8B9BAC2C3C4C5C6C7C8C9CAD2D3D4D5D6D7D8D9DA"
    "E2E3E4E5E6E7E8E9EAF2F3F4F5F6F7F8F9FA"
)
# (Tc << 4 | Th) -> (BITS, HUFFVAL)
ANNEX_K_TABLES = {
    0x00: ([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0], list(range(12))),
    0x01: ([0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0], list(range(12))),
    0x10: ([0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 125], list(AC_LUMA_VALS)),
    0x11: ([0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 119], list(AC_CHROMA_VALS)),
}

ECS = -1  # pseudo marker: entropy-coded data between SOS, RSTn and EOI


# A small JPEG marker walker, independent of the encoder.


def walk(data: bytes) -> list[tuple[int, bytes]]:
    """Segments in order as (marker, payload); entropy-coded data as (ECS, bytes)."""
    assert data[:2] == b"\xff\xd8", "no SOI"
    out: list[tuple[int, bytes]] = [(0xD8, b"")]
    pos = 2
    in_scan = False
    while True:
        if in_scan:
            start = pos
            while True:
                pos = data.index(b"\xff", pos)
                if data[pos + 1] != 0x00:  # stuffed 0xFF 0x00 is data
                    break
                pos += 2
            out.append((ECS, data[start:pos]))
        assert data[pos] == 0xFF, f"no marker at {pos}"
        marker = data[pos + 1]
        if marker == 0xD9:
            out.append((marker, b""))
            assert pos + 2 == len(data), "data after EOI"
            return out
        if 0xD0 <= marker <= 0xD7:
            assert in_scan, "RSTn outside a scan"
            out.append((marker, b""))
            pos += 2
            continue
        assert not in_scan or marker == 0xDA, f"marker {marker:#x} inside the scan"
        (length,) = struct.unpack_from(">H", data, pos + 2)
        out.append((marker, data[pos + 4 : pos + 2 + length]))
        pos += 2 + length
        in_scan = marker == 0xDA


def segment(data: bytes, marker: int) -> bytes:
    """The payload of the one segment with this marker."""
    found = [payload for m, payload in walk(data) if m == marker]
    assert len(found) == 1, f"{len(found)} segments {marker:#x}"
    return found[0]


def huffman_tables(data: bytes) -> dict[int, tuple[list[int], list[int]]]:
    """Every table of every DHT segment, by class and id."""
    tables = {}
    for marker, payload in walk(data):
        if marker != 0xC4:
            continue
        pos = 0
        while pos < len(payload):
            tc_th = payload[pos]
            bits = list(payload[pos + 1 : pos + 17])
            vals = list(payload[pos + 17 : pos + 17 + sum(bits)])
            assert tc_th not in tables, "table defined twice"
            tables[tc_th] = (bits, vals)
            pos += 17 + sum(bits)
    return tables


# Decoding with FFmpeg, warnings included.


def decode(data: bytes) -> av.VideoFrame:
    """Decode one JPEG with FFmpeg's mjpeg decoder; fail on any warning it logs."""
    codec = av.CodecContext.create("mjpeg", "r")
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.VERBOSE)
    try:
        with av.logging.Capture() as logs:
            frames = codec.decode(av.Packet(data))
    finally:
        av.logging.set_level(previous)
    complaints = [log for log in logs if log[0] <= av.logging.WARNING]
    assert not complaints, complaints
    assert len(frames) == 1
    return frames[0]


def planes_of(frame: av.VideoFrame) -> list[npt.NDArray[np.uint8]]:
    """The decoded planes, cropped to their visible size."""
    out = []
    for plane in frame.planes:
        array = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
        out.append(array[: plane.height, : plane.width])
    return out


def psnr(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> float:
    """Peak signal-to-noise ratio in dB."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float(10 * np.log10(255**2 / max(mse, 1e-12)))


def loop(width: int = 352, height: int = 288, **kwargs: Any) -> FrameLoop:
    """A short loop (3 frames at 25 fps) with test defaults."""
    args: dict[str, Any] = {
        "camera": 1,
        "label": "CAM 1",
        "width": width,
        "height": height,
        "fps": 25.0,
        "loop_seconds": 0.12,
    }
    args.update(kwargs)
    return FrameLoop(**args)


def combos() -> Iterator[tuple[int, int, str]]:
    for width, height in SIZES:
        for subsampling in ("422", "420"):
            if height % MCU_HEIGHT[subsampling] == 0:
                yield width, height, subsampling


# Decoding and fidelity.


@pytest.mark.parametrize(("width", "height", "subsampling"), list(combos()))
def test_frames_decode_and_match_rendered_planes(width: int, height: int, subsampling: str) -> None:
    frames = loop(width, height, subsampling=subsampling, quality=90)
    data = frames.frame(1, NOON)
    decoded = decode(data)
    assert (decoded.width, decoded.height) == (width, height)
    assert decoded.format.name == PIX_FMT[subsampling]
    for got, want in zip(planes_of(decoded), frames.render_planes(1, NOON), strict=True):
        assert want is not None
        assert got.shape == want.shape
        assert psnr(got, want) > 35


@pytest.mark.parametrize("subsampling", ["444", "gray"])
def test_other_subsamplings_decode(subsampling: str) -> None:
    frames = loop(subsampling=subsampling, quality=90)
    decoded = decode(frames.frame(0, NOON))
    assert decoded.format.name == PIX_FMT[subsampling]
    rendered = [p for p in frames.render_planes(0, NOON) if p is not None]
    assert len(rendered) == (1 if subsampling == "gray" else 3)
    for got, want in zip(planes_of(decoded), rendered, strict=True):
        assert psnr(got, want) > 35


@pytest.mark.parametrize("subsampling", ["422", "420", "444"])
def test_encode_jpeg_pads_odd_sizes(subsampling: str) -> None:
    rng = np.random.default_rng(7)
    height, width = 37, 51
    y = rng.integers(0, 256, (height, width), dtype=np.uint8)
    ch = {"422": (37, 26), "420": (19, 26), "444": (37, 51)}[subsampling]
    cb = rng.integers(0, 256, ch, dtype=np.uint8)
    cr = rng.integers(0, 256, ch, dtype=np.uint8)
    decoded = decode(encode_jpeg(y, cb, cr, quality=100, subsampling=subsampling))
    assert (decoded.width, decoded.height) == (width, height)
    for got, want in zip(planes_of(decoded), (y, cb, cr), strict=True):
        assert got.shape == want.shape
        assert int(np.abs(got.astype(int) - want).max()) <= 2


# Composition: a composed frame is exactly a whole-frame encode of its planes.


@pytest.mark.parametrize(
    ("width", "height", "subsampling", "restart_interval"),
    [
        (704, 576, "422", 0),
        (704, 576, "422", 44),
        (720, 480, "422", 45),
        (720, 480, "422", 4),
        (352, 240, "420", 0),
        (352, 240, "420", 1),
        (352, 240, "420", 7),
        (176, 144, "444", 5),
        (176, 120, "gray", 13),
        (176, 144, "422", 1000),
        (16, 16, "420", 0),  # the band is the whole frame
        (16, 16, "420", 1),
        (16, 16, "422", 3),
    ],
)
def test_composed_frame_equals_whole_frame_encode(
    width: int, height: int, subsampling: str, restart_interval: int
) -> None:
    frames = loop(width, height, subsampling=subsampling, restart_interval=restart_interval)
    for index, wallclock in ((0, NOON), (2, NOON + 1.5), (4, NOON - 3600)):
        data = frames.frame(index, wallclock)
        planes = frames.render_planes(index, wallclock)
        expected = encode_jpeg(
            *planes, quality=70, subsampling=subsampling, restart_interval=restart_interval
        )
        assert data == expected
    decode(data)


# Structure.


def test_markers_in_order() -> None:
    frames = loop(704, 576)
    data = frames.frame(0, NOON)
    markers = [m for m, _ in walk(data)]
    assert markers == [0xD8, 0xE0, 0xDB, 0xC0, 0xC4, 0xDA, ECS, 0xD9]
    assert segment(data, 0xE0)[:5] == b"JFIF\x00"
    precision, height, width, count = struct.unpack_from(">BHHB", segment(data, 0xC0))
    assert (precision, height, width, count) == (8, 576, 704, 3)
    assert segment(data, 0xC0)[6:] == bytes([1, 0x21, 0, 2, 0x11, 1, 3, 0x11, 1])
    assert segment(data, 0xDA) == bytes([3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0])
    dqt = segment(data, 0xDB)
    assert len(dqt) == 2 * 65 and dqt[0] == 0 and dqt[65] == 1
    # IJG quality 70 scales Annex K by 60%: the luma DC quantizer 16 becomes 10.
    assert dqt[1] == 10 and dqt[66] == 10


def test_420_sampling_factors() -> None:
    data = loop(subsampling="420").frame(0, NOON)
    assert segment(data, 0xC0)[6:] == bytes([1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1])


def test_gray_has_one_component_and_luma_tables() -> None:
    data = loop(subsampling="gray").frame(0, NOON)
    assert segment(data, 0xC0)[5:] == bytes([1, 1, 0x11, 0])
    assert segment(data, 0xDA) == bytes([1, 1, 0x00, 0, 63, 0])
    assert set(huffman_tables(data)) == {0x00, 0x10}
    assert len(segment(data, 0xDB)) == 65


def test_dht_carries_exactly_the_standard_tables() -> None:
    data = loop().frame(0, NOON)
    tables = huffman_tables(data)
    assert tables == {k: (list(b), list(v)) for k, (b, v) in ANNEX_K_TABLES.items()}


def test_dht_matches_ffmpeg_default_tables() -> None:
    # FFmpeg's encoder with huffman=default writes the Annex K tables too.
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = 64, 64, "yuvj422p"
    codec.time_base = Fraction(1, 25)
    codec.options = {"huffman": "default"}
    packets = codec.encode(av.VideoFrame(64, 64, "yuvj422p"))
    assert huffman_tables(loop().frame(0, NOON)) == huffman_tables(bytes(packets[0]))


# Restart intervals.


@pytest.mark.parametrize(
    ("width", "height", "subsampling", "restart_interval"),
    [
        (704, 576, "422", 44),  # one MCU row
        (720, 576, "422", 45),
        (704, 480, "420", 44),
        (352, 288, "422", 1),
        (352, 288, "422", 4),
        (176, 120, "422", 4),
        (176, 144, "420", 3),
    ],
)
def test_restart_markers(width: int, height: int, subsampling: str, restart_interval: int) -> None:
    frames = loop(width, height, subsampling=subsampling, restart_interval=restart_interval)
    data = frames.frame(1, NOON)
    walked = walk(data)
    assert struct.unpack(">H", segment(data, 0xDD)) == (restart_interval,)
    markers = [m for m, _ in walked]
    assert markers.index(0xDD) < markers.index(0xDA)
    mcus = (width // MCU_WIDTH[subsampling]) * (height // MCU_HEIGHT[subsampling])
    rst = [m - 0xD0 for m in markers if 0xD0 <= m <= 0xD7]
    assert len(rst) == -(-mcus // restart_interval) - 1
    assert rst == [i % 8 for i in range(len(rst))]
    # Every interval is non-empty data between markers.
    intervals = [x for r in rst for x in (0xD0 + r, ECS)]
    assert markers[markers.index(0xDA) + 1 :] == [ECS, *intervals, 0xD9]
    # Restart markers change the coding, not the picture.
    plain = loop(width, height, subsampling=subsampling).frame(1, NOON)
    for a, b in zip(planes_of(decode(data)), planes_of(decode(plain)), strict=True):
        assert np.array_equal(a, b)


def test_restart_interval_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"restart_interval must be an integer in 0\.\.65535"):
        loop(restart_interval=65536)
    with pytest.raises(ValueError, match="restart_interval"):
        loop(restart_interval=-1)


# What changes, and when.


def test_band_follows_the_second_and_picture_follows_the_index() -> None:
    frames = loop(704, 576, quality=90)
    band = frames.band_height
    assert 0 < band < 576 and band % 8 == 0
    same = frames.frame(1, NOON + 0.9)
    assert same == frames.frame(1, NOON)
    base = planes_of(decode(frames.frame(1, NOON)))[0]
    later = planes_of(decode(frames.frame(1, NOON + 1)))[0]
    other = planes_of(decode(frames.frame(2, NOON)))[0]
    assert not np.array_equal(base[:band], later[:band])
    assert np.array_equal(base[band:], later[band:])
    assert np.array_equal(base[:band], other[:band])
    assert not np.array_equal(base[band:], other[band:])
    # The clock is white text on black: the band has both.
    assert base[:band].min() < 40 and base[:band].max() > 200


def test_band_shows_the_local_time() -> None:
    frames = loop(704, 576)
    y = frames.render_planes(0, NOON)[0]
    clock = font.render(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(NOON)), 4)
    band = y[: frames.band_height]
    # Find the clock's mask somewhere in the band: text where the mask is set.
    hits = [
        (row, col)
        for row in range(band.shape[0] - clock.shape[0] + 1)
        for col in range(0, band.shape[1] - clock.shape[1] + 1, 2)
        if np.array_equal(band[row : row + clock.shape[0], col : col + clock.shape[1]] > 128, clock)
    ]
    assert len(hits) == 1


def test_loop_frames_differ_and_wrap() -> None:
    frames = loop(352, 288, loop_seconds=0.2)
    assert len(frames) == 5
    pictures = {frames.frame(i, NOON) for i in range(5)}
    assert len(pictures) == 5
    assert frames.frame(7, NOON) == frames.frame(2, NOON)
    assert frames.frame(-1, NOON) == frames.frame(4, NOON)


def test_loop_length() -> None:
    assert len(loop(fps=25.0, loop_seconds=0.01)) == 1
    assert len(loop(fps=7.5, loop_seconds=0.4)) == 3


def test_without_noise_the_picture_is_clean() -> None:
    y = loop(noise=False).render_planes(0, NOON)[0]
    noisy = loop().render_planes(0, NOON)[0]
    assert len(np.unique(y)) < 40 < len(np.unique(noisy))


def test_video_loss_is_a_blue_screen() -> None:
    frames = loop(704, 576, video_loss=True, quality=90)
    assert frames.frame(0, NOON) != frames.frame(0, NOON + 1)  # the clock still runs
    assert frames.frame(0, NOON) == frames.frame(2, NOON)
    y, cb, cr = planes_of(decode(frames.frame(0, NOON)))
    band = frames.band_height
    # Blue: low luma, high Cb, Cr a little under neutral; "VIDEO LOSS" in white mid-screen.
    assert abs(float(np.median(y[band:])) - 22) < 3
    assert float(np.median(cb[band:])) > 210
    assert float(np.median(cr[band:])) < 120
    middle = y[band + (576 - band) // 2 - 10 : band + (576 - band) // 2 + 10]
    assert middle.max() > 200


def test_d1_frames_are_the_size_of_analog_captures() -> None:
    frames = FrameLoop(camera=1, label="CAM 1", width=704, height=576, fps=25.0)
    assert len(frames) == 50
    sizes = [len(frames.frame(i, NOON)) for i in range(len(frames))]
    assert min(sizes) >= 20_000
    assert max(sizes) <= 60_000


def test_caches_stay_bounded() -> None:
    frames = loop()
    for second in range(20):
        for index in range(3):
            frames.frame(index, NOON + second)
    assert len(frames._bands) <= 2
    assert len(frames._recent) <= 4


# Validation.


@pytest.mark.parametrize(
    ("width", "height", "subsampling", "message"),
    [
        (700, 576, "422", r"width 700 is not a multiple of 16, the MCU width of 422"),
        (704, 572, "422", r"height 572 is not a multiple of 8, the MCU height of 422"),
        (176, 120, "420", r"height 120 is not a multiple of 16, the MCU height of 420"),
        (8, 576, "422", r"width must be in 16\.\.4096, got 8"),
        (704, 8, "422", r"height must be in 16\.\.4096, got 8"),
        (4112, 576, "422", r"width must be in 16\.\.4096, got 4112"),
        (704, 4104, "444", r"height must be in 16\.\.4096, got 4104"),
        (704, 576, "411", r"subsampling must be one of 444, 422, 420, gray, got '411'"),
    ],
)
def test_invalid_sizes(width: int, height: int, subsampling: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        loop(width, height, subsampling=subsampling)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quality": 0}, r"quality must be an integer in 1\.\.100, got 0"),
        ({"quality": 101}, r"quality must be an integer in 1\.\.100"),
        ({"fps": 0.0}, "fps must be a positive number"),
        ({"loop_seconds": float("nan")}, "loop_seconds must be a positive number"),
        ({"fps": 60.0, "loop_seconds": 60.0}, "3600 frames, more than 600"),
        ({"camera": -1}, "camera must be an integer >= 0"),
    ],
)
def test_invalid_parameters(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        loop(**kwargs)


def test_invalid_wallclock() -> None:
    with pytest.raises(ValueError, match="wallclock must be a finite number"):
        loop().frame(0, float("inf"))


def test_encode_jpeg_rejects_bad_planes() -> None:
    y = np.zeros((16, 16), np.uint8)
    c = np.zeros((16, 8), np.uint8)
    with pytest.raises(ValueError, match=r"cb is 16x16, expected 8x16 for 16x16 at 422"):
        encode_jpeg(y, y, c, quality=50, subsampling="422")
    with pytest.raises(ValueError, match="subsampling 422 needs cb and cr planes"):
        encode_jpeg(y, None, None, quality=50, subsampling="422")
    with pytest.raises(ValueError, match="subsampling gray takes no cb or cr plane"):
        encode_jpeg(y, c, c, quality=50, subsampling="gray")
    with pytest.raises(ValueError, match="y must be a 2-D uint8 array"):
        encode_jpeg(y.astype(np.int16), c, c, quality=50, subsampling="422")
    with pytest.raises(ValueError, match=r"restart_interval must be in 0\.\.65535"):
        encode_jpeg(y, c, c, quality=50, subsampling="422", restart_interval=70000)


def test_gray_encode_jpeg_round_trip() -> None:
    y = np.tile(np.arange(0, 256, 2, dtype=np.uint8), (24, 1))
    for restart_interval in (0, 1, 5):
        data = encode_jpeg(
            y, None, None, quality=95, subsampling="gray", restart_interval=restart_interval
        )
        (got,) = planes_of(decode(data))
        assert psnr(got, y) > 40, restart_interval


# The compiled entropy coder's own checks.


def test_entropy_coder_rejects_out_of_range_coefficients() -> None:
    comps = np.array([0, 0, 1, 2], np.uint8)
    coefs = np.zeros((8, 64), np.int16)
    coefs[5, 3] = 1024  # AC beyond the baseline range
    with pytest.raises(ValueError, match="MCU 1, block 1"):
        jpegenc.encode_intervals(coefs, comps, 1, 0)
    coefs[5, 3] = 0
    coefs[2, 0] = 2048  # DC difference of 2048
    with pytest.raises(ValueError, match="MCU 0, block 2"):
        jpegenc.encode_bits(coefs, comps, (0, 0, 0))


def test_entropy_coder_rejects_bad_layout() -> None:
    with pytest.raises(ValueError, match="not a whole number of 4-block MCUs"):
        jpegenc.encode_intervals(np.zeros((6, 64), np.int16), np.array([0, 0, 1, 2], np.uint8))
    with pytest.raises(ValueError, match="component index must be 0, 1 or 2"):
        jpegenc.encode_intervals(np.zeros((1, 64), np.int16), np.array([3], np.uint8))
    with pytest.raises(ValueError, match=r"an MCU holds 1\.\.10 blocks"):
        jpegenc.encode_intervals(np.zeros((11, 64), np.int16), np.zeros(11, np.uint8))
    with pytest.raises(ValueError, match="tail_bits 9 does not match 1 bytes"):
        jpegenc.compose(b"", b"\x00", 9, b"", 0, b"")


def test_compose_joins_bits_stuffs_and_pads() -> None:
    # 101 + 11111111 1 -> 10111111 11111111 (1-padded): both bytes 0xFF-stuffed where needed.
    out = jpegenc.compose(b"<", b"\xa0", 3, b"\xff\x80", 9, b">")
    assert out == b"<\xbf\xff\x00>"
    # Empty pieces: prefix and suffix only.
    assert jpegenc.compose(b"ab", b"", 0, b"", 0, b"cd") == b"abcd"
    # Bit-exact against a string model for every alignment.
    rng = np.random.default_rng(3)
    for tail_bits in range(0, 20):
        for head_bits in (0, 1, 7, 8, 9, 63, 64, 65, 200):
            bits = "".join(rng.choice(["0", "1"], tail_bits + head_bits))
            tail, head = bits[:tail_bits], bits[tail_bits:]
            padded = bits + "1" * (-len(bits) % 8)
            want = bytes(int(padded[i : i + 8], 2) for i in range(0, len(padded), 8))
            want = want.replace(b"\xff", b"\xff\x00")

            def pack(s: str) -> bytes:
                s += "0" * (-len(s) % 8)
                return bytes(int(s[i : i + 8], 2) for i in range(0, len(s), 8))

            assert jpegenc.compose(b"", pack(tail), tail_bits, pack(head), head_bits, b"") == want
