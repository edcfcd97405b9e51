"""The daemon's side of the web door (``motiond.web.door.Door``).

Its camera part is the camera door the daemon gives MQTT too (``motiond.control.CameraDoor``,
implemented by ``motiond.cameras.LiveCameras``): this object forwards to it. The rest reads the
clip index, retention's state and how the MQTT connection and the upload queues stand, and
forwards the few changes the web side may make to clips (keep/delete).
"""

from __future__ import annotations

import logging
import shutil

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
from motiond.store.clips import ClipIndex, ClipStore
from motiond.store.layout import ClipRecord, SnapshotKind, Storage, StoredSnapshot
from motiond.store.retention import Retention
from motiond.web.door import MqttState, StorageState, UploadState

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
        mqtt: MqttBridge | None = None,
        uploads: Uploader | None = None,
    ) -> None:
        self._cameras = cameras
        self.storage = storage
        self._index = index
        self._store = store
        self._retention = retention
        self._hooks = hooks
        self._mqtt = mqtt
        self._uploads = uploads

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
        return set(self._cameras.names()) | self._index.cameras()

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

    def snapshots(self, camera: str | None, kind: SnapshotKind | None) -> list[StoredSnapshot]:
        return self._store.list_snapshots(camera, kind)

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
