"""Day/night and tampering from whole pictures: pure, on synthetic scenes, by frame times."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import motiond.detect.tamper as tamper_module
from motiond.detect.tamper import (
    DayNight,
    SceneMonitor,
    SceneReport,
    TamperWatch,
    measure,
    mismatched_blocks,
)
from tests.fixtures.scenes import Rect, SceneScript, Snow, SwayingBranches, Walker

FPS = 10.0
TAMPER_AFTER = 5.0
ONSET = 12.0


def colourfulness(image: np.ndarray) -> float:
    ycrcb = cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb).astype(np.int16)
    return float(np.abs(ycrcb[..., 1] - 128).mean() + np.abs(ycrcb[..., 2] - 128).mean())


def watch(
    scene: SceneScript | object,
    seconds: float,
    monitor: SceneMonitor | None = None,
    start: float = 0.0,
    mask: np.ndarray | None = None,
) -> list[tuple[float, SceneReport]]:
    """Every frame's report, colour measured whenever the monitor asks."""
    monitor = monitor or SceneMonitor(TAMPER_AFTER)
    reports = []
    for index in range(round(seconds * FPS)):
        t = start + index / FPS
        image = scene.frame(t)  # type: ignore[attr-defined]
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        colour = colourfulness(image) if monitor.wants_colour(t, jumped=False) else None
        reports.append((t, monitor.update(gray, t, colour, mask)))
    return reports


def raised(reports: list[tuple[float, SceneReport]]) -> list[tuple[float, str | None, float]]:
    return [
        (t, r.tamper.tampered, r.tamper.tampered_since or 0.0)
        for t, r in reports
        if r.tamper.raised
    ]


@pytest.mark.parametrize(
    ("kind", "scene"),
    [
        ("covered", SceneScript(covered=(ONSET, 60.0))),
        ("turned", SceneScript(turned_at=ONSET)),
        ("defocused", SceneScript(blurred_at=ONSET)),
    ],
)
def test_each_kind_is_raised_after_tamper_after_and_not_before(
    kind: str, scene: SceneScript
) -> None:
    reports = watch(scene, 25.0)
    ((at, seen, since),) = raised(reports)
    assert seen == kind
    assert ONSET <= since <= ONSET + 0.8  # the cover closes in half a second
    # Raised at the first look at the picture (every SAMPLE_INTERVAL) after tamper_after.
    assert since + TAMPER_AFTER <= at <= since + TAMPER_AFTER + tamper_module.SAMPLE_INTERVAL + 0.1
    # Suspect a second after it began (the clip of the moment starts), tampered until the end.
    suspect = [t for t, r in reports if r.tamper.suspect]
    assert suspect[0] == pytest.approx(since + tamper_module.SUSPECT_AFTER, abs=0.25)
    assert reports[-1][1].tamper.tampered == kind


def test_a_covered_lens_uncovered_clears_after_a_while() -> None:
    reports = watch(SceneScript(covered=(ONSET, 20.0)), 26.0)
    cleared = [(t, r.tamper.cleared) for t, r in reports if r.tamper.cleared]
    assert len(cleared) == 1 and cleared[0][1] == "covered"
    # CLEAR_AFTER after the last covered picture was seen (up to a look's interval earlier).
    assert 20.0 + tamper_module.CLEAR_AFTER - 0.3 <= cleared[0][0] <= 20.0 + 3.0
    assert reports[-1][1].tamper.tampered is None


def test_a_short_cover_is_suspect_but_never_tampering() -> None:
    reports = watch(SceneScript(covered=(ONSET, ONSET + 3.0)), 22.0)
    assert not raised(reports)
    assert any(r.tamper.suspect for _, r in reports)


