"""What every handler shares: security headers, the Host rule, proxies, auth, JSON errors.

Handlers get their collaborators through ``initialize()`` (a ``WebContext``) and run on the
IOLoop's thread; anything slow (scrypt, file scans, snapshots, sidecar writes, session saves)
goes to one of the context's executors.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import http
import ipaddress
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import tornado.httputil
import tornado.web

from motiond.config.web import WebConfig, proxy_networks
from motiond.web.auth import Authenticator, LoginAttempt
from motiond.web.bounds import disk_error, parse_json, request_summary
from motiond.web.door import Door
from motiond.web.sessions import SessionStore

logger = logging.getLogger(__name__)

SESSION_COOKIE = "motiond_session"
# Set at a successful login: this browser logged in as that user before, so failures from
# elsewhere do not lock it out (OWASP's device cookies). Not a login: only a login allowance.
DEVICE_COOKIE = "motiond_device"
DEVICE_COOKIE_DAYS = 365
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_BODY_BYTES = 64 * 1024
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 (names, not a bind)
# What a Host header may look like before it goes into a header of ours (the CSP).
_HOST_HEADER = re.compile(
    r"[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](?::[0-9]{1,5})?"
)

T = TypeVar("T")


def content_security_policy(host: str | None) -> str:
    """Same origin only. WebSockets (``connect-src``) only to this very host: 'self' covers
    ws: and wss: in current browsers, the explicit URLs cover older ones."""
    connect = "'self'"
    if host is not None and _HOST_HEADER.fullmatch(host):
        connect += f" ws://{host} wss://{host}"
    return (
        "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
        f"connect-src {connect}; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; object-src 'none'; base-uri 'self'; form-action 'self'"
    )


def host_name(header: str) -> str | None:
    """The name in a Host header (no port, no brackets, lower case), or None if malformed."""
    if not _HOST_HEADER.fullmatch(header):
        return None
    if header.startswith("["):
        return header[1 : header.index("]")].lower()
    return header.rsplit(":", 1)[0].lower().rstrip(".") if header else None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostRule:
    """Which Host headers this server answers (against DNS rebinding).

    A page on rebind.example whose name is made to resolve to 127.0.0.1 reaches this server
    with its own name in Host. So the names allowed are the loopback ones, the listen address
    and ``web.public_url``'s host; on a wildcard listen address (which needs auth) any IP
    address too, since rebinding needs a name.
    """

    def __init__(self, web: WebConfig) -> None:
        names = set(LOOPBACK_HOSTS)
        if web.listen not in WILDCARD_ADDRESSES:
            names.add(web.listen.lower())
        if web.public_url:
            public = urlsplit(web.public_url).hostname
            if public:
                names.add(public.lower().rstrip("."))
        self.names = frozenset(names)
        self.any_address = web.listen in WILDCARD_ADDRESSES

    def allows(self, header: str | None) -> bool:
        name = host_name(header or "")
        if name is None:
            return False
        return name in self.names or (self.any_address and _is_ip(name))


@dataclass(frozen=True, slots=True)
class Via:
    """Where a request came from, after a trusted proxy's headers."""

    base_path: str  # the prefix a proxy serves us under ('' without one)
    client: str | None  # the client's address; None when a proxy did not say (no bucket)


