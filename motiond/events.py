"""What happens that the outside world may want to know: one dataclass per event, one bus.

The pipeline publishes (capture, detection and recorder threads, retention, uploads); hooks,
MQTT and uploads subscribe by type. An event is immutable, carries its camera (None for the
whole daemon) and knows its JSON document (``payload``), the one hooks deliver and the base
of what MQTT publishes; the media URLs in it are built by ``MediaLinks``, in one place.

Threads: ``EventBus.publish`` may be called from any thread; subscribers run on the
publishing thread, in the order they subscribed, and must only hand the event over (enqueue,
set a flag), never block or touch a file. A subscriber that raises is logged and the others
still run. Subscriptions are made while the daemon is wired, before any thread publishes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

from motiond.detect.boxes import Box
from motiond.store.layout import ClipRecord, Segment, local_iso

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MediaLinks:
    """Where a stored file is on disk and on the web (``web.public_url`` + ``/media/``)."""

    base_url: str
    storage_root: Path

    def url(self, relative: str) -> str:
        return f"{self.base_url}/media/{relative}"

    def clip_url(self, clip_id: str) -> str:
        return self.url(f"clips/{clip_id}")

    def path(self, relative: str) -> Path:
        return self.storage_root / relative

    def review_url(self, camera: str, wall: float) -> str:
        """The timeline page opened at ``wall`` on ``camera`` (the moment in UTC, to the ms)."""
        moment = dt.datetime.fromtimestamp(wall, dt.UTC).isoformat(timespec="milliseconds")
        return f"{self.base_url}/review?camera={quote(camera)}&t={moment.replace('+00:00', 'Z')}"


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event; ``name`` is its name for hooks (``on_<name>``) and in JSON."""

    name: ClassVar[str]
    hooked: ClassVar[bool] = True  # an ``on_<name>`` hook exists for it

    camera: str | None

    def payload(self, links: MediaLinks) -> dict[str, Any]:
        """The event's JSON document, without ``event``, ``camera`` and ``time``."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class ClipStarted(Event):
    name: ClassVar[str] = "clip_start"

    camera: str
    clip_id: str
    partial_path: Path  # the file being written
    poster: str  # the start snapshot, relative to the storage root (written before the event)
    start: float  # wall clock of the clip's first frame
    boxes: tuple[Box, ...]  # what moved, in the camera's pixels

    def payload(self, links: MediaLinks) -> dict[str, Any]:
        return {
            "clip_id": self.clip_id,
            "clip_path": str(self.partial_path),
            "poster_path": str(links.path(self.poster)),
            "poster": self.poster,
            "start": local_iso(self.start),
            "boxes": [box.as_list() for box in self.boxes],
        }


@dataclass(frozen=True, slots=True)
class ClipEnded(Event):
    """A clip was kept: its record is in its sidecar (the clip index adds it first)."""

    name: ClassVar[str] = "clip_end"

    camera: str
    record: ClipRecord

    def payload(self, links: MediaLinks) -> dict[str, Any]:
        record = self.record
        poster = record.poster
        return {
            **record.to_json(),
            "clip_id": record.id,
            "clip_path": str(links.path(record.file)),
            "clip_url": links.clip_url(record.id),
            "poster_path": str(links.path(poster)) if poster else None,
            "poster_url": links.url(poster) if poster else None,
        }


@dataclass(frozen=True, slots=True)
class ClipDiscarded(Event):
    """A clip with too few changed frames (noise), or one that failed: its files are gone."""

    name: ClassVar[str] = "clip_discarded"
    hooked: ClassVar[bool] = False

    camera: str
    clip_id: str
    changed_frames: int

    def payload(self, links: MediaLinks) -> dict[str, Any]:
        return {"clip_id": self.clip_id, "changed_frames": self.changed_frames}


@dataclass(frozen=True, slots=True)
class CameraOnline(Event):
    name: ClassVar[str] = "camera_online"

    camera: str
    detail: str  # what was opened

    def payload(self, links: MediaLinks) -> dict[str, Any]:
        return {"detail": self.detail}


@dataclass(frozen=True, slots=True)
class CameraOffline(Event):
    name: ClassVar[str] = "camera_offline"

    camera: str
    detail: str  # "lost", "stopped"

    def payload(self, links: MediaLinks) -> dict[str, Any]:
        return {"detail": self.detail}


@dataclass(frozen=True, slots=True)
class CameraTampered(Event):
    """Covered, blinded, defocused or turned away for ``motion.tamper_after``."""

    name: ClassVar[str] = "camera_tampered"

    camera: str
    kind: str
    detail: str  # the kind in words
    since: float  # wall clock when the picture started looking tampered with
    detected: float  # wall clock when it was confirmed

    def payload(self, links: MediaLinks) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "detail": self.detail,
            "since": local_iso(self.since),
            "since_ts": round(self.since, 3),
            "detected": local_iso(self.detected),
            "detected_ts": round(self.detected, 3),
        }


@dataclass(frozen=True, slots=True)
class StorageError(Event):
    """A clip could not be written, or the storage is full (camera None: the whole store)."""

    name: ClassVar[str] = "storage_error"

    error: str
    path: Path
    storage_full: bool = False

    def payload(self, links: MediaLinks) -> dict[str, Any]:
        payload: dict[str, Any] = {"error": self.error, "path": str(self.path)}
        if self.storage_full:
            payload["storage_full"] = True
        return payload


@dataclass(frozen=True, slots=True)
class UploadFailed(Event):
    """One file has failed to reach a destination for ``upload.alert_after`` (once per file)."""

    name: ClassVar[str] = "upload_failed"

    camera: str
    clip_id: str | None
    file: str
    kind: str  # poster, clip, snapshot, sidecar
    remote: str
    error: str
    attempts: int
    failing_since: float  # wall clock

    def payload(self, links: MediaLinks) -> dict[str, Any]:
        return {
            "clip_id": self.clip_id,
            "file": self.file,
            "kind": self.kind,
            "remote": self.remote,
            "error": self.error,
            "attempts": self.attempts,
            "failing_since": self.failing_since,
        }


@dataclass(frozen=True, slots=True)
class SegmentStarted(Event):
    """A segment of continuous recording is being written (``path``: its partial file)."""

    name: ClassVar[str] = "segment_started"
    hooked: ClassVar[bool] = False

    camera: str
    start: float  # its first frame's capture time
    path: Path

    def payload(self, links: MediaLinks) -> dict[str, Any]:
        relative = self.path.relative_to(links.storage_root).as_posix()
        return {"url": links.url(relative), "start_ts": round(self.start, 3)}


@dataclass(frozen=True, slots=True)
class SegmentEnded(Event):
    """A segment of continuous recording is finished and in place (record.continuous)."""

    name: ClassVar[str] = "segment_ended"
    hooked: ClassVar[bool] = False

    camera: str
    segment: Segment

    def payload(self, links: MediaLinks) -> dict[str, Any]:
        segment = self.segment
        relative = segment.path.relative_to(links.storage_root).as_posix()
        return {
            "url": links.url(relative),
            "start_ts": segment.start,
            "end_ts": segment.end,
            "size": segment.size,
        }


EVENT_TYPES: tuple[type[Event], ...] = (
    ClipStarted,
    ClipEnded,
    ClipDiscarded,
    CameraOnline,
    CameraOffline,
    CameraTampered,
    StorageError,
    UploadFailed,
    SegmentStarted,
    SegmentEnded,
)
HOOKED_EVENT_TYPES = tuple(t for t in EVENT_TYPES if t.hooked)

# What the pipeline is given to tell of its events: the bus's ``publish``, nothing more.
EventSink = Callable[[Event], None]
E = TypeVar("E", bound=Event)


class EventBus:
    """Delivers each published event to the subscribers of its type."""

    def __init__(self) -> None:
        # Filled while the daemon is wired, before any thread publishes; then only read.
        self._subscribers: dict[type[Event], tuple[Callable[[Any], None], ...]] = {}

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        if event_type not in EVENT_TYPES:
            raise TypeError(f"{event_type.__name__} is not an event")
        self._subscribers[event_type] = (*self._subscribers.get(event_type, ()), handler)

    def publish(self, event: Event) -> None:
        """Hand ``event`` to its subscribers (any thread; they never block)."""
        for handler in self._subscribers.get(type(event), ()):
            try:
                handler(event)
            except Exception:
                logger.exception(
                    "event %s of camera %s: a subscriber failed", event.name, event.camera
                )