@pytest.mark.parametrize(
    "scene",
    [
        SceneScript(walkers=[Walker(8.0, 18.0, (0, 235), (320, 235), height=180)]),
        SceneScript(branches=SwayingBranches(Rect(150, 20, 160, 180))),
        SceneScript(snow=(0.0, 60.0, Snow(flakes=300))),
        SceneScript(lamp=[(10.0, 60.0)]),
        SceneScript(noise=9.0),
    ],
    ids=["a-person-close-by", "a-big-tree", "snow", "a-lamp", "a-noisy-sensor"],
)
def test_scenes_that_are_no_tampering(scene: SceneScript) -> None:
    reports = watch(scene, 30.0)
    assert not raised(reports)
    assert not any(r.tamper.suspect for _, r in reports)


class BlackFrames:
    """The still scene with one black frame (a glitch of the camera) every ``every`` frames,
    the first at frame ``first``."""

    def __init__(self, first: int, every: int = 40) -> None:
        self.scene = SceneScript()
        self.first, self.every = first, every

    def frame(self, t: float) -> np.ndarray:
        index = round(t * FPS)
        if index >= self.first and (index - self.first) % self.every == 0:
            return np.zeros_like(self.scene.frame(t))
        return self.scene.frame(t)


@pytest.mark.parametrize("first", range(3, 9))
def test_single_black_frames_never_make_the_camera_suspect(first: int) -> None:
    """Whichever frame of a look (two frames: brightness, then sharpness) a glitch falls on,
    while learning or after: no look mixes two pictures, so what is usual stays right."""
    monitor = SceneMonitor(TAMPER_AFTER)
    reports = watch(BlackFrames(first), 30.0, monitor)
    assert not raised(reports)
    assert not any(r.tamper.suspect for _, r in reports)
    usual = measure(cv2.cvtColor(SceneScript().frame(29.0), cv2.COLOR_BGR2GRAY))
    learned = monitor.tamper._usual
    assert learned is not None
    assert learned.sharpness == pytest.approx(usual.sharpness, rel=0.2)


class Dusk:
    """The scene darkening to a tenth of its light over three minutes (no infrared)."""

    def __init__(self) -> None:
        self.scene = SceneScript()

    def frame(self, t: float) -> np.ndarray:
        light = max(0.1, 1.0 - t / 200.0)
        return cv2.convertScaleAbs(self.scene.frame(t), alpha=light)


def test_dusk_is_neither_tampering_nor_night() -> None:
    reports = watch(Dusk(), 190.0)
    assert not raised(reports) and not any(r.tamper.suspect for _, r in reports)
    assert {r.mode for _, r in reports} == {"day"}


def test_night_switch_and_back_relearn_without_tampering() -> None:
    reports = watch(SceneScript(night=[(ONSET, 40.0)]), 60.0)
    switches = [(t, r.mode) for t, r in reports if r.switched]
    assert switches == [(ONSET, "night"), (40.0, "day")]
    assert reports[0][1].mode == "day" and not reports[0][1].switched
    settling = [t for t, r in reports if r.settling]
    settle = tamper_module.SETTLE
    assert all(ONSET <= t < ONSET + settle or 40.0 <= t < 40.0 + settle for t in settling)
    assert len(settling) == pytest.approx(2 * settle * FPS, abs=2)
    assert not raised(reports) and not any(r.tamper.suspect for _, r in reports)


def test_covering_the_lens_at_night_is_tampering_not_a_switch() -> None:
    scene = SceneScript(night=[(0.0, 60.0)], covered=(ONSET, 60.0))
    reports = watch(scene, 25.0)
    assert {r.mode for _, r in reports} == {"night"}
    assert not any(r.switched for _, r in reports)
    ((_, kind, _),) = raised(reports)
    assert kind == "covered"


def test_a_flashlight_in_the_lens_is_blinding() -> None:
    class Flashlight:
        scene = SceneScript()

        def frame(self, t: float) -> np.ndarray:
            image = self.scene.frame(t)
            return np.full_like(image, 250) if t >= ONSET else image

    ((_, kind, _),) = raised(watch(Flashlight(), 20.0))
    assert kind == "blinded"


