"""The detector on synthetic frames: noise, motion, lighting, masks, boxes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from motiond.config import MotionConfig
from motiond.detect.motion import Box, MotionDetector, _brightness, union_of
from testbed.synthetic import HEIGHT, WIDTH, background, gray, with_noise, with_square

_clock = [0.0]


def tick() -> float:
    """The next frame's time: 10 frames a second."""
    _clock[0] += 0.1
    return _clock[0]


def run(detector: MotionDetector, frames: list[np.ndarray]) -> list[float]:
    deltas = []
    for frame in frames:
        result = detector.detect(gray(frame), frame.shape[1], frame.shape[0], now=tick())
        if result is not None:
            deltas.append(result.delta)
    return deltas


def test_first_frame_has_no_delta_and_reset_forgets() -> None:
    detector = MotionDetector(MotionConfig())
    scene = background()
    assert detector.detect(gray(scene), WIDTH, HEIGHT, now=tick()) is None
    assert detector.detect(gray(scene), WIDTH, HEIGHT, now=tick()) is not None
    detector.reset()
    assert detector.detect(gray(scene), WIDTH, HEIGHT, now=tick()) is None


def test_sensor_noise_alone_stays_below_threshold() -> None:
    config = MotionConfig()
    rng = np.random.default_rng(3)
    scene = background()
    deltas = run(MotionDetector(config), [with_noise(scene, rng, sigma=6.0) for _ in range(100)])
    assert max(deltas) <= config.threshold


def test_moving_square_exceeds_threshold_with_a_box_around_it() -> None:
    config = MotionConfig()
    detector = MotionDetector(config)
    scene = background()
    detector.detect(gray(with_square(scene, 100, 100)), WIDTH, HEIGHT, now=tick())
    result = detector.detect(gray(with_square(scene, 112, 100)), WIDTH, HEIGHT, now=tick())
    assert result is not None
    assert result.delta > config.threshold
    assert not result.lighting
    union = union_of(result.boxes)
    assert union is not None
    # The change spans x 100..136, y 100..124; boxes are dilated a little.
    assert 85 <= union.x <= 102 and 85 <= union.y <= 102
    assert 130 <= union.x + union.width <= 150 and 118 <= union.y + union.height <= 140


def test_uniform_lighting_ramp_is_not_change() -> None:
    config = MotionConfig()
    rng = np.random.default_rng(5)
    scene = background()
    frames = [
        with_noise(np.clip(scene.astype(int) + 3 * i, 0, 255).astype(np.uint8), rng)
        for i in range(30)
    ]
    assert max(run(MotionDetector(config), frames)) <= config.threshold


def test_sudden_whole_picture_change_is_lighting() -> None:
    detector = MotionDetector(MotionConfig())
    rng = np.random.default_rng(2)
    detector.detect(gray(background(seed=1)), WIDTH, HEIGHT, now=tick())
    garbled = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    result = detector.detect(gray(garbled), WIDTH, HEIGHT, now=tick())
    assert result is not None and result.lighting
    assert result.boxes == ()


def test_lightswitch_zero_turns_it_off() -> None:
    detector = MotionDetector(MotionConfig(lightswitch=0.0))
    detector.detect(gray(background(seed=1)), WIDTH, HEIGHT, now=tick())
    noise = np.random.default_rng(2).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    result = detector.detect(gray(noise), WIDTH, HEIGHT, now=tick())
    assert result is not None and not result.lighting and result.delta > 0.5


def test_masked_region_never_counts() -> None:
    mask = ((90, 90), (150, 90), (150, 130), (90, 130))
    scene = background()
    frames = [with_square(scene, 100 + 4 * i, 100) for i in range(5)]
    unmasked = run(MotionDetector(MotionConfig()), frames)
    masked = run(MotionDetector(MotionConfig(masks=(mask,))), frames)
    assert min(unmasked) > MotionConfig().threshold
    assert max(masked) == 0.0


def test_masks_are_in_source_pixels_whatever_the_detection_size() -> None:
    # A 1280x960 source: the same square, scaled by 4; the mask is in source pixels.
    big = np.kron(background(), np.ones((4, 4, 1), np.uint8))
    mask = ((360, 360), (600, 360), (600, 520), (360, 520))
    frames = [with_square(big, 400 + 16 * i, 400, size=96) for i in range(4)]
    detector = MotionDetector(MotionConfig(masks=(mask,)))
    assert max(run(detector, frames)) == 0.0


