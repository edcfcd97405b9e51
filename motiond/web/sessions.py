"""Browser sessions, held by the server: the cookie secret and the table of open sessions.

Both live in the storage directory (mode 0600): ``.cookie-secret`` signs the session cookie,
``.sessions.json`` lists open sessions by the SHA-256 of their id, each with its user, when it
began and the user's password fingerprint. A session cookie is valid only while its session is
in the table, within ``web.auth.session_lifetime``, for a user still configured with the same
password hash. So a session ends on logout, when its user is removed or given a new password
(both take effect at the next start), and all at once when the secret is rotated:
``motiond rotate-secret`` removes both files; the daemon makes a new secret at its next start
or reload (``systemctl reload motiond``).

IOLoop thread only, except ``save``, which the web side runs in its executor.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from motiond.store.layout import atomic_write_bytes

logger = logging.getLogger(__name__)

SECRET_FILE = ".cookie-secret"  # noqa: S105 (a file name)
SESSIONS_FILE = ".sessions.json"
MAX_SESSIONS = 1000  # the oldest go first beyond this


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    issued: float  # wall-clock time of the login
    fingerprint: str  # the user's password fingerprint at login


def rotate_secret(root: Path) -> list[Path]:
    """Remove the cookie secret and the session table (every session ends); the daemon makes a
    new secret when it next starts or reloads. Returns the files removed."""
    removed = []
    for name in (SECRET_FILE, SESSIONS_FILE):
        path = root / name
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def _read_or_create_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret


def _session_key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    """The cookie secret and the open sessions (see the module docstring)."""

    def __init__(self, root: Path, lifetime: float) -> None:
        self.root = root
        self.lifetime = lifetime
        self.secret = _read_or_create_secret(root / SECRET_FILE)
        self._sessions: dict[str, Session] = self._load()
        self._version = 0  # of _sessions, counted on the IOLoop
        self._save_lock = threading.Lock()  # one save at a time; never an older one last
        self._saved_version = 0

    def _load(self) -> dict[str, Session]:
        path = self.root / SESSIONS_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return {
                key: Session(str(entry["user"]), float(entry["issued"]), str(entry["fingerprint"]))
                for key, entry in data["sessions"].items()
            }
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.warning("web: cannot read %s (%s); every session ended", path, exc)
            return {}

    def reload_secret(self) -> bool:
        """Re-read the secret file (rotated or removed: a new secret); True when it changed,
        and then every session has ended."""
        secret = _read_or_create_secret(self.root / SECRET_FILE)
        if hmac.compare_digest(secret, self.secret):
            return False
        self.secret = secret
        self._sessions.clear()
        self._version += 1
        return True

    def begin(self, user: str, fingerprint: str, now: float) -> str:
        """A new session for ``user``; returns its id (the cookie's value). Call ``save``."""
        session_id = secrets.token_urlsafe(32)
        self._drop_expired(now)
        while len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions, key=lambda key: self._sessions[key].issued)
            del self._sessions[oldest]
        self._sessions[_session_key(session_id)] = Session(user, now, fingerprint)
        self._version += 1
        return session_id

    def user(self, session_id: str, fingerprints: Mapping[str, str], now: float) -> str | None:
        """The user of an open session, or None (unknown, expired, user gone or new password)."""
        session = self._sessions.get(_session_key(session_id))
        if session is None or not 0 <= now - session.issued <= self.lifetime:
            return None
        current = fingerprints.get(session.user)
        if current is None or not hmac.compare_digest(current, session.fingerprint):
            return None
        return session.user

    def end(self, session_id: str) -> bool:
        """End a session (logout); True if it was open. Call ``save``."""
        ended = self._sessions.pop(_session_key(session_id), None) is not None
        self._version += 1
        return ended

    def forget_stale(self, fingerprints: Mapping[str, str], now: float) -> int:
        """Drop sessions that can never be valid again; returns how many."""
        before = len(self._sessions)
        self._drop_expired(now)
        for key, session in list(self._sessions.items()):
            if fingerprints.get(session.user) != session.fingerprint:
                del self._sessions[key]
        dropped = before - len(self._sessions)
        if dropped:
            self._version += 1
        return dropped

    def _drop_expired(self, now: float) -> None:
        for key, session in list(self._sessions.items()):
            if now - session.issued > self.lifetime:
                del self._sessions[key]

    def snapshot(self) -> tuple[int, bytes]:
        """(version, file contents) of the table now; IOLoop thread."""
        sessions = {
            key: {"user": s.user, "issued": s.issued, "fingerprint": s.fingerprint}
            for key, s in self._sessions.items()
        }
        return self._version, json.dumps({"version": 1, "sessions": sessions}).encode()

    def save(self, version: int, data: bytes) -> None:
        """Write a snapshot to disk (executor thread); a snapshot older than the last one
        written is skipped."""
        with self._save_lock:
            if version < self._saved_version:
                return
            path = self.root / SESSIONS_FILE
            atomic_write_bytes(path, data, mode=0o600)
            self._saved_version = version