def test_a_masked_area_does_not_count() -> None:
    """Most of the picture changes for good (a bus parks on the masked road): masked,
    that is no turned camera; unmasked, it is (the control)."""

    class BusParks:
        scene = SceneScript()
        other = SceneScript(turned_at=0.0)

        def frame(self, t: float) -> np.ndarray:
            image = self.scene.frame(t)
            if t >= ONSET:
                image[:, :280] = self.other.frame(t)[:, :280]
            return image

    mask = np.ones((240, 320), np.uint8)
    mask[:, :280] = 0
    assert not raised(watch(BusParks(), 25.0, mask=mask))
    ((_, kind, _),) = raised(watch(BusParks(), 25.0))
    assert kind == "turned"


def test_nothing_is_judged_while_learning_or_paused_or_when_off() -> None:
    # Covered from the start: nothing usual to compare with.
    assert not raised(watch(SceneScript(covered=(0.0, 60.0)), 20.0))
    # Paused after a reconnect: the covered picture is judged only after the pause.
    monitor = SceneMonitor(TAMPER_AFTER)
    watch(SceneScript(), 10.0, monitor)
    monitor.reset(until=30.0)
    reports = watch(SceneScript(covered=(0.0, 60.0)), 20.0, monitor, start=10.0)
    assert not raised(reports)
    later = watch(SceneScript(covered=(0.0, 60.0)), 10.0, monitor, start=30.0)
    ((at, kind, _),) = raised(later)
    assert kind == "covered" and at >= 30.0 + TAMPER_AFTER
    # Off.
    assert not raised(watch(SceneScript(covered=(ONSET, 60.0)), 25.0, SceneMonitor(0.0)))


def test_a_view_turned_for_long_becomes_the_usual_one() -> None:
    watcher = TamperWatch(TAMPER_AFTER)
    scene = SceneScript(turned_at=ONSET)
    states = []
    for index in range(round((ONSET + tamper_module.RELEARN_TURNED_AFTER + 30) * 5)):
        t = index / 5
        gray = cv2.cvtColor(scene.view(t), cv2.COLOR_BGR2GRAY)
        states.append((t, watcher.update(gray, t)))
    relearned = [t for t, s in states if s.relearned]
    assert relearned and relearned[0] >= ONSET + tamper_module.RELEARN_TURNED_AFTER
    assert states[-1][1].tampered is None
    assert [s.cleared for _, s in states if s.cleared] == ["turned"]


def test_day_night_hysteresis() -> None:
    day_night = DayNight()
    assert not day_night.update(20.0, True) and day_night.mode == "day"
    assert not day_night.update(3.0, True) and day_night.mode == "day"  # between: no change
    assert not day_night.update(0.5, False) and day_night.mode == "day"  # no scene: covered
    assert day_night.update(0.5, True) and day_night.mode == "night"
    assert not day_night.update(3.0, True) and day_night.mode == "night"
    assert day_night.update(12.0, False) and day_night.mode == "day"


def test_colour_is_wanted_once_a_second_and_when_the_picture_jumps() -> None:
    monitor = SceneMonitor(TAMPER_AFTER)
    picture = np.full((60, 80), 100, np.uint8)
    assert monitor.wants_colour(0.0, jumped=False)
    monitor.update(picture, 0.0, 20.0)
    assert not monitor.wants_colour(0.5, jumped=False)
    assert monitor.wants_colour(0.5, jumped=True)
    assert monitor.wants_colour(1.0, jumped=False)


def test_measures_and_blocks() -> None:
    scene = SceneScript()
    sharp = cv2.cvtColor(scene.view(0.0), cv2.COLOR_BGR2GRAY)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 4)
    assert measure(blurred).sharpness < 0.5 * measure(sharp).sharpness
    same = measure(sharp).thumbnail
    assert mismatched_blocks(same, same) == (0, mismatched_blocks(same, same)[1])
    other = measure(cv2.cvtColor(SceneScript(seed=5).view(0.0), cv2.COLOR_BGR2GRAY)).thumbnail
    mismatched, judged = mismatched_blocks(other, same)
    assert judged >= 12 and mismatched >= 0.6 * judged
