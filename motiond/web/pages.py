"""The HTML pages, login and logout, and the static assets."""

from __future__ import annotations

import logging
import time
from importlib import resources
from pathlib import Path
from urllib.parse import quote, urlsplit

import tornado.escape
import tornado.web

from motiond.web.base import SESSION_COOKIE, BaseHandler, WebContext, set_security_headers

logger = logging.getLogger(__name__)

STATIC_DIR = Path(str(resources.files("motiond").joinpath("web", "static")))


class PageHandler(BaseHandler):
    """An HTML page from static/, with the base path put in."""

    def initialize(self, context: WebContext, page: str) -> None:  # type: ignore[override]
        super().initialize(context)
        self.page = page

    def refuse_unauthenticated(self) -> None:
        target = self.request.uri or "/"
        self.redirect(f"{self.base_path}/login?next={quote(target, safe='/')}")

    def get(self) -> None:
        self.render_page(self.page)

    def render_page(self, page: str, status: int = 200, message: str = "") -> None:
        try:
            html = (STATIC_DIR / page).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise tornado.web.HTTPError(404, reason=f"{page} is not installed") from None
        html = html.replace("{{BASE}}", self.base_path)
        html = html.replace("{{MESSAGE}}", tornado.escape.xhtml_escape(message))
        if "{{XSRF}}" in html:
            html = html.replace("{{XSRF}}", tornado.escape.xhtml_escape(self.xsrf_token))
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.finish(html)


class LoginHandler(PageHandler):
    """The login form. Its POST must come from our own page (login CSRF): with the form's
    token (``_xsrf``, double-submitted in a SameSite cookie) or the pages' X-Motiond header,
    neither of which another site can send."""

    requires_auth = False

    def get(self) -> None:
        self.render_page("login.html")

    async def post(self) -> None:
        if "X-Motiond" not in self.request.headers:
            self.check_xsrf_cookie()
        context = self.context
        name = self.get_body_argument("username", "")
        password = self.get_body_argument("password", "")
        context.warn_if_cleartext(self.request)
        if not context.auth_enabled:
            self.render_page("login.html", 401, "Wrong user name or password.")
            return
        try:
            user = await context.check_password(self, name, password, self.via)
        except tornado.web.HTTPError as error:
            if error.status_code != 429:
                raise
            message = "Too many failed logins. Try again in a few minutes."
            self.render_page("login.html", 429, message)
            return
        if user is None:
            self.render_page("login.html", 401, "Wrong user name or password.")
            return
        fingerprint = context.authenticator.fingerprints()[user]
        sessions = context.sessions
        session_id = sessions.begin(user, fingerprint, time.time())
        await context.run_io(sessions.save, *sessions.snapshot())
        self.set_signed_cookie(
            SESSION_COOKIE,
            session_id,
            expires_days=context.web.auth.session_lifetime / 86400,
            httponly=True,
            samesite="Strict",
            secure=self.request.protocol == "https",
            path="/",
        )
        context.remember_device(self, user)
        logger.info("web: %s logged in from %s", user, self.request.remote_ip)
        self.redirect(self.base_path + safe_next(self.get_argument("next", "/", strip=False)))


def safe_next(target: str) -> str:
    """Only a path on this site: never another site (open redirect). Browsers read ``/\\`` as
    ``//`` and drop tabs and newlines, so none of those may appear either; anything else not
    ASCII is percent-encoded."""
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 0x21 or ord(c) == 0x7F for c in target)
    ):
        return "/"
    return quote(target, safe="!#$%&'()*+,/:;=?@[]~")


class LogoutHandler(BaseHandler):
    """Ends the session on the server (the cookie alone is worth nothing afterwards)."""

    async def post(self) -> None:
        context = self.context
        session_id = context.session_id(self)
        if session_id is not None and context.sessions.end(session_id):
            await context.run_io(context.sessions.save, *context.sessions.snapshot())
            logger.info("web: %s logged out", self.current_user)
        self.clear_cookie(SESSION_COOKIE, path="/")
        self.set_status(204)
        self.finish()


class StaticAssetHandler(tornado.web.StaticFileHandler):
    """CSS, JS and icons; same security headers and Host rule as everything else."""

    def initialize(self, path: str, context: WebContext) -> None:  # type: ignore[override]
        super().initialize(path)
        self.context = context

    def set_default_headers(self) -> None:
        set_security_headers(self)

    def prepare(self) -> None:
        if not self.context.auth_enabled:
            self.context.refuse_foreign_host(self.request)
