"""GStreamer's RFC 2435 elements on the frames bench_rtpjpeg.py gives them; run with system Python.

    /usr/bin/python3 bench/gst_rtpjpegpay.py pay DIR --mtu 1412 --rounds 20
    /usr/bin/python3 bench/gst_rtpjpegpay.py depay DIR --rounds 20
    /usr/bin/python3 bench/gst_rtpjpegpay.py pay DIR --rounds 20 --baseline

pay:   DIR/*.jpg, one JPEG each, through appsrc ! rtpjpegpay mtu=MTU ! fakesink.
depay: DIR/*.rtp, one frame's RTP packets each (16-bit big-endian length, packet,
       ...), through appsrc ! rtpjpegdepay ! fakesink.

Every file is pushed `rounds` times, in order, each round with its own timestamps
(and RTP sequence numbers), everything built before the clock starts: the timed
loop is one appsrc signal per frame (a buffer, or a buffer list of the frame's
packets). The clock runs from the first push to EOS on the bus, the pipeline
already PLAYING. With --baseline the element is left out (appsrc ! fakesink):
what the harness costs alone. Prints one JSON object: mode, baseline, frames,
bytes (input pushed), seconds. Needs PyGObject with GStreamer 1.x (Debian:
python3-gi, gir1.2-gstreamer-1.0, gstreamer1.0-plugins-good).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

FRAME_NS = 40_000_000  # 25 fps
RTP_CAPS = "application/x-rtp,media=video,clock-rate=90000,encoding-name=JPEG,payload=26"


def _load(mode: str, directory: Path) -> list[list[bytes]]:
    """Per frame, the buffers to push: the JPEG, or its RTP packets."""
    if mode == "pay":
        return [[p.read_bytes()] for p in sorted(directory.glob("*.jpg"))]
    frames = []
    for path in sorted(directory.glob("*.rtp")):
        data, pos, packets = path.read_bytes(), 0, []
        while pos < len(data):
            (n,) = struct.unpack_from(">H", data, pos)
            packets.append(data[pos + 2 : pos + 2 + n])
            pos += 2 + n
        frames.append(packets)
    return frames


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Width and height from the first SOFn; rtpjpegpay wants them in its caps."""
    i = 2
    while i + 9 <= len(data) and data[i] == 0xFF:
        marker, length = data[i + 1], struct.unpack_from(">H", data, i + 2)[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack_from(">HH", data, i + 5)
            return width, height
        i += 2 + length
    raise SystemExit("no SOF marker in the first frame")


def run(
    mode: str, directory: Path, mtu: int, rounds: int, baseline: bool = False
) -> dict[str, object]:
    """Push every frame `rounds` times; return the measurement."""
    Gst.init(None)
    frames = _load(mode, directory)
    if not frames:
        raise SystemExit(f"no input frames in {directory}")
    if mode == "pay":
        width, height = _jpeg_size(frames[0][0])
        caps = f"image/jpeg,framerate=25/1,width={width},height={height}"
        element = f"rtpjpegpay mtu={mtu}"
    else:
        caps = RTP_CAPS
        element = "rtpjpegdepay"
    pipeline = Gst.parse_launch(
        f'appsrc name=src caps="{caps}" format=time block=true max-bytes=8388608 '
        + ("" if baseline else f"! {element} ")
        + "! fakesink sync=false async=false"
    )
    src = pipeline.get_by_name("src")
    # Everything pushed is built before the clock starts, so that the timed loop is
    # one signal emission per frame: a JPEG buffer, or a buffer list of its packets.
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
    parser.add_argument("mode", choices=["pay", "depay"])
    parser.add_argument("directory", type=Path)
    parser.add_argument(
        "--mtu", type=int, default=1412, help="rtpjpegpay mtu (RTP header included)"
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--baseline", action="store_true", help="no RTP element: push cost only")
    args = parser.parse_args()
    json.dump(run(args.mode, args.directory, args.mtu, args.rounds, args.baseline), sys.stdout)
    print()


if __name__ == "__main__":
    main()
