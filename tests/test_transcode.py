"""Transcoder: JPEG frames of the emulator to Constrained Baseline H.264, checked bit by bit."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from dataclasses import dataclass

import av
import pytest
from av.codec.context import CodecContext
from av.video.codeccontext import VideoCodecContext

from gateway.media.unit import Unit
from gateway.sources.frames import FrameLoop
from gateway.transcode.encoder import (
    Encoded,
    H264Encoder,
    annexb,
    h264_level,
    level_name,
    split_nals,
)
from gateway.transcode.settings import TranscodeSettings
from gateway.transcode.worker import Histogram, Transcoder

TICKS = 3600  # 90 kHz ticks per frame at 25 fps
T0 = 1_700_000_000.0


@functools.cache
def frame_loop(width: int = 704, height: int = 576, seconds: float = 2.0) -> FrameLoop:
    return FrameLoop(camera=1, label="x", width=width, height=height, fps=25, loop_seconds=seconds)


def jpegs(count: int, width: int = 704, height: int = 576, seconds: float = 2.0) -> list[bytes]:
    """The emulator's frames, as a camera would send them at 25 fps."""
    loop = frame_loop(width, height, seconds)
    return [loop.frame(i, T0 + i / 25) for i in range(count)]


def encode_all(
    settings: TranscodeSettings, frames: list[bytes], fps: float = 25.0, **force: bool
) -> tuple[H264Encoder, list[Encoded]]:
    encoder = H264Encoder(settings, fps)
    out: list[Encoded] = []
    for i, jpeg in enumerate(frames):
        out += encoder.encode(jpeg, i * TICKS, force_idr=force.get(f"idr{i}", False))
    out += encoder.flush()
    return encoder, out


# -- H.264 bitstream reading -------------------------------------------------


class Bits:
    """MSB-first bit reader over an RBSP, with Exp-Golomb codes."""

    def __init__(self, nal: bytes) -> None:
        self.data = nal.replace(b"\x00\x00\x03", b"\x00\x00")  # emulation prevention
        self.pos = 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


@dataclass
class Sps:
    profile_idc: int
    constraints: int  # constraint_set0..5 flags, set0 in the MSB
    level_idc: int
    width: int
    height: int
    max_num_ref_frames: int

    @property
    def profile_level_id(self) -> str:
        return f"{self.profile_idc:02x}{self.constraints:02x}{self.level_idc:02x}"


def parse_sps(nal: bytes) -> Sps:
    assert nal[0] & 0x1F == 7
    bits = Bits(nal[1:])
    profile_idc, constraints, level_idc = bits.u(8), bits.u(8), bits.u(8)
    bits.ue()  # seq_parameter_set_id
    assert profile_idc in (66, 77, 88), "high profiles carry chroma fields not parsed here"
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()
    elif poc_type == 1:
        bits.u(1)
        bits.se()
        bits.se()
        for _ in range(bits.ue()):
            bits.se()
    refs = bits.ue()
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_units = bits.ue() + 1
    frame_mbs_only = bits.u(1)
    if not frame_mbs_only:
        bits.u(1)
    bits.u(1)  # direct_8x8_inference_flag
    crop = [0, 0, 0, 0]
    if bits.u(1):
        crop = [bits.ue() for _ in range(4)]
    height_mbs = height_units * (2 - frame_mbs_only)
    width = width_mbs * 16 - 2 * (crop[0] + crop[1])
    height = height_mbs * 16 - 2 * (2 - frame_mbs_only) * (crop[2] + crop[3])
    return Sps(profile_idc, constraints, level_idc, width, height, refs)


def slice_type(nal: bytes) -> int:
    """slice_type % 5 of a coded slice: 0 P, 1 B, 2 I."""
    bits = Bits(nal[1:])
    bits.ue()  # first_mb_in_slice
    return bits.ue() % 5


def nal_types(data: bytes) -> list[int]:
    return [nal[0] & 0x1F for nal in split_nals(data)]


def sps_of(item: Encoded) -> Sps:
    (sps,) = [nal for nal in split_nals(item.data) if nal[0] & 0x1F == 7]
    return parse_sps(sps)


def decode_h264(units: list[Encoded]) -> list[av.VideoFrame]:
    decoder = CodecContext.create("h264", "r")
    assert isinstance(decoder, VideoCodecContext)
    decoder.thread_count = 1
    frames: list[av.VideoFrame] = []
    for unit in units:
        packet = av.Packet(unit.data)
        packet.pts = unit.pts
        frames += decoder.decode(packet)
    frames += decoder.decode(None)
    return frames


