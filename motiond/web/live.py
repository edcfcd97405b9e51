"""The live view: camera frames to WebSocket viewers, newest first, never a backlog.

Thread crossings:
- A camera's capture thread calls ``LiveHub.on_frame`` (a door frame listener). It stores the
  frame in the feed's ``latest`` slot and, unless a delivery is already scheduled, schedules one
  with ``IOLoop.add_callback`` (the only thread-safe entry into the loop). Nothing is scheduled
  while nobody watches.
- Decoding, resizing and encoding a frame for a scaled view (or a camera without JPEG) runs on
  the hub's encode executor, one frame per feed at a time; its result comes back to the loop
  through the future's callback. A camera's own JPEG at full size is forwarded as it is.
Everything else here runs on the IOLoop's thread.

Each frame is JPEG-encoded at most once per output width, whatever the number of viewers. Each
viewer has one write in flight and a one-frame slot: a slow reader gets the newest frame when
it is ready, never a queue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import cv2
import tornado.ioloop
import tornado.websocket

from motiond.control import DetectionAreas
from motiond.detect.boxes import MotionResult
from motiond.frames import Frame
from motiond.store.layout import is_camera_name
from motiond.threads import named_executor
from motiond.web.base import WebContext
from motiond.web.bounds import MAX_JSON_DEPTH, parse_json
from motiond.web.door import Door

logger = logging.getLogger(__name__)

LIVE_JPEG_QUALITY = 70
WIDTH_STEP = 160  # requested widths are rounded up to a multiple, to bound encodes per frame
STATUS_INTERVAL = 0.25
FRAME_INFO_INTERVAL = 1.0
# A viewer's messages: at most 4 KiB (the app's websocket_max_message_size, else 1009), JSON
# nested at most MAX_JSON_DEPTH deep (else 1003); a ping's id at most this long (else ignored).
MAX_PING_ID = 64


def write_unawaited(
    socket: tornado.websocket.WebSocketHandler, message: str | bytes, binary: bool = False
) -> None:
    """Write without waiting (a small message, followed by others); a socket that closes
    meanwhile is not an error, and its failed write is collected (asyncio would log it)."""
    try:
        written = socket.write_message(message, binary=binary)
    except tornado.websocket.WebSocketClosedError:
        return
    written.add_done_callback(lambda done: done.cancelled() or done.exception())


class Viewer:
    """One WebSocket viewer of one camera: one write in flight, the newest frame waiting."""

    def __init__(self, socket: LiveSocket, width: int | None, max_fps: float | None) -> None:
        self.socket = socket
        self.width = width
        self.min_interval = 1.0 / max_fps if max_fps else 0.0
        self.last_offered = float("-inf")
        self.last_frame_info = float("-inf")
        self._pending_frame: tuple[bytes, str | None] | None = None
        self._pending_text: str | None = None
        self._writing = False
        self.frames_sent = 0
        self.frames_skipped = 0

    def wants_frame(self, now: float) -> bool:
        return self.min_interval >= 0 and now - self.last_offered >= self.min_interval

    def offer_frame(self, jpeg: bytes, info: str | None, now: float) -> None:
        self.last_offered = now
        if self._pending_frame is not None:
            self.frames_skipped += 1
        self._pending_frame = (jpeg, info)
        self._pump()

    def offer_text(self, text: str) -> None:
        self._pending_text = text
        self._pump()

    def _pump(self) -> None:
        if not self._writing:
            self._writing = True
            tornado.ioloop.IOLoop.current().add_callback(self._send_next)

    async def _send_next(self) -> None:
        try:
            while self._pending_text is not None or self._pending_frame is not None:
                text, self._pending_text = self._pending_text, None
                if text is not None:
                    await self.socket.write_message(text)
                frame, self._pending_frame = self._pending_frame, None
                if frame is not None:
                    jpeg, info = frame
                    if info is not None:
                        write_unawaited(self.socket, info)  # small, and followed by its frame
                    await self.socket.write_message(jpeg, binary=True)
                    self.frames_sent += 1
        except tornado.websocket.WebSocketClosedError:
            pass
        finally:
            self._writing = False


def size_key(frame: Frame, width: int | None) -> int | None:
    """None: the full frame; else the output width (rounded up to WIDTH_STEP)."""
    if width is None or frame.width <= width:
        return None
    stepped = -(-width // WIDTH_STEP) * WIDTH_STEP
    return None if stepped >= frame.width else stepped


def forwarded_jpeg(frame: Frame, key: int | None) -> bytes | None:
    """The camera's own JPEG when it fits as it is (full size), else None (it needs encoding)."""
    return frame.jpeg if key is None else None


