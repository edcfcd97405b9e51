"""The Tornado application: routes, the base handler (auth, headers, errors), pages, media.

Handlers get their collaborators through ``initialize()`` and run on the IOLoop's thread.
Anything slow (file scans, snapshot encoding, sidecar writes) goes to the daemon's executor.
"""

from __future__ import annotations

import http
import ipaddress
import json
import logging
import os
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import tornado.escape
import tornado.web

from motiond import __version__
from motiond.web.auth import SESSION_COOKIE, Authenticator

if TYPE_CHECKING:
    from motiond.daemon import Daemon

logger = logging.getLogger(__name__)

STATIC_DIR = Path(str(resources.files("motiond").joinpath("web", "static")))
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; object-src 'none'; base-uri 'self'; form-action 'self'"
)
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_BODY_BYTES = 64 * 1024


class Security:
    """Auth decisions shared by HTTP and WebSocket handlers (IOLoop thread only)."""

    def __init__(self, daemon: Daemon, authenticator: Authenticator) -> None:
        self.daemon = daemon
        self.authenticator = authenticator
        self.trusted_proxies = {ipaddress.ip_address(p) for p in daemon.config.web.trusted_proxies}
        self.tls = daemon.config.web.tls_cert is not None
        self._warned_cleartext = False

    @property
    def enabled(self) -> bool:
        return self.authenticator.enabled

    def apply_proxy_headers(self, handler: tornado.web.RequestHandler) -> str:
        """Honour X-Forwarded-For/-Proto/-Prefix only from a trusted reverse proxy.

        Returns the base path the proxy serves us under ('' without one).
        """
        request = handler.request
        try:
            peer = ipaddress.ip_address(request.remote_ip or "")
        except ValueError:
            return ""
        if peer not in self.trusted_proxies:
            return ""
        forwarded_for = request.headers.get("X-Forwarded-For", "")
        if forwarded_for:
            request.remote_ip = forwarded_for.split(",")[-1].strip()
        proto = request.headers.get("X-Forwarded-Proto", "").lower()
        if proto in ("http", "https"):
            request.protocol = proto
        prefix = request.headers.get("X-Forwarded-Prefix", "").strip("/")
        if not prefix or not all(c.isalnum() or c in "/-_." for c in prefix) or ".." in prefix:
            return ""
        return "/" + prefix

    def current_user(self, handler: tornado.web.RequestHandler) -> str | None:
        if not self.enabled:
            return "anonymous"
        header = handler.request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and credentials:
            return self.authenticator.check_token(credentials.strip())
        if scheme.lower() == "basic" and credentials:
            return self._basic(handler, credentials.strip())
        cookie = handler.get_signed_cookie(SESSION_COOKIE, max_age_days=366)
        if cookie:
            user, _, issued = cookie.decode().partition("|")
            try:
                if self.authenticator.session_valid(float(issued)) and user:
                    return user
            except ValueError:
                return None
        return None

    def _basic(self, handler: tornado.web.RequestHandler, credentials: str) -> str | None:
        import base64  # noqa: PLC0415 (rarely used)

        client = handler.request.remote_ip or ""
        now = time.monotonic()
        if not self.authenticator.limiter.allowed(client, now):
            raise tornado.web.HTTPError(429, reason="too many failed logins; try again later")
        try:
            name, _, password = base64.b64decode(credentials).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        user = self.authenticator.check_password(name, password)
        if user is None:
            self.authenticator.limiter.failed(client, now)
        return user

    def warn_if_cleartext(self, handler: tornado.web.RequestHandler) -> None:
        if handler.request.protocol != "https" and not self._warned_cleartext:
            self._warned_cleartext = True
            logger.warning(
                "web: a login over plain HTTP from %s: credentials travel in clear on the "
                "network; set web.tls_cert/tls_key or use a reverse proxy with HTTPS",
                handler.request.remote_ip,
            )


