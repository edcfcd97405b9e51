"""Continuous recording end to end: the real daemon, ``record.segment: 30s``, against
GStreamer's RTSP server (the camera's packets copied) and the demo camera (encoded).

The served video has its frame number drawn in a strip (testbed/framecode.py), so the
segments can be checked against the truth: every picture, in order, across segment
boundaries, through a kill -9 and a camera outage.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from motiond.store.layout import Segment, Storage, iter_segment_partials
from motiond.store.segments import SegmentIndex
from testbed.camera_video import CameraVideo
from testbed.framecode import read_frame_number
from testbed.rtsp import RtspCamera
from tests.fixtures.browser import BROWSER_DIR, install_playwright, require_browser_tools
from tests.fixtures.daemon import RunningDaemon
from tests.fixtures.nal import coded_pictures, match_pictures
from tests.fixtures.rtsp import CameraMediaCache, StartRtspCamera
from tests.fixtures.video import decode_clip

pytestmark = pytest.mark.slow

FPS = 15.0


def segments_of(data: Path, camera: str) -> list[Segment]:
    index = SegmentIndex(Storage(data))
    index.rebuild()
    return index.between(camera, 0, 4e9)


def wait_for_segments(running: RunningDaemon, camera: str, count: int, timeout: float) -> None:
    running.wait_for(
        lambda: len(segments_of(running.storage, camera)) >= count,
        timeout,
        f"{count} finished segments",
    )


def frame_numbers(path: Path) -> list[int]:
    return [read_frame_number(frame) for frame in decode_clip(path)[1]]


def assert_whole_and_consecutive(segments: list[Segment], frames_in_loop: int) -> None:
    """Each segment decodes to its last frame, its pictures in order; consecutive segments
    meet within one frame interval, the next picture continuing where the last one ended."""
    numbered = [frame_numbers(s.path) for s in segments]
    for segment, numbers in zip(segments, numbered, strict=True):
        _, coded = coded_pictures(segment.path)
        assert len(numbers) == len(coded) > 0, segment  # every picture decodes, to the last
        expected = [(numbers[0] + i) % frames_in_loop for i in range(len(numbers))]
        assert numbers == expected, f"{segment.path.name} skips or repeats a picture"
    for (earlier, first), (later, second) in itertools.pairwise(
        zip(segments, numbered, strict=True)
    ):
        assert abs(later.start - earlier.end) <= 1 / FPS + 0.005, (earlier, later)
        assert second[0] == (first[-1] + 1) % frames_in_loop


def copied_from(video: CameraVideo, path: Path) -> int:
    """Where in the served file the pictures of ``path`` start; fails unless they are all
    the camera's own, byte for byte (tests/fixtures/nal.py)."""
    _, source = coded_pictures(video.path)
    _, recorded = coded_pictures(path)
    return match_pictures(recorded, source, loop=True)