class WebContext:
    """Everything handlers share: the door, config, auth, sessions and the executors.

    Created and used on the IOLoop thread; the executors run the slow parts.
    """

    def __init__(
        self,
        door: Door,
        web: WebConfig,
        sessions: SessionStore,
        io_executor: ThreadPoolExecutor,
        auth_executor: ThreadPoolExecutor,
    ) -> None:
        self.door = door
        self.web = web
        self.authenticator = Authenticator(web.auth)
        self.sessions = sessions
        self.hosts = HostRule(web)
        self.trusted_proxies = proxy_networks(web.trusted_proxies)
        self.io_executor = io_executor
        self.auth_executor = auth_executor
        self.viewers: Callable[[str], int] = lambda camera: 0  # the live hub's count, once built
        self._warned_cleartext = False
        # Password checks running, by a keyed hash of the credentials (VerifiedCache.key).
        self._checks: dict[bytes, asyncio.Future[str | None]] = {}

    @property
    def auth_enabled(self) -> bool:
        return self.authenticator.enabled

    async def run_io(self, function: Callable[..., T], *args: Any) -> T:
        """Blocking file work (and door calls documented blocking), off the IOLoop. A failure
        of the disk becomes 507 (full) or 503, with the reason but no path."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.io_executor, function, *args)
        except OSError as exc:
            raise disk_error(exc) from None

    def log_action(self, text: str) -> None:
        logger.info("web: %s", text)

    # -- requests -----------------------------------------------------------------------------

    def apply_proxy_headers(self, request: tornado.httputil.HTTPServerRequest) -> Via:
        """Honour X-Forwarded-For/-Proto/-Prefix only from a trusted reverse proxy."""
        try:
            peer = ipaddress.ip_address(request.remote_ip or "")
        except ValueError:
            return Via("", request.remote_ip)
        if not any(peer in network for network in self.trusted_proxies):
            return Via("", request.remote_ip)
        forwarded_for = request.headers.get("X-Forwarded-For", "")
        client = None
        if forwarded_for:
            client = request.remote_ip = forwarded_for.split(",")[-1].strip()
        proto = request.headers.get("X-Forwarded-Proto", "").lower()
        if proto in ("http", "https"):
            request.protocol = proto
        prefix = request.headers.get("X-Forwarded-Prefix", "").strip("/")
        if not prefix or not all(c.isalnum() or c in "/-_." for c in prefix) or ".." in prefix:
            return Via("", client)
        return Via("/" + prefix, client)

    def refuse_foreign_host(self, request: tornado.httputil.HTTPServerRequest) -> None:
        """421 for a Host this server does not answer (see ``HostRule``)."""
        host = request.headers.get("Host")
        if not self.hosts.allows(host):
            raise tornado.web.HTTPError(
                421,
                reason="this server does not answer for that host name; "
                "use 127.0.0.1 or localhost, or set web.public_url",
            )

    async def authenticate(self, handler: tornado.web.RequestHandler, via: Via) -> str | None:
        """The user a request is from (Bearer token, Basic, or session cookie), or None."""
        if not self.auth_enabled:
            return "anonymous"
        header = handler.request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and credentials:
            return self.authenticator.check_token(credentials.strip())
        if scheme.lower() == "basic" and credentials:
            return await self._basic(handler, credentials.strip(), via)
        return self.session_user(handler)

    def session_user(self, handler: tornado.web.RequestHandler) -> str | None:
        session_id = self.session_id(handler)
        if session_id is None:
            return None
        return self.sessions.user(session_id, self.authenticator.fingerprints(), time.time())

    def session_id(self, handler: tornado.web.RequestHandler) -> str | None:
        lifetime_days = self.web.auth.session_lifetime / 86400
        cookie = handler.get_signed_cookie(SESSION_COOKIE, max_age_days=lifetime_days)
        return cookie.decode(errors="replace") if cookie else None

    async def _basic(
        self, handler: tornado.web.RequestHandler, credentials: str, via: Via
    ) -> str | None:
        try:
            name, _, password = base64.b64decode(credentials).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return await self.check_password(handler, name, password, via)

    async def check_password(
        self, handler: tornado.web.RequestHandler, name: str, password: str, via: Via
    ) -> str | None:
        """Verify a user's password off the IOLoop, within the login limits (429 beyond).

        The attempt is counted before scrypt runs (``LoginLimiter.reserve``); the same
        credentials already being checked wait for that check instead of starting another
        (a page's parallel requests with Basic cost one scrypt). A browser that logged in
        before (``remember_device``) has an allowance of its own.
        """
        authenticator = self.authenticator
        now = time.monotonic()
        stored = authenticator.password_hash(name) or ""
        cached = authenticator.verified.get(name, password, stored, now)
        if cached is not None:
            return cached
        key = authenticator.verified.key(name, password, stored)
        running = self._checks.get(key)
        if running is None:
            device = self.device(handler, name)
            attempt = authenticator.limiter.reserve(via.client, name, device, now)
            if attempt is None:
                raise tornado.web.HTTPError(429, reason="too many failed logins; try again later")
            running = asyncio.ensure_future(self._check(name, password, stored, attempt))
            self._checks[key] = running
            running.add_done_callback(lambda _: self._checks.pop(key, None))
        return await asyncio.shield(running)

    async def _check(
        self, name: str, password: str, stored: str, attempt: LoginAttempt
    ) -> str | None:
        authenticator = self.authenticator
        loop = asyncio.get_running_loop()
        user = None
        try:
            user = await loop.run_in_executor(
                self.auth_executor, authenticator.check_password, name, password
            )
        finally:
            authenticator.limiter.finish(attempt, succeeded=user is not None)
        if user is not None:
            authenticator.verified.put(name, password, stored, user, time.monotonic())
        return user

    def device(self, handler: tornado.web.RequestHandler, name: str) -> str | None:
        """The id of this browser if it logged in as ``name`` before (its device cookie)."""
        cookie = handler.get_signed_cookie(DEVICE_COOKIE, max_age_days=DEVICE_COOKIE_DAYS)
        if not cookie:
            return None
        user, _, device = cookie.decode(errors="replace").rpartition("|")
        return device if device and hmac.compare_digest(user.encode(), name.encode()) else None

    def remember_device(self, handler: tornado.web.RequestHandler, user: str) -> None:
        """Give the browser a device cookie for ``user`` (kept if it has one); at a login."""
        if self.device(handler, user) is not None:
            return
        handler.set_signed_cookie(
            DEVICE_COOKIE,
            f"{user}|{secrets.token_urlsafe(16)}",
            expires_days=DEVICE_COOKIE_DAYS,
            httponly=True,
            samesite="Strict",
            secure=handler.request.protocol == "https",
            path="/",
        )

    def warn_if_cleartext(self, request: tornado.httputil.HTTPServerRequest) -> None:
        if request.protocol != "https" and not self._warned_cleartext:
            self._warned_cleartext = True
            logger.warning(
                "web: a login over plain HTTP from %s: credentials travel in clear on the "
                "network; set web.tls_cert/tls_key or use a reverse proxy with HTTPS",
                request.remote_ip,
            )


class BaseHandler(tornado.web.RequestHandler):
    """Security headers, the Host rule, JSON errors, auth and the CSRF rule for every HTTP
    handler."""

    context: WebContext
    door: Door
    requires_auth = True

    def initialize(self, context: WebContext) -> None:
        self.context = context
        self.door = context.door
        self.via = Via("", None)

    @property
    def base_path(self) -> str:
        return self.via.base_path

    def set_default_headers(self) -> None:
        set_security_headers(self)
        self.clear_header("Server")

    async def prepare(self) -> None:
        context = self.context
        self.via = context.apply_proxy_headers(self.request)
        if not context.auth_enabled:
            context.refuse_foreign_host(self.request)
        if self.request.protocol == "https":
            self.set_header("Strict-Transport-Security", "max-age=31536000")
        self.current_user = await context.authenticate(self, self.via)
        if self.requires_auth and self.current_user is None:
            self.refuse_unauthenticated()
            return
        if self.request.method in STATE_CHANGING and self.requires_auth:
            content_type = self.request.headers.get("Content-Type", "").split(";")[0].strip()
            if content_type != "application/json" and "X-Motiond" not in self.request.headers:
                raise tornado.web.HTTPError(
                    403, reason="state-changing requests need Content-Type: application/json"
                )

    def refuse_unauthenticated(self) -> None:
        raise tornado.web.HTTPError(401, reason="authentication required")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors are JSON with a reason, never a traceback."""
        self.set_header("Content-Type", "application/json")
        # Scripts learn they may use Basic; the pages' own requests (X-Motiond) must not make
        # the browser pop up its login dialog.
        if status_code == 401 and "X-Motiond" not in self.request.headers:
            self.set_header("WWW-Authenticate", 'Basic realm="motiond", charset="UTF-8"')
        self.finish(json.dumps({"error": error_reason(self, status_code, kwargs)}))

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data))

    def log_exception(self, typ: Any, value: BaseException | None, tb: Any) -> None:
        """Tornado's, with the URI cut short (``request_summary``) and no request dump."""
        if isinstance(value, tornado.web.HTTPError):
            if value.log_message:
                logger.warning(
                    "%d %s: %s", value.status_code, request_summary(self.request), value.log_message
                )
            return
        logger.error("Uncaught exception %s", request_summary(self.request), exc_info=value)

    def json_body(self) -> dict[str, Any]:
        try:
            data = parse_json(self.request.body or b"{}")
        except ValueError as exc:
            raise tornado.web.HTTPError(400, reason=f"the body is {exc}") from None
        if not isinstance(data, dict):
            raise tornado.web.HTTPError(400, reason="the body must be a JSON object")
        return data


def set_security_headers(handler: tornado.web.RequestHandler) -> None:
    handler.set_header(
        "Content-Security-Policy", content_security_policy(handler.request.headers.get("Host"))
    )
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("X-Frame-Options", "DENY")
    handler.set_header("Referrer-Policy", "same-origin")


def error_reason(handler: tornado.web.RequestHandler, status_code: int, kwargs: Any) -> str:
    """The reason for an error response: an HTTPError's own, else the status's phrase."""
    reason: str = handler._reason
    if "exc_info" in kwargs:
        error = kwargs["exc_info"][1]
        if isinstance(error, tornado.web.HTTPError) and error.reason:
            reason = error.reason
        elif not isinstance(error, tornado.web.HTTPError):
            reason = http.HTTPStatus(status_code).phrase
    return reason
