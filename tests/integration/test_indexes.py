"""The clip and snapshot indexes: time ranges per camera, merged listings, and loading in the
background while recorders, the web side and retention change them."""

from __future__ import annotations

import time
from pathlib import Path

from motiond.events import ClipDiscarded, ClipStarted, EventBus
from motiond.store.clips import ClipIndex, ClipStore
from motiond.store.layout import ClipRecord, Storage
from motiond.store.loading import IndexKeeper, load_indexes
from motiond.store.snapshot_index import SnapshotIndex
from testbed.many_clips import write_many_clips
from tests.fixtures.clips import clip


def at(camera: str, ts: float, n: int) -> ClipRecord:
    return clip(camera, 1).replace(id=f"{camera}/2026-02-01/{n:06d}Z.mp4", start_ts=ts)


def test_clips_between_a_time_range_per_camera_oldest_first(tmp_path: Path) -> None:
    index = ClipIndex(Storage(tmp_path))
    records = [at("a", 30.0, 3), at("b", 20.0, 2), at("a", 10.0, 1), at("a", 20.0, 4)]
    for record in records:
        index.add(record)
    assert [r.start_ts for r in index.between("a")] == [10.0, 20.0, 30.0]
    assert [r.start_ts for r in index.between("a", 10.0, 30.0)] == [10.0, 20.0]  # [since, until)
    assert index.between("nope") == []
    # All cameras, newest first; a changed record replaces the old one in its place.
    assert [r.id for r in index.list()] == [
        r.id
        for r in (records[0], records[1], records[3], records[2])  # ties: by id
    ]
    index.add(records[0].replace(keep=True))
    assert len(index) == 4 and index.between("a")[-1].keep
    index.remove(records[2].id)
    assert [r.start_ts for r in index.between("a")] == [20.0, 30.0]


def test_snapshots_between_a_time_range_per_camera(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "data")
    storage.ensure()
    snapshots = SnapshotIndex(storage)
    base = 1_800_000_000.0
    paths = [storage.reserve_snapshot("cam", base + t) for t in (50, 10, 30)]
    for path in paths:
        path.write_bytes(b"\xff\xd8jpeg\xff\xd9")
        snapshots.add_file(storage.relative(path))
    other = storage.reserve_snapshot("door", base + 20)
    other.write_bytes(b"x")
    snapshots.add_file(storage.relative(other))
    found = snapshots.between("cam", base + 10, base + 50)
    assert [s.ts - base for s in found] == [10.0, 30.0] and all(s.size == 8 for s in found)
    assert [s.ts - base for s in snapshots.list()] == [50.0, 30.0, 20.0, 10.0]
    assert snapshots.list(kind="warn") == [] and snapshots.total_bytes() == 25


def test_loading_never_brings_back_a_deleted_clip_nor_an_older_record(tmp_path: Path) -> None:
    root = tmp_path / "data"
    ids = write_many_clips(root, 50, poster_every=5)
    storage = Storage(root)
    index, snapshots = ClipIndex(storage), SnapshotIndex(storage)
    store = ClipStore(storage, index, snapshots)
    # Before the loader reads them: one clip is deleted, one is marked keep (by the web side).
    gone = ClipRecord.from_json({**_sidecar(root, ids[0]), "file": f"clips/{ids[0]}"})
    store.delete(gone)
    kept = store.set_keep(ClipRecord.from_json(_sidecar(root, ids[1])), True)
    assert not index.loaded.is_set()
    load_indexes(storage, index, snapshots, before=time.time())
    assert index.loaded.is_set() and len(index) == 49
    assert index.get(ids[0]) is None and not (root / "clips" / ids[0]).exists()
    assert index.get(ids[1]) == kept and kept.keep
    assert len(snapshots) == 9  # ten posters, one went with its deleted clip


def _sidecar(root: Path, clip_id: str) -> dict[str, object]:
    import json

    data: dict[str, object] = json.loads(
        (root / "clips" / clip_id).with_suffix(".json").read_text()
    )
    return data


def test_a_page_of_snapshots_costs_the_page_and_counts_them_all(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_many_clips(root, 300, poster_every=1)
    storage = Storage(root)
    storage.ensure()
    snapshots = SnapshotIndex(storage)
    assert snapshots.load() == 300
    on_demand = storage.reserve_snapshot("cam", time.time())
    on_demand.write_bytes(b"jpeg")
    snapshots.add_file(storage.relative(on_demand))
    total, page = snapshots.page(None, None, 0, 5)
    assert total == 301 and page[0].path == on_demand  # the newest first
    assert [s.ts for s in page] == sorted((s.ts for s in page), reverse=True)
    total, page = snapshots.page("cam", "warn", 298, 5)
    assert total == 300 and len(page) == 2 and all(s.kind == "warn" for s in page)
    assert snapshots.page("cam", "snapshot", 0, 5) == (1, [snapshots.list(kind="snapshot")[0]])
    snapshots.remove(storage.relative(on_demand))
    assert snapshots.page(None, "snapshot", 0, 5) == (0, [])
    assert snapshots.page("door", None, 0, 5) == (0, [])


def test_the_indexes_follow_a_clip_started_then_discarded(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "data")
    storage.ensure()
    index, snapshots = ClipIndex(storage), SnapshotIndex(storage)
    bus = EventBus()
    IndexKeeper(storage, index, snapshots).subscribe(bus)
    paths = storage.reserve_clip("cam", 1_800_000_000.0)
    paths.start_snapshot.parent.mkdir(parents=True)
    paths.start_snapshot.write_bytes(b"jpeg")
    poster = storage.relative(paths.start_snapshot)
    bus.publish(ClipStarted("cam", paths.clip_id, paths.partial, poster, 1_800_000_000.0, ()))
    assert [storage.relative(s.path) for s in snapshots.list()] == [poster]
    paths.start_snapshot.unlink()  # as the recorder does for a clip of noise
    bus.publish(ClipDiscarded("cam", paths.clip_id, 1))
    assert snapshots.list() == [] and len(index) == 0
