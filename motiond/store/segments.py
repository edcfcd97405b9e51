"""The index of continuous footage: every finished segment, by camera and time.

The files are the truth: a segment's name holds its first frame's capture time and its
duration (``store/layout.py`` spells it), so the index is rebuilt from a directory listing at
start (no file is opened) and kept in step by the continuous recorders and retention.
"""

from __future__ import annotations

import bisect
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from motiond.record.mp4boxes import ClipProbeError, playable_end, probe_clip
from motiond.store.layout import (
    Segment,
    Storage,
    clip_timing,
    finished_segment_path,
    fsync_dir,
    iter_segments,
    segment_of,
)

__all__ = ["Segment", "SegmentIndex", "finish_partial_segment"]


class SegmentIndex:
    """Finished segments per camera, sorted by start.

    Its lock protects ``_by_camera``; the continuous recorders' threads add, retention removes,
    the web side reads. Segments are immutable, so what a reader gets never changes under it.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._lock = threading.Lock()
        self._by_camera: dict[str, list[Segment]] = {}

    def rebuild(self) -> int:
        """List the segments on disk; returns how many there are."""
        by_camera: dict[str, list[Segment]] = {}
        for segment in iter_segments(self.storage):
            by_camera.setdefault(segment.camera, []).append(segment)
        for segments in by_camera.values():
            segments.sort(key=_start)
        with self._lock:
            self._by_camera = by_camera
        return sum(len(s) for s in by_camera.values())

    def add(self, segment: Segment) -> None:
        with self._lock:
            segments = self._by_camera.setdefault(segment.camera, [])
            bisect.insort(segments, segment, key=_start)

    def remove(self, path: Path) -> Segment | None:
        """Forget the segment stored at ``path`` (deleted); returns it, or None if unknown."""
        with self._lock:
            for segments in self._by_camera.values():
                for position, segment in enumerate(segments):
                    if segment.path == path:
                        return segments.pop(position)
        return None

    def between(self, camera: str, since: float, until: float) -> list[Segment]:
        """The camera's segments that overlap [since, until), sorted by start."""
        with self._lock:
            segments = self._by_camera.get(camera, [])
            right = bisect.bisect_left(segments, until, key=_start)
            return [s for s in segments[:right] if s.end > since]

    def all(self) -> list[Segment]:
        """Every segment, oldest start first (retention)."""
        with self._lock:
            everything: Iterable[Segment] = (s for c in self._by_camera.values() for s in c)
            return sorted(everything, key=_start)

    def cameras(self) -> set[str]:
        with self._lock:
            return {camera for camera, segments in self._by_camera.items() if segments}

    def total_bytes(self) -> int:
        with self._lock:
            return sum(s.size for segments in self._by_camera.values() for s in segments)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._by_camera.values())


def finish_partial_segment(
    storage: Storage, partial: Path, duration: float | None, fallback_fps: float
) -> Segment | None:
    """Rename a closed partial segment to its finished name; with ``duration`` None (a write
    failed, or a crash) it is first cut to its last complete fragment and measured. None and
    the file removed when nothing in it plays."""
    try:
        if duration is None:
            end = playable_end(partial)
            if end == 0:
                partial.unlink()
                return None
            if end < partial.stat().st_size:
                os.truncate(partial, end)
            probe = probe_clip(partial)
            duration, _ = clip_timing(probe.span, probe.frames, 1.0 / fallback_fps)
        elif partial.stat().st_size == 0:
            partial.unlink()
            return None
    except ClipProbeError:
        partial.unlink()
        return None
    final = finished_segment_path(partial, duration)
    os.rename(partial, final)  # the name is new: its start, to the ms, was reserved
    fsync_dir(final.parent)
    return segment_of(storage, final)


def _start(segment: Segment) -> float:
    return segment.start
