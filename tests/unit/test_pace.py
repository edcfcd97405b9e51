"""DetectionPace: which frames ``motion.detect_fps`` detects, from capture times alone."""

from __future__ import annotations

import pytest

from motiond.detect.pace import DetectionPace


def takes(pace: DetectionPace, fps: float, count: int, start: float = 0.0) -> list[int]:
    return [pace.take(start + i / fps) for i in range(count)]


def test_zero_detects_every_frame() -> None:
    assert takes(DetectionPace(0.0), 15.0, 10) == [1] * 10


def test_one_frame_in_three_of_a_15_fps_camera_at_5() -> None:
    assert takes(DetectionPace(5.0), 15.0, 9) == [1, 0, 0, 3, 0, 0, 3, 0, 0]


@pytest.mark.parametrize("camera_fps", [12.5, 25.0, 30.0, 7.0])
def test_the_rate_is_kept_on_average_and_every_frame_is_counted_once(camera_fps: float) -> None:
    pace = DetectionPace(5.0)
    taken = takes(pace, camera_fps, round(camera_fps * 60))
    detected = sum(1 for t in taken if t)
    assert detected == pytest.approx(min(5.0, camera_fps) * 60, abs=1)
    # What was skipped is counted by the next detected frame: nothing lost, nothing twice.
    assert sum(taken) == len(taken) - (len(taken) - 1 - max(i for i, t in enumerate(taken) if t))


def test_a_slower_camera_is_detected_every_frame() -> None:
    assert takes(DetectionPace(10.0), 4.0, 6) == [1] * 6


def test_jittered_capture_times_are_not_missed() -> None:
    pace = DetectionPace(5.0)
    times = [0.0, 0.066, 0.134, 0.189, 0.268, 0.333, 0.4105]
    assert [pace.take(t) for t in times] == [1, 0, 0, 3, 0, 0, 3]


def test_a_camera_sending_the_rate_with_jitter_has_every_frame_detected() -> None:
    pace = DetectionPace(15.0)
    jitter = [0.0, 0.012, -0.012, 0.015, -0.015, 0.0] * 10
    assert [pace.take(i / 15.0 + j) for i, j in enumerate(jitter)] == [1] * len(jitter)


def test_after_a_gap_the_pace_starts_afresh() -> None:
    pace = DetectionPace(5.0)
    assert takes(pace, 10.0, 3) == [1, 0, 2]
    # The stream paused for 10 s: the next frame is detected, then one in two again.
    assert takes(pace, 10.0, 5, start=10.3) == [1, 0, 2, 0, 2]


def test_a_reopen_detects_the_next_frame_and_forgets_the_skipped_ones() -> None:
    pace = DetectionPace(5.0)
    assert takes(pace, 15.0, 2) == [1, 0]
    pace.reset()
    assert pace.take(0.1) == 1
