"""Continuous recording's writer on real coded frames: segments, their names, their files."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import threading
from pathlib import Path

import pytest

from motiond.config import RecordConfig, UploadConfig, UploadDestination
from motiond.events import Event, EventBus, SegmentEnded
from motiond.frames import Frame
from motiond.notify.upload import Uploader
from motiond.record.continuous import ContinuousRecorder
from motiond.store.clips import ClipIndex, ClipStore
from motiond.store.layout import (
    Segment,
    Storage,
    iter_segment_partials,
    reserve_segment,
    segment_of,
)
from motiond.store.recovery import recover
from motiond.store.segments import SegmentIndex, finish_partial_segment
from tests.fixtures.clips import camera, frames_at
from tests.fixtures.coded import WALL0, annex_b_packets, camera_packet_frames
from tests.fixtures.daemon import wait_until
from tests.fixtures.video import decode_clip


class Segments(list[Segment]):
    """The segments a recorder announced, in order."""

    def __call__(self, event: Event) -> None:
        if isinstance(event, SegmentEnded):
            self.append(event.segment)


@pytest.fixture(scope="module")
def camera_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from testbed.camera_video import ffmpeg_unavailable, write_camera_video

    if why := ffmpeg_unavailable():
        pytest.fail(why, pytrace=False)
    folder = tmp_path_factory.mktemp("camera")
    video = write_camera_video(
        folder / "camera.mp4", width=320, height=180, fps=10.0, seconds=31.0, gop=10,
        moving=((3.0, 6.0),),
    )  # fmt: skip
    return video.path


def record(storage: Storage, frames: list[Frame], segment: float, cut_at: int = -1) -> Segments:
    """Feed ``frames`` to a continuous recorder (cut after frame ``cut_at``); its segments."""
    announced = Segments()
    recorder = ContinuousRecorder(
        camera(RecordConfig(continuous=True, segment=segment)),
        storage,
        announced,
        nominal_fps=10.0,
        wait_when_full=True,
    )
    recorder.start()
    for i, frame in enumerate(frames):
        recorder.push(frame)
        if i == cut_at:
            recorder.cut()
    assert recorder.stop(60)
    assert recorder.frames_dropped == 0 and recorder.frames_lost == 0
    return announced


def test_copied_segments_are_consecutive_and_hold_the_cameras_packets(
    tmp_path: Path, camera_file: Path
) -> None:
    storage = Storage(tmp_path)
    frames = camera_packet_frames(camera_file, 310, size=(320, 180))
    segments = record(storage, frames, segment=10.0)
    # A keyframe a second: segments start at 0, 10, 20 and 30 s (the last one 1 s long).
    assert [round(s.start - WALL0, 3) for s in segments] == [0.0, 10.0, 20.0, 30.0]
    assert segments[-1].end == pytest.approx(WALL0 + 31.0, abs=0.001)
    for earlier, later in itertools.pairwise(segments):
        assert abs(later.start - earlier.end) <= 0.1 + 0.001  # one frame interval
    sent = [f.packet.data for f in frames if f.packet is not None]
    written = [data for s in segments for data, _ in annex_b_packets(s.path)]
    assert written == sent  # byte for byte, none lost, none twice
    for segment in segments:
        codec, pictures, times = decode_clip(segment.path)
        assert codec == "h264" and len(pictures) == round(segment.duration * 10)
        assert times[-1] == pytest.approx(segment.duration - 0.1, abs=0.002)
    index = SegmentIndex(storage)
    assert index.rebuild() == 4
    assert index.between("cam", WALL0, WALL0 + 100) == segments
    assert list(iter_segment_partials(storage)) == []


def test_an_outage_is_a_gap_between_two_playable_segments(
    tmp_path: Path, camera_file: Path
) -> None:
    storage = Storage(tmp_path)
    before = camera_packet_frames(camera_file, 150, size=(320, 180))
    # The camera comes back 5 s after its last frame, from its first keyframe.
    after = camera_packet_frames(camera_file, 100, size=(320, 180), wall0=WALL0 + 20.0, mono0=20.0)
    segments = record(storage, before + after, segment=60.0, cut_at=len(before) - 1)
    assert len(segments) == 2
    assert segments[0].end == pytest.approx(WALL0 + 15.0, abs=0.001)
    assert segments[1].start == pytest.approx(WALL0 + 20.0, abs=0.001)
    for segment in segments:
        assert len(decode_clip(segment.path)[1]) == round(segment.duration * 10)


def test_transcoded_segments_decode_to_their_last_frame(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    frames = frames_at([i / 10 for i in range(250)], WALL0)
    segments = record(storage, frames, segment=10.0)
    assert [round(s.start - WALL0, 3) for s in segments] == [0.0, 10.0, 20.0]
    decoded = [decode_clip(s.path) for s in segments]
    assert [len(pictures) for _, pictures, _ in decoded] == [100, 100, 50]
    assert all(codec == "h264" for codec, _, _ in decoded)
    assert segments[-1].end == pytest.approx(WALL0 + 25.0, abs=0.001)


def test_a_cut_partial_segment_is_recovered_to_its_last_fragment(
    tmp_path: Path, camera_file: Path
) -> None:
    storage = Storage(tmp_path)
    frames = camera_packet_frames(camera_file, 100, size=(320, 180))
    (segment,) = record(storage, frames, segment=60.0)
    # A crash mid-write: the same bytes under the partial name, cut inside a fragment.
    partial = reserve_segment(storage, "cam", WALL0 + 100)
    data = segment.path.read_bytes()
    partial.write_bytes(data[: len(data) * 2 // 3])
    report = recover(storage)
    (name,) = report.segments_recovered
    assert not partial.exists() and not report.problems
    recovered = segment_of(storage, storage.root / name)
    assert recovered is not None and recovered.start == WALL0 + 100
    pictures = decode_clip(recovered.path)[1]
    assert 40 <= len(pictures) < 100
    assert recovered.duration == pytest.approx(len(pictures) / 10, abs=0.002)


def test_nothing_playable_leaves_no_segment(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    partial = reserve_segment(storage, "cam", WALL0)
    partial.write_bytes(b"\x00\x00\x00\x18ftypiso5")
    assert finish_partial_segment(storage, partial, None, 10.0) is None
    assert not partial.exists()


def test_pushing_never_waits_for_a_slow_disk(tmp_path: Path, camera_file: Path) -> None:
    storage = Storage(tmp_path)
    recorder = ContinuousRecorder(
        camera(RecordConfig(continuous=True, segment=10.0, queue_frames=5)),
        storage,
        Segments(),
        nominal_fps=10.0,
    )
    release = threading.Event()
    original = recorder._write

    def slow_write(frame: Frame) -> None:
        release.wait(10)
        original(frame)

    recorder._write = slow_write  # type: ignore[method-assign]
    recorder.start()
    frames = camera_packet_frames(camera_file, 40, size=(320, 180))
    for frame in frames:
        recorder.push(frame)
    assert recorder.frames_dropped == 40 - 5
    release.set()
    assert recorder.stop(30)


def test_segments_are_copied_off_site_only_where_a_destination_asks(tmp_path: Path) -> None:
    if shutil.which("rclone") is None:
        pytest.fail("rclone is not installed (apt-get install rclone)", pytrace=False)
    storage = Storage(tmp_path / "data")
    wanted, clips_only = tmp_path / "nas", tmp_path / "b2"
    config = UploadConfig(
        destinations=(
            UploadDestination(remote=str(wanted), continuous=True),
            UploadDestination(remote=str(clips_only)),
        )
    )
    uploader = Uploader(config, storage, ClipStore(storage, ClipIndex(storage)), on_failed=print)
    bus = EventBus()
    uploader.subscribe(bus)
    uploader.start()
    try:
        (segment,) = record(storage, frames_at([i / 10 for i in range(30)], WALL0), 60.0)
        bus.publish(SegmentEnded(camera="cam", segment=segment))
        relative = storage.relative(segment.path)
        asyncio.run(wait_until((wanted / relative).is_file, 30, "the copy"))
    finally:
        uploader.stop(10)
    assert (wanted / relative).read_bytes() == segment.path.read_bytes()
    assert not clips_only.exists()