def keyframe_indexes(out: list[Encoded]) -> list[int]:
    return [i for i, item in enumerate(out) if item.keyframe]


# -- encoder -----------------------------------------------------------------


def test_d1_decodes_at_source_size_constrained_baseline() -> None:
    frames = jpegs(60)
    encoder, out = encode_all(TranscodeSettings(), frames)
    assert encoder.name == "libx264" and encoder.fallback_reason is None
    assert (encoder.width, encoder.height) == (704, 576)
    assert len(out) == 60
    # Annex B with 4-byte start codes only.
    for item in out:
        assert item.data.startswith(b"\x00\x00\x00\x01")
        assert annexb(split_nals(item.data)) == item.data
    decoded = decode_h264(out)
    assert len(decoded) == 60
    assert {(f.width, f.height) for f in decoded} == {(704, 576)}
    # Constrained Baseline: profile_idc 66 with constraint_set0 and constraint_set1.
    sps = sps_of(out[0])
    assert sps.profile_idc == 66
    assert sps.constraints & 0x40, "constraint_set1"
    assert sps.level_idc == 30
    assert (sps.width, sps.height) == (704, 576)
    assert sps.profile_level_id == "42c01e"
    assert encoder.sps is not None and parse_sps(encoder.sps) == sps
    assert encoder.pps is not None and encoder.pps[0] & 0x1F == 8


def test_no_b_frames_output_in_input_order() -> None:
    _, out = encode_all(TranscodeSettings(), jpegs(30))
    assert [item.pts for item in out] == [i * TICKS for i in range(30)]
    for item in out:
        slices = [nal for nal in split_nals(item.data) if nal[0] & 0x1F in (1, 5)]
        assert len(slices) >= 1
        assert all(slice_type(nal) != 1 for nal in slices)
    decoded = decode_h264(out)
    assert [f.pts for f in decoded] == [item.pts for item in out]


def test_every_idr_has_sps_and_pps_and_gop_is_two_seconds() -> None:
    _, out = encode_all(TranscodeSettings(), jpegs(120))
    assert keyframe_indexes(out) == [0, 50, 100]
    for item in out:
        kinds = nal_types(item.data)
        assert item.keyframe == (5 in kinds)
        if item.keyframe:
            # SPS, then PPS, then the IDR slice, all in this access unit.
            assert kinds.index(7) < kinds.index(8) < kinds.index(5)
        else:
            assert 7 not in kinds and 8 not in kinds


def test_gop_follows_fps_hint() -> None:
    settings = TranscodeSettings(gop_seconds=1.0, scale=(176, 144))
    _, out = encode_all(settings, jpegs(25), fps=10)
    assert keyframe_indexes(out) == [0, 10, 20]


def test_force_idr_at_that_frame() -> None:
    settings = TranscodeSettings(scale=(352, 288))
    _, out = encode_all(settings, jpegs(40), idr13=True, idr14=True)
    assert keyframe_indexes(out) == [0, 13, 14]
    assert nal_types(out[13].data)[:2] == [7, 8]
    assert slice_type(next(n for n in split_nals(out[15].data) if n[0] & 0x1F == 1)) == 0


@pytest.mark.parametrize(
    ("width", "height", "fps", "level_idc"),
    [(704, 576, 25, 30), (352, 288, 25, 13), (1280, 720, 30, 31)],
)
def test_level_in_sps(width: int, height: int, fps: float, level_idc: int) -> None:
    assert h264_level(width, height, fps) == level_idc
    encoder, out = encode_all(TranscodeSettings(), jpegs(3, width, height, 0.2), fps=fps)
    assert encoder.level_idc == level_idc
    sps = sps_of(out[0])
    assert (sps.profile_idc, sps.level_idc) == (66, level_idc)
    assert (sps.width, sps.height) == (width, height)


def test_level_table() -> None:
    assert h264_level(176, 144, 15) == 10
    assert h264_level(320, 240, 30) == 13  # 300 MBs: within MaxFS 396
    assert h264_level(640, 480, 30) == 30
    assert h264_level(720, 480, 30) == 30  # 1350 MBs x 30 = 40500: exactly MaxMBPS
    assert h264_level(720, 576, 30) == 31
    assert h264_level(1920, 1080, 30) == 40
    assert h264_level(1920, 1080, 60) == 42
    assert h264_level(3840, 2160, 30) == 51
    assert h264_level(704, 576, 25, bitrate=12_000_000) == 31  # level 3.0 caps at 10 Mbit/s
    assert level_name(30) == "3.0" and level_name(13) == "1.3"
    with pytest.raises(ValueError, match=r"exceeds every H\.264 level"):
        h264_level(16384, 16384, 60)


