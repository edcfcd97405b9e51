"""The capture thread with a scripted source: wiring, clocks, snapshots, reconnects."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from motiond.backoff import Backoff
from motiond.capture.camera import CameraWorker
from motiond.capture.sources import Source, SourceError
from motiond.capture.substream import DetectionThread
from motiond.config import CameraConfig, CaptureConfig, MotionConfig, RecordConfig
from motiond.control import CameraUnavailable
from motiond.detect.watch import PictureWatch
from motiond.events import Event, MediaLinks
from motiond.frames import Frame
from motiond.store.layout import Storage
from testbed.synthetic import background, with_noise, with_square
from tests.fixtures.daemon import sidecars
from tests.fixtures.servers import wait_until
from tests.fixtures.video import decode_clip

FPS = 10.0


class ScriptedSource(Source):
    """Plays a list of frames (None ends the stream; an exception is raised); then waits."""

    realtime = True
    description = "scripted"

    def __init__(self, frames: list[Frame | Exception | None], release: threading.Event) -> None:
        self._frames: Iterator[Frame | Exception | None] = iter(frames)
        self.release = release

    def open(self) -> None:
        pass

    def read(self) -> Frame | None:
        item = next(self._frames, "done")
        if item == "done":
            self.release.wait(10)
            return None
        if isinstance(item, Exception):
            raise item
        return item  # type: ignore[return-value]

    def close(self) -> None:
        pass


def scene_frames(
    moving: range, count: int, wall_jump_at: int | None = None, start: int = 0
) -> list[Frame]:
    rng = np.random.default_rng(1)
    scene = background()
    frames = []
    for i in range(start, start + count):
        image = with_square(scene, 10 + 6 * (i % 45), 80) if i in moving else scene
        wall = (
            1_800_000_000.0
            + i / FPS
            + (3600.0 if wall_jump_at is not None and i >= wall_jump_at else 0.0)
        )
        frames.append(Frame.from_image(i, i / FPS, wall, with_noise(image, rng, 2.0)))
    return frames


def make_worker(
    tmp_path: Path,
    scripts: list[list[Frame | Exception | None]],
    motion: MotionConfig | None = None,
    *,
    stall_timeout: float | None = None,
    source: type[ScriptedSource] = ScriptedSource,
) -> tuple[CameraWorker, list[tuple[str, dict[str, Any]]], threading.Event]:
    """A worker whose source plays ``scripts``, one per (re)open, and that retries fast; its
    events are collected as (name, JSON document)."""
    capture = CaptureConfig(source="scripted", kind="demo")
    if stall_timeout is not None:
        capture = dataclasses.replace(capture, stall_timeout=stall_timeout)
    config = CameraConfig(
        name="cam",
        capture=capture,
        motion=motion or MotionConfig(warmup=0.0),
        record=RecordConfig(pre_roll=1.0),
    )
    storage = Storage(tmp_path)
    storage.ensure()
    events: list[tuple[str, dict[str, Any]]] = []
    release = threading.Event()
    sources = iter(scripts)
    links = MediaLinks("http://motiond.test", tmp_path)

    def collect(event: Event) -> None:
        events.append((event.name, event.payload(links)))

    worker = CameraWorker(
        config,
        storage,
        collect,
        source_factory=lambda capture, stop, **_: source(next(sources, []), release),
        reconnect=Backoff(first=0.05),
    )
    return worker, events, release


def start_until(worker: CameraWorker, wait_for: str, events: list[Any]) -> None:
    """Start the worker and wait (at most 20 s) for its first ``wait_for`` event."""
    worker.start()
    deadline = time.monotonic() + 20
    while not any(e == wait_for for e, _ in events):
        assert time.monotonic() < deadline, events
        time.sleep(0.02)


def run_to_end(
    worker: CameraWorker, release: threading.Event, wait_for: str, events: list[Any]
) -> None:
    start_until(worker, wait_for, events)
    release.set()
    assert worker.stop(10)


def camera_jpeg_frames(moving: range, count: int) -> list[Frame]:
    """``scene_frames`` as a USB or MJPEG camera sends them: JPEGs, nothing decoded."""
    import cv2

    return [
        Frame.from_jpeg(f.seq, f.mono, f.wall, cv2.imencode(".jpg", f.bgr())[1].tobytes())
        for f in scene_frames(moving, count)
    ]


def test_pre_roll_frames_are_in_the_clip(tmp_path: Path) -> None:
    frames = scene_frames(moving=range(30, 40), count=80)
    worker, events, release = make_worker(tmp_path, [frames])
    run_to_end(worker, release, "clip_end", events)
    (record,) = sidecars(tmp_path)
    _, decoded, times = decode_clip(tmp_path / str(record["file"]))
    # Pre-roll of 1 s at 10 fps: frames 20..29 (the ring holds what is at most 1 s older).
    assert len(decoded) == record["frames"]
    assert times[0] == 0.0
    first_changed_offset = 30 / FPS - float(record["start_ts"]) + 1_800_000_000.0
    assert first_changed_offset == pytest.approx(1.0, abs=0.11)
    assert [e for e, _ in events][:3] == ["camera_online", "clip_start", "clip_end"]


def test_wall_clock_jump_is_logged_and_breaks_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    frames = scene_frames(moving=range(30, 40), count=80, wall_jump_at=35)
    worker, events, release = make_worker(tmp_path, [frames])
    with caplog.at_level(logging.WARNING):
        run_to_end(worker, release, "clip_end", events)
    assert "wall clock jumped by +3600.0 s" in caplog.text
    (record,) = sidecars(tmp_path)
    assert float(record["duration"]) == pytest.approx(int(record["frames"]) / FPS, abs=0.01)


def test_lost_source_finishes_the_clip_and_reopens_without_triggering(tmp_path: Path) -> None:
    first = scene_frames(moving=range(20, 60), count=40)  # lost mid-motion
    # After the reconnect the picture is different (the camera moved): no clip from that.
    second = [
        Frame.from_image(
            i, 100 + i / FPS, 1_800_000_100.0 + i / FPS, with_square(background(seed=9), 5, 5)
        )
        for i in range(30)
    ]
    worker, events, release = make_worker(tmp_path, [[*first, SourceError("gone")], second])
    worker.start()
    deadline = time.monotonic() + 20
    while sum(e == "camera_online" for e, _ in events) < 2:
        assert time.monotonic() < deadline, events
        time.sleep(0.02)
    time.sleep(0.5)
    release.set()
    assert worker.stop(10)
    names = [e for e, _ in events]
    # clip_end comes from the recorder's thread, so its place among the others may vary.
    assert [n for n in names if n != "clip_end"][:4] == [
        "camera_online",
        "clip_start",
        "camera_offline",
        "camera_online",
    ]
    assert names.count("clip_start") == 1 and names.count("clip_end") == 1
    assert len(sidecars(tmp_path)) == 1


def test_on_demand_snapshot(tmp_path: Path) -> None:
    frames = scene_frames(moving=range(0), count=5)
    worker, _, release = make_worker(tmp_path, [frames])
    with pytest.raises(CameraUnavailable):
        worker.take_snapshot()
    worker.start()
    deadline = time.monotonic() + 10
    while worker.frames < 5:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    path = worker.take_snapshot()
    release.set()
    worker.stop(5)
    assert (
        path.parent.parent.parent == tmp_path / "snapshots" and path.read_bytes()[:2] == b"\xff\xd8"
    )


def test_disarmed_camera_does_not_record(tmp_path: Path) -> None:
    frames = scene_frames(moving=range(10, 40), count=60)
    worker, events, release = make_worker(tmp_path, [frames])
    worker.arm(False)
    worker.start()
    deadline = time.monotonic() + 10
    while worker.frames < 60:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    release.set()
    worker.stop(5)
    assert "clip_start" not in [e for e, _ in events]
    assert worker.status().armed is False


def test_only_garbled_frames_for_stall_timeout_means_offline(tmp_path: Path) -> None:
    good = scene_frames(moving=range(0), count=3)
    garbled = [
        Frame(seq=3 + i, mono=0.3 + i / FPS, wall=0.0, width=320, height=240, jpeg=b"\xff\xd8junk")
        for i in range(40)
    ]
    slow: list[Frame | Exception | None] = list(garbled)  # 10 fps: 4 s of nothing usable

    class SlowScripted(ScriptedSource):
        def read(self) -> Frame | None:
            time.sleep(0.1)
            return super().read()

    worker, events, release = make_worker(
        tmp_path, [[*good, *slow]], stall_timeout=1.0, source=SlowScripted
    )
    worker.start()
    deadline = time.monotonic() + 10
    while "camera_offline" not in [e for e, _ in events]:
        assert time.monotonic() < deadline, events
        time.sleep(0.05)
    release.set()
    worker.stop(5)
    assert worker.frames_garbled >= 9


def test_buffers_hold_camera_jpegs_and_the_encoder_decodes_them(tmp_path: Path) -> None:
    import av

    frames = camera_jpeg_frames(moving=range(30, 45), count=80)
    worker, events, release = make_worker(tmp_path, [list(frames)])
    start_until(worker, "clip_end", events)
    # The camera's JPEGs are in the pre-roll ring as they came (the same objects: nothing
    # decoded rode along); the recorder decodes them on its own thread.
    ring = worker.clips.preroll.take(99.0)
    assert ring and all(any(f is g for g in frames) for f in ring)
    release.set()
    assert worker.stop(10)
    (record,) = sidecars(tmp_path)
    codec, decoded, _ = decode_clip(tmp_path / str(record["file"]))
    assert codec == "h264" and len(decoded) == record["frames"]
    with av.open(str(tmp_path / str(record["file"]))) as container:
        keyframes = sum(p.is_keyframe for p in container.demux(video=0) if p.size)
    assert keyframes == -(-int(record["frames"]) // 15)


def test_camera_jpegs_of_a_clip_being_written_are_decoded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a clip is written, the capture thread decodes each camera JPEG once, for
    detection and for the recorder (which would decode it again); the ring keeps the JPEG."""
    from motiond.record.recorder import ClipRecorder

    frames = camera_jpeg_frames(moving=range(30, 45), count=80)
    queued: list[Frame] = []
    add_frame = ClipRecorder.add_frame

    def spy(self: ClipRecorder, frame: Frame) -> bool:
        queued.append(frame)
        return add_frame(self, frame)

    monkeypatch.setattr(ClipRecorder, "add_frame", spy)
    worker, events, release = make_worker(tmp_path, [list(frames)])
    start_until(worker, "clip_end", events)
    ring = worker.clips.preroll.take(99.0)
    assert ring and all(f.picture is None for f in ring)
    release.set()
    assert worker.stop(10)
    assert len(queued) >= 20
    decoded = [f for f in queued if f.picture is not None]
    assert len(decoded) >= len(queued) - 1  # all but a frame at the clip's first decision
    assert all(
        f.jpeg is not None and (f.picture.width, f.picture.height) == (f.width, f.height)
        for f in decoded
    )
    (record,) = sidecars(tmp_path)
    codec, pictures, _ = decode_clip(tmp_path / str(record["file"]))
    assert codec == "h264" and len(pictures) == record["frames"]


