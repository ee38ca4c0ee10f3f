"""H264Encoder: one channel's JPEG-to-H.264 pipeline (PyAV), confined to one thread.

JPEG -> mjpeg decoder -> optional deinterlacer (libavfilter) -> swscale to 4:2:0
limited range (and the optional output size) -> libx264 (or h264_nvenc) ->
Annex B access units with 4-byte start codes.

The encoder is set up for live viewing: zerolatency (no lookahead, no frame
threads, no B-frames) delivers one access unit per input frame, Constrained
Baseline so that every browser decodes it, and SPS and PPS in front of every
IDR so that a viewer can start at any IDR. PyAV objects are not thread-safe:
an H264Encoder is created, used and closed on one thread (the channel's
worker, see worker.py). PyAV releases the GIL inside the codec calls.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import av
import av.filter
import av.logging
from av.codec.context import CodecContext
from av.video.codeccontext import VideoCodecContext
from av.video.format import VideoFormat
from av.video.frame import PictureType, VideoFrame
from av.video.reformatter import ColorRange, Interpolation, VideoReformatter

from ..media.unit import CLOCK_RATE
from .settings import DEFAULT_CRF, TranscodeSettings

__all__ = [
    "Encoded",
    "H264Encoder",
    "OpenError",
    "annexb",
    "h264_level",
    "level_name",
    "split_nals",
]

log = logging.getLogger(__name__)

NAL_SLICE = 1
NAL_IDR = 5
NAL_SPS = 7
NAL_PPS = 8
START_CODE = b"\x00\x00\x00\x01"
TIME_BASE = Fraction(1, CLOCK_RATE)

# H.264 Table A-1: level_idc -> (MaxMBPS, MaxFS, MaxBR in kbit/s for Baseline VCL).
# Level 1b is left out: it needs constraint_set3 signalling for a 64 kbit/s difference.
LEVELS: tuple[tuple[int, int, int, int], ...] = (
    (10, 1_485, 99, 64),
    (11, 3_000, 396, 192),
    (12, 6_000, 396, 384),
    (13, 11_880, 396, 768),
    (20, 11_880, 396, 2_000),
    (21, 19_800, 792, 4_000),
    (22, 20_250, 1_620, 4_000),
    (30, 40_500, 1_620, 10_000),
    (31, 108_000, 3_600, 14_000),
    (32, 216_000, 5_120, 20_000),
    (40, 245_760, 8_192, 20_000),
    (41, 245_760, 8_192, 50_000),
    (42, 522_240, 8_704, 50_000),
    (50, 589_824, 22_080, 135_000),
    (51, 983_040, 36_864, 240_000),
    (52, 2_073_600, 36_864, 240_000),
    (60, 4_177_920, 139_264, 240_000),
    (61, 8_355_840, 139_264, 480_000),
    (62, 16_711_680, 139_264, 800_000),
)

# One frame of the deinterlacer per frame in (not per field): the frame rate stays.
# The JPEG carries no field order; analog video servers weave the top field first.
DEINTERLACE_ARGS = "mode=send_frame:parity=tff:deint=all"


@dataclass(frozen=True, slots=True)
class Encoded:
    """One H.264 access unit: Annex B with 4-byte start codes, the input frame's pts."""

    data: bytes
    pts: int  # 90 kHz, the pts of the JPEG frame this picture came from
    keyframe: bool  # an IDR, with SPS and PPS in front of it


def h264_level(width: int, height: int, fps: float, bitrate: int | None = None) -> int:
    """The lowest level_idc whose frame size, macroblock rate and bitrate limits fit."""
    mbs_w = (width + 15) // 16
    mbs_h = (height + 15) // 16
    frame_size = mbs_w * mbs_h
    mb_rate = frame_size * fps
    for level_idc, max_mbps, max_fs, max_br in LEVELS:
        # A-3.1 (f): neither side may exceed sqrt(8 * MaxFS) macroblocks.
        max_side = math.sqrt(8 * max_fs)
        if (
            frame_size <= max_fs
            and mbs_w <= max_side
            and mbs_h <= max_side
            and mb_rate <= max_mbps
            and (bitrate is None or bitrate <= max_br * 1000)
        ):
            return level_idc
    raise ValueError(f"{width}x{height} at {fps:g} fps exceeds every H.264 level")


