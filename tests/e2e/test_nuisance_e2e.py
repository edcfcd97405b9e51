"""Nuisance motion end to end: the real daemon on generated scenes with a known truth.

A tree swaying in place for minutes costs at most its first clip, while people walking past
it, or through it, are recorded; snow falling over the whole picture records nothing, while a
person walking through the snow is recorded. Videos are read as fast as they decode, so the
minutes of learning take seconds, and learning is paced by the frames' own times.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.scene_runs import SceneRun, run_scene
from tests.fixtures.scenes import (
    Rect,
    SceneScript,
    Snow,
    SwayingBranches,
    Walker,
    write_scene_video,
)

pytestmark = pytest.mark.slow

FPS = 10.0
LEARNING = 120.0  # the default motion.nuisance_learning
TREE = Rect(190, 30, 110, 120)
# Away from the tree, along the bottom; then through it: legs below it, body in front of it.
AWAY = Walker(200.0, 206.0, (10, 225), (310, 225))
THROUGH = Walker(220.0, 226.0, (10, 200), (318, 200), height=80)


def assert_clip_of(run: SceneRun, walker: Walker) -> None:
    """A kept clip starts within a second of the walker's appearance and lasts while they walk."""
    clips = [c for c in run.clips if c.first <= walker.t0 + 1.0 and c.last >= walker.t0]
    assert clips, (walker, [(c.first, c.last) for c in run.clips], run.log)
    (clip,) = clips
    assert clip.first >= walker.t0 - 2.5  # the pre-roll, not an older clip
    assert clip.last >= walker.t1 - 1.0, (walker, clip.first, clip.last)


def test_a_swaying_tree_costs_its_first_clip_and_people_are_still_recorded(
    tmp_path: Path,
) -> None:
    scene = SceneScript(branches=SwayingBranches(TREE), walkers=[AWAY, THROUGH])
    video = write_scene_video(tmp_path / "tree.avi", scene, seconds=250, fps=FPS)
    run = run_scene(tmp_path, video, {})

    tree_clips = [c for c in run.clips if c.first < AWAY.t0 - 2.5]
    # The tree starts swaying at once: its first clip lasts until the tree is learned, within
    # the learning time, and nothing else is kept from it.
    (first,) = tree_clips
    assert first.first <= 1.0 and first.last <= LEARNING + 5.0, (first.first, first.last)
    assert_clip_of(run, AWAY)
    assert_clip_of(run, THROUGH)
    assert len(run.clips) == 3, [(c.first, c.last) for c in run.clips]
    # Hooks saw the same: a start for each kept clip (and perhaps discarded blips), no tamper.
    assert len(run.of("clip_end")) == 3
    assert not run.of("camera_tampered")


def test_snow_alone_records_nothing_and_a_person_in_the_snow_is_recorded(
    tmp_path: Path,
) -> None:
    walker = Walker(30.0, 36.0, (20, 440), (620, 440), height=120)
    scene = SceneScript(
        width=640, height=480, snow=(0.0, 60.0, Snow(flakes=200, radius=(1, 2))), walkers=[walker]
    )
    video = write_scene_video(tmp_path / "snow.avi", scene, seconds=60, fps=FPS)
    run = run_scene(tmp_path, video, {})
    assert len(run.clips) == 1, [(c.first, c.last) for c in run.clips]
    assert_clip_of(run, walker)
    # Nothing but the walker started a clip, not even one discarded as noise.
    assert len(run.of("clip_start")) == 1, run.log


def test_the_same_snow_records_without_min_area(tmp_path: Path) -> None:
    """The control: with motion.min_area 0 every speck counts."""
    scene = SceneScript(width=640, height=480, snow=(0.0, 20.0, Snow(flakes=200, radius=(1, 2))))
    video = write_scene_video(tmp_path / "snow.avi", scene, seconds=20, fps=FPS)
    run = run_scene(tmp_path, video, {"min_area": 0})
    assert run.clips, run.log
