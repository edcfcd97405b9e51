"""Shake, light that moves, small and slow movers: the detector on synthetic frames.

Each case has its control (the mechanism off), so each test can fail.
"""

from __future__ import annotations

import cv2
import numpy as np

from motiond.config.motion import MotionConfig
from motiond.detect.motion import MotionDetector, MotionResult
from tests.fixtures.scenes import panorama

WIDTH, HEIGHT = 320, 240
FPS = 10.0
THRESHOLD = MotionConfig().threshold


def scene_gray() -> np.ndarray:
    wide = cv2.cvtColor(panorama(WIDTH + 40, HEIGHT + 40, seed=2), cv2.COLOR_BGR2GRAY)
    return wide.astype(np.float32)


def shifted(picture: np.ndarray, dx: float, dy: float) -> np.ndarray:
    matrix = np.array([[1.0, 0.0, dx - 20.0], [0.0, 1.0, dy - 20.0]], np.float32)
    moved: np.ndarray = cv2.warpAffine(picture, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)
    return moved


def noisy(picture: np.ndarray, rng: np.random.Generator, sigma: float = 3.0) -> np.ndarray:
    noise = rng.normal(0.0, sigma, picture.shape).astype(np.float32)
    result: np.ndarray = np.clip(picture + noise, 0, 255).astype(np.uint8)
    return result


def run(config: MotionConfig, frames: list[np.ndarray]) -> list[MotionResult]:
    detector = MotionDetector(config)
    results = []
    for index, frame in enumerate(frames):
        result = detector.detect(frame, WIDTH, HEIGHT, now=index / FPS)
        if result is not None:
            results.append(result)
    return results


def changed(results: list[MotionResult]) -> int:
    return sum(1 for r in results if (r.delta > THRESHOLD or r.mover) and not r.lighting)


def shaking(with_object: bool) -> list[np.ndarray]:
    rng = np.random.default_rng(4)
    base = scene_gray()
    frames = []
    for index in range(60):
        dx, dy = rng.uniform(-3.0, 3.0, 2) * (1 if index >= 5 else 0)
        picture = shifted(base, dx, dy)
        if with_object:  # a 30x50 dark figure walking 4 px a frame, with the shake
            x = int(20 + 4 * index + dx)
            picture[100 + int(dy) : 150 + int(dy), x : x + 30] = 35.0
        frames.append(noisy(picture, rng))
    return frames


def test_a_shaking_camera_records_nothing_and_its_shift_is_undone() -> None:
    results = run(MotionConfig(), shaking(with_object=False))
    assert changed(results) <= 2  # a stray frame, far below min_changed_frames
    assert sum(1 for r in results if r.shift is not None) > 40
    # The control: without undoing the shake, nearly every frame is a changed frame.
    assert changed(run(MotionConfig(shake=False), shaking(with_object=False))) > 40


def test_something_moving_during_the_shake_still_counts() -> None:
    results = run(MotionConfig(), shaking(with_object=True))
    assert changed(results) > 50
    moving = [r for r in results if r.boxes]
    # The box is on the figure (camera pixels), not along the picture's edges.
    assert all(90 <= r.boxes[0].y <= 110 and r.boxes[0].height <= 70 for r in moving[5:])


def beam_frames(with_object: bool) -> list[np.ndarray]:
    """At night (half brightness, noisier): a soft beam of light sweeping across twice."""
    rng = np.random.default_rng(5)
    base = shifted(scene_gray(), 0.0, 0.0) * 0.5
    xs = np.arange(WIDTH, dtype=np.float32)
    frames = []
    for index in range(60):
        centre = -60 + (index % 30) * 15.0
        gain = 1.0 + 0.9 * np.exp(-(((xs - centre) / 35.0) ** 2))
        picture = base * gain[None, :]
        if with_object and index >= 30:
            x = 40 + 5 * (index - 30)
            picture[90:160, x : x + 25] = 20.0 + 40.0 * (np.arange(70)[:, None] % 7 < 3)
        frames.append(noisy(picture, rng, sigma=4.0))
    return frames


def test_a_sweeping_beam_is_light_not_motion() -> None:
    results = run(MotionConfig(), beam_frames(with_object=False))
    assert changed(results) == 0
    assert any("light" in r.ignored_reasons for r in results)
    # The control: without the light check the beam is motion.
    assert changed(run(MotionConfig(light_check=False), beam_frames(with_object=False))) > 10


def test_an_object_in_the_beam_counts() -> None:
    results = run(MotionConfig(), beam_frames(with_object=True))
    assert changed(results[:29]) == 0
    assert changed(results[31:]) >= 18  # of 28


def small_walker(specks: bool) -> list[np.ndarray]:
    """A figure of 5x9 pixels (below min_area) walking 1 px a frame, or 40 specks of 3x3
    (rain under an infrared lamp) that are somewhere else in every frame."""
    rng = np.random.default_rng(6)
    base = shifted(scene_gray(), 0.0, 0.0)
    frames = []
    for index in range(50):
        picture = base.copy()
        if specks:
            for x, y in rng.integers(10, 230, (40, 2)):
                picture[y : y + 3, x : x + 3] = 250.0
        else:
            x = 60 + index
            picture[120:129, x : x + 5] = 15.0
        frames.append(noisy(picture, rng))
    return frames


def test_a_small_steady_mover_counts_and_specks_do_not() -> None:
    walker = run(MotionConfig(), small_walker(specks=False))
    assert all(r.delta <= THRESHOLD for r in walker)  # too small for threshold and min_area
    movers = [i for i, r in enumerate(walker) if r.mover]
    # Confirmed from its 8th frame; not in frames where its edges change too few pixels.
    assert movers and movers[0] <= 12 and len(movers) >= 20
    # The control: with small_area 0 the small walker is never seen.
    assert changed(run(MotionConfig(small_area=0.0), small_walker(specks=False))) == 0


def test_specks_somewhere_else_in_every_frame_are_no_small_mover() -> None:
    assert changed(run(MotionConfig(), small_walker(specks=True))) == 0


def creeper() -> list[np.ndarray]:
    """A 30x60 figure creeping at 1 px a frame (10 px a second) from frame 20 on."""
    rng = np.random.default_rng(7)
    base = shifted(scene_gray(), 0.0, 0.0)
    frames = []
    for index in range(80):
        picture = base.copy()
        x = 100 + max(0, index - 20) * 1.0
        figure = shifted(np.full((HEIGHT + 40, WIDTH + 40), 255.0, np.float32), 0, 0)
        picture = np.where(
            (np.arange(WIDTH)[None, :] >= x)
            & (np.arange(WIDTH)[None, :] < x + 30)
            & (np.arange(HEIGHT)[:, None] >= 90)
            & (np.arange(HEIGHT)[:, None] < 150),
            40.0 + 0 * figure,
            picture,
        )
        frames.append(noisy(picture, rng))
    return frames


def test_a_slow_mover_is_seen_within_a_second_of_starting() -> None:
    results = run(MotionConfig(), creeper())
    first = next(i for i, r in enumerate(results) if r.delta > THRESHOLD)
    assert 19 <= first <= 30, first  # results[i] is frame i + 1; it starts at frame 20
    assert "slow" in results[first].reasons
    control = run(MotionConfig(slow_baseline=0.0), creeper())
    assert changed(control[19:30]) < changed(results[19:30])
