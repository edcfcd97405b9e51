"""The pure parts of shake, light, slow movers and regions, one by one, on synthetic pictures."""

from __future__ import annotations

import cv2
import numpy as np

from motiond.detect.baseline import Baseline, Past
from motiond.detect.boxes import Box, MotionResult
from motiond.detect.light import Pair, light_regions
from motiond.detect.regions import MERGE_KERNEL, NEIGHBOURHOOD_KERNEL, Regions
from motiond.detect.shake import ShakeEstimator, aligned

rng = np.random.default_rng(3)
TEXTURE = cv2.GaussianBlur(rng.uniform(30, 220, (120, 160)).astype(np.float32), (0, 0), 0.8)


def pair(picture: np.ndarray) -> Pair:
    clipped = np.clip(picture, 0, 255).astype(np.uint8)
    blurred = cv2.GaussianBlur(clipped, (5, 5), 0)
    return Pair(blurred, clipped, blurred)


def judge(before: np.ndarray, now: np.ndarray) -> bool:
    """Whether the middle 40x40 square, as one region, changed by light only."""
    ys, xs = np.mgrid[40:80, 60:100]
    label = np.ones(ys.size, np.int32)
    light = light_regions(label, 2, ys.ravel(), xs.ravel(), now=pair(now), before=pair(before))
    return bool(light[1])


def test_the_same_texture_brighter_or_darker_is_light_and_a_new_one_is_not() -> None:
    assert judge(TEXTURE, TEXTURE * 1.8)  # headlights
    assert judge(TEXTURE, TEXTURE * 0.6)  # a shadow
    other = np.roll(TEXTURE, 17, axis=1)  # something else in front
    assert not judge(TEXTURE, other)
    assert not judge(TEXTURE, TEXTURE * 0.15)  # a hand over the lens: beyond a light's gain
    # A faint texture (fine texture's spread about 5 gray levels, twice a camera's noise after
    # the blur) replaced by another one: an object, not light.
    faint = cv2.GaussianBlur(rng.uniform(30, 220, TEXTURE.shape).astype(np.float32), (0, 0), 1.1)
    assert not judge(faint, np.roll(faint, 17, axis=1))
    assert judge(faint, faint * 1.6)
    flat = np.full_like(TEXTURE, 120.0)
    assert judge(flat, flat * 1.5)  # a beam on a plain wall
    assert not judge(flat, TEXTURE)  # an object in front of it


def test_phase_correlation_finds_the_shift_and_alignment_undoes_it() -> None:
    picture = TEXTURE.astype(np.uint8)
    matrix = np.array([[1.0, 0.0, 2.5], [0.0, 1.0, -1.5]], np.float32)
    moved = cv2.warpAffine(picture, matrix, (160, 120), borderMode=cv2.BORDER_REFLECT)
    shift = ShakeEstimator().shift(picture, moved)
    assert shift is not None
    assert abs(shift.dx - 2.5) < 0.4 and abs(shift.dy + 1.5) < 0.4
    inner = (slice(6, -6), slice(6, -6))
    before = cv2.absdiff(picture, moved)[inner].mean()
    after = cv2.absdiff(aligned(picture, shift), moved)[inner].mean()
    assert after < before / 3
    assert ShakeEstimator().shift(picture, picture) is None  # no shift, nothing to undo


def test_the_baseline_gives_the_picture_of_a_second_ago_and_the_one_before() -> None:
    baseline = Baseline(1.0)
    empty = pair(TEXTURE)
    for index in range(20):  # 10 fps: one kept every quarter second
        baseline.keep(Past(index / 10, empty, (0.0, 0.0)))
    found = baseline.past(1.95)
    assert found is not None
    past, before = found
    assert past.mono == 0.9 and before.mono == 0.6
    baseline.shaken(2.0)
    assert baseline.past(2.5) is None  # not across a shake
    assert Baseline(1.0).past(5.0) is None


def test_the_overlay_gets_a_reason_per_box() -> None:
    result = MotionResult(
        delta=0.01,
        lighting=False,
        boxes=(Box(1, 2, 3, 4),),
        ignored_boxes=(Box(5, 6, 7, 8), Box(9, 9, 9, 9)),
        reasons=("small mover",),
        ignored_reasons=("light", "small"),
        mover=True,
        shift=(1.5, -0.5),
    )
    assert result.why() == {
        "reasons": ["small mover"],
        "ignored_reasons": ["light", "small"],
        "mover": True,
        "shift": [1.5, -0.5],
    }


def test_regions_are_numbered_as_labelling_the_whole_picture_numbers_them() -> None:
    """Regions label only the rectangle around the changes (cheaper); their numbers, which
    order boxes of equal size, and their neighbourhoods' must be the whole picture's."""
    pictures = np.random.default_rng(11)
    for _ in range(300):
        height, width = pictures.integers(3, 120), pictures.integers(3, 200)
        changed = np.zeros((height, width), np.uint8)
        top, left = pictures.integers(0, height), pictures.integers(0, width)
        bottom, right = pictures.integers(top, height) + 1, pictures.integers(left, width) + 1
        changed[top:bottom, left:right] = pictures.random((bottom - top, right - left)) < 0.2
        regions = Regions(changed)
        count, labels = cv2.connectedComponents(cv2.dilate(changed, MERGE_KERNEL), connectivity=8)
        assert regions.count == count
        assert np.array_equal(regions.label, labels[regions.ys, regions.xs])
        grid = np.zeros((-(-height // 2), -(-width // 2)), np.uint8)
        grid[regions.ys // 2, regions.xs // 2] = 1
        count, labels = cv2.connectedComponents(
            cv2.dilate(grid, NEIGHBOURHOOD_KERNEL), connectivity=8
        )
        neighbourhood, groups = regions.neighbourhoods()
        assert groups == count
        assert np.array_equal(neighbourhood, labels[regions.ys // 2, regions.xs // 2])
