"""HTTP Digest (RFC 7616, MD5 and SHA-256, qop=auth) and Basic, server side, sans-IO.

Both the emulator and the gateway's listeners use it; the caller maps the
results onto its protocol (HTTP or RTSP), the scheme is the same.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

ALGORITHMS: dict[str, Callable[[bytes], str]] = {
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
    "MD5": lambda b: hashlib.md5(b, usedforsecurity=False).hexdigest(),
}
MAX_HEADER = 4096
_NONCE_MAC = 16


def ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """H(username:realm:password), what a server stores instead of the password."""
    return ALGORITHMS[algorithm](f"{username}:{realm}:{password}".encode())


def response_for(
    algorithm: str,
    ha1_hex: str,
    nonce: str,
    method: str,
    uri: str,
    nc: str = "",
    cnonce: str = "",
    qop: str | None = None,
) -> str:
    """The request-digest a client must send (RFC 7616 3.4.1)."""
    h = ALGORITHMS[algorithm]
    ha2 = h(f"{method}:{uri}".encode())
    if qop == "auth":
        return h(f"{ha1_hex}:{nonce}:{nc}:{cnonce}:auth:{ha2}".encode())
    return h(f"{ha1_hex}:{nonce}:{ha2}".encode())


class AuthError(ValueError):
    """Credentials refused; `stale` means only the nonce expired (RFC 7616 3.3)."""

    def __init__(self, reason: str, stale: bool = False) -> None:
        super().__init__(reason)
        self.stale = stale


def parse_auth_params(text: str) -> dict[str, str]:
    """Parse `a=b, c="d"` (RFC 7235 auth-params; quoted-string escapes honoured)."""
    if len(text) > MAX_HEADER:
        raise AuthError("authorization header too long")
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        if eq < 0:
            raise AuthError("malformed auth-param")
        name = text[i:eq].strip().lower()
        if not name or any(c in name for c in ' \t",'):
            raise AuthError("malformed auth-param name")
        i = eq + 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            i += 1
            out: list[str] = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                out.append(text[i])
                i += 1
            if i >= n:
                raise AuthError("unterminated quoted string")
            i += 1
            value = "".join(out)
        else:
            end = text.find(",", i)
            end = n if end < 0 else end
            value = text[i:end].strip()
            i = end
        if name in params:
            raise AuthError(f"duplicate auth-param {name}")
        params[name] = value
    return params


def parse_basic(header: str) -> tuple[str, str]:
    """(user, password) from `Basic <base64>`."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token or len(token) > MAX_HEADER:
        raise AuthError("not a Basic credential")
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, a token that is not ASCII
        raise AuthError("malformed Basic credential") from None
    user, sep, password = decoded.partition(":")
    if not sep:
        raise AuthError("malformed Basic credential")
    return user, password


@dataclass(frozen=True, slots=True)
class DigestUser:
    """What a server keeps of a user for Digest: the HA1 per algorithm."""

    name: str
    ha1: dict[str, str]