@pytest.mark.parametrize("mode", ["bwdif", "yadif"])
def test_deinterlace_keeps_frame_count_and_pts(mode: str) -> None:
    settings = TranscodeSettings(deinterlace=mode)  # type: ignore[arg-type]
    encoder = H264Encoder(settings)
    frames = jpegs(12)
    out: list[Encoded] = []
    for i, jpeg in enumerate(frames):
        out += encoder.encode(jpeg, i * TICKS)
    held = encoder.flush()
    assert len(held) == 1, "the deinterlacer looks one frame ahead"
    out += held
    assert [item.pts for item in out] == [i * TICKS for i in range(12)]
    decoded = decode_h264(out)
    assert len(decoded) == 12
    assert {(f.width, f.height) for f in decoded} == {(704, 576)}


def test_scale() -> None:
    encoder, out = encode_all(TranscodeSettings(scale=(352, 288)), jpegs(5))
    assert (encoder.width, encoder.height) == (352, 288)
    sps = sps_of(out[0])
    assert (sps.width, sps.height, sps.level_idc) == (352, 288, 13)
    assert {(f.width, f.height) for f in decode_h264(out)} == {(352, 288)}


def test_bitrate_mode() -> None:
    settings = TranscodeSettings(bitrate=500_000, scale=(352, 288))
    _, out = encode_all(settings, jpegs(100))
    # x264 writes its settings into an SEI of the first frame.
    sei = b"".join(nal for nal in split_nals(out[0].data) if nal[0] & 0x1F == 6)
    assert b"bitrate=500" in sei and b"vbv_maxrate=500" in sei
    bits = sum(len(item.data) for item in out) * 8
    assert bits < 1.25 * 4 * 500_000  # 4 s of video


def test_nvenc_or_its_fallback_to_libx264(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "gateway.transcode.encoder")
    encoder = H264Encoder(TranscodeSettings(encoder="h264_nvenc"))
    (first,) = encoder.encode(jpegs(1)[0], 0)
    assert first.keyframe and nal_types(first.data)[:2] == [7, 8]
    sps = sps_of(first)
    assert (sps.profile_idc, sps.level_idc, sps.width, sps.height) == (66, 30, 704, 576)
    if encoder.name == "h264_nvenc":  # a machine with a working NVENC: it is used
        assert encoder.fallback_reason is None
        return
    assert encoder.name == "libx264"
    assert encoder.fallback_reason and encoder.fallback_reason.startswith("h264_nvenc")
    assert sps.constraints & 0x40
    # A size change re-opens libx264 without trying nvenc again: the reason is logged once.
    encoder.encode(jpegs(1, 352, 288, 0.2)[0], TICKS)
    assert encoder.name == "libx264"
    warnings = [r for r in caplog.records if "h264_nvenc" in r.getMessage()]
    assert len(warnings) == 1


def test_nvenc_fallback_carries_ffmpegs_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    # An option nvenc rejects makes it fail to open on any machine, GPU or not.
    options = H264Encoder._nvenc_options
    monkeypatch.setattr(
        H264Encoder, "_nvenc_options", lambda self: {**options(self), "preset": "p99"}
    )
    encoder = H264Encoder(TranscodeSettings(encoder="h264_nvenc", scale=(176, 144)))
    (first,) = encoder.encode(jpegs(1)[0], 0)
    assert first.keyframe
    assert encoder.name == "libx264"
    assert encoder.fallback_reason is not None
    assert encoder.fallback_reason.startswith("h264_nvenc did not open: ")
    assert len(encoder.fallback_reason) > len("h264_nvenc did not open: ")


def test_undecodable_jpeg_raises_and_encoder_survives() -> None:
    frames = jpegs(3)
    encoder = H264Encoder(TranscodeSettings())
    assert len(encoder.encode(frames[0], 0)) == 1
    with pytest.raises(ValueError, match="undecodable JPEG"):
        encoder.encode(b"\xff\xd8 not a jpeg", TICKS)
    with pytest.raises(ValueError, match="undecodable JPEG"):
        encoder.encode(b"", TICKS)
    (item,) = encoder.encode(frames[1], 2 * TICKS)
    assert item.pts == 2 * TICKS and not item.keyframe


