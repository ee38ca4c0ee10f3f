"""RFC 6184 cases shared by the RTP/H.264 tests and the fuzz seeds, and a pure-Python reference.

Three tables, each case with what ext/rtph264.pyx must make of it:

- AU_CASES: hand-built access units (Annex B) and the exact payloads the
  packetizer must cut them into, written from RFC 6184 (single NAL unit
  packet, STAP-A, FU-A), or the exact ValueError;
- SPS_CASES: sequence parameter sets written bit by bit, and what
  ``sps_info`` reads from them (or its exact ValueError);
- stream_cases(): packet streams (the fuzz input format) and how many access
  units the depacketizer returns and drops, by reason.

Run this file to rewrite the fuzz seed corpus after changing a table:

    .venv/bin/python tests/rtp_h264_cases.py

``ref_split_annexb``, ``ref_packetize``, ``RefDepacketizer`` and
``ref_sps_info`` restate ext/rtph264.pyx rule for rule in plain Python:
atheris cannot see inside the compiled module, so the fuzz target instruments
these instead and turns any divergence into a crash.
"""

from __future__ import annotations

import functools
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from tests.fuzz import seeds  # noqa: E402
from tests.fuzz.common import (  # noqa: E402
    BACK,
    DUP,
    GAP,
    Record,
    StreamCase,
    encode_packet_stream,
    records,
)

CORPUS = seeds.CORPUS_ROOT / "rtph264"

START = b"\x00\x00\x00\x01"
DROP_REASONS = ("seq_gap", "fu_no_start", "fu_no_end", "too_large", "unsupported_type", "malformed")
STAP_A, STAP_B, MTAP16, MTAP24, FU_A, FU_B = 24, 25, 26, 27, 28, 29

# Fuzz input modes (first byte modulo 3).
MODE_STREAM, MODE_ROUND_TRIP, MODE_SPS = 0, 1, 2
STREAM_PREFIX = bytes([MODE_STREAM])  # before a packet stream (tests/fuzz/common.py)

# --------------------------------------------------------------------------------------
# Hand-built NAL units


def nal(t: int, size: int, nri: int = 3, seed: int = 0, first_mb: bool = True) -> bytes:
    """A NAL unit of `size` bytes: header, then a body without zero bytes (no start codes).

    For slices (types 1, 2, 5) the first body byte starts with a 1 bit when
    first_mb is set (first_mb_in_slice = 0: the slice opens a picture), else with 01.
    """
    assert size >= 1
    body = bytearray((k * 31 + seed * 7) % 255 + 1 for k in range(size - 1))
    if body:
        body[0] = 0x88 if first_mb else 0x4A
    return bytes([(nri << 5) | t]) + bytes(body)


# A real baseline SPS (libx264, 704x576, level 3.0) and PPS; the SEI is made up.
SPS = bytes.fromhex("6742c01eda02c049a1000003000100000300328f162ea0")
PPS = bytes.fromhex("68ce0fc8")
SEI = nal(6, 40, nri=0, seed=3)
AUD = bytes.fromhex("09f0")
FILLER = bytes.fromhex("0cffffffff80")


def annexb(*nals: bytes, start: bytes = START) -> bytes:
    """An Annex B byte stream: each NAL unit after a start code."""
    return b"".join(start + n for n in nals)


def single(n: bytes) -> list[bytes]:
    """RFC 6184 5.6: a single NAL unit packet is the NAL unit itself."""
    return [n]


def stap(*nals: bytes) -> list[bytes]:
    """RFC 6184 5.7.1: STAP-A header (F: any unit's, NRI: the highest), 16-bit size, unit, ..."""
    f = max(n[0] & 0x80 for n in nals)
    nri = max(n[0] & 0x60 for n in nals)
    return [bytes([f | nri | STAP_A]) + b"".join(struct.pack(">H", len(n)) + n for n in nals)]


def fu(n: bytes, payload_size: int) -> list[bytes]:
    """RFC 6184 5.8: FU-A fragments of payload_size bytes but the last (S first, E last)."""
    body, room, out = n[1:], payload_size - 2, []
    for k in range(0, len(body), room):
        s = 0x80 if k == 0 else 0
        e = 0x40 if k + room >= len(body) else 0
        out.append(bytes([(n[0] & 0xE0) | FU_A, s | e | (n[0] & 0x1F)]) + body[k : k + room])
    return out


@dataclass(frozen=True)
class AuCase:
    """One access unit and the payloads it must become (or the ValueError it must raise)."""

    name: str
    data: bytes
    payloads: tuple[bytes, ...] = ()
    payload_size: int = 1400
    error: str | None = None


def _au(name: str, data: bytes, *groups: list[bytes], payload_size: int = 1400) -> AuCase:
    return AuCase(name, data, tuple(p for g in groups for p in g), payload_size)


def _err(name: str, data: bytes, error: str) -> AuCase:
    return AuCase(name, data, error=error)


IDR_300 = nal(5, 300, seed=1)
IDR_1000 = nal(5, 1000, seed=2)
IDR_5000 = nal(5, 5000, seed=4)
P_3000 = nal(1, 3000, nri=2, seed=5)
B_2000 = nal(1, 2000, nri=0, seed=6)
SLICES = (nal(1, 300, 2, 7), nal(1, 300, 2, 8, False), nal(1, 2000, 2, 9, False),
          nal(1, 200, 2, 10, False))  # fmt: skip

