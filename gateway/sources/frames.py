"""Frames of the built-in Axis 2400 emulator: a pre-rendered loop with a live clock.

Each frame is a baseline JPEG of colour bars with a moving bar and box and some
luma static, under a black band that shows the channel name and the wall-clock
time. Serving a frame costs almost nothing: the loop's pictures are encoded
once, the band once per second, and a frame is the two joined bit-wise.

How the join works. The band is the top MCU rows of the frame, drawn on a flat
background that always fills the band's last MCU; so the band's entropy-coded
data depends only on its text, and it leaves every DC predictor at the
background's value. The picture below is encoded once per loop frame starting
from those predictors. Restart intervals (DRI) cut the scan into byte-aligned
pieces: intervals wholly inside the band or wholly inside the picture are
encoded, stuffed and separated by their RSTn markers ahead of time, and only
the interval that spans the boundary (the whole scan, without DRI) is joined at
serve time from two unstuffed bit strings (``jpegenc.compose``), then stuffed
and padded. A composed frame is byte for byte what ``encode_jpeg`` gives for
the same planes.

Every restart interval T.81 allows (0 = no DRI, or 1..65535 MCUs) works, whether
or not it divides the band: with one MCU row per interval a frame is a plain
concatenation; otherwise one shift-and-stuff pass over the shared interval.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .._ext import jpegenc
from . import font
from .jpeg_encoder import (
    EOI,
    BlockCoder,
    Sampling,
    U8Array,
    encode_jpeg,
    jpeg_header,
    sampling_for,
)

__all__ = ["MAX_LOOP_FRAMES", "MAX_SIZE", "MIN_SIZE", "FrameLoop", "encode_jpeg"]

MIN_SIZE = 16
MAX_SIZE = 4096
MAX_LOOP_FRAMES = 600  # bounds a loop's memory: a D1 frame is 20-60 KB
CLOCK_FORMAT = "%Y-%m-%d %H:%M:%S"
CLOCK_CHARS = 19
_RECENT_FRAMES = 4  # composed frames kept for repeated (index, second) requests
_BAND_SECONDS = 2  # bands kept: the current second and the one before

Color = tuple[int, int, int]  # JFIF Y, Cb, Cr


def _ycc(r: float, g: float, b: float) -> Color:
    """JFIF (full-range BT.601) YCbCr of an RGB colour."""
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return round(y), round(cb), round(cr)


BAND_BACKGROUND: Color = (16, 128, 128)
TEXT: Color = (235, 128, 128)
BLACK: Color = (16, 128, 128)
WHITE: Color = (235, 128, 128)
VIDEO_LOSS_BLUE = _ycc(0, 0, 191)
# 75% colour bars, left to right, and the reverse castellation row under them.
BARS = [
    _ycc(191, 191, 191),
    _ycc(191, 191, 0),
    _ycc(0, 191, 191),
    _ycc(0, 191, 0),
    _ycc(191, 0, 191),
    _ycc(191, 0, 0),
    _ycc(0, 0, 191),
]
REVERSE_BARS = [BARS[6], BLACK, BARS[4], BLACK, BARS[2], BLACK, BARS[0]]
BOX_COLORS = [_ycc(255, 140, 0), _ycc(40, 220, 40), _ycc(230, 40, 230), _ycc(30, 200, 255)]
NOISE_AMPLITUDE = 6  # uniform luma static, +-6 levels


@dataclass
class _Planes:
    """One picture: luma, and chroma at the sampling's resolution (None for gray)."""

    y: U8Array
    cb: U8Array | None
    cr: U8Array | None

    def copy(self) -> _Planes:
        return _Planes(
            self.y.copy(),
            None if self.cb is None else self.cb.copy(),
            None if self.cr is None else self.cr.copy(),
        )


