"""Shake, headlights at night, a cloud's shadow, someone far away, someone creeping: the real
daemon on scenes made from real footage (vtest.avi), with a known truth.

Every walk is recorded from its start (its clip, with the pre-roll, begins no later than the
walk), and nothing else is recorded, not even a clip discarded as noise. Each scene reproduces
a failure of the detection before these cases were handled (shown by the same scene with the
new settings off, below). scripts/bench_scenes.py plays the same scenes to motiond and
Motion 4.5.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.footage import FPS, FootageScene, Walk, footage_scenes, load_footage
from tests.fixtures.scene_runs import SceneRun, run_scene
from tests.fixtures.scenes import write_scene_video

pytestmark = pytest.mark.slow


def scenes(vtest: Path) -> dict[str, tuple[FootageScene, float]]:
    return footage_scenes(load_footage(vtest))


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
