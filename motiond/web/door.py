"""The web side's one door into the daemon: what it may ask and change, and nothing else.

Every handler gets a ``Door`` through ``initialize``; the daemon implements it
(``motiond.web_backend.DaemonDoor``). The web package imports nothing of the daemon's internals
(cameras, recorders, retention, hooks): only the config's types, the on-disk format
(``motiond.store.layout``) and what a frame is.

Threads: methods documented *quick* only read attributes or the clip index and are called on
the IOLoop; those documented *blocking* touch files and are called from the web side's executor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from motiond.detect.motion import MotionResult, Outlines
from motiond.frames import Frame
from motiond.store.layout import ClipRecord, SnapshotKind, Storage, StoredSnapshot


@dataclass(frozen=True, slots=True)
class CameraState:
    """One camera as the web side shows it (no source: it may hold credentials)."""

    name: str
    online: bool
    armed: bool
    recording: bool
    fps: float
    frames: int
    last_delta: float | None
    threshold: float
    clips_kept: int
    clips_discarded: int
    frames_dropped: int
    frames_garbled: int
    last_frame_age: float | None
    width: int | None  # of the latest frame; None before the first one
    height: int | None
    buffered_bytes: int  # pre-roll ring and encoder queue
    realtime: bool  # frames carry monotonic capture times (not a file read "fast")
    ignored_share: float  # of the picture, learned as always moving (nuisance) and ignored
    day_night: str | None  # "day", "night" (no colour: infrared), None before the first sample
    tampered: str | None  # covered, blinded, defocused, turned; None: not tampered with
    tampered_since: float | None  # wall clock
    min_area: float  # in effect now (the night's at night)


@dataclass(frozen=True, slots=True)
class DetectionAreas:
    """Where changes never count, in the camera's pixels (its main stream's)."""

    width: int | None  # the picture these are in; None before the first frame
    height: int | None
    ignored: Outlines  # learned as always moving; the same object until they change
    masks: tuple[tuple[tuple[int, int], ...], ...]  # motion.masks as configured


@dataclass(frozen=True, slots=True)
class StorageState:
    full: bool  # only kept clips left and no space: not recording
    reason: str
    deleted_total: int  # clips deleted by retention since the start


@dataclass(frozen=True, slots=True)
class MqttState:
    """The connection to the MQTT broker (with an ``mqtt:`` section)."""

    connected: bool
    error: str | None  # why the last attempt to connect failed
    connection_failures: int
    events_dropped: int  # events that did not fit the queue while the broker was away


@dataclass(frozen=True, slots=True)
class UploadState:
    """One off-site destination's queue (with an ``upload:`` section)."""

    remote: str
    queued: int  # files waiting to be copied
    oldest_age: float  # seconds the oldest has waited; 0 when none
    uploaded: int
    failures: int
    failing_since: float | None  # wall clock of the current failure streak


class UnknownCamera(LookupError):
    """No camera of that name is configured."""


class CameraUnavailable(Exception):
    """The camera has no current picture (offline, or not started yet)."""


# Called on a camera's capture thread with each frame; must only hand it over, never block.
FrameListener = Callable[[str, Frame, MotionResult | None], None]


class Door(Protocol):
    storage: Storage  # the layout: paths of clips and snapshots

    def cameras(self) -> list[CameraState]:
        """Quick: every configured camera, in config order."""
        ...

    def camera(self, name: str) -> CameraState | None:
        """Quick: one camera, or None if it is not configured."""
        ...

    def detection_areas(self, name: str) -> DetectionAreas | None:
        """Quick: a camera's ignored areas and masks, or None if it is not configured."""
        ...

    def set_armed(self, name: str, armed: bool) -> CameraState:
        """Quick: resume or pause detection (a clip in progress is finished). UnknownCamera."""
        ...

    def take_snapshot(self, name: str) -> StoredSnapshot:
        """Blocking: write the latest frame to snapshots/. UnknownCamera, CameraUnavailable."""
        ...

    def known_cameras(self) -> set[str]:
        """Quick: configured cameras and cameras whose clips are still stored."""
        ...

    def clips(
        self, camera: str | None, since: float | None, until: float | None
    ) -> list[ClipRecord]:
        """Quick: clips newest first, filtered by camera and start time."""
        ...

    def clip(self, clip_id: str) -> ClipRecord | None:
        """Quick: one clip from the index."""
        ...

    def clip_count(self) -> int:
        """Quick."""
        ...

    def set_keep(self, record: ClipRecord, keep: bool) -> ClipRecord:
        """Blocking: protect a clip from retention (or not); returns the updated record."""
        ...

    def delete_clip(self, record: ClipRecord) -> None:
        """Blocking: delete a clip, its snapshots and its sidecar."""
        ...

    def snapshots(self, camera: str | None, kind: SnapshotKind | None) -> list[StoredSnapshot]:
        """Blocking: warn and on-demand snapshots, newest first (camera: a valid name)."""
        ...

    def storage_state(self) -> StorageState:
        """Quick."""
        ...

    def disk_free(self) -> int:
        """Blocking: free bytes on the storage's filesystem."""
        ...

    def hook_failures(self) -> int:
        """Quick: event hooks that failed since the start."""
        ...

    def mqtt_state(self) -> MqttState | None:
        """Quick: the broker connection; None without an ``mqtt:`` section."""
        ...

    def upload_states(self) -> list[UploadState] | None:
        """Quick: each destination's queue; None without an ``upload:`` section."""
        ...

    def add_frame_listener(self, listener: FrameListener) -> None:
        """Call ``listener`` with every camera's frames, including cameras started later."""
        ...