class BaseHandler(tornado.web.RequestHandler):
    """Security headers, JSON errors, auth and the CSRF rule for every HTTP handler."""

    daemon: Daemon
    security: Security
    requires_auth = True

    def initialize(self, daemon: Daemon, security: Security) -> None:
        self.daemon = daemon
        self.security = security
        self.base_path = ""

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "same-origin")
        self.clear_header("Server")

    def get_current_user(self) -> str | None:
        return self.security.current_user(self)

    def prepare(self) -> None:
        self.base_path = self.security.apply_proxy_headers(self)
        if self.request.protocol == "https":
            self.set_header("Strict-Transport-Security", "max-age=31536000")
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
        reason = self._reason
        if "exc_info" in kwargs:
            error = kwargs["exc_info"][1]
            if isinstance(error, tornado.web.HTTPError) and error.reason:
                reason = error.reason
            elif not isinstance(error, tornado.web.HTTPError):
                reason = http.HTTPStatus(status_code).phrase
        self.set_header("Content-Type", "application/json")
        # Scripts learn they may use Basic; the pages' own requests (X-Motiond) must not make
        # the browser pop up its login dialog.
        if status_code == 401 and "X-Motiond" not in self.request.headers:
            self.set_header("WWW-Authenticate", 'Basic realm="motiond", charset="UTF-8"')
        self.finish(json.dumps({"error": reason}))

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data))

    def json_body(self) -> dict[str, Any]:
        try:
            data = json.loads(self.request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise tornado.web.HTTPError(400, reason="the body is not JSON") from None
        if not isinstance(data, dict):
            raise tornado.web.HTTPError(400, reason="the body must be a JSON object")
        return data


class PageHandler(BaseHandler):
    """An HTML page from static/, with the base path put in."""

    def initialize(self, daemon: Daemon, security: Security, page: str) -> None:  # type: ignore[override]
        super().initialize(daemon, security)
        self.page = page

    def refuse_unauthenticated(self) -> None:
        target = self.request.uri or "/"
        base = self.base_path
        self.redirect(f"{base}/login?next={quote(target, safe='/')}")

    def get(self) -> None:
        self.render_page(self.page)

    def render_page(self, page: str, status: int = 200, message: str = "") -> None:
        try:
            html = (STATIC_DIR / page).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise tornado.web.HTTPError(404, reason=f"{page} is not installed") from None
        html = html.replace("{{BASE}}", self.base_path)
        html = html.replace("{{MESSAGE}}", tornado.escape.xhtml_escape(message))
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.finish(html)


class LoginHandler(PageHandler):
    requires_auth = False

    def get(self) -> None:
        self.render_page("login.html")

    def post(self) -> None:
        security = self.security
        client = self.request.remote_ip or ""
        now = time.monotonic()
        limiter = security.authenticator.limiter
        if not limiter.allowed(client, now):
            self.render_page(
                "login.html", 429, "Too many failed logins. Try again in a few minutes."
            )
            return
        security.warn_if_cleartext(self)
        name = self.get_body_argument("username", "")
        password = self.get_body_argument("password", "")
        user = security.authenticator.check_password(name, password) if security.enabled else None
        if user is None:
            limiter.failed(client, now)
            self.render_page("login.html", 401, "Wrong user name or password.")
            return
        limiter.succeeded(client)
        lifetime_days = security.authenticator.config.session_lifetime / 86400
        self.set_signed_cookie(
            SESSION_COOKIE,
            f"{user}|{int(time.time())}",  # floor: a rounded-up time would be in the future
            expires_days=lifetime_days,
            httponly=True,
            samesite="Strict",
            secure=self.request.protocol == "https",
            path="/",
        )
        logger.info("web: %s logged in from %s", user, client)
        self.redirect(self.base_path + _safe_next(self.get_argument("next", "/")))


def _safe_next(target: str) -> str:
    """Only a local path: never another site (open redirect)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


class LogoutHandler(BaseHandler):
    def post(self) -> None:
        self.clear_cookie(SESSION_COOKIE, path="/")
        self.set_status(204)
        self.finish()


class StaticAssetHandler(tornado.web.StaticFileHandler):
    """CSS, JS and icons; same security headers as everything else."""

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)


def make_app(daemon: Daemon, cookie_secret: str) -> tornado.web.Application:
    from motiond.web import api, live, media  # noqa: PLC0415 (they import this module)

    security = Security(daemon, Authenticator(daemon.config.web.auth))
    context = {"daemon": daemon, "security": security}
    hub = daemon.hub
    return tornado.web.Application(
        [
            (r"/", PageHandler, {**context, "page": "index.html"}),
            (r"/clips", PageHandler, {**context, "page": "clips.html"}),
            (r"/login", LoginHandler, {**context, "page": "login.html"}),
            (r"/logout", LogoutHandler, context),
            (r"/static/(.*)", StaticAssetHandler, {"path": str(STATIC_DIR)}),
            (
                r"/ws/live/([A-Za-z0-9_-]{1,64})",
                live.LiveSocket,
                {"hub": hub, **context},
            ),
            (r"/media/(.*)", media.MediaHandler, {**context, "path": str(daemon.storage.root)}),
            (r"/healthz", api.HealthHandler, context),
            (r"/metrics", api.MetricsHandler, context),
            (r"/api/session", api.SessionHandler, context),
            (r"/api/cameras", api.CamerasHandler, context),
            (r"/api/cameras/([^/]+)/(arm|disarm|snapshot)", api.CameraActionHandler, context),
            (r"/api/clips", api.ClipsHandler, context),
            (r"/api/clips/(.+)", api.ClipHandler, context),
            (r"/api/snapshots", api.SnapshotsHandler, context),
        ],
        cookie_secret=cookie_secret,
        websocket_max_message_size=4096,
        default_handler_class=api.NotFoundHandler,
        default_handler_args=context,
        compress_response=True,
        xsrf_cookies=False,
        static_hash_cache=False,
    )


def load_or_create_cookie_secret(storage_root: Path) -> str:
    """A random secret kept in the storage directory (0600), so sessions survive restarts."""
    path = storage_root / ".cookie-secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    import secrets  # noqa: PLC0415

    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret


__all__ = ["MAX_BODY_BYTES", "BaseHandler", "Security", "__version__", "make_app"]
