"""Off-site copies: the durable queue, retention with uploads pending, and the real daemon
copying clips with Debian's rclone to ``rclone serve sftp`` and ``rclone serve webdav`` on
loopback, through a server outage and a ``kill -9``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from motiond.config import FreeSpace, UploadConfig, UploadDestination
from motiond.detect.motion import Box
from motiond.detect.trigger import ClipStats
from motiond.events import EventBus
from motiond.notify.upload import (
    DestinationWorker,
    FileSpec,
    Uploader,
    UploadQueue,
    clip_files,
    destination_folder,
    remote_path,
    run_rclone,
)
from motiond.record.recorder import ClipRecorder, Still
from motiond.store.clips import ClipIndex, ClipStore
from motiond.store.layout import ClipRecord, Storage
from motiond.store.retention import Limits, Retention, plan_deletions
from testbed.mjpeg_server import MjpegServer
from tests.fixtures.clips import (
    ROOMY,
    Emitted,
    Events,
    camera,
    clip,
    config_for,
    frames_at,
    recorded,
)
from tests.fixtures.daemon import RunningDaemon, sidecars, write_config
from tests.fixtures.events import LINKS
from tests.fixtures.mjpeg import FPS, MotionScene
from tests.fixtures.servers import (
    RcloneServer,
    child_pids,
    rclone_obscure,
    require,
    wait_until,
    write_rclone_config,
)

# -- the queue ---------------------------------------------------------------------------------


X_ID = "cam/2026-01-01/000001Z.mp4"
B_ID = "cam/2026-01-01/000002Z.mp4"


def spec(file: str, kind: str = "clip", clip_id: str | None = X_ID) -> FileSpec:
    return FileSpec(file, "cam", kind, clip_id)


def test_the_queue_survives_a_restart_in_order_with_posters_first(tmp_path: Path) -> None:
    queue = UploadQueue(tmp_path / "q")
    assert queue.load() == 0
    clip_item = queue.add(spec("clips/cam/2026-01-01/000001Z.mp4"), now=100.0)
    sidecar = queue.add(spec("clips/cam/2026-01-01/000001Z.json", "sidecar"), now=100.0)
    poster = queue.add(spec("warn/cam/2026-01-01/000002Z-start.jpg", "poster", B_ID), now=101.0)
    # A half-written item (the process died before its rename) and a corrupt one.
    (tmp_path / "q" / ".000000000009.json.tmp").write_text('{"seq": 9')
    (tmp_path / "q" / "000000000008.json").write_text("not json")

    reloaded = UploadQueue(tmp_path / "q")
    assert reloaded.load() == 3
    assert reloaded.next() == poster  # posters first, then oldest first
    reloaded.remove(poster)
    assert reloaded.next() == clip_item
    clip_item.attempts, clip_item.failing_since = 3, 105.0
    reloaded.update(clip_item)
    assert reloaded.has_sidecar_for(X_ID) and not reloaded.has_sidecar_for(B_ID)
    assert reloaded.counts(now=110.0) == (2, 10.0)

    again = UploadQueue(tmp_path / "q")
    assert again.load() == 2
    assert again.next() == clip_item and again.next().attempts == 3  # type: ignore[union-attr]
    assert sorted(p.name for p in (tmp_path / "q").iterdir()) == [
        "000000000001.json",
        "000000000002.json",
        "000000000008.corrupt",
    ]
    # New items go after every queued one.
    assert again.add(spec("clips/cam/2026-01-01/000003Z.mp4"), now=120.0).seq == 3
    assert sidecar.seq == 2


def test_remote_paths_folders_and_the_files_of_a_clip() -> None:
    assert remote_path("b2:bucket/motiond", "clips/a.mp4") == "b2:bucket/motiond/clips/a.mp4"
    assert remote_path("nas:", "clips/a.mp4") == "nas:clips/a.mp4"
    assert remote_path("/mnt/usb/", "clips/a.mp4") == "/mnt/usb/clips/a.mp4"
    assert destination_folder("b2:my-bucket/motiond").startswith("b2_my-bucket_motiond-")
    assert destination_folder("a:x") != destination_folder("a_x")
    record = clip("door", 1).replace(
        id="door/2026-01-01/120000Z.mp4",
        file="clips/door/2026-01-01/120000Z.mp4",
        poster="warn/door/2026-01-01/120000Z-start.jpg",
        snapshots=(
            "warn/door/2026-01-01/120000Z-start.jpg",
            "warn/door/2026-01-01/120000Z-peak.jpg",
        ),
    )
    assert [(f.kind, f.file) for f in clip_files(record, with_poster=True)] == [
        ("poster", "warn/door/2026-01-01/120000Z-start.jpg"),
        ("clip", "clips/door/2026-01-01/120000Z.mp4"),
        ("snapshot", "warn/door/2026-01-01/120000Z-peak.jpg"),
        ("sidecar", "clips/door/2026-01-01/120000Z.json"),
    ]
    assert [f.kind for f in clip_files(record, with_poster=False)] == [
        "clip",
        "snapshot",
        "sidecar",
    ]


# -- retention ---------------------------------------------------------------------------------


def test_clips_awaiting_upload_are_spared_except_when_space_runs_out() -> None:
    oldest, old, new = clips = [clip("a", 40), clip("a", 35), clip("a", 1)]
    awaiting = frozenset({oldest.id})
    plan = plan_deletions(
        clips, [], now=new.start_ts + 86400, usage=ROOMY,
        limits=Limits(max_age=30 * 86400.0, max_bytes=20_000_000), headroom=0,
        awaiting_upload=awaiting,
    )  # fmt: skip
    assert [(r.id, why) for r, why in plan.clips] == [(old.id, "max_age")]
    short = plan_deletions(
        clips, [], now=new.start_ts, usage=ROOMY,
        limits=Limits(min_free=FreeSpace(size=ROOMY.free + 5_000_000)), headroom=0,
        awaiting_upload=awaiting,
    )  # fmt: skip
    assert [(r.id, why) for r, why in short.clips] == [(oldest.id, "min_free")]


def test_retention_keeps_a_clip_until_it_is_uploaded_and_says_what_space_cost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage, store = recorded(tmp_path, [40, 2])
    old, new = sorted(store.index.list(), key=lambda r: r.start_ts)
    uploader = Uploader(
        UploadConfig(destinations=(UploadDestination("nas:cams"),)),
        storage,
        store,
        on_failed=lambda event: None,
    )
    retention = Retention(config_for(storage.root, "max_age: 30d, min_free: 0"), store, Emitted())
    retention.pending_uploads = uploader.pending_remotes
    retention.run("test")
    assert store.index.get(old.id) is not None  # not copied yet: kept past max_age
    assert uploader.pending_remotes(old) == ["nas:cams"]
    marked = store.mark_uploaded(old.id, "nas:cams", lambda r: f"nas:cams/{r.file}")
    assert marked is not None and uploader.pending_remotes(marked) == []
    assert store.index.get(old.id) == marked
    retention.run("test")
    assert store.index.get(old.id) is None  # copied: now it goes

    # Out of space: a clip not yet copied goes anyway, and the log says what was lost.
    caplog.set_level(logging.WARNING)
    retention = Retention(config_for(storage.root, "max_age: 0, min_free: 50%"), store, Emitted())
    retention.pending_uploads = uploader.pending_remotes
    retention.run("test")
    assert store.index.get(new.id) is None
    assert f"{new.id} was deleted before it was copied to nas:cams" in caplog.text


def test_a_copy_is_recorded_once_per_destination_and_survives_a_keep_from_an_older_copy(
    tmp_path: Path,
) -> None:
    storage, store = recorded(tmp_path, [1])
    (record,) = store.index.list()
    store.mark_uploaded(record.id, "nas:cams", lambda r: f"nas:cams/{r.file}")
    store.mark_uploaded(record.id, "dav:", lambda r: f"dav:{r.file}")
    again = store.mark_uploaded(record.id, "nas:cams", lambda r: f"nas:cams/v2/{r.file}")
    assert again is not None
    assert [(u.remote, u.path) for u in again.uploads] == [
        ("dav:", f"dav:{record.file}"),
        ("nas:cams", f"nas:cams/v2/{record.file}"),
    ]
    # The web side marks "keep" on the record it read before the copies were confirmed.
    kept = store.set_keep(record, True)
    assert kept.keep and kept.uploads == again.uploads
    on_disk = json.loads((storage.root / record.file).with_suffix(".json").read_text())
    assert on_disk["keep"] is True and len(on_disk["uploads"]) == 2
    store.delete(kept)
    assert store.mark_uploaded(record.id, "dav:", lambda r: "x") is None
    assert not (storage.root / record.file).with_suffix(".json").exists()


# -- one destination, with rclone, without the daemon -------------------------------------------


def worker_for(
    tmp_path: Path, remote: str, store: ClipStore, failures: list[dict[str, Any]], **config: Any
) -> DestinationWorker:
    upload = UploadConfig(destinations=(UploadDestination(remote),), **config)
    return DestinationWorker(
        upload.destinations[0],
        upload,
        store.storage,
        store,
        on_failed=lambda event: failures.append({"camera": event.camera, **event.payload(LINKS)}),
    )


def test_a_worker_copies_with_rclone_and_records_the_copy_in_the_sidecar(tmp_path: Path) -> None:
    require("rclone")
    storage, store = recorded(tmp_path, [1])
    (record,) = store.index.list()
    target = tmp_path / "usb-disk"  # rclone's local backend: a mounted disk as destination
    worker = worker_for(tmp_path, str(target), store, [])
    worker.start()
    try:
        wait_until(lambda: worker.stats().uploaded == 4, 30, "poster, clip, peak and sidecar")
    finally:
        worker.stop(10)
    for relative in [record.file, *record.snapshots]:
        assert (target / relative).read_bytes() == (storage.root / relative).read_bytes()
    marked = store.index.get(record.id)
    assert marked is not None
    (upload,) = marked.uploads
    assert upload.remote == str(target) and upload.path == f"{target}/{record.file}"
    on_disk = json.loads((storage.root / record.file).with_suffix(".json").read_text())
    assert on_disk["uploads"] == [upload.to_json()]
    assert ClipRecord.from_json(on_disk) == marked
    copied = json.loads((target / record.file).with_suffix(".json").read_text())
    assert copied == {k: v for k, v in on_disk.items() if k != "uploads"}
    assert worker.stats().queued == 0


def record_events(storage: Storage, wall0: float, split: bool) -> Events:
    """The recorder's events for one clip; ``split``: a clip split off a longer one (no
    start snapshot, so its poster is its peak snapshot)."""
    events = Events()
    recorder = ClipRecorder(camera(), storage, events, nominal_fps=10)
    recorder.start()
    frames = frames_at([i / 10 for i in range(12)], wall0)
    recorder.begin_clip(frames[:2], None if split else Still(frames[1], (Box(10, 50, 24, 24),)))
    for frame in frames[2:]:
        recorder.add_frame(frame)
    stats = ClipStats(started_at=0.1, frames=11, changed_frames=11, peak_delta=0.05, peak_at=0.5)
    recorder.end_clip(True, stats, Still(frames[5], (Box(30, 50, 24, 24),)), Box(10, 50, 60, 24))
    assert events.ended.wait(30)
    assert recorder.stop(10)
    return events


def test_the_poster_goes_at_the_start_and_a_split_clips_peak_at_its_end(tmp_path: Path) -> None:
    require("rclone")
    storage = Storage(tmp_path / "data")
    storage.ensure()
    whole = record_events(storage, 1_800_000_000.0, split=False)
    split = record_events(storage, 1_800_000_100.0, split=True)
    target = tmp_path / "usb-disk"
    uploader = Uploader(
        UploadConfig(destinations=(UploadDestination(str(target)),)),
        storage,
        ClipStore(storage, ClipIndex(storage)),  # empty: nothing to catch up on at start
        on_failed=lambda event: None,
    )
    bus = EventBus()
    uploader.subscribe(bus)
    for event in [*whole.published, *split.published]:
        bus.publish(event)
    (worker,) = uploader.workers
    uploader.start()
    try:
        wait_until(lambda: worker.stats().queued == 0 and worker.stats().uploaded > 0, 30, "copies")
    finally:
        uploader.stop(10)
    ends = [payload for event, payload in [*whole.items, *split.items] if event == "clip_end"]
    expected = {
        relative
        for record in ends
        for relative in [record["file"], *record["snapshots"], sidecar_of(record)]
    }
    copied = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
    assert copied == expected
    assert any(f.endswith("-start.jpg") for f in copied)  # the whole clip's poster
    assert [Path(s).name.split("-")[-1] for s in ends[1]["snapshots"]] == ["peak.jpg"]
    # Each file once (the whole clip's poster at its start only), none failed.
    assert worker.stats().uploaded == len(expected) and worker.stats().failures == 0


def test_a_failing_destination_retries_with_backoff_and_alerts_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _storage, store = recorded(tmp_path, [1])
    dead = RcloneServer(tmp_path, "webdav", "dead")  # never started: connections are refused
    config = write_rclone_config(tmp_path / "rclone.conf", dead)
    failures: list[dict[str, Any]] = []
    worker = worker_for(
        tmp_path, "dead:cams", store, failures,
        rclone_config=config, retry_min=0.2, retry_max=0.5, alert_after=1.5,
    )  # fmt: skip
    caplog.set_level(logging.DEBUG, logger="motiond.notify.upload")
    worker.start()
    try:
        wait_until(lambda: worker.stats().failures >= 6, 30, "six attempts")
        wait_until(lambda: len(failures) == 1, 10, "the alert")
        time.sleep(1)
    finally:
        worker.stop(10)
    (alert,) = failures  # once, for the item at the head of the queue
    assert alert["camera"] == "cam" and alert["kind"] == "poster" and alert["remote"] == "dead:cams"
    assert "connection refused" in alert["error"] and alert["attempts"] >= 3
    first_failures = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(first_failures) == 1 and "retrying with backoff" in first_failures[0].message
    stats = worker.stats()
    assert stats.queued == 4 and stats.uploaded == 0 and stats.failing_since is not None
    # The attempts are on disk: a restart goes on counting, and does not alert again.
    reloaded = UploadQueue(worker.queue.directory)
    reloaded.load()
    head = reloaded.next()
    assert head is not None and head.attempts >= 6 and head.alerted


# -- the daemon end to end ---------------------------------------------------------------------


class UploadRig:
    """The daemon watching a camera with switchable motion, copying to rclone servers."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.scene = MotionScene()
        self.camera = MjpegServer(self.scene, FPS)
        self.camera.start()
        self.servers: list[RcloneServer] = []
        self.daemon: RunningDaemon | None = None

    def server(self, kind: str, name: str) -> RcloneServer:
        server = RcloneServer(self.tmp, kind, name)
        server.start()
        self.servers.append(server)
        return server

    def start_daemon(
        self, upload: dict[str, Any], hooks: dict[str, Any] | None = None
    ) -> RunningDaemon:
        config = write_rclone_config(self.tmp / "rclone.conf", *self.servers)
        self.daemon = RunningDaemon(
            self.tmp,
            {
                "hooks": hooks or {},
                "upload": {
                    "rclone_config": str(config),
                    "retry_min": "0.5s",
                    "retry_max": "4s",
                    **upload,
                },
                "cameras": [
                    {
                        "name": "door",
                        "source": self.camera.url,
                        "capture": {"fps": FPS, "read_timeout": "1s", "open_timeout": "1s"},
                        "motion": {"warmup": "0.5s", "stable_frames": 8},
                        "record": {"pre_roll": "0.5s"},
                    }
                ],
            },
        )
        self.daemon.start()
        return self.daemon

    def record_clip(self, seconds: float = 2.0) -> None:
        daemon = self.daemon
        assert daemon is not None
        count = daemon.json("/api/clips")["total"]
        self.scene.moving = True
        daemon.wait_for(lambda: daemon.camera("door")["recording"], 15, "a clip to start")
        time.sleep(seconds)
        self.scene.moving = False
        daemon.wait_for(
            lambda: daemon.json("/api/clips")["total"] == count + 1, 20, "the clip to end"
        )

    def metric(self, name: str, remote: str) -> float:
        assert self.daemon is not None
        _, body = self.daemon.get("/metrics")
        prefix = f'motiond_{name}{{remote="{remote}"}} '
        for line in body.decode().splitlines():
            if line.startswith(prefix):
                return float(line[len(prefix) :])
        raise AssertionError(f"no {prefix!r} in /metrics")

    def close(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
        for server in self.servers:
            server.stop()
        self.camera.stop()


@pytest.fixture
def upload_rig(tmp_path: Path) -> Any:
    require("rclone")
    rig = UploadRig(tmp_path)
    try:
        yield rig
    finally:
        rig.close()


def expected_files(storage: Path, records: list[dict[str, Any]]) -> dict[str, bytes]:
    """The files a destination must hold: clip, poster, peak snapshot and sidecar."""
    files: dict[str, bytes] = {}
    for record in records:
        for relative in [record["file"], *record["snapshots"], sidecar_of(record)]:
            files[relative] = (storage / relative).read_bytes()
    return files


def sidecar_of(record: dict[str, Any]) -> str:
    return str(Path(record["file"]).with_suffix(".json"))


def assert_copied_under(
    server: RcloneServer, prefix: str, storage: Path, records: list[dict[str, Any]]
) -> None:
    """Every file byte-identical; a sidecar as it was when it was copied: the same but for
    the copies made after it (``uploads``, which the local sidecar gains afterwards)."""
    on_server = {k.removeprefix(prefix): v for k, v in server.files().items()}
    expected = expected_files(storage, records)
    assert set(on_server) == set(expected), (sorted(on_server), sorted(expected))
    for relative, data in expected.items():
        if not relative.endswith(".json"):
            assert on_server[relative] == data, f"{relative} differs on {server.name}"
            continue
        local, copied = json.loads(data), json.loads(on_server[relative])
        earlier, made = copied.pop("uploads", []), local.pop("uploads")
        assert all(u in made for u in earlier)
        assert copied == local, relative


@pytest.mark.slow
def test_clips_arrive_byte_identical_over_sftp_and_webdav(upload_rig: UploadRig) -> None:
    sftp = upload_rig.server("sftp", "nas")
    webdav = upload_rig.server("webdav", "dav")
    daemon = upload_rig.start_daemon(
        {
            "destinations": [
                {"remote": "nas:volume1/cameras"},
                {"remote": "dav:", "cameras": ["door"], "bwlimit": "10M"},
            ]
        }
    )
    # The poster leaves while the clip is still being recorded.
    upload_rig.scene.moving = True
    daemon.wait_for(lambda: daemon.camera("door")["recording"], 15, "a clip to start")
    wait_until(lambda: any(p.endswith("-start.jpg") for p in webdav.files()), 10, "the poster")
    wait_until(lambda: any(p.endswith("-start.jpg") for p in sftp.files()), 10, "the poster")
    assert daemon.camera("door")["recording"] is True
    time.sleep(1.5)
    upload_rig.scene.moving = False
    daemon.wait_for(lambda: daemon.json("/api/clips")["total"] == 1, 20, "the clip")
    upload_rig.record_clip()

    def all_copied() -> bool:
        clips = daemon.json("/api/clips")["clips"]
        return all(len(c.get("uploads", [])) == 2 for c in clips)

    daemon.wait_for(all_copied, 30, "both clips copied to both destinations")
    clips = daemon.json("/api/clips")["clips"]
    one = daemon.json(f"/api/clips/{clips[0]['id']}")
    assert {u["remote"] for u in one["uploads"]} == {"nas:volume1/cameras", "dav:"}
    paths = {u["remote"]: u["path"] for u in one["uploads"]}
    assert paths["dav:"] == f"dav:{one['file']}"
    assert paths["nas:volume1/cameras"] == f"nas:volume1/cameras/{one['file']}"
    for upload in one["uploads"]:
        assert upload["time"][:4].isdigit()

    assert daemon.stop() == 0
    records = sidecars(daemon.storage)
    assert len(records) == 2
    for record in records:
        assert len(record["uploads"]) == 2  # type: ignore[arg-type]
    assert_copied_under(webdav, "", daemon.storage, records)  # type: ignore[arg-type]
    assert_copied_under(sftp, "volume1/cameras/", daemon.storage, records)  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_server_down_for_a_minute_then_back_loses_and_duplicates_nothing(
    upload_rig: UploadRig,
) -> None:
    webdav = upload_rig.server("webdav", "dav")
    alerts = upload_rig.tmp / "alerts.txt"
    script = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + chr(10))"
    daemon = upload_rig.start_daemon(
        {"destinations": [{"remote": "dav:cams"}], "alert_after": "20s"},
        hooks={
            "on_upload_failed": {
                "command": [sys.executable, "-c", script, str(alerts), "{remote} {kind}"]
            }
        },
    )
    upload_rig.record_clip()
    daemon.wait_for(
        lambda: upload_rig.metric("uploads_total", "dav:cams") == 4, 20, "the first clip copied"
    )
    webdav.stop()
    down_at = time.monotonic()
    upload_rig.record_clip()
    upload_rig.record_clip()
    daemon.wait_for(
        lambda: upload_rig.metric("upload_queue_files", "dav:cams") == 8, 20, "8 files queued"
    )
    assert upload_rig.metric("upload_failures_total", "dav:cams") >= 1
    _, body = daemon.get("/healthz")
    (state,) = json.loads(body)["uploads"]
    assert state["remote"] == "dav:cams" and state["queued"] == 8 and state["failing_since"]
    daemon.wait_for(alerts.exists, 40, "the on_upload_failed hook")
    time.sleep(max(0.0, 60 - (time.monotonic() - down_at)))
    assert upload_rig.metric("upload_oldest_age_seconds", "dav:cams") > 30
    webdav.start()  # the same port and folder
    daemon.wait_for(
        lambda: upload_rig.metric("upload_queue_files", "dav:cams") == 0, 30, "the queue drained"
    )
    assert upload_rig.metric("uploads_total", "dav:cams") == 12
    assert alerts.read_text().splitlines() == ["dav:cams poster"]  # once for the outage
    assert "working again after" in daemon.log()
    assert daemon.stop() == 0

    records = sidecars(daemon.storage)
    assert len(records) == 3 and all(len(r["uploads"]) == 1 for r in records)  # type: ignore[arg-type]
    assert_copied_under(webdav, "cams/", daemon.storage, records)
    # Each file was sent once: one PUT per path in the server's log.
    puts = Counter(re.findall(r"INFO  : /(\S+): PUT from", webdav.log()))
    assert puts and set(puts.values()) == {1}, puts
    assert len(puts) == 12


