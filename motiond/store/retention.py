"""Retention: which clips and snapshots to delete (pure), and doing it (``Retention``).

Limits, oldest first: ``storage.max_age``, ``cameras[].record.max_bytes``,
``storage.max_bytes``, then ``storage.min_free`` plus room for one more ``max_clip`` at the
fastest camera's recent bitrate. Snapshots count in the limits; for the space limits, groups
are emptied in ``GROUP_ORDER`` (on-demand snapshots, then clips), each oldest first. Nothing
recorded while the clock was implausible (``clock.plausible``) is deleted for its age.
Clips marked ``keep`` are never deleted: when only they are
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
from motiond.store.clock import BUILD_DATE, plausible
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
class Candidate:
    """One thing retention may delete, in the planner's terms."""

    group: str  # which kind of thing: GROUP_ORDER names them; the executor deletes by it
    key: str  # a clip's id, or a file's path relative to the data directory
    camera: str
    ts: float  # when it was recorded, epoch seconds (wall clock then)
    size: int
    keep: bool = False  # never deleted
    spared: bool = False  # still to be copied off-site: deleted only for min_free


# When space is short (max_bytes, min_free), groups are emptied in this order, each oldest
# first, before anything of the next group goes: on-demand snapshots (and warn snapshots
# whose clip is gone) before any motion clip. Another kind of footage slots in by name.
GROUP_ORDER: tuple[str, ...] = ("snapshot", "clip")


@dataclass(frozen=True, slots=True)
class Plan:
    """What to delete, and whether recording may go on afterwards."""

    deleted: list[tuple[Candidate, Reason]]  # in the order to delete
    full: bool  # min_free cannot be met: only kept clips (or none) left
    free_after: int
    free_wanted: int
    clips: list[tuple[ClipRecord, Reason]] = field(default_factory=list)
    snapshots: list[StoredSnapshot] = field(default_factory=list)


def plan_groups(
    groups: Mapping[str, Sequence[Candidate]],
    *,
    now: float,
    usage: DiskUsage,
    limits: Limits,
    headroom: int,
) -> Plan:
    """Decide what goes. Pure: files and clocks are the caller's business.

    ``max_age`` deletes whatever is older, in any group, except what was recorded while the
    clock was implausible (``clock.plausible``); the space limits then delete group by group in
    ``GROUP_ORDER`` (groups not named there last), oldest first within a group.
    """
    names = [g for g in GROUP_ORDER if g in groups] + sorted(set(groups) - set(GROUP_ORDER))
    order = [c for g in names for c in sorted(groups[g], key=lambda c: (c.ts, c.key))]
    deleted: list[tuple[Candidate, Reason]] = []
    gone: set[tuple[str, str]] = set()

    def delete_while(reason: Reason, should: Callable[[Candidate], bool]) -> None:
        for candidate in order:
            if (candidate.group, candidate.key) in gone or candidate.keep:
                continue
            if reason != "min_free" and candidate.spared:
                continue
            if should(candidate):
                gone.add((candidate.group, candidate.key))
                deleted.append((candidate, reason))

    def stored(camera: str | None = None) -> int:
        return sum(
            c.size for c in order if (c.group, c.key) not in gone and camera in (None, c.camera)
        )

    if limits.max_age and plausible(now):
        cutoff = now - limits.max_age
        delete_while("max_age", lambda c: c.ts < cutoff and plausible(c.ts, now))
    for camera, limit in sorted(limits.camera_max_bytes.items()):
        if limit:
            delete_while("camera max_bytes", _over(limit, stored(camera), camera))
    if limits.max_bytes:
        delete_while("max_bytes", _over(limits.max_bytes, stored()))
    freed = sum(c.size for c, _ in deleted)
    wanted = limits.min_free.bytes_of(usage.total) + headroom
    delete_while("min_free", _short(usage.free + freed, wanted))
    free_after = usage.free + sum(c.size for c, _ in deleted)
    return Plan(deleted, free_after < wanted, free_after, wanted)


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
    """``plan_groups`` for clips and snapshots; the plan also lists them as they came.

    Clips in ``awaiting_upload`` (ids) are only deleted for ``min_free``.
    """
    records = {r.id: r for r in clips}
    files = {str(s.path): s for s in snapshots}
    plan = plan_groups(
        {
            "snapshot": [
                Candidate("snapshot", str(s.path), s.camera, s.ts, s.size) for s in snapshots
            ],
            "clip": [
                Candidate(
                    "clip", r.id, r.camera, r.start_ts, r.size, r.keep, r.id in awaiting_upload
                )
                for r in clips
            ],
        },
        now=now,
        usage=usage,
        limits=limits,
        headroom=headroom,
    )
    plan.clips.extend((records[c.key], why) for c, why in plan.deleted if c.group == "clip")
    plan.snapshots.extend(files[c.key] for c, _ in plan.deleted if c.group == "snapshot")
    return plan


def plan_continuous(
    segments: Sequence[Segment], *, now: float, max_age: float, bytes_needed: int
) -> list[Segment]:
    """Continuous segments to delete, oldest first: those that ended more than ``max_age``
    ago (0: none for age), then as many more as free ``bytes_needed`` (what ``max_bytes`` is
    over by, or ``min_free`` short of, whichever is more). Pure."""
    oldest_first = sorted(segments, key=lambda s: s.start)
    aging = bool(max_age) and plausible(now)  # a wrong clock ages nothing (clock.py)
    deleted = [
        s for s in oldest_first if aging and s.end < now - max_age and plausible(s.start, now)
    ]
    needed = bytes_needed - sum(s.size for s in deleted)
    aged = set(deleted)
    for segment in [s for s in oldest_first if s not in aged]:
        if needed <= 0:
            break
        deleted.append(segment)
        needed -= segment.size
    return deleted


