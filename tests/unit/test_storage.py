"""The on-disk format: names, patterns, free-name reservation and the clip record."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from motiond.store.layout import (
    ClipRecord,
    ClipUpload,
    LayoutError,
    SidecarError,
    Storage,
    is_camera_name,
    is_clip_id,
    is_media_path,
    name_time,
    read_sidecar,
    utc_parts,
    write_sidecar,
)

WALL = 1_795_241_702.25  # 2026-11-21 06:15:02.25 UTC

# A sidecar exactly as the recorder of earlier versions wrote it: it must keep loading.
OLD_SIDECAR = {
    "boxes_union": [10, 50, 100, 24],
    "camera": "cam",
    "changed_frames": 18,
    "codec": "h264",
    "dropped_frames": 0,
    "duration": 2.0,
    "end": "2026-11-21T07:15:04.250+01:00",
    "end_ts": 1795241704.25,
    "file": "clips/cam/2026-11-21/061502Z.mp4",
    "fps": 10.0,
    "frames": 20,
    "height": 240,
    "id": "cam/2026-11-21/061502Z.mp4",
    "keep": False,
    "peak_delta": 0.04321,
    "poster": "warn/cam/2026-11-21/061502Z-start.jpg",
    "recovered": False,
    "size": 123456,
    "snapshots": [
        "warn/cam/2026-11-21/061502Z-start.jpg",
        "warn/cam/2026-11-21/061502Z-peak.jpg",
    ],
    "start": "2026-11-21T07:15:02.250+01:00",
    "start_ts": 1795241702.25,
    "width": 320,
}


def test_names_and_times_round_trip() -> None:
    day, stem = utc_parts(WALL)
    assert (day, stem) == ("2026-11-21", "061502Z")
    assert name_time(day, stem) == int(WALL)
    assert name_time(day, f"{stem}-3.partial.mp4") == int(WALL)
    assert name_time(day, f"{stem}-start.jpg") == int(WALL)
    assert name_time("2026-13-40", stem) is None and name_time(day, "junk") is None


@pytest.mark.parametrize(
    "text",
    [
        "cam/2026-11-21/061502Z.mp4\n",  # "$" would let a trailing newline through
        "cam/\u0662\u0660\u0662\u0666-11-21/061502Z.mp4",  # Arabic-Indic digits match \d
        "cam/2026-11-21/\uff10\uff16\uff11\uff15\uff10\uff12Z.mp4",  # fullwidth digits
        "../2026-11-21/061502Z.mp4",
        "cam/2026-11-21/061502Z.json",
        "cam/2026-11-21/../061502Z.mp4",
    ],
)
def test_ids_are_full_matches_of_ascii_digits(text: str) -> None:
    assert not is_clip_id(text)
    assert not is_media_path("clips/" + text)


def test_layout_names_are_recognised() -> None:
    assert is_clip_id("cam/2026-11-21/061502Z.mp4") and is_clip_id("c-1_a/2026-11-21/061502Z-2.mp4")
    for path in (
        "clips/cam/2026-11-21/061502Z.partial.mp4",
        "warn/cam/2026-11-21/061502Z-1-peak.jpg",
        "snapshots/cam/2026-11-21/061502Z-4.jpg",
    ):
        assert is_media_path(path), path
    assert not is_media_path(".cookie-secret") and not is_media_path("clips/cam/x.mp4")
    assert is_camera_name("door") and not is_camera_name("door\n") and not is_camera_name("../x")


def test_two_snapshots_in_one_second_get_two_names(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    taken: list[Path] = []
    lock = threading.Lock()

    def take() -> None:
        path = storage.reserve_snapshot("cam", WALL)
        with lock:
            taken.append(path)

    threads = [threading.Thread(target=take) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(taken)) == 20 and all(p.is_file() for p in taken)
    assert sorted(p.name for p in taken)[:2] == ["061502Z-1.jpg", "061502Z-10.jpg"]


def test_two_clips_in_one_second_get_two_names(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    first = storage.reserve_clip("cam", WALL)
    second = storage.reserve_clip("cam", WALL)
    assert first.clip_id == "cam/2026-11-21/061502Z.mp4"
    assert second.clip_id == "cam/2026-11-21/061502Z-1.mp4"
    assert second.start_snapshot.name == "061502Z-1-start.jpg" and second.partial.is_file()
    with pytest.raises(LayoutError):
        storage.reserve_clip("../x", WALL)


def test_listing_takes_only_camera_names_and_layout_files(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "data")
    good = storage.reserve_snapshot("cam", WALL)
    (good.parent / "notes.txt").write_text("not a snapshot")
    outside = tmp_path / "outside" / "x" / "2026-11-21"
    outside.mkdir(parents=True)
    (outside / "061502Z.jpg").write_bytes(b"\xff\xd8")
    for camera in ("../../outside/x", "*", "**", "cam/..", "cam\n"):
        with pytest.raises(LayoutError):
            list(storage.iter_snapshots(camera=camera))
    (listed,) = storage.iter_snapshots(camera="cam")
    assert listed.path == good and listed.kind == "snapshot" and listed.ts == int(WALL)


def test_an_old_sidecar_loads_and_is_written_back_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "061502Z.json"
    path.write_text(json.dumps({**OLD_SIDECAR, "uploaded_to": "nas"}))  # a key of the future
    record = read_sidecar(path)
    assert record.id == OLD_SIDECAR["id"] and record.boxes_union == (10, 50, 100, 24)
    assert record.extra == {"uploaded_to": "nas"}
    write_sidecar(path, record.replace(keep=True))
    assert json.loads(path.read_text()) == {**OLD_SIDECAR, "uploaded_to": "nas", "keep": True}


def test_off_site_copies_are_typed_and_round_trip(tmp_path: Path) -> None:
    copies = [
        {
            "remote": "b2:bucket/motiond",
            "path": "b2:bucket/motiond/clips/x.mp4",
            "time": "t1",
        },
        {"remote": "nas:", "path": "nas:clips/x.mp4", "time": "t2"},
    ]
    path = tmp_path / "061502Z.json"
    path.write_text(json.dumps({**OLD_SIDECAR, "uploads": copies}))
    record = read_sidecar(path)
    assert record.uploads == (
        ClipUpload("b2:bucket/motiond", "b2:bucket/motiond/clips/x.mp4", "t1"),
        ClipUpload("nas:", "nas:clips/x.mp4", "t2"),
    )
    assert "uploads" not in record.extra
    assert record.uploaded_remotes() == {"b2:bucket/motiond", "nas:"}
    write_sidecar(path, record)
    assert json.loads(path.read_text()) == {**OLD_SIDECAR, "uploads": copies}
    # A new copy to a destination replaces the older one; no copies: no key at all.
    again = record.with_upload(ClipUpload("nas:", "nas:clips/x.mp4", "t3"))
    assert [(u.remote, u.time) for u in again.uploads] == [
        ("b2:bucket/motiond", "t1"),
        ("nas:", "t3"),
    ]
    assert "uploads" not in record.replace(uploads=()).to_json()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": "../../etc/x.mp4", "file": "clips/../../etc/x.mp4"}, "not a clip of the layout"),
        ({"file": "clips/other/2026-11-21/061502Z.mp4"}, "not a clip of the layout"),
        ({"frames": "20"}, "frames must be a whole number"),
        ({"keep": 1}, "keep must be true or false"),
        ({"duration": None}, "duration must be a number"),
        ({"uploads": "nas:"}, "uploads must be a list"),
        ({"uploads": [{"remote": "nas:", "path": 3, "time": "t"}]}, "uploads: each must have"),
    ],
)
def test_a_bad_sidecar_says_what_is_wrong(change: dict[str, object], reason: str) -> None:
    with pytest.raises(SidecarError, match=reason):
        ClipRecord.from_json({**OLD_SIDECAR, **change})


def test_snapshot_paths_outside_the_layout_are_dropped() -> None:
    record = ClipRecord.from_json(
        {**OLD_SIDECAR, "snapshots": ["../../etc/passwd"], "poster": "/etc/passwd"}
    )
    assert record.snapshots == () and record.poster is None