@pytest.mark.slow
def test_kill_9_during_an_upload_then_the_queue_resumes_and_finishes(
    upload_rig: UploadRig,
) -> None:
    sftp = upload_rig.server("sftp", "nas")
    daemon = upload_rig.start_daemon({"destinations": [{"remote": "nas:cams", "bwlimit": "4k"}]})
    upload_rig.record_clip(seconds=4)
    (record,) = daemon.json("/api/clips")["clips"]
    assert record["size"] > 16_000  # four seconds or more at 4 KiB/s
    assert daemon.process is not None
    pid = daemon.process.pid

    def copying_the_clip() -> list[int]:
        return [c for c in child_pids(pid) if record["file"] in cmdline(c)]

    daemon.wait_for(lambda: bool(copying_the_clip()), 20, "rclone copying the clip")
    time.sleep(1)
    # A power cut: motiond and its rclone die at once.
    (rclone_pid,) = copying_the_clip()
    os.kill(pid, signal.SIGKILL)
    os.kill(rclone_pid, signal.SIGKILL)
    daemon.process.wait()
    wait_until(lambda: not os.path.exists(f"/proc/{rclone_pid}"), 5, "rclone gone")
    partial = sftp.files().get(f"cams/{record['file']}", b"")
    assert len(partial) < record["size"]  # it was cut off in the middle

    # Restarted (now without the bandwidth limit): the queue resumes where it was.
    write_config(daemon.config_path, without_bwlimit(daemon.config_path))
    daemon.start()
    wait_until(lambda: "queued from earlier runs" in daemon.log(), 20, "the queue loaded")
    assert re.search(
        r"upload to nas:cams: [1-9]\d* file\(s\) queued from earlier runs", daemon.log()
    )
    daemon.wait_for(
        lambda: bool(daemon.json(f"/api/clips/{record['id']}").get("uploads")), 30, "the copy"
    )
    assert daemon.stop() == 0
    assert_copied_under(sftp, "cams/", daemon.storage, sidecars(daemon.storage))  # type: ignore[arg-type]
    assert not list((daemon.storage / "uploads").rglob("*.json"))


