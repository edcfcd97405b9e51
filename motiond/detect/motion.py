"""Frame differencing: how much of the picture changed since the previous frame (pure).

Each frame is turned to gray, downscaled by a power of two to about ``detect_width`` pixels wide
(so a camera JPEG decodes straight to that size, and a decoded picture shrinks by a whole
factor, the cheap cases), lightly blurred
and compared with the previous one. A uniform brightness shift between the two (auto-exposure,
a cloud, dusk) is subtracted first, so a lighting ramp does not count as change. A pixel counts
as changed when its gray level moved by more than ``pixel_threshold``; the *delta* is the
fraction of unmasked pixels that changed. Nothing here reads a clock or touches a file. The
result, ``MotionResult``, is a value of boxes.py (re-exported here).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from motiond.config.motion import MotionConfig
from motiond.detect.boxes import Box, MotionResult, Outlines, union_of
from motiond.detect.nuisance import NuisanceModel
from motiond.detect.regions import Regions

__all__ = ["Box", "MotionDetector", "MotionResult", "Outlines", "detection_scale", "union_of"]


def detection_scale(frame_width: int, detect_width: int) -> int:
    """The power of two that brings ``frame_width`` nearest to ``detect_width`` (at least 1).

    768 -> 384 (2), 1280 -> 320 (4), 1920 -> 240 (8) for a detect_width of 320.
    """
    if frame_width <= detect_width:
        return 1
    return int(2 ** round(math.log2(frame_width / detect_width)))


class MotionDetector:
    """Compares each frame with the previous one. Not thread-safe: one per camera thread.

    ``picture`` is the last frame at detection size before blurring (the scene monitor reads
    it on the same thread); ``nuisance`` the learned areas that never stop moving (None: off).
    """

    def __init__(self, config: MotionConfig) -> None:
        self.config = config
        self.picture: np.ndarray | None = None
        self.nuisance = NuisanceModel(config.nuisance_learning) if config.nuisance else None
        self._previous: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self._mask_key: tuple[int, int, int, int] | None = None
        self._counted_pixels = 0
        self._source_scale = (1.0, 1.0)
        # The previous picture's brightness (mean, std), measured when it was the current one.
        self._previous_stats: tuple[float, float] | None = None
        self._stats_mask_key: tuple[int, int, int, int] | None = None
        self._scaled_areas: tuple[Outlines, tuple[float, float], Outlines] = ((), (1.0, 1.0), ())

    @property
    def mask(self) -> np.ndarray | None:
        """The 0/1 picture (detection size) of the pixels that count, None when all do."""
        return self._mask

    def ignored_areas(self) -> Outlines:
        """Outlines of the areas learned as always moving, in source pixels: the same object
        until they change. One thread besides the capture thread may call it (the web's
        IOLoop): it reads only values that are replaced, never changed."""
        nuisance = self.nuisance
        if nuisance is None:
            return ()
        areas, scale = nuisance.areas, self._source_scale
        cached = self._scaled_areas
        if cached[0] is areas and cached[1] == scale:
            return cached[2]
        sx, sy = scale
        scaled = tuple(
            tuple((round(x * sx), round(y * sy)) for x, y in outline) for outline in areas
        )
        self._scaled_areas = (areas, scale, scaled)  # one reference swap
        return scaled

    def configure(self, config: MotionConfig) -> None:
        """Use other thresholds from the next frame on (night mode); what was learned stays."""
        if config.masks != self.config.masks:
            self._mask_key = None
        self.config = config

    def reset(self) -> None:
        """Forget the previous frame (after a reconnect the next frame is compared with nothing)."""
        self._previous = None
        self._previous_stats = None
        if self.nuisance is not None:
            self.nuisance.reset_clock()

    def prepare(self, gray: np.ndarray, frame_width: int, frame_height: int) -> np.ndarray:
        """Downscale a gray frame to the detection size and blur it."""
        return self._blur(self._resize(gray, frame_width, frame_height))

    def _resize(self, gray: np.ndarray, frame_width: int, frame_height: int) -> np.ndarray:
        scale = detection_scale(frame_width, self.config.detect_width)
        target = (max(1, frame_width // scale), max(1, frame_height // scale))
        if (gray.shape[1], gray.shape[0]) != target:
            gray = cv2.resize(gray, target, interpolation=cv2.INTER_AREA)
        return gray

    def _blur(self, gray: np.ndarray) -> np.ndarray:
        if self.config.blur:
            gray = cv2.GaussianBlur(gray, (self.config.blur, self.config.blur), 0)
        return gray

    def detect(
        self, gray: np.ndarray, frame_width: int, frame_height: int, *, now: float
    ) -> MotionResult | None:
        """Compare ``gray`` (any size, prepared here) with the previous frame, seen at ``now``.

        ``frame_width``/``frame_height`` are the source frame's size, in which masks are given
        and boxes are returned. ``now`` (seconds, the frame's capture time) paces what the
        nuisance model learns. Returns None for the first frame after a reset.
        """
        config = self.config
        self.picture = self._resize(gray, frame_width, frame_height)
        self._source_scale = (
            frame_width / self.picture.shape[1],
            frame_height / self.picture.shape[0],
        )
        small = self._blur(self.picture)
        previous, self._previous = self._previous, small
        if previous is None or previous.shape != small.shape:
            self._previous_stats = None
            return None
        mask = self._mask_for(small.shape[1], small.shape[0], frame_width, frame_height)

        stats = _brightness(small, mask)
        previous_stats, self._previous_stats = self._previous_stats, stats
        if previous_stats is None or self._mask_key != self._stats_mask_key:
            previous_stats = _brightness(previous, mask)
        self._stats_mask_key = self._mask_key
        diff = cv2.absdiff(_match_brightness(small, stats, previous_stats), previous)
        _, changed = cv2.threshold(diff, config.pixel_threshold, 1, cv2.THRESH_BINARY)
        if mask is not None:
            changed = cv2.bitwise_and(changed, mask)
        counted = self._counted_pixels
        changed_count = cv2.countNonZero(changed)
        raw_delta = changed_count / counted if counted else 0.0
        if config.lightswitch and raw_delta > config.lightswitch:
            # The whole picture at once: lighting, never motion, and nothing to learn from.
            return MotionResult(delta=raw_delta, lighting=True, boxes=(), raw_delta=raw_delta)
        if not changed_count:
            if self.nuisance is not None and self.nuisance.learns_at(now):
                self.nuisance.calm(changed.shape, now, mask)
            return MotionResult(delta=0.0, lighting=False, boxes=(), raw_delta=0.0)
        regions = Regions(changed)
        min_pixels = max(1, math.ceil(config.min_area * counted))
        counts = regions.sizes
        if self.nuisance is not None:
            counts = self._nuisance_counts(regions, min_pixels, changed.shape, now, mask)
        delta = float(counts[counts >= min_pixels].sum()) / counted if counted else 0.0
        boxes, ignored = regions.boxes(counts, min_pixels, self._source_scale)
        return MotionResult(
            delta=delta,
            lighting=False,
            boxes=boxes,
            raw_delta=raw_delta,
            ignored_boxes=ignored,
            largest=float(regions.sizes.max()) / counted if counted else 0.0,
        )

    def _nuisance_counts(
        self,
        regions: Regions,
        min_pixels: int,
        shape: tuple[int, ...],
        now: float,
        mask: np.ndarray | None,
    ) -> np.ndarray:
        """Per region, its changed pixels that count given the learned nuisance areas; then
        the model learns from what moved (specks, in groups smaller than min_area, excluded).

        A region mostly in an ignored area is that area's own movement: only its pixels in
        cells moving far more than usual count. Otherwise its pixels outside the areas count
        too (someone walking past a tree).
        """
        assert self.nuisance is not None
        counts = regions.sizes
        judged = self.nuisance.judge(regions.ys, regions.xs, shape)
        if judged is not None:
            in_area, unusual = judged
            area = regions.per_region(in_area)
            outside = regions.sizes - area + regions.per_region(in_area & unusual)
            counts = np.where(2 * area >= regions.sizes, regions.per_region(unusual), outside)
        if self.nuisance.learns_at(now):
            moving = regions.in_large_neighbourhoods(min_pixels)
            self.nuisance.update(regions.ys[moving], regions.xs[moving], shape, now, mask)
        return counts

    def _mask_for(
        self, width: int, height: int, frame_width: int, frame_height: int
    ) -> np.ndarray | None:
        """The 0/1 image of pixels that count (None: all count), cached per size."""
        key = (width, height, frame_width, frame_height)
        if key != self._mask_key:
            self._mask_key = key
            self._mask = None
            self._counted_pixels = width * height
            if self.config.masks:
                mask = np.full((height, width), 1, np.uint8)
                scale = np.array([width / frame_width, height / frame_height])
                for polygon in self.config.masks:
                    points = np.round(np.array(polygon, np.float64) * scale).astype(np.int32)
                    cv2.fillPoly(mask, [points], 0)
                self._mask = mask
                self._counted_pixels = cv2.countNonZero(mask)
        return self._mask


def _brightness(picture: np.ndarray, mask: np.ndarray | None) -> tuple[float, float]:
    """(mean, standard deviation) of the gray levels that count."""
    mean, std = cv2.meanStdDev(picture, mask=mask)
    return float(mean[0][0]), float(std[0][0])


def _match_brightness(
    current: np.ndarray, now: tuple[float, float], before: tuple[float, float]
) -> np.ndarray:
    """``current`` (whose brightness is ``now``) with its brightness and contrast mapped onto
    ``before`` (the previous picture's mean and standard deviation).

    A lighting change (auto-exposure, a cloud, a lamp) scales and shifts every gray level at
    once; matching mean and standard deviation undoes it, while a moving object, which changes
    a small part of the picture, barely moves either statistic.
    """
    (mean_now, std_now), (mean_before, std_before) = now, before
    gain = std_before / std_now if std_now > 1.0 else 1.0
    offset = mean_before - gain * mean_now
    if abs(gain - 1.0) < 0.002 and abs(offset) < 0.5:
        return current
    return cv2.addWeighted(current, gain, current, 0.0, offset)