def test_boxes_scale_to_source_pixels() -> None:
    big = np.kron(background(), np.ones((2, 2, 1), np.uint8))  # 640x480
    detector = MotionDetector(MotionConfig())
    detector.detect(gray(with_square(big, 200, 200, size=48)), 640, 480, now=tick())
    result = detector.detect(gray(with_square(big, 224, 200, size=48)), 640, 480, now=tick())
    assert result is not None
    union = union_of(result.boxes)
    assert union is not None and 180 <= union.x <= 205 and union.x + union.width >= 265


def test_box_union() -> None:
    assert Box(0, 0, 10, 10).union(Box(5, 5, 10, 10)) == Box(0, 0, 15, 15)
    assert union_of([]) is None


@pytest.mark.parametrize("blur", [0, 3, 5])
def test_blur_settings_work(blur: int) -> None:
    detector = MotionDetector(MotionConfig(blur=blur))
    scene = background()
    detector.detect(gray(with_square(scene, 10, 10)), WIDTH, HEIGHT, now=tick())
    result = detector.detect(gray(with_square(scene, 40, 10)), WIDTH, HEIGHT, now=tick())
    assert result is not None and result.delta > 0.003


@pytest.mark.parametrize(
    ("frame_width", "scale"),
    [(320, 1), (200, 1), (640, 2), (768, 2), (1280, 4), (1920, 8), (3840, 16)],
)
def test_detection_scale_is_a_power_of_two_near_detect_width(frame_width: int, scale: int) -> None:
    from motiond.detect.motion import detection_scale

    assert detection_scale(frame_width, 320) == scale


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**32 - 1),
    st.integers(min_value=1, max_value=255),
    st.sampled_from(["none", "half", "random"]),
    st.integers(min_value=-40, max_value=40),
    st.integers(min_value=0, max_value=30),
)
def test_the_still_check_agrees_with_the_changed_pixels(
    seed: int, pixel_threshold: int, masking: str, shift: int, spread: int
) -> None:
    """``_unchanged`` (one call: the largest difference) is true exactly when ``_changed``
    marks no pixel, brightness matching and mask included."""
    rng = np.random.default_rng(seed)
    before = rng.integers(0, 256, (18, 24), dtype=np.uint8)
    noise = rng.integers(-spread, spread + 1, before.shape)
    small = np.clip(before.astype(int) + shift + noise, 0, 255).astype(np.uint8)
    mask = None
    if masking == "half":
        mask = np.zeros(before.shape, np.uint8)
        mask[:, :12] = 1
    elif masking == "random":
        mask = rng.integers(0, 2, before.shape, dtype=np.uint8)
    detector = MotionDetector(MotionConfig(pixel_threshold=pixel_threshold))
    stats, before_stats = _brightness(small, mask), _brightness(before, mask)
    changed = detector._changed(small, stats, before, before_stats, mask)
    unchanged = detector._unchanged(small, stats, before, before_stats, mask)
    assert unchanged == (cv2.countNonZero(changed) == 0)


def test_the_still_check_leaves_every_result_as_it_was() -> None:
    """Over still, moving and masked frames, the detector with the still check gives the
    results of the detector without it, frame by frame."""
    rng = np.random.default_rng(7)
    base = background()
    frames = [with_noise(base, rng) for _ in range(12)]
    frames += [with_noise(with_square(base, 40 + 8 * i, 60), rng) for i in range(10)]
    frames += [with_noise(base, rng, sigma=0.0) for _ in range(6)]
    frames += [with_noise(base, rng) for _ in range(6)]
    masks = {"masks": [[[0, 0], [WIDTH // 2, 0], [WIDTH // 2, HEIGHT], [0, HEIGHT]]]}
    for extra in ({}, masks):
        config = MotionConfig(**extra)
        checked, full = MotionDetector(config), MotionDetector(config)
        full._unchanged = lambda *args, **kwargs: False  # type: ignore[method-assign]
        stills = 0
        for index, frame in enumerate(frames):
            now = index / 10
            picture = gray(frame)
            a = checked.detect(picture, WIDTH, HEIGHT, now=now)
            b = full.detect(picture, WIDTH, HEIGHT, now=now)
            assert a == b, index
            stills += checked._was_still
        assert stills >= 10  # the check ran on the still frames


def test_the_still_check_counts_only_what_the_mask_lets_count() -> None:
    before = np.full((18, 24), 100, np.uint8)
    small = before.copy()
    small[:, 12:] = 200  # a change, only where the mask leaves out
    mask = np.zeros(before.shape, np.uint8)
    mask[:, :12] = 1
    detector = MotionDetector(MotionConfig())
    stats, before_stats = _brightness(small, mask), _brightness(before, mask)
    assert detector._unchanged(small, stats, before, before_stats, mask)
    assert not detector._unchanged(small, stats, before, before_stats, None)
