"""The daemon's side of the web door (``motiond.web.door.Door``).

It reads cameras, the clip index, retention's state and how the MQTT connection and the
upload queues stand, and forwards the few changes the web side may make (arm/disarm,
snapshots, keep/delete). The set of cameras changes on reload: the daemon swaps its camera
dict and this object reads the current one on every call.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Mapping

from motiond.capture.camera import CameraOfflineError, CameraWorker
from motiond.detect.motion import MotionResult
from motiond.frames import Frame
from motiond.notify.hooks import HookRunner
from motiond.notify.mqtt_bridge import MqttBridge
from motiond.notify.upload import Uploader
from motiond.store.clips import ClipIndex, ClipStore
from motiond.store.layout import ClipRecord, SnapshotKind, Storage, StoredSnapshot
from motiond.store.retention import Retention
from motiond.web.door import (
    CameraState,
    CameraUnavailable,
    DetectionAreas,
    FrameListener,
    MqttState,
    StorageState,
    UnknownCamera,
    UploadState,
)

logger = logging.getLogger(__name__)


class DaemonDoor:
    """Implements ``Door`` over the daemon's parts; see that protocol for the thread rules."""

    def __init__(  # noqa: PLR0917 (the daemon's parts, each named)
        self,
        cameras: Callable[[], Mapping[str, CameraWorker]],
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
        # Appended on the IOLoop while the web app is built, read on capture threads; the list
        # is replaced, never changed in place, so a reader always sees a whole one.
        self._frame_listeners: tuple[FrameListener, ...] = ()
        self._listeners_lock = threading.Lock()

    # -- cameras ------------------------------------------------------------------------------

    def cameras(self) -> list[CameraState]:
        return [camera_state(worker) for worker in self._cameras().values()]

    def camera(self, name: str) -> CameraState | None:
        worker = self._cameras().get(name)
        return camera_state(worker) if worker is not None else None

    def detection_areas(self, name: str) -> DetectionAreas | None:
        worker = self._cameras().get(name)
        if worker is None:
            return None
        size = worker.picture_size()
        return DetectionAreas(
            width=size[0] if size else None,
            height=size[1] if size else None,
            ignored=worker.ignored_areas(),
            masks=worker.config.motion.masks,
        )

    def _worker(self, name: str) -> CameraWorker:
        worker = self._cameras().get(name)
        if worker is None:
            raise UnknownCamera(name)
        return worker

    def set_armed(self, name: str, armed: bool) -> CameraState:
        worker = self._worker(name)
        worker.armed = armed
        return camera_state(worker)

    def take_snapshot(self, name: str) -> StoredSnapshot:
        worker = self._worker(name)
        try:
            path = worker.take_snapshot()
        except CameraOfflineError as exc:
            raise CameraUnavailable(str(exc)) from None
        snapshot = self.storage.snapshot_of(path)
        assert snapshot is not None, path  # the layout named it
        return snapshot

    def known_cameras(self) -> set[str]:
        return set(self._cameras()) | self._index.cameras()

    def add_frame_listener(self, listener: FrameListener) -> None:
        with self._listeners_lock:
            self._frame_listeners = (*self._frame_listeners, listener)

    def attach(self, worker: CameraWorker) -> None:
        """Hand this camera's frames to the frame listeners (the daemon calls it before the
        camera starts)."""
        name = worker.config.name

        def on_frame(frame: Frame, result: MotionResult | None) -> None:
            for listener in self._frame_listeners:
                listener(name, frame, result)

        worker.frame_listeners.append(on_frame)

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


def camera_state(worker: CameraWorker) -> CameraState:
    status = worker.status()
    latest = worker.latest_frame
    return CameraState(
        name=status.name,
        online=status.online,
        armed=status.armed,
        recording=status.recording,
        fps=status.fps,
        frames=status.frames,
        last_delta=status.last_delta,
        threshold=status.threshold,
        clips_kept=status.clips_kept,
        clips_discarded=status.clips_discarded,
        frames_dropped=status.frames_dropped,
        frames_garbled=status.frames_garbled,
        last_frame_age=status.last_frame_age,
        width=latest.width if latest else None,
        height=latest.height if latest else None,
        buffered_bytes=worker.buffered_bytes(),
        realtime=worker.config.capture.pacing == "realtime",
        ignored_share=status.ignored_share,
        day_night=status.day_night,
        tampered=status.tampered,
        tampered_since=status.tampered_since,
        min_area=status.min_area,
    )
