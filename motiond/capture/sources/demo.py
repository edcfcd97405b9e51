"""The built-in demo camera: a drawn room with sensor noise and people walking by."""

from __future__ import annotations

import logging
import threading
import time

import cv2
import numpy as np

from motiond.capture.sources.base import (
    DEFAULT_FPS,
    FrameMaker,
    Pacer,
    Source,
    SourceError,
)
from motiond.config.capture import CaptureConfig
from motiond.frames import Frame

logger = logging.getLogger(__name__)


class DemoSource(Source):
    """A synthetic camera: a static room with sensor noise and, now and then, a walker.

    The first walker starts ``first_object_after`` seconds after open and crosses the frame in
    ``crossing_time`` seconds; the next ones start every ``object_interval`` seconds (uniformly
    drawn from the seeded RNG). Frames are paced in real time at ``capture.fps``.
    """

    realtime = True

    def __init__(
        self,
        capture: CaptureConfig,
        stop: threading.Event,
        *,
        seed: int | None = None,
        first_object_after: float = 5.0,
        object_interval: tuple[float, float] = (20.0, 30.0),
        crossing_time: float = 3.5,
        noise_sigma: float = 3.0,
    ) -> None:
        self.description = "demo"
        self.width = capture.width or 640
        self.height = capture.height or 480
        self.fps = capture.fps or DEFAULT_FPS
        self._stop = stop
        self._seed = seed
        self._first_object_after = first_object_after
        self._object_interval = object_interval
        self._crossing_time = crossing_time
        self._noise_sigma = noise_sigma
        self._frames = FrameMaker(capture)
        self._pacer = Pacer(self.fps, stop)
        self._background: np.ndarray | None = None
        self._noise_add = np.empty(0, np.uint8)
        self._noise_sub = np.empty(0, np.uint8)
        self._walkers: _WalkerSchedule | None = None
        self._noise_rng = np.random.default_rng(seed)
        self._opened_at = 0.0

    def open(self) -> None:
        # Separate streams, so the walkers' schedule does not depend on how many frames were read.
        scene_rng, walker_rng, self._noise_rng = np.random.default_rng(self._seed).spawn(3)
        self._background = _draw_room(self.width, self.height, scene_rng)
        # One tall noise field; a random row offset per frame gives a fresh pattern for the
        # price of two saturating adds (uint8 cannot hold the negative half, hence two arrays).
        shape = (self.height + 64, self.width, 3)
        noise = self._noise_rng.normal(0.0, self._noise_sigma, shape)
        self._noise_add = np.clip(noise, 0, 255).astype(np.uint8)
        self._noise_sub = np.clip(-noise, 0, 255).astype(np.uint8)
        self._walkers = _WalkerSchedule(
            self.width,
            self.height,
            walker_rng,
            first_after=self._first_object_after,
            interval=self._object_interval,
            crossing_time=self._crossing_time,
        )
        self._frames.seq = 0
        self._pacer = Pacer(self.fps, self._stop)
        self._opened_at = time.monotonic()
        logger.info("demo source: %dx%d at %g fps", self.width, self.height, self.fps)

    def read(self) -> Frame | None:
        if self._background is None or self._walkers is None:
            raise SourceError("demo source is not open")
        if not self._pacer.wait():
            return None
        mono, wall = time.monotonic(), time.time()
        image = self._background.copy()
        self._walkers.draw(image, mono - self._opened_at)
        row = int(self._noise_rng.integers(0, self._noise_add.shape[0] - self.height + 1))
        cv2.add(image, self._noise_add[row : row + self.height], dst=image)
        cv2.subtract(image, self._noise_sub[row : row + self.height], dst=image)
        return self._frames.image(image, mono, wall)

    def motion_active(self, now: float) -> bool:
        """Whether a walker is in the frame at monotonic time ``now``.

        The schedule is drawn as time passes: ``now`` must not go back before frames read.
        """
        if self._walkers is None:
            return False
        return self._walkers.active(now - self._opened_at) is not None

    def close(self) -> None:
        self._background = None
        self._walkers = None


# Clothes colours (BGR) whose brightness stands out from the brown floor (gray ~100) and the
# light wall (gray ~200): detection works on gray, so a red as bright as the floor would be
# invisible, and a new user's first clip a discarded one.
CLOTHES = (
    (25, 25, 25),  # black
    (90, 20, 10),  # navy
    (30, 20, 140),  # dark red
    (0, 140, 255),  # orange
    (230, 230, 40),  # light cyan
    (245, 245, 245),  # white
)


