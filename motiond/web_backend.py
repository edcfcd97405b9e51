"""The daemon's side of the web door (``motiond.web.door.Door``).

Its camera part is the camera door the daemon gives MQTT too (``motiond.control.CameraDoor``,
implemented by ``motiond.cameras.LiveCameras``): this object forwards to it. The rest reads the
clip index, retention's state and how the MQTT connection and the upload queues stand, and
forwards the few changes the web side may make to clips (keep/delete).
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import time
from typing import Any

from motiond.control import (
    CameraDoor,
    CameraStatus,
    DetectionAreas,
    FrameListener,
    PacketListener,
)
from motiond.notify.hooks import HookRunner
from motiond.notify.mqtt_bridge import MqttBridge
from motiond.notify.upload import Uploader
from motiond.record.mp4boxes import playable_end
from motiond.store.clips import ClipIndex, ClipStore
from motiond.store.history import CameraHistory, offline_spans
from motiond.store.layout import (
    ClipRecord,
    Segment,
    SnapshotKind,
    Storage,
    StoredSnapshot,
)
from motiond.store.retention import Retention
from motiond.store.segments import SegmentIndex
from motiond.web.door import (
    CameraEvents,
    MqttState,
    StorageState,
    TamperAlert,
    TimeSpan,
    UploadState,
)

logger = logging.getLogger(__name__)


class DaemonDoor:
    """Implements ``Door`` over the daemon's parts; see that protocol for the thread rules."""

    def __init__(  # noqa: PLR0917 (the daemon's parts, each named)
        self,
        cameras: CameraDoor,
        storage: Storage,
        index: ClipIndex,
        store: ClipStore,
        retention: Retention,
        hooks: HookRunner,
        *,
        history: CameraHistory | None = None,
        mqtt: MqttBridge | None = None,
        uploads: Uploader | None = None,
        segments: SegmentIndex | None = None,
    ) -> None:
        self._cameras = cameras
        self.storage = storage
        self._index = index
        self._store = store
        self._retention = retention
        self._hooks = hooks
        self._history = history
        self._mqtt = mqtt
        self._uploads = uploads
        self._segments = segments if segments is not None else SegmentIndex(storage)

    # -- cameras: the camera door's ---------------------------------------------------------

    def names(self) -> list[str]:
        return self._cameras.names()

    def cameras(self) -> list[CameraStatus]:
        return self._cameras.cameras()

    def camera(self, name: str) -> CameraStatus | None:
        return self._cameras.camera(name)

    def detection_areas(self, name: str) -> DetectionAreas | None:
        return self._cameras.detection_areas(name)

    def set_armed(self, name: str, armed: bool) -> CameraStatus:
        return self._cameras.set_armed(name, armed)

    def take_snapshot(self, name: str) -> StoredSnapshot:
        return self._cameras.take_snapshot(name)

    def add_frame_listener(self, listener: FrameListener) -> None:
        self._cameras.add_frame_listener(listener)

    def add_packet_listener(self, listener: PacketListener) -> None:
        self._cameras.add_packet_listener(listener)

    def known_cameras(self) -> set[str]:
        return set(self._cameras.names()) | self._index.cameras() | self._segments.cameras()

    # -- clips --------------------------------------------------------------------------------

    def clips(
        self, camera: str | None, since: float | None, until: float | None
    ) -> list[ClipRecord]:
        return self._index.list(camera=camera, since=since, until=until)

    def clip(self, clip_id: str) -> ClipRecord | None:
        return self._index.get(clip_id)

    def clip_count(self) -> int:
        return len(self._index)

    def set_keep(self, record: ClipRecord, keep: bool) -> ClipRecord:
        return self._store.set_keep(record, keep)

    def delete_clip(self, record: ClipRecord) -> None:
        self._store.delete(record)

    def segments(self, camera: str, since: float, until: float) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = [
            {"start": s.start, "end": s.end, "url": f"media/{self.storage.relative(s.path)}"}
            for s in self._segments.between(camera, since, until)
        ]
        growing = self._segments.growing(camera)
        if growing is not None and growing[0] < until:
            start, partial = growing
            end = max(start, round(time.time(), 3))  # now (the wall clock may have gone back)
            if end >= since and partial.is_file():
                url = f"media/{self.storage.relative(partial)}"
                found.append({"start": start, "end": end, "url": url, "growing": True})
        return found

    def footage(self, camera: str, since: float, until: float) -> list[Segment]:
        segments = self._segments.between(camera, since, until)
        growing = self._segments.growing(camera)
        if growing is not None and growing[0] < until:
            start, partial = growing
            with contextlib.suppress(OSError):
                playable = playable_end(partial)  # what it holds in whole fragments so far
                if playable:
                    segments.append(Segment(camera, start, math.inf, partial, playable))
        return segments

    def snapshots(
        self, camera: str | None, kind: SnapshotKind | None, offset: int, limit: int
    ) -> tuple[int, list[StoredSnapshot]]:
        return self._store.list_snapshots(camera, kind, offset, limit)

    def clips_between(self, camera: str, since: float, until: float) -> list[ClipRecord]:
        return self._index.between(camera, since, until)

    def snapshots_between(self, camera: str, since: float, until: float) -> list[StoredSnapshot]:
        return self._store.snapshots.between(camera, since, until, kind="snapshot")

    def camera_events(self, camera: str, since: float, until: float) -> CameraEvents:
        if self._history is None:
            return CameraEvents([], [])
        entries = self._history.read(camera, since, until)
        offline = offline_spans(entries, since, until, time.time())
        tampered = [
            TamperAlert(e.since if e.since is not None else e.ts, e.ts, e.kind or "", e.detail)
            for e in entries
            if e.event == "tampered" and since <= e.ts < until
        ]
        return CameraEvents([TimeSpan(s.start, s.end) for s in offline], tampered)

    # -- health and metrics -------------------------------------------------------------------

    def storage_state(self) -> StorageState:
        retention = self._retention
        return StorageState(retention.full, retention.full_reason, retention.deleted_total)

    def disk_free(self) -> int:
        return shutil.disk_usage(self.storage.root).free

    def hook_failures(self) -> int:
        return self._hooks.failures

    def mqtt_state(self) -> MqttState | None:
        if self._mqtt is None:
            return None
        client = self._mqtt.client
        connected = client.connected
        return MqttState(
            connected=connected,
            error=None if connected else client.last_error,
            connection_failures=client.connection_failures,
            events_dropped=client.events_dropped,
        )

    def upload_states(self) -> list[UploadState] | None:
        if self._uploads is None:
            return None
        return [
            UploadState(
                remote=s.remote,
                queued=s.queued,
                oldest_age=s.oldest_age,
                uploaded=s.uploaded,
                failures=s.failures,
                failing_since=s.failing_since,
            )
            for s in self._uploads.stats()
        ]
