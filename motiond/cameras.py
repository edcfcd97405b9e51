"""The daemon's side of the camera door (``motiond.control.CameraDoor``): its live cameras.

One ``LiveCameras`` serves the web side (through ``web_backend.DaemonDoor``) and MQTT alike;
it changes a camera only through the camera's own methods (``arm``, ``take_snapshot``,
``add_frame_listener``). The set of cameras changes on reload: the daemon replaces its camera
dict and this object reads the current one on every call.

Thread crossings: frame (and packet) listeners are added on the IOLoop (while the web app is
built) and read on capture and detection threads; each tuple of them is replaced, never changed
in place, so a reader always sees a whole one (``_listeners_lock`` only orders the writers).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from motiond.control import (
    CameraStatus,
    DetectionAreas,
    FrameListener,
    PacketListener,
    SnapshotsTooFrequent,
    UnknownCamera,
)
from motiond.detect.boxes import MotionResult
from motiond.frames import Frame
from motiond.record.snapshots import SnapshotRate
from motiond.store.layout import Storage, StoredSnapshot
from motiond.store.snapshot_index import SnapshotIndex


class RunningCamera(Protocol):
    """What the door uses of a camera (``motiond.capture.camera.CameraWorker``)."""

    def status(self) -> CameraStatus: ...

    def detection_areas(self) -> DetectionAreas: ...

    def arm(self, armed: bool) -> None: ...

    def take_snapshot(self) -> Path: ...

    def add_frame_listener(self, listener: FrameListener) -> None: ...

    def add_packet_listener(self, listener: PacketListener) -> None: ...


class LiveCameras:
    """Implements ``CameraDoor`` over the daemon's running cameras."""

    def __init__(
        self,
        cameras: Callable[[], Mapping[str, RunningCamera]],
        storage: Storage,
        *,
        snapshots: SnapshotIndex | None = None,
        rate: SnapshotRate | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cameras = cameras
        self._storage = storage
        self._snapshots = snapshots  # on-demand snapshots are listed there once written
        self._rate = rate  # None: no limit
        self._clock = clock
        self._listeners: tuple[FrameListener, ...] = ()
        self._packet_listeners: tuple[PacketListener, ...] = ()
        self._listeners_lock = threading.Lock()

    def names(self) -> list[str]:
        return list(self._cameras())

    def cameras(self) -> list[CameraStatus]:
        return [camera.status() for camera in self._cameras().values()]

    def camera(self, name: str) -> CameraStatus | None:
        camera = self._cameras().get(name)
        return camera.status() if camera is not None else None

    def detection_areas(self, name: str) -> DetectionAreas | None:
        camera = self._cameras().get(name)
        return camera.detection_areas() if camera is not None else None

    def set_armed(self, name: str, armed: bool) -> CameraStatus:
        camera = self._running(name)
        camera.arm(armed)
        return camera.status()

    def take_snapshot(self, name: str) -> StoredSnapshot:
        """The one place on-demand snapshots are taken (API and MQTT), so the one rate."""
        camera = self._running(name)
        now = self._clock()
        if self._rate is not None:
            wait = self._rate.take(name, now)
            if wait:
                raise SnapshotsTooFrequent(name, wait)
        try:
            path = camera.take_snapshot()
        except BaseException:
            if self._rate is not None:
                self._rate.give_back(name, now)
            raise
        relative = self._storage.relative(path)
        indexed = self._snapshots.add_file(relative) if self._snapshots is not None else None
        snapshot = indexed or self._storage.snapshot_of(path)
        assert snapshot is not None, path  # the layout named it
        return snapshot

    def add_frame_listener(self, listener: FrameListener) -> None:
        with self._listeners_lock:
            self._listeners = (*self._listeners, listener)

    def add_packet_listener(self, listener: PacketListener) -> None:
        with self._listeners_lock:
            self._packet_listeners = (*self._packet_listeners, listener)

    def attach(self, camera: RunningCamera) -> None:
        """Hand this camera's frames to the frame and packet listeners (the daemon calls it
        before the camera starts)."""
        camera.add_frame_listener(self._hand_over)
        camera.add_packet_listener(self._hand_over_packet)

    def _hand_over(self, name: str, frame: Frame, result: MotionResult | None) -> None:
        for listener in self._listeners:
            listener(name, frame, result)

    def _hand_over_packet(self, name: str, stream: str, frame: Frame) -> None:
        for listener in self._packet_listeners:
            listener(name, stream, frame)

    def _running(self, name: str) -> RunningCamera:
        camera = self._cameras().get(name)
        if camera is None:
            raise UnknownCamera(name)
        return camera
