"""``GET /api/export``: one MP4 of a camera's footage over a time range, streamed as it is made.

The footage is the camera's continuous segments (the one being written too, up to its last
complete fragment) and, where they leave a gap (or the camera records clips only), its motion
clips, put together by ``web/assemble.py``: packets copied from the keyframe at or before
``start`` (a copy camera's export holds the camera's own bytes).

Threads: the handler checks the request on the IOLoop and picks the files on the web-io
executor (the door's ``footage`` reads the growing segment's boxes), then one thread per export
(``export``, at most ``MAX_EXPORTS`` at once) reads the files and muxes; each piece of output
is written to the client on the IOLoop, and the export thread waits for it to be flushed, so a
slow client slows the export instead of filling memory.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import tornado.iostream
import tornado.web

from motiond.threads import named_thread
from motiond.web.api import _time_argument, camera_argument
from motiond.web.assemble import ExportResult, Piece, assemble
from motiond.web.base import BaseHandler

logger = logging.getLogger(__name__)

MAX_EXPORTS = 2  # at once; more get 503
CHUNK_BYTES = 256 * 1024  # output handed to the client at a time


class _Chunker:
    """The muxer's output, handed on in pieces of about ``CHUNK_BYTES`` (not seekable)."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self.send = send
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        if len(self.buffer) >= CHUNK_BYTES:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.buffer:
            data, self.buffer = bytes(self.buffer), bytearray()
            self.send(data)


class ExportSlots:
    """How many exports may run at once (IOLoop thread only)."""

    def __init__(self, limit: int = MAX_EXPORTS) -> None:
        self.limit = limit
        self.running = 0


def export_filename(camera: str, start: float, end: float) -> str:
    """``door_2026-11-21_071502-074502.mp4``: the camera and the range, in local time."""
    first = dt.datetime.fromtimestamp(start).astimezone()
    last = dt.datetime.fromtimestamp(end).astimezone()
    to = (
        last.strftime("%H%M%S") if last.date() == first.date() else last.strftime("%Y-%m-%d_%H%M%S")
    )
    return f"{camera}_{first.strftime('%Y-%m-%d_%H%M%S')}-{to}.mp4"


class ExportHandler(BaseHandler):
    """GET /api/export?camera=NAME&start=T&end=T (T: ISO 8601 or epoch seconds)."""

    def initialize(self, slots: ExportSlots, **kwargs: Any) -> None:  # type: ignore[override]
        super().initialize(**kwargs)
        self.slots = slots

    async def get(self) -> None:
        camera = camera_argument(self)
        start = _time_argument(self, "start")
        end = _time_argument(self, "end")
        if camera is None or start is None or end is None:
            raise tornado.web.HTTPError(400, reason="camera, start and end are required")
        if end <= start:
            raise tornado.web.HTTPError(400, reason="end must be after start")
        longest = self.context.web.max_export
        if end - start > longest:
            raise tornado.web.HTTPError(400, reason=f"at most web.max_export ({longest:g} s)")
        pieces = await self.context.run_io(self._pieces, camera, start, end)
        if not pieces:
            raise tornado.web.HTTPError(404, reason="no footage in that range")
        if self.slots.running >= self.slots.limit:
            raise tornado.web.HTTPError(503, reason="too many exports at once; try again")
        self.slots.running += 1
        try:
            await self._stream(camera, pieces, start, end)
        finally:
            self.slots.running -= 1

    def _pieces(self, camera: str, start: float, end: float) -> list[Piece]:
        """The files with footage of [start, end): finished segments, the one being written,
        and clips (blocking: reads the growing segment's boxes)."""
        root = self.door.storage.root
        pieces = [
            Piece(s.start, s.end, s.path, s.size) for s in self.door.footage(camera, start, end)
        ]
        pieces += [
            Piece(c.start_ts, c.end_ts, root / c.file)
            for c in self.door.clips(camera, None, end)
            if c.end_ts > start and c.start_ts < end
        ]
        return pieces

    async def _stream(self, camera: str, pieces: list[Piece], start: float, end: float) -> None:
        self.set_header("Content-Type", "video/mp4")
        filename = export_filename(camera, start, end)
        self.set_header("Content-Disposition", f'attachment; filename="{filename}"')
        self.set_header("Cache-Control", "no-store")
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[ExportResult] = loop.create_future()

        async def write(data: bytes) -> None:
            self.write(data)
            await self.flush()

        def send(data: bytes) -> None:  # export thread: wait until the client has it
            asyncio.run_coroutine_threadsafe(write(data), loop).result()

        def run() -> None:
            chunker = _Chunker(send)
            try:
                result = assemble(pieces, start, end, chunker)
                chunker.flush()
            except Exception as exc:  # noqa: BLE001 (handed to the IOLoop, which logs it)
                loop.call_soon_threadsafe(_settle, finished, None, exc)
                return
            loop.call_soon_threadsafe(_settle, finished, result, None)

        named_thread(run, f"export-{camera}", os_name="export").start()
        try:
            result = await finished
        except tornado.iostream.StreamClosedError:
            logger.info("web: export of camera %s: the client went away", camera)
            return
        except Exception:
            logger.exception("web: export of camera %s failed", camera)
            if not self._headers_written:
                raise tornado.web.HTTPError(500, reason="export failed") from None
            # Part of it was sent: cut the connection, so the download fails rather than
            # looking whole.
            self.request.connection.close()  # type: ignore[union-attr]
            return
        self.context.log_action(
            f"export of camera {camera}: {result.packets} frames, "
            f"{(result.last or 0) - (result.first or 0):.1f} s"
        )
        self.finish()


def _settle(
    future: asyncio.Future[ExportResult], result: ExportResult | None, error: Exception | None
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert result is not None
        future.set_result(result)


__all__ = ["ExportHandler", "ExportSlots", "export_filename"]
