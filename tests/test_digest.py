"""Server-side Digest (RFC 7616) and Basic parsing."""

from __future__ import annotations

import base64

import pytest

from gateway.security.digest import (
    AuthError,
    DigestUser,
    DigestVerifier,
    ha1,
    parse_auth_params,
    parse_basic,
    response_for,
)

# RFC 7616 section 3.9.1.
RFC = {
    "user": "Mufasa",
    "password": "Circle of Life",
    "realm": "http-auth@example.org",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    "uri": "/dir/index.html",
}


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_example(algorithm: str, expected: str) -> None:
    secret = ha1(algorithm, RFC["user"], RFC["realm"], RFC["password"])
    got = response_for(
        algorithm, secret, RFC["nonce"], "GET", RFC["uri"], "00000001", RFC["cnonce"], "auth"
    )
    assert got == expected


def test_auth_params() -> None:
    p = parse_auth_params('username="a\\"b", realm="r, s", nc=00000001, qop=auth')
    assert p == {"username": 'a"b', "realm": "r, s", "nc": "00000001", "qop": "auth"}
    for bad in ('username="open', "=x", "a=1, a=2", "x" * 5000):
        with pytest.raises(AuthError):
            parse_auth_params(bad)


def test_basic() -> None:
    token = base64.b64encode(b"root:pa:ss").decode()
    assert parse_basic(f"Basic {token}") == ("root", "pa:ss")
    for bad in ("Basic !!!", "Bearer x", "Basic " + base64.b64encode(b"nocolon").decode()):
        with pytest.raises(AuthError):
            parse_basic(bad)


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _answer(challenge: str, algorithm: str, password: str, nc: str, uri: str) -> str:
    params = parse_auth_params(challenge.partition(" ")[2])
    secret = ha1(algorithm, "alice", params["realm"], password)
    resp = response_for(algorithm, secret, params["nonce"], "GET", uri, nc, "abc", "auth")
    return (
        f'Digest username="alice", realm="{params["realm"]}", nonce="{params["nonce"]}", '
        f'uri="{uri}", response="{resp}", qop=auth, nc={nc}, cnonce="abc", '
        f"algorithm={algorithm}"
    )


def _verifier(clock: _Clock) -> DigestVerifier:
    user = DigestUser("alice", {a: ha1(a, "alice", "coaxgate", "pw") for a in ("SHA-256", "MD5")})
    return DigestVerifier("coaxgate", lambda n: user if n == "alice" else None, clock=clock)


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_verifier_round_trip(algorithm: str) -> None:
    clock = _Clock()
    v = _verifier(clock)
    sha, md5 = v.challenges()
    assert "algorithm=SHA-256" in sha and "algorithm=MD5" in md5
    challenge = sha if algorithm == "SHA-256" else md5
    header = _answer(challenge, algorithm, "pw", "00000001", "/x?y=1")
    assert v.verify("GET", header, "/x?y=1") == "alice"
    # Absolute URI in the credential, as some RTSP clients send it.
    absolute = _answer(challenge, algorithm, "pw", "00000002", "rtsp://h:8554/x?y=1")
    assert v.verify("GET", absolute, "/x?y=1") == "alice"


def test_verifier_refusals() -> None:
    clock = _Clock()
    v = _verifier(clock)
    challenge = v.challenges()[0]
    with pytest.raises(AuthError, match="wrong user name or password"):
        v.verify("GET", _answer(challenge, "SHA-256", "bad", "00000001", "/x"), "/x")
    good = _answer(challenge, "SHA-256", "pw", "00000001", "/x")
    with pytest.raises(AuthError, match="does not match"):
        v.verify("GET", good, "/other")
    assert v.verify("GET", good, "/x") == "alice"
    with pytest.raises(AuthError, match="replayed"):
        v.verify("GET", good, "/x")
    clock.now += 301
    late = _answer(challenge, "SHA-256", "pw", "00000002", "/x")
    with pytest.raises(AuthError) as info:
        v.verify("GET", late, "/x")
    assert info.value.stale
    forged = good.replace(parse_auth_params(challenge.partition(" ")[2])["nonce"], "AAAA" * 11)
    with pytest.raises(AuthError):
        v.verify("GET", forged, "/x")
