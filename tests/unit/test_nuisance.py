"""Areas that never stop moving, and specks, in the detector: pure, on synthetic frames.

Learning is paced by the frames' times (10 frames a second here), never by the wall clock.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

import motiond.detect.nuisance as nuisance_module
from motiond.config import MotionConfig
from motiond.detect.motion import MotionDetector, MotionResult
from motiond.detect.nuisance import NuisanceModel, time_constant
from motiond.detect.trigger import Action, RecordingTrigger
from tests.fixtures.scenes import Rect, SceneScript, Snow, SwayingBranches, Walker

FPS = 10.0
TREE = Rect(190, 30, 110, 120)
THRESHOLD = MotionConfig().threshold


def play(
    detector: MotionDetector, scene: SceneScript, start: float, end: float, fps: float = FPS
) -> list[tuple[float, MotionResult]]:
    """Feed the scene from ``start`` to ``end`` seconds; (time, result) of every frame."""
    results = []
    for index in range(round((end - start) * fps)):
        t = start + index / fps
        image = scene.frame(t)
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        result = detector.detect(gray, scene.width, scene.height, now=t)
        if result is not None:
            results.append((t, result))
    return results


def changed_times(results: list[tuple[float, MotionResult]]) -> list[float]:
    return [t for t, r in results if r.delta > THRESHOLD and not r.lighting]


def kept_clips(results: list[tuple[float, MotionResult]]) -> int:
    """How many clips the default trigger would keep from these frames."""
    trigger = RecordingTrigger(MotionConfig(), max_clip=600.0)
    kept = 0
    for t, result in results:
        decision = trigger.update(result.delta, result.lighting, t)
        kept += decision.action is Action.STOP and decision.keep
    return kept + trigger.finish().keep


def test_time_constant_learns_foliage_in_the_learning_time() -> None:
    tau = time_constant(120.0)
    share = nuisance_module.TYPICAL_SHARE
    # A pixel moving in TYPICAL_SHARE of the frames reaches the ignore level at 120 s.
    assert share * (1 - math.exp(-120.0 / tau)) == pytest.approx(nuisance_module.ENTER_LEVEL)
    # One moving in every frame, sooner.
    assert -tau * math.log(1 - nuisance_module.ENTER_LEVEL) < 0.75 * 120.0


def test_a_swaying_tree_is_learned_within_the_learning_time_and_then_ignored() -> None:
    away = Walker(130.0, 136.0, (10, 225), (310, 225))
    through = Walker(140.0, 146.0, (10, 200), (318, 200), height=80)
    detector = MotionDetector(MotionConfig())
    scene = SceneScript(branches=SwayingBranches(TREE), walkers=[away, through])
    results = play(detector, scene, 0.0, 150.0)
    changed = changed_times(results)
    assert changed and changed[0] < 1.0  # it counts at first: the first clip
    tree_alone = [t for t in changed if t < away.t0]
    assert max(tree_alone) < 120.0, max(tree_alone)  # learned within nuisance_learning (2 min)
    assert detector.nuisance is not None
    ignored = detector.nuisance.ignored
    share = float(ignored[TREE.y : TREE.y + TREE.height, TREE.x : TREE.x + TREE.width].mean())
    assert share > 0.6  # most of the tree's box (its edges move less)
    # Nothing else: leaves swing and reach a few pixels beyond the box, areas a few more.
    margin = 20
    outside = ignored.copy()
    outside[
        TREE.y - margin : TREE.y + TREE.height + margin,
        TREE.x - margin : TREE.x + TREE.width + margin,
    ] = 0
    assert not outside.any()
    assert 0.1 < detector.nuisance.ignored_share < 0.2
    (outline, *_) = detector.nuisance.areas
    xs = [x for x, _ in outline]
    assert TREE.x - margin <= min(xs) and max(xs) <= TREE.x + TREE.width + margin
    # The tree's movement is still reported, as not counting.
    _, last = results[-1]
    assert last.raw_delta > THRESHOLD and last.ignored_boxes
    # People walking away from it, and through it (legs below, body in front), count.
    for walker in (away, through):
        during = [t for t in changed if walker.t0 <= t < walker.t1]
        assert len(during) >= 30, (walker, len(during))  # of 60 frames
    assert kept_clips([(t, r) for t, r in results if t >= 125.0]) == 2


def test_the_learning_time_is_configurable() -> None:
    scene = SceneScript(branches=SwayingBranches(TREE))
    fast = MotionDetector(MotionConfig(nuisance_learning=30.0))
    assert max(changed_times(play(fast, scene, 0.0, 60.0))) < 30.0


def test_learning_is_paced_by_frame_times_not_frame_counts() -> None:
    ys, xs = np.nonzero(np.ones((40, 40), np.uint8))
    shape = (80, 80)
    slow, hurried = NuisanceModel(30.0), NuisanceModel(30.0)
    for index in range(300):  # the same 300 frames: over 30 s, and over 3 s
        slow.update(ys, xs, shape, index * 0.1, None)
        hurried.update(ys, xs, shape, index * 0.01, None)
    assert slow.ignored_share > 0.2  # the moving 40x40 of 80x80, and around it
    assert hurried.ignored_share == 0.0


@pytest.mark.parametrize("unusual_cells", [True, False], ids=["as-is", "control"])
def test_a_person_inside_a_learned_area_counts_where_it_moves_far_more_than_usual(
    unusual_cells: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not unusual_cells:  # the control: no cell is ever unusual
        monkeypatch.setattr(nuisance_module, "UNUSUAL_MARGIN", 10.0)
    area = Rect(40, 60, 240, 120)
    inside = Walker(100.0, 106.0, (60, 175), (260, 175), height=100)
    scene = SceneScript(branches=SwayingBranches(area, leaves=300), walkers=[inside])
    detector = MotionDetector(MotionConfig(nuisance_learning=30.0))
    results = play(detector, scene, 0.0, 110.0)
    assert detector.nuisance is not None and detector.nuisance.ignored_share > 0.2
    assert not [t for t in changed_times(results) if 60.0 <= t < inside.t0]
    # The walker's clip is kept thanks to the cells changing far more than usual.
    assert kept_clips([(t, r) for t, r in results if t >= 95.0]) == (1 if unusual_cells else 0)


def test_an_area_counts_again_after_it_has_been_calm_for_a_while() -> None:
    detector = MotionDetector(MotionConfig(nuisance_learning=30.0))
    play(detector, SceneScript(branches=SwayingBranches(TREE)), 0.0, 60.0)
    assert detector.nuisance is not None and detector.nuisance.ignored_share > 0.1
    still = SceneScript()
    play(detector, still, 60.0, 70.0)
    assert detector.nuisance.ignored_share > 0.1  # calm for a moment: still ignored
    play(detector, still, 70.0, 200.0)
    assert detector.nuisance.ignored_share == 0.0


def test_a_gap_between_frames_teaches_nothing() -> None:
    model = NuisanceModel(learning_time=30.0)
    ys, xs = np.nonzero(np.ones((40, 40), np.uint8))
    model.update(ys, xs, (80, 80), 0.0, None)
    model.update(ys, xs, (80, 80), 1000.0, None)  # counts as MAX_STEP at most
    model.reset_clock()
    model.update(ys, xs, (80, 80), 5000.0, None)  # after a reconnect: nothing
    assert model.ignored_share == 0.0


def test_snow_is_never_learned_and_never_counts() -> None:
    snow = Snow(flakes=60, radius=(1, 1))
    detector = MotionDetector(MotionConfig(nuisance_learning=30.0))
    results = play(detector, SceneScript(snow=(0.0, 400.0, snow)), 0.0, 120.0)
    assert kept_clips(results) == 0
    assert len(changed_times(results)) < 5  # a stray frame where flakes happen to meet
    assert max(r.raw_delta for _, r in results) > THRESHOLD  # it did change, as specks
    largest = sorted(r.largest for _, r in results)
    assert largest[len(largest) // 2] < MotionConfig().min_area  # specks, most flakes apart
    assert detector.nuisance is not None and detector.nuisance.ignored_share == 0.0


def test_the_same_snow_counts_without_min_area() -> None:
    snow = Snow(flakes=60, radius=(1, 1))
    detector = MotionDetector(MotionConfig(min_area=0.0))
    results = play(detector, SceneScript(snow=(0.0, 400.0, snow)), 0.0, 10.0)
    assert len(changed_times(results)) > len(results) // 2
    assert kept_clips(results) == 1


def test_a_person_in_the_snow_counts() -> None:
    walker = Walker(3.0, 9.0, (10, 225), (310, 225))
    snow = Snow(flakes=60, radius=(1, 1))
    detector = MotionDetector(MotionConfig())
    results = play(detector, SceneScript(snow=(0.0, 10.0, snow), walkers=[walker]), 0.0, 10.0)
    during = [t for t in changed_times(results) if walker.t0 <= t < walker.t1]
    assert len(during) >= 30, len(during)
    assert kept_clips(results) == 1


def test_people_passing_the_same_way_all_the_time_are_not_learned() -> None:
    """A busy path: someone crosses the same way every 4 s for five minutes."""
    walkers = [
        Walker(start, start + 3.0, (0, 200), (320, 200), height=70)
        for start in np.arange(1.0, 300.0, 4.0)
    ]
    detector = MotionDetector(MotionConfig())
    results = play(detector, SceneScript(walkers=walkers), 0.0, 300.0)
    assert detector.nuisance is not None and detector.nuisance.ignored_share == 0.0
    last = walkers[-1]
    assert [t for t in changed_times(results) if last.t0 <= t < last.t1]


def test_nuisance_off_keeps_counting_the_tree() -> None:
    detector = MotionDetector(MotionConfig(nuisance=False, nuisance_learning=30.0))
    results = play(detector, SceneScript(branches=SwayingBranches(TREE)), 0.0, 90.0)
    assert detector.nuisance is None and detector.ignored_areas() == ()
    assert max(changed_times(results)) > 89.0