AU_CASES: tuple[AuCase, ...] = (
    _au("single_slice", annexb(nal(5, 500)), single(nal(5, 500))),
    _au("stap_sps_pps", annexb(SPS, PPS), stap(SPS, PPS)),
    _au("stap_sps_pps_sei_idr", annexb(SPS, PPS, SEI, IDR_300), stap(SPS, PPS, SEI, IDR_300)),
    _au("stap_then_fu", annexb(SPS, PPS, SEI, IDR_5000), stap(SPS, PPS, SEI),
        fu(IDR_5000, 1400)),
    _au("fu_nri2_p_slice", annexb(P_3000), fu(P_3000, 1400)),
    _au("fu_nri0_b_slice", annexb(B_2000), fu(B_2000, 1400)),
    _au("aud_and_filler_dropped", annexb(AUD, SPS, PPS, IDR_300, FILLER),
        stap(SPS, PPS, IDR_300)),
    _au("aud_between_fu_and_single", annexb(IDR_5000, AUD, nal(5, 200)), fu(IDR_5000, 1400),
        single(nal(5, 200))),
    _au("exact_payload_size", annexb(nal(5, 1400)), single(nal(5, 1400))),
    _au("one_byte_over_payload_size", annexb(nal(5, 1401)), fu(nal(5, 1401), 1400)),
    _au("stap_exact_fit", annexb(nal(6, 600, 0), nal(5, 795)),
        stap(nal(6, 600, 0), nal(5, 795))),
    _au("stap_one_byte_over", annexb(nal(6, 600, 0), nal(5, 796)), single(nal(6, 600, 0)),
        single(nal(5, 796))),
    _au("mixed_slices", annexb(*SLICES), stap(*SLICES[:2]), fu(SLICES[2], 1400),
        single(SLICES[3])),
    _au("greedy_aggregation", annexb(nal(1, 100), nal(1, 100, seed=1), nal(1, 1300),
        nal(1, 100, seed=2)), stap(nal(1, 100), nal(1, 100, seed=1)), single(nal(1, 1300)),
        single(nal(1, 100, seed=2))),
    _au("min_payload_size", annexb(SPS, PPS, IDR_1000), stap(SPS, PPS), fu(IDR_1000, 200),
        payload_size=200),
    _au("max_payload_size", annexb(SPS, PPS, IDR_5000, P_3000),
        stap(SPS, PPS, IDR_5000, P_3000), payload_size=65000),
    _au("start_codes_3_and_4_bytes",
        b"\0\0" + annexb(SPS, start=b"\0\0\1") + annexb(PPS) + b"\0\0\1" + IDR_300 + b"\0\0\0",
        stap(SPS, PPS, IDR_300)),
    _au("empty_nal_units_skipped", b"\0\0\1\0\0\1" + annexb(SPS) + b"\0\0\0\1\0\0\0\1"
        + annexb(PPS), stap(SPS, PPS)),
    _au("forbidden_bit_propagates", annexb(bytes([0x86]) + SEI[1:], PPS),
        stap(bytes([0x86]) + SEI[1:], PPS)),
    _au("stap_nri_is_the_highest", annexb(nal(6, 50, 0), nal(1, 50, 2), nal(1, 50, 1)),
        stap(nal(6, 50, 0), nal(1, 50, 2), nal(1, 50, 1))),
    _au("one_byte_nal_units", annexb(bytes([0x0B]), bytes([0x0A])),
        stap(bytes([0x0B]), bytes([0x0A]))),
    _err("empty", b"", "no NAL unit to send in the access unit"),
    _err("only_aud_and_filler", annexb(AUD, FILLER), "no NAL unit to send in the access unit"),
    _err("zeros_only", bytes(8), "no start code (00 00 01) in the data"),
    _err("no_start_code", IDR_300, "no start code (00 00 01) in the data"),
    _err("junk_before_start_code", b"\0\x07" + annexb(SPS),
         "byte 0x07 at offset 1 before the first start code"),
    _err("stap_a_inside", annexb(SPS, bytes([0x78]) + SPS),
         "NAL unit type 24 at offset 31 is not an H.264 NAL unit RFC 6184 can carry"),
    _err("fu_a_inside", annexb(bytes([0x7C, 0x85, 1, 2])),
         "NAL unit type 28 at offset 4 is not an H.264 NAL unit RFC 6184 can carry"),
    _err("type_0", annexb(PPS, bytes([0x00, 1, 2])),
         "NAL unit type 0 at offset 12 is not an H.264 NAL unit RFC 6184 can carry"),
    _err("type_31", annexb(bytes([0x1F, 1])),
         "NAL unit type 31 at offset 4 is not an H.264 NAL unit RFC 6184 can carry"),
)  # fmt: skip

AU_CASES_BY_NAME = {c.name: c for c in AU_CASES}

# --------------------------------------------------------------------------------------
# Reference: Annex B and the packetizer


