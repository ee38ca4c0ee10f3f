"""A small baseline JPEG encoder: numpy for the block layout, Cython for the rest.

Planes go in as JFIF YCbCr (full range, as decoders of yuvj* formats expect), and come
out as baseline sequential JPEG with the Annex K quantization tables scaled the IJG way
and the Annex K Huffman tables. The pieces are public so that `frames.FrameLoop` can
encode parts of a frame separately and join them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .._ext import jpegenc

U8Array = npt.NDArray[np.uint8]

# Natural (row-major) index of each zigzag position, T.81 Figure 5.
ZIGZAG = np.array(
    sorted(
        range(64),
        # Odd anti-diagonals run down-left, even ones up-right.
        key=lambda i: (i // 8 + i % 8, (i // 8) if (i // 8 + i % 8) % 2 else (i % 8)),
    ),
    dtype=np.intp,
)

# T.81 Annex K.1, Tables K.1 and K.2, natural order.
LUMA_QUANT = np.array(
    [
        16, 11, 10, 16, 24, 40, 51, 61,
        12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56,
        14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77,
        24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101,
        72, 92, 95, 98, 112, 100, 103, 99,
    ],
    dtype=np.int32,
)  # fmt: skip
CHROMA_QUANT = np.array(
    [
        17, 18, 24, 47, 99, 99, 99, 99,
        18, 21, 26, 66, 99, 99, 99, 99,
        24, 26, 56, 99, 99, 99, 99, 99,
        47, 66, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
    ],
    dtype=np.int32,
)  # fmt: skip

EOI = b"\xff\xd9"
MAX_DIMENSION = 65535  # SOF0 height and width are 16-bit


@dataclass(frozen=True)
class Sampling:
    """Component layout of one chroma subsampling mode."""

    name: str
    h: int  # luma blocks per MCU, horizontally
    v: int  # and vertically; chroma is one block of each per MCU
    chroma: bool

    @property
    def mcu_width(self) -> int:
        """MCU width in luma pixels."""
        return 8 * self.h

    @property
    def mcu_height(self) -> int:
        """MCU height in luma pixels."""
        return 8 * self.v

    @property
    def comps(self) -> npt.NDArray[np.uint8]:
        """Component index (0 Y, 1 Cb, 2 Cr) of each block of an MCU, in scan order."""
        return np.array([0] * (self.h * self.v) + ([1, 2] if self.chroma else []), np.uint8)

    def chroma_shape(self, height: int, width: int) -> tuple[int, int]:
        """Shape of each chroma plane for a luma plane of (height, width)."""
        return -(-height // self.v), -(-width // self.h)


SAMPLINGS = {
    "444": Sampling("444", 1, 1, True),
    "422": Sampling("422", 2, 1, True),
    "420": Sampling("420", 2, 2, True),
    "gray": Sampling("gray", 1, 1, False),
}


def sampling_for(name: str) -> Sampling:
    """The Sampling called `name` ("422", "420", "444" or "gray")."""
    try:
        return SAMPLINGS[name]
    except KeyError:
        raise ValueError(
            f"subsampling must be one of {', '.join(SAMPLINGS)}, got {name!r}"
        ) from None


def quant_tables(quality: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """Luma and chroma tables (natural order) for an IJG quality 1..100, baseline-clamped."""
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an integer in 1..100, got {quality!r}")
    # IJG jcparam.c jpeg_quality_scaling: 50 is the Annex K table itself.
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    luma = np.clip((LUMA_QUANT * scale + 50) // 100, 1, 255)
    chroma = np.clip((CHROMA_QUANT * scale + 50) // 100, 1, 255)
    return luma.astype(np.int32), chroma.astype(np.int32)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def jpeg_header(
    *,
    width: int,
    height: int,
    sampling: Sampling,
    quality: int,
    restart_interval: int = 0,
) -> bytes:
    """Everything from SOI to the end of SOS, for a baseline frame."""
    luma_q, chroma_q = quant_tables(quality)
    out = bytearray(b"\xff\xd8")
    # JFIF 1.01, aspect ratio 1:1 and no thumbnail.
    out += _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    dqt = b"\x00" + luma_q[ZIGZAG].astype(np.uint8).tobytes()
    if sampling.chroma:
        dqt += b"\x01" + chroma_q[ZIGZAG].astype(np.uint8).tobytes()
    out += _segment(0xDB, dqt)
    # Component ids 1, 2, 3 as JFIF requires; table 0 for Y, 1 for chroma.
    components = [(1, (sampling.h << 4) | sampling.v, 0)]
    if sampling.chroma:
        components += [(2, 0x11, 1), (3, 0x11, 1)]
    sof = struct.pack(">BHHB", 8, height, width, len(components))
    sof += b"".join(bytes(c) for c in components)
    out += _segment(0xC0, sof)
    tables = [
        (0x00, jpegenc.DC_LUMA_BITS, jpegenc.DC_LUMA_VALS),
        (0x10, jpegenc.AC_LUMA_BITS, jpegenc.AC_LUMA_VALS),
    ]
    if sampling.chroma:
        tables += [
            (0x01, jpegenc.DC_CHROMA_BITS, jpegenc.DC_CHROMA_VALS),
            (0x11, jpegenc.AC_CHROMA_BITS, jpegenc.AC_CHROMA_VALS),
        ]
    out += _segment(0xC4, b"".join(bytes([tc]) + bits + vals for tc, bits, vals in tables))
    if restart_interval:
        out += _segment(0xDD, struct.pack(">H", restart_interval))
    sos = bytes([len(components)])
    sos += b"".join(bytes([cid, 0x00 if tq == 0 else 0x11]) for cid, _, tq in components)
    sos += b"\x00\x3f\x00"  # Ss, Se, Ah/Al of a sequential scan
    out += _segment(0xDA, sos)
    return bytes(out)


class BlockCoder:
    """FDCT, quantization and zigzag for whole planes, in exact integer arithmetic.

    A block's coefficients depend on its samples alone (``jpegenc.fdct_quantize``),
    which frame composition relies on: a band encoded alone and the same band inside
    a whole frame must give the same bits on every machine.
    """

    def __init__(self, quality: int, sampling: Sampling) -> None:
        self.sampling = sampling
        self.comps = sampling.comps
        luma_q, chroma_q = quant_tables(quality)
        self._luma = luma_q.astype(np.uint16)
        self._chroma = chroma_q.astype(np.uint16)

    def coefficients(
        self, y: U8Array, cb: U8Array | None = None, cr: U8Array | None = None
    ) -> npt.NDArray[np.int16]:
        """Quantized coefficients (n_blocks, 64), zigzag order, blocks in scan order.

        The luma plane must be a whole number of MCUs; chroma planes exactly its size
        divided by the sampling factors.
        """
        s = self.sampling
        height, width = y.shape
        if height % s.mcu_height or width % s.mcu_width:
            raise ValueError(
                f"plane {width}x{height} is not a whole number of {s.mcu_width}x{s.mcu_height} MCUs"
            )
        rows, cols = height // s.mcu_height, width // s.mcu_width
        n_luma = s.h * s.v
        bpm = n_luma + (2 if s.chroma else 0)
        out = np.empty((rows * cols, bpm, 64), dtype=np.int16)
        # (rows, v, 8, cols, h, 8) -> (rows, cols, v, h, 8, 8): MCU order, then blocks
        # left to right and top to bottom inside the MCU (T.81 A.2.3).
        luma = y.reshape(rows, s.v, 8, cols, s.h, 8).transpose(0, 3, 1, 4, 2, 5)
        luma_blocks = np.ascontiguousarray(luma).reshape(rows * cols, n_luma, 64)
        jpegenc.fdct_quantize(luma_blocks, self._luma, out[:, :n_luma])
        if s.chroma:
            if cb is None or cr is None:
                raise ValueError(f"subsampling {s.name} needs cb and cr planes")
            for index, plane in enumerate((cb, cr)):
                if plane.shape != (rows * 8, cols * 8):
                    raise ValueError(
                        f"chroma plane is {plane.shape[1]}x{plane.shape[0]}, "
                        f"expected {cols * 8}x{rows * 8}"
                    )
                blocks = plane.reshape(rows, 8, cols, 8).transpose(0, 2, 1, 3)
                flat = np.ascontiguousarray(blocks).reshape(rows * cols, 1, 64)
                slot = n_luma + index
                jpegenc.fdct_quantize(flat, self._chroma, out[:, slot : slot + 1])
        return out.reshape(-1, 64)


def _as_plane(name: str, plane: object) -> U8Array:
    array = np.asarray(plane)
    if array.dtype != np.uint8 or array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D uint8 array, got {array.dtype} {array.shape}")
    return array


def _pad(plane: U8Array, height: int, width: int) -> U8Array:
    # Edge replication: the padding costs the fewest bits and never shows.
    if plane.shape == (height, width):
        return plane
    return np.pad(plane, ((0, height - plane.shape[0]), (0, width - plane.shape[1])), "edge")


def encode_jpeg(
    y: U8Array,
    cb: U8Array | None,
    cr: U8Array | None,
    *,
    quality: int,
    subsampling: str,
    restart_interval: int = 0,
) -> bytes:
    """Encode JFIF YCbCr planes (cb, cr None for "gray") as one baseline JPEG."""
    sampling = sampling_for(subsampling)
    luma = _as_plane("y", y)
    height, width = luma.shape
    if not (1 <= height <= MAX_DIMENSION and 1 <= width <= MAX_DIMENSION):
        raise ValueError(f"plane size {width}x{height} is outside 1..{MAX_DIMENSION}")
    if not 0 <= restart_interval <= jpegenc.MAX_RESTART_INTERVAL:
        raise ValueError(
            f"restart_interval must be in 0..{jpegenc.MAX_RESTART_INTERVAL}, got {restart_interval}"
        )
    header = jpeg_header(
        width=width,
        height=height,
        sampling=sampling,
        quality=quality,
        restart_interval=restart_interval,
    )
    padded_h = -(-height // sampling.mcu_height) * sampling.mcu_height
    padded_w = -(-width // sampling.mcu_width) * sampling.mcu_width
    chroma: list[U8Array] = []
    if sampling.chroma:
        if cb is None or cr is None:
            raise ValueError(f"subsampling {subsampling} needs cb and cr planes")
        expected = sampling.chroma_shape(height, width)
        for name, plane in (("cb", cb), ("cr", cr)):
            array = _as_plane(name, plane)
            if array.shape != expected:
                raise ValueError(
                    f"{name} is {array.shape[1]}x{array.shape[0]}, expected "
                    f"{expected[1]}x{expected[0]} for {width}x{height} at {subsampling}"
                )
            chroma.append(_pad(array, padded_h // sampling.v, padded_w // sampling.h))
    elif cb is not None or cr is not None:
        raise ValueError("subsampling gray takes no cb or cr plane")
    coder = BlockCoder(quality, sampling)
    coefs = coder.coefficients(_pad(luma, padded_h, padded_w), *chroma)
    scan = jpegenc.encode_intervals(coefs, coder.comps, restart_interval, 0)
    return header + scan + EOI
