"""What motiond tells the MQTT broker, and what it does when asked over MQTT.

Topics and Home Assistant discovery are named in homeassistant.py; the connection is
mqtt.py's. Threads:

- The event handlers (``subscribe``: clips, online/offline, upload failures) are called by the
  event bus on capture, detection and recorder threads: they only hand messages to the
  client's thread-safe entries (a dictionary or deque update) and note which snapshot file to
  publish; they never read a file or wait.
- Everything else runs on the MQTT thread: ``tick`` polls each camera's status (online,
  armed, motion, delta) and publishes discovery when the list of cameras changes (a reload);
  snapshot files are read there; commands (``armed/set``, ``snapshot/set``) are handled
  there. Cameras are read and changed only through the camera door the web side uses too
  (``motiond.control.CameraDoor``: ``camera()``, ``set_armed()``, ``take_snapshot()``),
  with its exceptions; the bridge writes no camera state itself.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from motiond.config.mqtt import MqttConfig
from motiond.control import (
    CameraDoor,
    CameraStatus,
    CameraUnavailable,
    SnapshotsTooFrequent,
    UnknownCamera,
)
from motiond.events import (
    CameraOffline,
    CameraOnline,
    ClipDiscarded,
    ClipEnded,
    ClipStarted,
    EventBus,
    MediaLinks,
    UploadFailed,
)
from motiond.notify.homeassistant import (
    OFF,
    ON,
    RETAINED_CAMERA_LEAVES,
    Topics,
    discovery_filter,
    discovery_messages,
    is_discovery_topic_of,
    node_id,
)
from motiond.store.layout import local_iso

if TYPE_CHECKING:
    from motiond.notify.mqtt import MqttClient

logger = logging.getLogger(__name__)
MAX_COMMAND_BYTES = 64  # armed/set is ON or OFF, snapshot/set anything short

POLL_INTERVAL = 0.25  # seconds between status polls (a clip lasts at least stable_frames)
DELTA_INTERVAL = 1.0  # the delta goes out at most this often
DROP_LOG_INTERVAL = 60.0  # one log line a minute about snapshot/set messages over the rate


def on_off(value: bool) -> str:
    return ON if value else OFF


def clip_started_event(event: ClipStarted, links: MediaLinks) -> dict[str, Any]:
    """The JSON of a ``clip_start`` event (pure). The clip's URL works once it has ended."""
    return _clip_json(
        event,
        event.clip_id,
        poster=event.poster,
        numbers={"start": local_iso(event.start)},
        boxes=[box.as_list() for box in event.boxes],
        links=links,
    )


def clip_ended_event(event: ClipEnded, links: MediaLinks) -> dict[str, Any]:
    """The JSON of a ``clip_end`` event (pure)."""
    record = event.record
    numbers = {
        "start": record.start,
        "end": record.end,
        "duration": record.duration,
        "changed_frames": record.changed_frames,
        "peak_delta": record.peak_delta,
    }
    boxes = [list(record.boxes_union)] if record.boxes_union else []
    return _clip_json(
        event, record.id, poster=record.poster, numbers=numbers, boxes=boxes, links=links
    )


def _clip_json(
    event: ClipStarted | ClipEnded,
    clip_id: str,
    *,
    poster: str | None,
    numbers: dict[str, Any],
    boxes: list[list[int]],
    links: MediaLinks,
) -> dict[str, Any]:
    return {
        "event": event.name,
        "camera": event.camera,
        "clip_id": clip_id,
        "clip_url": links.clip_url(clip_id),
        "poster_url": links.url(poster) if poster else None,
        "start": numbers.get("start"),
        "end": numbers.get("end"),
        "duration": numbers.get("duration"),
        "changed_frames": numbers.get("changed_frames"),
        "peak_delta": numbers.get("peak_delta"),
        "boxes": boxes,
    }


def last_clip_state(event: ClipEnded, links: MediaLinks) -> dict[str, Any]:
    """The retained ``last_clip`` JSON of a finished clip (pure)."""
    data = clip_ended_event(event, links)
    return {
        key: data[key]
        for key in (
            "clip_id",
            "camera",
            "start",
            "end",
            "duration",
            "changed_frames",
            "peak_delta",
            "clip_url",
            "poster_url",
        )
    } | {
        "frames": event.record.frames,
        "review_url": links.review_url(event.camera, event.record.start_ts),
    }


