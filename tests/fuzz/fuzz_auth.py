"""Atheris target for Digest and Basic credentials, server side (gateway/security/digest.py).

    python tests/fuzz/fuzz_auth.py -max_total_time=10 -seed=1 tests/fuzz/corpus/auth

The first byte picks the mode (modulo 4); the rest is header text as the HTTP
and RTSP parsers hand it over (UTF-8 with surrogate escapes):

0. ``parse_auth_params``: a dict of lower-case names, or AuthError;
1. ``parse_basic``: (user, password), or AuthError;
2. ``DigestVerifier.verify`` of the text as an Authorization header: a user
   name, or AuthError (with a live nonce spliced in for ``NONCE``, so the
   fuzzer gets past the nonce check);
3. fields separated by NUL (user name, password suffix, cnonce, nc, qop, algorithm,
   URI form): the target writes the Authorization header a client would,
   quoting and escaping as RFC 7616 says, answers a live challenge, and the
   verifier must accept it and return the user name exactly when the fields
   make a valid answer, and refuse it with AuthError otherwise.

Anything but AuthError out of the parsers is a crash: the HTTP and RTSP
servers turn only AuthError into a 401.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]  # run as a script: reach gateway/

with atheris.instrument_imports(include=["gateway.security.digest"]):
    from gateway.security.digest import (
        AuthError,
        DigestUser,
        DigestVerifier,
        ha1,
        parse_auth_params,
        parse_basic,
        response_for,
    )

REALM = "coaxgate"
PASSWORD = "pw"
URI = "/axis-cgi/mjpg/video.cgi?camera=1"
ALGORITHMS = ("SHA-256", "MD5", "sha-256", "SHA-512")


def _user(name: str) -> DigestUser | None:
    """Every name is a user with the password PASSWORD (the fuzzer picks names)."""
    try:
        return DigestUser(name, {a: ha1(a, name, REALM, PASSWORD) for a in ("SHA-256", "MD5")})
    except UnicodeEncodeError:
        return None


def _verifier() -> DigestVerifier:
    return DigestVerifier(REALM, _user, clock=lambda: 1_000_000.0)


def _nonce(verifier: DigestVerifier) -> str:
    return parse_auth_params(verifier.challenges()[0].partition(" ")[2])["nonce"]


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_params(text: str) -> None:
    """Mode 0."""
    try:
        params = parse_auth_params(text)
    except AuthError:
        return
    for name, value in params.items():
        assert name and name == name.lower() and isinstance(value, str), (name, value)


def check_basic(text: str) -> None:
    """Mode 1."""
    try:
        user, password = parse_basic(text)
    except AuthError:
        return
    assert ":" not in user, user
    assert isinstance(password, str)


def check_verify(text: str) -> None:
    """Mode 2."""
    verifier = _verifier()
    header = text.replace("NONCE", _nonce(verifier))
    try:
        name = verifier.verify("GET", header, URI)
    except AuthError:
        return
    assert isinstance(name, str)


def check_answer(data: bytes) -> None:
    """Mode 3: a client's answer, well-formed or not, written from fuzzer-chosen fields."""
    fields = data.decode("utf-8", "replace").split("\0")
    fields += [""] * (7 - len(fields))
    user, wrong, cnonce, nc, qop, alg, form = fields[:7]
    password = PASSWORD + wrong  # the right password unless the field adds to it
    algorithm = ALGORITHMS[len(alg) % len(ALGORITHMS)]
    uri = URI if len(form) % 2 == 0 else "rtsp://192.0.2.10:554" + URI
    verifier = _verifier()
    nonce = _nonce(verifier)
    canonical = algorithm.upper()
    qop_value = qop or None
    secret = ha1(canonical, user, REALM, password) if canonical in ("SHA-256", "MD5") else "0"
    response = response_for(
        canonical if canonical in ("SHA-256", "MD5") else "MD5",
        secret, nonce, "GET", uri, nc, cnonce, qop_value,
    )  # fmt: skip
    params = [
        f"username={_quoted(user)}",
        f"realm={_quoted(REALM)}",
        f"nonce={_quoted(nonce)}",
        f"uri={_quoted(uri)}",
        f"response={_quoted(response)}",
        f"algorithm={algorithm}",
    ]
    if qop_value is not None:
        params += [f"qop={_quoted(qop_value)}", f"nc={_quoted(nc)}", f"cnonce={_quoted(cnonce)}"]
    header = "Digest " + ", ".join(params)
    valid = (
        canonical in ("SHA-256", "MD5")
        and password == PASSWORD
        and len(header) - len("Digest ") <= 4096
        and (
            qop_value is None
            or (
                qop_value == "auth"
                and len(nc) == 8
                and all(c in "0123456789abcdefABCDEF" for c in nc)
                and int(nc, 16) > 0
                and cnonce != ""
            )
        )
    )
    try:
        name = verifier.verify("GET", header, URI)
    except AuthError as e:
        assert not valid, f"a valid answer refused: {e} ({header!r})"
        return
    assert valid, f"an invalid answer accepted: {header!r}"
    assert name == user, (name, user)


def test_one_input(data: bytes) -> None:
    """Dispatch one fuzzer-made input by its first byte."""
    if not data:
        return
    mode, rest = data[0] % 4, data[1:]
    text = rest.decode("utf-8", "surrogateescape")
    if mode == 0:
        check_params(text)
    elif mode == 1:
        check_basic(text)
    elif mode == 2:
        check_verify(text)
    else:
        check_answer(rest)


def main() -> None:
    """Hand control to libFuzzer."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