def encode_for_width(frame: Frame, width: int | None) -> bytes:
    """The JPEG of ``frame`` at ``width`` (None: full size). Slow: the encode executor's."""
    image = frame.bgr()
    if width is not None:
        height = max(2, round(frame.height * width / frame.width))
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, LIVE_JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return encoded.tobytes()


class CameraFeed:
    """The viewers of one camera and the current frame's encodings."""

    def __init__(self, hub: LiveHub, camera: str) -> None:
        self.hub = hub
        self.camera = camera
        self.viewers: set[Viewer] = set()
        # Written by the capture thread, read on the IOLoop: a plain reference swap.
        self.latest: tuple[Frame, MotionResult | None] | None = None
        self.delivery_scheduled = False
        self.deltas: deque[float] = deque(maxlen=64)
        self.last_status = float("-inf")
        self.encodes = 0  # frames encoded for viewers (at some width)
        self.encoding = False  # a frame of this feed is on the encode executor
        # Frames carry monotonic capture times (not a file read "fast"); from the last status.
        self.clocked = True
        # The latest frame's changed regions, for the page's overlay: (counted, not counted).
        self.boxes: tuple[list[list[int]], list[list[int]]] = ([], [])
        self.largest = 0.0  # the latest frame's largest changed region (min_area's measure)
        self.why: dict[str, object] = {}  # why the latest frame's boxes counted or not
        # The areas last sent: the ignored outlines (by identity) and the picture's size.
        self.areas_sent: tuple[object, int | None, int | None] | None = None

    # -- capture thread -------------------------------------------------------------------------

    def on_frame(self, frame: Frame, result: MotionResult | None) -> None:
        if not self.viewers:
            return
        self.latest = (frame, result)
        if not self.delivery_scheduled:
            self.delivery_scheduled = True
            self.hub.loop.add_callback(self.deliver)

    # -- IOLoop ---------------------------------------------------------------------------------

    def deliver(self) -> None:
        self.delivery_scheduled = False
        latest, self.latest = self.latest, None
        if latest is None:
            return
        frame, result = latest
        if result is not None:
            self.deltas.append(result.delta)
            self.boxes = (
                [box.as_list() for box in result.boxes],
                [box.as_list() for box in result.ignored_boxes],
            )
            self.largest = result.largest
            self.why = result.why()
        now = time.monotonic()
        if now - self.last_status >= STATUS_INTERVAL:
            self.send_status(now)
        to_encode: set[int | None] = set()
        for viewer in list(self.viewers):
            if not viewer.wants_frame(now):
                continue
            key = size_key(frame, viewer.width)
            jpeg = forwarded_jpeg(frame, key)
            if jpeg is not None:
                self._offer(viewer, frame, jpeg, now)
            else:
                to_encode.add(key)
        if to_encode and not self.encoding:
            # One frame of this feed on the executor at a time; viewers waiting for it get the
            # newest frame after it, not a queue.
            widths = sorted(to_encode, key=str)
            try:
                future = self.hub.loop.run_in_executor(
                    self.hub.encoder, self._encode_all, frame, widths
                )
            except RuntimeError:  # the hub is stopping
                return
            self.encoding = True
            future.add_done_callback(lambda done: self._encoded(frame, done))

    def _encode_all(self, frame: Frame, widths: list[int | None]) -> dict[int | None, bytes]:
        """Encode thread: one JPEG per width."""
        return {width: encode_for_width(frame, width) for width in widths}

    def _encoded(self, frame: Frame, done: asyncio.Future[dict[int | None, bytes]]) -> None:
        self.encoding = False
        if done.cancelled():  # the hub stopped
            return
        try:
            encodings = done.result()
        except Exception:
            logger.exception("live view: cannot encode a frame of %s", self.camera)
            return
        self.encodes += 1
        now = time.monotonic()
        for viewer in list(self.viewers):
            jpeg = encodings.get(size_key(frame, viewer.width))
            if jpeg is not None and viewer.wants_frame(now):
                self._offer(viewer, frame, jpeg, now)

    def _offer(self, viewer: Viewer, frame: Frame, jpeg: bytes, now: float) -> None:
        info = None
        if now - viewer.last_frame_info >= FRAME_INFO_INTERVAL:
            viewer.last_frame_info = now
            info = self._frame_info(frame, now)
        viewer.offer_frame(jpeg, info, now)

    def _frame_info(self, frame: Frame, now: float) -> str:
        # A file read "fast" stamps frames with file time, not the monotonic clock.
        age_ms = round((now - frame.mono) * 1000, 2) if self.clocked else 0.0
        return json.dumps(
            {
                "type": "frame",
                "seq": frame.seq,
                "age_ms": age_ms,
                "sent_at": round(time.time() * 1000, 1),
            }
        )

    def send_status(self, now: float) -> None:
        self.last_status = now
        state = self.hub.door.camera(self.camera)
        if state is None:
            return
        self.clocked = state.realtime
        deltas = list(self.deltas)
        self.deltas.clear()
        text = json.dumps(
            {
                "type": "status",
                "online": state.online,
                "recording": state.recording,
                "armed": state.armed,
                "fps": round(state.fps, 2),
                "delta": state.last_delta,
                "deltas": [round(d, 5) for d in deltas],
                "threshold": state.threshold,
                "boxes": self.boxes[0],
                "ignored_boxes": self.boxes[1],
                "largest": round(self.largest, 5),
                "min_area": state.min_area,
                "ignored_share": state.ignored_share,
                "day_night": state.day_night,
                "tampered": state.tampered,
                **self.why,
            }
        )
        for viewer in self.viewers:
            viewer.offer_text(text)
        areas = self.hub.door.detection_areas(self.camera)
        sent = self.areas_sent
        if areas is not None and (
            sent is None or sent[0] is not areas.ignored or sent[1:] != (areas.width, areas.height)
        ):
            self.areas_sent = (areas.ignored, areas.width, areas.height)
            message = areas_message(areas)
            for viewer in self.viewers:
                viewer.offer_text(message)