class _Canvas:
    """Drawing on planes at luma coordinates; chroma follows at its own resolution."""

    def __init__(self, planes: _Planes, sampling: Sampling) -> None:
        self.planes = planes
        self.h = sampling.h
        self.v = sampling.v

    @classmethod
    def filled(cls, height: int, width: int, color: Color, sampling: Sampling) -> _Canvas:
        """A canvas of one colour."""
        y = np.full((height, width), color[0], np.uint8)
        cb = cr = None
        if sampling.chroma:
            shape = (height // sampling.v, width // sampling.h)
            cb = np.full(shape, color[1], np.uint8)
            cr = np.full(shape, color[2], np.uint8)
        return cls(_Planes(y, cb, cr), sampling)

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        """Fill a rectangle; edges are rounded to the chroma grid, so colours stay exact."""
        p = self.planes
        x0, x1 = (max(0, x) // self.h * self.h for x in (x0, x1))
        y0, y1 = (max(0, y) // self.v * self.v for y in (y0, y1))
        if x1 <= x0 or y1 <= y0:
            return
        p.y[y0:y1, x0:x1] = color[0]
        if p.cb is not None and p.cr is not None:
            cy = slice(y0 // self.v, y1 // self.v)
            cx = slice(x0 // self.h, x1 // self.h)
            p.cb[cy, cx] = color[1]
            p.cr[cy, cx] = color[2]

    def text(self, text: str, x: int, y: int, scale: int, color: Color, right: int) -> None:
        """Draw text with its top left at (x, y), clipped to the canvas and to x < right."""
        mask = font.render(text, scale)
        p = self.planes
        height, width = p.y.shape
        # Whole chroma cells only, so a glyph's chroma is its own colour, never a blend.
        if x < 0 or y < 0:
            # Crop what starts off the canvas, keeping the rest on the chroma grid.
            cut_x = -(-max(0, -x) // self.h) * self.h
            cut_y = -(-max(0, -y) // self.v) * self.v
            mask = mask[cut_y:, cut_x:]
            x, y = x + cut_x, y + cut_y
        x = x // self.h * self.h
        y = y // self.v * self.v
        right = min(right, width) // self.h * self.h
        mask = mask[: max(0, height - y), : max(0, right - x)]
        if mask.size == 0:
            return
        mh, mw = mask.shape
        p.y[y : y + mh, x : x + mw][mask] = color[0]
        if p.cb is not None and p.cr is not None:
            ph, pw = -(-mh // self.v), -(-mw // self.h)
            padded = np.zeros((ph * self.v, pw * self.h), np.bool_)
            padded[:mh, :mw] = mask
            cmask = padded.reshape(ph, self.v, pw, self.h).any(axis=(1, 3))
            cy, cx = y // self.v, x // self.h
            p.cb[cy : cy + ph, cx : cx + pw][cmask] = color[1]
            p.cr[cy : cy + ph, cx : cx + pw][cmask] = color[2]


@dataclass(frozen=True)
class _Overlay:
    """Where the band's text goes, fitted to the frame size."""

    scale: int
    height: int  # whole MCU rows
    right: int  # text stays left of this x: the band's last MCU column is background
    label: str
    label_xy: tuple[int, int]
    clock_xy: tuple[int, int]

    @classmethod
    def fit(cls, width: int, height: int, sampling: Sampling, label: str) -> _Overlay:
        """Largest scale (up to height // 120) at which the clock fits on one line."""
        right = width - sampling.mcu_width
        scale = max(1, height // 120)
        while scale > 1 and 4 * scale + font.text_width(CLOCK_CHARS, scale) > right:
            scale -= 1
        margin = 2 * scale
        clock_w = font.text_width(CLOCK_CHARS, scale)
        text = font.normalize(label)
        gap = 2 * font.CELL_WIDTH * scale
        one_line = margin + font.text_width(len(text), scale) + gap + clock_w + margin
        if not text or one_line <= right:
            # The Axis way: name on the left, clock on the right, one line.
            lines = 1
            clock_xy = (max(margin, right - margin - clock_w), margin)
        else:
            lines = 2
            fits = max(0, (right - 2 * margin + scale) // (font.CELL_WIDTH * scale))
            text = text[:fits]
            clock_xy = (margin, margin + (font.GLYPH_HEIGHT + 2) * scale)
        text_h = 2 * margin + lines * font.GLYPH_HEIGHT * scale + (lines - 1) * 2 * scale
        mcu_rows = height // sampling.mcu_height
        # Leave at least one MCU row of picture when the frame has two or more.
        rows = min(-(-text_h // sampling.mcu_height), max(1, mcu_rows - 1))
        return cls(
            scale=scale,
            height=rows * sampling.mcu_height,
            right=right,
            label=text,
            label_xy=(margin, margin),
            clock_xy=clock_xy,
        )


@dataclass(frozen=True)
class _Band:
    """The band's share of every frame in one second."""

    prefix: bytes  # headers, then the band's whole restart intervals and their RSTn
    tail: bytes  # unstuffed bits of the band's MCUs in the interval it shares
    tail_bits: int


@dataclass(frozen=True)
class _Picture:
    """One loop frame's share: the rest of the shared interval, then the rest of the scan."""

    head: bytes
    head_bits: int
    suffix: bytes  # stuffed whole intervals with their RSTn, and EOI


def _check_size(width: int, height: int, sampling: Sampling) -> None:
    for name, value, step in (
        ("width", width, sampling.mcu_width),
        ("height", height, sampling.mcu_height),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        if not MIN_SIZE <= value <= MAX_SIZE:
            raise ValueError(f"{name} must be in {MIN_SIZE}..{MAX_SIZE}, got {value}")
        if value % step:
            raise ValueError(
                f"{name} {value} is not a multiple of {step}, the MCU {name} "
                f"of {sampling.name} subsampling"
            )


def _rst(index: int) -> bytes:
    return bytes((0xFF, 0xD0 + index % 8))


class FrameLoop:
    """A pre-rendered loop of frames for one camera input at one size and quality."""

    def __init__(
        self,
        *,
        camera: int,
        label: str,
        width: int,
        height: int,
        fps: float,
        quality: int = 70,
        subsampling: str = "422",
        restart_interval: int = 0,
        video_loss: bool = False,
        loop_seconds: float = 2.0,
        noise: bool = True,
    ) -> None:
        sampling = sampling_for(subsampling)
        _check_size(width, height, sampling)
        if isinstance(camera, bool) or not isinstance(camera, int) or camera < 0:
            raise ValueError(f"camera must be an integer >= 0, got {camera!r}")
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        if not (math.isfinite(loop_seconds) and loop_seconds > 0):
            raise ValueError(f"loop_seconds must be a positive number, got {loop_seconds!r}")
        count = max(1, round(fps * loop_seconds))
        if count > MAX_LOOP_FRAMES:
            raise ValueError(
                f"a loop of {fps} fps x {loop_seconds} s is {count} frames, "
                f"more than {MAX_LOOP_FRAMES}"
            )
        if (
            isinstance(restart_interval, bool)
            or not isinstance(restart_interval, int)
            or not 0 <= restart_interval <= jpegenc.MAX_RESTART_INTERVAL
        ):
            raise ValueError(
                f"restart_interval must be an integer in 0..{jpegenc.MAX_RESTART_INTERVAL}, "
                f"got {restart_interval!r}"
            )
        self.camera = camera
        self.label = label
        self.width = width
        self.height = height
        self.fps = float(fps)
        self.quality = quality
        self.subsampling = subsampling
        self.restart_interval = restart_interval
        self.video_loss = video_loss
        self.noise = noise
        self._sampling = sampling
        self._count = count
        self._coder = BlockCoder(quality, sampling)  # validates quality
        self._bpm = len(self._coder.comps)
        self._header = jpeg_header(
            width=width,
            height=height,
            sampling=sampling,
            quality=quality,
            restart_interval=restart_interval,
        )
        self._overlay = _Overlay.fit(width, height, sampling, label)

        # Scan geometry, in MCUs: the band is [0, band), the picture [band, total).
        cols = width // sampling.mcu_width
        total = height // sampling.mcu_height * cols
        band = self._overlay.height // sampling.mcu_height * cols
        interval = restart_interval or total
        self._total = total
        self._interval = interval
        self._band_intervals = band // interval  # intervals wholly inside the band
        self._shared = band % interval != 0  # one interval spans band and picture
        self._head_end = min((self._band_intervals + 1) * interval, total) if self._shared else band
        self._band_mcus = band
        # Band end predictors: DC of the last block of each component, all background.
        blank = self._band_planes("")
        empty = self._coder.coefficients(blank.y, blank.cb, blank.cr)
        preds = [0, 0, 0]
        last_mcu = empty[-self._bpm :, 0].tolist()
        for comp, dc in zip(self._coder.comps.tolist(), last_mcu, strict=True):
            preds[comp] = dc
        self._band_preds: tuple[int, int, int] = (preds[0], preds[1], preds[2])

        self._backdrop = self._render_backdrop()
        if video_loss:
            # An unplugged camera: the same blue picture in every frame.
            picture = self._encode_picture(self._picture_planes(0))
            self._pictures = [picture] * count
        else:
            self._pictures = [self._encode_picture(self._picture_planes(i)) for i in range(count)]
        self._bands: dict[int, _Band] = {}
        self._recent: dict[tuple[int, int], bytes] = {}

    @property
    def band_height(self) -> int:
        """Height in pixels of the name and clock band at the top of every frame."""
        return self._overlay.height

    def __len__(self) -> int:
        """Frames in the loop."""
        return self._count

    def __repr__(self) -> str:
        return (
            f"FrameLoop(camera={self.camera}, {self.width}x{self.height}, {self.fps:g} fps, "
            f"q{self.quality}, {self.subsampling}, dri={self.restart_interval}, "
            f"{self._count} frames)"
        )

    def frame(self, index: int, wallclock: float) -> bytes:
        """The JPEG of loop frame `index % len(self)` with the clock at `wallclock` (local)."""
        second = _second(wallclock)
        i = index % self._count
        key = (i, second)
        data = self._recent.get(key)
        if data is not None:
            return data
        band = self._bands.get(second)
        if band is None:
            band = self._encode_band(second)
        picture = self._pictures[i]
        data = jpegenc.compose(
            band.prefix, band.tail, band.tail_bits, picture.head, picture.head_bits, picture.suffix
        )
        if len(self._recent) >= _RECENT_FRAMES:
            del self._recent[next(iter(self._recent))]
        self._recent[key] = data
        return data

    def render_planes(
        self, index: int, wallclock: float
    ) -> tuple[U8Array, U8Array | None, U8Array | None]:
        """The Y, Cb, Cr planes that `frame(index, wallclock)` encodes (re-rendered)."""
        band = self._band_planes(_clock(_second(wallclock)))
        picture = self._picture_planes(index % self._count)
        y = np.concatenate([band.y, picture.y])
        if band.cb is None or band.cr is None or picture.cb is None or picture.cr is None:
            return y, None, None
        return y, np.concatenate([band.cb, picture.cb]), np.concatenate([band.cr, picture.cr])

    # The band: name and clock, re-encoded once per second.

    def _band_planes(self, clock: str) -> _Planes:
        o = self._overlay
        canvas = _Canvas.filled(o.height, self.width, BAND_BACKGROUND, self._sampling)
        if o.label:
            canvas.text(o.label, *o.label_xy, o.scale, TEXT, o.right)
        if clock:
            canvas.text(clock, *o.clock_xy, o.scale, TEXT, o.right)
        return canvas.planes

    def _encode_band(self, second: int) -> _Band:
        planes = self._band_planes(_clock(second))
        coefs = self._coder.coefficients(planes.y, planes.cb, planes.cr)
        comps = self._coder.comps
        split = self._band_intervals * self._interval * self._bpm
        prefix = self._header + jpegenc.encode_intervals(
            coefs[:split], comps, self.restart_interval, 0
        )
        if self.restart_interval and self._band_intervals and split < self._total * self._bpm:
            prefix += _rst(self._band_intervals - 1)
        tail, tail_bits = b"", 0
        if self._shared:
            tail, tail_bits, preds = jpegenc.encode_bits(coefs[split:], comps, (0, 0, 0))
            if preds != self._band_preds:
                # The pre-encoded pictures assume these predictors; this is a layout bug.
                raise RuntimeError(f"band ends with DC {preds}, expected {self._band_preds}")
        band = _Band(prefix, tail, tail_bits)
        while len(self._bands) >= _BAND_SECONDS:
            del self._bands[next(iter(self._bands))]
        self._bands[second] = band
        return band

    # The picture: colour bars, a sweeping bar and a circling box, pre-encoded.

    def _render_backdrop(self) -> _Planes:
        height = self.height - self._overlay.height
        width = self.width
        if self.video_loss:
            canvas = _Canvas.filled(height, width, VIDEO_LOSS_BLUE, self._sampling)
            text = "VIDEO LOSS"
            scale = 2 * self._overlay.scale
            while scale > 1 and font.text_width(len(text), scale) > width - 8:
                scale -= 1
            x = (width - font.text_width(len(text), scale)) // 2
            y = (height - font.GLYPH_HEIGHT * scale) // 2
            canvas.text(text, x, y, scale, WHITE, width)
            return canvas.planes
        canvas = _Canvas.filled(height, width, BLACK, self._sampling)
        bars_end = height * 2 // 3
        castle_end = height * 3 // 4
        for i, color in enumerate(BARS):
            x0, x1 = width * i // 7, width * (i + 1) // 7
            canvas.rect(x0, 0, x1, bars_end, color)
            canvas.rect(x0, bars_end, x1, castle_end, REVERSE_BARS[i])
        # A luma ramp along the bottom, in 16 steps like a test generator's staircase.
        y0 = castle_end // self._sampling.v * self._sampling.v
        steps = 16
        for i in range(steps):
            level = 16 + (235 - 16) * i // (steps - 1)
            canvas.rect(width * i // steps, y0, width * (i + 1) // steps, height, (level, 128, 128))
        return canvas.planes

    def _picture_planes(self, index: int) -> _Planes:
        planes = self._backdrop.copy()
        if self.video_loss:
            return planes
        height, width = planes.y.shape
        canvas = _Canvas(planes, self._sampling)
        phase = (index / self._count + 0.25 * self.camera) % 1.0
        # A white bar sweeping left to right once per loop.
        bar = max(2, width // 24)
        x = round(phase * (width + bar)) - bar
        canvas.rect(x, 0, x + bar, height, WHITE)
        # A box circling once per loop, with a black border.
        side = max(4, min(width, height) // 4)
        cx = width / 2 + 0.3 * width * math.cos(2 * math.pi * phase)
        cy = height / 2 + 0.3 * height * math.sin(2 * math.pi * phase)
        x0, y0 = round(cx - side / 2), round(cy - side / 2)
        border = max(2, side // 12)
        canvas.rect(x0, y0, x0 + side, y0 + side, BLACK)
        color = BOX_COLORS[(self.camera - 1) % len(BOX_COLORS)]  # inputs count from 1
        canvas.rect(x0 + border, y0 + border, x0 + side - border, y0 + side - border, color)
        if self.noise:
            # Analog static: fresh each frame, the same for a frame every time it is drawn.
            rng = np.random.default_rng((self.camera, index))
            static = rng.integers(
                -NOISE_AMPLITUDE, NOISE_AMPLITUDE + 1, size=planes.y.shape, dtype=np.int16
            )
            static += planes.y
            np.clip(static, 0, 255, out=static)
            planes.y = static.astype(np.uint8)
        return planes

    def _encode_picture(self, planes: _Planes) -> _Picture:
        comps = self._coder.comps
        if planes.y.shape[0] == 0:
            return _Picture(b"", 0, EOI)
        coefs = self._coder.coefficients(planes.y, planes.cb, planes.cr)
        split = (self._head_end - self._band_mcus) * self._bpm
        head, head_bits = b"", 0
        if self._shared:
            head, head_bits, _ = jpegenc.encode_bits(coefs[:split], comps, self._band_preds)
        suffix = b""
        if split < coefs.shape[0]:
            if self._shared:
                # The marker that closes the interval shared with the band.
                suffix += _rst(self._band_intervals)
            first = self._head_end // self._interval
            suffix += jpegenc.encode_intervals(coefs[split:], comps, self.restart_interval, first)
        return _Picture(head, head_bits, suffix + EOI)


def _second(wallclock: float) -> int:
    if not math.isfinite(wallclock):
        raise ValueError(f"wallclock must be a finite number, got {wallclock!r}")
    return math.floor(wallclock)


def _clock(second: int) -> str:
    try:
        return time.strftime(CLOCK_FORMAT, time.localtime(second))
    except (OverflowError, OSError, ValueError) as e:
        raise ValueError(f"wallclock {second} is not a representable local time") from e