def ref_split_annexb(data: bytes) -> list[bytes]:
    """split_annexb in plain Python (bytes instead of views)."""
    starts, i = [], data.find(b"\0\0\1")
    while i >= 0:
        starts.append(i)
        i = data.find(b"\0\0\1", i + 3)
    if data and not starts:
        raise ValueError("no start code (00 00 01) in the data")
    for k in range(starts[0] if starts else 0):
        if data[k]:
            raise ValueError(f"byte 0x{data[k]:02X} at offset {k} before the first start code")
    out = []
    for k, s in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(data)
        unit = data[s + 3 : end].rstrip(b"\0")
        if unit:
            out.append(unit)
    return out


def _ref_spans(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, NAL unit) pairs, as ref_split_annexb finds them."""
    units, out, pos = ref_split_annexb(data), [], 0
    for unit in units:
        pos = data.index(b"\0\0\1" + unit, pos) + 3
        out.append((pos, unit))
        pos += len(unit)
    return out


def ref_packetize(data: bytes, payload_size: int) -> list[bytes]:
    """RtpH264Packetizer.packetize in plain Python: the payloads, one bytes each."""
    if not 200 <= payload_size <= 65000:
        raise ValueError(f"payload_size must be in 200..65000, got {payload_size}")
    nals = []
    for offset, unit in _ref_spans(data):
        t = unit[0] & 0x1F
        if t in (9, 12):
            continue
        if t == 0 or t >= 24:
            raise ValueError(
                f"NAL unit type {t} at offset {offset} is not an H.264 NAL unit RFC 6184 can carry"
            )
        nals.append(unit)
    if not nals:
        raise ValueError("no NAL unit to send in the access unit")
    out: list[bytes] = []
    i = 0
    while i < len(nals):
        if len(nals[i]) > payload_size:
            out += fu(nals[i], payload_size)
            i += 1
            continue
        size, j = 3 + len(nals[i]), i + 1
        while j < len(nals) and size + 2 + len(nals[j]) <= payload_size:
            size += 2 + len(nals[j])
            j += 1
        out += single(nals[i]) if j == i + 1 else stap(*nals[i:j])
        i = j
    return out


def expected_access_unit(data: bytes) -> bytes:
    """What the depacketizer rebuilds from our packets: 4-byte start codes, no AUD or filler."""
    return b"".join(START + n for n in ref_split_annexb(data) if n[0] & 0x1F not in (9, 12))


# --------------------------------------------------------------------------------------
# Reference: the depacketizer


def _nal_begins_au(t: int, rest: bytes | memoryview) -> bool:
    if 6 <= t <= 9 or 14 <= t <= 18:
        return True
    if t in (1, 2, 5):
        return len(rest) >= 1 and bool(rest[0] & 0x80)
    return False


def begins_access_unit(p: bytes | memoryview) -> bool:
    """Whether a packet can be the first of an access unit (7.4.1.2.3 as the module reads it)."""
    if not p:
        return False
    t = p[0] & 0x1F
    if t == STAP_A:
        if len(p) < 4:
            return False
        size = min((p[1] << 8) | p[2], len(p) - 3)
        return _nal_begins_au(p[3] & 0x1F, p[4 : 3 + size])
    if t == FU_A:
        if len(p) < 2 or not p[1] & 0x80:
            return False
        return _nal_begins_au(p[1] & 0x1F, p[2:])
    return _nal_begins_au(t, p[1:])


class RefDepacketizer:
    """RtpH264Depacketizer in plain Python (same drops, same output)."""

    def __init__(self, max_access_unit: int = 4 << 20) -> None:
        if not 1024 <= max_access_unit <= 1 << 30:
            raise ValueError(f"max_access_unit must be in 1024..{1 << 30}, got {max_access_unit}")
        self.max_access_unit = max_access_unit
        self.frames = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)
        self._state = "idle"
        self._last_seq: int | None = None
        self._ts = self._skip_ts = 0
        self._fu_open = False
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buf) if self._state == "assembling" else 0

    def _fail(self, reason: str, ts: int, marker: bool) -> None:
        self.dropped[reason] += 1
        self._buf.clear()
        self._fu_open = False
        self._state, self._skip_ts = ("idle", self._skip_ts) if marker else ("skipping", ts)

    def _finish(self) -> bytes:
        out = bytes(self._buf)
        self._buf.clear()
        self._state = "idle"
        self.frames += 1
        return out

    def _consume(self, p: bytes | memoryview) -> str | None:
        n, limit = len(p), self.max_access_unit
        if n < 1:
            return "malformed"
        t = p[0] & 0x1F
        if 1 <= t <= 23:
            if self._fu_open:
                return "fu_no_end"
            if len(self._buf) + 4 + n > limit:
                return "too_large"
            self._buf += START + p
            return None
        if t == STAP_A:
            if self._fu_open:
                return "fu_no_end"
            units, pos = [], 1
            while pos < n:
                if pos + 2 > n:
                    return "malformed"
                size = (p[pos] << 8) | p[pos + 1]
                pos += 2
                if size == 0 or size > n - pos:
                    return "malformed"
                if p[pos] & 0x1F == 0 or p[pos] & 0x1F >= 24:
                    return "malformed"
                units.append(p[pos : pos + size])
                pos += size
            if not units:
                return "malformed"
            if len(self._buf) + sum(4 + len(u) for u in units) > limit:
                return "too_large"
            for u in units:
                self._buf += START + u
            return None
        if t == FU_A:
            if n < 2:
                return "malformed"
            ft = p[1] & 0x1F
            if p[1] & 0xC0 == 0xC0 or ft == 0 or ft >= 24:
                return "malformed"
            if p[1] & 0x80:
                if self._fu_open:
                    return "fu_no_end"
                if len(self._buf) + 5 + n - 2 > limit:
                    return "too_large"
                self._buf += START + bytes([(p[0] & 0xE0) | ft])
                self._fu_open = True
            else:
                if not self._fu_open:
                    return "fu_no_start"
                if len(self._buf) + n - 2 > limit:
                    return "too_large"
                if p[1] & 0x40:
                    self._fu_open = False
            self._buf += p[2:]
            return None
        return "unsupported_type"

    def push(self, seq: int, ts: int, marker: bool, p: bytes | memoryview) -> bytes | None:
        if self._last_seq is not None and seq == self._last_seq:
            return None
        gap = self._last_seq is not None and seq != (self._last_seq + 1) & 0xFFFF
        self._last_seq = seq
        out = None
        if self._state == "assembling":
            if ts != self._ts:
                if gap:
                    self.dropped["seq_gap"] += 1
                    self._buf.clear()
                elif self._fu_open:
                    self.dropped["fu_no_end"] += 1
                    self._buf.clear()
                else:
                    out = self._finish()
                self._fu_open = False
                self._state = "idle"
            elif gap:
                self._fail("seq_gap", ts, marker)
                return None
        elif self._state == "skipping":
            if ts == self._skip_ts:
                if marker:
                    self._state = "idle"
                return None
            self._state = "idle"
        if self._state == "idle":
            if gap and not begins_access_unit(p):
                self._fail("seq_gap", ts, marker)
                return out
            self._ts = ts
            self._buf.clear()
            self._fu_open = False
            self._state = "assembling"
        reason = self._consume(p)
        if reason is not None:
            self._fail(reason, ts, marker)
            return out
        if marker and out is None:
            if self._fu_open:
                self._fail("fu_no_end", ts, True)
                return None
            out = self._finish()
        return out


# --------------------------------------------------------------------------------------
# SPS: a bit writer to build them, a reader to restate sps_info


class BitWriter:
    """MSB-first bits, exp-Golomb codes, and the NAL unit with emulation prevention."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, v: int) -> BitWriter:
        self.bits += [(v >> (n - 1 - k)) & 1 for k in range(n)]
        return self

    def ue(self, v: int) -> BitWriter:
        code = v + 1
        n = code.bit_length()
        return self.u(n - 1, 0).u(n, code)

    def se(self, v: int) -> BitWriter:
        return self.ue(2 * v - 1 if v > 0 else -2 * v)

    def rbsp(self, trailing: bool = True) -> bytes:
        bits = self.bits + ([1] if trailing else [])
        bits += [0] * (-len(bits) % 8)
        return bytes(int("".join(map(str, bits[k : k + 8])), 2) for k in range(0, len(bits), 8))

    def nal(self, header: int = 0x67, trailing: bool = True) -> bytes:
        """Header byte and the escaped RBSP (00 00 0x with x <= 3 becomes 00 00 03 0x)."""
        out, zeros = bytearray([header]), 0
        for byte in self.rbsp(trailing):
            if zeros >= 2 and byte <= 3:
                out.append(3)
                zeros = 0
            out.append(byte)
            zeros = zeros + 1 if byte == 0 else 0
        return bytes(out)


