"""Generated scenes with a known truth: swaying branches, walkers, snow, night, tampering.

Every scene is a function of time (seconds), so the same picture can feed the detector in a
unit test or be written to a video file for the real daemon. Pictures are BGR, noisy like a
camera, and colourful by day.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from tests.conftest import TestVideo, draw_frame_number

WIDTH, HEIGHT = 320, 240
LIGHT_SETTLE = 1.5  # seconds for exposure and lamps to settle after a day/night switch


def panorama(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A colourful, textured, static scene: a gradient with many boxes and discs."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(70, 170, width, dtype=np.float32)
    image = np.dstack([np.tile(ramp * f, (height, 1)) for f in (0.8, 0.95, 1.1)])
    image = np.clip(image, 0, 255).astype(np.uint8)
    for _ in range(width * height // 2500):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        if rng.random() < 0.6:
            w, h = (int(v) for v in rng.integers(6, 36, 2))
            cv2.rectangle(image, (x, y), (x + w, y + h), colour, -1)
        else:
            cv2.circle(image, (x, y), int(rng.integers(4, 18)), colour, -1)
    return image


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    def contains(self, x: float, y: float) -> bool:
        return self.x <= x < self.x + self.width and self.y <= y < self.y + self.height


@dataclass(frozen=True)
class SwayingBranches:
    """Foliage moving in place inside ``area``: branches sway slowly and every leaf flutters.

    Leaves are sunlit and shaded greens, so their movement shows in gray too.
    """

    area: Rect
    period: float = 2.2  # seconds per swing of a branch
    amplitude: float = 6.0  # pixels of a branch's swing
    leaves: int = 160
    flutter: float = 2.5  # pixels of a leaf's own quick movement
    seed: int = 3

    def draw(self, image: np.ndarray, t: float) -> None:
        rng = np.random.default_rng(self.seed)
        a = self.area
        xs = rng.uniform(a.x + 4, a.x + a.width - 4, self.leaves)
        ys = rng.uniform(a.y + 4, a.y + a.height - 4, self.leaves)
        sizes = rng.integers(3, 7, self.leaves)
        shades = rng.integers(30, 200, self.leaves)
        branch_phase = rng.uniform(0, 1.5, 4)[(xs - a.x).astype(int) * 4 // a.width]
        flutter_period = rng.uniform(0.25, 0.7, self.leaves)
        flutter_phase = rng.uniform(0, 2 * math.pi, self.leaves)
        sway = self.amplitude * np.sin(2 * math.pi * t / self.period + branch_phase)
        flutter = self.flutter * np.sin(2 * math.pi * t / flutter_period + flutter_phase)
        # Higher leaves swing further (a branch bends from its foot).
        height_share = (a.y + a.height - ys) / a.height
        dx = (sway * height_share + flutter).astype(int)
        dy = (0.6 * flutter * np.cos(flutter_phase)).astype(int)
        for i in range(self.leaves):
            x = int(np.clip(xs[i] + dx[i], a.x, a.x + a.width - 1))
            y = int(np.clip(ys[i] + dy[i], a.y, a.y + a.height - 1))
            g = int(shades[i])
            cv2.circle(image, (x, y), int(sizes[i]), (g // 3, g, g // 2), -1)


@dataclass(frozen=True)
class Walker:
    """A person: a body and a head crossing from ``start`` to ``end`` between two times."""

    t0: float
    t1: float
    start: tuple[float, float]  # feet position at t0 (x, y)
    end: tuple[float, float]
    height: int = 60
    color: tuple[int, int, int] = (40, 30, 160)

    def position(self, t: float) -> tuple[float, float] | None:
        if not self.t0 <= t < self.t1:
            return None
        f = (t - self.t0) / (self.t1 - self.t0)
        return (
            self.start[0] + f * (self.end[0] - self.start[0]),
            self.start[1] + f * (self.end[1] - self.start[1]),
        )

    def draw(self, image: np.ndarray, t: float) -> None:
        where = self.position(t)
        if where is None:
            return
        x, feet = int(where[0]), int(where[1])
        body_w = max(4, self.height // 4)
        body_h = int(self.height * 0.75)
        # Legs swing: the lower body alternates a little each step.
        step = int(4 * math.sin(t * 9.0))
        cv2.rectangle(
            image,
            (x - body_w // 2, feet - body_h),
            (x + body_w // 2, feet - body_h // 3),
            self.color,
            -1,
        )
        cv2.line(image, (x - 2, feet - body_h // 3), (x - 3 + step, feet), (20, 20, 20), 3)
        cv2.line(image, (x + 2, feet - body_h // 3), (x + 3 - step, feet), (20, 20, 20), 3)
        head = max(3, self.height // 8)
        cv2.circle(image, (x, feet - body_h - head), head, (90, 120, 170), -1, cv2.LINE_AA)


@dataclass(frozen=True)
class Snow:
    """Many small bright specks falling over the whole picture (snow or rain under IR light)."""

    flakes: int = 160
    speed: float = 55.0  # pixels per second, downwards
    seed: int = 5
    radius: tuple[int, int] = (1, 2)

    def draw(self, image: np.ndarray, t: float) -> None:
        height, width = image.shape[:2]
        rng = np.random.default_rng(self.seed)
        xs = rng.uniform(0, width, self.flakes)
        ys = rng.uniform(0, height, self.flakes)
        speeds = rng.uniform(0.6, 1.4, self.flakes) * self.speed
        drift = rng.uniform(-8, 8, self.flakes)
        radii = rng.integers(self.radius[0], self.radius[1] + 1, self.flakes)
        for i in range(self.flakes):
            y = (ys[i] + speeds[i] * t) % height
            x = (xs[i] + drift[i] * t + 3 * math.sin(t * 2 + i)) % width
            cv2.circle(image, (int(x), int(y)), int(radii[i]), (235, 235, 235), -1)


@dataclass
class SceneScript:
    """A still colourful scene with optional branches, walkers, snow, night and tampering."""

    width: int = WIDTH
    height: int = HEIGHT
    noise: float = 3.0
    seed: int = 0
    branches: SwayingBranches | None = None
    walkers: list[Walker] = field(default_factory=list)
    snow: tuple[float, float, Snow] | None = None  # (from, until, snow)
    night: list[tuple[float, float]] = field(default_factory=list)  # infrared spans
    lamp: list[tuple[float, float]] = field(default_factory=list)  # uneven light, in colour
    covered: tuple[float, float] | None = None
    turned_at: float | None = None
    blurred_at: float | None = None

    def __post_init__(self) -> None:
        # A wide panorama: the camera looks at its left part; "turned" looks further right.
        self._panorama = panorama(self.width * 3, self.height, seed=self.seed)
        self._rng = np.random.default_rng(self.seed + 100)
        # Sensor noise: rows of a tall field from a random offset (fresh enough, and cheap).
        self._noise = self._rng.normal(0, 1, (self.height * 3, self.width)).astype(np.float32)

    def view(self, t: float) -> np.ndarray:
        turned = self.turned_at is not None and t >= self.turned_at
        x = self.width * 2 if turned else 0
        return self._panorama[:, x : x + self.width].copy()

    def is_night(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.night)

    @staticmethod
    def _since_switch(
        spans: list[tuple[float, float]], t: float, only_on: bool = False
    ) -> float | None:
        """Seconds since the last start (or, unless ``only_on``, end) of a span, if any."""
        switches = [a for a, _ in spans] + ([] if only_on else [b for _, b in spans])
        if only_on:
            switches = [a for a, b in spans if a <= t < b]
        past = [t - at for at in switches if at <= t]
        return min(past) if past else None

    def _lamp(self, since: float | None, start: float, end: float) -> np.ndarray:
        """A light field, brighter in the middle: its falloff goes from ``start`` to ``end``
        over SETTLE seconds after a switch (exposure and lamps settling)."""
        progress = 1.0 if since is None else min(1.0, since / LIGHT_SETTLE)
        falloff = start + (end - start) * progress
        ys, xs = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32)
        radius = ((xs / self.width - 0.5) ** 2 + (ys / self.height - 0.5) ** 2) * 2.0
        field: np.ndarray = 1.0 - falloff * radius
        return field

    @staticmethod
    def _lit(image: np.ndarray, field: np.ndarray) -> np.ndarray:
        lit = image.astype(np.float32) * field[..., None]
        result: np.ndarray = np.clip(lit, 0, 255).astype(np.uint8)
        return result

    def frame(self, t: float) -> np.ndarray:
        image = self.view(t)
        if self.branches is not None:
            self.branches.draw(image, t)
        for walker in self.walkers:
            walker.draw(image, t)
        if self.snow is not None and self.snow[0] <= t < self.snow[1]:
            self.snow[2].draw(image, t)
        noise = self.noise
        since = self._since_switch(self.night, t)
        if self.is_night(t):
            # Infrared: no colour, other reflectances (red and foliage bright), brighter in
            # the middle where the lamps point, settling for a second and a half, noisier.
            b, g, r = cv2.split(image.astype(np.float32))
            infrared = (0.1 * b + 0.3 * g + 0.6 * r) * 1.3 + 25.0
            gray = np.clip(infrared * self._lamp(since, 0.7, 0.35), 0, 255).astype(np.uint8)
            image = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
            noise *= 1.3
        elif since is not None:
            # Back to colour: the exposure settles from the lamps' pattern.
            image = self._lit(image, self._lamp(since, 0.4, 0.0))
        lamp_since = self._since_switch(self.lamp, t, only_on=True)
        if lamp_since is not None:
            # The control: the same uneven, settling light, but the picture keeps its colour.
            image = self._lit(image, 1.3 * self._lamp(lamp_since, 0.7, 0.35))
        if self.blurred_at is not None and t >= self.blurred_at:
            image = cv2.GaussianBlur(image, (0, 0), 6)
        if self.covered is not None and self.covered[0] <= t < self.covered[1]:
            image = self._cover(image, t - self.covered[0])
        row = int(self._rng.integers(0, self.height * 2))
        field = self._noise[row : row + self.height] * noise
        noisy = image.astype(np.float32) + field[..., None]
        result: np.ndarray = np.clip(noisy, 0, 255).astype(np.uint8)
        return result

    def _cover(self, image: np.ndarray, since: float) -> np.ndarray:
        """A hand over the lens: a dark blob growing from the left edge over half a second."""
        reach = min(1.0, since / 0.5)
        covered = image.copy()
        radius = int(reach * self.width * 1.3)
        cv2.circle(covered, (0, self.height // 2), max(1, radius), (22, 18, 24), -1)
        if reach >= 1.0:
            covered[:] = (22, 18, 24)
        return covered


def write_scene_video(path: Path, scene: SceneScript, seconds: float, fps: float) -> TestVideo:
    """The scene as an MJPEG AVI, frames numbered in a strip along the bottom (mask it)."""
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (scene.width, scene.height)
    )
    assert writer.isOpened()
    count = round(seconds * fps)
    for index in range(count):
        image = scene.frame(index / fps)
        draw_frame_number(image, index)
        writer.write(image)
    writer.release()
    return TestVideo(path, fps, count, scene.width, scene.height)


def spans(times: Iterable[float], gap: float) -> list[tuple[float, float]]:
    """Sorted times grouped into (first, last) runs with at most ``gap`` between neighbours."""
    result: list[tuple[float, float]] = []
    for t in sorted(times):
        if result and t - result[-1][1] <= gap:
            result[-1] = (result[-1][0], t)
        else:
            result.append((t, t))
    return result
