"""Atheris target for the frame check every source frame goes through (gateway/media/jpeg.py).

    python tests/fuzz/fuzz_jpeg_check.py -max_total_time=10 -seed=1 tests/fuzz/corpus/jpeg_check

Input: one byte choosing the size limit (256 * (byte + 1)), then the frame, as
a camera's multipart part or snapshot body would hold it. ``check_frame``
must never raise; it refuses with one of its documented reasons, or accepts a
frame that starts with SOI, ends with EOI, is the input less at most its
trailing padding, fits the limit and has a picture size. A frame it accepts
goes on to the RTP/JPEG walker: that may refuse it with a ValueError (the
channel re-encodes or drops it) but never raise anything else, and when it
accepts it too the two agree on the picture size.

The seed corpus is the JPEG walker's (every header shape of the RFC 2435
case table) plus the frame check's own table and the hostile frames of
tests/test_hostile_sources.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]  # run as a script: reach gateway/

with atheris.instrument_imports(include=["gateway.media.jpeg"]):
    from gateway.media.jpeg import EOI, SOI, check_frame

from gateway._ext.rtpjpeg import walk_jpeg  # noqa: E402

REASONS = {"empty", "too_large", "not_jpeg", "truncated", "corrupt"}


def test_one_input(data: bytes) -> None:
    """Check one fuzzer-made frame and every invariant of the verdict."""
    if not data:
        return
    limit, frame = 256 * (data[0] + 1), data[1:]
    check = check_frame(frame, limit)
    if check.reason is not None:
        assert check.reason in REASONS, check
        assert check.reason != "too_large" or len(frame) > limit
        return
    out = check.data
    assert len(out) <= len(frame) <= limit, (len(out), len(frame), limit)
    assert frame.startswith(out), "the accepted frame is not the input"
    assert len(frame) - len(out) <= 32, "more trailing bytes than the padding allowance"
    assert out.startswith(SOI) and out.endswith(EOI), out[:4] + out[-4:]
    assert 0 < check.width <= 0xFFFF and 0 < check.height <= 0xFFFF, check
    try:
        info = walk_jpeg(out)
    except ValueError:
        return
    if info.width and info.height:
        assert (info.width, info.height) == (check.width, check.height), (info, check)


def main() -> None:
    """Hand control to libFuzzer."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
