"""Continuous segments on disk: their names, and the index rebuilt from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from motiond.store.layout import (
    Storage,
    finished_segment_path,
    is_media_path,
    iter_segment_partials,
    reserve_segment,
    segment_of,
)
from motiond.store.segments import Segment, SegmentIndex

WALL = 1_795_241_702.25  # 2026-11-21 06:15:02.250 UTC


def _segment(storage: Storage, camera: str, start: float, duration: float) -> Segment:
    partial = reserve_segment(storage, camera, start)
    partial.write_bytes(b"x" * 100)
    final = finished_segment_path(partial, duration)
    partial.rename(final)
    segment = segment_of(storage, final)
    assert segment is not None
    return segment


def test_a_segment_name_holds_its_start_to_the_millisecond_and_its_duration(
    tmp_path: Path,
) -> None:
    storage = Storage(tmp_path)
    partial = reserve_segment(storage, "door", WALL)
    assert storage.relative(partial) == "continuous/door/2026-11-21/061502250Z.partial.mp4"
    assert list(iter_segment_partials(storage)) == [partial]
    final = finished_segment_path(partial, 29.9334)
    assert final.name == "061502250Z-29933ms.mp4"
    partial.rename(final)
    segment = segment_of(storage, final)
    assert segment == Segment("door", WALL, round(WALL + 29.933, 3), final, 0)
    assert segment.duration == pytest.approx(29.933)
    assert is_media_path("continuous/door/2026-11-21/061502250Z-29933ms.mp4")
    assert is_media_path("continuous/door/2026-11-21/061502250Z.partial.mp4")
    assert not is_media_path("continuous/door/2026-11-21/061502250Z.mp4")
    assert not is_media_path("continuous/../2026-11-21/061502250Z-1ms.mp4")


def test_a_second_segment_at_the_same_millisecond_is_refused(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    reserve_segment(storage, "door", WALL)
    with pytest.raises(FileExistsError):
        reserve_segment(storage, "door", WALL)


def test_the_index_is_rebuilt_from_the_names_and_answers_by_overlap(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    made = [_segment(storage, "door", WALL + 30 * i, 30.0) for i in range(4)]
    _segment(storage, "garden", WALL, 30.0)
    (storage.continuous_dir / "door" / "2026-11-21" / "notes.txt").write_text("not footage")
    index = SegmentIndex(storage)
    assert index.rebuild() == 5
    assert index.between("door", WALL + 31, WALL + 61) == made[1:3]
    assert index.between("door", WALL + 30, WALL + 60) == [made[1]]
    assert index.between("door", WALL - 100, WALL) == []
    assert index.between("nobody", WALL, WALL + 1000) == []
    assert index.cameras() == {"door", "garden"}
    assert index.total_bytes() == 500
    assert index.remove(made[0].path) == made[0]
    assert index.between("door", 0, WALL + 1000) == made[1:]
    index.add(made[0])
    assert index.between("door", 0, WALL + 1000) == made
    assert [s.start for s in index.all()] == [WALL, WALL, *(s.start for s in made[1:])]