def play_export_in_chromium(running: RunningDaemon, query: str) -> dict[str, object]:
    node, npm = require_browser_tools()
    install_playwright(npm)
    played = subprocess.run(
        [node, str(BROWSER_DIR / "play_export.mjs"), running.base, f"/api/export?{query}"],
        cwd=BROWSER_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert played.returncode == 0, played.stdout + played.stderr
    result: dict[str, object] = json.loads(played.stdout.strip().splitlines()[-1])
    return result


def test_copied_continuous_recording_through_an_export_a_kill_9_and_an_outage(
    tmp_path: Path, camera_media: CameraMediaCache, rtsp_camera: StartRtspCamera
) -> None:
    video = camera_media(width=320, height=180, fps=FPS, seconds=20.0, gop=30)
    server: RtspCamera = rtsp_camera({"/main": video}, loop=True)
    config = {
        "log_level": "debug",
        "cameras": [
            {
                "name": "door",
                "source": server.url("/main"),
                "record": {"continuous": True, "segment": "30s"},
            }
        ],
    }
    running = RunningDaemon(tmp_path, config)
    running.start()
    try:
        wait_for_segments(running, "door", 2, timeout=120)
        first_two = segments_of(running.storage, "door")[:2]
        assert_whole_and_consecutive(first_two, video.frames)
        assert copied_from(video, first_two[0].path) % video.gop == 0  # from a keyframe
        copied_from(video, first_two[1].path)
        # Motion clips go on alongside: the block moves 5-8 s into every 20 s loop.
        running.wait_for(lambda: "clip kept door/" in running.log(), 30, "a motion clip")

        # An export across the boundary between the two: the camera's packets, from the
        # keyframe at or before the start, within one GOP of the range asked for.
        start, end = first_two[0].end - 10.0, first_two[0].end + 10.0
        query = f"camera=door&start={start:.3f}&end={end:.3f}"
        with urllib.request.urlopen(f"{running.base}/api/export?{query}", timeout=30) as reply:
            assert reply.headers["Content-Disposition"].startswith("attachment; filename=")
            exported = tmp_path / "export.mp4"
            exported.write_bytes(reply.read())
        copied_from(video, exported)
        numbers = frame_numbers(exported)
        assert numbers == [(numbers[0] + i) % video.frames for i in range(len(numbers))]
        gop = video.gop / FPS
        assert abs(len(numbers) / FPS - (end - start)) <= gop
        played = play_export_in_chromium(running, query)
        assert abs(float(played["duration"]) - len(numbers) / FPS) < 0.2  # type: ignore[arg-type]

        # kill -9 in the middle of the third segment.
        running.wait_for(
            lambda: any(iter_segment_partials(Storage(running.storage))), 10, "a partial segment"
        )
        time.sleep(10.0)
        assert running.process is not None
        os.kill(running.process.pid, signal.SIGKILL)
        running.process.wait()
        (partial,) = iter_segment_partials(Storage(running.storage))
    finally:
        running.stop()

    again = RunningDaemon(tmp_path, config)
    again.start()
    try:
        again.wait_for(
            lambda: "partial continuous segment(s) recovered" in again.log(), 10, "recovery"
        )
        recovered = next(
            s
            for s in segments_of(again.storage, "door")
            if s.path.name.startswith(partial.name.split(".", 1)[0])
        )
        assert recovered.duration >= 8.0
        assert_whole_and_consecutive([recovered], video.frames)
        copied_from(video, recovered.path)

        # A camera outage: a gap between two playable segments.
        again.wait_for(lambda: "camera door: online" in again.log(), 30, "the camera")
        time.sleep(6.0)
        server.stop()
        again.wait_for(lambda: "camera door: offline" in again.log(), 30, "the outage")
        down = time.time()
        time.sleep(4.0)
        server.start()
        again.wait_for(lambda: again.log().count("camera door: online") >= 2, 90, "the return")
        time.sleep(6.0)
    finally:
        assert again.stop() == 0, again.log()
    after = [s for s in segments_of(again.storage, "door") if s.start > recovered.start]
    (before_outage,) = [s for s in after if s.start < down]
    after_outage = [s for s in after if s.start > down]
    assert after_outage and after_outage[0].start - before_outage.end >= 4.0
    for segment in (before_outage, *after_outage):
        assert_whole_and_consecutive([segment], video.frames)
    assert "Traceback" not in again.log()


def test_a_transcoded_camera_records_consecutive_segments(tmp_path: Path) -> None:
    config = {
        "cameras": [
            {
                "name": "demo",
                "source": "demo",
                "capture": {"width": 320, "height": 240, "fps": FPS},
                "record": {"continuous": True, "segment": "10s"},
            }
        ],
    }
    running = RunningDaemon(tmp_path, config)
    running.start()
    try:
        wait_for_segments(running, "demo", 2, timeout=60)
    finally:
        assert running.stop() == 0, running.log()
    segments = segments_of(running.storage, "demo")
    assert len(segments) >= 3  # two, and the one stopping closed
    for segment in segments:
        codec, pictures, times = decode_clip(segment.path)
        assert codec == "h264" and len(pictures) == len(coded_pictures(segment.path)[1]) > 0
        assert abs(times[-1] - (segment.duration - 1 / FPS)) < 0.01
    for earlier, later in itertools.pairwise(segments):
        assert abs(later.start - earlier.end) <= 1 / FPS + 0.005
    assert "Traceback" not in running.log()
