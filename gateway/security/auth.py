"""Who may do what: users, roles, Digest/Basic credentials and lockouts, for RTSP and HTTP alike.

Sans-IO: the listeners pass what a request carries (method, URI, the
Authorization header, the peer, whether the connection is TLS) and what the
request needs; they get back an identity or a refusal to send (401 with
challenges, 403), and how long to hold a refusal of wrong credentials back.

Roles, as on Axis devices: a viewer watches, an operator also reads the
sessions API, an admin does everything. With no users configured the gateway
is open for viewing (and says so at start) and admin endpoints answer only on
loopback.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import os
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from ..config import ROLES, AuthConfig, UserConfig
from .digest import AuthError, DigestUser, DigestVerifier, parse_basic
from .users import scrypt_verify

log = logging.getLogger(__name__)
access_log = logging.getLogger("gateway.access")

# What a request needs.
PUBLIC, VIEW, OPERATE, ADMIN, METRICS = "public", "view", "operate", "admin", "metrics"
RANK = {role: i for i, role in enumerate(ROLES)}
MAX_TRACKED = 10_000  # addresses with recent failures; the oldest are forgotten first
BASIC_CACHE = 1024


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request comes from: a configured user, or anonymous (name "")."""

    name: str
    role: str | None
    channels: tuple[str, ...] | None = None

    @property
    def anonymous(self) -> bool:
        """No credentials were given."""
        return not self.name

    def may_view(self, channel: str | None) -> bool:
        """Whether the user's channel allow list lets it watch `channel`."""
        return channel is None or self.channels is None or channel in self.channels


ANONYMOUS = Identity("", None)


@dataclass(frozen=True, slots=True)
class Refusal:
    """What to answer instead: 401 with challenges, 403, or 429 while locked out."""

    status: int
    reason: str
    challenges: tuple[str, ...] = ()
    delay: float = 0.0  # hold the answer back this long (wrong credentials)


@dataclass(frozen=True, slots=True)
class BasicPending:
    """A Basic credential not yet checked: the caller runs `Authenticator.check_basic`
    off the event loop, then `Authenticator.settle` with its result."""

    user: UserConfig
    password: str
    # The request it came with, for settling it.
    protocol: str = ""
    peer: str = ""
    secure: bool = False
    need: str = VIEW
    channel: str | None = None
    loopback: bool = False


Outcome = Identity | Refusal | BasicPending


