"""The live view: camera frames to WebSocket viewers, newest first, never a backlog.

Thread crossing: a camera's capture thread calls the listener installed by ``LiveHub.attach``.
The listener stores the frame in the feed's ``latest`` slot and, unless a delivery is already
scheduled, schedules one with ``IOLoop.add_callback`` (the only thread-safe entry into the loop).
Everything else here runs on the IOLoop's thread. Nothing is scheduled while nobody watches.

Each frame is JPEG-encoded at most once per output width, whatever the number of viewers, and a
camera's own JPEG is forwarded unchanged when it fits. Each viewer has one write in flight and a
one-frame slot: a slow reader gets the newest frame when it is ready, never a queue.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import cv2
import tornado.ioloop
import tornado.websocket

from motiond.frames import Frame
from motiond.motion import MotionResult
from motiond.snapshots import encode_jpeg

if TYPE_CHECKING:
    from motiond.camera import CameraWorker

logger = logging.getLogger(__name__)

LIVE_JPEG_QUALITY = 70
WIDTH_STEP = 160  # requested widths are rounded up to a multiple, to bound encodes per frame
STATUS_INTERVAL = 0.25
FRAME_INFO_INTERVAL = 1.0


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
        return now - self.last_offered >= self.min_interval

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
                        self.socket.write_message(info)  # small, and always followed by its frame
                    await self.socket.write_message(jpeg, binary=True)
                    self.frames_sent += 1
        except tornado.websocket.WebSocketClosedError:
            pass
        finally:
            self._writing = False


class CameraFeed:
    """The viewers of one camera and the current frame's encodings."""

    def __init__(self, hub: LiveHub, worker: CameraWorker) -> None:
        self.hub = hub
        self.worker = worker
        self.viewers: set[Viewer] = set()
        # Written by the capture thread, read on the IOLoop: a plain reference swap.
        self.latest: tuple[Frame, MotionResult | None] | None = None
        self.delivery_scheduled = False
        self.deltas: deque[float] = deque(maxlen=64)
        self.last_status = float("-inf")
        self.encodes = 0
        # The latest frame's changed regions, for the page's overlay: (counted, not counted).
        self.boxes: tuple[list[list[int]], list[list[int]]] = ([], [])
        self.largest = 0.0  # the latest frame's largest changed region (min_area's measure)
        self.areas_sent: object = None  # the ignored areas last sent (identity)

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
        now = time.monotonic()
        if now - self.last_status >= STATUS_INTERVAL:
            self.send_status(now)
        encodings: dict[int | None, bytes] = {}
        for viewer in list(self.viewers):
            if not viewer.wants_frame(now):
                continue
            key = self._size_key(frame, viewer.width)
            jpeg = encodings.get(key)
            if jpeg is None:
                jpeg = encodings[key] = self._encode(frame, key)
            info = None
            if now - viewer.last_frame_info >= FRAME_INFO_INTERVAL:
                viewer.last_frame_info = now
                info = self._frame_info(frame, now)
            viewer.offer_frame(jpeg, info, now)

    def _frame_info(self, frame: Frame, now: float) -> str:
        # A file read "fast" stamps frames with file time, not the monotonic clock.
        clocked = self.worker.config.capture.pacing == "realtime"
        age_ms = round((now - frame.mono) * 1000, 2) if clocked else 0.0
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
        status = self.worker.status()
        deltas = list(self.deltas)
        self.deltas.clear()
        text = json.dumps(
            {
                "type": "status",
                "online": status.online,
                "recording": status.recording,
                "armed": status.armed,
                "fps": round(status.fps, 2),
                "delta": status.last_delta,
                "deltas": [round(d, 5) for d in deltas],
                "threshold": status.threshold,
                "boxes": self.boxes[0],
                "ignored_boxes": self.boxes[1],
                "largest": round(self.largest, 5),
                "min_area": self.worker.detector.config.min_area,
                "ignored_share": status.ignored_share,
                "day_night": status.day_night,
                "tampered": status.tampered,
            }
        )
        for viewer in self.viewers:
            viewer.offer_text(text)
        areas = self.worker.ignored_areas()
        if areas is not self.areas_sent:
            self.areas_sent = areas
            message = self.areas_message()
            for viewer in self.viewers:
                viewer.offer_text(message)

    def areas_message(self) -> str:
        """Where changes never count, in camera pixels: the learned areas that never stop
        moving, and the configured masks (for the overlay and the mask editor)."""
        latest = self.worker.latest_frame
        return json.dumps(
            {
                "type": "areas",
                "width": latest.width if latest else None,
                "height": latest.height if latest else None,
                "ignored": [[list(p) for p in area] for area in self.worker.ignored_areas()],
                "masks": [[list(p) for p in mask] for mask in self.worker.config.motion.masks],
            }
        )

    @staticmethod
    def _size_key(frame: Frame, width: int | None) -> int | None:
        """None: the full frame; else the output width (rounded up to WIDTH_STEP)."""
        if width is None or frame.width <= width:
            return None
        stepped = -(-width // WIDTH_STEP) * WIDTH_STEP
        return None if stepped >= frame.width else stepped

    def _encode(self, frame: Frame, width: int | None) -> bytes:
        if width is None and frame.jpeg is not None:
            return frame.jpeg  # the camera's own JPEG, unchanged
        self.encodes += 1
        image = frame.bgr()
        if width is not None:
            height = max(2, round(frame.height * width / frame.width))
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        return encode_jpeg(image, LIVE_JPEG_QUALITY)


class LiveHub:
    """All cameras' feeds. Created and used on the IOLoop thread."""

    def __init__(
        self, loop: tornado.ioloop.IOLoop, max_per_camera: int, max_per_client: int
    ) -> None:
        self.loop = loop
        self.max_per_camera = max_per_camera
        self.max_per_client = max_per_client
        self.feeds: dict[str, CameraFeed] = {}
        self._clients: dict[str, int] = {}
        self._status_timer = tornado.ioloop.PeriodicCallback(self._send_idle_status, 1000)
        self._status_timer.start()

    def attach(self, worker: CameraWorker) -> None:
        """Start feeding this camera's frames to its viewers (replaces an older worker's feed)."""
        name = worker.config.name
        feed = self.feeds.get(name)
        if feed is None:
            feed = self.feeds[name] = CameraFeed(self, worker)
        else:
            feed.worker = worker
        worker.frame_listeners.append(feed.on_frame)

    def viewers(self, camera: str) -> int:
        feed = self.feeds.get(camera)
        return len(feed.viewers) if feed else 0

    def add(self, camera: str, client: str, viewer: Viewer) -> str | None:
        """Register a viewer; returns why not (the limit reached) or None."""
        feed = self.feeds[camera]
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


class LiveSocket(tornado.websocket.WebSocketHandler):
    """``/ws/live/<camera>?fps=N&width=W``: binary JPEG frames and JSON status text."""

    hub: LiveHub
    viewer: Viewer | None = None
    camera: str = ""

    def initialize(self, hub: LiveHub, daemon: Any, security: Any) -> None:
        self.hub = hub
        self.security = security

    def check_origin(self, origin: str) -> bool:
        """Only pages served by this daemon may open the socket (a browser always sends Origin)."""
        host = self.request.headers.get("Host", "")
        return urlsplit(origin).netloc.lower() == host.lower()

    def get_current_user(self) -> str | None:
        user: str | None = self.security.current_user(self)
        return user

    async def get(self, *args: Any, **kwargs: Any) -> None:
        self.security.apply_proxy_headers(self)  # the client's address for viewer limits
        if self.security.enabled and self.current_user is None:
            self.set_status(401)
            self.finish({"error": "authentication required"})
            return
        await super().get(*args, **kwargs)

    def open(self, *args: str, **kwargs: str) -> None:
        camera = args[0]
        self.camera = camera
        if camera not in self.hub.feeds:
            self.close(4404, "unknown camera")
            return
        width = _positive_int(self.get_query_argument("width", ""))
        fps = _positive_float(self.get_query_argument("fps", ""))
        viewer = Viewer(self, width, fps)
        refused = self.hub.add(camera, self.request.remote_ip or "", viewer)
        if refused:
            self.close(1013, refused)
            return
        self.viewer = viewer
        worker = self.hub.feeds[camera].worker
        latest = worker.latest_frame
        self.write_message(
            json.dumps(
                {
                    "type": "hello",
                    "camera": camera,
                    "width": latest.width if latest else None,
                    "height": latest.height if latest else None,
                }
            )
        )
        viewer.offer_text(self.hub.feeds[camera].areas_message())

    def on_message(self, message: str | bytes) -> None:
        if self.viewer is None:
            return
        try:
            data = json.loads(message)
        except (ValueError, UnicodeDecodeError):
            self.close(1003, "expected JSON text")
            return
        if isinstance(data, dict) and data.get("type") == "ping":
            ping_id = data.get("id")
            if isinstance(ping_id, int | float | str):
                self.viewer.offer_text(json.dumps({"type": "pong", "id": ping_id}))

    def on_close(self) -> None:
        if self.viewer is not None:
            self.hub.remove(self.camera, self.request.remote_ip or "", self.viewer)
            self.viewer = None


def _positive_int(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 16 <= value <= 7680 else None


def _positive_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0.1 <= value <= 240 else None
