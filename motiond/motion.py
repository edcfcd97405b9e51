"""Frame differencing: how much of the picture changed since the previous frame (pure).

Each frame is turned to gray, downscaled by a power of two to about ``detect_width`` pixels wide
(so a camera JPEG decodes straight to that size, and a decoded picture shrinks by a whole
factor, the cheap cases), lightly blurred
and compared with the previous one. A uniform brightness shift between the two (auto-exposure,
a cloud, dusk) is subtracted first, so a lighting ramp does not count as change. A pixel counts
as changed when its gray level moved by more than ``pixel_threshold``; the *delta* is the
fraction of unmasked pixels that changed. Nothing here reads a clock or touches a file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from motiond.config import MotionConfig

MAX_BOXES = 16


@dataclass(frozen=True, slots=True)
class Box:
    """A changed region in the source frame's pixel coordinates."""

    x: int
    y: int
    width: int
    height: int

    def union(self, other: Box) -> Box:
        x0 = min(self.x, other.x)
        y0 = min(self.y, other.y)
        x1 = max(self.x + self.width, other.x + other.width)
        y1 = max(self.y + self.height, other.y + other.height)
        return Box(x0, y0, x1 - x0, y1 - y0)

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.width, self.height]


def detection_scale(frame_width: int, detect_width: int) -> int:
    """The power of two that brings ``frame_width`` nearest to ``detect_width`` (at least 1).

    768 -> 384 (2), 1280 -> 320 (4), 1920 -> 240 (8) for a detect_width of 320.
    """
    if frame_width <= detect_width:
        return 1
    return int(2 ** round(math.log2(frame_width / detect_width)))


def union_of(boxes: tuple[Box, ...] | list[Box]) -> Box | None:
    result: Box | None = None
    for box in boxes:
        result = box if result is None else result.union(box)
    return result


@dataclass(frozen=True, slots=True)
class MotionResult:
    """What one frame showed compared with the previous one."""

    delta: float
    lighting: bool
    boxes: tuple[Box, ...]


class MotionDetector:
    """Compares each frame with the previous one. Not thread-safe: one per camera thread."""

    def __init__(self, config: MotionConfig) -> None:
        self.config = config
        self._previous: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self._mask_key: tuple[int, int, int, int] | None = None
        self._counted_pixels = 0

    def reset(self) -> None:
        """Forget the previous frame (after a reconnect the next frame is compared with nothing)."""
        self._previous = None

    def prepare(self, gray: np.ndarray, frame_width: int, frame_height: int) -> np.ndarray:
        """Downscale a gray frame to the detection size and blur it."""
        scale = detection_scale(frame_width, self.config.detect_width)
        target = (max(1, frame_width // scale), max(1, frame_height // scale))
        if (gray.shape[1], gray.shape[0]) != target:
            gray = cv2.resize(gray, target, interpolation=cv2.INTER_AREA)
        if self.config.blur:
            gray = cv2.GaussianBlur(gray, (self.config.blur, self.config.blur), 0)
        return gray

    def detect(self, gray: np.ndarray, frame_width: int, frame_height: int) -> MotionResult | None:
        """Compare ``gray`` (any size, prepared here) with the previous frame.

        ``frame_width``/``frame_height`` are the source frame's size, in which masks are given
        and boxes are returned. Returns None for the first frame after a reset.
        """
        small = self.prepare(gray, frame_width, frame_height)
        previous, self._previous = self._previous, small
        if previous is None or previous.shape != small.shape:
            return None
        mask = self._mask_for(small.shape[1], small.shape[0], frame_width, frame_height)

        diff = cv2.absdiff(_match_brightness(small, previous, mask), previous)
        _, changed = cv2.threshold(diff, self.config.pixel_threshold, 255, cv2.THRESH_BINARY)
        if mask is not None:
            changed = cv2.bitwise_and(changed, mask)
        delta = cv2.countNonZero(changed) / self._counted_pixels if self._counted_pixels else 0.0

        lighting = bool(self.config.lightswitch) and delta > self.config.lightswitch
        boxes: tuple[Box, ...] = ()
        if delta > self.config.threshold and not lighting:
            boxes = self._boxes(
                changed, frame_width / small.shape[1], frame_height / small.shape[0]
            )
        return MotionResult(delta=delta, lighting=lighting, boxes=boxes)

    def _mask_for(
        self, width: int, height: int, frame_width: int, frame_height: int
    ) -> np.ndarray | None:
        """The 0/255 image of pixels that count (None: all count), cached per size."""
        key = (width, height, frame_width, frame_height)
        if key != self._mask_key:
            self._mask_key = key
            self._mask = None
            self._counted_pixels = width * height
            if self.config.masks:
                mask = np.full((height, width), 255, np.uint8)
                scale = np.array([width / frame_width, height / frame_height])
                for polygon in self.config.masks:
                    points = np.round(np.array(polygon, np.float64) * scale).astype(np.int32)
                    cv2.fillPoly(mask, [points], 0)
                self._mask = mask
                self._counted_pixels = cv2.countNonZero(mask)
        return self._mask

    @staticmethod
    def _boxes(changed: np.ndarray, scale_x: float, scale_y: float) -> tuple[Box, ...]:
        # Dilate so the parts of one moving thing merge into one region.
        merged = cv2.dilate(changed, np.ones((5, 5), np.uint8), iterations=2)
        count, _, stats, _ = cv2.connectedComponentsWithStats(merged, connectivity=8)
        regions = sorted(
            (stats[i] for i in range(1, count) if stats[i][cv2.CC_STAT_AREA] >= 8),
            key=lambda s: int(s[cv2.CC_STAT_AREA]),
            reverse=True,
        )[:MAX_BOXES]
        return tuple(
            Box(
                round(int(s[cv2.CC_STAT_LEFT]) * scale_x),
                round(int(s[cv2.CC_STAT_TOP]) * scale_y),
                max(1, round(int(s[cv2.CC_STAT_WIDTH]) * scale_x)),
                max(1, round(int(s[cv2.CC_STAT_HEIGHT]) * scale_y)),
            )
            for s in regions
        )


def _match_brightness(
    current: np.ndarray, previous: np.ndarray, mask: np.ndarray | None
) -> np.ndarray:
    """``current`` with its brightness and contrast mapped onto ``previous``'s.

    A lighting change (auto-exposure, a cloud, a lamp) scales and shifts every gray level at
    once; matching mean and standard deviation undoes it, while a moving object, which changes
    a small part of the picture, barely moves either statistic.
    """
    mean_now, std_now = cv2.meanStdDev(current, mask=mask)
    mean_before, std_before = cv2.meanStdDev(previous, mask=mask)
    gain = float(std_before[0][0]) / float(std_now[0][0]) if std_now[0][0] > 1.0 else 1.0
    offset = float(mean_before[0][0]) - gain * float(mean_now[0][0])
    if abs(gain - 1.0) < 0.002 and abs(offset) < 0.5:
        return current
    return cv2.addWeighted(current, gain, current, 0.0, offset)