HIGH_PROFILES = (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135)


def build_sps(
    profile: int = 66,
    flags: int = 0xC0,
    level: int = 30,
    width_mbs: int = 44,
    height_units: int = 36,
    *,
    sps_id: int = 0,
    chroma: int = 1,
    separate: int = 0,
    scaling: Sequence[Sequence[int] | None] = (),
    poc_type: int = 2,
    poc_cycle: Sequence[int] = (),
    non_ref_offset: int = 0,
    ref_frames: int = 1,
    frame_mbs_only: int = 1,
    crop: tuple[int, int, int, int] | None = None,
    vui: bool = False,
) -> BitWriter:
    """An SPS (7.3.2.1.1) up to frame cropping, each field written as given (valid or not)."""
    w = BitWriter().u(8, profile).u(8, flags).u(8, level).ue(sps_id)
    if profile in HIGH_PROFILES:
        w.ue(chroma)
        if chroma == 3:
            w.u(1, separate)
        w.ue(0).ue(0).u(1, 0).u(1, 1 if scaling else 0)
        if scaling:
            for deltas in scaling:
                w.u(1, deltas is not None)
                for d in deltas or ():
                    w.se(d)
    w.ue(0).ue(poc_type)  # log2_max_frame_num_minus4
    if poc_type == 0:
        w.ue(2)
    elif poc_type == 1:
        w.u(1, 0).se(non_ref_offset).se(0).ue(len(poc_cycle))
        for offset in poc_cycle:
            w.se(offset)
    w.ue(ref_frames).u(1, 0).ue(width_mbs - 1).ue(height_units - 1).u(1, frame_mbs_only)
    if not frame_mbs_only:
        w.u(1, 1)
    w.u(1, 1)  # direct_8x8_inference_flag
    w.u(1, crop is not None)
    for offset in crop or ():
        w.ue(offset)
    w.u(1, 1 if vui else 0)
    if vui:
        w.u(1, 0).u(1, 0).u(1, 0).u(1, 0).u(1, 0).u(1, 0).u(1, 0).u(1, 0).u(1, 0)
    return w


