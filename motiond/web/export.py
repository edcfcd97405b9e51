"""``GET /api/export``: one MP4 of a camera's footage over a time range, streamed as it is made.

The footage is the camera's continuous segments and, where they leave a gap (or the camera
records clips only), its motion clips. Their packets are copied, not re-encoded (a copy
camera's export holds the camera's own bytes), into one fragmented MP4 that starts at the
keyframe at or before ``start`` and ends before ``end``. Timestamps follow the capture times,
so an outage stays a gap (the player holds the last picture). Where two files overlap (a clip
inside continuous footage, consecutive segments meeting within a GOP), what is already written
wins and the next file joins at its first keyframe after that.

Threads: the handler checks the request and picks the files on the IOLoop (the door's quick
calls), then one thread per export (``export``, at most ``MAX_EXPORTS`` at once) reads the
files and muxes; each piece of output is written to the client on the IOLoop, and the export
thread waits for it to be flushed, so a slow client slows the export instead of filling memory,
and nothing is ever held but the current piece and one GOP.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import tornado.iostream
import tornado.web

from motiond.threads import named_thread
from motiond.web.api import _time_argument, camera_argument
from motiond.web.base import BaseHandler

logger = logging.getLogger(__name__)

MAX_EXPORTS = 2  # at once; more get 503
CHUNK_BYTES = 256 * 1024  # output handed to the client at a time
TIME_BASE = Fraction(1, 90000)
FRAGMENTED_MP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
OVERLAP_SLACK = 0.001  # seconds: a packet this close to what is written counts as written


@dataclass(frozen=True, slots=True)
class Piece:
    """A file of footage: a segment or a clip, and the capture time of its first frame."""

    start: float
    end: float
    path: Path


@dataclass(slots=True)
class ExportResult:
    packets: int = 0
    first: float | None = None  # capture time of the first packet written
    last: float | None = None  # and of the last


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


def _timed_packets(path: Path, start: float) -> Iterator[tuple[Any, float]]:
    """(packet, capture time) of each video packet of a file whose first frame is ``start``."""
    with av.open(str(path)) as source:
        stream = source.streams.video[0]
        time_base = stream.time_base or TIME_BASE
        origin: int | None = None
        for packet in source.demux(stream):
            if packet.dts is None or packet.size == 0:
                continue
            origin = packet.dts if origin is None else origin
            yield packet, start + float((packet.dts - origin) * time_base)


def _stream_key(stream: Any) -> tuple[Any, ...]:
    """What two files must share for their packets to go in one track."""
    context = stream.codec_context
    return (context.name, context.width, context.height, context.extradata)


def assemble(pieces: list[Piece], start: float, end: float, output: Any) -> ExportResult:
    """Copy the packets of ``pieces`` from the keyframe at or before ``start`` to ``end`` into
    one fragmented MP4 written to ``output`` (anything with ``write``)."""
    result = ExportResult()
    container = av.open(output, "w", format="mp4", options=dict(FRAGMENTED_MP4))
    out_stream: Any = None
    stream_key: tuple[Any, ...] = ()
    last_dts = -1
    try:
        for piece in sorted(pieces, key=lambda p: p.start):
            if piece.end <= start or (result.last is not None and piece.end <= result.last):
                continue
            with av.open(str(piece.path)) as probe:
                template = probe.streams.video[0]
                if out_stream is None:
                    out_stream = container.add_stream_from_template(template)
                    out_stream.time_base = TIME_BASE
                    stream_key = _stream_key(template)
                elif _stream_key(template) != stream_key:
                    logger.warning("export: %s is another stream; left out", piece.path.name)
                    continue
            for packet, at, delay in _packets_of(piece, start, end, result.last):
                if result.first is None:
                    result.first = at
                dts = max(round((at - result.first) / TIME_BASE), last_dts + 1)
                last_dts = dts
                packet.stream = out_stream
                packet.time_base = TIME_BASE
                packet.dts = dts
                packet.pts = dts + delay
                container.mux(packet)
                result.packets += 1
                result.last = at
    finally:
        container.close()
    return result


def _packets_of(
    piece: Piece, start: float, end: float, written_until: float | None
) -> Iterator[tuple[Any, float, int]]:
    """(packet, capture time, pts - dts in 1/90000 s) of the packets of ``piece`` that belong
    in the export: from the keyframe at or before ``start`` (the first piece) or the first
    keyframe after what is written (the next ones), up to ``end``."""
    gop: list[tuple[Any, float, int]] = []  # from the last keyframe before ``start``
    joined = False
    for packet, at in _timed_packets(piece.path, piece.start):
        if at >= end:
            break
        if written_until is not None and at <= written_until + OVERLAP_SLACK:
            continue
        delay = 0
        if packet.pts is not None:
            delay = round((packet.pts - packet.dts) * packet.time_base / TIME_BASE)
        item = (packet, at, delay)
        if not joined:
            if at < start:
                if packet.is_keyframe:
                    gop = [item]
                elif gop:
                    gop.append(item)
                continue
            if packet.is_keyframe:
                gop = []  # the range starts on a keyframe: nothing before it is needed
            elif not gop:
                continue  # a file joins at a keyframe
            joined = True
            yield from gop
        yield item


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
        pieces = self._pieces(camera, start, end)
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
        root = self.door.storage.root
        pieces = [Piece(s.start, s.end, s.path) for s in self.door.footage(camera, start, end)]
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
            self.finish()  # headers may be out already: end what was sent
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


__all__ = ["ExportHandler", "ExportSlots", "Piece", "assemble", "export_filename"]
