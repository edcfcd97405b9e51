"""The live view as the camera sent it: H.264/H.265 packets as fragmented MP4 over a WebSocket.

``GET /ws/live/<camera>?format=mp4&stream=main|sub`` (same authentication, Host and Origin
rules as the JPEG view, ``web/live.py``): first a text message ``{"type": "mime", "mime":
"video/mp4; codecs=\\"avc1.PPCCLL\\"", "width", "height", "stream", "streams"}`` (the stream
given: the sub stream only where the camera has one), then binary messages: the init segment
(``ftyp`` + ``moov``), then one media segment (``moof`` + ``mdat``) per coded picture, the
first at a keyframe. Nothing is decoded or encoded. A stream that cannot be sent so (JPEG
pictures, MPEG-4 part 2) gets ``{"type": "unsupported", "reason": ...}`` and the socket is closed
(4415); the page then shows JPEG pictures. About once a second a ``{"type": "clock"}`` text
message maps the stream's media time to the capture wall-clock time (for latency figures).

One ``StreamFeed`` per camera stream, made when its first viewer comes and dropped when its
last one leaves; its ``LiveSegmenter`` makes each segment once for every viewer.

Thread crossings:
- A camera's capture thread (main stream) or detection thread (sub stream) calls
  ``Mp4Hub.on_packet`` (a door packet listener). For a watched stream it appends the frame to
  the feed's inbox, a deque of at most ``INBOX_FRAMES`` under ``StreamFeed.lock``, and, unless
  a drain is already scheduled, calls ``IOLoop.add_callback`` (the only thread-safe entry into
  the loop). A full inbox (the loop is that far behind) drops its oldest frame and the
  segmenter starts again at the next keyframe; the camera's thread never waits.
Everything else runs on the IOLoop's thread.

Each viewer has one write in flight and a backlog bounded by time (``MAX_BEHIND`` seconds of
video) and bytes (``MAX_BACKLOG_BYTES``); a viewer over either loses its backlog and goes on at
the next keyframe (counted), never slowing the other viewers or the camera. Its socket's kernel
send buffer is kept small (``SEND_BUFFER``) so a slow reader is seen here, not hidden there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
import threading
from collections import deque
from dataclasses import replace
from typing import Any

import tornado.ioloop
import tornado.iostream
import tornado.websocket

from motiond.frames import Frame
from motiond.record.livefmp4 import Fragment, InitSegment, LiveSegmenter, UnsupportedStream
from motiond.store.layout import is_camera_name
from motiond.web.base import WebContext
from motiond.web.door import Door
from motiond.web.live import LiveHub, LiveSocket, write_unawaited

logger = logging.getLogger(__name__)

STREAMS = ("main", "sub")
INBOX_FRAMES = 90  # frames waiting for the IOLoop: 6 s at 15 fps, then the oldest go
MAX_BEHIND = 1.0  # seconds of video a viewer's backlog may hold before it skips
MAX_BACKLOG_BYTES = 4 << 20
SEND_BUFFER = 256 << 10  # kernel send buffer of an MP4 viewer's socket
CLOCK_INTERVAL = 1.0
CLOSE_UNSUPPORTED = 4415


class Mp4Viewer:
    """One WebSocket viewer of one stream: a bounded backlog, one write in flight."""

    def __init__(self, socket: LiveViewSocket, about: dict[str, Any] | None = None) -> None:
        self.socket = socket
        self.about = about  # added to the mime message: the stream given, the streams there
        self.init_sent: InitSegment | None = None
        self.waiting_for_keyframe = True
        # (message, kind, media time): kind "text", "mime", "init", "clock" or "media" (a
        # picture); a skip forward drops all but "text".
        self._backlog: deque[tuple[bytes | str, str, float]] = deque()
        self._backlog_bytes = 0
        self._writing = False
        self.last_clock = float("-inf")
        self.fragments_sent = 0
        self.skips = 0  # times the backlog was dropped to go on at a keyframe

    def streams_changed(self, streams: list[str]) -> None:
        """The camera's streams are now ``streams`` (its sub stream came after this viewer):
        said again in a "stream" message once the mime message has gone."""
        if self.about is None:
            return
        self.about = {**self.about, "streams": streams}
        if self.init_sent is not None:
            self.offer_text(mime_message(self.init_sent, self.about, kind="stream"))

    def offer_text(self, text: str) -> None:
        self._backlog.append((text, "text", 0.0))
        self._pump()

    def send_init(self, init: InitSegment) -> None:
        """The mime message and the init segment, in that order."""
        self.init_sent = init
        self._backlog.append((mime_message(init, self.about), "mime", 0.0))
        self._backlog.append((init.data, "init", 0.0))
        self._backlog_bytes += len(init.data)
        self._pump()

    def offer_fragment(self, init: InitSegment | None, fragment: Fragment) -> None:
        if self.waiting_for_keyframe and not fragment.keyframe:
            return
        if self._too_far_behind(fragment):
            self.skips += 1
            self._drop_backlog()
            self.waiting_for_keyframe = True
            if not fragment.keyframe:
                return
        self.waiting_for_keyframe = False
        if init is not None and init is not self.init_sent:
            self.send_init(init)
        if fragment.mono - self.last_clock >= CLOCK_INTERVAL:
            self.last_clock = fragment.mono
            self._backlog.append((clock_message(fragment), "clock", 0.0))
        self._backlog.append((fragment.data, "media", fragment.media_time))
        self._backlog_bytes += len(fragment.data)
        self._pump()

    def _too_far_behind(self, fragment: Fragment) -> bool:
        if self._backlog_bytes + len(fragment.data) > MAX_BACKLOG_BYTES:
            return True
        oldest = next((t for _, kind, t in self._backlog if kind == "media"), None)
        return oldest is not None and fragment.media_time - oldest > MAX_BEHIND

    def _drop_backlog(self) -> None:
        """Drop the pictures waiting; an init not yet sent goes too, and is sent again."""
        if any(kind == "init" for _, kind, _ in self._backlog):
            self.init_sent = None
        self._backlog = deque(item for item in self._backlog if item[1] == "text")
        self._backlog_bytes = 0

    def _pump(self) -> None:
        """Write what waits, one message in flight: written now when nothing is (no task of
        our own per message: this runs for every picture and viewer), else when it is done."""
        while not self._writing and self._backlog:
            message, kind, _ = self._backlog.popleft()
            if isinstance(message, bytes):
                self._backlog_bytes -= len(message)
            try:
                if isinstance(message, bytes):
                    written = write_binary(self.socket, message)
                else:
                    written = self.socket.write_message(message)
            except tornado.websocket.WebSocketClosedError:
                self._closed()
                return
            if kind == "media":
                self.fragments_sent += 1
            if not written.done():
                self._writing = True
                written.add_done_callback(self._written)

    def _written(self, written: asyncio.Future[None]) -> None:
        self._writing = False
        if written.cancelled() or written.exception() is not None:
            self._closed()  # WebSocketClosedError: on_close removes this viewer
            return
        self._pump()

    def _closed(self) -> None:
        self._backlog.clear()
        self._backlog_bytes = 0


def mime_message(init: InitSegment, about: dict[str, Any] | None = None, kind: str = "mime") -> str:
    """The mime type of a stream (what MediaSource.isTypeSupported is asked), its size, and
    ``about`` (which stream this is, which the camera has). ``kind`` "stream": the same, sent
    again when the camera's streams changed (the page shows its switch)."""
    return json.dumps(
        {
            "type": kind,
            "mime": init.mime,
            "width": init.width,
            "height": init.height,
            **(about or {}),
        }
    )


