"""The Tornado application: its routes, its executors and its sessions, built around a ``Door``.

``make_app`` is the web package's only entry: the daemon passes its door, the web config and the
storage directory (for the cookie secret and the session table). Nothing in the web package
imports this module, and it imports nothing of the daemon's internals.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import tornado.ioloop
import tornado.web

from motiond.config.web import WebConfig
from motiond.threads import named_executor
from motiond.web import api, export, live, livemp4, media, pages, timeline
from motiond.web.base import MAX_BODY_BYTES, WebContext
from motiond.web.bounds import log_request
from motiond.web.door import Door
from motiond.web.sessions import SessionStore

logger = logging.getLogger(__name__)

# A viewer that vanished without closing (phone out of range) is found by WebSocket pings and
# its slot freed: after PING_TIMEOUT without an answer, not when TCP gives up (minutes later).
PING_INTERVAL = 10.0
PING_TIMEOUT = 30.0


class MotiondApp(tornado.web.Application):
    """The application plus what it owns: the live hub, the executors, the sessions."""

    def __init__(
        self, context: WebContext, hub: live.LiveHub, mp4_hub: livemp4.Mp4Hub, **settings: Any
    ) -> None:
        self.context = context
        self.hub = hub
        self.mp4_hub = mp4_hub
        super().__init__(routes(context, hub, mp4_hub), **settings)

    def reload_secret(self) -> None:
        """IOLoop thread: take up a rotated (or removed) cookie secret; sessions end then."""
        sessions = self.context.sessions
        if sessions.reload_secret():
            self.settings["cookie_secret"] = sessions.secret
            self.context.io_executor.submit(sessions.save, *sessions.snapshot())
            logger.warning("web: the cookie secret changed; every session has ended")

    def close(self) -> None:
        """Close live viewers and stop the executors (queued work is dropped)."""
        self.hub.stop()
        self.mp4_hub.stop()
        for executor in (self.context.io_executor, self.context.auth_executor):
            executor.shutdown(wait=False, cancel_futures=True)


def make_app(
    door: Door,
    web: WebConfig,
    state_dir: Path,
    *,
    ping_interval: float = PING_INTERVAL,
    ping_timeout: float = PING_TIMEOUT,
) -> MotiondApp:
    """The application on the current IOLoop; binds nothing."""
    sessions = SessionStore(state_dir, web.auth.session_lifetime)
    context = WebContext(
        door,
        web,
        sessions,
        # File work for handlers (snapshots, sidecar edits, scans, session saves).
        io_executor=named_executor("web-io", max_workers=2),
        # scrypt: one at a time, 16 MiB each; a spray of guesses waits here, not the IOLoop.
        auth_executor=named_executor("web-auth", max_workers=1),
    )
    if web.auth.enabled and sessions.forget_stale(
        context.authenticator.fingerprints(), time.time()
    ):
        context.io_executor.submit(sessions.save, *sessions.snapshot())
    hub = live.LiveHub(
        tornado.ioloop.IOLoop.current(),
        door,
        web.max_viewers_per_camera,
        web.max_viewers_per_client,
    )
    mp4_hub = livemp4.Mp4Hub(
        tornado.ioloop.IOLoop.current(),
        door,
        web.max_viewers_per_camera,
        web.max_viewers_per_client,
    )
    context.viewers = hub.viewers
    return MotiondApp(
        context,
        hub,
        mp4_hub,
        cookie_secret=sessions.secret,
        websocket_max_message_size=4096,
        websocket_ping_interval=ping_interval,
        websocket_ping_timeout=ping_timeout,
        default_handler_class=api.NotFoundHandler,
        default_handler_args={"context": context},
        compress_response=True,
        xsrf_cookies=False,  # checked where needed: the login form (pages.LoginHandler)
        xsrf_cookie_kwargs={"httponly": True, "samesite": "Strict", "path": "/"},
        static_hash_cache=False,
        log_function=log_request,
    )


def routes(
    context: WebContext, hub: live.LiveHub, mp4_hub: livemp4.Mp4Hub
) -> list[tuple[str, Any, dict[str, Any]]]:
    given = {"context": context}
    return [
        (r"/", pages.PageHandler, {**given, "page": "index.html"}),
        (r"/clips", pages.PageHandler, {**given, "page": "clips.html"}),
        (r"/review", pages.PageHandler, {**given, "page": "review.html"}),
        (r"/grid", pages.PageHandler, {**given, "page": "grid.html"}),
        (r"/login", pages.LoginHandler, {**given, "page": "login.html"}),
        (r"/logout", pages.LogoutHandler, given),
        (r"/static/(.*)", pages.StaticAssetHandler, {**given, "path": str(pages.STATIC_DIR)}),
        (
            r"/ws/live/([^/]+)",
            livemp4.LiveViewSocket,
            {**given, "hub": hub, "mp4_hub": mp4_hub},
        ),
        (r"/media/(.*)", media.MediaHandler, {**given, "path": str(context.door.storage.root)}),
        (r"/healthz", api.HealthHandler, given),
        (r"/metrics", api.MetricsHandler, given),
        (r"/api/session", api.SessionHandler, given),
        (r"/api/cameras", api.CamerasHandler, given),
        (r"/api/cameras/([^/]+)/(arm|disarm|snapshot)", api.CameraActionHandler, given),
        (r"/api/clips", api.ClipsHandler, given),
        (r"/api/clips/(.+)", api.ClipHandler, given),
        (r"/api/snapshots", api.SnapshotsHandler, given),
        (r"/api/timeline", timeline.TimelineHandler, given),
        (r"/api/export", export.ExportHandler, {**given, "slots": export.ExportSlots()}),
    ]


__all__ = ["MAX_BODY_BYTES", "MotiondApp", "make_app"]
