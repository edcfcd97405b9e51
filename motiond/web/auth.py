"""Who may use the web side: password hashes, bearer tokens, session cookies, login limits.

Password hashes are ``scrypt$N$r$p$salt$hash`` (stdlib ``hashlib.scrypt``); tokens are stored
as ``sha256$hex`` of the token (a token is random, so a fast hash is enough). Every comparison
of secrets is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

from motiond.config import AuthConfig

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SESSION_COOKIE = "motiond_session"


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    encoded_salt = base64.b64encode(salt).decode()
    encoded_digest = base64.b64encode(digest).decode()
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encoded_salt}${encoded_digest}"


def verify_password(password: str, stored: str) -> bool:
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
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(hash_password(secrets.token_urlsafe(16)))
    return _DUMMY[0]


def new_token() -> tuple[str, str]:
    """A fresh random bearer token and the hash to put in the config."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return "sha256$" + hashlib.sha256(token.encode()).hexdigest()


@dataclass
class LoginLimiter:
    """At most ``attempts`` failed logins per client address within ``window`` seconds."""

    attempts: int = 5
    window: float = 300.0
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def allowed(self, client: str, now: float) -> bool:
        failures = self._failures.get(client)
        if not failures:
            return True
        while failures and failures[0] < now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return True
        return len(failures) < self.attempts

    def failed(self, client: str, now: float) -> None:
        self._failures.setdefault(client, deque()).append(now)
        if len(self._failures) > 10000:  # bound memory under a spray of addresses
            self._failures.pop(next(iter(self._failures)))

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


class Authenticator:
    """Checks credentials against the config. Used on the IOLoop thread only."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self.limiter = LoginLimiter()

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def check_password(self, name: str, password: str) -> str | None:
        """The user's name when the password is right, else None.

        An unknown name costs one scrypt too, so timing does not tell which names exist.
        """
        user = None
        for candidate in self.config.users:
            if hmac.compare_digest(candidate.name.encode(), name.encode()):
                user = candidate
        stored = user.password_hash if user is not None else _dummy_hash()
        if verify_password(password, stored) and user is not None:
            return user.name
        return None

    def check_token(self, token: str) -> str | None:
        hashed = hash_token(token)
        matched = None
        for configured in self.config.tokens:
            if hmac.compare_digest(configured.token_hash, hashed):
                matched = configured.name
        return matched

    def session_valid(self, issued_at: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return 0 <= now - issued_at <= self.config.session_lifetime
