"""Atheris target for the RTP/JPEG depacketizer: a stream of fuzzer-made packets.

    python tests/fuzz/fuzz_rtpjpeg.py -max_total_time=10 -seed=1 tests/fuzz/corpus/rtpjpeg

Input format (tests/fuzz/common.py, ``decode_packet_stream``): initial sequence
number and a max_frame_size selector, then records of (control byte: marker, new
timestamp, sequence step; 16-bit length; payload). Every packet goes to the
compiled depacketizer and to the pure-Python reference; any exception, any
difference in output or counters, state held beyond max_frame_size, or a
returned frame that is not a JPEG RFC 2435 could have described is a crash.

Coverage: atheris only sees Python bytecode it has instrumented; the compiled
module is a black box to it. The reference in tests/rtp_jpeg_cases.py restates
the Cython depacketizer rule for rule, so it is the module instrumented here
and the differential check turns any divergence into a crash. The seed corpus,
generated from the stream table, starts the fuzzer on every drop path.
"""

from __future__ import annotations

import dataclasses  # noqa: F401  (imported before instrumentation, so not instrumented)
import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]  # run as a script: reach tests/ and gateway/

with atheris.instrument_imports(include=["tests.rtp_jpeg_cases", "tests.fuzz.common"]):
    from tests import rtp_jpeg_cases as ref
    from tests.fuzz import common

from gateway._ext.rtpjpeg import RtpJpegDepacketizer, walk_jpeg  # noqa: E402


def check_frame(out: bytes, limit: int) -> None:
    """A returned frame: within the limit, SOI to EOI, headers RFC 2435 could describe."""
    assert len(out) <= limit, (len(out), limit)
    assert out.startswith(b"\xff\xd8") and out.endswith(b"\xff\xd9")
    info = walk_jpeg(out)
    assert info.reason in (None, "qtable_16bit"), info
    assert info.rtp_type in (0, 1, 64, 65), info
    assert 8 <= info.width <= 2040 and 8 <= info.height <= 2040, info
    assert info.width % 8 == 0 and info.height % 8 == 0, info


def test_one_input(data: bytes) -> None:
    """Feed one fuzzer-made packet stream to both depacketizers and check every invariant."""
    common.check_depacketizers(data, RtpJpegDepacketizer, ref.RefDepacketizer, check_frame)


def main() -> None:
    """Hand control to libFuzzer."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
