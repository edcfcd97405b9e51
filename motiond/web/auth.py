"""Who may use the web side: password hashes, bearer tokens, login limits, verified-login cache.

Password hashes are ``scrypt$N$r$p$salt$hash`` (stdlib ``hashlib.scrypt``). New hashes use
N=2^14, r=8, p=5, one of OWASP's scrypt settings that fits a small board (16 MiB per hash, about
five times the work of p=1); hashes made with other parameters keep working. Tokens are stored
as ``sha256$hex`` of the token (a token is random, so a fast hash is enough). Every comparison
of secrets is constant-time.

scrypt is slow on purpose, so it never runs on the IOLoop: the web side calls
``check_password`` from its auth executor, and a successful Basic verification is remembered
for ``VERIFIED_TTL`` seconds under a keyed hash of the credentials (``VerifiedCache``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field

from motiond.config.web import AuthConfig

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 5
SCRYPT_MAX_MEMORY = 256 * 1024 * 1024  # verifies hashes up to N=2^17 (128 MiB)
VERIFIED_TTL = 60.0
VERIFIED_MAX = 256


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    encoded_salt = base64.b64encode(salt).decode()
    encoded_digest = base64.b64encode(digest).decode()
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encoded_salt}${encoded_digest}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored`` (with whatever parameters it was made)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=SCRYPT_MAX_MEMORY,
            dklen=len(expected),
        )
    except (ValueError, TypeError, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)


_DUMMY: list[str] = []
_DUMMY_LOCK = threading.Lock()


def _dummy_hash() -> str:
    with _DUMMY_LOCK:
        if not _DUMMY:
            _DUMMY.append(hash_password(secrets.token_urlsafe(16)))
        return _DUMMY[0]


def new_token() -> tuple[str, str]:
    """A fresh random bearer token and the hash to put in the config."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return "sha256$" + hashlib.sha256(token.encode()).hexdigest()