def areas_message(areas: DetectionAreas) -> str:
    """Where changes never count, in camera pixels (the main stream's, also where the picture
    shown is a sub stream's): the learned areas that never stop moving, and the configured
    masks (for the overlay and the mask editor)."""
    return json.dumps(
        {
            "type": "areas",
            "width": areas.width,
            "height": areas.height,
            "ignored": [[list(p) for p in area] for area in areas.ignored],
            "masks": [[list(p) for p in mask] for mask in areas.masks],
        }
    )


class LiveHub:
    """All cameras' feeds. Created and used on the IOLoop thread, except ``on_frame``."""

    def __init__(
        self,
        loop: tornado.ioloop.IOLoop,
        door: Door,
        max_per_camera: int,
        max_per_client: int,
    ) -> None:
        self.loop = loop
        self.door = door
        self.max_per_camera = max_per_camera
        self.max_per_client = max_per_client
        # Decode, resize and encode for viewers: off the IOLoop, one thread for all cameras.
        self.encoder = named_executor("live-encode", max_workers=1)
        # Added to on the IOLoop (a camera's first viewer), read on capture threads.
        self.feeds: dict[str, CameraFeed] = {}
        self._clients: dict[str, int] = {}
        self._status_timer = tornado.ioloop.PeriodicCallback(self._send_idle_status, 1000)
        self._status_timer.start()
        door.add_frame_listener(self.on_frame)

    def on_frame(self, camera: str, frame: Frame, result: MotionResult | None) -> None:
        """Capture thread (a door frame listener): hand the frame to its feed, if watched."""
        feed = self.feeds.get(camera)
        if feed is not None:
            feed.on_frame(frame, result)

    def feed(self, camera: str) -> CameraFeed:
        """The feed of a camera, made on first use (IOLoop thread)."""
        feed = self.feeds.get(camera)
        if feed is None:
            feed = self.feeds[camera] = CameraFeed(self, camera)
        return feed

    def viewers(self, camera: str) -> int:
        feed = self.feeds.get(camera)
        return len(feed.viewers) if feed else 0

    def add(self, camera: str, client: str, viewer: Viewer) -> str | None:
        """Register a viewer; returns why not (the limit reached) or None."""
        feed = self.feed(camera)
        if len(feed.viewers) >= self.max_per_camera:
            return f"too many viewers of {camera} (web.max_viewers_per_camera)"
        if self._clients.get(client, 0) >= self.max_per_client:
            return "too many live views from this client (web.max_viewers_per_client)"
        feed.viewers.add(viewer)
        self._clients[client] = self._clients.get(client, 0) + 1
        return None

    def remove(self, camera: str, client: str, viewer: Viewer) -> None:
        feed = self.feeds.get(camera)
        if feed is None or viewer not in feed.viewers:
            return
        feed.viewers.discard(viewer)
        remaining = self._clients.get(client, 1) - 1
        if remaining > 0:
            self._clients[client] = remaining
        else:
            self._clients.pop(client, None)

    def _send_idle_status(self) -> None:
        """Status also reaches viewers of a camera that sends no frames (offline)."""
        now = time.monotonic()
        for feed in self.feeds.values():
            if feed.viewers and now - feed.last_status >= 1.0:
                feed.send_status(now)

    def stop(self) -> None:
        self._status_timer.stop()
        for feed in self.feeds.values():
            for viewer in list(feed.viewers):
                viewer.socket.close(1001, "daemon stopping")
        self.encoder.shutdown(wait=False, cancel_futures=True)