def _over(limit: int, stored: int, camera: str | None = None) -> Callable[[Candidate], bool]:
    """A predicate deleting candidates (of ``camera``) in turn until ``stored`` fits ``limit``."""
    state = {"stored": stored}

    def should(candidate: Candidate) -> bool:
        if camera is not None and candidate.camera != camera:
            return False
        if state["stored"] <= limit or not candidate.size:
            return False
        state["stored"] -= candidate.size
        return True

    return should


def _short(free: int, wanted: int) -> Callable[[Candidate], bool]:
    """A predicate deleting candidates in turn until ``free`` reaches ``wanted``."""
    state = {"free": free}

    def should(candidate: Candidate) -> bool:
        if state["free"] >= wanted:
            return False
        state["free"] += candidate.size
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
        self._implausible_noted = 0
        self._headroom: int | None = None  # bytes for one more clip, as of the last run
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self, reason: str, snapshots: bool = True) -> bool:
        """Enforce the limits now (``reason`` is for the log); True when there is room to record.

        Until the clip index has loaded (start-up, in the background) nothing is deleted and
        recording may go on: a plan on part of the clips could delete the wrong ones.
        ``snapshots`` is kept for callers; snapshots come from the index and always count.
        """
        if not self.store.index.loaded.is_set():
            logger.debug("retention (%s): the clip index is still loading; skipped", reason)
            return True
        with self._lock:
            try:
                return self._run(reason)
            except OSError as exc:
                logger.error("retention (%s) failed: %s", reason, exc)
                return not self.full

    def make_room(self, reason: str) -> bool:
        """Before a clip (recorder threads): True when there is room to record. Plans only when
        space is short or a size limit is set (else a glance at the free space, against the
        headroom of the last run): with 300,000 clips a plan takes about a second. Ages are
        left to the periodic runs."""
        storage = self.config.storage
        headroom = self._headroom
        limited = storage.max_bytes or any(c.record.max_bytes for c in self.config.cameras)
        if headroom is None or limited or self.full or not self.store.index.loaded.is_set():
            return self.run(reason)
        try:
            disk = shutil.disk_usage(self.storage.root)
        except OSError:
            return self.run(reason)
        if disk.free >= storage.min_free.bytes_of(disk.total) + headroom:
            return True
        return self.run(reason)

    def _run(self, reason: str) -> bool:
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
        self._headroom = headroom
        found = self._loose_snapshots()
        now = dt.datetime.now().timestamp()
        wanted = limits.min_free.bytes_of(disk.total) + headroom
        freed, kept_bytes = self._delete_continuous(clips, found, disk.free, wanted, now)
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
        self._note_implausible(clips, now)
        reasons = {str(c.key): why for c, why in plan.deleted if c.group == "snapshot"}
        for snapshot in plan.snapshots:
            self.store.delete_snapshot(snapshot)
            logger.info(
                "retention: deleted %s (%s)",
                self.storage.relative(snapshot.path),
                reasons.get(str(snapshot.path), "max_age"),
            )
            self._remove_empty_dirs(snapshot.path, now)
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
        if plan.full and not self.full and self.storage.has_partials_since(now - 86400):
            # A clip being written becomes deletable once finished: short of room, not full.
            return False
        self._set_full(plan, reason)
        return not self.full

    def _delete_continuous(
        self,
        clips: Sequence[ClipRecord],
        snapshots: Sequence[StoredSnapshot],
        free: int,
        wanted: int,
        now: float,
    ) -> tuple[int, int]:
        """Delete continuous segments per ``plan_continuous``: (bytes freed, bytes left)."""
        index = self.segments
        if index is None:
            return 0, 0
        segments = index.all()
        stored = sum(s.size for s in segments)
        max_bytes = self.config.storage.max_bytes
        others = sum(r.size for r in clips) + sum(s.size for s in snapshots)
        over = stored + others - max_bytes if max_bytes else 0
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

    def _note_implausible(self, clips: Sequence[ClipRecord], now: float) -> None:
        """Say once per count how many clips max_age leaves alone for their clock."""
        if not self.config.storage.max_age:
            return
        count = sum(1 for r in clips if not r.keep and not plausible(r.start_ts, now))
        if count and count != self._implausible_noted:
            logger.warning(
                "retention: %d clip(s) were recorded while the clock was wrong (dated before "
                "%s or in the future); max_age does not delete them, only a shortage of space",
                count,
                BUILD_DATE.isoformat(),
            )
        self._implausible_noted = count

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

    def _loose_snapshots(self) -> list[StoredSnapshot]:
        """On-demand snapshots, and warn snapshots whose clip is not in the index (and is not
        being written either), from the snapshot index."""
        found = []
        for snapshot in self.store.snapshots.all():
            if snapshot.kind == "warn" and (
                snapshot.clip_id is None
                or self.store.index.get(snapshot.clip_id) is not None
                or self.storage.has_clip_files(snapshot)
            ):
                continue
            found.append(snapshot)
        return found

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
