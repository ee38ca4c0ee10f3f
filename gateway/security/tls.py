"""TLS: the server context of the HTTPS and RTSPS listeners, the HTTP-to-HTTPS redirect,
and the self-signed certificate `coaxgate cert` writes.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import re
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path

from aiohttp import web

from ..config import ConfigError, TlsConfig

log = logging.getLogger(__name__)

# TLS 1.2 suites with forward secrecy and AEAD only (TLS 1.3 suites are always on).
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!MD5:!DSS"
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_RE = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")
_HOST_HEADER_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})(:\d{1,5})?$")


def server_context(cfg: TlsConfig) -> ssl.SSLContext:
    """The server SSLContext of [tls]: TLS 1.2 or later, no client certificates."""
    assert cfg.cert is not None and cfg.key is not None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    try:
        context.load_cert_chain(cfg.cert, cfg.key)
    except (ssl.SSLError, OSError) as e:
        raise ConfigError("tls.cert", f"cannot load the certificate and key: {e}") from None
    try:
        if os.stat(cfg.key).st_mode & 0o077:
            log.warning("TLS key %s is readable by other users: chmod 600 it", cfg.key)
    except OSError:
        pass
    return context


def redirect_app(https_port: Callable[[], int]) -> web.Application:
    """An application that answers every request with 308 to the same URL over HTTPS."""

    async def redirect(request: web.Request) -> web.Response:
        # Not HTTPPermanentRedirect: it would normalize the URL (escapes, dot segments).
        location = https_location(request, https_port())
        return web.Response(status=308, text=f"{location}\n", headers={"Location": location})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    return app


def https_location(request: web.Request, port: int) -> str:
    """The https:// URL of a request: same host as asked for, HTTPS port, same path and query."""
    host = request.headers.get("Host", "")
    m = _HOST_HEADER_RE.match(host)
    if m:
        name = m.group(1)
    else:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        addr = sockname[0] if sockname else "localhost"
        name = f"[{addr}]" if ":" in addr else addr
    netloc = name if port == 443 else f"{name}:{port}"
    # The request target as sent (path and query); an absolute-form target gives its path.
    path = request.raw_path if request.raw_path.startswith("/") else str(request.rel_url)
    return f"https://{netloc}{path}"


# -- coaxgate cert -----------------------------------------------------------------------


def self_signed(
    hosts: Sequence[str] = DEFAULT_HOSTS, days: int = 825, rsa: bool = False
) -> tuple[bytes, bytes]:
    """A self-signed server certificate for `hosts` (names and IPs) and its key, both PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not hosts:
        raise ValueError("at least one host is needed")
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if not _HOST_RE.match(host) or len(host) > 253:
                raise ValueError(f"not a host name or IP address: {host!r}") from None
            names.append(x509.DNSName(host.lower()))
    key: ec.EllipticCurvePrivateKey | rsa_keys.RSAPrivateKey
    if rsa:
        key = rsa_keys.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, hosts[0][:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "coaxgate self-signed"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=rsa,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 fingerprint of a PEM certificate, as browsers show it (AA:BB:...)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    digest = x509.load_pem_x509_certificate(cert_pem).fingerprint(hashes.SHA256())
    return ":".join(f"{b:02X}" for b in digest)


def write_private(path: Path, data: bytes, force: bool) -> None:
    """Write a file readable by its owner only (0600), refusing to replace one unless `force`."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file replaced with --force keeps no wider mode
        os.write(fd, data)
    finally:
        os.close(fd)