def test_pre_roll_never_reaches_back_into_the_previous_clip(tmp_path: Path) -> None:
    # Motion 30..39 (frame 40, where the square vanishes, changes too) ends the first clip at
    # frame 60 after 20 calm frames; motion from 61 starts the second with a 1 s pre-roll,
    # which must not hold any frame of the first: it starts right where the first ended.
    frames = scene_frames(moving=range(30, 40), count=100)
    moving_again = scene_frames(moving=range(61, 75), count=100)
    script = frames[:61] + moving_again[61:]
    # Every frame detected: the first clip must end on frame 60 exactly (at the default
    # clip_detect_fps, frame 60 may be skipped and the two clips become one).
    motion = MotionConfig(warmup=0.0, clip_detect_fps=0.0)
    worker, events, release = make_worker(tmp_path, [list(script)], motion)
    worker.start()
    deadline = time.monotonic() + 20
    while [e for e, _ in events].count("clip_end") < 2:
        assert time.monotonic() < deadline, events
        time.sleep(0.02)
    release.set()
    worker.stop(10)
    first, second = sidecars(tmp_path)
    first_end = float(first["start_ts"]) + float(first["duration"])
    assert float(second["start_ts"]) == pytest.approx(first_end, abs=1e-3)
    assert float(second["start_ts"]) == pytest.approx(1_800_000_000.0 + 6.1, abs=1e-3)


