"""The snapshot index: warn and on-demand snapshots in memory, per camera in time order.

Listing snapshots never walks the storage tree: the folders are read once, in the background at
start (``load``), and the index is kept in step by whoever writes or deletes a snapshot (the
camera door for on-demand ones, the clip events for warn ones, the clip store and retention
when they delete).

For readers of a time range (the timeline): ``between(camera, since, until)`` gives that
camera's snapshots taken in ``[since, until)``, oldest first, in O(log n + k).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import logging
import threading
from collections.abc import Iterable

from motiond.store.layout import SnapshotKind, Storage, StoredSnapshot

logger = logging.getLogger(__name__)


class SnapshotIndex:
    """Snapshots by their path relative to the data directory.

    Its lock protects ``_items``, ``_times`` and ``_removed``: recorder threads and the web
    side's executor add and remove, retention and the web side read. Until ``loaded`` is set it
    holds what was written this run and what the loader has read so far.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._lock = threading.Lock()
        self._items: dict[str, StoredSnapshot] = {}
        self._times: dict[str, list[tuple[float, str]]] = {}  # camera -> sorted (ts, relative)
        self._removed: set[str] = set()  # removed while loading: the loader must not bring back
        self._counts: dict[tuple[str, SnapshotKind], int] = {}  # (camera, kind) -> how many
        self.loaded = threading.Event()

    def load(self) -> int:
        """Read the warn/ and snapshots/ folders (one stat per file, for its size); returns
        how many snapshots the index holds. Runs once, off the IOLoop."""
        for snapshot in self.storage.iter_snapshots():
            try:
                size = snapshot.path.stat().st_size
            except OSError:
                continue  # deleted meanwhile
            self._add(self._with_size(snapshot, size), loading=True)
        with self._lock:
            self._removed.clear()
        self.loaded.set()
        return len(self)

    def add_file(self, relative: str) -> StoredSnapshot | None:
        """A snapshot just written (any thread): indexed with its size. None when the path is
        not a snapshot of the layout or the file is gone."""
        path = self.storage.root / relative
        try:
            size = path.stat().st_size
        except OSError:
            return None
        snapshot = self.storage.snapshot_of(path, size)
        if snapshot is not None:
            self._add(snapshot, loading=False)
        return snapshot

    def add_files(self, relatives: Iterable[str]) -> None:
        for relative in relatives:
            self.add_file(relative)

    def remove(self, relative: str) -> None:
        with self._lock:
            if not self.loaded.is_set():
                self._removed.add(relative)
            snapshot = self._items.pop(relative, None)
            if snapshot is not None:
                self._unlist(snapshot, relative)

    def _unlist(self, snapshot: StoredSnapshot, relative: str) -> None:
        times = self._times.get(snapshot.camera, [])
        key = (snapshot.ts, relative)
        at = bisect.bisect_left(times, key)
        if at < len(times) and times[at] == key:
            del times[at]
        self._counts[snapshot.camera, snapshot.kind] -= 1

    def between(
        self,
        camera: str,
        since: float | None = None,
        until: float | None = None,
        kind: SnapshotKind | None = None,
    ) -> list[StoredSnapshot]:
        """A camera's snapshots taken in ``[since, until)`` (epoch seconds), oldest first."""
        with self._lock:
            times = self._times.get(camera, [])
            low = 0 if since is None else bisect.bisect_left(times, (since, ""))
            high = len(times) if until is None else bisect.bisect_left(times, (until, ""))
            found = [self._items[relative] for _, relative in times[low:high]]
        return found if kind is None else [s for s in found if s.kind == kind]

    def page(
        self, camera: str | None, kind: SnapshotKind | None, offset: int, limit: int
    ) -> tuple[int, list[StoredSnapshot]]:
        """(how many match, ``limit`` of them from ``offset``), newest first: the cost is the
        page's, not the index's (a listing never sorts nor copies every snapshot's record)."""
        with self._lock:
            names = [camera] if camera is not None else list(self._times)
            total = sum(
                self._counts.get((name, k), 0)
                for name in names
                for k in ((kind,) if kind is not None else ("warn", "snapshot"))
            )
            newest_first = [self._times.get(name, [])[::-1] for name in names]
            items = self._items
            merged = heapq.merge(*newest_first, reverse=True)  # (ts, relative) pairs
            chosen = (items[relative] for _, relative in merged)
            if kind is not None:
                chosen = (s for s in chosen if s.kind == kind)
            return total, list(itertools.islice(chosen, offset, offset + limit))

    def all(self) -> list[StoredSnapshot]:
        """Every snapshot, in no particular order (retention's candidates)."""
        with self._lock:
            return list(self._items.values())

    def _cameras(self) -> list[str]:
        with self._lock:
            return list(self._times)

    def list(
        self, camera: str | None = None, kind: SnapshotKind | None = None
    ) -> list[StoredSnapshot]:
        """Snapshots newest first (ties: by path, newest name first), of one camera or all."""
        names = [camera] if camera is not None else self._cameras()
        # Each camera's list is in time order already: merging is linear (no sort per request).
        per_camera = [self.between(name, kind=kind)[::-1] for name in names]
        return list(heapq.merge(*per_camera, key=lambda s: (s.ts, s.path), reverse=True))

    def total_bytes(self) -> int:
        with self._lock:
            return sum(s.size for s in self._items.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def _add(self, snapshot: StoredSnapshot, *, loading: bool) -> None:
        relative = self.storage.relative(snapshot.path)
        with self._lock:
            if loading and (relative in self._items or relative in self._removed):
                return
            old = self._items.get(relative)
            if old is not None:
                self._unlist(old, relative)
            self._items[relative] = snapshot
            bisect.insort(self._times.setdefault(snapshot.camera, []), (snapshot.ts, relative))
            key = (snapshot.camera, snapshot.kind)
            self._counts[key] = self._counts.get(key, 0) + 1

    @staticmethod
    def _with_size(snapshot: StoredSnapshot, size: int) -> StoredSnapshot:
        return StoredSnapshot(
            snapshot.path, snapshot.ts, snapshot.camera, snapshot.kind, snapshot.clip_id, size
        )