class LiveSocket(tornado.websocket.WebSocketHandler):
    """``/ws/live/<camera>?fps=N&width=W``: binary JPEG frames and JSON status text
    (``frames=0``: the text alone)."""

    hub: LiveHub
    viewer: Viewer | None = None
    camera: str = ""

    def initialize(self, hub: LiveHub, context: WebContext) -> None:
        self.hub = hub
        self.context = context
        self.client = ""

    def check_origin(self, origin: str) -> bool:
        """Only pages served by this daemon may open the socket (a browser always sends Origin)."""
        host = self.request.headers.get("Host", "")
        return urlsplit(origin).netloc.lower() == host.lower()

    async def get(self, *args: Any, **kwargs: Any) -> None:
        context = self.context
        via = context.apply_proxy_headers(self.request)  # the client's address for viewer limits
        self.client = via.client or self.request.remote_ip or ""
        # Always, auth or not: Origin equals Host for a page on a rebound name too.
        if not context.hosts.allows(self.request.headers.get("Host")):
            self.set_status(421)
            self.finish({"error": "this server does not answer for that host name"})
            return
        self.current_user = await context.authenticate(self, via)
        if self.current_user is None:
            self.set_status(401)
            self.finish({"error": "authentication required"})
            return
        await super().get(*args, **kwargs)

    def open(self, *args: str, **kwargs: str) -> None:
        camera = args[0]
        self.camera = camera
        state = self.hub.door.camera(camera) if is_camera_name(camera) else None
        if state is None:
            self.close(4404, "unknown camera")
            return
        width = _positive_int(self.get_query_argument("width", ""))
        fps = _positive_float(self.get_query_argument("fps", ""))
        viewer = Viewer(self, width, fps)
        if self.get_query_argument("frames", "") == "0":
            viewer.min_interval = -1.0  # status and areas only (the page plays the MP4 view)
        refused = self.hub.add(camera, self.client, viewer)
        if refused:
            self.close(1013, refused)
            return
        self.viewer = viewer
        write_unawaited(
            self,
            json.dumps(
                {"type": "hello", "camera": camera, "width": state.width, "height": state.height}
            ),
        )
        areas = self.hub.door.detection_areas(camera)
        if areas is not None:
            # Written now, after the hello: the viewer's one text slot may take a status first.
            write_unawaited(self, areas_message(areas))

    def on_message(self, message: str | bytes) -> None:
        if self.viewer is None:
            return
        try:
            data = parse_json(message, MAX_JSON_DEPTH)
        except ValueError as exc:
            self.close(1003, f"expected JSON text: {exc}")
            return
        if isinstance(data, dict) and data.get("type") == "ping":
            ping_id = data.get("id")
            if isinstance(ping_id, int | float | str) and len(str(ping_id)) <= MAX_PING_ID:
                self.viewer.offer_text(json.dumps({"type": "pong", "id": ping_id}))

    def on_close(self) -> None:
        if self.viewer is not None:
            self.hub.remove(self.camera, self.client, self.viewer)
            self.viewer = None


def _positive_int(text: str) -> int | None:
    if not text.isascii() or not text.isdigit() or len(text) > 5:
        return None
    value = int(text)
    return value if 16 <= value <= 7680 else None


def _positive_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0.1 <= value <= 240 else None
