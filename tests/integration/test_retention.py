"""Retention: the pure planner on plain records, then the executor on real files."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest

from motiond.config import ConfigError, FreeSpace, parse_config
from motiond.store import retention as retention_module
from motiond.store.clips import ClipIndex
from motiond.store.clock import plausible
from motiond.store.layout import ClipRecord, Storage, StoredSnapshot
from motiond.store.retention import (
    DEFAULT_BITRATE,
    Candidate,
    DiskUsage,
    Limits,
    Retention,
    headroom_for,
    plan_deletions,
    plan_groups,
)
from tests.fixtures.clips import (
    DAY,
    MB,
    NOW,
    ROOMY,
    Emitted,
    clip,
    config_for,
    recorded,
)
from tests.fixtures.daemon import sidecars


def planned(clips: list[ClipRecord], **kwargs: Any) -> list[tuple[str, str]]:
    options: dict[str, Any] = {"now": NOW, "usage": ROOMY, "limits": Limits(), "headroom": 0}
    options.update(kwargs)
    plan = plan_deletions(clips, [], **options)
    return [(name(record), reason) for record, reason in plan.clips]


def name(record: ClipRecord) -> str:
    """How these tests name a clip: "<camera>/<age in days>.mp4"."""
    return f"{record.camera}/{round((NOW - record.start_ts) / DAY, 3):g}.mp4"


def test_nothing_goes_without_limits() -> None:
    assert planned([clip("a", 100), clip("b", 1)]) == []


def test_max_age_deletes_old_clips_but_never_kept_ones() -> None:
    clips = [clip("a", 1), clip("a", 40), clip("a", 31), clip("b", 50, keep=True)]
    assert planned(clips, limits=Limits(max_age=30 * DAY)) == [
        ("a/40.mp4", "max_age"),
        ("a/31.mp4", "max_age"),
    ]


def test_max_bytes_deletes_oldest_first_until_it_fits() -> None:
    clips = [clip("a", d) for d in (1, 2, 3, 4, 5)] + [clip("b", 9, keep=True)]
    # 60 MB stored, 35 MB allowed: the three oldest unkept clips go (the kept one counts).
    assert planned(clips, limits=Limits(max_bytes=35 * MB)) == [
        ("a/5.mp4", "max_bytes"),
        ("a/4.mp4", "max_bytes"),
        ("a/3.mp4", "max_bytes"),
    ]


def test_a_camera_limit_only_touches_that_camera() -> None:
    clips = [clip("a", 5), clip("a", 1), clip("b", 9), clip("b", 8)]
    limits = Limits(camera_max_bytes={"a": 10 * MB, "b": 0})
    assert planned(clips, limits=limits) == [("a/5.mp4", "camera max_bytes")]


def test_min_free_with_headroom_deletes_across_cameras_oldest_first() -> None:
    clips = [clip("a", 3), clip("b", 2), clip("a", 1)]
    usage = DiskUsage(total=100 * MB, free=5 * MB)
    limits = Limits(min_free=FreeSpace(size=10 * MB))
    # Without headroom 5 MB more are needed (one clip); a 12 MB headroom needs two.
    assert planned(clips, usage=usage, limits=limits) == [("a/3.mp4", "min_free")]
    assert planned(clips, usage=usage, limits=limits, headroom=12 * MB) == [
        ("a/3.mp4", "min_free"),
        ("b/2.mp4", "min_free"),
    ]


def test_min_free_as_a_percentage_of_the_filesystem() -> None:
    clips = [clip("a", 3), clip("a", 2), clip("a", 1)]
    usage = DiskUsage(total=1000 * MB, free=40 * MB)
    # 5% of 1000 MB = 50 MB: one 10 MB clip; 7% = 70 MB: three.
    assert len(planned(clips, usage=usage, limits=Limits(min_free=FreeSpace(percent=5)))) == 1
    assert len(planned(clips, usage=usage, limits=Limits(min_free=FreeSpace(percent=7)))) == 3


def test_space_that_only_kept_clips_could_free_means_full() -> None:
    clips = [clip("a", 3, keep=True), clip("a", 2), clip("a", 1, keep=True)]
    usage = DiskUsage(total=100 * MB, free=1 * MB)
    plan = plan_deletions(
        clips,
        [],
        now=NOW,
        usage=usage,
        limits=Limits(min_free=FreeSpace(size=20 * MB)),
        headroom=0,
    )
    assert [name(r) for r, _ in plan.clips] == ["a/2.mp4"]
    assert plan.full and plan.free_after == 11 * MB and plan.free_wanted == 20 * MB


def test_old_on_demand_snapshots_age_out() -> None:
    old = StoredSnapshot(Path("snapshots/a/old.jpg"), NOW - 31 * DAY)
    new = StoredSnapshot(Path("snapshots/a/new.jpg"), NOW - 1 * DAY)
    options: dict[str, Any] = {"now": NOW, "usage": ROOMY, "headroom": 0}
    plan = plan_deletions([], [old, new], limits=Limits(max_age=30 * DAY), **options)
    assert plan.snapshots == [old]
    assert plan_deletions([], [old, new], limits=Limits(), **options).snapshots == []


def test_headroom_is_one_max_clip_at_the_fastest_recent_bitrate() -> None:
    clips = [clip("a", 2, size=5 * MB), clip("b", 1, size=20 * MB)]  # 10 s each
    assert headroom_for(clips, {"a": 60.0, "b": 30.0}) == 60 * MB  # b: 2 MB/s for 30 s
    assert headroom_for([], {"new": 10.0}) == round(10 * DEFAULT_BITRATE)


# -- the executor, on files the recorder wrote ---------------------------------------------------


def files(storage: Storage) -> list[str]:
    return sorted(storage.relative(p) for p in storage.root.rglob("*") if p.is_file())


def test_retention_deletes_old_clips_with_their_snapshots(tmp_path: Path) -> None:
    storage, store = recorded(tmp_path, [40, 35, 2])
    records = sidecars(storage.root)  # oldest first
    kept = store.index.get(str(records[1]["id"]))
    assert kept is not None
    store.set_keep(kept, True)
    # An on-demand snapshot from 40 days ago, and one from today.
    stale = storage.reserve_snapshot("cam", time.time() - 40 * DAY)
    fresh = storage.reserve_snapshot("cam", time.time())
    for path in (stale, fresh):
        path.write_bytes(b"jpeg")
        store.snapshots.add_file(storage.relative(path))  # as the camera door does
    retention = Retention(config_for(storage.root, "max_age: 30d, min_free: 0"), store, Emitted())
    assert retention.run("test", snapshots=True)

    gone = records[0]
    left = [r.id for r in store.index.list()]
    assert sorted(left) == sorted([records[1]["id"], records[2]["id"]])  # kept one stays
    remaining = files(storage)
    for path in [gone["file"], *gone["snapshots"], str(gone["file"]).replace(".mp4", ".json")]:
        assert path not in remaining
    assert not (storage.root / str(gone["file"])).parent.exists()  # its emptied day folder
    assert storage.relative(stale) not in remaining and storage.relative(fresh) in remaining
    for record in records[1:]:
        assert record["file"] in remaining and all(s in remaining for s in record["snapshots"])
    # The index and the sidecars on disk agree.
    rebuilt = ClipIndex(storage)
    assert rebuilt.rebuild() == 2 and {r.id for r in rebuilt.list()} == set(left)
    assert retention.deleted_total == 1


def test_max_bytes_per_camera_on_real_files(tmp_path: Path) -> None:
    storage, store = recorded(tmp_path, [3, 2, 1])
    sizes = [int(r["size"]) for r in sidecars(storage.root)]
    limit = sizes[-1] + sizes[-2]  # room for the two newest
    config = config_for(
        storage.root, "max_age: 0, min_free: 0", f", record: {{max_bytes: {limit}}}"
    )
    assert Retention(config, store, Emitted()).run("test")
    assert [r.id for r in store.index.list()] == [r["id"] for r in sidecars(storage.root)][::-1]
    assert len(sidecars(storage.root)) == 2


def test_only_kept_clips_and_no_space_means_full_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    storage, store = recorded(tmp_path, [2, 1])
    for record in store.index.list():
        store.set_keep(record, True)
    usage = namedtuple("usage", "total used free")
    space = {"free": 1 * MB}
    monkeypatch.setattr(
        shutil, "disk_usage", lambda _: usage(100 * MB, 100 * MB - space["free"], space["free"])
    )
    events = Emitted()
    retention = Retention(config_for(storage.root, "min_free: 10MB"), store, events)
    assert not retention.run("test") and not retention.run("again")
    assert retention.full and "storage full" in retention.full_reason
    assert len(store.index) == 2 and len(sidecars(storage.root)) == 2  # kept clips stay
    assert [e for e, _ in events] == ["storage_error"]  # once, not per run
    assert sum("storage full" in r.message for r in caplog.records) == 1
    space["free"] = 50 * MB
    assert retention.run("space back") and not retention.full
    assert any("recording resumes" in r.message for r in caplog.records)


def test_deleting_the_last_clip_leaves_no_files_behind(tmp_path: Path) -> None:
    """Clip, snapshots, sidecar and the emptied day folder all go."""
    storage, store = recorded(tmp_path, [40])
    record = store.index.list()[0]
    Retention(config_for(storage.root, "max_age: 30d, min_free: 0"), store, Emitted()).run("t")
    assert not list(storage.clips_dir.rglob("*.json")) and not list(
        storage.clips_dir.rglob("*.mp4")
    )
    assert json.dumps(record.to_json())  # the record still serialises
    assert os.listdir(storage.clips_dir / "cam") == []


# -- config ----------------------------------------------------------------------------------------


def test_retention_config_units_and_defaults(tmp_path: Path) -> None:
    storage = config_for(tmp_path, "max_age: 7d, max_bytes: 20GB, min_free: 5%").storage
    assert storage.max_age == 7 * DAY and storage.max_bytes == 20 * 1000**3
    assert storage.min_free == FreeSpace(percent=5.0) and storage.min_free.bytes_of(200) == 10
    assert str(storage.min_free) == "5%"
    defaults = parse_config("cameras: [{name: a, source: demo}]").storage
    assert (defaults.max_age, defaults.max_bytes, defaults.retention_interval) == (30 * DAY, 0, 600)
    assert defaults.min_free == FreeSpace(size=1000**3) and str(defaults.min_free) == "1GB"
    camera = config_for(tmp_path, "min_free: 0", ", record: {max_bytes: 2GiB}").cameras[0]
    assert camera.record.max_bytes == 2 * 1024**3


@pytest.mark.parametrize(
    ("storage", "camera", "message"),
    [
        ("min_free: lots", "", "storage.min_free: expected a size such as 20GB"),
        ("min_free: 80%", "", "storage.min_free: a percentage must be 0%..50%, got '80%'"),
        ("max_age: 30", "", "storage.max_age: must be 0 (off) or at least 1h, got 30s"),
        ("max_bytes: -5", "", "storage.max_bytes: must not be negative"),
        ("retention_interval: 1s", "", "storage.retention_interval: must be 10s..1d"),
        ("min_free: 0", ", record: {max_bytes: 3 apples}", "cameras[0].record.max_bytes: expected"),
        ("max_agee: 1d", "", "storage.max_agee: unknown key"),
    ],
)
def test_bad_retention_config_names_the_key(
    tmp_path: Path, storage: str, camera: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config_for(tmp_path, storage, camera)
    assert message in str(caught.value)


def on_demand(age_days: float, size: int, camera: str = "a") -> StoredSnapshot:
    return StoredSnapshot(
        Path(f"snapshots/{camera}/{age_days}.jpg"), NOW - age_days * DAY, camera, size=size
    )


def test_short_of_space_snapshots_go_oldest_first_before_any_clip() -> None:
    clips = [clip("a", 5), clip("a", 3)]  # 10 MB each
    snaps = [on_demand(1, 4 * MB), on_demand(2, 4 * MB), on_demand(0.5, 4 * MB)]
    # 10 MB free, 18 wanted: two snapshots (8 MB, the oldest two) are enough; no clip goes.
    plan = plan_deletions(
        clips,
        snaps,
        now=NOW,
        usage=DiskUsage(1000 * MB, 10 * MB),
        limits=Limits(min_free=FreeSpace(size=18 * MB)),
        headroom=0,
    )
    assert plan.snapshots == [snaps[1], snaps[0]] and plan.clips == [] and not plan.full
    # 30 MB wanted: every snapshot, then the oldest clip.
    plan = plan_deletions(
        clips,
        snaps,
        now=NOW,
        usage=DiskUsage(1000 * MB, 10 * MB),
        limits=Limits(min_free=FreeSpace(size=30 * MB)),
        headroom=0,
    )
    assert plan.snapshots == [snaps[1], snaps[0], snaps[2]]
    assert [name(r) for r, _ in plan.clips] == ["a/5.mp4"]


def test_snapshots_count_in_max_bytes() -> None:
    clips = [clip("a", 5), clip("a", 3)]  # 20 MB of clips
    snaps = [on_demand(1, 6 * MB), on_demand(2, 6 * MB)]
    plan = plan_deletions(
        clips, snaps, now=NOW, usage=ROOMY, limits=Limits(max_bytes=25 * MB), headroom=0
    )
    assert plan.snapshots == snaps[::-1] and plan.clips == []  # 32 -> 20 MB: no clip goes


def test_a_new_group_slots_in_before_snapshots_by_its_order() -> None:
    footage = [Candidate("footage", "f1", "a", NOW - DAY, 5 * MB)]
    snaps = [Candidate("snapshot", "s1", "a", NOW - 9 * DAY, 5 * MB)]
    clips = [Candidate("clip", "c1", "a", NOW - 20 * DAY, 5 * MB)]
    options: dict[str, Any] = {"now": NOW, "usage": DiskUsage(1000 * MB, 0), "headroom": 0}
    limits = Limits(min_free=FreeSpace(size=5 * MB))
    groups = {"clip": clips, "snapshot": snaps, "footage": footage}
    plan = plan_groups(groups, limits=limits, **options)
    assert [c.key for c, _ in plan.deleted] == ["s1"]  # default order: snapshots first
    retention_module.GROUP_ORDER = ("footage", "snapshot", "clip")
    try:
        plan = plan_groups(groups, limits=limits, **options)
    finally:
        retention_module.GROUP_ORDER = ("snapshot", "clip")
    assert [c.key for c, _ in plan.deleted] == ["f1"]


def test_clips_recorded_while_the_clock_was_wrong_are_not_aged_out() -> None:
    """A Pi without a real-time clock recorded at "1970" (and one whose clock ran ahead):
    once NTP sets the clock right, max_age leaves them; only a shortage of space takes them."""
    in_1970 = clip("a", 1).replace(id="a/1970-01-04/000000Z.mp4", start_ts=3 * DAY)
    ahead = clip("a", 2).replace(id="a/2027-02-14/000000Z.mp4", start_ts=NOW + 30 * DAY)
    old = clip("a", 40)
    assert in_1970.start_ts < 1e6 and not plausible(in_1970.start_ts, NOW)
    assert planned([in_1970, ahead, old], limits=Limits(max_age=30 * DAY)) == [
        ("a/40.mp4", "max_age")
    ]
    # The clock itself before the build date: max_age deletes nothing at all.
    assert planned([old], now=100.0 * DAY, limits=Limits(max_age=30 * DAY)) == []
    # Space short: they go as any other clip, oldest recorded time first.
    short = planned(
        [in_1970, old], usage=DiskUsage(1000 * MB, 0), limits=Limits(min_free=FreeSpace(size=MB))
    )
    assert short == [(name(in_1970), "min_free")]


def test_retention_says_why_it_leaves_clips_recorded_with_a_wrong_clock(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage, store = recorded(tmp_path, [(time.time() - 5 * DAY) / DAY, 40])  # 1970, 40 days
    retention = Retention(config_for(storage.root, "max_age: 30d, min_free: 0"), store, Emitted())
    assert retention.run("test")
    left = store.index.list()
    assert len(left) == 1 and left[0].start_ts < 1e6  # the 1970 clip is still there, and its file
    assert (storage.root / left[0].file).is_file()
    assert "1 clip(s) were recorded while the clock was wrong" in caplog.text


def test_before_a_clip_retention_plans_only_when_space_is_short(tmp_path: Path) -> None:
    storage, store = recorded(tmp_path, [40, 3, 2])
    retention = Retention(config_for(storage.root, "max_age: 0, min_free: 0"), store, Emitted())
    assert retention.run("startup") and len(store.index) == 3
    retention.config = config_for(storage.root, "max_age: 30d, min_free: 0")
    assert retention.make_room("camera cam starting a clip")
    assert len(store.index) == 3  # ages are the periodic runs' business
    assert retention.run("periodic") and len(store.index) == 2
    # Space short (more to keep free than there is): the glance sees it and plans; only
    # unkept clips could go, so after them the storage is full.
    wanted = shutil.disk_usage(storage.root).free + 10**9
    retention.config = config_for(storage.root, f"max_age: 30d, min_free: {wanted}")
    assert not retention.make_room("camera cam starting a clip")
    assert len(store.index) == 0 and retention.full
