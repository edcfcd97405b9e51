"""DetectionPace: which frames ``motion.detect_fps`` and ``clip_detect_fps`` detect, from capture
times alone."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from motiond.detect.pace import EARLY, DetectionPace


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


# -- clip_detect_fps: the cap while a clip that will be kept records ---------------------------


def test_the_clip_cap_applies_only_while_a_kept_clip_records() -> None:
    pace = DetectionPace(0.0, 5.0)
    kept = [False] * 4 + [True] * 7 + [False] * 4
    taken = [pace.take(i / 15.0, clip_kept) for i, clip_kept in enumerate(kept)]
    # Every frame, then one in three from the last detected frame on, then every frame again:
    # the first of those stands for the frame the cap skipped before it.
    assert taken[:4] == [1, 1, 1, 1]
    assert taken[4:11] == [0, 0, 3, 0, 0, 3, 0]
    assert taken[11:] == [2, 1, 1, 1]


def test_back_to_every_frame_the_next_frame_counts_the_skipped_ones() -> None:
    pace = DetectionPace(0.0, 5.0)
    assert [pace.take(i / 15.0, True) for i in range(3)] == [1, 0, 0]
    assert pace.take(3 / 15.0, False) == 3


def test_the_clip_cap_never_detects_more_often_than_detect_fps() -> None:
    pace = DetectionPace(5.0, 10.0)
    assert pace.clip_interval == pace.interval
    assert [pace.take(i / 15.0, True) for i in range(6)] == [1, 0, 0, 3, 0, 0]


def test_switching_caps_keeps_the_spacing_from_the_last_due_frame() -> None:
    pace = DetectionPace(7.5, 5.0)  # every 2nd frame of a 15 fps camera, every 3rd in a clip
    assert [pace.take(i / 15.0, False) for i in range(3)] == [1, 0, 2]
    # The clip is kept: the next detection is 3 frames after the last one, not 2.
    assert [pace.take(i / 15.0, True) for i in range(3, 9)] == [0, 0, 3, 0, 0, 3]
    # The clip ended: two frames after the last detection again, not three.
    assert [pace.take(i / 15.0, False) for i in range(9, 13)] == [0, 2, 0, 2]


@given(
    camera_fps=st.sampled_from([7.0, 10.0, 12.5, 15.0, 25.0, 30.0]),
    fps=st.sampled_from([0.0, 5.0, 10.0]),
    clip_fps=st.sampled_from([0.0, 2.0, 5.0]),
    kept=st.lists(st.booleans(), min_size=1, max_size=200),
)
def test_every_frame_is_counted_once_whatever_the_switches(
    camera_fps: float, fps: float, clip_fps: float, kept: list[bool]
) -> None:
    pace = DetectionPace(fps, clip_fps)
    taken = [pace.take(i / camera_fps, k) for i, k in enumerate(kept)]
    last = max(i for i, t in enumerate(taken) if t)
    assert taken[0] == 1
    assert sum(taken) == last + 1  # the frames after the last detected one are still pending

    # No two detections closer than the cap in effect allows: each is due an interval after
    # the last one was due, and is taken up to EARLY of an interval before (capture times
    # jitter) or a frame after (frames come when they come). A cap that starts after every
    # frame was detected takes its first frame.
    def interval(i: int) -> float:
        return pace.clip_interval if kept[i] else pace.interval

    detected = [i for i, t in enumerate(taken) if t]
    for a, b in itertools.pairwise(detected):
        if not interval(a):
            continue
        assert (b - a) / camera_fps >= (1 - EARLY) * interval(b) - 1 / camera_fps - 1e-9