@dataclass(frozen=True)
class SpsCase:
    """An SPS NAL unit and what sps_info reads from it (or its ValueError)."""

    name: str
    data: bytes
    info: tuple[int, int, int, int, int] | None = None
    error: str | None = None


def _flat(n: int, first: int = 0) -> list[int]:
    """Scaling-list deltas: `first`, then zeros (all entries equal)."""
    return [first] + [0] * (n - 1)


# A list that stops early: delta -8 from 8 makes the next scale 0 (use the default list).
_EARLY_END = [-8]

SPS_CASES: tuple[SpsCase, ...] = (
    SpsCase("baseline_d1", build_sps().nal(), (66, 0xC0, 30, 704, 576)),
    SpsCase("x264_baseline_d1", SPS, (66, 0xC0, 30, 704, 576)),
    SpsCase("main_1080p_cropped", build_sps(77, 0x40, 40, 120, 68, crop=(0, 0, 0, 4),
            poc_type=0).nal(), (77, 0x40, 40, 1920, 1080)),
    SpsCase("high_scaling_lists", build_sps(100, 0, 41, 80, 45, scaling=[
            _flat(16, 8), None, _EARLY_END, None, None, _flat(16), _flat(64, -3), None],
            poc_type=0).nal(), (100, 0, 41, 1280, 720)),
    SpsCase("high_422_crop", build_sps(122, 0, 40, 45, 36, chroma=2,
            crop=(1, 3, 2, 2)).nal(), (122, 0, 40, 712, 572)),
    SpsCase("high_444_crop", build_sps(244, 0, 50, 45, 36, chroma=3,
            scaling=[None] * 12, crop=(1, 3, 2, 2)).nal(), (244, 0, 50, 716, 572)),
    SpsCase("high_444_separate_planes", build_sps(244, 0, 50, 45, 36, chroma=3, separate=1,
            crop=(1, 3, 2, 2)).nal(), (244, 0, 50, 716, 572)),
    SpsCase("monochrome", build_sps(100, 0, 30, 20, 15, chroma=0, crop=(0, 1, 0, 1)).nal(),
            (100, 0, 30, 319, 239)),
    SpsCase("interlaced_d1", build_sps(77, 0, 30, 45, 18, frame_mbs_only=0,
            crop=(0, 0, 0, 0)).nal(), (77, 0, 30, 720, 576)),
    SpsCase("interlaced_1080i_cropped", build_sps(100, 0, 40, 120, 34, frame_mbs_only=0,
            crop=(0, 0, 0, 2)).nal(), (100, 0, 40, 1920, 1080)),
    SpsCase("poc_type_1_with_emulation_prevention", build_sps(
            77, 0, 30, 22, 18, poc_type=1, poc_cycle=(2, -2, 5),
            non_ref_offset=-(1 << 23)).nal(), (77, 0, 30, 352, 288)),
    SpsCase("largest_picture", build_sps(100, 0, 62, 1055, 1055).nal(),
            (100, 0, 62, 16880, 16880)),
    SpsCase("with_vui_after", build_sps(vui=True).nal(), (66, 0xC0, 30, 704, 576)),
    SpsCase("constrained_flags_zero_level_zero", build_sps(66, 0, 0, 11, 9).nal(),
            (66, 0, 0, 176, 144)),
    SpsCase("empty", b"", error="empty NAL unit"),
    SpsCase("pps_not_sps", PPS, error="not an SPS: NAL unit type 8"),
    SpsCase("header_only", b"\x67", error="SPS is truncated in profile_idc"),
    SpsCase("truncated_after_level", SPS[:4], error="SPS is truncated in seq_parameter_set_id"),
    SpsCase("truncated_in_cropping", build_sps(crop=(0, 0, 0, 4)).nal(trailing=False)[:-1],
            error="SPS is truncated in frame_crop_bottom_offset"),
    SpsCase("sps_id_32", build_sps(sps_id=32).nal(),
            error="SPS seq_parameter_set_id 32 is above 31"),
    SpsCase("exp_golomb_33_bits", BitWriter().u(24, 0x42C01E).u(33, 0).u(1, 1).nal(),
            error="SPS seq_parameter_set_id has an exp-Golomb code longer than 32 bits"),
    SpsCase("chroma_format_4", build_sps(100, chroma=4).nal(),
            error="SPS chroma_format_idc 4 is above 3"),
    SpsCase("delta_scale_128", build_sps(100, scaling=[[128]]).nal(),
            error="SPS delta_scale 128 is outside -128..127"),
    SpsCase("poc_type_3", build_sps(poc_type=3).nal(), error="SPS pic_order_cnt_type 3 is above 2"),
    SpsCase("poc_cycle_256", build_sps(poc_type=1, poc_cycle=[0] * 256).nal(),
            error="SPS num_ref_frames_in_pic_order_cnt_cycle 256 is above 255"),
    SpsCase("ref_frames_17", build_sps(ref_frames=17).nal(),
            error="SPS max_num_ref_frames 17 is above 16"),
    SpsCase("too_wide", build_sps(width_mbs=1056).nal(),
            error="SPS pic_width_in_mbs_minus1 1055 is above 1054"),
    SpsCase("interlaced_too_tall", build_sps(height_units=528, frame_mbs_only=0).nal(),
            error="SPS frame height of 1056 macroblocks is above 1055"),
    SpsCase("crop_everything", build_sps(width_mbs=2, crop=(8, 8, 0, 0)).nal(),
            error="SPS frame cropping leaves no picture of 32x576"),
)  # fmt: skip

