"""A disk that fills up: the real daemon on a small tmpfs, recording continuous motion."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from motiond.config import RecordConfig
from motiond.detect.trigger import ClipStats
from motiond.frames import Frame
from motiond.record.recorder import ClipRecorder, Still
from motiond.store.layout import Storage
from testbed.synthetic import background, with_noise
from tests.fixtures.clips import Events, camera, record_one_clip
from tests.fixtures.coded import camera_packet_frames
from tests.fixtures.daemon import clean_env, motiond_command, sidecars, write_config
from tests.fixtures.video import decode_clip, write_test_video

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="mounting a small tmpfs to fill up needs root"
)

# Appends its last argument as a line to the file named by its first.
HOOK_SCRIPT = "import sys; open(sys.argv[1], 'a').write(sys.argv[-1] + '\\n')"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted in the test's own directory, unmounted afterwards."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


class RunningDaemon:
    """``motiond run`` in the background, its log in a file, its web port read from the log."""

    def __init__(self, config: Path, cwd: Path) -> None:
        self.log_path = cwd / "motiond.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            motiond_command("run", "-c", str(config)), cwd=cwd, stderr=self._log, env=clean_env()
        )
        match = self.wait_for(r"web: listening on http://127\.0\.0\.1:(\d+)/")
        self.base = f"http://127.0.0.1:{match.group(1)}"

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 40) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            matches = list(re.finditer(pattern, self.log))
            if len(matches) >= count:
                return matches[count - 1]
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{count} x {pattern!r} not in the log:\n{self.log}")
            time.sleep(0.2)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def stop(self) -> int:
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._log.close()


def daemon_config(tmp_path: Path, storage: Path, **storage_keys: object) -> Path:
    # Noisy 800x600 at 15 fps and crf 0 is about 640 kB/s, 3.2 MB per 5 s clip: more than the
    # 2 MB disk holds, so every clip meets a full disk after about 3 s.
    video = write_test_video(
        tmp_path / "scene.avi", seconds=10, fps=15, moving=[(0, 10)], width=800, height=600
    )
    hook = [sys.executable, "-c", HOOK_SCRIPT, str(tmp_path / "hooks.log")]
    return write_config(
        tmp_path / "motiond.yaml",
        {
            "storage": {"dir": str(storage), "min_free": "200kB", **storage_keys},
            "web": {"port": 0},
            "hooks": {"on_storage_error": {"command": [*hook, "storage_error {error}"]}},
            "cameras": [
                {
                    "name": "cam",
                    "source": str(video.path),
                    "capture": {"loop": True},
                    "motion": {"masks": [video.code_mask], "warmup": "0s"},
                    "record": {"max_clip": "5s", "crf": 0, "pre_roll": "1s"},
                }
            ],
        },
    )


def check_files(storage: Path) -> list[dict[str, object]]:
    """No empty file, no partial, every sidecar with its clip and back, every clip decodes."""
    files = [p for p in storage.rglob("*") if p.is_file()]
    assert all(p.stat().st_size > 0 for p in files), [p for p in files if not p.stat().st_size]
    assert not list(storage.glob("clips/*/*/*.partial.*"))
    clips = {p.with_suffix("") for p in storage.glob("clips/*/*/*.mp4")}
    assert clips == {p.with_suffix("") for p in storage.glob("clips/*/*/*.json")}
    records = sidecars(storage)
    for record in records:
        _, frames, _ = decode_clip(storage / str(record["file"]))
        assert len(frames) == record["frames"], record
    return records


def test_a_disk_that_fills_mid_clip(tmp_path: Path, small_disk: Path) -> None:
    daemon = RunningDaemon(daemon_config(tmp_path, small_disk / "data"), tmp_path)
    health: list[int] = []
    try:
        # /healthz is 503 until the camera delivers frames: the web side listens first (one CI
        # run asked in between). From then on it must stay 200, through the full disk.
        daemon.wait_for(r"camera cam: online")
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            health.append(daemon.get("/healthz")[0])
            log = daemon.log
            full_at = log.find("disk full writing")
            after = log[full_at:] if full_at >= 0 else ""
            if after.count("clip kept") >= 3 and after.count("retention: deleted") >= 2:
                break
            time.sleep(0.5)
    finally:
        code = daemon.stop()
    log = daemon.log
    assert code == 0, log
    assert "Traceback" not in log, log
    # One clear line per clip cut short, retention freed space, and clips went on afterwards.
    cut_short = log.count("disk full writing")
    assert cut_short >= 1, log
    assert log[log.find("disk full writing") :].count("clip kept") >= 3, log
    assert re.search(r"retention: deleted cam/\S+\.mp4 \(min_free\)", log), log
    assert "storage full" not in log, log  # there were always unkept clips to delete
    # The web side answered throughout (the camera stayed online: 200).
    assert health and set(health) == {200}, health
    # What is left is consistent, and every clip kept is either still there (and decodes) or
    # was deleted by retention. On this 2 MB disk, min_free plus room for one more clip leaves
    # less than one clip, so retention may rightly have deleted even the newest by now.
    remaining = {str(r["id"]) for r in check_files(small_disk / "data")}
    kept = set(re.findall(r"clip kept (cam/\S+\.mp4)", log))
    deleted = set(re.findall(r"retention: deleted (cam/\S+\.mp4)", log))
    assert kept and kept <= remaining | deleted, (kept, remaining, deleted)


def test_the_recorder_keeps_what_fit_before_the_disk_filled(small_disk: Path) -> None:
    storage = Storage(small_disk / "data")
    storage.ensure()
    events = Events()
    asked: list[str] = []

    def make_room(reason: str) -> bool:
        asked.append(reason)
        return True

    recorder = ClipRecorder(
        camera(RecordConfig(crf=0)), storage, events, nominal_fps=10, make_room=make_room
    )
    recorder.start()
    # About 45 kB a frame: the 2 MB disk fills after some 45 frames, mid-fragment.
    rng = np.random.default_rng(3)
    scene = cv2.resize(background(), (800, 600))
    frames = [
        Frame.from_image(i, i / 10, 1_800_000_000.0 + i / 10, with_noise(scene, rng, 1.0))
        for i in range(100)
    ]
    recorder.begin_clip(frames[:1], Still(frames[0], ()))
    for frame in frames[1:]:
        recorder.add_frame(frame)
    stats = ClipStats(started_at=0.0, frames=100, changed_frames=100, peak_delta=0.1)
    recorder.end_clip(True, stats, Still(frames[50], ()), None)
    assert events.ended.wait(30)
    assert recorder.stop(10)

    assert [e for e, _ in events.items] == ["clip_start", "storage_error", "clip_end"]
    assert "No space left" in str(events.items[1][1]["error"])
    # Before the clip, when the disk filled, and once the cut clip was in the index.
    assert [r.split(" ", 2)[-1] for r in asked] == [
        "starting a clip",
        "disk full",
        "clip cut short by a full disk",
    ]
    (record,) = check_files(storage.root)
    assert 10 <= int(record["frames"]) < 90, record  # type: ignore[call-overload]
    assert record["dropped_frames"] == 100 - record["frames"]
    assert record["duration"] == pytest.approx(int(record["frames"]) / 10, abs=0.01)  # type: ignore[call-overload]
    assert "No space left" in str(record["error"])


def test_only_kept_clips_and_a_full_disk_stop_recording_loudly(
    tmp_path: Path, small_disk: Path
) -> None:
    storage = small_disk / "data"
    for age in (120.0, 60.0):
        record_one_clip(small_disk, RecordConfig(), wall0=time.time() - age)
    for sidecar in storage.glob("clips/*/*/*.json"):
        record = json.loads(sidecar.read_text())
        sidecar.write_text(json.dumps({**record, "keep": True}))
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * 1_600_000)
    daemon = RunningDaemon(daemon_config(tmp_path, storage, min_free="1MB"), tmp_path)
    try:
        daemon.wait_for(r"storage full: .* only 2 kept clip\(s\) left")
        status, body = daemon.get("/healthz")
        assert status == 503, body
        health = json.loads(body)
        assert health["storage_full"] is True and "storage full" in health["reason"]
        assert "motiond_storage_full 1\n" in daemon.get("/metrics")[1]
        daemon.wait_for("camera cam: storage full: not recording this clip")
        deadline = time.monotonic() + 10
        hooks = tmp_path / "hooks.log"
        while not hooks.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "storage_error storage full" in hooks.read_text()
        # Space comes back: the next clip records.
        filler.unlink()
        daemon.wait_for("camera cam: recording again")
        # Healthy again (each clip fills this 2 MB disk anew after about 3 s, so a later
        # retention run may find it full once more: healthy at some moment is what is asked).
        deadline = time.monotonic() + 20
        while True:
            status, body = daemon.get("/healthz")
            metrics = daemon.get("/metrics")[1]
            if status == 200 and "motiond_storage_full 0\n" in metrics:
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.1)
        daemon.wait_for("clip kept", timeout=20)
    finally:
        code = daemon.stop()
    assert code == 0, daemon.log
    records = check_files(storage)
    assert sum(bool(r["keep"]) for r in records) == 2  # the kept clips are all still there


def test_a_disk_that_fills_mid_copied_clip_keeps_it_to_its_last_fragment(
    tmp_path: Path, small_disk: Path
) -> None:
    from testbed.camera_video import ffmpeg_unavailable, write_camera_video

    if why := ffmpeg_unavailable():
        pytest.fail(why, pytrace=False)
    # An IP camera at 8 Mbit/s, a keyframe a second: the 2 MB disk fills after about 2 s.
    video = write_camera_video(
        tmp_path / "camera.mp4", width=640, height=360, fps=10.0, seconds=10.0, gop=10,
        bitrate=8_000_000, moving=((0.0, 10.0),),
    )  # fmt: skip
    frames = camera_packet_frames(video.path, 100)
    storage = Storage(small_disk / "data")
    storage.ensure()
    events = Events()
    recorder = ClipRecorder(camera(RecordConfig()), storage, events, nominal_fps=10)
    recorder.start()
    recorder.begin_clip(frames[:1], None)
    for frame in frames[1:]:
        recorder.add_frame(frame)
    stats = ClipStats(started_at=0.0, frames=100, changed_frames=100, peak_delta=0.1)
    recorder.end_clip(True, stats, None, None)
    assert events.ended.wait(30)
    assert recorder.stop(10)

    assert [e for e, _ in events.items] == ["clip_start", "storage_error", "clip_end"]
    (record,) = check_files(storage.root)
    assert record["mode"] == "copy" and 5 <= int(record["frames"]) < 90, record  # type: ignore[call-overload]
    # Cut at a fragment's end (at a keyframe, every second, or a quarter second after one):
    # whole fragments of the camera's pictures, from its keyframe.
    assert int(record["frames"]) % 10 in (0, 3, 6, 9)  # type: ignore[call-overload]
    assert record["dropped_frames"] == 100 - record["frames"]
    assert "No space left" in str(record["error"])
