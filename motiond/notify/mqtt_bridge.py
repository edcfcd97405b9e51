"""What motiond tells the MQTT broker, and what it does when asked over MQTT.

Topics and Home Assistant discovery are named in homeassistant.py; the connection is
mqtt.py's. Threads:

- ``on_event`` is one of the daemon's event listeners, called on capture and recorder
  threads: it only hands messages to the client's thread-safe entries (a dictionary or deque
  update) and notes which snapshot file to publish; it never reads a file or waits.
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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from motiond.config import MqttConfig
from motiond.control import CameraDoor, CameraStatus, CameraUnavailable, UnknownCamera
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
from motiond.notify.mqtt import MqttClient, default_client_id

logger = logging.getLogger(__name__)

POLL_INTERVAL = 0.25  # seconds between status polls (a clip lasts at least stable_frames)
DELTA_INTERVAL = 1.0  # the delta goes out at most this often


def on_off(value: bool) -> str:
    return ON if value else OFF


def clip_event(
    event: str, camera: str, payload: Mapping[str, Any], base_url: str
) -> dict[str, Any]:
    """The JSON of a ``clip_start`` or ``clip_end`` event (pure)."""
    clip_id = payload.get("clip_id") or payload.get("id")
    poster = payload.get("poster")
    if event == "clip_end":
        union = payload.get("boxes_union")
        boxes = [union] if union else []
    else:
        boxes = payload.get("boxes") or []
    return {
        "event": event,
        "camera": camera,
        "clip_id": clip_id,
        # At clip_start the clip is still being written: its URL works once it has ended.
        "clip_url": f"{base_url}/media/clips/{clip_id}" if clip_id else None,
        "poster_url": f"{base_url}/media/{poster}" if poster else None,
        "start": payload.get("start"),
        "end": payload.get("end"),
        "duration": payload.get("duration"),
        "changed_frames": payload.get("changed_frames"),
        "peak_delta": payload.get("peak_delta"),
        "boxes": boxes,
    }


def last_clip_state(camera: str, record: Mapping[str, Any], base_url: str) -> dict[str, Any]:
    """The retained ``last_clip`` JSON of a finished clip (pure)."""
    event = clip_event("clip_end", camera, record, base_url)
    return {
        key: event[key]
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
    } | {"frames": record.get("frames")}


class MqttBridge:
    """Publishes the cameras' states and events, Home Assistant discovery, and takes commands."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        cameras: CameraDoor,
        camera_names: Callable[[], Sequence[str]],
        storage_root: Path,
        base_url: str,
        version: str,
    ) -> None:
        self.config = config
        self.topics = Topics(config.topic_prefix)
        self.node = node_id(config.topic_prefix)
        self.cameras = cameras
        self.camera_names = camera_names
        self.storage_root = storage_root
        self.base_url = base_url
        self.version = version
        subscriptions = [*self.topics.command_filters(), self.topics.camera("+", "online")]
        if config.discovery:
            subscriptions.append(discovery_filter(config.discovery_prefix, self.node))
        self.client = MqttClient(
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

    def on_event(self, camera: str, event: str, payload: Mapping[str, Any]) -> None:
        """A daemon event listener: clip start/end, camera online/offline, upload failures."""
        if not camera:
            return
        topic = self.topics.camera
        client = self.client
        if event == "clip_start":
            client.set_retained(topic(camera, "motion"), ON)
            client.set_retained(topic(camera, "recording"), ON)
            client.send_event(
                topic(camera, "event"), _json(clip_event(event, camera, payload, self.base_url))
            )
            if payload.get("poster_path"):
                self._note_snapshot(camera, Path(str(payload["poster_path"])))
        elif event == "clip_end":
            client.set_retained(topic(camera, "recording"), OFF)
            client.send_event(
                topic(camera, "event"), _json(clip_event(event, camera, payload, self.base_url))
            )
            client.set_retained(
                topic(camera, "last_clip"), _json(last_clip_state(camera, payload, self.base_url))
            )
            snapshots = payload.get("snapshots") or []
            if snapshots:  # the newest warn snapshot: the peak, else the poster
                self._note_snapshot(camera, self.storage_root / str(snapshots[-1]))
        elif event == "clip_discarded":
            client.set_retained(topic(camera, "recording"), OFF)
        elif event in ("camera_online", "camera_offline"):
            client.set_retained(topic(camera, "online"), on_off(event == "camera_online"))
        elif event == "upload_failed":
            client.send_event(
                topic(camera, "event"), _json({"event": event, "camera": camera, **payload})
            )

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
            self.topics, self.config.discovery_prefix, names, self.version, self.base_url
        )
        for topic in self._discovery_topics - set(messages):
            self.client.clear_retained(topic)
        for topic, payload in messages.items():
            self.client.set_retained(topic, _json(payload))
        self._discovery_topics = set(messages)

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        command = self.topics.parse_command(topic)
        if command is not None:
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
        except (CameraUnavailable, OSError, ValueError) as exc:  # offline, disk full
            logger.warning("mqtt: camera %s: no snapshot: %s", camera, exc)
            return
        relative = path.relative_to(self.storage_root).as_posix()
        self._publish_snapshot(camera, path)
        self.client.send_event(
            self.topics.camera(camera, "event"),
            _json(
                {
                    "event": "snapshot",
                    "camera": camera,
                    "url": f"{self.base_url}/media/{relative}",
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
            ),
        )


def _json(value: object) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


__all__ = ["MqttBridge", "clip_event", "last_clip_state"]
