"""PictureWatch: motion, then day/night and tampering, on whichever thread has the pictures.

Fed frames of generated scenes (tests/fixtures/scenes.py) with explicit times, as the capture thread
(camera pixels = the frame's) or a sub stream's detection thread (smaller pictures, masks and
boxes in the main stream's pixels) feeds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from motiond.config import CameraConfig, CaptureConfig, MotionConfig, NightOverrides
from motiond.detect.watch import Detection, PictureWatch
from motiond.events import Event, MediaLinks
from motiond.frames import Frame
from tests.fixtures.scenes import SceneScript

FPS = 10.0
MAIN = (640, 480)  # the camera's main stream; the scenes are drawn at 320x240 (a sub stream)


def make_watch(motion: MotionConfig) -> tuple[PictureWatch, list[tuple[str, dict[str, Any]]]]:
    config = CameraConfig(
        name="cam", capture=CaptureConfig(source="rtsp://cam/main", kind="rtsp"), motion=motion
    )
    events: list[tuple[str, dict[str, Any]]] = []
    links = MediaLinks("http://motiond.test", Path("/nonexistent"))

    def collect(event: Event) -> None:
        events.append((event.name, event.payload(links)))

    watch = PictureWatch(config, collect, bool)
    return watch, events


def sub_stream_frame(scene: SceneScript, index: int) -> Frame:
    """A decoded sub-stream picture as PyAVSource gives it (YUV planes, no packet kept)."""
    picture = av.VideoFrame.from_ndarray(scene.frame(index / FPS), format="bgr24")
    t = index / FPS
    return Frame(
        index,
        t,
        1_800_000_000.0 + t,
        scene.width,
        scene.height,
        picture=picture.reformat(format="yuv420p"),
    )


def run(watch: PictureWatch, scene: SceneScript, seconds: float) -> list[Detection]:
    """Every picture's detection, as the detection thread hands it to the capture thread."""
    detections = []
    for index in range(round(seconds * FPS)):
        frame = sub_stream_frame(scene, index)
        if index == 0:
            watch.reopened(frame.mono)
        result = watch.look(frame, MAIN)
        detections.append(Detection(frame.mono, result, watch.report))
    return detections


def test_a_covered_sub_stream_camera_becomes_suspect_then_tampered_and_says_so_once() -> None:
    watch, events = make_watch(MotionConfig(warmup=0.0, tamper_after=3.0))
    detections = run(watch, SceneScript(covered=(8.0, 60.0)), 14.0)
    suspect = [d.mono for d in detections if d.suspect]
    tampered = [d.mono for d in detections if d.scene and d.scene.tamper.tampered == "covered"]
    assert suspect and 8.0 + 1.0 <= suspect[0] <= 8.0 + 2.0, suspect[:3]
    # Suspect (a clip starts and goes on) until confirmed; then the state says since when.
    assert tampered and tampered[0] == pytest.approx(8.0 + 0.5 + 3.0, abs=0.6)
    assert max(suspect) < tampered[0]
    (event,) = [p for e, p in events if e == "camera_tampered"]
    assert event["kind"] == "covered"
    assert event["detected_ts"] - event["since_ts"] == pytest.approx(3.0, abs=0.3)
    assert watch.report.mode == "day"  # the colour of the YUV picture's chroma planes


def test_masks_and_boxes_are_in_the_main_streams_pixels() -> None:
    from tests.fixtures.scenes import Walker

    # The right half of the main stream masked: the walker changes nothing once there.
    mask = ((320, 0), (640, 0), (640, 480), (320, 480))
    watch, _ = make_watch(MotionConfig(warmup=0.0, masks=(mask,)))
    walker = Walker(t0=1.0, t1=7.0, start=(20.0, 200.0), end=(300.0, 200.0))
    detections = run(watch, SceneScript(walkers=[walker]), 8.0)
    boxes = [b for d in detections if d.result for b in d.result.boxes]
    assert boxes, "the walker was seen in the unmasked half"
    assert all(b.x + b.width <= 320 + 8 for b in boxes), boxes  # main pixels: never past x=320
    assert max(b.x + b.width for b in boxes) > 240  # the sub stream is only 320 wide


def test_a_camera_that_starts_at_night_takes_the_night_values() -> None:
    night = NightOverrides(pixel_threshold=33, min_area=0.004)
    watch, events = make_watch(MotionConfig(warmup=0.0, night=night))
    detections = run(watch, SceneScript(night=[(0.0, 60.0)]), 3.0)
    assert watch.report.mode == "night" and detections[-1].scene is not None
    assert watch.detector.config.pixel_threshold == 33 and watch.motion.min_area == 0.004
    assert not watch.report.switched and not events  # no switch to report, nothing to emit


def test_a_night_switch_settles_and_switches_the_detector_back_by_day() -> None:
    watch, events = make_watch(MotionConfig(warmup=0.0, night=NightOverrides(pixel_threshold=40)))
    detections = run(watch, SceneScript(night=[(5.0, 12.0)]), 18.0)
    settling = [d.mono for d in detections if d.settling]
    assert settling and 5.0 <= settling[0] <= 6.5 and not any(d.suspect for d in detections)
    assert any(12.0 <= t <= 14.0 for t in settling)  # and again on the way back
    assert watch.report.mode == "day" and watch.detector.config.pixel_threshold == 20
    assert events == []  # a night switch is not tampering


def test_a_detection_without_a_scene_report_is_neither_suspect_nor_settling() -> None:
    detection = Detection(1.0, None, reopened=True)
    assert not detection.suspect and not detection.settling
    assert np.isfinite(detection.mono)
