"""Baseline JPEG entropy coding with the standard Huffman tables (compiled from ext/jpegenc.pyx)."""

import numpy as np
import numpy.typing as npt

DC_LUMA_BITS: bytes
DC_LUMA_VALS: bytes
DC_CHROMA_BITS: bytes
DC_CHROMA_VALS: bytes
AC_LUMA_BITS: bytes
AC_LUMA_VALS: bytes
AC_CHROMA_BITS: bytes
AC_CHROMA_VALS: bytes
MAX_BLOCKS_PER_MCU: int
MAX_RESTART_INTERVAL: int

def encode_intervals(
    coefs: npt.NDArray[np.int16],
    comps: npt.NDArray[np.uint8],
    restart_interval: int = 0,
    first_index: int = 0,
) -> bytes:
    """Encode MCUs as complete restart intervals: stuffed, padded, RSTn between them."""

def encode_bits(
    coefs: npt.NDArray[np.int16],
    comps: npt.NDArray[np.uint8],
    predictors: tuple[int, int, int],
) -> tuple[bytes, int, tuple[int, int, int]]:
    """Encode MCUs from the given DC predictors as unstuffed bits: (data, bit count, predictors)."""

def compose(
    prefix: bytes, tail: bytes, tail_bits: int, head: bytes, head_bits: int, suffix: bytes
) -> bytes:
    """Return prefix + stuffed, 1-padded (tail bits + head bits) + suffix."""

def fdct_quantize(
    blocks: npt.NDArray[np.uint8],
    quant: npt.NDArray[np.uint16],
    out: npt.NDArray[np.int16],
) -> None:
    """Quantized DCT coefficients, zigzag order, of (m, n, 64) blocks into (m, n, 64) out."""
