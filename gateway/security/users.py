"""Users as the config stores them: password hashes for Digest and for Basic, never passwords.

Digest needs H(user:realm:password) (the HA1) per algorithm; Basic is checked
against a slow salted hash (scrypt) so that a leaked config does not give the
passwords away cheaply. `coaxgate passwd` prints a `[[users]]` entry with all
three.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os

from .digest import ha1

# scrypt cost: about 50 ms and 16 MiB a check on a small server core.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 14, 8, 1
MAX_PASSWORD = 1024


def scrypt_hash(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """`scrypt$N$r$p$salt$hash`, base64 parts."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    parts = (base64.b64encode(salt).decode(), base64.b64encode(digest).decode())
    return f"scrypt${n}${r}${p}${parts[0]}${parts[1]}"


def scrypt_verify(stored: str, password: str) -> bool:
    """Whether `password` matches a `scrypt$...` string (slow on purpose)."""
    try:
        _, n, r, p, salt, digest = stored.split("$")
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode()[:MAX_PASSWORD],
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(want),
            maxmem=256 << 20,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def user_entry(name: str, role: str, realm: str, password: str) -> dict[str, str]:
    """The fields of a `[[users]]` entry."""
    return {
        "name": name,
        "role": role,
        "ha1_md5": ha1("MD5", name, realm, password),
        "ha1_sha256": ha1("SHA-256", name, realm, password),
        "scrypt": scrypt_hash(password),
    }


def user_toml(entry: dict[str, str], realm: str) -> str:
    """A `[[users]]` table to paste into the config (the HA1s depend on the realm)."""
    lines = [f"[[users]]  # Digest hashes for realm {json.dumps(realm)}"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in entry.items()]
    return "\n".join(lines) + "\n"
