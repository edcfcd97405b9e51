"""Finished clips in memory and their changes: the clip index and the clip store.

The sidecars on disk are the truth (see layout.py); the index is filled from them at start,
in the background (loading.py), and kept in step by the recorder's events, retention and the
web side.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import threading
import time
from collections.abc import Callable

from motiond.store.layout import (
    ClipRecord,
    ClipUpload,
    LayoutError,
    SidecarError,
    SnapshotKind,
    Storage,
    StoredSnapshot,
    is_camera_name,
    local_iso,
    read_sidecar,
    write_sidecar,
)
from motiond.store.snapshot_index import SnapshotIndex

logger = logging.getLogger(__name__)


class ClipIndex:
    """The finished clips in memory, per camera in time order; filled from the sidecars in the
    background at start (``load``) and kept in step by the recorders, retention and the web.

    Its lock protects ``_clips``, ``_times`` and ``_removed``; the recorder threads add, the
    web side and retention read and remove, the loader adds what it reads. Records are
    immutable, so what a reader gets never changes under it. While ``loaded`` is not set the
    index holds the clips recorded or loaded so far, not yet all of them.

    For readers of a time range (the timeline): ``between(camera, since, until)`` gives that
    camera's clips starting in ``[since, until)``, oldest first, in O(log n + k).
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._lock = threading.Lock()
        self._clips: dict[str, ClipRecord] = {}
        # camera -> its clips sorted by (start_ts, id), the record beside (never compared: ids
        # are unique), so a listing neither looks records up nor calls a key function.
        self._times: dict[str, list[tuple[float, str, ClipRecord]]] = {}
        self._removed: set[str] = set()  # removed while loading: the loader must not bring back
        self.loaded = threading.Event()

    def rebuild(self) -> int:
        """Read every sidecar now (tests, tools); an unusable one is logged and skipped.
        Returns the count. The daemon loads through ``store.recovery.load_clips`` instead."""
        for sidecar in self.storage.iter_sidecars():
            try:
                record = read_sidecar(sidecar)
            except SidecarError as exc:
                logger.warning("skipping unreadable sidecar %s: %s", sidecar, exc)
                continue
            if not self.storage.clip_path(record.id).is_file():
                logger.warning("sidecar %s names a missing clip %s; skipped", sidecar, record.id)
                continue
            self.add_loaded(record)
        for partial in self.storage.iter_partials():
            logger.warning("unfinished clip from an earlier run: %s", partial)
        self.loaded.set()
        return len(self)

    def add(self, record: ClipRecord) -> None:
        """A new or changed clip (a recorder, the store): it replaces an earlier record."""
        with self._lock:
            self._put(record)

    def add_loaded(self, record: ClipRecord) -> bool:
        """A clip read from its sidecar while loading: ignored when the index already has a
        newer record of it, or it was deleted meanwhile. True when added."""
        with self._lock:
            if record.id in self._clips or record.id in self._removed:
                return False
            self._put(record)
            return True

    def finish_loading(self) -> None:
        with self._lock:
            self._removed.clear()
        self.loaded.set()

    def _put(self, record: ClipRecord) -> None:
        old = self._clips.get(record.id)
        if old is not None:
            self._drop_time(old)
        self._clips[record.id] = record
        entry = (record.start_ts, record.id, record)
        bisect.insort(self._times.setdefault(record.camera, []), entry)

    def _drop_time(self, record: ClipRecord) -> None:
        times = self._times.get(record.camera, [])
        key = (record.start_ts, record.id)
        at = bisect.bisect_left(times, key)
        if at < len(times) and times[at][:2] == key:
            del times[at]

    def remove(self, clip_id: str) -> ClipRecord | None:
        with self._lock:
            if not self.loaded.is_set():
                self._removed.add(clip_id)
            record = self._clips.pop(clip_id, None)
            if record is not None:
                self._drop_time(record)
            return record

    def get(self, clip_id: str) -> ClipRecord | None:
        with self._lock:
            return self._clips.get(clip_id)

    def between(
        self, camera: str, since: float | None = None, until: float | None = None
    ) -> list[ClipRecord]:
        """A camera's clips starting in ``[since, until)`` (epoch seconds), oldest first."""
        return [entry[2] for entry in self._entries(camera, since, until)]

    def _entries(
        self, camera: str, since: float | None, until: float | None
    ) -> list[tuple[float, str, ClipRecord]]:
        with self._lock:
            times = self._times.get(camera, [])
            low = 0 if since is None else bisect.bisect_left(times, (since, ""))
            high = len(times) if until is None else bisect.bisect_left(times, (until, ""))
            return times[low:high]

    def list(
        self,
        camera: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[ClipRecord]:
        """Clips newest first, filtered by camera and start time (epoch seconds)."""
        if camera is not None:
            return self.between(camera, since, until)[::-1]
        with self._lock:
            cameras = list(self._times)
        entries: list[tuple[float, str, ClipRecord]] = []
        for name in cameras:
            entries.extend(self._entries(name, since, until))
        if len(cameras) > 1:
            entries.sort()  # runs already in order: timsort merges them in linear time
        return [entry[2] for entry in reversed(entries)]

    def cameras(self) -> set[str]:
        """The cameras that have clips in the index (configured or not any more)."""
        with self._lock:
            return {camera for camera, times in self._times.items() if times}

    def __len__(self) -> int:
        with self._lock:
            return len(self._clips)


class ClipStore:
    """Changes to finished clips (keep, uploads, delete) and snapshot listings: files and index
    together.

    Called from the web side's executor threads, from retention and from the upload workers;
    the index has its own lock, and a clip's files are only touched here once it is finished.
    """

    def __init__(
        self, storage: Storage, index: ClipIndex, snapshots: SnapshotIndex | None = None
    ) -> None:
        self.storage = storage
        self.index = index
        if snapshots is None:  # tests and tools: read the folders now; the daemon loads its own
            snapshots = SnapshotIndex(storage)
            snapshots.load()
        self.snapshots = snapshots
        # Serialises sidecar rewrites and deletions (web executor, retention, uploads), so a
        # change is never lost to another written from an older copy of the record.
        self._lock = threading.Lock()

    def set_keep(self, record: ClipRecord, keep: bool) -> ClipRecord:
        with self._lock:
            current = self.index.get(record.id) or record
            return self._rewrite(current.replace(keep=keep))

    def mark_uploaded(
        self, clip_id: str, remote: str, path_of: Callable[[ClipRecord], str]
    ) -> ClipRecord | None:
        """Record in the sidecar that the clip is copied to ``remote`` (its path there, and
        when). None when the clip is no longer in the index."""
        with self._lock:
            record = self.index.get(clip_id)
            if record is None:
                return None
            upload = ClipUpload(remote, path_of(record), local_iso(time.time()))
            return self._rewrite(record.with_upload(upload))

    def _rewrite(self, updated: ClipRecord) -> ClipRecord:
        clip = self.storage.clip_path(updated.id)
        write_sidecar(self.storage.sidecar_of(clip), updated)
        self.index.add(updated)
        return updated

    def delete(self, record: ClipRecord) -> None:
        """Delete a clip, then its snapshots, then its sidecar (the sidecar last: never a
        sidecar without its clip)."""
        with self._lock:
            self._delete(record)

    def _delete(self, record: ClipRecord) -> None:
        self.index.remove(record.id)
        clip = self.storage.clip_path(record.id)
        with contextlib.suppress(FileNotFoundError):
            clip.unlink()
        for snapshot in record.snapshots:
            self.snapshots.remove(snapshot)
            with contextlib.suppress(FileNotFoundError):
                self.storage.media_path(snapshot).unlink()
        with contextlib.suppress(FileNotFoundError):
            self.storage.sidecar_of(clip).unlink()
        logger.info("clip %s deleted", record.id)

    def delete_snapshot(self, snapshot: StoredSnapshot) -> None:
        """Delete a snapshot file (retention): out of the index first, then off the disk."""
        self.snapshots.remove(self.storage.relative(snapshot.path))
        with contextlib.suppress(FileNotFoundError):
            snapshot.path.unlink()

    def list_snapshots(
        self,
        camera: str | None = None,
        kind: SnapshotKind | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[int, list[StoredSnapshot]]:
        """(how many, a page of them from ``offset``): warn and on-demand snapshots, newest
        first, from the snapshot index (no walk of the folders); a warn snapshot whose clip is
        not in the clip index (deleted, or lost in a crash) has no ``clip_id``.

        Raises storage.LayoutError for a ``camera`` that is not a camera name.
        """
        if camera is not None and not is_camera_name(camera):
            raise LayoutError(f"not a camera name: {camera!r}")
        total, page = self.snapshots.page(camera, kind, offset, limit)
        return total, [
            s
            if s.clip_id is None or self.index.get(s.clip_id) is not None
            else StoredSnapshot(s.path, s.ts, s.camera, s.kind, None, s.size)
            for s in page
        ]
