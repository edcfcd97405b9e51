"""Off-site copies when the queue itself misbehaves: a write that fails, an item of the wrong
types, a queue folder that cannot be read at start, and a backlog of 30,000 clips. Copies go
to rclone's local backend (a folder standing for a mounted disk)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from motiond.config import UploadConfig, UploadDestination
from motiond.notify.upload import DestinationWorker, clip_files
from motiond.store.clips import ClipIndex, ClipStore
from motiond.store.layout import ClipRecord, Storage
from tests.fixtures.clips import clip, recorded
from tests.fixtures.events import LINKS
from tests.fixtures.servers import require, wait_until


def worker_for(
    store: ClipStore, target: Path, failures: list[dict[str, Any]], **config: Any
) -> DestinationWorker:
    upload = UploadConfig(destinations=(UploadDestination(str(target)),), **config)
    return DestinationWorker(
        upload.destinations[0],
        upload,
        store.storage,
        store,
        on_failed=lambda event: failures.append(event.payload(LINKS)),
    )


def copied(target: Path, record: ClipRecord) -> bool:
    return all((target / f.file).is_file() for f in clip_files(record, with_poster=True))


def test_a_failed_queue_write_is_retried_shown_and_alerted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    require("rclone")
    _storage, store = recorded(tmp_path, [2, 1])
    first, second = sorted(store.index.list(), key=lambda r: r.start_ts)
    target = tmp_path / "usb-disk"
    failures: list[dict[str, Any]] = []
    worker = worker_for(store, target, failures, retry_min=0.2, retry_max=0.5, alert_after=1.0)
    store.index.remove(second.id)  # not there at start: it "finishes" later
    caplog.set_level(logging.INFO, logger="motiond.notify.upload")
    worker.start()
    try:
        wait_until(lambda: copied(target, first), 30, "the first clip copied")
        wait_until(lambda: worker.stats().queued == 0, 10, "the first clip's items done")
        # The queue's folder becomes unusable (a file in its place: as a broken disk would).
        folder = worker.queue.directory
        shutil.rmtree(folder)
        folder.write_text("in the way")
        store.index.add(second)
        worker.submit(clip_files(second, with_poster=True))
        wait_until(lambda: worker.stats().failing_since is not None, 10, "the failure seen")
        stats = worker.stats()
        assert stats.queued == 4 and stats.failures >= 1  # waiting, and visible as such
        wait_until(lambda: len(failures) == 1, 10, "on_upload_failed after alert_after")
        assert "cannot write the upload queue" in failures[0]["error"]
        assert failures[0]["clip_id"] == second.id
        assert worker.stats().failures >= 3  # retried with backoff meanwhile
        assert not copied(target, second)
        # The disk is back: the clip is queued and copied, and the failure is over.
        folder.unlink()
        folder.mkdir()
        wait_until(lambda: copied(target, second), 30, "the second clip copied")
        wait_until(lambda: worker.stats().queued == 0, 10, "the queue empty")
    finally:
        worker.stop(10)
    assert worker.stats().failing_since is None
    marked = store.index.get(second.id)
    assert marked is not None and str(target) in marked.uploaded_remotes()
    assert "the queue is writable again" in caplog.text
    assert len(failures) == 1  # one alert for the streak


def test_queue_items_of_the_wrong_types_are_set_aside_and_the_rest_uploaded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    require("rclone")
    _storage, store = recorded(tmp_path, [1])
    (record,) = store.index.list()
    target = tmp_path / "usb-disk"
    worker = worker_for(store, target, [])
    folder = worker.queue.directory
    folder.mkdir(parents=True)
    good = {"camera": "cam", "kind": "clip", "clip_id": None, "queued_at": 1.0}
    bad = {
        "000000000007.json": {"seq": 7, "file": None},
        "000000000008.json": {**good, "seq": "8", "file": record.file},
        "000000000009.json": {**good, "seq": 9, "file": "../../etc/passwd"},
        "000000000010.json": {**good, "seq": 10, "file": record.file, "attempts": True},
        "000000000011.json": {**good, "seq": 12, "file": record.file},  # not its name
    }
    for name, item in bad.items():
        (folder / name).write_text(json.dumps(item))
    caplog.set_level(logging.WARNING, logger="motiond.notify.upload")
    worker.start()
    try:
        wait_until(lambda: copied(target, record), 30, "the clip copied")
    finally:
        worker.stop(10)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        n.replace(".json", ".corrupt") for n in bad
    )
    set_aside = [r.message for r in caplog.records if "set aside" in r.message]
    assert len(set_aside) == 5
    assert "file: not a valid value: None" in set_aside[0]
    assert "seq: not a valid value: '8'" in set_aside[1]
    marked = store.index.get(record.id)
    assert marked is not None and str(target) in marked.uploaded_remotes()


def test_a_queue_folder_unreadable_at_start_is_retried_and_the_catch_up_goes_on(
    tmp_path: Path,
) -> None:
    require("rclone")
    _storage, store = recorded(tmp_path, [1])
    (record,) = store.index.list()
    target = tmp_path / "usb-disk"
    worker = worker_for(store, target, [], retry_min=0.2, retry_max=0.5)
    folder = worker.queue.directory
    folder.parent.mkdir(parents=True)
    folder.write_text("in the way")  # mkdir of the queue fails: an OSError at start
    worker.start()
    try:
        wait_until(lambda: worker.stats().failures >= 2, 10, "retries")
        assert worker._thread is not None and worker._thread.is_alive()
        assert worker.stats().failing_since is not None
        folder.unlink()
        wait_until(lambda: copied(target, record), 30, "the clip copied")
    finally:
        worker.stop(10)


def test_a_backlog_of_30000_clips_is_noted_not_written_and_goes_out_in_order(
    tmp_path: Path,
) -> None:
    storage = Storage(tmp_path / "data")
    storage.ensure()
    index = ClipIndex(storage)
    records = [
        clip("cam", 0).replace(
            id=f"cam/2026-02-{1 + n // 86400:02d}/{(n % 86400) // 3600:02d}"
            f"{(n % 3600) // 60:02d}{n % 60:02d}Z.mp4",
            start_ts=1_770_000_000.0 + n,
        )
        for n in range(30_000)
    ]
    for record in records:
        index.add(record.replace(file=f"clips/{record.id}"))
    index.finish_loading()
    store = ClipStore(storage, index)
    worker = worker_for(store, tmp_path / "usb-disk", [])
    worker.queue.load()
    assert worker.feeder.catch_up(index.list(), worker.destination.applies_to) == 30_000
    assert worker.stats().queued == 60_000  # a clip and its sidecar each (no snapshots)
    assert worker.feeder.feed() is None
    assert len(list(worker.queue.directory.iterdir())) < 50  # a few clips at a time on disk
    assert worker.stats().queued == 60_000
    head = worker.queue.next()
    assert head is not None and head.clip_id == records[0].id  # oldest first
    # Caught up twice (a restart): nothing is noted again.
    assert worker.feeder.catch_up(index.list(), worker.destination.applies_to) == 0