class MqttBridge:
    """Publishes the cameras' states and events, Home Assistant discovery, and takes commands."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        cameras: CameraDoor,
        camera_names: Callable[[], Sequence[str]],
        links: MediaLinks,
        version: str,
    ) -> None:
        self.config = config
        self.topics = Topics(config.topic_prefix)
        self.node = node_id(config.topic_prefix)
        self.cameras = cameras
        self.camera_names = camera_names
        self.links = links
        self.version = version
        subscriptions = [*self.topics.command_filters(), self.topics.camera("+", "online")]
        if config.discovery:
            subscriptions.append(discovery_filter(config.discovery_prefix, self.node))
        # Imported here: the paho client costs 1.7 MB of RSS, paid only with MQTT configured.
        from motiond.notify.mqtt import MqttClient, default_client_id  # noqa: PLC0415

        self.client: MqttClient = MqttClient(
            config,
            config.client_id or default_client_id(config.topic_prefix),
            self.topics.status,
            subscriptions,
            on_message=self._on_message,
            on_tick=self.tick,
        )
        # MQTT thread only (and start(), before the thread exists):
        self._known: tuple[str, ...] = ()
        self._discovery_topics: set[str] = set()
        self._next_poll = 0.0
        self._next_delta = 0.0
        self._deltas_sent: dict[str, float] = {}
        self._snapshots_dropped = 0
        self._snapshot_drop_logged = -DROP_LOG_INTERVAL
        # Protects _snapshot_files; taken by on_event (pipeline threads) and tick.
        self._lock = threading.Lock()
        self._snapshot_files: dict[str, Path] = {}

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        # Discovery and the camera list are known before the first message can arrive, so a
        # retained config of ours is never mistaken for a stale one.
        self._cameras_changed(tuple(self.camera_names()))
        self.client.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.client.stop(timeout)

    @property
    def connected(self) -> bool:
        return self.client.connected

    # -- events from the pipeline (any thread; never blocks) --------------------------------------

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(ClipStarted, self._clip_started)
        bus.subscribe(ClipEnded, self._clip_ended)
        bus.subscribe(ClipDiscarded, self._clip_discarded)
        bus.subscribe(CameraOnline, self._camera_online)
        bus.subscribe(CameraOffline, self._camera_online)
        bus.subscribe(UploadFailed, self._upload_failed)

    def _clip_started(self, event: ClipStarted) -> None:
        topic = self.topics.camera
        self.client.set_retained(topic(event.camera, "motion"), ON)
        self.client.set_retained(topic(event.camera, "recording"), ON)
        self.client.send_event(
            topic(event.camera, "event"), _json(clip_started_event(event, self.links))
        )
        self._note_snapshot(event.camera, self.links.path(event.poster))

    def _clip_ended(self, event: ClipEnded) -> None:
        topic, camera = self.topics.camera, event.camera
        self.client.set_retained(topic(camera, "recording"), OFF)
        self.client.send_event(topic(camera, "event"), _json(clip_ended_event(event, self.links)))
        self.client.set_retained(
            topic(camera, "last_clip"), _json(last_clip_state(event, self.links))
        )
        snapshots = event.record.snapshots
        if snapshots:  # the newest warn snapshot: the peak, else the poster
            self._note_snapshot(camera, self.links.path(snapshots[-1]))

    def _clip_discarded(self, event: ClipDiscarded) -> None:
        self.client.set_retained(self.topics.camera(event.camera, "recording"), OFF)

    def _camera_online(self, event: CameraOnline | CameraOffline) -> None:
        online = isinstance(event, CameraOnline)
        self.client.set_retained(self.topics.camera(event.camera, "online"), on_off(online))

    def _upload_failed(self, event: UploadFailed) -> None:
        document = {"event": event.name, "camera": event.camera, **event.payload(self.links)}
        self.client.send_event(self.topics.camera(event.camera, "event"), _json(document))

    def _note_snapshot(self, camera: str, path: Path) -> None:
        with self._lock:
            self._snapshot_files[camera] = path

    # -- the MQTT thread --------------------------------------------------------------------------

    def tick(self) -> None:
        """Poll the cameras; publish discovery for a changed camera list; read snapshots."""
        now = time.monotonic()
        if now < self._next_poll:
            return
        self._next_poll = now + POLL_INTERVAL
        names = tuple(self.camera_names())
        if names != self._known:
            self._cameras_changed(names)
        send_delta = now >= self._next_delta
        if send_delta:
            self._next_delta = now + DELTA_INTERVAL
        for name in names:
            status = self.cameras.camera(name)
            if status is not None:
                self._publish_status(name, status, send_delta)
        with self._lock:
            snapshots, self._snapshot_files = self._snapshot_files, {}
        for camera, path in snapshots.items():
            self._publish_snapshot(camera, path)

    def _publish_status(self, name: str, status: CameraStatus, send_delta: bool) -> None:
        topic = self.topics.camera
        self.client.set_retained(topic(name, "online"), on_off(status.online))
        self.client.set_retained(topic(name, "armed"), on_off(status.armed))
        # ON from a clip's start (its event says so at once) to the stable scene that ends it.
        self.client.set_retained(topic(name, "motion"), on_off(status.recording))
        delta = status.last_delta
        if send_delta and delta is not None and status.armed:
            rounded = round(delta, 5)
            if self._deltas_sent.get(name) != rounded:
                self._deltas_sent[name] = rounded
                self.client.send_if_connected(topic(name, "delta"), f"{rounded:.5f}")

    def _publish_snapshot(self, camera: str, path: Path) -> None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            logger.debug("mqtt: snapshot %s of camera %s not published: %s", path, camera, exc)
            return
        self.client.set_retained(self.topics.camera(camera, "snapshot"), data)

    def _cameras_changed(self, names: tuple[str, ...]) -> None:
        """Publish discovery for the cameras now configured; remove what is no longer."""
        removed = [name for name in self._known if name not in names]
        for name in removed:
            logger.info("mqtt: camera %s removed: clearing its retained topics", name)
            for leaf in RETAINED_CAMERA_LEAVES:
                self.client.clear_retained(self.topics.camera(name, leaf))
        for name in names:
            if name not in self._known:
                self.client.set_retained(self.topics.camera(name, "recording"), OFF)
        self._known = names
        if not self.config.discovery:
            return
        messages = discovery_messages(
            self.topics, self.config.discovery_prefix, names, self.version, self.links.base_url
        )
        for topic in self._discovery_topics - set(messages):
            self.client.clear_retained(topic)
        for topic, payload in messages.items():
            self.client.set_retained(topic, _json(payload))
        self._discovery_topics = set(messages)

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        command = self.topics.parse_command(topic)
        if command is not None:
            if len(payload) > MAX_COMMAND_BYTES:
                logger.warning(
                    "mqtt: ignoring a command of %d bytes on %s (at most %d)",
                    len(payload),
                    topic,
                    MAX_COMMAND_BYTES,
                )
                return
            if retained:
                logger.warning(
                    "mqtt: ignoring a retained command on %s (publish commands without retain)",
                    topic,
                )
                return
            camera, what = command
            if what == "armed":
                self._arm(camera, payload)
            else:
                self._snapshot_now(camera)
            return
        if not payload or not retained:
            return
        if self.config.discovery and is_discovery_topic_of(
            topic, self.config.discovery_prefix, self.node
        ):
            if topic not in self._discovery_topics:
                logger.info("mqtt: removing the stale Home Assistant entity %s", topic)
                self.client.clear_retained(topic)
            return
        stale = self.topics.parse_camera_state(topic)
        if stale is not None and stale not in self._known:
            logger.info("mqtt: camera %s is no longer configured: clearing its topics", stale)
            for leaf in RETAINED_CAMERA_LEAVES:
                self.client.clear_retained(self.topics.camera(stale, leaf))

    def _arm(self, camera: str, payload: bytes) -> None:
        value = payload.decode(errors="replace").strip().upper()
        if value not in (ON, OFF):
            logger.warning("mqtt: camera %s: armed/set wants ON or OFF, got %r", camera, value[:20])
            return
        try:
            status = self.cameras.set_armed(camera, value == ON)  # as the API's arm/disarm
        except UnknownCamera:
            logger.warning("mqtt: armed/set for an unknown camera %r", camera)
            return
        logger.info(
            "mqtt: camera %s: %s over MQTT", camera, "armed" if status.armed else "disarmed"
        )
        self.client.set_retained(self.topics.camera(camera, "armed"), value)

    def _snapshot_now(self, camera: str) -> None:
        try:
            path = self.cameras.take_snapshot(camera).path
        except UnknownCamera:
            logger.warning("mqtt: snapshot/set for an unknown camera %r", camera)
            return
        except SnapshotsTooFrequent as exc:
            self._snapshots_dropped += 1
            if time.monotonic() >= self._snapshot_drop_logged + DROP_LOG_INTERVAL:
                self._snapshot_drop_logged = time.monotonic()
                logger.warning(
                    "mqtt: snapshot/set dropped: %s (%d dropped so far; storage."
                    "snapshots_per_minute)",
                    exc,
                    self._snapshots_dropped,
                )
            return
        except (CameraUnavailable, OSError, ValueError) as exc:  # offline, disk full
            logger.warning("mqtt: camera %s: no snapshot: %s", camera, exc)
            return
        relative = path.relative_to(self.links.storage_root).as_posix()
        self._publish_snapshot(camera, path)
        self.client.send_event(
            self.topics.camera(camera, "event"),
            _json(
                {
                    "event": "snapshot",
                    "camera": camera,
                    "url": self.links.url(relative),
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
            ),
        )


def _json(value: object) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


__all__ = ["MqttBridge", "clip_ended_event", "clip_started_event", "last_clip_state"]
