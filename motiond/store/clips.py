"""Finished clips in memory and their changes: the clip index and the clip store.

The sidecars on disk are the truth (see storage.py); the index is rebuilt from them at start
and kept in step by the recorder's events, retention and the web side.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from motiond.store.layout import (
    ClipRecord,
    ClipUpload,
    SidecarError,
    SnapshotKind,
    Storage,
    StoredSnapshot,
    local_iso,
    read_sidecar,
    write_sidecar,
)

logger = logging.getLogger(__name__)


class ClipIndex:
    """The in-memory list of finished clips, rebuilt from the sidecars.

    Its lock protects ``_clips``; the recorder threads add, the web side and retention read and
    remove. Records are immutable, so what a reader gets never changes under it.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._lock = threading.Lock()
        self._clips: dict[str, ClipRecord] = {}

    def rebuild(self) -> int:
        """Read every sidecar; an unusable one is logged and skipped. Returns the count."""
        clips: dict[str, ClipRecord] = {}
        for sidecar in self.storage.iter_sidecars():
            try:
                record = read_sidecar(sidecar)
            except SidecarError as exc:
                logger.warning("skipping unreadable sidecar %s: %s", sidecar, exc)
                continue
            if not self.storage.clip_path(record.id).is_file():
                logger.warning("sidecar %s names a missing clip %s; skipped", sidecar, record.id)
                continue
            clips[record.id] = record
        for partial in self.storage.iter_partials():
            logger.warning("unfinished clip from an earlier run: %s", partial)
        with self._lock:
            self._clips = clips
        return len(clips)

    def add(self, record: ClipRecord) -> None:
        with self._lock:
            self._clips[record.id] = record

    def remove(self, clip_id: str) -> ClipRecord | None:
        with self._lock:
            return self._clips.pop(clip_id, None)

    def get(self, clip_id: str) -> ClipRecord | None:
        with self._lock:
            return self._clips.get(clip_id)

    def list(
        self,
        camera: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[ClipRecord]:
        """Clips newest first, filtered by camera and start time (epoch seconds)."""
        with self._lock:
            records = list(self._clips.values())
        selected = [
            r
            for r in records
            if (camera is None or r.camera == camera)
            and (since is None or r.start_ts >= since)
            and (until is None or r.start_ts < until)
        ]
        selected.sort(key=lambda r: r.start_ts, reverse=True)
        return selected

    def cameras(self) -> set[str]:
        """The cameras that have clips in the index (configured or not any more)."""
        with self._lock:
            return {r.camera for r in self._clips.values()}

    def __len__(self) -> int:
        with self._lock:
            return len(self._clips)


class ClipStore:
    """Changes to finished clips (keep, uploads, delete) and snapshot listings: files and index
    together.

    Called from the web side's executor threads, from retention and from the upload workers;
    the index has its own lock, and a clip's files are only touched here once it is finished.
    """

    def __init__(self, storage: Storage, index: ClipIndex) -> None:
        self.storage = storage
        self.index = index
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
            with contextlib.suppress(FileNotFoundError):
                self.storage.media_path(snapshot).unlink()
        with contextlib.suppress(FileNotFoundError):
            self.storage.sidecar_of(clip).unlink()
        logger.info("clip %s deleted", record.id)

    def list_snapshots(
        self, camera: str | None = None, kind: SnapshotKind | None = None
    ) -> list[StoredSnapshot]:
        """Warn and on-demand snapshots, newest first; a warn snapshot whose clip is not in the
        index (deleted, or lost in a crash) has no ``clip_id``.

        Raises storage.LayoutError for a ``camera`` that is not a camera name.
        """
        found = [
            s
            if s.clip_id is None or self.index.get(s.clip_id) is not None
            else StoredSnapshot(s.path, s.ts, s.camera, s.kind, clip_id=None)
            for s in self.storage.iter_snapshots(kind, camera)
        ]
        found.sort(key=lambda s: (s.ts, s.path), reverse=True)
        return found
