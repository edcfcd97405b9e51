"""Clip writing: timestamps, containers, the bounded mailbox, files on disk, signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from motiond.config import OverlayConfig, RecordConfig
from motiond.detect.trigger import ClipStats
from motiond.frames import Frame
from motiond.record.encoders import PyAVClipWriter
from motiond.record.recorder import ClipRecorder, Still
from motiond.store.clips import ClipIndex
from motiond.store.layout import Storage, rename_no_overwrite
from tests.fixtures.clips import Events, camera, frames_at, record_one_clip
from tests.fixtures.daemon import clean_env, motiond_command, sidecars, write_config
from tests.fixtures.video import decode_clip, write_test_video


def test_timestamps_come_from_capture_times(tmp_path: Path) -> None:
    # 10 fps with two dropped stretches: the file must keep the real timing, not play fast.
    times = [i / 10 for i in range(10)] + [1.5 + i / 10 for i in range(10)] + [4.0, 4.1]
    path = tmp_path / "clip.mp4"
    writer = PyAVClipWriter(path, RecordConfig(), width=320, height=240, fps=10, origin=times[0])
    for frame in frames_at(times):
        writer.write(frame)
    writer.close()
    codec, frames, decoded_times = decode_clip(path)
    assert codec == "h264" and len(frames) == len(times)
    assert decoded_times == pytest.approx(times, abs=0.002)


def test_fragmented_mp4_is_readable_while_being_written(tmp_path: Path) -> None:
    path = tmp_path / "growing.mp4"
    writer = PyAVClipWriter(path, RecordConfig(), width=320, height=240, fps=10, origin=0.0)
    for frame in frames_at([i / 10 for i in range(35)]):  # 3.5 s: three complete 1 s fragments
        writer.write(frame)
    _, frames, _ = decode_clip(path)  # not closed yet
    assert len(frames) >= 20
    writer.close()
    assert len(decode_clip(path)[1]) == 35


def test_vp9_in_fragmented_mp4(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    writer = PyAVClipWriter(
        path, RecordConfig(codec="vp9", crf=35), width=320, height=240, fps=10, origin=0.0
    )
    for frame in frames_at([i / 10 for i in range(12)]):
        writer.write(frame)
    writer.close()
    codec, frames, _ = decode_clip(path)
    assert codec == "vp9" and len(frames) == 12


def test_odd_sizes_are_cropped_to_even(tmp_path: Path) -> None:
    path = tmp_path / "odd.mp4"
    image = np.zeros((241, 321, 3), np.uint8)
    writer = PyAVClipWriter(path, RecordConfig(), width=321, height=241, fps=10, origin=0.0)
    writer.write(Frame.from_image(0, 0.0, 0.0, image))
    writer.close()
    assert decode_clip(path)[1][0].shape[:2] == (240, 320)


def test_a_kept_clip_gets_its_sidecar_and_snapshots(tmp_path: Path) -> None:
    storage, events = record_one_clip(tmp_path, RecordConfig())
    assert [e for e, _ in events.items] == ["clip_start", "clip_end"]
    (record,) = sidecars(storage.root)
    assert record == events.items[1][1]
    clip = storage.root / str(record["file"])
    assert (
        clip.name.endswith("Z.mp4")
        and record["id"] == clip.relative_to(storage.clips_dir).as_posix()
    )
    assert record["frames"] == 20 and record["changed_frames"] == 18
    assert record["duration"] == pytest.approx(2.0)
    assert record["boxes_union"] == [10, 50, 100, 24]
    assert record["codec"] == "h264" and record["size"] == clip.stat().st_size
    assert [Path(s).name.split("-")[-1] for s in record["snapshots"]] == ["start.jpg", "peak.jpg"]  # type: ignore[union-attr]
    assert not list(storage.clips_dir.glob("*/*/*.partial.mp4"))
    index = ClipIndex(storage)
    assert index.rebuild() == 1 and index.get(str(record["id"])).to_json() == record  # type: ignore[union-attr]


def test_a_discarded_clip_leaves_nothing(tmp_path: Path) -> None:
    storage, events = record_one_clip(tmp_path, RecordConfig(), keep=False)
    assert [e for e, _ in events.items] == ["clip_start", "clip_discarded"]
    assert [p for p in storage.root.rglob("*") if p.is_file()] == []


def test_opencv_encoder_still_available(tmp_path: Path) -> None:
    storage, _ = record_one_clip(tmp_path, RecordConfig(encoder="opencv"))
    (record,) = sidecars(storage.root)
    codec, frames, _ = decode_clip(storage.root / str(record["file"]))
    assert codec == "mpeg4" and record["codec"] == "mpeg4" and len(frames) == 20


def test_overlay_is_burned_in(tmp_path: Path) -> None:
    plain_storage, _ = record_one_clip(tmp_path / "plain", RecordConfig())
    overlay_storage, _ = record_one_clip(
        tmp_path / "overlay", RecordConfig(overlay=OverlayConfig(timestamp=True, name=True))
    )
    plain = decode_clip(plain_storage.root / str(sidecars(plain_storage.root)[0]["file"]))[1][0]
    marked = decode_clip(overlay_storage.root / str(sidecars(overlay_storage.root)[0]["file"]))[1][
        0
    ]
    corner = (slice(0, 40), slice(0, 200))
    assert np.abs(plain[corner].astype(int) - marked[corner].astype(int)).mean() > 10


def test_a_slow_encoder_drops_frames_instead_of_stalling_capture(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "data")
    storage.ensure()
    record = RecordConfig(queue_frames=5)
    recorder = ClipRecorder(camera(record), storage, Events(), nominal_fps=10)
    release = threading.Event()
    original = recorder._write

    def slow_write(frame: Frame) -> None:
        release.wait(10)
        original(frame)

    recorder._write = slow_write  # type: ignore[method-assign]
    recorder.start()
    frames = frames_at([i / 10 for i in range(40)])
    recorder.begin_clip(frames[:1], Still(frames[0], ()))
    started = time.monotonic()
    accepted = [recorder.add_frame(f) for f in frames[1:]]
    assert time.monotonic() - started < 1.0  # never blocked
    assert accepted.count(True) == 5 and recorder.frames_dropped == 34
    release.set()
    recorder.end_clip(True, ClipStats(started_at=0.0), None, None)
    assert recorder.stop(20)
    (sidecar,) = sidecars(storage.root)
    assert sidecar["dropped_frames"] == 34 and sidecar["frames"] == 6


def test_rename_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "120000Z.mp4"
    target.write_text("older clip")
    for content in ("a", "b"):
        source = tmp_path / f"{content}.partial.mp4"
        source.write_text(content)
        rename_no_overwrite(source, target)
    assert target.read_text() == "older clip"
    assert (tmp_path / "120000Z-1.mp4").read_text() == "a"
    assert (tmp_path / "120000Z-2.mp4").read_text() == "b"


def test_reserved_names_do_not_collide(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    first = storage.reserve_clip("cam", 1_800_000_000.0)
    second = storage.reserve_clip("cam", 1_800_000_000.4)  # same second
    assert first.partial != second.partial and second.final.name.endswith("-1.mp4")
    assert storage.clip_path(first.clip_id) == first.final
    for bad in (
        "../etc/passwd",
        "cam/2026-01-01/../../x.mp4",
        "/abs.mp4",
        "cam/2026-01-01/120000Z.json",
    ):
        with pytest.raises(ValueError):
            storage.clip_path(bad)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_stop_signal_finishes_the_clip_in_progress(tmp_path: Path, signum: int) -> None:
    video = write_test_video(tmp_path / "moving.avi", seconds=10, fps=10, moving=[(0.0, 10.0)])
    storage = tmp_path / "data"
    config = write_config(
        tmp_path / "c.yaml",
        {
            "storage": {"dir": str(storage)},
            "web": {"port": 0},
            "cameras": [
                {
                    "name": "cam",
                    "source": str(video.path),
                    "capture": {"loop": True},
                    "motion": {"warmup": "0s", "masks": [video.code_mask]},
                }
            ],
        },
    )
    process = subprocess.Popen(
        motiond_command("run", "-c", str(config)),
        cwd=tmp_path,
        env=clean_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not list(storage.glob("clips/*/*/*.partial.mp4")):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.1)
        time.sleep(2.0)  # recording
        process.send_signal(signum)
        started = time.monotonic()
        code = process.wait(timeout=15)
        assert time.monotonic() - started < 5
    finally:
        if process.poll() is None:
            process.kill()
        stderr = process.stderr.read() if process.stderr else ""
    assert code == 0, stderr
    (record,) = sidecars(storage)
    codec, frames, _ = decode_clip(storage / str(record["file"]))
    assert codec == "h264" and len(frames) == record["frames"] >= 20
    assert not list(storage.glob("clips/*/*/*.partial.mp4"))
    assert json.loads((storage / str(record["file"])).with_suffix(".json").read_text())[
        "frames"
    ] == len(frames)


@pytest.mark.slow
def test_a_second_signal_forces_the_exit(tmp_path: Path) -> None:
    video = write_test_video(tmp_path / "moving.avi", seconds=10, fps=10, moving=[(0.0, 10.0)])
    config = write_config(
        tmp_path / "c.yaml",
        {
            "storage": {"dir": str(tmp_path / "data")},
            "web": {"port": 0},
            "cameras": [
                {
                    "name": "cam",
                    "source": str(video.path),
                    "capture": {"loop": True},
                    "motion": {"warmup": "0s", "masks": [video.code_mask]},
                    # A hook that takes long keeps a graceful shutdown waiting for it.
                    "hooks": {
                        "on_clip_start": {
                            "command": [sys.executable, "-c", "import time; time.sleep(60)"],
                            "timeout": "60s",
                        }
                    },
                }
            ],
        },
    )
    log_path = tmp_path / "log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            motiond_command("run", "-c", str(config)), cwd=tmp_path, env=clean_env(), stderr=log
        )
    try:
        deadline = time.monotonic() + 30
        while "clip started" not in log_path.read_text():
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        while "stopping: finishing clips" not in log_path.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.0)
        assert process.poll() is None  # still waiting for the hook
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 1
    assert "second signal" in log_path.read_text()


def test_camera_jpeg_frames_keep_a_normal_gop(tmp_path: Path) -> None:
    """Decoded JPEGs are marked as I-frames; the encoder must still choose (1 s GOP)."""
    import av
    import cv2

    path = tmp_path / "jpeg.mp4"
    writer = PyAVClipWriter(path, RecordConfig(), width=320, height=240, fps=10, origin=0.0)
    for frame in frames_at([i / 10 for i in range(30)]):
        jpeg = cv2.imencode(".jpg", frame.bgr())[1].tobytes()
        writer.write(Frame.from_jpeg(frame.seq, frame.mono, frame.wall, jpeg))
    writer.close()
    with av.open(str(path)) as container:
        keyframes = [p.is_keyframe for p in container.demux(video=0) if p.size]
    assert len(keyframes) == 30 and sum(keyframes) == 3


def test_the_encoder_queue_is_bounded_in_bytes_too() -> None:
    from motiond.record.recorder import FrameMailbox

    mailbox = FrameMailbox(capacity=100, max_bytes=3 * 320 * 240 * 3)
    frames = frames_at([i / 10 for i in range(10)])
    accepted = [mailbox.put_frame(f, wait=False) for f in frames]
    assert accepted == [True] * 3 + [False] * 7
    assert mailbox.frame_bytes == 3 * 320 * 240 * 3
