"""The Tornado application (minimal for now: health and camera status).

Handlers get the daemon through ``initialize()`` and run on the IOLoop's thread.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import tornado.web

from motiond import __version__

if TYPE_CHECKING:
    from motiond.daemon import Daemon


class DaemonHandler(tornado.web.RequestHandler):
    def initialize(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))


class HealthHandler(DaemonHandler):
    def get(self) -> None:
        statuses = [c.status() for c in self.daemon.cameras.values()]
        offline = [s.name for s in statuses if not s.online]
        self.write_json(
            {"ok": not offline, "offline": offline, "version": __version__},
            status=503 if offline else 200,
        )


class CamerasHandler(DaemonHandler):
    def get(self) -> None:
        self.write_json([dataclasses.asdict(c.status()) for c in self.daemon.cameras.values()])


def make_app(daemon: Daemon) -> tornado.web.Application:
    context = {"daemon": daemon}
    return tornado.web.Application(
        [
            (r"/healthz", HealthHandler, context),
            (r"/api/cameras", CamerasHandler, context),
        ]
    )