def clock_message(fragment: Fragment) -> str:
    """The stream's media time of a picture, and when it was captured (wall clock, ms)."""
    return json.dumps(
        {
            "type": "clock",
            "media_time": round(fragment.media_time, 4),
            "wall_ms": round(fragment.wall * 1000, 1),
        }
    )


class StreamFeed:
    """One camera stream's segmenter and viewers (the IOLoop's), and its inbox (shared)."""

    def __init__(self, hub: Mp4Hub, camera: str, stream: str) -> None:
        self.hub = hub
        self.camera = camera
        self.stream = stream
        self.viewers: set[Mp4Viewer] = set()
        self.segmenter = LiveSegmenter()
        # Protects ``_inbox`` and ``_scheduled``: the camera's thread appends, the IOLoop takes.
        self.lock = threading.Lock()
        self._inbox: deque[Frame] = deque()
        self._scheduled = False
        self.frames_lost = 0
        self.unsupported: str | None = None

    # -- the camera's thread --------------------------------------------------------------------

    def on_packet(self, frame: Frame) -> None:
        if frame.picture is not None or frame.image is not None:
            # The inbox keeps what the segmenter reads, not a decoded picture (megabytes).
            frame = replace(frame, picture=None, image=None)
        with self.lock:
            if len(self._inbox) >= INBOX_FRAMES:
                self._inbox.popleft()
                self.frames_lost += 1
            self._inbox.append(frame)
            if self._scheduled:
                return
            self._scheduled = True
        self.hub.loop.add_callback(self.drain)

    # -- IOLoop ---------------------------------------------------------------------------------

    def drain(self) -> None:
        with self.lock:
            frames = list(self._inbox)
            self._inbox.clear()
            self._scheduled = False
            lost, self.frames_lost = self.frames_lost, 0
        if lost:
            self.segmenter.restart()
        for frame in frames:
            try:
                made = self.segmenter.push(frame)
            except UnsupportedStream as exc:
                self.refuse_all(str(exc))
                return
            for item in made:
                if isinstance(item, Fragment):
                    init = self.segmenter.init
                    for viewer in list(self.viewers):
                        viewer.offer_fragment(init, item)

    def refuse_all(self, reason: str) -> None:
        self.unsupported = reason
        for viewer in list(self.viewers):
            refuse(viewer.socket, reason)


