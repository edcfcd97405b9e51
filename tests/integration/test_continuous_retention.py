"""Retention of continuous footage: its own age limit, and always deleted before any clip."""

from __future__ import annotations

import shutil
import time
from collections import namedtuple
from pathlib import Path

import pytest

from motiond.store.layout import Segment, Storage, finished_segment_path, reserve_segment
from motiond.store.retention import Retention, plan_continuous
from motiond.store.segments import SegmentIndex
from tests.fixtures.clips import DAY, MB, NOW, Emitted, config_for, recorded
from tests.fixtures.daemon import sidecars


def on_paper(age_days: float, size: int = MB) -> Segment:
    start = NOW - age_days * DAY
    return Segment("cam", start, start + 600, Path(f"/nowhere/{age_days}.mp4"), size)


def test_the_plan_takes_old_segments_then_the_oldest_for_space() -> None:
    segments = [on_paper(0.5), on_paper(4), on_paper(2), on_paper(1)]
    old = plan_continuous(segments, now=NOW, max_age=3 * DAY, bytes_needed=0)
    assert old == [segments[1]]
    # 2.5 MB needed: the 4-day-old one counts, then the two oldest of the rest.
    spaced = plan_continuous(segments, now=NOW, max_age=3 * DAY, bytes_needed=round(2.5 * MB))
    assert spaced == [segments[1], segments[2], segments[3]]
    assert plan_continuous(segments, now=NOW, max_age=0, bytes_needed=0) == []
    assert len(plan_continuous(segments, now=NOW, max_age=0, bytes_needed=100 * MB)) == 4


def footage(storage: Storage, ages_hours: list[float], size: int) -> SegmentIndex:
    """Segment files of ``size`` bytes that started ``ages_hours`` ago, indexed."""
    for age in ages_hours:
        partial = reserve_segment(storage, "cam", time.time() - age * 3600)
        partial.write_bytes(b"\0" * size)
        partial.rename(finished_segment_path(partial, 600.0))
    index = SegmentIndex(storage)
    assert index.rebuild() == len(ages_hours)
    return index


def segment_files(storage: Storage) -> list[str]:
    """The segment files, oldest first: by day folder, then by name (a name alone is a time
    of day, and footage from before midnight sorted after today's)."""
    root = storage.continuous_dir
    return sorted(str(p.relative_to(root)) for p in root.glob("cam/*/*.mp4"))


def test_continuous_max_age_deletes_only_old_segments(tmp_path: Path) -> None:
    storage, store = recorded(tmp_path, [5, 1])  # clips five days and one day old
    index = footage(storage, [100, 80, 2, 1], 1000)
    newest = segment_files(storage)[-2:]
    config = config_for(storage.root, "max_age: 30d, continuous_max_age: 3d, min_free: 0")
    retention = Retention(config, store, Emitted())
    retention.segments = index
    assert retention.run("test")
    assert len(index) == 2 and segment_files(storage) == sorted(newest)
    assert len(sidecars(storage.root)) == 2  # clips have their own, longer, max_age


def test_max_bytes_takes_every_segment_before_any_clip(tmp_path: Path) -> None:
    storage, store = recorded(tmp_path, [2, 1])
    clip_bytes = sum(int(r["size"]) for r in sidecars(storage.root))
    index = footage(storage, [30, 20, 10, 1], 50_000)
    # Room for the clips and one segment and a half: the three oldest segments go.
    limit = clip_bytes + 75_000
    config = config_for(storage.root, f"max_bytes: {limit}, min_free: 0")
    retention = Retention(config, store, Emitted())
    retention.segments = index
    assert retention.run("test")
    assert [round((time.time() - s.start) / 3600) for s in index.all()] == [1]
    assert len(sidecars(storage.root)) == 2
    # Tighter than the clips alone: every segment goes, then the oldest clip.
    retention.config = config_for(storage.root, f"max_bytes: {clip_bytes - 1}, min_free: 0")
    assert retention.run("again")
    assert len(index) == 0 and segment_files(storage) == []
    assert len(sidecars(storage.root)) == 1


def test_min_free_takes_segments_before_clips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage, store = recorded(tmp_path, [2, 1])
    index = footage(storage, [3, 2, 1], 1 * MB)
    usage = namedtuple("usage", "total used free")
    free = 10 * MB
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(100 * MB, 100 * MB - free, free))
    # 10 MB wanted, plus a max_clip at the clips' bitrate (about 1.5 MB): 10 MB free, so
    # the oldest segments go until it fits (two of them), and no clip.
    config = config_for(storage.root, "min_free: 10MB")
    retention = Retention(config, store, Emitted())
    retention.segments = index
    retention.run("test")
    assert len(index) == 1 and len(segment_files(storage)) == 1
    assert [round((time.time() - s.start) / 3600) for s in index.all()] == [1]
    assert len(sidecars(storage.root)) == 2