def level_name(level_idc: int) -> str:
    """'3.0' for level_idc 30: the spelling x264 and nvenc accept."""
    return f"{level_idc // 10}.{level_idc % 10}"


def split_nals(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream, without start codes or trailing zeros."""
    nals: list[bytes] = []
    start = data.find(b"\x00\x00\x01")
    while start >= 0:
        begin = start + 3
        # Emulation prevention keeps 00 00 01 out of NAL payloads, so find() is exact.
        end = data.find(b"\x00\x00\x01", begin)
        stop = len(data) if end < 0 else end
        while stop > begin and data[stop - 1] == 0:
            stop -= 1  # the zero_byte of a 4-byte start code, or trailing_zero_8bits
        if stop > begin:
            nals.append(data[begin:stop])
        start = end
    return nals


def annexb(nals: Iterable[bytes]) -> bytes:
    """NAL units joined as Annex B with 4-byte start codes."""
    return b"".join(START_CODE + nal for nal in nals)


def _video_context(name: str, mode: Literal["r", "w"]) -> VideoCodecContext:
    context = CodecContext.create(name, mode)
    if not isinstance(context, VideoCodecContext):
        raise ValueError(f"{name} is not a video codec")
    return context


class OpenError(Exception):
    """An encoder could not be opened; the message is FFmpeg's reason."""


class H264Encoder:
    """JPEG frames in, H.264 access units out; synchronous, for one thread only."""

    def __init__(self, settings: TranscodeSettings, fps: float = 25.0) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, not {fps}")
        self.settings = settings
        self.fps = fps
        self.keyint = max(1, round(settings.gop_seconds * fps))
        self.name: str = settings.encoder  # the encoder in use; libx264 after a fallback
        self.fallback_reason: str | None = None
        self.sps: bytes | None = None
        self.pps: bytes | None = None
        self.width = 0  # of the encoded pictures, once the first frame is in
        self.height = 0
        self.level_idc = 0
        self._decoder = self._open_decoder()
        self._reformatter = VideoReformatter()
        self._codec: VideoCodecContext | None = None
        self._graph: av.filter.Graph | None = None
        self._source: tuple[int, int, str] | None = None  # decoded width, height, format
        self._force_idr = False
        self._last_pts: int | None = None  # last pts given to the codec
        self._pts_of: dict[int, int] = {}  # codec pts -> input pts, where they differ

    def encode(self, jpeg: bytes, pts: int, force_idr: bool = False) -> list[Encoded]:
        """Encode one JPEG frame; force_idr makes it (the next picture out) an IDR.

        Usually one access unit comes back; with a deinterlacer the first call
        returns none and each later one the previous frame's (see flush()).
        An undecodable JPEG raises ValueError and leaves the encoder as it was.
        """
        frame = self._decode(jpeg)
        frame.pts = pts
        frame.time_base = TIME_BASE
        self._force_idr = self._force_idr or force_idr
        out: list[Encoded] = []
        source = (frame.width, frame.height, frame.format.name)
        if source != self._source:
            out += self._drain_graph()  # what the deinterlacer holds is of the old size
            out += self._reconfigure(source)
        if self._graph is None:
            out += self._encode_picture(frame)
        else:
            self._graph.vpush(frame)
            for picture in self._pull():
                out += self._encode_picture(picture)
        return out

    def flush(self) -> list[Encoded]:
        """What the deinterlacer and the codec still hold; the next encode() starts afresh."""
        out = self._drain_graph() + self._drain_codec()
        self._source = None
        return out

    def close(self) -> None:
        """Drop the codec contexts (without flushing)."""
        self._codec = None
        self._graph = None
        self._source = None

    # -- pipeline ---------------------------------------------------------

    def _open_decoder(self) -> VideoCodecContext:
        decoder = _video_context("mjpeg", "r")
        # One thread: frame threads would delay every picture by a frame per thread.
        decoder.thread_count = 1
        return decoder

    def _decode(self, jpeg: bytes) -> VideoFrame:
        if not jpeg:
            # An empty packet would be read as end of stream and end the decoder.
            raise ValueError("undecodable JPEG: empty")
        try:
            frames = self._decoder.decode(av.Packet(jpeg))
        except av.FFmpegError as exc:
            # mjpeg keeps nothing between frames: a fresh decoder forgets any bad state.
            self._decoder = self._open_decoder()
            raise ValueError(f"undecodable JPEG ({len(jpeg)} bytes): {exc}") from None
        if not frames:
            raise ValueError(f"undecodable JPEG ({len(jpeg)} bytes): no picture")
        frame = frames[-1]
        assert isinstance(frame, VideoFrame)
        return frame

    def _reconfigure(self, source: tuple[int, int, str]) -> list[Encoded]:
        width, height, pix_fmt = source
        self._source = None  # until all is open: a failure here is retried on the next frame
        self._graph = self._open_deinterlacer(width, height, pix_fmt)
        # 4:2:0 needs even sizes: an odd source loses its last row or column.
        out_w, out_h = self.settings.scale or (width & ~1, height & ~1)
        out: list[Encoded] = []
        if self._codec is None or (out_w, out_h) != (self.width, self.height):
            out += self._drain_codec()
            self._codec = self._open_codec(out_w, out_h)
        self._source = source
        return out

    def _open_deinterlacer(self, width: int, height: int, pix_fmt: str) -> av.filter.Graph | None:
        if self.settings.deinterlace == "off":
            return None
        graph = av.filter.Graph()
        graph.threads = self.settings.threads
        source = graph.add_buffer(
            width=width, height=height, format=VideoFormat(pix_fmt), time_base=TIME_BASE
        )
        deinterlacer = graph.add(self.settings.deinterlace, DEINTERLACE_ARGS)
        sink = graph.add("buffersink")
        source.link_to(deinterlacer)
        deinterlacer.link_to(sink)
        graph.configure()
        return graph

    def _pull(self) -> list[VideoFrame]:
        assert self._graph is not None
        pictures: list[VideoFrame] = []
        while True:
            try:
                picture = self._graph.vpull()
            except (av.BlockingIOError, av.EOFError):
                return pictures
            assert isinstance(picture, VideoFrame)
            pictures.append(picture)

    def _drain_graph(self) -> list[Encoded]:
        out: list[Encoded] = []
        if self._graph is not None:
            self._graph.vpush(None)
            for picture in self._pull():
                out += self._encode_picture(picture)
            self._graph = None
        return out

    def _drain_codec(self) -> list[Encoded]:
        # zerolatency holds no frames; this is for encoders that might.
        codec, self._codec = self._codec, None
        return [] if codec is None else self._packets(codec.encode(None))

    def _encode_picture(self, picture: VideoFrame) -> list[Encoded]:
        assert self._codec is not None
        pts = picture.pts
        assert pts is not None
        time_base = picture.time_base
        if time_base is not None and time_base != TIME_BASE:
            # bwdif and yadif count in fields (half the time base) even in send_frame mode.
            pts = round(pts * time_base * CLOCK_RATE)
        frame = self._reformatter.reformat(
            picture,
            width=self.width,
            height=self.height,
            format="yuv420p",
            # JFIF is full range; H.264 decoders (browsers included) expect limited range.
            src_color_range=ColorRange.JPEG,
            dst_color_range=ColorRange.MPEG,
            interpolation=Interpolation.BICUBIC,
            threads=self.settings.threads,
        )
        # x264 wants strictly increasing pts; a repeated camera timestamp must not stop it.
        codec_pts = pts if self._last_pts is None or pts > self._last_pts else self._last_pts + 1
        self._last_pts = codec_pts
        if codec_pts != pts:
            self._pts_of[codec_pts] = pts
        frame.pts = codec_pts
        frame.time_base = TIME_BASE
        # The mjpeg decoder marks every picture I, which the wrapper would turn into an IDR.
        frame.pict_type = PictureType.I if self._force_idr else PictureType.NONE
        self._force_idr = False
        return self._packets(self._codec.encode(frame))

    def _packets(self, packets: Iterable[av.Packet]) -> list[Encoded]:
        out: list[Encoded] = []
        for packet in packets:
            nals = split_nals(bytes(packet))
            keyframe = False
            for nal in nals:
                kind = nal[0] & 0x1F
                if kind == NAL_IDR:
                    keyframe = True
                elif kind == NAL_SPS:
                    self.sps = nal
                elif kind == NAL_PPS:
                    self.pps = nal
            codec_pts = packet.pts if packet.pts is not None else self._last_pts or 0
            pts = self._pts_of.pop(codec_pts, codec_pts)
            out.append(Encoded(annexb(nals), pts, keyframe))
        return out

    # -- codec ------------------------------------------------------------

    def _open_codec(self, width: int, height: int) -> VideoCodecContext:
        self.width, self.height = width, height
        self.level_idc = h264_level(width, height, self.fps, self.settings.bitrate)
        self._last_pts = None
        self._pts_of.clear()
        if self.name == "h264_nvenc":
            try:
                return self._open_logged("h264_nvenc", self._nvenc_options())
            except OpenError as exc:
                # Once: a fallen-back encoder stays on libx264, also across size changes.
                self.fallback_reason = f"h264_nvenc did not open: {exc}"
                self.name = "libx264"
                log.warning("%s; encoding with libx264", self.fallback_reason)
        return self._open("libx264", self._x264_options())

    def _open_logged(self, codec_name: str, options: dict[str, str]) -> VideoCodecContext:
        # PyAV drops FFmpeg's log by default, and the log holds the only useful reason
        # ("Cannot load libcuda.so.1", "No capable devices found"): capture it while
        # opening. The level is process-wide; this is rare and brief, so restore it after.
        previous = av.logging.get_level()
        if previous is None or previous < av.logging.ERROR:
            av.logging.set_level(av.logging.ERROR)
        try:
            with av.logging.Capture() as logs:
                try:
                    return self._open(codec_name, options)
                except (av.FFmpegError, OSError, ValueError) as exc:
                    detail = "; ".join(message.strip() for _, _, message in logs)
                    strerror = getattr(exc, "strerror", None)
                    raise OpenError(detail or strerror or str(exc)) from exc
        finally:
            av.logging.set_level(previous)

    def _open(self, codec_name: str, options: dict[str, str]) -> VideoCodecContext:
        codec = _video_context(codec_name, "w")
        codec.width = self.width
        codec.height = self.height
        codec.pix_fmt = "yuv420p"
        codec.time_base = TIME_BASE
        codec.framerate = Fraction(self.fps).limit_denominator(1001)
        codec.gop_size = self.keyint
        codec.max_b_frames = 0
        codec.thread_count = self.settings.threads
        codec.color_range = ColorRange.MPEG
        codec.options = options
        codec.open()
        return codec

    def _x264_options(self) -> dict[str, str]:
        settings = self.settings
        options = {
            "preset": settings.preset,
            "tune": "zerolatency",
            "profile": "baseline",
            "level": level_name(self.level_idc),
            "forced-idr": "1",
            "rc-lookahead": "0",
            "x264-params": "repeat-headers=1",
        }
        options.update(self._x264_rate_options())
        return options

    def _nvenc_options(self) -> dict[str, str]:
        settings = self.settings
        options = {
            "preset": "p1",
            "tune": "ll",
            "zerolatency": "1",
            "delay": "0",
            "profile": "baseline",
            "level": level_name(self.level_idc),
            "forced-idr": "1",
        }
        if settings.bitrate is not None and settings.crf is None:
            bitrate = str(settings.bitrate)
            options.update({"rc": "cbr", "b": bitrate, "maxrate": bitrate, "bufsize": bitrate})
        else:
            # nvenc's nearest to CRF: constant quality in VBR mode, capped when a bitrate is set.
            crf = DEFAULT_CRF if settings.crf is None else settings.crf
            options.update({"rc": "vbr", "cq": str(crf), "b": "0"})
            if settings.bitrate is not None:
                options.update({"maxrate": str(settings.bitrate), "bufsize": str(settings.bitrate)})
        return options

    def _x264_rate_options(self) -> dict[str, str]:
        settings = self.settings
        crf = settings.crf
        options: dict[str, str] = {}
        if settings.bitrate is not None:
            bitrate = str(settings.bitrate)
            # A one-second VBV caps the rate without starving the IDRs.
            options.update({"maxrate": bitrate, "bufsize": bitrate})
            if crf is None:
                options["b"] = bitrate
            else:
                options["crf"] = str(crf)  # CRF, capped by the VBV
        else:
            options["crf"] = str(DEFAULT_CRF if crf is None else crf)
        return options
