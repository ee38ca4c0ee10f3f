"""Atheris target for the JPEG walker and the RTP/JPEG packetizer: fuzzer-made JPEGs.

    python tests/fuzz/fuzz_jpeg_walk.py -max_total_time=10 -seed=1 tests/fuzz/corpus/jpeg_walk

Input: one byte choosing payload_size (200 + 8 * byte), then the frame. For
every frame:

- ``walk_jpeg`` and the pure-Python reference agree: the same fields, or a
  ValueError with the same message;
- ``packetize`` raises NotCarriable with the walker's reason, or the walker's
  ValueError, or returns exactly the reference's payloads: every one
  payload_size bytes but the last, offsets contiguous;
- the depacketizer (compiled and reference) turns those payloads back into a
  JPEG with the same scan data, type, size, restart interval and tables.

Coverage: the compiled module is a black box to atheris; the instrumented
reference walker (tests/rtp_jpeg_cases.py) stands in for its branches, and the
differential check turns any divergence into a crash. The seed corpus is the
case table: every reason, every error message, every header shape.
"""

from __future__ import annotations

import dataclasses  # noqa: F401  (imported before instrumentation, so not instrumented)
import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]  # run as a script: reach tests/ and gateway/

with atheris.instrument_imports(include=["tests.rtp_jpeg_cases"]):
    from tests import rtp_jpeg_cases as ref

from gateway._ext.rtpjpeg import (  # noqa: E402
    NotCarriable,
    RtpJpegDepacketizer,
    RtpJpegPacketizer,
    walk_jpeg,
)

FIELDS = ("width", "height", "rtp_type", "restart_interval", "qtables", "scan_offset",
          "scan_end", "reason")  # fmt: skip


def _walk(impl: object, frame: bytes) -> tuple[object, ...]:
    try:
        info = impl(frame)  # type: ignore[operator]
    except ValueError as e:
        return ("error", str(e))
    return tuple(getattr(info, f) for f in FIELDS)


def test_one_input(data: bytes) -> None:
    """Walk, packetize and depacketize one fuzzer-made frame; check every invariant."""
    if not data:
        return
    payload_size, frame = 200 + 8 * data[0], data[1:]
    verdict = _walk(walk_jpeg, frame)
    assert verdict == _walk(ref.ref_walk, frame), (verdict, _walk(ref.ref_walk, frame))
    try:
        packets = RtpJpegPacketizer(payload_size).packetize(frame)
    except NotCarriable as e:
        assert verdict[-1] == e.reason, (verdict, e.reason)
        return
    except ValueError as e:
        assert verdict == ("error", str(e)), (verdict, str(e))
        return
    width, height, rtp_type, restart_interval, qtables, scan_offset, scan_end, reason = verdict
    assert reason is None, verdict
    payloads = ref.ref_packetize(frame, payload_size)
    assert packets.data == b"".join(payloads)
    assert len(packets) == len(payloads)
    assert all(len(p) == payload_size for p in payloads[:-1])
    assert 0 < len(payloads[-1]) <= payload_size
    for depacketizer in (RtpJpegDepacketizer(64 << 20), ref.RefDepacketizer(64 << 20)):
        out = None
        for i, payload in enumerate(packets):
            out = depacketizer.push((65000 + i) & 0xFFFF, 1234, i == len(packets) - 1, payload)
        assert out is not None, depacketizer.dropped
        info = walk_jpeg(out)
        assert info.reason is None, info
        assert out[info.scan_offset : info.scan_end] == frame[scan_offset:scan_end]
        assert (info.width, info.height, info.rtp_type) == (width, height, rtp_type)
        assert (info.restart_interval, info.qtables) == (restart_interval, qtables)


def main() -> None:
    """Hand control to libFuzzer."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