def scene_script_frames(scene: Any, seconds: float) -> list[Frame]:
    return [
        Frame.from_image(i, i / FPS, 1_800_000_000.0 + i / FPS, scene.frame(i / FPS))
        for i in range(round(seconds * FPS))
    ]


def test_night_switch_applies_the_night_overrides_and_starts_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from motiond.config import NightOverrides
    from tests.fixtures.scenes import SceneScript

    frames = scene_script_frames(SceneScript(night=[(4.0, 60.0)]), 8.0)
    night = NightOverrides(pixel_threshold=33, min_changed_frames=2)
    motion = MotionConfig(warmup=0.0, night=night)
    worker, events, release = make_worker(tmp_path, [frames], motion)
    with caplog.at_level(logging.INFO):
        worker.start()
        deadline = time.monotonic() + 20
        while worker.frames < len(frames):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        status = worker.status()
        release.set()
        assert worker.stop(10)
    assert "camera cam: switched to night mode" in caplog.text
    assert status.day_night == "night" and status.tampered is None
    assert worker.watch.detector.config.pixel_threshold == 33
    assert worker.clips.judge.trigger.min_changed_frames == 2
    assert [e for e, _ in events if e.startswith("clip")] == []


def test_tampering_is_an_event_and_keeps_the_clip_of_the_moment(tmp_path: Path) -> None:
    from tests.fixtures.scenes import SceneScript

    frames = scene_script_frames(SceneScript(covered=(8.0, 60.0)), 14.0)
    motion = MotionConfig(warmup=0.0, tamper_after=2.0)
    worker, events, release = make_worker(tmp_path, [frames], motion)
    run_to_end(worker, release, "clip_end", events)
    (payload,) = [p for e, p in events if e == "camera_tampered"]
    assert payload["kind"] == "covered" and "uniform" in payload["detail"]
    assert payload["detected_ts"] - payload["since_ts"] == pytest.approx(2.0, abs=0.3)
    assert payload["since_ts"] == pytest.approx(1_800_000_008.0, abs=0.8)
    status = worker.status()
    assert status.tampered == "covered"
    assert status.tampered_since == pytest.approx(payload["since_ts"], abs=0.01)
    (record,) = sidecars(tmp_path)
    # The clip reaches back before the cover (pre-roll) and was kept.
    assert float(record["start_ts"]) < 1_800_000_008.0