class Authenticator:
    """Checks credentials and permissions; counts failures and locks out persistent guessers."""

    def __init__(self, config: AuthConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.users = {u.name: u for u in config.users}
        self.open = not self.users  # no users: anonymous viewing, admin on loopback only
        self._clock = clock
        self.digest = DigestVerifier(config.realm, self._digest_user, nonce_ttl=config.nonce_ttl)
        self.failures: Counter[str] = Counter()  # by protocol
        self.lockouts = 0
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()
        self._locked: OrderedDict[str, float] = OrderedDict()
        # Basic checks are slow (scrypt): remember good ones by a keyed hash, never the password.
        self._key = os.urandom(32)
        self._basic_ok: OrderedDict[bytes, str] = OrderedDict()

    def _digest_user(self, name: str) -> DigestUser | None:
        user = self.users.get(name)
        if user is None:
            return None
        stored = {"MD5": user.ha1_md5, "SHA-256": user.ha1_sha256}
        return DigestUser(name, {k: v for k, v in stored.items() if v})

    def warn_if_open(self) -> None:
        """Say at start that anyone may watch, when that is the case."""
        if self.open:
            log.warning(
                "no [[users]] configured: anyone who can reach the gateway may watch; "
                "the sessions and config API answer only on loopback"
            )

    # -- the check ---------------------------------------------------------------------

    def check(
        self,
        *,
        protocol: str,
        method: str,
        uri: str,
        authorization: str | None,
        peer: str,
        secure: bool,
        need: str,
        channel: str | None = None,
        loopback: bool = False,
    ) -> Outcome:
        """Whether this request may go on, and as whom."""
        if need == METRICS:
            need = PUBLIC if self.config.metrics_public else ADMIN
        if need == PUBLIC:
            return ANONYMOUS  # credentials or not: nothing to check
        locked = self._locked_until(peer)
        if locked:
            return Refusal(429 if protocol == "http" else 403, "locked out after failed logins")
        identity: Identity = ANONYMOUS
        if authorization:
            outcome = self._credentials(protocol, method, uri, authorization, peer, secure)
            if isinstance(outcome, BasicPending):
                return dataclasses.replace(
                    outcome,
                    protocol=protocol,
                    peer=peer,
                    secure=secure,
                    need=need,
                    channel=channel,
                    loopback=loopback,
                )
            if not isinstance(outcome, Identity):
                return outcome
            identity = outcome
        return self.permit(identity, need, channel, loopback, protocol, peer, secure)

    def permit(
        self,
        identity: Identity,
        need: str,
        channel: str | None,
        loopback: bool,
        protocol: str,
        peer: str,
        secure: bool,
    ) -> Identity | Refusal:
        """Whether `identity` may do what `need` says (on `channel`)."""
        if need == METRICS:
            need = PUBLIC if self.config.metrics_public else ADMIN
        if need == PUBLIC:
            return identity
        if identity.anonymous:
            if need == VIEW and self.config.anonymous_viewer:
                return identity
            if need in (OPERATE, ADMIN) and self.open and loopback:
                return identity
            if self.open and need in (OPERATE, ADMIN):
                return Refusal(403, "without users, only loopback may use this")
            return Refusal(401, "credentials required", self.challenges(secure))
        rank = RANK.get(identity.role or "", -1)
        wanted = {VIEW: "viewer", OPERATE: "operator", ADMIN: "admin"}[need]
        if rank < RANK[wanted]:
            access_log.info("%s %s: user %r may not %s", protocol, peer, identity.name, need)
            return Refusal(403, f"{wanted} role required")
        if need == VIEW and not identity.may_view(channel):
            access_log.info("%s %s: %r may not watch %s", protocol, peer, identity.name, channel)
            return Refusal(403, f"not allowed to watch {channel!r}")
        return identity

    def challenges(self, secure: bool, stale: bool = False) -> tuple[str, ...]:
        """WWW-Authenticate values: Digest (SHA-256, then MD5), and Basic where it may be used.

        Clients that know several Digest algorithms pick by their own order;
        ffmpeg takes the last Digest challenge it can do, hence MD5 last.
        """
        out = list(self.digest.challenges(stale=stale))
        if secure or self.config.allow_basic_without_tls:
            out.append(f'Basic realm="{self.config.realm}", charset="UTF-8"')
        return tuple(out)

    def _credentials(
        self, protocol: str, method: str, uri: str, header: str, peer: str, secure: bool
    ) -> Outcome:
        scheme = header.strip().split(" ", 1)[0].lower()
        try:
            if scheme == "digest":
                name = self.digest.verify(method, header, uri)
                return self._identity(name)
            if scheme == "basic":
                if not (secure or self.config.allow_basic_without_tls):
                    return self.fail(protocol, peer, "Basic on a plain connection", secure)
                name, password = parse_basic(header)
                user = self.users.get(name)
                cached = self._basic_ok.get(self._basic_key(name, password))
                if user is not None and cached == name:
                    return self._identity(name)
                if user is None or not user.scrypt:
                    # Same slow work as a real check, so timing does not tell users apart.
                    return BasicPending(UserConfig(name, "viewer", scrypt=_DUMMY), password)
                return BasicPending(user, password)
            return self.fail(protocol, peer, f"unsupported scheme {scheme!r}", secure)
        except AuthError as e:
            if e.stale:
                # Right password, old nonce: a fresh challenge, not a failure (RFC 7616 3.3).
                return Refusal(401, str(e), self.challenges(secure, stale=True))
            return self.fail(protocol, peer, str(e), secure)

    def check_basic(self, pending: BasicPending) -> bool:
        """The slow part of a Basic check; run it off the event loop. Caches a success."""
        ok = scrypt_verify(pending.user.scrypt or _DUMMY, pending.password)
        ok = ok and pending.user.name in self.users
        if ok:
            self._basic_ok[self._basic_key(pending.user.name, pending.password)] = pending.user.name
            while len(self._basic_ok) > BASIC_CACHE:
                self._basic_ok.popitem(last=False)
        return ok

    def settle(self, pending: BasicPending, ok: bool) -> Identity | Refusal:
        """The outcome of a Basic check `check_basic` answered `ok` for."""
        if not ok:
            return self.fail(pending.protocol, pending.peer, "wrong password", pending.secure)
        return self.permit(
            self._identity(pending.user.name),
            pending.need,
            pending.channel,
            pending.loopback,
            pending.protocol,
            pending.peer,
            pending.secure,
        )

    def _basic_key(self, name: str, password: str) -> bytes:
        return hmac.new(self._key, f"{name}:{password}".encode(), hashlib.sha256).digest()

    def _identity(self, name: str) -> Identity:
        user = self.users[name]
        return Identity(user.name, user.role, user.channels)

    # -- failures and lockouts ---------------------------------------------------------

    def fail(self, protocol: str, peer: str, reason: str, secure: bool) -> Refusal:
        """Count a failed attempt, maybe lock the address out; the refusal to send."""
        self.failures[protocol] += 1
        access_log.warning("%s %s: authentication failed: %s", protocol, peer, reason)
        now = self._clock()
        window = self._recent.pop(peer, None) or deque(maxlen=self.config.lockout_failures)
        window.append(now)
        self._recent[peer] = window
        while len(self._recent) > MAX_TRACKED:
            self._recent.popitem(last=False)
        if (
            self.config.lockout_seconds
            and len(window) >= self.config.lockout_failures
            and now - window[0] <= self.config.lockout_seconds
        ):
            self._locked[peer] = now + self.config.lockout_seconds
            self._locked.move_to_end(peer)
            while len(self._locked) > MAX_TRACKED:
                self._locked.popitem(last=False)
            self.lockouts += 1
            window.clear()
            access_log.warning(
                "%s %s: locked out for %g s after %d failed logins",
                protocol,
                peer,
                self.config.lockout_seconds,
                self.config.lockout_failures,
            )
        return Refusal(
            401, "wrong credentials", self.challenges(secure), delay=self.config.failure_delay
        )

    def _locked_until(self, peer: str) -> float:
        until = self._locked.get(peer)
        if until is None:
            return 0.0
        if self._clock() >= until:
            del self._locked[peer]
            return 0.0
        return until


# A hash no password matches, checked for unknown users so that they cost the same time.
_DUMMY = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
