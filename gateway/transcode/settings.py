"""TranscodeSettings: how a channel's shared MJPEG-to-H.264 encoder is configured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoder = Literal["libx264", "h264_nvenc"]
Deinterlace = Literal["off", "bwdif", "yadif"]

ENCODERS: tuple[Encoder, ...] = ("libx264", "h264_nvenc")
DEINTERLACERS: tuple[Deinterlace, ...] = ("off", "bwdif", "yadif")
DEFAULT_CRF = 23


@dataclass(frozen=True, slots=True)
class TranscodeSettings:
    """Encoder choice, rate control, GOP, filters and queueing of one channel's transcoder."""

    encoder: Encoder = "libx264"  # h264_nvenc falls back to libx264 when it cannot open
    preset: str = "superfast"  # x264 preset; nvenc always uses p1 with tune ll
    bitrate: int | None = None  # bits/s; when set, VBV (maxrate = bufsize = bitrate) caps it
    crf: int | None = None  # constant quality; DEFAULT_CRF when neither is set
    gop_seconds: float = 2.0  # IDR interval, converted to frames with the channel's fps
    deinterlace: Deinterlace = "off"  # analog D1 is interlaced: bwdif or yadif, one frame each
    scale: tuple[int, int] | None = None  # output (width, height); None keeps the source size
    idle_timeout: float = 10.0  # seconds after the last viewer before the encoder stops
    queue_frames: int = 2  # input frames waiting for the worker; the oldest is dropped
    threads: int = 1  # codec threads: one core per channel encoder

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, not {self.encoder!r}")
        if self.deinterlace not in DEINTERLACERS:
            raise ValueError(
                f"deinterlace must be one of {', '.join(DEINTERLACERS)}, not {self.deinterlace!r}"
            )
        if self.bitrate is not None and self.bitrate <= 0:
            raise ValueError(f"bitrate must be positive, not {self.bitrate}")
        if self.crf is not None and not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be within 0..51, not {self.crf}")
        if self.gop_seconds <= 0:
            raise ValueError(f"gop_seconds must be positive, not {self.gop_seconds}")
        if self.scale is not None:
            width, height = self.scale
            # 4:2:0 needs even sizes; x264 pads to macroblocks itself.
            if width < 16 or height < 16 or width % 2 or height % 2:
                raise ValueError(f"scale must be even and at least 16x16, not {width}x{height}")
        if self.idle_timeout < 0:
            raise ValueError(f"idle_timeout must not be negative, not {self.idle_timeout}")
        if self.queue_frames < 1:
            raise ValueError(f"queue_frames must be at least 1, not {self.queue_frames}")
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, not {self.threads}")

    @property
    def rate_control(self) -> tuple[Literal["crf", "bitrate"], int]:
        """("bitrate", bits/s) when a bitrate is set, else ("crf", the CRF)."""
        if self.bitrate is not None:
            return "bitrate", self.bitrate
        return "crf", DEFAULT_CRF if self.crf is None else self.crf
