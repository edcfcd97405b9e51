"""Filling the indexes from the disk at start, after the cameras are already recording, and
keeping them in step with the recorders (``IndexKeeper``).

The daemon runs ``load_indexes`` on its "index" thread; until it returns, the snapshot and clip
indexes hold what this run wrote and what was read so far (``ClipIndex.loaded`` says when
they are whole), and retention waits for it.
"""

from __future__ import annotations

import logging
import time

from motiond.events import ClipDiscarded, ClipEnded, ClipStarted, EventBus
from motiond.store.clips import ClipIndex
from motiond.store.layout import Storage
from motiond.store.recovery import load_clips
from motiond.store.snapshot_index import SnapshotIndex

logger = logging.getLogger(__name__)


def load_indexes(
    storage: Storage, index: ClipIndex, snapshots: SnapshotIndex, *, before: float
) -> None:
    """Read every snapshot and sidecar (repairing sidecars as crash recovery does); files
    changed at or after ``before`` (wall clock) are this run's. Blocking; never raises for a
    file or folder that cannot be read."""
    began = time.monotonic()
    try:
        snapshot_count = snapshots.load()
        report = load_clips(storage, index.add_loaded, before=before)
    finally:
        index.finish_loading()
    if report:
        logger.info("crash recovery: %s", report.summary())
    logger.info(
        "clip index loaded: %d clip(s), %d snapshot(s) in %.1f s",
        len(index),
        snapshot_count,
        time.monotonic() - began,
    )


class IndexKeeper:
    """The first subscriber of the clip events (recorder threads): a clip is listed, with its
    snapshots, before anyone hears of it; a discarded clip's snapshots leave the index."""

    def __init__(self, storage: Storage, index: ClipIndex, snapshots: SnapshotIndex) -> None:
        self.storage = storage
        self.index = index
        self.snapshots = snapshots

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(ClipStarted, self._started)
        bus.subscribe(ClipEnded, self._ended)
        bus.subscribe(ClipDiscarded, self._discarded)

    def _started(self, event: ClipStarted) -> None:
        self.snapshots.add_file(event.poster)  # written before the event

    def _ended(self, event: ClipEnded) -> None:
        self.index.add(event.record)
        self.snapshots.add_files(event.record.snapshots)

    def _discarded(self, event: ClipDiscarded) -> None:
        for path in self.storage.warn_snapshots_of(self.storage.clip_path(event.clip_id)):
            self.snapshots.remove(self.storage.relative(path))