SPS_CASES_BY_NAME = {c.name: c for c in SPS_CASES}


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos, self.nbits = data, 0, 8 * len(data)

    def u(self, n: int, field: str) -> int:
        if self.pos + n > self.nbits:
            raise ValueError(f"SPS is truncated in {field}")
        v = 0
        for _ in range(n):
            v = (v << 1) | ((self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return v

    def ue(self, field: str, limit: int | None = None) -> int:
        zeros = 0
        while True:
            if self.pos >= self.nbits:
                raise ValueError(f"SPS is truncated in {field}")
            bit = (self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1
            self.pos += 1
            if bit:
                break
            zeros += 1
            if zeros > 31:
                raise ValueError(f"SPS {field} has an exp-Golomb code longer than 32 bits")
        v = (1 << zeros) - 1 + self.u(zeros, field)
        if limit is not None and v > limit:
            raise ValueError(f"SPS {field} {v} is above {limit}")
        return v

    def se(self, field: str) -> int:
        k = self.ue(field)
        return (k + 1) // 2 if k & 1 else -(k // 2)


def unescape(nal_payload: bytes) -> bytes:
    """The RBSP of a NAL unit payload: emulation prevention bytes removed."""
    out, zeros = bytearray(), 0
    for byte in nal_payload:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def ref_sps_info(sps: bytes) -> tuple[int, int, int, int, int]:
    """sps_info in plain Python."""
    if not sps:
        raise ValueError("empty NAL unit")
    if sps[0] & 0x1F != 7:
        raise ValueError(f"not an SPS: NAL unit type {sps[0] & 0x1F}")
    b = _Bits(unescape(sps[1:]))
    profile, flags, level = b.u(8, "profile_idc"), b.u(8, "constraint flags"), b.u(8, "level_idc")
    b.ue("seq_parameter_set_id", 31)
    chroma, separate = 1, 0
    if profile in HIGH_PROFILES:
        chroma = b.ue("chroma_format_idc", 3)
        if chroma == 3:
            separate = b.u(1, "separate_colour_plane_flag")
        b.ue("bit_depth_luma_minus8", 6)
        b.ue("bit_depth_chroma_minus8", 6)
        b.u(1, "qpprime_y_zero_transform_bypass_flag")
        if b.u(1, "seq_scaling_matrix_present_flag"):
            for i in range(8 if chroma != 3 else 12):
                if not b.u(1, "seq_scaling_list_present_flag"):
                    continue
                last = nxt = 8
                for _ in range(16 if i < 6 else 64):
                    if nxt:
                        delta = b.se("delta_scale")
                        if not -128 <= delta <= 127:
                            raise ValueError(f"SPS delta_scale {delta} is outside -128..127")
                        nxt = (last + delta + 256) % 256
                    if nxt:
                        last = nxt
    b.ue("log2_max_frame_num_minus4", 12)
    poc_type = b.ue("pic_order_cnt_type", 2)
    if poc_type == 0:
        b.ue("log2_max_pic_order_cnt_lsb_minus4", 12)
    elif poc_type == 1:
        b.u(1, "delta_pic_order_always_zero_flag")
        b.se("offset_for_non_ref_pic")
        b.se("offset_for_top_to_bottom_field")
        for _ in range(b.ue("num_ref_frames_in_pic_order_cnt_cycle", 255)):
            b.se("offset_for_ref_frame")
    b.ue("max_num_ref_frames", 16)
    b.u(1, "gaps_in_frame_num_value_allowed_flag")
    w_mbs = b.ue("pic_width_in_mbs_minus1", 1054) + 1
    h_units = b.ue("pic_height_in_map_units_minus1", 1054) + 1
    frame_mbs_only = b.u(1, "frame_mbs_only_flag")
    h_mbs = (2 - frame_mbs_only) * h_units
    if h_mbs > 1055:
        raise ValueError(f"SPS frame height of {h_mbs} macroblocks is above 1055")
    if not frame_mbs_only:
        b.u(1, "mb_adaptive_frame_field_flag")
    b.u(1, "direct_8x8_inference_flag")
    left = right = top = bottom = 0
    if b.u(1, "frame_cropping_flag"):
        left = b.ue("frame_crop_left_offset")
        right = b.ue("frame_crop_right_offset")
        top = b.ue("frame_crop_top_offset")
        bottom = b.ue("frame_crop_bottom_offset")
    if separate or chroma == 0:
        unit_x, unit_y = 1, 2 - frame_mbs_only
    else:
        unit_x = 1 if chroma == 3 else 2
        unit_y = (2 if chroma == 1 else 1) * (2 - frame_mbs_only)
    width = 16 * w_mbs - unit_x * (left + right)
    height = 16 * h_mbs - unit_y * (top + bottom)
    if width <= 0 or height <= 0:
        raise ValueError(f"SPS frame cropping leaves no picture of {16 * w_mbs}x{16 * h_mbs}")
    return profile, flags, level, width, height


def ref_profile_level_id(sps: bytes) -> str:
    """profile_level_id in plain Python."""
    if not sps:
        raise ValueError("empty NAL unit")
    if sps[0] & 0x1F != 7:
        raise ValueError(f"not an SPS: NAL unit type {sps[0] & 0x1F}")
    b = _Bits(unescape(sps[1:]))
    return "".join(
        f"{b.u(8, field):02x}" for field in ("profile_idc", "constraint flags", "level_idc")
    )


# --------------------------------------------------------------------------------------
# Fuzz inputs (the packet stream format is tests/fuzz/common.py's)


def round_trip_input(case: AuCase) -> bytes:
    """Fuzz input for the round trip: mode, payload size selector, the access unit."""
    return bytes([MODE_ROUND_TRIP, (case.payload_size - 200) // 16 % 256]) + case.data


def round_trip_payload_size(selector: int) -> int:
    """The payload size a round-trip fuzz input selects: 200..4280 in steps of 16."""
    return 200 + 16 * selector


@functools.cache
def stream_cases() -> tuple[StreamCase, ...]:
    """Clean streams and one for every drop path, each followed by an access unit that recovers."""
    case = AU_CASES_BY_NAME
    a = records(case["stap_then_fu"].payloads)  # STAP-A (SPS, PPS, SEI), 4 FU-As
    b = records(case["mixed_slices"].payloads)  # STAP-A, 2 FU-As, single
    c = records(case["single_slice"].payloads)
    big = records(case["fu_nri2_p_slice"].payloads)
    assert len(a) == 5 and len(b) == 4 and len(c) == 1

    def step(record: Record, value: int) -> Record:
        return value, record[1], record[2], record[3]

    def mark(record: Record, marker: bool) -> Record:
        return record[0], record[1], marker, record[3]

    def raw(payload: bytes, new_ts: bool = True, marker: bool = True) -> Record:
        return 0, new_ts, marker, payload

    def unmarked(rs: list[Record]) -> list[Record]:
        return [mark(r, False) for r in rs]

    def sc(name: str, rs: list[Record], frames: int, seq0: int = 0, limit_kib: int = 64,
           **dropped: int) -> StreamCase:  # fmt: skip
        data = encode_packet_stream(rs, seq0=seq0, limit_kib=limit_kib, prefix=STREAM_PREFIX)
        return StreamCase(name, data, frames, dropped)

    fu_start = a[1][3]
    headless = (GAP, True, False, b[1][3])  # b without its first packet, after a gap
    slice_p = nal(1, 80, 2, 11)
    return (
        sc("clean_three", a + b + c, 3),
        sc("wraparound", b + a + c, 3, seq0=65532),
        sc("duplicate_ignored", [a[0], (DUP, False, False, a[0][3]), *a[1:], *c], 2),
        sc("unmarked_sender", unmarked(a) + unmarked(b) + unmarked(c) + c, 3),
        sc("marker_with_new_ts_completes_later", unmarked(a) + c + b, 3),
        sc("gap_in_fu", [*a[:2], step(a[3], GAP), a[4], *b], 1, seq_gap=1),
        sc("gap_before_fu_end_marked", [*a[:3], step(a[4], GAP), *c], 1, seq_gap=1),
        sc(
            "reordered",
            [a[0], a[1], step(a[3], GAP), step(a[2], BACK), step(a[4], GAP), *c],
            1,
            seq_gap=1,
        ),
        sc("gap_between_access_units", [*a, step(b[0], GAP), *b[1:], *c], 3),
        sc("gap_ate_the_head", [*a, headless, *b[2:], *c], 2, seq_gap=1),
        sc(
            "gap_then_new_ts_while_open",
            [*unmarked(a[:3]), step(b[0], GAP), *b[1:], *c],
            2,
            seq_gap=1,
        ),
        sc("gap_then_new_ts_headless", [*unmarked(a[:3]), headless, *b[2:], *c], 1, seq_gap=2),
        sc(
            "gap_while_skipping",
            [raw(b"\x19\x00", marker=False), headless, *b[2:], *c],
            1,
            unsupported_type=1,
            seq_gap=1,
        ),
        sc("gap_before_sps", [*c, step(a[0], GAP), *a[1:]], 2),
        sc("first_packet_mid_fu", a[2:] + c, 1, fu_no_start=1),
        sc(
            "fu_cut_by_single", [a[0], a[1], raw(slice_p, False, False), *a[2:], *c], 1, fu_no_end=1
        ),
        sc("fu_cut_by_stap", [a[0], a[1], raw(a[0][3], False), *c], 1, fu_no_end=1),
        sc(
            "fu_cut_by_new_start",
            [a[0], a[1], raw(fu_start, False, False), *a[2:], *c],
            1,
            fu_no_end=1,
        ),
        sc("fu_cut_by_marker", [*a[:3], mark(a[3], True), *c], 1, fu_no_end=1),
        sc("fu_cut_by_new_ts", [*a[:3], *b, *c], 2, fu_no_end=1),
        sc("too_large", big + c, 1, limit_kib=2, too_large=1),
        sc(
            "too_large_stap",
            [raw(stap(nal(1, 700, seed=1), nal(1, 700, seed=2))[0]), *c],
            1,
            limit_kib=1,
            too_large=1,
        ),
        sc("too_large_single", [raw(nal(5, 1021)), *c], 1, limit_kib=1, too_large=1),
        sc("fits_exactly", [raw(nal(5, 1020)), *c], 2, limit_kib=1),
        sc("stap_b", [raw(b"\x19\x00\x01\x00\x02\x65\x88"), *c], 1, unsupported_type=1),
        sc("mtap16", [raw(b"\x1a\x00\x01" + bytes(8)), *c], 1, unsupported_type=1),
        sc("mtap24", [raw(b"\x1b\x00\x01" + bytes(8)), *c], 1, unsupported_type=1),
        sc("fu_b", [raw(b"\x3d\x85\x00\x01\x88"), *c], 1, unsupported_type=1),
        sc(
            "reserved_0_30_31",
            [raw(b"\x00\x01"), raw(b"\x1e\x01"), raw(b"\x1f\x01"), *c],
            1,
            unsupported_type=3,
        ),
        sc(
            "unsupported_mid_access_unit",
            [a[0], raw(b"\x19\x00", False, False), *a[1:], *c],
            1,
            unsupported_type=1,
        ),
        sc("empty_payload", [raw(b""), *c], 1, malformed=1),
        sc("stap_header_only", [raw(b"\x78"), *c], 1, malformed=1),
        sc("stap_truncated_size", [raw(a[0][3] + b"\x00"), *c], 1, malformed=1),
        sc("stap_size_past_end", [raw(a[0][3][:-1]), *c], 1, malformed=1),
        sc("stap_zero_size", [raw(b"\x78\x00\x00\x00\x02\x09\xf0"), *c], 1, malformed=1),
        sc("stap_nested_fu", [raw(b"\x78\x00\x03\x7c\x85\x88"), *c], 1, malformed=1),
        sc("fu_one_byte", [raw(b"\x7c"), *c], 1, malformed=1),
        sc("fu_start_and_end", [raw(b"\x7c\xc5\x88"), *c], 1, malformed=1),
        sc("fu_type_24", [raw(b"\x7c\x98\x88"), *c], 1, malformed=1),
        sc(
            "fu_empty_fragments",
            [
                raw(b"\x7c\x85", marker=False),
                raw(b"\x7c\x05", False, False),
                raw(b"\x7c\x45\x88", False),
                *c,
            ],
            2,
        ),
        sc(
            "bad_packet_then_rest_skipped",
            [raw(b"", marker=False), *[(0, False, m, p) for _, _, m, p in b], *c],
            1,
            malformed=1,
        ),
    )


def corpus_files() -> dict[str, bytes]:
    """The seed corpus the three tables make: file name -> fuzz input."""
    files = {f"au_{c.name}": round_trip_input(c) for c in AU_CASES if len(c.data) <= 8192}
    files |= {f"sps_{c.name}": bytes([MODE_SPS]) + c.data for c in SPS_CASES}
    files |= {f"stream_{s.name}": s.data for s in stream_cases()}
    return files


def write_corpus() -> None:
    """Rewrite the seed corpus from the three tables."""
    seeds.write_corpus(CORPUS, corpus_files())


if __name__ == "__main__":
    write_corpus()
    entries = list(CORPUS.iterdir())
    print(
        f"{CORPUS.relative_to(ROOT)}: {len(entries)} files, "
        f"{sum(f.stat().st_size for f in entries)} bytes"
    )


# --------------------------------------------------------------------------------------
# Real access units from libx264


@functools.cache
def x264_access_units(
    width: int = 704,
    height: int = 576,
    frames: int = 50,
    profile: str = "baseline",
    *,
    level: str | None = None,
    pix_fmt: str = "yuv420p",
    params: str = "",
    seed: int = 0,
) -> tuple[bytes, ...]:
    """Annex B access units from libx264 through PyAV (superfast, zerolatency, headers repeated).

    The picture is a gradient with moving bands and mild noise: enough detail for
    IDR slices of tens of kilobytes at D1, cheap to make.
    """
    from fractions import Fraction

    import av
    import numpy as np

    enc = av.CodecContext.create("libx264", "w")
    assert isinstance(enc, av.VideoCodecContext)
    enc.width, enc.height, enc.pix_fmt = width, height, pix_fmt
    enc.time_base = Fraction(1, 25)
    enc.framerate = Fraction(25, 1)
    # One thread and a fixed slice count: zerolatency otherwise cuts a slice per thread,
    # and the stream would depend on how many CPUs the machine has.
    enc.thread_count = 1
    x264 = ["repeat-headers=1", "slices=2", *([f"level={level}"] if level else [])]
    x264 += params.split(":")
    enc.options = {"preset": "superfast", "tune": "zerolatency", "profile": profile,
                   "x264-params": ":".join(filter(None, x264))}  # fmt: skip
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    noise = rng.integers(0, 24, (height, width, 3), dtype=np.uint8)
    out: list[bytes] = []
    for i in range(frames):
        rgb = np.stack([(xx + 5 * i) % 256, (yy + 3 * i) % 256, ((xx ^ yy) + i) % 256], axis=-1)
        picture = (rgb.astype(np.uint8) // 2 + np.roll(noise, i, axis=1)).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format=pix_fmt)
        frame.pts = i
        out += [bytes(p) for p in enc.encode(frame)]
    out += [bytes(p) for p in enc.encode(None)]
    return tuple(out)
