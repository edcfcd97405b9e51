"""Retention: which clips and snapshots to delete (pure), and doing it (``Retention``).

Limits, oldest first: ``storage.max_age``, ``cameras[].record.max_bytes``,
``storage.max_bytes``, then ``storage.min_free`` plus room for one more ``max_clip`` at the
fastest camera's recent bitrate. Clips marked ``keep`` are never deleted: when only they are
left and space is still short, the storage is *full* and recording stops until space returns.
Clips still waiting to be copied off-site (``upload.keep_until_uploaded``) are spared by every
limit but ``min_free``: when space runs out they go as any other, and the loss is logged.

Continuous footage (``record.continuous``) is its own category, planned first
(``plan_continuous``): segments older than ``storage.continuous_max_age`` go, then, oldest
first, as many as ``storage.max_bytes`` (which counts them) and ``min_free`` need, so no clip
is ever deleted for space while a segment is left.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from motiond.config.storage import FreeSpace
from motiond.config.top import Config
from motiond.events import EventSink, StorageError
from motiond.store.clips import ClipStore
from motiond.store.layout import ClipRecord, Segment, StoredSnapshot, utc_parts
from motiond.store.segments import SegmentIndex
from motiond.threads import named_thread
from motiond.units import format_size

logger = logging.getLogger(__name__)

DEFAULT_BITRATE = 4_000_000 / 8  # bytes per second, until a camera has clips to measure
RECENT_CLIPS = 5  # clips per camera its bitrate is measured on
FULL_RECHECK = 30.0  # seconds between checks while full (space may come back any time)

Reason = Literal["max_age", "camera max_bytes", "max_bytes", "min_free"]


@dataclass(frozen=True, slots=True)
class DiskUsage:
    total: int
    free: int


@dataclass(frozen=True, slots=True)
class Limits:
    """The retention limits; 0 turns one off."""

    max_age: float = 0.0
    max_bytes: int = 0
    camera_max_bytes: Mapping[str, int] = field(default_factory=dict)
    min_free: FreeSpace = field(default_factory=FreeSpace)


@dataclass(frozen=True, slots=True)
class Plan:
    """What to delete, oldest first, and whether recording may go on afterwards."""

    clips: list[tuple[ClipRecord, Reason]]
    snapshots: list[StoredSnapshot]  # on-demand ones, and warn ones whose clip is gone
    full: bool  # min_free cannot be met: only kept clips (or none) left
    free_after: int
    free_wanted: int


def plan_deletions(
    clips: Sequence[ClipRecord],
    snapshots: Sequence[StoredSnapshot],
    *,
    now: float,
    usage: DiskUsage,
    limits: Limits,
    headroom: int,
    awaiting_upload: frozenset[str] = frozenset(),
) -> Plan:
    """Decide what goes, oldest first. Pure: files and clocks are the caller's business.

    Clips in ``awaiting_upload`` (ids) are only deleted for ``min_free``.
    """
    oldest_first = sorted(clips, key=lambda r: (r.start_ts, r.id))
    remaining = list(oldest_first)
    deleted: list[tuple[ClipRecord, Reason]] = []

    def delete_while(reason: Reason, should: Callable[[ClipRecord], bool]) -> None:
        for record in list(remaining):
            spared = reason != "min_free" and record.id in awaiting_upload
            if not record.keep and not spared and should(record):
                remaining.remove(record)
                deleted.append((record, reason))

    if limits.max_age:
        delete_while("max_age", lambda r: r.start_ts < now - limits.max_age)
    for camera, limit in sorted(limits.camera_max_bytes.items()):
        if limit:
            stored = [_bytes_of(r, camera) for r in remaining]
            delete_while("camera max_bytes", _over(limit, sum(stored), camera))
    if limits.max_bytes:
        delete_while("max_bytes", _over(limits.max_bytes, sum(_bytes_of(r) for r in remaining)))
    free = usage.free + sum(_bytes_of(r) for r, _ in deleted)
    wanted = limits.min_free.bytes_of(usage.total) + headroom
    delete_while("min_free", _short(free, wanted))
    free_after = usage.free + sum(_bytes_of(r) for r, _ in deleted)
    old_snapshots = [s for s in snapshots if limits.max_age and s.ts < now - limits.max_age]
    return Plan(deleted, old_snapshots, free_after < wanted, free_after, wanted)


def plan_continuous(
    segments: Sequence[Segment], *, now: float, max_age: float, bytes_needed: int
) -> list[Segment]:
    """Continuous segments to delete, oldest first: those that ended more than ``max_age``
    ago (0: none for age), then as many more as free ``bytes_needed`` (what ``max_bytes`` is
    over by, or ``min_free`` short of, whichever is more). Pure."""
    oldest_first = sorted(segments, key=lambda s: s.start)
    deleted = [s for s in oldest_first if max_age and s.end < now - max_age]
    needed = bytes_needed - sum(s.size for s in deleted)
    for segment in oldest_first[len(deleted) :]:
        if needed <= 0:
            break
        deleted.append(segment)
        needed -= segment.size
    return deleted


def _bytes_of(record: ClipRecord, camera: str | None = None) -> int:
    if camera is not None and record.camera != camera:
        return 0
    return record.size


def _over(limit: int, stored: int, camera: str | None = None) -> Callable[[ClipRecord], bool]:
    """A predicate deleting records (of ``camera``) in turn until ``stored`` fits ``limit``."""
    state = {"stored": stored}

    def should(record: ClipRecord) -> bool:
        size = _bytes_of(record, camera)
        if state["stored"] <= limit or not size:
            return False
        state["stored"] -= size
        return True

    return should


def _short(free: int, wanted: int) -> Callable[[ClipRecord], bool]:
    """A predicate deleting records in turn until ``free`` reaches ``wanted``."""
    state = {"free": free}

    def should(record: ClipRecord) -> bool:
        if state["free"] >= wanted:
            return False
        state["free"] += _bytes_of(record)
        return True

    return should


def headroom_for(clips: Sequence[ClipRecord], max_clips: Mapping[str, float]) -> int:
    """Bytes for one more ``max_clip`` of the camera that needs most, at its recent bitrate."""
    needed = 0.0
    for camera, max_clip in max_clips.items():
        recent = sorted(
            (r for r in clips if r.camera == camera and r.duration),
            key=lambda r: r.start_ts,
        )[-RECENT_CLIPS:]
        seconds = sum(r.duration for r in recent)
        rate = sum(r.size for r in recent) / seconds if seconds else DEFAULT_BITRATE
        needed = max(needed, max_clip * rate)
    return round(needed)


class Retention:
    """Applies the plan to the data directory; ``run`` may be called from any thread.

    ``_lock`` serialises runs and guards ``full``/``full_reason`` (recorder threads, the
    retention thread and the daemon's startup all call ``run``).
    """

    def __init__(self, config: Config, store: ClipStore, on_event: EventSink) -> None:
        self.config = config
        self.store = store
        self.storage = store.storage
        self.on_event = on_event
        self.full = False
        self.full_reason = ""
        self.deleted_total = 0
        # Destinations a clip still has to reach (upload.keep_until_uploaded); set by the daemon.
        self.pending_uploads: Callable[[ClipRecord], list[str]] | None = None
        self.segments: SegmentIndex | None = None  # continuous footage; set by the daemon
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self, reason: str, snapshots: bool = False) -> bool:
        """Enforce the limits now (``reason`` is for the log); True when there is room to record.

        ``snapshots`` also scans the snapshot folders for old on-demand snapshots (slower).
        """
        with self._lock:
            try:
                return self._run(reason, snapshots)
            except OSError as exc:
                logger.error("retention (%s) failed: %s", reason, exc)
                return not self.full

    def _run(self, reason: str, scan_snapshots: bool) -> bool:
        storage = self.config.storage
        limits = Limits(
            max_age=storage.max_age,
            max_bytes=storage.max_bytes,
            camera_max_bytes={c.name: c.record.max_bytes for c in self.config.cameras},
            min_free=storage.min_free,
        )
        clips = self.store.index.list()
        headroom = headroom_for(clips, {c.name: c.record.max_clip for c in self.config.cameras})
        disk = shutil.disk_usage(self.storage.root)
        # Room for a clip is never more than half the filesystem (else nothing could be kept).
        headroom = min(headroom, disk.total // 2)
        found = self._snapshot_files(clips) if scan_snapshots and storage.max_age else []
        now = dt.datetime.now().timestamp()
        wanted = limits.min_free.bytes_of(disk.total) + headroom
        freed, kept_bytes = self._delete_continuous(clips, disk.free, wanted, now)
        if kept_bytes and limits.max_bytes:  # the segments left count in max_bytes too
            limits = replace(limits, max_bytes=max(1, limits.max_bytes - kept_bytes))
        pending = self.pending_uploads
        awaiting = {r.id: pending(r) for r in clips} if pending is not None else {}
        plan = plan_deletions(
            clips,
            found,
            now=now,
            usage=DiskUsage(disk.total, disk.free + freed),
            limits=limits,
            headroom=headroom,
            awaiting_upload=frozenset(clip_id for clip_id, to in awaiting.items() if to),
        )
        for record, why in plan.clips:
            self.store.delete(record)
            self.deleted_total += 1
            logger.info("retention: deleted %s (%s)", record.id, why)
            if awaiting.get(record.id):
                logger.warning(
                    "retention: %s was deleted before it was copied to %s (out of space)",
                    record.id,
                    ", ".join(awaiting[record.id]),
                )
            self._remove_empty_dirs(self.storage.clip_path(record.id), now)
        for snapshot in plan.snapshots:
            with contextlib.suppress(FileNotFoundError):
                snapshot.path.unlink()
            logger.info("retention: deleted %s (max_age)", self.storage.relative(snapshot.path))
            self._remove_empty_dirs(snapshot.path, now)
        if plan.full and not self.full and any(self.storage.iter_partials()):
            # A clip being written becomes deletable once finished: short of room, not full.
            return False
        self._set_full(plan, reason)
        return not self.full

    def _delete_continuous(
        self, clips: Sequence[ClipRecord], free: int, wanted: int, now: float
    ) -> tuple[int, int]:
        """Delete continuous segments per ``plan_continuous``: (bytes freed, bytes left)."""
        index = self.segments
        if index is None:
            return 0, 0
        segments = index.all()
        stored = sum(s.size for s in segments)
        max_bytes = self.config.storage.max_bytes
        over = stored + sum(r.size for r in clips) - max_bytes if max_bytes else 0
        plan = plan_continuous(
            segments,
            now=now,
            max_age=self.config.storage.continuous_max_age,
            bytes_needed=max(over, wanted - free),
        )
        freed = 0
        for segment in plan:
            with contextlib.suppress(FileNotFoundError):
                segment.path.unlink()
            index.remove(segment.path)
            freed += segment.size
            logger.info("retention: deleted %s (continuous)", self.storage.relative(segment.path))
            if segment.path.parent.name not in {utc_parts(now)[0], utc_parts(now - 86400)[0]}:
                with contextlib.suppress(OSError):
                    segment.path.parent.rmdir()
        return freed, stored - freed

    def _set_full(self, plan: Plan, reason: str) -> None:
        if not plan.full:
            if self.full:
                logger.warning(
                    "storage: space is back (%s free); recording resumes",
                    format_size(plan.free_after),
                )
            self.full, self.full_reason = False, ""
            return
        kept = sum(1 for r in self.store.index.list() if r.keep)
        text = (
            f"storage full: {format_size(plan.free_after)} free, "
            f"{format_size(plan.free_wanted)} needed (min_free plus one clip) and "
            f"only {kept} kept clip(s) left to delete; not recording until space returns"
        )
        if not self.full:
            logger.error("%s (found by %s)", text, reason)
            self.on_event(
                StorageError(camera=None, error=text, path=self.storage.root, storage_full=True)
            )
        self.full, self.full_reason = True, text

    def _snapshot_files(self, clips: Sequence[ClipRecord]) -> list[StoredSnapshot]:
        """On-demand snapshots, and warn snapshots whose clip is not in the index (and is not
        being written either)."""
        indexed = {s for r in clips for s in r.snapshots}
        return [
            snapshot
            for snapshot in self.storage.iter_snapshots()
            if self.storage.relative(snapshot.path) not in indexed
            and not (snapshot.kind == "warn" and self.storage.has_clip_files(snapshot))
        ]

    def _remove_empty_dirs(self, removed: Path, now: float) -> None:
        """Remove the emptied day folder of a deleted file, but never today's or yesterday's
        (a clip may be about to start in it)."""
        recent = {utc_parts(now)[0], utc_parts(now - 86400)[0]}
        day = removed.parent
        if day.name in recent:
            return
        for folder in (day, self.storage.warn_dir / day.parent.name / day.name):
            with contextlib.suppress(OSError):
                folder.rmdir()

    # -- the periodic thread --------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("retention already started")
        self._thread = named_thread(self._loop, "retention")
        self._thread.start()

    def _loop(self) -> None:
        interval = self.config.storage.retention_interval
        while not self._stop.wait(min(interval, FULL_RECHECK) if self.full else interval):
            self.run("periodic", snapshots=True)

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
