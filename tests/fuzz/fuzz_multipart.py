"""Atheris target for the multipart scanner.

    python tests/fuzz/fuzz_multipart.py -max_total_time=10 -seed=1 tests/fuzz/corpus/multipart

Input format (tests/multipart_cases.py): scanner configuration, split points,
then the stream. Each input is fed, cut at the split points, to the compiled
scanner and to the pure-Python reference; any exception, any difference in
events, ``buffered`` or ``closed``, a body over max_part_size, or a buffer
over the documented bound is a crash.

Coverage: atheris only sees Python bytecode it has instrumented; the compiled
module is a black box to it. The reference in bench/pymultipart.py mirrors the
Cython state machine rule for rule, so it is the module instrumented here: its
branches stand in for the scanner's, and the differential check turns any
divergence between the two into a crash. The seed corpus, generated from the
case table, starts the fuzzer at every state and error path.
"""

from __future__ import annotations

import dataclasses  # noqa: F401  (imported before instrumentation, so not instrumented)
import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # run as a script: reach tests/ and bench/

with atheris.instrument_imports(include=["pymultipart"]):
    import pymultipart as ref

from gateway._ext import multipart as cy  # noqa: E402
from tests.multipart_cases import as_event, buffer_bound, decode_fuzz_input  # noqa: E402

REASONS = {"part_too_large", "headers_too_large", "too_many_headers", "bad_header",
           "bad_content_length"}  # fmt: skip


def _same_boundary_verdict(value: bytes) -> None:
    """boundary_from_content_type agrees between the two implementations."""
    outcomes = []
    for impl in (cy, ref):
        try:
            outcomes.append(impl.boundary_from_content_type(value))
        except ValueError as e:
            outcomes.append(f"ValueError: {e}")
    assert outcomes[0] == outcomes[1], outcomes


def test_one_input(data: bytes) -> None:
    """Feed one fuzzer input to both scanners and check every invariant."""
    fi = decode_fuzz_input(data)
    if fi is None:
        return
    _same_boundary_verdict(fi.stream[:120])
    limits = {
        "max_part_size": fi.max_part_size,
        "max_header_size": fi.max_header_size,
        "max_headers": fi.max_headers,
    }
    try:
        a = cy.MultipartScanner(fi.boundary, **limits)
    except ValueError:
        try:
            ref.MultipartScanner(fi.boundary, **limits)
        except ValueError:
            return
        raise AssertionError("the reference accepts a boundary the scanner refuses") from None
    b = ref.MultipartScanner(fi.boundary, **limits)
    bound = buffer_bound(fi.boundary, fi.max_part_size, fi.max_header_size, cy.MAX_PADDING)
    events = []
    for chunk in fi.chunks():
        got = [as_event(e) for e in a.feed(chunk)]
        want = [as_event(e) for e in b.feed(chunk)]
        assert got == want, (got, want)
        assert a.buffered == b.buffered, (a.buffered, b.buffered)
        assert a.buffered <= bound, (a.buffered, bound)
        assert a.closed == b.closed
        events += got
    whole = cy.MultipartScanner(fi.boundary, **limits)
    assert [as_event(e) for e in whole.feed(fi.stream)] == events, "depends on the split"
    for kind, *rest in events:
        if kind == "part":
            assert len(rest[2]) <= fi.max_part_size
        else:
            assert rest[0] in REASONS and rest[1] >= 0, rest


def main() -> None:
    """Hand control to libFuzzer."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