class _Walker:
    """One crossing: a body and a head moving horizontally at constant speed."""

    def __init__(self, start: float, rng: np.random.Generator, width: int, height: int) -> None:
        self.start = start
        self.left_to_right = bool(rng.integers(0, 2))
        self.body_width = max(4, width // 15)
        self.feet_y = int(height * rng.uniform(0.72, 0.95))
        self.color = CLOTHES[int(rng.integers(0, len(CLOTHES)))]


class _WalkerSchedule:
    """When walkers cross, drawn lazily from the RNG; times are seconds since open."""

    def __init__(
        self,
        width: int,
        height: int,
        rng: np.random.Generator,
        *,
        first_after: float,
        interval: tuple[float, float],
        crossing_time: float,
    ) -> None:
        self._width = width
        self._height = height
        self._rng = rng
        self._interval = interval
        self._crossing_time = crossing_time
        self._current = _Walker(first_after, rng, width, height)

    def active(self, elapsed: float) -> _Walker | None:
        while elapsed >= self._current.start + self._crossing_time:
            start = self._current.start + float(self._rng.uniform(*self._interval))
            self._current = _Walker(start, self._rng, self._width, self._height)
        return self._current if elapsed >= self._current.start else None

    def draw(self, image: np.ndarray, elapsed: float) -> None:
        walker = self.active(elapsed)
        if walker is None:
            return
        progress = (elapsed - walker.start) / self._crossing_time
        if not walker.left_to_right:
            progress = 1.0 - progress
        size = walker.body_width
        x = int(-size + progress * (self._width + 2 * size))
        feet, body_height = walker.feet_y, int(size * 2.6)
        cv2.ellipse(
            image,
            (x, feet - body_height // 2),
            (size // 2, body_height // 2),
            0,
            0,
            360,
            walker.color,
            -1,
            cv2.LINE_AA,
        )
        cv2.circle(
            image, (x, feet - body_height - size // 3), size // 3, (80, 110, 150), -1, cv2.LINE_AA
        )


def _draw_room(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A static scene that looks vaguely like a room: wall, floor, window, door, table, clock."""

    def px(fx: float, fy: float) -> tuple[int, int]:
        return int(fx * width), int(fy * height)

    floor_y = int(height * 0.62)
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    wall_top, wall_low = np.array([214, 208, 200]), np.array([176, 172, 166])
    floor_far, floor_near = np.array([96, 116, 142]), np.array([58, 76, 104])
    image = np.empty((height, width, 3), np.float32)
    wall_ramp = ramp[:floor_y] / max(ramp[floor_y - 1, 0, 0], 1e-6)
    image[:floor_y] = wall_top + (wall_low - wall_top) * wall_ramp
    floor_ramp = (ramp[floor_y:] - ramp[floor_y]) / max(1.0 - float(ramp[floor_y, 0, 0]), 1e-6)
    image[floor_y:] = floor_far + (floor_near - floor_far) * floor_ramp
    # A fixed, blurred texture so the wall is not perfectly flat (compression and noise behave).
    texture = cv2.GaussianBlur(
        rng.normal(0.0, 10.0, (height, width)).astype(np.float32), (0, 0), 1.5
    )
    image += texture[:, :, None]
    room = np.clip(image, 0, 255).astype(np.uint8)

    thick = max(1, width // 160)
    cv2.rectangle(room, px(0, 0.61), px(1, 0.63), (70, 80, 95), -1)  # skirting board
    cv2.rectangle(room, px(0.07, 0.12), px(0.31, 0.46), (236, 214, 178), -1)  # window
    cv2.rectangle(room, px(0.07, 0.12), px(0.31, 0.46), (235, 235, 235), thick * 2)
    cv2.line(room, px(0.19, 0.12), px(0.19, 0.46), (235, 235, 235), thick * 2)
    cv2.line(room, px(0.07, 0.29), px(0.31, 0.29), (235, 235, 235), thick * 2)
    cv2.rectangle(room, px(0.73, 0.2), px(0.87, 0.62), (62, 92, 132), -1)  # door
    cv2.circle(room, px(0.76, 0.42), max(2, width // 120), (40, 170, 200), -1, cv2.LINE_AA)
    cv2.rectangle(room, px(0.40, 0.17), px(0.55, 0.35), (50, 60, 70), thick * 2)  # picture
    cv2.rectangle(room, px(0.415, 0.19), px(0.535, 0.33), (90, 140, 80), -1)
    cv2.circle(room, px(0.475, 0.24), max(3, width // 60), (60, 200, 230), -1, cv2.LINE_AA)
    clock = px(0.64, 0.2)
    radius = max(4, width // 30)
    cv2.circle(room, clock, radius, (245, 245, 245), -1, cv2.LINE_AA)
    cv2.circle(room, clock, radius, (40, 40, 40), thick, cv2.LINE_AA)
    cv2.line(room, clock, (clock[0], clock[1] - radius * 3 // 4), (30, 30, 30), thick, cv2.LINE_AA)
    cv2.line(room, clock, (clock[0] + radius // 2, clock[1]), (30, 30, 30), thick, cv2.LINE_AA)
    cv2.rectangle(room, px(0.36, 0.66), px(0.62, 0.70), (40, 70, 110), -1)  # table top
    for leg in (0.38, 0.59):
        cv2.rectangle(room, px(leg, 0.70), px(leg + 0.015, 0.86), (35, 60, 95), -1)
    scale = max(0.3, width / 1600)
    cv2.putText(
        room,
        "motiond demo",
        px(0.02, 0.06),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (60, 60, 60),
        max(1, thick),
        cv2.LINE_AA,
    )
    return room


# ---------------------------------------------------------------------------------------------
# Video files
