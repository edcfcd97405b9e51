"""The web side's one door into the daemon: what it may ask and change, and nothing else.

Every handler gets a ``Door`` through ``initialize``; the daemon implements it
(``motiond.web_backend.DaemonDoor``). Its camera part is the camera door that MQTT uses too
(``motiond.control.CameraDoor``: status, arm/disarm, snapshots, detection areas, frames), with
its records and its exceptions (``UnknownCamera``, ``CameraUnavailable``); the rest is the
clips, storage and health. The web package imports nothing of the daemon's internals (cameras,
recorders, retention, hooks): only the door's types, the config's types, the on-disk format
(``motiond.store.layout``) and what a frame is.

Threads: methods documented *quick* only read attributes or the clip index and are called on
the IOLoop; those documented *blocking* touch files and are called from the web side's executor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from motiond.control import CameraDoor
from motiond.store.layout import ClipRecord, Segment, SnapshotKind, Storage, StoredSnapshot


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


@dataclass(frozen=True, slots=True)
class TimeSpan:
    start: float  # epoch seconds
    end: float


@dataclass(frozen=True, slots=True)
class TamperAlert:
    """The camera looked tampered with from ``start``, confirmed at ``detected``."""

    start: float
    detected: float
    kind: str  # covered, blinded, defocused, turned
    detail: str


@dataclass(frozen=True, slots=True)
class CameraEvents:
    """What a camera went through in a time range, from its history on disk."""

    offline: list[TimeSpan]  # clipped to the range; one still open ends now
    tampered: list[TamperAlert]


class Door(CameraDoor, Protocol):
    """The camera door's methods (running cameras), and the clips, storage and health."""

    storage: Storage  # the layout: paths of clips and snapshots

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

    def segments(self, camera: str, since: float, until: float) -> list[dict[str, Any]]:
        """Quick: the camera's continuous footage overlapping [since, until), oldest first:
        ``{"start", "end", "url"}`` (epoch seconds; ``url`` is ``media/continuous/...``,
        relative like a clip's, served by /media with Range support). The segment being
        written comes last, with ``"growing": true`` and ``end`` now (its file plays while it
        grows, up to its last complete fragment, about a second behind)."""
        ...

    def footage(self, camera: str, since: float, until: float) -> list[Segment]:
        """Blocking: the segments behind ``segments`` (for an export), oldest first, then the
        one being written: its ``end`` infinite, its ``size`` the bytes of its complete
        fragments so far (read no further)."""
        ...

    def snapshots(
        self, camera: str | None, kind: SnapshotKind | None, offset: int, limit: int
    ) -> tuple[int, list[StoredSnapshot]]:
        """Quick: (how many, ``limit`` of them from ``offset``): warn and on-demand snapshots,
        newest first, from the snapshot index (never a walk of the folders; the cost is the
        page's); camera: a valid name."""
        ...

    def clips_between(self, camera: str, since: float, until: float) -> list[ClipRecord]:
        """Quick: the camera's clips starting in [since, until), oldest first, from the clip
        index (camera: a valid name)."""
        ...

    def snapshots_between(self, camera: str, since: float, until: float) -> list[StoredSnapshot]:
        """Quick: the camera's on-demand snapshots taken in [since, until), oldest first, from
        the snapshot index (camera: a valid name)."""
        ...

    def camera_events(self, camera: str, since: float, until: float) -> CameraEvents:
        """Blocking: offline spans and tamper alerts of [since, until) (camera: a valid name)."""
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