def write_binary(
    handler: tornado.websocket.WebSocketHandler, payload: bytes
) -> asyncio.Future[None]:
    """A binary message, as ``write_message`` sends it (one final frame, neither masked nor
    compressed: the live socket offers no compression), written straight to its stream.
    ``write_message`` copies the payload behind the frame's header and makes a task for every
    message; for each picture and each viewer that was most of the live view's cost. Header
    and payload are written in one step (nothing comes between them); the future is the
    stream's, done when the payload has been handed to the kernel."""
    if handler.get_compression_options() is not None:
        return handler.write_message(payload, binary=True)  # it compresses
    connection = handler.ws_connection
    stream = connection.stream if connection is not None else None
    if connection is None or stream is None or connection.is_closing():
        raise tornado.websocket.WebSocketClosedError()
    try:
        stream.write(frame_header(len(payload)))
        return stream.write(payload)
    except tornado.iostream.StreamClosedError as exc:
        raise tornado.websocket.WebSocketClosedError() from exc


def frame_header(size: int) -> bytes:
    """The header of a final, unmasked binary WebSocket frame of ``size`` bytes (RFC 6455 5.2)."""
    if size < 126:
        return bytes((0x82, size))
    if size <= 0xFFFF:
        return struct.pack("!BBH", 0x82, 126, size)
    return struct.pack("!BBQ", 0x82, 127, size)


def refuse(socket: LiveViewSocket, reason: str) -> None:
    write_unawaited(socket, json.dumps({"type": "unsupported", "reason": reason}))
    socket.close(CLOSE_UNSUPPORTED, "not available as MP4")


