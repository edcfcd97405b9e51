"""Clips and snapshots over HTTP: Tornado's StaticFileHandler (Range, ETag, 304), made safe.

Two changes to the stock handler: the ETag comes from size and mtime (the default hashes the
whole file on the IOLoop, stalling the live view, and goes stale while a clip grows), and paths
are checked against the storage layout and resolved (no traversal, no symlink escape).
"""

from __future__ import annotations

import os
from typing import Any

import tornado.web

from motiond.store.layout import is_media_path
from motiond.web.base import WebContext, error_reason, set_security_headers


class MediaHandler(tornado.web.StaticFileHandler):
    def initialize(self, path: str, context: WebContext) -> None:  # type: ignore[override]
        super().initialize(path)
        self.context = context

    def set_default_headers(self) -> None:
        set_security_headers(self)

    async def prepare(self) -> None:
        context = self.context
        via = context.apply_proxy_headers(self.request)
        if not context.auth_enabled:
            context.refuse_foreign_host(self.request)
        self.current_user = await context.authenticate(self, via)
        if self.current_user is None:
            raise tornado.web.HTTPError(401, reason="authentication required")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish({"error": error_reason(self, status_code, kwargs)})

    async def get(self, path: str, include_body: bool = True) -> None:
        if not is_media_path(path):
            raise tornado.web.HTTPError(404, reason="not found")
        if self.get_query_argument("download", None):
            filename = path.rsplit("/", 1)[-1]
            camera = path.split("/")[1]
            self.set_header("Content-Disposition", f'attachment; filename="{camera}-{filename}"')
        await super().get(path, include_body)

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        # realpath, not abspath: a symlink inside storage must not lead outside it.
        real_root = os.path.realpath(root)
        real_path = os.path.realpath(absolute_path)
        if not real_path.startswith(real_root + os.sep):
            raise tornado.web.HTTPError(404, reason="not found")
        if not os.path.isfile(real_path):
            raise tornado.web.HTTPError(404, reason="not found")
        return real_path

    @classmethod
    def get_content_version(cls, abspath: str) -> str:
        stat = os.stat(abspath)
        return f"{stat.st_size:x}-{stat.st_mtime_ns:x}"

    def compute_etag(self) -> str | None:
        # Not the stock cached version: a growing clip must get a new ETag.
        assert self.absolute_path is not None
        return f'"{self.get_content_version(self.absolute_path)}"'

    def get_cache_time(self, path: str, modified: Any, mime_type: str) -> int:
        return 0

    @classmethod
    def get_content_type_for(cls, path: str) -> str:
        return "video/mp4" if path.endswith(".mp4") else "image/jpeg"

    def get_content_type(self) -> str:
        assert self.absolute_path is not None
        return self.get_content_type_for(self.absolute_path)