class DigestVerifier:
    """Issues Digest challenges and verifies the answers.

    Nonces are stateless (a timestamp and its HMAC under a per-process key),
    expire after `nonce_ttl` seconds, and the highest nonce-count seen per
    nonce is remembered in a bounded table so replays are refused.
    """

    def __init__(
        self,
        realm: str,
        lookup: Callable[[str], DigestUser | None],
        *,
        nonce_ttl: float = 300.0,
        algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
        clock: Callable[[], float] = time.time,
        max_tracked: int = 4096,
    ) -> None:
        self.realm = realm
        self._lookup = lookup
        self._ttl = nonce_ttl
        self._algorithms = algorithms
        self._clock = clock
        self._key = os.urandom(32)
        self._opaque = os.urandom(8).hex()
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._max_tracked = max_tracked

    def _nonce(self) -> str:
        stamp = struct.pack(">d", self._clock()) + os.urandom(8)
        mac = hmac.new(self._key, stamp, hashlib.sha256).digest()[:_NONCE_MAC]
        return base64.urlsafe_b64encode(stamp + mac).decode().rstrip("=")

    def _nonce_age(self, nonce: str) -> float:
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (binascii.Error, ValueError):
            raise AuthError("malformed nonce") from None
        if len(raw) != 16 + _NONCE_MAC:
            raise AuthError("malformed nonce")
        stamp, mac = raw[:16], raw[16:]
        good = hmac.new(self._key, stamp, hashlib.sha256).digest()[:_NONCE_MAC]
        if not hmac.compare_digest(mac, good):
            raise AuthError("unknown nonce")
        return self._clock() - struct.unpack(">d", stamp[:8])[0]

    def challenges(self, stale: bool = False) -> list[str]:
        """WWW-Authenticate values, strongest algorithm first (RFC 7616 3.7)."""
        nonce = self._nonce()
        return [
            f'Digest realm="{self.realm}", qop="auth", algorithm={alg}, '
            f'nonce="{nonce}", opaque="{self._opaque}"' + (", stale=true" if stale else "")
            for alg in self._algorithms
        ]

    def verify(self, method: str, header: str, request_uri: str) -> str:
        """Check `Authorization: Digest ...`; returns the user name or raises AuthError."""
        scheme, _, rest = header.strip().partition(" ")
        if scheme.lower() != "digest":
            raise AuthError("not a Digest credential")
        try:  # hashed below; surrogate escapes (bytes that were not UTF-8) cannot be
            rest.encode("utf-8")
        except UnicodeEncodeError:
            raise AuthError("digest credential is not UTF-8") from None
        p = parse_auth_params(rest)
        for key in ("username", "realm", "nonce", "uri", "response"):
            if key not in p:
                raise AuthError(f"digest credential without {key}")
        algorithm = p.get("algorithm", "MD5").upper()
        if algorithm not in self._algorithms:
            raise AuthError(f"unsupported algorithm {algorithm}")
        if p["realm"] != self.realm:
            raise AuthError("wrong realm")
        if not _same_target(p["uri"], request_uri):
            raise AuthError("digest uri does not match the request")
        user = self._lookup(p["username"])
        qop = p.get("qop")
        if qop not in (None, "auth"):
            raise AuthError(f"unsupported qop {qop}")
        age = self._nonce_age(p["nonce"])
        stored = user.ha1.get(algorithm) if user else None
        nc, cnonce = p.get("nc", ""), p.get("cnonce", "")
        if qop == "auth" and (len(nc) != 8 or not _is_hex(nc) or not cnonce):
            raise AuthError("qop=auth needs nc and cnonce")
        # Compute even for an unknown user so the timing does not tell which it was.
        expected = response_for(
            algorithm, stored or "0" * 64, p["nonce"], method, p["uri"], nc, cnonce, qop
        )
        if not (hmac.compare_digest(expected.encode(), p["response"].lower().encode()) and stored):
            raise AuthError("wrong user name or password")
        if age > self._ttl or age < -60:
            raise AuthError("nonce expired", stale=True)
        if qop == "auth":
            self._check_count(p["nonce"], int(nc, 16))
        return p["username"]

    def _check_count(self, nonce: str, count: int) -> None:
        last = self._counts.get(nonce, 0)
        if count <= last:
            raise AuthError("nonce count replayed")
        self._counts[nonce] = count
        self._counts.move_to_end(nonce)
        while len(self._counts) > self._max_tracked:
            self._counts.popitem(last=False)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _same_target(digest_uri: str, request_uri: str) -> bool:
    """Clients send the digest uri absolute or as a path; compare path and query."""

    def path(u: str) -> str:
        if "://" in u:
            rest = u.split("://", 1)[1]
            slash = rest.find("/")
            return rest[slash:] if slash >= 0 else "/"
        return u or "/"

    return path(digest_uri) == path(request_uri)
