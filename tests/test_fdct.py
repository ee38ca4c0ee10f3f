"""The emulator's forward DCT and quantizer: exact integers, the same on every machine.

Frame composition joins a band encoded alone with pictures encoded alone and expects
the bits of the whole frame, so a block's coefficients must depend on its samples
only: not on the CPU, the BLAS kernel or the block's place in a batch.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gateway._ext import jpegenc
from gateway.sources.jpeg_encoder import ZIGZAG, quant_tables

LUMA_Q70 = quant_tables(70)[0].astype(np.uint16)


def coefficients(blocks: npt.NDArray[np.uint8], quant: npt.NDArray[np.uint16]) -> np.ndarray:
    """fdct_quantize of (n, 64) blocks, as (n, 64)."""
    out = np.empty((blocks.shape[0], 1, 64), np.int16)
    jpegenc.fdct_quantize(np.ascontiguousarray(blocks).reshape(-1, 1, 64), quant, out)
    return out.reshape(-1, 64)


def reference(blocks: npt.NDArray[np.uint8], quant: npt.NDArray[np.uint16]) -> np.ndarray:
    """T.81 A.3.3's FDCT in float64, then quantization, in zigzag order."""
    u = np.arange(8)[:, None]
    x = np.arange(8)[None, :]
    d = np.cos((2 * x + 1) * u * np.pi / 16) / 2
    d[0] /= np.sqrt(2)
    pixels = blocks.reshape(-1, 8, 8).astype(np.float64) - 128
    coefs = np.einsum("ux,nxy,vy->nuv", d, pixels, d).reshape(-1, 64)
    return np.rint(coefs / quant)[:, ZIGZAG]