def record_looked_at(
    tmp_path: Path, frames: list[Frame], motion: MotionConfig
) -> tuple[list[float], dict[str, object]]:
    """Play ``frames`` to a worker until its clip ends and every frame is read: the capture
    times of the frames its detector looked at, and the clip's sidecar."""
    worker, events, release = make_worker(tmp_path, [list(frames)], motion)
    detector = worker.watch.detector
    looked: list[float] = []
    detect = detector.detect

    def counting(gray: Any, width: int, height: int, *, now: float) -> Any:
        looked.append(now)
        return detect(gray, width, height, now=now)

    detector.detect = counting  # type: ignore[method-assign]
    start_until(worker, "clip_end", events)
    # Stopped once every frame is read (the last one is detected before the thread stops): the
    # clip ends 40 frames before the script does, and a stop right then cut some off.
    wait_until(lambda: worker.frames == len(frames), 20, "every frame read")
    release.set()
    assert worker.stop(10)
    (record,) = sidecars(tmp_path)
    return looked, record


@pytest.mark.parametrize("detect_fps", [0.0, 5.0])
def test_detect_fps_looks_at_fewer_frames_and_records_the_same_clip(
    tmp_path: Path, detect_fps: float
) -> None:
    """At 5 of a 10 fps camera's frames a second, half the pictures are looked at, and the
    clip starts and ends within a skipped frame of where every frame puts it: each detected
    frame counts for the two it stands for (``stable_frames`` stays 20 camera frames)."""
    frames = scene_frames(moving=range(30, 60), count=120)
    motion = MotionConfig(warmup=0.0, detect_fps=detect_fps, clip_detect_fps=0.0)
    looked, record = record_looked_at(tmp_path, frames, motion)
    # The square's 30 frames and its going (at 5 fps, counted by twos: one more at most).
    assert int(record["changed_frames"]) - 31 in ((0,) if not detect_fps else (0, 1))
    start = float(record["start_ts"]) - 1_800_000_000.0  # the pre-roll's first frame
    assert start == pytest.approx(2.0, abs=0.11)
    end = start + float(record["duration"])
    assert end == pytest.approx(8.0, abs=0.21)  # 60 + 20 stable frames, at 10 fps
    if detect_fps:
        assert len(looked) == pytest.approx(len(frames) / 2, abs=2)
        assert all(round((b - a) * FPS) == 2 for a, b in itertools.pairwise(looked))
    else:
        assert len(looked) == len(frames)


