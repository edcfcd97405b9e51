"""On-demand snapshots cannot fill the disk: a rate per camera, and they go first when space
is short (the web app with a demo camera; the real daemon on a small tmpfs)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from motiond.config import RecordConfig
from motiond.record.snapshots import SnapshotRate
from motiond.store.layout import Storage
from tests.fixtures.clips import record_one_clip
from tests.fixtures.daemon import RunningDaemon, sidecars
from tests.fixtures.video import write_test_video
from tests.fixtures.web import WebTestCase


def test_the_rate_is_a_sliding_minute_per_camera() -> None:
    rate = SnapshotRate(3)
    assert [rate.take("a", t) for t in (0.0, 1.0, 2.0)] == [0.0, 0.0, 0.0]
    assert rate.take("a", 3.0) == pytest.approx(57.0)  # the first one leaves the window at 60
    assert rate.take("b", 3.0) == 0.0  # another camera has its own
    rate.give_back("a", 2.0)  # a snapshot that failed does not count
    assert rate.take("a", 4.0) == 0.0
    assert rate.take("a", 60.5) == 0.0  # 0.0 has left the window


class TestThreeHundredSnapshots(WebTestCase):
    def test_300_snapshot_posts_write_ten_files_and_answer_429(self) -> None:
        self.wait_online()
        codes = []
        retry_after = set()
        for _ in range(300):
            response = self.api("POST", "/api/cameras/cam/snapshot")
            codes.append(response.code)
            if response.code == 429:
                retry_after.add(response.headers["Retry-After"])
                assert "too many snapshots" in json.loads(response.body)["error"]
        assert codes.count(201) == 10 and codes.count(429) == 290, codes
        assert retry_after and all(1 <= int(s) <= 60 for s in retry_after)
        files = list((self.tmp / "data" / "snapshots" / "cam").rglob("*.jpg"))
        assert len(files) == 10 and all(f.stat().st_size > 0 for f in files)
        listed = json.loads(self.api("GET", "/api/snapshots?kind=snapshot&limit=500").body)
        assert listed["total"] == 10
        assert {s["url"].rsplit("/", 1)[1] for s in listed["snapshots"]} == {f.name for f in files}


# -- a full small filesystem -------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill up needs root")
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_a_full_disk_deletes_snapshots_oldest_first_and_keeps_every_clip(
    tmp_path: Path, small_disk: Path
) -> None:
    storage = Storage(small_disk / "data")
    for age in (7200.0, 3600.0):
        record_one_clip(small_disk, RecordConfig(), wall0=time.time() - age)
    clips_before = {str(r["id"]) for r in sidecars(storage.root)}
    assert len(clips_before) == 2
    # 60 on-demand snapshots of 25 kB, one a minute over the last hour, and a filler: about
    # 1 MB free where min_free wants 2 MB.
    snapshots = []
    for n in range(60):
        path = storage.reserve_snapshot("cam", time.time() - 3600 + 60 * n)
        path.write_bytes(os.urandom(25_000))
        snapshots.append(path)
    (small_disk / "filler").write_bytes(b"\0" * 1_300_000)
    video = write_test_video(tmp_path / "scene.avi", seconds=6, fps=10, moving=[(1, 4)])
    daemon = RunningDaemon(
        tmp_path,
        {
            "storage": {"dir": str(storage.root), "min_free": "2MB"},
            "cameras": [
                {
                    "name": "cam",
                    "source": str(video.path),
                    "capture": {"loop": True},
                    "motion": {"masks": [video.code_mask], "warmup": "0s"},
                    "record": {"max_clip": "5s", "pre_roll": "1s"},
                }
            ],
        },
    )
    daemon.start()
    try:
        daemon.wait_for(lambda: "(min_free)" in daemon.log(), 30, "retention for min_free")
        daemon.wait_for(lambda: "clip kept" in daemon.log(), 40, "a new clip")
        status, body = daemon.get("/healthz")
        assert status == 200, body
    finally:
        assert daemon.stop() == 0, daemon.log()
    log = daemon.log()
    assert "storage full" not in log
    left = [p for p in snapshots if p.exists()]
    deleted = [p for p in snapshots if not p.exists()]
    assert deleted and left  # some went, not all were needed
    assert deleted == snapshots[: len(deleted)]  # the oldest ones, and only those
    deleted_lines = [line for line in log.splitlines() if "retention: deleted" in line]
    assert all("snapshots/cam/" in line for line in deleted_lines), deleted_lines
    assert clips_before <= {str(r["id"]) for r in sidecars(storage.root)}  # every clip stays


class TestListingsOffTheFilePool(WebTestCase):
    def test_snapshot_listings_answer_while_the_file_pool_is_busy(self) -> None:
        """Listings come from the index on the loop: a file pool busy with slow work (or, before,
        with listings walking the tree) cannot hold them up, nor they the pool."""
        assert self.daemon.web_app is not None
        pool = self.daemon.web_app.context.io_executor
        release = threading.Event()
        busy = [pool.submit(release.wait, 30) for _ in range(2)]  # both web-io workers
        try:
            for _ in range(6):
                response = self.fetch("/api/snapshots?limit=5", request_timeout=5)
                assert response.code == 200
                assert json.loads(response.body)["total"] == 6  # the seed clips' warn snapshots
        finally:
            release.set()
        assert all(job.result(5) for job in busy)
