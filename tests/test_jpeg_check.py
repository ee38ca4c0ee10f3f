"""The frame check between a source and a channel."""

from __future__ import annotations

import struct

import pytest

from gateway.media.jpeg import check_frame


def _jpeg(width: int = 64, height: int = 48, scan: bytes = b"\x12\x34") -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + bytes(9)
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + bytes(65)
    sos = b"\xff\xda" + struct.pack(">H", 12) + bytes(10)
    return b"\xff\xd8" + dqt + sof + sos + scan + b"\xff\xd9"


def test_good_frame_reports_size() -> None:
    check = check_frame(_jpeg(704, 576), 1 << 20)
    assert check.reason is None
    assert (check.width, check.height) == (704, 576)


def test_trailing_padding_is_trimmed() -> None:
    data = _jpeg()
    check = check_frame(data + b"\r\n\x00\x00", 1 << 20)
    assert check.reason is None and check.data == data


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"GIF89a" + bytes(40), "not_jpeg"),
        (_jpeg()[:-2], "truncated"),
        (_jpeg()[:40], "truncated"),
        # A DQT whose length runs past the end of the frame.
        (b"\xff\xd8\xff\xdb\xff\xf0" + bytes(10) + b"\xff\xd9", "corrupt"),
        # No SOF before SOS.
        (b"\xff\xd8\xff\xda\x00\x0c" + bytes(10) + b"\xff\xd9", "corrupt"),
        # Garbage where a marker should be.
        (b"\xff\xd8\x00\x00\x00\x00\xff\xd9", "corrupt"),
        # EOI right after SOI.
        (b"\xff\xd8\xff\xd9", "corrupt"),
    ],
)
def test_bad_frames(data: bytes, reason: str) -> None:
    assert check_frame(data, 1 << 20).reason == reason


def test_size_cap() -> None:
    data = _jpeg(scan=bytes(5000))
    assert check_frame(data, 4096).reason == "too_large"
    assert check_frame(data, len(data)).reason is None