def test_a_sub_streams_detection_thread_caps_its_rate_once_its_clip_is_kept() -> None:
    """With a sub stream the detection thread's own judge says when the clip is kept: the same
    frames are looked at as on the capture thread (the test above)."""
    frames = scene_frames(moving=range(30, 60), count=120)
    config = CameraConfig(
        name="cam",
        capture=CaptureConfig(source="scripted", kind="demo", detect_source="rtsp://sub.test/"),
        motion=MotionConfig(warmup=0.0),
    )
    watch = PictureWatch(config, lambda event: None, lambda: False)
    thread = DetectionThread(
        config, watch, threading.Event(), on_picture=lambda f, r: None, armed=lambda: True
    )
    thread.main_size = (frames[0].width, frames[0].height)
    looked: list[int] = []  # the frames with a result (not the first: nothing to compare)
    for i, frame in enumerate(frames):
        thread._detect(frame)
        looked += [i for d in thread.results.take_all() if d.result is not None]
    # Every frame to 34, the fifth changed one; one in two while the kept clip records; every
    # frame again after the one that stopped it (80, as on the capture thread).
    assert looked[:34] == list(range(1, 35))
    again = looked.index(80)
    assert all(b - a == 2 for a, b in itertools.pairwise(looked[34 : again + 1]))
    assert looked[again:] == list(range(80, len(frames)))


@pytest.mark.parametrize("clip_detect_fps", [0.0, 5.0])
def test_clip_detect_fps_looks_at_every_frame_until_the_clip_is_kept(
    tmp_path: Path, clip_detect_fps: float
) -> None:
    """The default cap while a kept clip records: every frame is looked at until the clip has
    its 5 changed frames (the square's frames 30 to 34), then one in two of this 10 fps
    camera's, each counted for two, until the clip stops, then every frame again. The clip
    starts on the same frame as with every frame looked at, and ends within a skipped frame."""
    frames = scene_frames(moving=range(30, 60), count=120)
    motion = MotionConfig(warmup=0.0, clip_detect_fps=clip_detect_fps)
    times, record = record_looked_at(tmp_path, frames, motion)
    looked = [round((now - frames[0].mono) * FPS) for now in times]
    start = float(record["start_ts"]) - 1_800_000_000.0  # the pre-roll's first frame
    assert start == pytest.approx(2.0, abs=1e-3)  # frame 30, less the 1 s pre-roll
    end = start + float(record["duration"])
    gaps = [b - a for a, b in itertools.pairwise(looked)]
    if not clip_detect_fps:
        assert looked == list(range(len(frames)))
        assert int(record["changed_frames"]) == 31
        assert end == pytest.approx(8.1, abs=0.01)  # to frame 80: 60 + 20 stable frames
        return
    assert int(record["changed_frames"]) - 31 in (0, 1)
    assert end == pytest.approx(8.1, abs=0.11)
    # Every frame to 34, the fifth changed one; one in two while the kept clip records; every
    # frame again after the one that stopped it (the clip's last).
    assert looked[:35] == list(range(35))
    again = next(i for i in range(35, len(gaps)) if gaps[i] == 1)
    assert gaps[34:again] == [2] * (again - 34)
    assert looked[again] == round(end * FPS) - 1
    assert looked[again:] == list(range(looked[again], len(frames)))