def test_size_change_reopens_with_new_sps() -> None:
    d1, cif = jpegs(3), jpegs(3, 352, 288, 0.2)
    encoder = H264Encoder(TranscodeSettings())
    out: list[Encoded] = []
    for i, jpeg in enumerate([*d1, *cif]):
        out += encoder.encode(jpeg, i * TICKS)
    assert keyframe_indexes(out) == [0, 3]
    assert (sps_of(out[0]).width, sps_of(out[0]).height) == (704, 576)
    new = sps_of(out[3])
    assert (new.width, new.height, new.level_idc) == (352, 288, 13)
    assert (encoder.width, encoder.height) == (352, 288)
    assert encoder.sps is not None and parse_sps(encoder.sps) == new
    sizes = [(f.width, f.height) for f in decode_h264(out)]
    assert sizes == [(704, 576)] * 3 + [(352, 288)] * 3


def test_repeated_pts_still_encodes() -> None:
    frame = jpegs(1)[0]
    encoder = H264Encoder(TranscodeSettings(scale=(176, 144)))
    pts = [encoder.encode(frame, p)[0].pts for p in (0, TICKS, TICKS, 2 * TICKS)]
    assert pts == [0, TICKS, TICKS, 2 * TICKS]


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="encoder"):
        TranscodeSettings(encoder="x265")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scale"):
        TranscodeSettings(scale=(351, 288))
    with pytest.raises(ValueError, match="queue_frames"):
        TranscodeSettings(queue_frames=0)


def test_histogram() -> None:
    histogram = Histogram((0.01, 0.1))
    for value in (0.005, 0.01, 0.05, 2.0):
        histogram.observe(value)
    assert histogram.cumulative() == [(0.01, 2), (0.1, 3), (float("inf"), 4)]
    assert histogram.count == 4 and histogram.sum == pytest.approx(2.065)


# -- worker ------------------------------------------------------------------


def source_units(count: int, width: int = 704, height: int = 576) -> list[Unit]:
    seconds = 2.0 if (width, height) == (704, 576) else 0.2
    return [
        Unit("jpeg", data, pts=i * TICKS, wallclock=T0 + i / 25, width=width, height=height)
        for i, data in enumerate(jpegs(count, width, height, seconds))
    ]


class Sink:
    """publish() target: records the Units and the thread they arrived on."""

    def __init__(self) -> None:
        self.units: list[Unit] = []
        self.threads: set[int] = set()
        self.changed = asyncio.Event()

    def __call__(self, unit: Unit) -> None:
        self.units.append(unit)
        self.threads.add(threading.get_ident())
        self.changed.set()

    async def wait_for(self, count: int, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.units) < count:
                self.changed.clear()
                await self.changed.wait()


async def test_units_come_back_on_the_loop_in_order(loop_name: str) -> None:
    loop = asyncio.get_running_loop()
    sink = Sink()
    settings = TranscodeSettings(queue_frames=16, scale=(352, 288))
    transcoder = Transcoder("cam1", settings, sink, loop)
    transcoder.start()
    units = source_units(12)
    for unit in units:
        transcoder.submit(unit)
    await sink.wait_for(12)
    transcoder.stop()
    assert sink.threads == {threading.get_ident()}
    assert [u.pts for u in sink.units] == [u.pts for u in units]
    assert [u.wallclock for u in sink.units] == [u.wallclock for u in units]
    assert all(u.codec == "h264" and (u.width, u.height) == (352, 288) for u in sink.units)
    assert sink.units[0].keyframe and not any(u.keyframe for u in sink.units[1:])
    assert len(decode_h264([Encoded(u.data, u.pts, u.keyframe) for u in sink.units])) == 12
    assert (transcoder.frames_in, transcoder.frames_encoded) == (12, 12)
    assert (transcoder.dropped, transcoder.errors, transcoder.keyframes) == (0, 0, 1)
    assert transcoder.encoder_name == "libx264"
    assert transcoder.encode_seconds.count == 12 and transcoder.encode_seconds.sum > 0
    assert transcoder.last_output_bytes == len(sink.units[-1].data)


async def test_burst_drops_the_oldest(loop_name: str) -> None:
    loop = asyncio.get_running_loop()
    sink = Sink()
    transcoder = Transcoder("cam1", TranscodeSettings(queue_frames=2), sink, loop)
    units = source_units(10)
    # Not started yet: the whole burst meets a full queue, as when the encoder stalls.
    for unit in units:
        transcoder.submit(unit)
    assert transcoder.dropped == 8 and transcoder.queued == 2
    transcoder.start()
    await sink.wait_for(2)
    await asyncio.sleep(0.05)
    transcoder.stop()
    assert [u.pts for u in sink.units] == [units[8].pts, units[9].pts]
    assert (transcoder.frames_in, transcoder.frames_encoded, transcoder.dropped) == (10, 2, 8)