def password_fingerprint(password_hash: str) -> str:
    """A short stand-in for a user's password hash: a session records it, and a changed hash
    (a new password) ends the user's sessions."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """A login attempt let through to the password check: the buckets it was counted in."""

    keys: tuple[str, ...]
    at: float


@dataclass
class LoginLimiter:
    """How many logins may be tried, counted *before* the password is checked (an attempt is
    reserved as a failure and forgiven if it succeeds), so guesses sent at once count at once.

    The buckets an attempt counts in, each within ``window``:

    - from a browser that logged in as this user before (its device cookie, as OWASP
      describes): only that device's own, ``per_device``; failures from elsewhere never lock
      the owner's browser out;
    - otherwise its client address's, ``per_client`` (a client behind a trusted proxy that sent
      no address has none: all such clients would share it), and the account's for unknown
      clients, ``per_account``; beyond that the account is slowed down, not locked: one
      attempt per ``window / per_account``.

    Password checks in flight are capped too, per client and per account (``in_flight``).
    IOLoop thread only.
    """

    per_client: int = 5
    per_account: int = 10
    per_device: int = 5
    in_flight: int = 2
    window: float = 300.0
    _attempts: dict[str, deque[float]] = field(default_factory=dict)
    _running: Counter[str] = field(default_factory=Counter)

    def _limits(self, client: str | None, account: str, device: str | None) -> dict[str, int]:
        if device is not None:
            return {"device:" + device: self.per_device}
        # A digest, so a spray of long made-up names holds 20000 short keys at most.
        name = hashlib.sha256(account.encode(errors="replace")).hexdigest()[:32]
        limits = {"account:" + name: self.per_account}
        if client:
            limits["client:" + client] = self.per_client
        return limits

    def reserve(
        self, client: str | None, account: str, device: str | None, now: float
    ) -> LoginAttempt | None:
        """Count an attempt before its password check; None when it must be refused (429)."""
        limits = self._limits(client, account, device)
        running = [key for key in limits if not key.startswith("device:")] or list(limits)
        if any(self._running[key] >= self.in_flight for key in running):
            return None
        for key, limit in limits.items():
            if self._count(key, now) >= limit and not self._slowed_down_may_pass(key, now):
                return None
        for key in limits:
            self._attempts.setdefault(key, deque()).append(now)
            self._running[key] += 1
        while len(self._attempts) > 20000:  # bound memory under a spray of addresses and names
            self._attempts.pop(next(iter(self._attempts)))
        return LoginAttempt(tuple(limits), now)

    def _slowed_down_may_pass(self, key: str, now: float) -> bool:
        """An account over its limit takes one attempt per window / per_account."""
        if not key.startswith("account:"):
            return False
        attempts = self._attempts[key]
        return now - attempts[-1] >= self.window / self.per_account

    def finish(self, attempt: LoginAttempt, succeeded: bool) -> None:
        """The password check of ``attempt`` is over; a success forgives its buckets."""
        for key in attempt.keys:
            self._running[key] -= 1
            if self._running[key] <= 0:
                del self._running[key]
            if succeeded:
                self._attempts.pop(key, None)

    def _count(self, key: str, now: float) -> int:
        attempts = self._attempts.get(key)
        if not attempts:
            return 0
        while attempts and attempts[0] < now - self.window:
            attempts.popleft()
        if not attempts:
            del self._attempts[key]
        return len(attempts)


class VerifiedCache:
    """Basic credentials verified recently, so each request of a script (or each Range request
    of a clip) does not cost a scrypt. Keys are HMACs under a per-process random key, so the
    cache holds nothing a stolen memory image could be checked against offline cheaply.
    IOLoop thread only."""

    def __init__(self, ttl: float = VERIFIED_TTL, size: int = VERIFIED_MAX) -> None:
        self.ttl = ttl
        self.size = size
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, tuple[str, float]] = OrderedDict()

    def key(self, name: str, password: str, stored: str) -> bytes:
        """A keyed hash of these credentials (no plain password kept as a dictionary key)."""
        return self._digest(name, password, stored)

    def _digest(self, name: str, password: str, stored: str) -> bytes:
        text = "\0".join((name, password, stored)).encode()
        return hmac.new(self._key, text, hashlib.sha256).digest()

    def get(self, name: str, password: str, stored: str, now: float) -> str | None:
        key = self._digest(name, password, stored)
        entry = self._entries.get(key)
        if entry is None:
            return None
        user, expires = entry
        if now >= expires:
            del self._entries[key]
            return None
        return user

    def put(self, name: str, password: str, stored: str, user: str, now: float) -> None:
        self._entries[self._digest(name, password, stored)] = (user, now + self.ttl)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


class Authenticator:
    """Checks credentials against the config. ``check_password`` is slow (scrypt): the web side
    calls it from its auth executor; everything else is quick and runs on the IOLoop."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self.limiter = LoginLimiter()
        self.verified = VerifiedCache()

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def password_hash(self, name: str) -> str | None:
        """The configured hash of user ``name`` (constant-time name comparison), or None."""
        found = None
        for candidate in self.config.users:
            if hmac.compare_digest(candidate.name.encode(), name.encode()):
                found = candidate.password_hash
        return found

    def check_password(self, name: str, password: str) -> str | None:
        """The user's name when the password is right, else None. Blocking (scrypt).

        An unknown name costs one scrypt too, so timing does not tell which names exist.
        """
        stored = self.password_hash(name)
        if verify_password(password, stored or _dummy_hash()) and stored is not None:
            return name
        return None

    def check_token(self, token: str) -> str | None:
        hashed = hash_token(token)
        matched = None
        for configured in self.config.tokens:
            if hmac.compare_digest(configured.token_hash, hashed):
                matched = configured.name
        return matched

    def fingerprints(self) -> dict[str, str]:
        """Each user's password fingerprint (what a session must match to stay valid)."""
        return {user.name: password_fingerprint(user.password_hash) for user in self.config.users}
