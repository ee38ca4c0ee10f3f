"""Seed corpora of the fuzz targets for the tunnel, frame check, Transport, auth, URL and SDP.

The seeds come from the case tables the unit tests use; the corpus
directories also keep the crashers the fuzzers found (files named
``crash-*``, minimized, each fixed and kept as a regression input). Rewrite
the seeds after changing a table with:

    .venv/bin/python -m tests.fuzz.parser_seeds
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable, Iterable

from tests.fuzz import seeds

TARGETS = ("tunnel", "jpeg_check", "transport", "auth", "url", "sdp")
CRASH_PREFIX = "crash-"


# -- input formats ---------------------------------------------------------------------------


def encode_tunnel(mode: int, payload: bytes, splits: Iterable[int] = ()) -> bytes:
    """A tests/fuzz/fuzz_tunnel.py input: mode (0 body as sent, 1 requests to encode)."""
    cuts = list(splits)[:15]
    return bytes([mode, len(cuts)]) + struct.pack(f"<{len(cuts)}H", *cuts) + payload


def encode_jpeg_check(frame: bytes, limit: int = 65536) -> bytes:
    """A tests/fuzz/fuzz_jpeg_check.py input: limit selector, frame."""
    return bytes([max(0, min(255, limit // 256 - 1))]) + frame


def encode_auth(mode: int, text: str | bytes) -> bytes:
    """A tests/fuzz/fuzz_auth.py input: 0 params, 1 Basic, 2 Digest header, 3 answer fields."""
    raw = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    return bytes([mode]) + raw


def auth_answer(
    user: str = "alice",
    wrong: str = "",
    cnonce: str = "0a4f113b",
    nc: str = "00000001",
    qop: str = "auth",
    alg: str = "",
    absolute: bool = False,
) -> bytes:
    """Mode 3 of fuzz_auth: NUL-separated answer fields (alg: its length picks the algorithm)."""
    fields = (user, wrong, cnonce, nc, qop, alg, "x" if absolute else "")
    return encode_auth(3, "\0".join(fields))


# -- tables ----------------------------------------------------------------------------------


def tunnel_files() -> dict[str, bytes]:
    """Every server-role RTSP case stream, encoded request by request and as one body."""
    from tests.rtsp_cases import CASES

    files: dict[str, bytes] = {}
    for case in CASES:
        if case.role != "server" or len(case.stream) > 2048:
            continue
        n = len(case.stream)
        files[f"requests_{case.name}"] = encode_tunnel(1, case.stream, (n // 3, n // 2))
        body = base64.encodebytes(case.stream)  # 76-column lines, as some clients send
        files[f"body_{case.name}"] = encode_tunnel(0, body, (1, len(body) // 2))
    one = base64.b64encode(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n")
    two = base64.b64encode(b"DESCRIBE rtsp://h/lobby RTSP/1.0\r\nCSeq: 2\r\n\r\n")
    files["body_padded_requests_back_to_back"] = encode_tunnel(0, one + two, (len(one) - 1,))
    files["body_padding_split"] = encode_tunnel(0, one + b"\r\n" + two, (len(one) - 1, len(one)))
    for name, body in {
        "not_base64": b"OPTIONS * RTSP/1.0\r\n\r\n",
        "padding_inside": b"QQ=A",
        "padding_only": b"====",
        "lone_data_char": b"Q===",
        "non_ascii": "é".encode() * 4,
    }.items():
        files[f"bad_{name}"] = encode_tunnel(0, body)
    return files


def jpeg_check_files() -> dict[str, bytes]:
    """The JPEG walker's corpus (same frames), the frame check's table and hostile frames."""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, 48, 64, 3) + bytes(9)
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + bytes(65)
    sos = b"\xff\xda" + struct.pack(">H", 12) + bytes(10)
    good = b"\xff\xd8" + dqt + sof + sos + b"\x12\x34\xff\xd9"
    files = {
        "good": encode_jpeg_check(good),
        "good_padded": encode_jpeg_check(good + b"\r\n\x00\x00"),
        "too_large": encode_jpeg_check(good + bytes(300), 256),
        "empty": encode_jpeg_check(b""),
        "not_jpeg": encode_jpeg_check(b"GIF89a" + bytes(40)),
        "truncated": encode_jpeg_check(good[:-2]),
        "dqt_past_end": encode_jpeg_check(b"\xff\xd8\xff\xdb\xff\xf0" + bytes(10) + b"\xff\xd9"),
        "no_sof": encode_jpeg_check(b"\xff\xd8\xff\xda\x00\x0c" + bytes(10) + b"\xff\xd9"),
        "garbage_marker": encode_jpeg_check(b"\xff\xd8\x00\x00\x00\x00\xff\xd9"),
        "soi_eoi": encode_jpeg_check(b"\xff\xd8\xff\xd9"),
        "fill_bytes": encode_jpeg_check(b"\xff\xd8\xff\xff\xff" + good[2:]),
        "two_sofs": encode_jpeg_check(
            good.replace(sof, sof + sof.replace(b"\x00\x30\x00\x40", b"\x00\x10\x00\x20"))
        ),
        # The hostile camera's frame: an APP segment whose length runs past the EOI.
        "marker_length_past_end": encode_jpeg_check(
            b"\xff\xd8\xff\xe0\xff\xff" + bytes(20) + b"\xff\xd9"
        ),
    }
    walk = seeds.CORPUS_ROOT / "jpeg_walk"
    if walk.is_dir():
        for path in sorted(walk.iterdir()):
            data = path.read_bytes()
            if data:
                files[f"walk_{path.name}"] = encode_jpeg_check(data[1:])
    return files


def transport_files() -> dict[str, bytes]:
    """The Transport case table: what clients and servers send, and every error."""
    from tests.test_rtsp_transport import CASES, ERRORS

    files = {f"ok_{name}": header.encode() for name, header, _, _ in CASES}
    for i, (header, _, _) in enumerate(ERRORS):
        if len(header) <= 4096 + 64:
            files[f"bad_{i:02d}"] = header.encode()
    files["extra_quoted"] = b'RTP/AVP;unicast;x-dynamic-rate=1;x-foo="a b"'
    files["destination_bare"] = b"RTP/AVP;multicast;destination;ttl=16;port=5004-5005"
    files["mode_list"] = b'RTP/AVP/TCP;interleaved=0-1;mode="PLAY,RECORD"'
    return files


def auth_files() -> dict[str, bytes]:
    """Auth-params, Basic and Digest headers of the digest tests, and well-formed answers."""
    basic = base64.b64encode(b"root:pa:ss").decode()
    digest = (
        'Digest username="alice", realm="coaxgate", nonce="NONCE", '
        'uri="/axis-cgi/mjpg/video.cgi?camera=1", response="0123456789abcdef", '
        'qop=auth, nc=00000001, cnonce="abc", algorithm=SHA-256'
    )
    files = {
        "params": encode_auth(0, 'username="a\\"b", realm="r, s", nc=00000001, qop=auth'),
        "params_unterminated": encode_auth(0, 'username="open'),
        "params_no_name": encode_auth(0, "=x"),
        "params_duplicate": encode_auth(0, "a=1, a=2"),
        "basic": encode_auth(1, f"Basic {basic}"),
        "basic_bad": encode_auth(1, "Basic !!!"),
        "basic_no_colon": encode_auth(1, "Basic " + base64.b64encode(b"nocolon").decode()),
        "basic_bearer": encode_auth(1, "Bearer x"),
        "digest": encode_auth(2, digest),
        "digest_md5_no_qop": encode_auth(
            2, digest.replace("qop=auth, nc=00000001, ", "").replace("SHA-256", "MD5")
        ),
        "digest_wrong_realm": encode_auth(2, digest.replace('"coaxgate"', '"other"')),
        "digest_absolute_uri": encode_auth(2, digest.replace('uri="', 'uri="rtsp://h:554')),
        "answer_sha256": auth_answer(),
        "answer_md5": auth_answer(alg="x"),
        "answer_no_qop": auth_answer(qop="", nc="", cnonce=""),
        "answer_quoted_user": auth_answer(user='a "quoted" \\ user, realm="x"'),
        "answer_unicode_user": auth_answer(user="Müller-Lüdenscheidt"),
        "answer_absolute_uri": auth_answer(absolute=True),
        "answer_wrong_password": auth_answer(wrong="x"),
        "answer_bad_nc": auth_answer(nc="0000000g"),
        "answer_zero_nc": auth_answer(nc="00000000"),
        "answer_unknown_algorithm": auth_answer(alg="xyz"),
    }
    return files


URLS = (
    "rtsp://192.0.2.10:8554/lobby",
    "rtsp://192.0.2.10:8554/lobby/",
    "rtsp://192.0.2.10:8554/lobby/jpeg",
    "rtsp://192.0.2.10:8554/dock/h264/trackID=0",
    "rtsp://192.0.2.10:8554/cam-3/JPEG?fps=5",
    "rtsp://192.0.2.10/lobby?fps=12.5",
    "rtsps://[2001:db8::1]:322/lobby/trackID=0",
    "rtsp://192.0.2.10/axis-media/media.amp?camera=2&videocodec=h264&fps=10",
    "rtsp://192.0.2.10/axis-media/media.amp/trackID=0?camera=3",
    "rtsp://192.0.2.10/AXIS-MEDIA/media.amp",
    "/lobby",
    "*",
    "rtsp://192.0.2.10/nowhere",
    "rtsp://192.0.2.10/lobby/mpeg4",
    "rtsp://192.0.2.10/lobby/jpeg/extra",
    "rtsp://192.0.2.10/lobby?fps=nan",
    "rtsp://192.0.2.10/lobby?fps=1e9",
    "rtsp://192.0.2.10/axis-media/media.amp?camera=9",
    "rtsp://192.0.2.10/axis-media/media.amp?camera=1&videocodec=mpeg4",
    "http://192.0.2.10/lobby",
    "rtsp://user:pass@192.0.2.10/lobby",
    "rtsp://192.0.2.10/lob%62y",
    "rtsp://192.0.2.10:8554/lobby/trackID=1000",
)


def url_files() -> dict[str, bytes]:
    """Request-URIs: every form resolve() knows, and the ones it refuses."""
    files = {f"url_{i:02d}": url.encode() for i, url in enumerate(URLS)}
    files["too_long"] = ("rtsp://h/" + "a" * 2100).encode()
    return files


def sdp_files() -> dict[str, bytes]:
    """The URLs (mode 0) and the SPS case table with a PPS (mode 1)."""
    from tests.rtp_h264_cases import PPS, SPS_CASES

    files = {f"describe_{i:02d}": b"\0" + url.encode() for i, url in enumerate(URLS)}
    for case in SPS_CASES:
        if len(case.data) <= 255:
            files[f"fmtp_{case.name}"] = b"\1" + bytes([len(case.data)]) + case.data + PPS
    files["fmtp_empty"] = b"\1\0"
    return files


CORPORA: dict[str, Callable[[], dict[str, bytes]]] = {
    "tunnel": tunnel_files,
    "jpeg_check": jpeg_check_files,
    "transport": transport_files,
    "auth": auth_files,
    "url": url_files,
    "sdp": sdp_files,
}


def write_corpora() -> None:
    """Rewrite the seeds of every corpus here; crashers (crash-*) stay."""
    for name, make in CORPORA.items():
        directory = seeds.CORPUS_ROOT / name
        files = make()
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.iterdir():
            if stale.name not in files and not stale.name.startswith(CRASH_PREFIX):
                stale.unlink()
        for file_name, data in files.items():
            (directory / file_name).write_bytes(data)


if __name__ == "__main__":
    write_corpora()
    for name in CORPORA:
        print(f"{name}: {len(list((seeds.CORPUS_ROOT / name).iterdir()))} files")
