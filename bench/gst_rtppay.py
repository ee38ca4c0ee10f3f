"""GStreamer's RTP payloaders on the frames the bench_rtp*.py files give them; system Python.

    /usr/bin/python3 bench/gst_rtppay.py jpeg pay DIR --mtu 1412 --rounds 20
    /usr/bin/python3 bench/gst_rtppay.py h264 depay DIR --rounds 20
    /usr/bin/python3 bench/gst_rtppay.py jpeg pay DIR --rounds 20 --baseline

pay:   DIR/*.jpg (jpeg: one JPEG each) or DIR/*.h264 (h264: one Annex B access
       unit each) through appsrc caps=CAPS ! rtpjpegpay|rtph264pay mtu=MTU ! fakesink,
       CAPS being image/jpeg with the first frame's size, or
       video/x-h264,stream-format=byte-stream,alignment=au.
depay: DIR/*.rtp, one frame's RTP packets each (16-bit big-endian length,
       packet, ...), through appsrc ! rtpjpegdepay|rtph264depay ! fakesink.

Every file is pushed `rounds` times, in order, each round with its own timestamps
(and RTP sequence numbers), everything built before the clock starts: the timed
loop is one appsrc signal per frame (a buffer, or a buffer list of its packets).
The clock runs from the first push to EOS on the bus, the pipeline already
PLAYING. With --baseline the element is left out (appsrc ! fakesink): what the
harness costs alone. Prints one JSON object: mode, baseline, frames, bytes
(input pushed), seconds. Needs PyGObject with GStreamer 1.x (Debian: python3-gi,
gir1.2-gstreamer-1.0, gstreamer1.0-plugins-good).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

FRAME_NS = 40_000_000  # 25 fps


def _jpeg_caps(first: bytes) -> str:
    """image/jpeg caps with the first frame's size: rtpjpegpay wants it in its caps."""
    width, height = _jpeg_size(first)
    return f"image/jpeg,framerate=25/1,width={width},height={height}"


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Width and height from the first SOFn."""
    i = 2
    while i + 9 <= len(data) and data[i] == 0xFF:
        marker, length = data[i + 1], struct.unpack_from(">H", data, i + 2)[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack_from(">HH", data, i + 5)
            return width, height
        i += 2 + length
    raise SystemExit("no SOF marker in the first frame")


def _h264_caps(first: bytes) -> str:
    """Annex B, one access unit per buffer: what rtph264pay takes without a parser."""
    return "video/x-h264,stream-format=byte-stream,alignment=au,framerate=25/1"


@dataclass(frozen=True)
class Codec:
    """What differs between two RTP payload formats here: elements, caps, file names."""

    name: str  # rtp<name>pay, rtp<name>depay
    suffix: str  # of the input files of pay
    caps: Callable[[bytes], str]  # appsrc caps for pay, from the first frame
    rtp_caps: str  # appsrc caps for depay


CODECS = {
    "jpeg": Codec(
        "jpeg",
        ".jpg",
        _jpeg_caps,
        "application/x-rtp,media=video,clock-rate=90000,encoding-name=JPEG,payload=26",
    ),
    "h264": Codec(
        "h264",
        ".h264",
        _h264_caps,
        "application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96",
    ),
}


def _load(codec: Codec, mode: str, directory: Path) -> list[list[bytes]]:
    """Per frame, the buffers to push: the frame, or its RTP packets."""
    if mode == "pay":
        return [[p.read_bytes()] for p in sorted(directory.glob(f"*{codec.suffix}"))]
    frames = []
    for path in sorted(directory.glob("*.rtp")):
        data, pos, packets = path.read_bytes(), 0, []
        while pos < len(data):
            (n,) = struct.unpack_from(">H", data, pos)
            packets.append(data[pos + 2 : pos + 2 + n])
            pos += 2 + n
        frames.append(packets)
    return frames


def run(
    codec: Codec, mode: str, directory: Path, mtu: int, rounds: int, baseline: bool = False
) -> dict[str, object]:
    """Push every frame `rounds` times; return the measurement."""
    Gst.init(None)
    frames = _load(codec, mode, directory)
    if not frames:
        raise SystemExit(f"no input frames in {directory}")
    if mode == "pay":
        caps, element = codec.caps(frames[0][0]), f"rtp{codec.name}pay mtu={mtu}"
    else:
        caps, element = codec.rtp_caps, f"rtp{codec.name}depay"
    pipeline = Gst.parse_launch(
        f'appsrc name=src caps="{caps}" format=time block=true max-bytes=8388608 '
        + ("" if baseline else f"! {element} ")
        + "! fakesink sync=false async=false"
    )
    src = pipeline.get_by_name("src")
    # Everything pushed is built before the clock starts, so that the timed loop is
    # one signal emission per frame: a buffer, or a buffer list of its packets.
    # Each round gets its own timestamps (and, for RTP, sequence numbers), as a
    # live stream would.
    pushes, seq = [], 0
    for index in range(rounds * len(frames)):
        frame = frames[index % len(frames)]
        if mode == "pay":
            buf = Gst.Buffer.new_wrapped(frame[0]) if index < len(frames) else None
            if buf is None:
                buf = pushes[index % len(frames)][0].copy()  # shares the memory
            buf.pts = buf.dts = index * FRAME_NS
            buf.duration = FRAME_NS
            pushes.append((buf, "push-buffer"))
            continue
        packets = Gst.BufferList.new()
        for packet in frame:
            data = bytearray(packet)
            struct.pack_into(">HI", data, 2, seq & 0xFFFF, (index * 3600) & 0xFFFFFFFF)
            seq += 1
            buf = Gst.Buffer.new_wrapped(bytes(data))
            buf.pts = buf.dts = index * FRAME_NS
            packets.insert(-1, buf)
        pushes.append((packets, "push-buffer-list"))
    total = sum(len(b) for frame in frames for b in frame) * rounds
    pipeline.set_state(Gst.State.PLAYING)
    pipeline.get_state(Gst.CLOCK_TIME_NONE)
    bus = pipeline.get_bus()
    start = time.perf_counter()
    for k, (item, signal) in enumerate(pushes):
        if k % 64 == 0:
            # With block=true a stopped pipeline would block the next push forever.
            error = bus.pop_filtered(Gst.MessageType.ERROR)
            if error is not None:
                raise SystemExit(f"pipeline failed: {error.parse_error()}")
        if src.emit(signal, item) != Gst.FlowReturn.OK:
            raise SystemExit("appsrc refused a push")
    src.emit("end-of-stream")
    msg = bus.timed_pop_filtered(120 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    seconds = time.perf_counter() - start
    pipeline.set_state(Gst.State.NULL)
    if msg is None or msg.type != Gst.MessageType.EOS:
        detail = msg.parse_error() if msg is not None else "timeout"
        raise SystemExit(f"pipeline failed: {detail}")
    return {
        "mode": mode,
        "baseline": baseline,
        "frames": len(pushes),
        "bytes": total,
        "seconds": seconds,
    }


def main() -> None:
    """Parse the command line and print the measurement as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("codec", choices=list(CODECS))
    parser.add_argument("mode", choices=["pay", "depay"])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--mtu", type=int, default=1412, help="payloader mtu (RTP header included)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--baseline", action="store_true", help="no RTP element: push cost only")
    args = parser.parse_args()
    measurement = run(
        CODECS[args.codec], args.mode, args.directory, args.mtu, args.rounds, args.baseline
    )
    json.dump(measurement, sys.stdout)
    print()


if __name__ == "__main__":
    main()