class Mp4Hub:
    """All cameras' MP4 feeds. Created and used on the IOLoop thread, except ``on_packet``."""

    def __init__(
        self, loop: tornado.ioloop.IOLoop, door: Door, max_per_camera: int, max_per_client: int
    ) -> None:
        self.loop = loop
        self.door = door
        self.max_per_camera = max_per_camera
        self.max_per_client = max_per_client
        # Changed on the IOLoop (first viewer in, last one out), read on cameras' threads.
        self.feeds: dict[tuple[str, str], StreamFeed] = {}
        # Streams that delivered a frame: which cameras have a sub stream (camera's threads).
        self.streams_seen: set[tuple[str, str]] = set()
        self._clients: dict[str, int] = {}
        door.add_packet_listener(self.on_packet)

    def on_packet(self, camera: str, stream: str, frame: Frame) -> None:
        """A camera's thread (a door packet listener): hand the frame over, if watched."""
        key = (camera, stream)
        if key not in self.streams_seen:
            self.streams_seen.add(key)
            self.loop.add_callback(self._streams_changed, camera)
        feed = self.feeds.get(key)
        if feed is not None:
            feed.on_packet(frame)

    def streams_of(self, camera: str) -> list[str]:
        """The streams of ``camera`` that delivered a frame (at least "main")."""
        return [name for name in STREAMS if (camera, name) in self.streams_seen] or ["main"]

    def _streams_changed(self, camera: str) -> None:
        """IOLoop: a stream of ``camera`` delivered its first frame; its viewers learn it (a
        page opened before the sub stream came online shows its switch without a reload)."""
        streams = self.streams_of(camera)
        for (name, _), feed in self.feeds.items():
            if name == camera:
                for viewer in feed.viewers:
                    viewer.streams_changed(streams)

    def stream_for(self, camera: str, wanted: str) -> str:
        """The stream a viewer gets: the sub stream if asked for and the camera has one."""
        return "sub" if wanted == "sub" and (camera, "sub") in self.streams_seen else "main"

    def viewers(self, camera: str) -> int:
        return sum(len(f.viewers) for (name, _), f in self.feeds.items() if name == camera)

    def add(self, camera: str, stream: str, client: str, viewer: Mp4Viewer) -> str | None:
        """Register a viewer; returns why not (a limit reached) or None."""
        if self.viewers(camera) >= self.max_per_camera:
            return f"too many viewers of {camera} (web.max_viewers_per_camera)"
        if self._clients.get(client, 0) >= self.max_per_client:
            return "too many live views from this client (web.max_viewers_per_client)"
        feed = self.feeds.get((camera, stream))
        if feed is None:
            feed = self.feeds[(camera, stream)] = StreamFeed(self, camera, stream)
            logger.debug("live view: MP4 feed of %s (%s stream) started", camera, stream)
        feed.viewers.add(viewer)
        self._clients[client] = self._clients.get(client, 0) + 1
        if feed.unsupported is not None:
            refuse(viewer.socket, feed.unsupported)
        elif feed.segmenter.init is not None:
            viewer.send_init(feed.segmenter.init)  # the page prepares while the keyframe comes
        return None

    def remove(self, camera: str, stream: str, client: str, viewer: Mp4Viewer) -> None:
        feed = self.feeds.get((camera, stream))
        if feed is None or viewer not in feed.viewers:
            return
        feed.viewers.discard(viewer)
        if not feed.viewers:
            del self.feeds[(camera, stream)]
            logger.debug("live view: MP4 feed of %s (%s stream) stopped", camera, stream)
        remaining = self._clients.get(client, 1) - 1
        if remaining > 0:
            self._clients[client] = remaining
        else:
            self._clients.pop(client, None)

    def stop(self) -> None:
        for feed in list(self.feeds.values()):
            for viewer in list(feed.viewers):
                viewer.socket.close(1001, "daemon stopping")


class LiveViewSocket(LiveSocket):
    """``/ws/live/<camera>``: JPEG pictures (``LiveSocket``), or with ``?format=mp4`` the
    camera's own H.264 as fragmented MP4 (its MP4 part)."""

    mp4_hub: Mp4Hub
    mp4_viewer: Mp4Viewer | None = None
    stream_name = "main"

    def initialize(  # type: ignore[override]
        self, hub: LiveHub, context: WebContext, mp4_hub: Mp4Hub
    ) -> None:
        super().initialize(hub, context)
        self.mp4_hub = mp4_hub

    @property
    def wants_mp4(self) -> bool:
        return self.get_query_argument("format", "") == "mp4"

    def open(self, *args: str, **kwargs: str) -> None:
        if not self.wants_mp4:
            super().open(*args, **kwargs)
            return
        camera = args[0]
        self.camera = camera
        state = self.hub.door.camera(camera) if is_camera_name(camera) else None
        if state is None:
            self.close(4404, "unknown camera")
            return
        hub = self.mp4_hub
        self.stream_name = hub.stream_for(camera, self.get_query_argument("stream", "main"))
        self._small_send_buffer()
        viewer = Mp4Viewer(self, {"stream": self.stream_name, "streams": hub.streams_of(camera)})
        refused = hub.add(camera, self.stream_name, self.client, viewer)
        if refused:
            self.close(1013, refused)
            return
        self.mp4_viewer = viewer

    def _small_send_buffer(self) -> None:
        stream = getattr(self.ws_connection, "stream", None)
        sock = getattr(stream, "socket", None)
        if sock is not None:
            with contextlib.suppress(OSError):  # a best effort: the backlog bounds what we hold
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)

    def on_message(self, message: str | bytes) -> Any:
        if self.mp4_viewer is None:
            return super().on_message(message)
        return None  # an MP4 viewer only listens

    def on_close(self) -> None:
        viewer, self.mp4_viewer = self.mp4_viewer, None
        if viewer is not None:
            self.mp4_hub.remove(self.camera, self.stream_name, self.client, viewer)
            return
        super().on_close()