async def test_keyframe_requests_are_rate_limited(loop_name: str) -> None:
    loop = asyncio.get_running_loop()
    now = [100.0]
    sink = Sink()
    settings = TranscodeSettings(queue_frames=8, scale=(176, 144))
    transcoder = Transcoder("cam1", settings, sink, loop, clock=lambda: now[0])
    transcoder.start()
    units = source_units(8)
    for unit in units[:3]:
        transcoder.submit(unit)
    await sink.wait_for(3)
    assert transcoder.request_keyframe("pli") is True
    assert transcoder.request_keyframe("pli") is False
    assert transcoder.request_keyframe("new_viewer") is False
    transcoder.submit(units[3])
    transcoder.submit(units[4])
    await sink.wait_for(5)
    now[0] += 1.0
    assert transcoder.request_keyframe("pli") is True
    for unit in units[5:]:
        transcoder.submit(unit)
    await sink.wait_for(8)
    transcoder.stop()
    assert [u.keyframe for u in sink.units] == [True, False, False, True, False, True, False, False]
    assert transcoder.keyframes == 3
    assert transcoder.keyframe_requests == {"pli": 3, "new_viewer": 1}
    assert transcoder.keyframe_requests_limited == {"pli": 1, "new_viewer": 1}


async def test_errors_are_counted_and_encoding_goes_on(loop_name: str) -> None:
    loop = asyncio.get_running_loop()
    sink = Sink()
    settings = TranscodeSettings(queue_frames=8, scale=(176, 144))
    transcoder = Transcoder("cam1", settings, sink, loop)
    transcoder.start()
    good = source_units(2)
    transcoder.submit(good[0])
    transcoder.submit(Unit("jpeg", b"\xff\xd8garbage", pts=TICKS, wallclock=T0))
    transcoder.submit(Unit("h264", b"\x00\x00\x00\x01\x65", pts=TICKS, wallclock=T0))
    transcoder.submit(Unit("jpeg", good[1].data, pts=2 * TICKS, wallclock=T0 + 0.08))
    await sink.wait_for(2)
    transcoder.stop()
    assert [u.pts for u in sink.units] == [0, 2 * TICKS]
    assert sink.units[1].wallclock == T0 + 0.08
    assert transcoder.errors == 2


async def test_stop_joins_and_leaves_no_thread(loop_name: str) -> None:
    loop = asyncio.get_running_loop()
    sink = Sink()
    transcoder = Transcoder("cam9", TranscodeSettings(queue_frames=4), sink, loop)
    transcoder.start()
    assert transcoder.running
    for unit in source_units(4):
        transcoder.submit(unit)
    await sink.wait_for(1)
    transcoder.stop()
    assert not transcoder.running
    assert not [t for t in threading.enumerate() if t.name == "transcode-cam9"]
    seen = len(sink.units)
    transcoder.stop()  # idempotent
    transcoder.submit(source_units(1)[0])  # ignored once stopped
    await asyncio.sleep(0.05)
    assert len(sink.units) == seen  # nothing is published after stop()
    never_started = Transcoder("cam10", TranscodeSettings(), sink, loop)
    never_started.stop()
    assert not never_started.running


async def test_loop_stays_responsive_while_encoding(loop_name: str) -> None:
    loop = asyncio.get_running_loop()
    sink = Sink()
    transcoder = Transcoder("cam1", TranscodeSettings(queue_frames=50), sink, loop)
    units = source_units(50)
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    transcoder.start()
    started = time.perf_counter()
    for unit in units:
        transcoder.submit(unit)
    await sink.wait_for(50)
    elapsed = time.perf_counter() - started
    transcoder.stop()
    ticking.cancel()
    assert transcoder.dropped == 0 and len(sink.units) == 50
    # The GIL is released inside the codec: the ticker keeps its pace throughout. Both
    # bounds are relative to the run, so a slow or busy machine does not fail them: a
    # loop that waited on the encoder would lose most ticks and stall for most of the run.
    assert len(gaps) >= elapsed / 0.02
    assert max(gaps) < max(0.1, elapsed / 5), f"the loop stalled for {max(gaps) * 1000:.0f} ms"
