"""Atheris target for the RTSP-over-HTTP tunnel's POST leg: base64 text to RTSP requests.

    python tests/fuzz/fuzz_tunnel.py -max_total_time=10 -seed=1 tests/fuzz/corpus/tunnel

Input format (tests/fuzz/parser_seeds.py, ``encode_tunnel``): a mode byte, a
count of split points (modulo 16) and as many little-endian uint16 offsets,
then the payload.

- mode 0: the payload is the POST body as sent, fed to ``Base64Stream``
  whole and cut at the split points: the same bytes or a ValueError either
  way, never another exception, and never more than one quantum held back;
- mode 1: the payload is what the client means to say, cut at the split
  points into requests that are base64-encoded one by one (padded, as real
  clients do) and sent back to back: the decoder must give the payload back
  exactly, whole or cut at the same points of the encoded text.

Whatever comes out is fed to the RTSP parser in the server role, as the tunnel
does: it never raises and gives the same events whole and in pieces.
"""

from __future__ import annotations

import base64
import itertools
import struct
import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]  # run as a script: reach gateway/ and tests/

with atheris.instrument_imports(include=["gateway.rtsp.tunnel"]):
    from gateway.rtsp.tunnel import Base64Stream

from gateway.rtsp.message import RtspParser  # noqa: E402


def _cut(data: bytes, splits: list[int]) -> list[bytes]:
    cuts = sorted({s % (len(data) + 1) for s in splits})
    return [data[a:b] for a, b in itertools.pairwise([0, *cuts, len(data)])]


def _decode(chunks: list[bytes]) -> bytes | str:
    """What the tunnel decodes from a body that arrives in these chunks; str: the error."""
    decoder = Base64Stream()
    out = bytearray()
    for chunk in chunks:
        try:
            out += decoder.feed(chunk)
        except ValueError as e:
            assert str(e).startswith("bad base64 in the tunnel"), e
            return str(e)
        assert len(decoder._pending) <= 3, decoder._pending
    return bytes(out)


def test_one_input(data: bytes) -> None:
    """Decode one tunnel body whole and in pieces; parse what comes out."""
    if len(data) < 2:
        return
    mode, k = data[0] & 1, data[1] % 16
    if len(data) < 2 + 2 * k:
        return
    splits = list(struct.unpack_from(f"<{k}H", data, 2))
    payload = data[2 + 2 * k :]
    if mode == 0:
        body = payload
    else:
        body = b"".join(base64.b64encode(piece) for piece in _cut(payload, splits))
    whole = _decode([body])
    pieces = _decode(_cut(body, splits))
    if isinstance(whole, str) or isinstance(pieces, str):
        # A refusal may come in a later piece, but it comes either way.
        assert isinstance(whole, str) and isinstance(pieces, str), (whole, pieces)
        assert mode == 0, whole
        return
    assert whole == pieces, "depends on the split"
    if mode == 1:
        assert whole == payload, (whole, payload)
    events = RtspParser("server").feed(whole)
    parser = RtspParser("server")
    chunked = [e for piece in _cut(whole, splits) for e in parser.feed(piece)]
    assert chunked == events, "the parser depends on the split"


def main() -> None:
    """Hand control to libFuzzer."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
