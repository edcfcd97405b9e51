"""Shake, headlights at night, a cloud's shadow, someone far away, someone creeping: the real
daemon on scenes made from real footage (vtest.avi), with a known truth.

Every walk is recorded from its start (its clip, with the pre-roll, begins no later than the
walk), and nothing else is recorded, not even a clip discarded as noise. Each scene reproduces
a failure of the detection before these cases were handled (shown by the same scene with the
new settings off, in the unit tests' controls and in scripts/bench_scenes.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.footage import FPS, FootageScene, Shadow, Sweep, Walk, load_footage
from tests.fixtures.scene_runs import SceneRun, run_scene
from tests.fixtures.scenes import write_scene_video

pytestmark = pytest.mark.slow

ACROSS = ((150.0, 330.0), (400.0, 330.0))  # a walk across the road, at walking speed in 6 s


def scenes(vtest: Path) -> dict[str, tuple[FootageScene, float]]:
    footage = load_footage(vtest)
    return {
        # The camera shakes for 8 s with nothing else; then shakes again while someone walks.
        "shake": (
            FootageScene(footage, walks=[Walk(15, 21, *ACROSS)], shake=[(2, 10), (14, 22)]),
            24.0,
        ),
        # Night: half as bright, noisier; headlights sweep across twice, then someone walks.
        "beam": (
            FootageScene(
                footage,
                walks=[Walk(15, 21, *ACROSS)],
                lights=[Sweep(3, 5), Sweep(8, 10)],
                brightness=0.5,
                noise=4.0,
            ),
            24.0,
        ),
        # A cloud's shadow crosses the whole scene over 10 s, then someone walks.
        "shadow": (
            FootageScene(footage, walks=[Walk(16, 22, *ACROSS)], lights=[Shadow(2, 12)]),
            25.0,
        ),
        # Someone far away: a third of the size, walking for 10 s.
        "small": (FootageScene(footage, walks=[Walk(3, 13, (20, 205), (150, 205), 1 / 3)]), 16.0),
        # Someone creeping at a quarter of walking speed for 16 s.
        "creeper": (FootageScene(footage, walks=[Walk(3, 19, (200, 400), (360, 400))]), 22.0),
    }


def assert_only_the_walks(run: SceneRun, walks: list[Walk]) -> None:
    spans = [(c.first, c.last) for c in run.clips]
    assert len(run.clips) == len(walks), (spans, run.log)
    for clip, walk in zip(sorted(run.clips, key=lambda c: c.first), walks, strict=True):
        assert clip.first <= walk.t0, (walk, spans)  # from its start, with the pre-roll
        assert clip.first >= walk.t0 - 2.5, (walk, spans)  # the pre-roll, not an earlier clip
        assert clip.last >= walk.t1 - 1.0, (walk, spans)
    # Nothing else started a clip, not even one discarded as noise.
    assert len(run.of("clip_start")) == len(walks), run.log


@pytest.mark.parametrize("name", ["shake", "beam", "shadow", "small", "creeper"])
def test_each_walk_is_recorded_from_its_start_and_nothing_else(
    name: str, vtest: Path, tmp_path: Path
) -> None:
    scene, seconds = scenes(vtest)[name]
    video = write_scene_video(tmp_path / f"{name}.avi", scene, seconds=seconds, fps=FPS)
    run = run_scene(tmp_path, video, {})
    assert_only_the_walks(run, scene.walks)


OFF = {"shake": False, "light_check": False, "small_area": 0, "slow_baseline": "0s"}


@pytest.mark.parametrize("name", ["shake", "beam", "small", "creeper"])
def test_the_same_scenes_fail_with_the_new_settings_off(
    name: str, vtest: Path, tmp_path: Path
) -> None:
    """The control: without undoing shake, the light check, small and slow movers, each of
    these scenes records something else or misses the start of its walk."""
    scene, seconds = scenes(vtest)[name]
    video = write_scene_video(tmp_path / f"{name}.avi", scene, seconds=seconds, fps=FPS)
    run = run_scene(tmp_path, video, OFF)
    with pytest.raises(AssertionError):
        assert_only_the_walks(run, scene.walks)