def round_half_away(numerator: int, denominator: int) -> int:
    magnitude = (abs(numerator) + denominator // 2) // denominator
    return magnitude if numerator >= 0 else -magnitude


@pytest.mark.parametrize(
    ("quant", "exact_share"),
    [(LUMA_Q70, 0.99), (np.ones(64, np.uint16), 0.9)],
    ids=["q70", "q100"],
)
def test_close_to_the_exact_dct(quant: npt.NDArray[np.uint16], exact_share: float) -> None:
    # islow is an approximation in 13-bit fixed point: at most one step off, and only
    # for coefficients near a rounding boundary (more of them with finer quantizers).
    rng = np.random.default_rng(7)
    blocks = rng.integers(0, 256, (4000, 64), dtype=np.uint8)
    diff = np.abs(coefficients(blocks, quant).astype(np.int32) - reference(blocks, quant))
    assert diff.max() <= 1
    assert (diff == 0).mean() > exact_share


def test_dc_is_exact_for_every_sum_and_quantizer() -> None:
    # The DC term before quantization is 8 * (mean - 128) * 8 = sum - 8192 exactly, so
    # the division by the reciprocal can be checked against integer arithmetic over
    # every block sum 0..16320 and every baseline quantizer.
    sums = np.arange(64 * 255 + 1)
    blocks = np.repeat((sums // 64)[:, None], 64, axis=1)
    blocks += (np.arange(64)[None, :] < (sums % 64)[:, None]).astype(np.int64)
    blocks = blocks.astype(np.uint8)
    assert (blocks.astype(np.int64).sum(axis=1) == sums).all()
    quant = np.ones(64, np.uint16)
    for q in range(1, 256):
        quant[0] = q
        dc = coefficients(blocks, quant)[:, 0]
        expected = [round_half_away(int(s) - 8192, 8 * q) for s in sums]
        assert dc.tolist() == expected, f"quantizer {q}"


def test_flat_blocks_have_no_ac() -> None:
    blocks = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 64, axis=1)
    coefs = coefficients(blocks, LUMA_Q70)
    assert not coefs[:, 1:].any()
    assert coefs[:, 0].tolist() == [round_half_away((v - 128) * 64, 8 * 10) for v in range(256)]


def test_zigzag_order() -> None:
    # A horizontal cosine at frequency 1 lands in zigzag slot 1, a vertical one in slot 2.
    x = np.arange(8)
    wave = np.round(128 + 100 * np.cos((2 * x + 1) * np.pi / 16)).astype(np.uint8)
    horizontal = np.tile(wave, (8, 1)).reshape(1, 64)
    vertical = horizontal.reshape(8, 8).T.reshape(1, 64)
    ones = np.ones(64, np.uint16)
    h = coefficients(horizontal, ones)[0]
    v = coefficients(vertical, ones)[0]
    assert abs(h[1]) > 300 and np.abs(np.delete(h, [0, 1])).max() <= 2
    assert abs(v[2]) > 300 and np.abs(np.delete(v, [0, 2])).max() <= 2


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(np.uint8, st.tuples(st.integers(1, 40), st.just(64))),
    st.data(),
)
def test_a_block_gives_the_same_coefficients_anywhere(
    blocks: npt.NDArray[np.uint8], data: st.DataObject
) -> None:
    quant = data.draw(hnp.arrays(np.uint16, 64, elements=st.integers(1, 255)))
    whole = coefficients(blocks, quant)
    # Alone, one at a time.
    for i in range(blocks.shape[0]):
        assert (coefficients(blocks[i : i + 1], quant) == whole[i]).all()
    # As (m, n) slots of a strided output, the way MCUs hold their components.
    n = blocks.shape[0]
    out = np.zeros((n, 3, 64), np.int16)
    jpegenc.fdct_quantize(blocks.reshape(n, 1, 64), quant, out[:, 1:2])
    assert (out[:, 1] == whole).all()
    assert not out[:, 0].any() and not out[:, 2].any()


def test_rejects_bad_arguments() -> None:
    blocks = np.zeros((2, 1, 64), np.uint8)
    out = np.zeros((2, 1, 64), np.int16)
    with pytest.raises(ValueError, match=r"quantizer 5 is 0, outside 1\.\.255"):
        bad = LUMA_Q70.copy()
        bad[5] = 0
        jpegenc.fdct_quantize(blocks, bad, out)
    with pytest.raises(ValueError, match="quantizer 0 is 256"):
        jpegenc.fdct_quantize(blocks, np.full(64, 256, np.uint16), out)
    with pytest.raises(ValueError, match="quant must hold 64"):
        jpegenc.fdct_quantize(blocks, LUMA_Q70[:63].copy(), out)
    with pytest.raises(ValueError, match="out is 3x1 blocks, blocks are 2x1"):
        jpegenc.fdct_quantize(blocks, LUMA_Q70, np.zeros((3, 1, 64), np.int16))
    with pytest.raises(ValueError, match="must hold 64 values"):
        jpegenc.fdct_quantize(np.zeros((2, 1, 63), np.uint8), LUMA_Q70, out)
    with pytest.raises(ValueError, match="out rows must be contiguous"):
        jpegenc.fdct_quantize(blocks, LUMA_Q70, np.zeros((2, 1, 128), np.int16)[:, :, ::2])


# The whole-frame check in fresh interpreters with OpenBLAS forced onto other kernels
# and thread counts: nothing in the encoder may depend on them.

COMPOSITION_CHECK = textwrap.dedent(
    """
    import ctypes, sys
    import numpy
    from gateway.sources.frames import FrameLoop, encode_jpeg

    def openblas_core():
        libs = [line.split()[-1] for line in open("/proc/self/maps") if "openblas" in line]
        for name in ("scipy_openblas_get_corename64_", "openblas_get_corename64_",
                     "openblas_get_corename"):
            func = getattr(ctypes.CDLL(libs[0]), name, None) if libs else None
            if func is not None:
                func.restype = ctypes.c_char_p
                return func().decode()
        return "unknown"

    cases = [(704, 576, "422", 0), (720, 480, "422", 45), (352, 240, "420", 7),
             (176, 144, "444", 5), (176, 120, "gray", 13), (176, 144, "422", 1000)]
    for width, height, subsampling, dri in cases:
        loop = FrameLoop(camera=1, label="CAM 1", width=width, height=height, fps=5,
                         subsampling=subsampling, restart_interval=dri)
        for index, wallclock in ((0, 1.7e9), (3, 1.7e9 + 1.5)):
            planes = loop.render_planes(index, wallclock)
            whole = encode_jpeg(*planes, quality=70, subsampling=subsampling,
                                restart_interval=dri)
            if loop.frame(index, wallclock) != whole:
                sys.exit(f"{width}x{height} {subsampling} dri={dri} frame {index} differs")
    print(openblas_core())
    """
)


def _core_types() -> list[str]:
    if platform.machine() not in ("x86_64", "AMD64"):
        return [""]
    cores = ["", "Prescott", "Nehalem"]
    with open("/proc/cpuinfo") as cpuinfo:
        avx2 = " avx2" in cpuinfo.read()
    if avx2:
        cores.append("Haswell")
    return cores


@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize("core", _core_types(), ids=lambda core: core or "native")
def test_composition_holds_on_every_blas_kernel(core: str, threads: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
    env["OPENBLAS_NUM_THREADS"] = threads
    if core:
        env["OPENBLAS_CORETYPE"] = core
    result = subprocess.run(
        [sys.executable, "-c", COMPOSITION_CHECK],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr or result.stdout
    if core == "Nehalem" and result.stdout.strip() != "unknown":
        # The override took effect: the check ran on another kernel than the native one.
        assert result.stdout.strip() == "Nehalem"