def without_bwlimit(path: Path) -> dict[str, Any]:
    import yaml

    config: dict[str, Any] = yaml.safe_load(path.read_text())
    for destination in config["upload"]["destinations"]:
        destination.pop("bwlimit", None)
    return config


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def test_rclone_is_killed_after_its_timeout_and_at_shutdown(tmp_path: Path) -> None:
    """A server that accepts the connection and never answers: the copy is bounded."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    port = silent.getsockname()[1]
    config = tmp_path / "rclone.conf"
    config.write_text(
        f"[mute]\ntype = sftp\nhost = 127.0.0.1\nport = {port}\nuser = x\n"
        f"pass = {rclone_obscure('x')}\n"
    )
    (tmp_path / "f.bin").write_bytes(b"x" * 1000)
    command = [
        require("rclone"), "copyto", f"--config={config}", "--",
        str(tmp_path / "f.bin"), "mute:f.bin",
    ]  # fmt: skip
    try:
        started = time.monotonic()
        assert run_rclone(command, 1.0, threading.Event()) == (False, "timed out after 1s")
        stop = threading.Event()
        threading.Timer(0.5, stop.set).start()
        ok, reason = run_rclone(command, 60.0, stop)
        assert not ok and reason.startswith("stopped")
        assert time.monotonic() - started < 30
    finally:
        silent.close()
