"""``web``: the web server, and who may use it (``web.auth``)."""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

from motiond.config.fields import Invalid, rule, section, setting

LOOPBACK_ADDRESSES = ("127.0.0.1", "::1", "localhost")
AUTH_HOWTO = (
    "listening on {} needs web.auth: add a user with a hash from "
    "`motiond hash-password` (web.auth.users: [{{name: me, password_hash: ...}}]) "
    "or a token from `motiond new-token`, or listen on 127.0.0.1 behind a reverse proxy"
)


def _present(name: str | None) -> None:
    if not name:
        raise ValueError("required")


def _password_hash(text: str | None) -> None:
    if not text or not text.startswith("scrypt$"):
        raise ValueError("required: a hash made by `motiond hash-password`")


def _token_hash(text: str | None) -> None:
    if not text or not re.match(r"^sha256\$[0-9a-f]{64}$", text):
        raise ValueError("required: a hash made by `motiond new-token`")


@section
class UserConfig:
    name: str = setting(check=_present)
    password_hash: str = setting(check=_password_hash)


@section
class TokenConfig:
    name: str = setting(check=_present)
    token_hash: str = setting(check=_token_hash)


@section
class AuthConfig:
    """Who may use the web side. Empty: no auth (only allowed on a loopback address)."""

    users: tuple[UserConfig, ...] = setting(default=(), items="{name, password_hash}")
    tokens: tuple[TokenConfig, ...] = setting(default=(), items="{name, token_hash}")
    session_lifetime: float = setting(
        default=7 * 86400.0, ge=60.0, le=365 * 86400.0, unit="duration"
    )

    @property
    def enabled(self) -> bool:
        return bool(self.users or self.tokens)


@section
class WebConfig:
    listen: str = setting(default="127.0.0.1", blank_is_default=True)
    port: int = setting(default=8100, ge=0, le=65535)
    public_url: str | None = None
    auth: AuthConfig = setting(default_factory=AuthConfig)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    trusted_proxies: tuple[str, ...] = setting(default=(), items="IP addresses")
    max_viewers_per_camera: int = setting(default=64, ge=1, le=10000)
    max_viewers_per_client: int = setting(default=8, ge=1, le=10000)
    # the longest time range one GET /api/export may ask for
    max_export: float = setting(default=3600.0, ge=10.0, le=7 * 86400.0, unit="duration")

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.listen}]" if ":" in self.listen else self.listen
        return f"http://{host}:{self.port}"


@rule(WebConfig)
def _tls_and_auth(web: WebConfig, given: Collection[object]) -> None:
    if (web.tls_cert is None) != (web.tls_key is None):
        raise Invalid("tls_cert", "tls_cert and tls_key go together")
    if web.listen not in LOOPBACK_ADDRESSES and not web.auth.enabled:
        raise Invalid("listen", AUTH_HOWTO.format(web.listen))
