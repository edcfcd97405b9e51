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
from motiond.detect.baseline import Baseline, Past
from motiond.detect.boxes import Box, MotionResult, Outlines, union_of
from motiond.detect.judged import Judged, Why
from motiond.detect.light import Pair, light_regions
from motiond.detect.movers import SmallMovers
from motiond.detect.nuisance import NuisanceModel
from motiond.detect.regions import Regions
from motiond.detect.shake import ShakeEstimator, Shift, aligned, clear_border

__all__ = ["Box", "MotionDetector", "MotionResult", "Outlines", "detection_scale", "union_of"]


TEXTURE_BLUR = (5, 5)  # the blur the texture is taken against when ``blur`` is 0
SPREAD_GRID = (8, 6)  # blocks across and down, to tell a change everywhere from a local one
SPREAD_SHARE = 0.002  # a block with more than this share of its pixels changed has changes
SLOW_MOVING_PIXELS = 4  # a slow region counts with at least this many pixels changing now ...
SLOW_MOVING_SHARE = 0.02  # ... and this share of it
SHAKE_CHANGE = 0.005  # a shift is looked for when at least this share of the picture changed
SHAKE_EXPLAINED = 0.5  # a shift is undone when it leaves at most this share of the change
SHAKE_SPREAD = 0.3  # changes in at least this share of the blocks: look for a global shift


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
        self._smooth: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self._mask_key: tuple[int, int, int, int] | None = None
        self._counted_pixels = 0
        self._source_scale = (1.0, 1.0)
        # The previous picture's brightness (mean, std), measured when it was the current one.
        self._previous_stats: tuple[float, float] | None = None
        self._stats_mask_key: tuple[int, int, int, int] | None = None
        self._scaled_areas: tuple[Outlines, tuple[float, float], Outlines] = ((), (1.0, 1.0), ())
        self.shake = ShakeEstimator()
        self.movers = SmallMovers()
        self.baseline = Baseline(config.slow_baseline)
        # Whether the last frame compared had no changed pixel: the next one is likely still
        # too, and worth the cheaper check first (``_unchanged``).
        self._was_still = False

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
        if config.slow_baseline != self.baseline.seconds:
            self.baseline = Baseline(config.slow_baseline)
        self.config = config

    def reset(self) -> None:
        """Forget the previous frame (after a reconnect the next frame is compared with nothing)."""
        self._previous = None
        self.picture = None
        self._previous_stats = None
        self.movers.reset()
        self.baseline.reset()
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
        nuisance model learns and the tracks of small movers. Returns None for the first frame
        after a reset.
        """
        config = self.config
        picture = self._resize(gray, frame_width, frame_height)
        self._source_scale = (frame_width / picture.shape[1], frame_height / picture.shape[0])
        small = self._blur(picture)
        # The texture is the picture less a blurred picture (the differenced one if blurred).
        smooth = small if config.blur else cv2.GaussianBlur(picture, TEXTURE_BLUR, 0)
        previous, previous_picture = self._previous, self.picture
        previous_smooth = self._smooth
        self._previous, self.picture, self._smooth = small, picture, smooth
        if previous is None or previous_picture is None or previous_smooth is None:
            self._previous_stats = None
            self._keep_past(now, Pair(small, picture, smooth), None)
            return None
        if previous.shape != small.shape:
            self._previous_stats = None
            self._keep_past(now, Pair(small, picture, smooth), None)
            return None
        mask = self._mask_for(small.shape[1], small.shape[0], frame_width, frame_height)

        stats = _brightness(small, mask)
        previous_stats, self._previous_stats = self._previous_stats, stats
        if previous_stats is None or self._mask_key != self._stats_mask_key:
            previous_stats = _brightness(previous, mask)
        self._stats_mask_key = self._mask_key
        changed, changed_count = self._compare(small, stats, previous, previous_stats, mask)
        before = Pair(previous, previous_picture, previous_smooth)
        shift = None
        # Beyond lightswitch the whole picture changed: lighting, a cover, whatever a shake did.
        limit = config.lightswitch or 1.0
        shaken = SHAKE_CHANGE <= changed_count / max(1, self._counted_pixels) <= limit
        if config.shake and shaken and changed is not None and _spread(changed) >= SHAKE_SPREAD:
            undone = self._undo_shake(
                small, stats, before, previous_stats, changed_count, mask=mask
            )
            if undone is not None:
                shift, before, changed, changed_count = undone
                self.baseline.shaken(now)
        past = self.baseline.past(now) if changed_count else None
        current = Pair(small, picture, smooth)
        self._keep_past(now, current, stats)
        counted = self._counted_pixels
        raw_delta = changed_count / counted if counted else 0.0
        if config.lightswitch and raw_delta > config.lightswitch:
            # The whole picture at once: lighting, never motion, and nothing to learn from.
            return MotionResult(delta=raw_delta, lighting=True, boxes=(), raw_delta=raw_delta)
        if not changed_count:
            if self.nuisance is not None and self.nuisance.learns_at(now):
                self.nuisance.calm(small.shape, now, mask)
            moved = None if shift is None else (round(shift.dx, 2), round(shift.dy, 2))
            return MotionResult(delta=0.0, lighting=False, boxes=(), raw_delta=0.0, shift=moved)
        assert changed is not None  # changed_count > 0
        min_pixels = max(1, math.ceil(config.min_area * counted))
        frame = self._judge_frame(Regions(changed), current, before, min_pixels, now=now, mask=mask)
        slow = None
        if past is not None and frame.delta(counted) <= config.threshold:
            # Only worth it when this frame does not count already (a slow mover's frames).
            slow = self._judge_slow(current, stats, past, changed, min_pixels, mask=mask)
        return frame.result(slow, counted, raw_delta, shift, self._source_scale)

    def _undo_shake(
        self,
        small: np.ndarray,
        stats: tuple[float, float],
        before: Pair,
        before_stats: tuple[float, float],
        changed_count: int,
        *,
        mask: np.ndarray | None,
    ) -> tuple[Shift, Pair, np.ndarray, int] | None:
        """If the camera shook, (the shift, the previous pictures moved by it, what changed
        from them, how many pixels); None if no shift explains most of the change."""
        shift = self.shake.shift(before.blurred, small)
        if shift is None:
            return None
        moved = aligned(before.blurred, shift)
        changed = self._changed(small, stats, moved, before_stats, mask)
        clear_border(changed, shift.border)
        count = cv2.countNonZero(changed)
        # Undone only if that explains most of the change (not snow falling one way).
        if count > SHAKE_EXPLAINED * changed_count:
            return None
        smooth = moved if self.config.blur else aligned(before.smooth, shift)
        return shift, Pair(moved, aligned(before.picture, shift), smooth), changed, count

    def _compare(
        self,
        small: np.ndarray,
        stats: tuple[float, float],
        before: np.ndarray,
        before_stats: tuple[float, float],
        mask: np.ndarray | None,
    ) -> tuple[np.ndarray | None, int]:
        """The changed pixels (None when there are none) and their count: after a still
        frame, ``_unchanged`` first."""
        if self._was_still and self._unchanged(small, stats, before, before_stats, mask):
            return None, 0
        changed = self._changed(small, stats, before, before_stats, mask)
        count = cv2.countNonZero(changed)
        self._was_still = not count
        return changed, count

    def _unchanged(
        self,
        small: np.ndarray,
        stats: tuple[float, float],
        before: np.ndarray,
        before_stats: tuple[float, float],
        mask: np.ndarray | None,
    ) -> bool:
        """Whether no pixel changed from ``before``: ``_changed`` would be all zeros.

        One OpenCV call (the largest difference where the mask counts) in place of three
        (difference, threshold, count) and a picture: on a still scene nearly every frame,
        and each call lets go of the GIL, which another camera's thread then takes (about
        one context switch a call with eight cameras, docs/benchmarks.md): a pixel changed
        where the difference is above ``pixel_threshold``, so none did where the largest
        is not."""
        matched = _match_brightness(small, stats, before_stats)
        return cv2.norm(matched, before, cv2.NORM_INF, mask) <= self.config.pixel_threshold

    def _changed(
        self,
        small: np.ndarray,
        stats: tuple[float, float],
        before: np.ndarray,
        before_stats: tuple[float, float],
        mask: np.ndarray | None,
    ) -> np.ndarray:
        """The 0/1 picture of pixels that changed from ``before`` (brightness matched)."""
        diff = cv2.absdiff(_match_brightness(small, stats, before_stats), before)
        _, changed = cv2.threshold(diff, self.config.pixel_threshold, 1, cv2.THRESH_BINARY)
        if mask is not None:
            changed = cv2.bitwise_and(changed, mask)
        return changed

    def _keep_past(self, now: float, pair: Pair, stats: tuple[float, float] | None) -> None:
        if not self.config.slow_baseline:
            return
        if stats is None:
            stats = _brightness(pair.blurred, None)
        self.baseline.keep(Past(now, pair, stats))

    def _judge_frame(
        self,
        regions: Regions,
        current: Pair,
        before: Pair,
        min_pixels: int,
        *,
        now: float,
        mask: np.ndarray | None,
    ) -> Judged:
        """Which of this frame's regions count, and why (or why not)."""
        config = self.config
        counts = regions.sizes
        why = np.where(counts >= min_pixels, Why.CHANGED, Why.SMALL)
        if self.nuisance is not None:
            counts, in_areas = self._nuisance_counts(
                regions, min_pixels, current.blurred.shape, now, mask
            )
            why[in_areas & (counts < min_pixels)] = Why.NUISANCE
        small_pixels = math.ceil(config.small_area * self._counted_pixels)
        if config.light_check:  # judged where it matters: regions that could count
            large = counts >= (small_pixels if config.small_area else min_pixels)
            light = light_regions(*_where(regions, large), now=current, before=before)
            why[light & (counts >= min_pixels)] = Why.LIGHT
            counts = np.where(light, 0, counts)
        mover = False
        if config.small_area and small_pixels < min_pixels:
            movers = self._small_movers(regions, counts, why, small_pixels, now)
            why[movers] = Why.MOVER
            counts = np.where(movers, np.maximum(counts, min_pixels), counts)
            mover = bool(movers.any())
        return Judged(regions, counts, why, min_pixels, mover)

    def _small_movers(
        self,
        regions: Regions,
        counts: np.ndarray,
        why: np.ndarray,
        small_pixels: int,
        now: float,
    ) -> np.ndarray:
        """One bool per region: part of a small mover (a group of small regions within a few
        pixels of each other, with at least ``small_pixels`` changed pixels, on a track).

        Groups, not regions: a small figure moving a pixel changes its leading and trailing
        edges, two specks a few pixels apart."""
        small = why == Why.SMALL
        if self.nuisance is not None:  # not where things often move
            busy = self.nuisance.busy(regions.ys, regions.xs, regions.shape)
            small &= 2 * regions.per_region(busy) < regions.sizes
        small[0] = False
        found = np.zeros(regions.count, bool)
        if regions.sizes[small].sum() < small_pixels:  # not enough for one mover
            self.movers.follow(np.zeros(0), np.zeros(0), now, regions.shape[1])
            return found
        eligible = small[regions.label]
        group, groups = regions.neighbourhoods()
        spoilt = np.bincount(group[~eligible], minlength=groups) > 0  # has a larger region
        sizes = np.bincount(group, minlength=groups)
        candidates = np.flatnonzero((sizes >= small_pixels) & ~spoilt)
        if not candidates.size:
            self.movers.follow(np.zeros(0), np.zeros(0), now, regions.shape[1])
            return found
        safe = np.maximum(sizes, 1)
        xs = np.bincount(group, weights=regions.xs, minlength=groups) / safe
        ys = np.bincount(group, weights=regions.ys, minlength=groups) / safe
        confirmed = self.movers.follow(xs[candidates], ys[candidates], now, regions.shape[1])
        on_track = np.zeros(groups, bool)
        on_track[candidates[confirmed]] = True
        found[regions.label[on_track[group]]] = True
        found &= small
        return found

    def _judge_slow(
        self,
        current: Pair,
        stats: tuple[float, float],
        pasts: tuple[Past, Past],
        moving: np.ndarray,
        min_pixels: int,
        *,
        mask: np.ndarray | None,
    ) -> Judged:
        """The regions changed since the picture of ``slow_baseline`` ago (and the one kept
        before it) that count: at least ``min_area``, still ``moving`` (the frame-to-frame
        changes), not light, not mostly where things often move."""
        past, before = pasts
        changed = self._changed(current.blurred, stats, past.pair.blurred, past.brightness, mask)
        # ... and from the picture kept before it: not a blip of a second ago.
        earlier = self._changed(
            current.blurred, stats, before.pair.blurred, before.brightness, mask
        )
        changed = cv2.bitwise_and(changed, earlier)
        regions = Regions(changed)
        # Something still moving in it (a creeper's edges change every frame): not what stopped
        # within the last second, which differs from a second ago but no longer moves.
        still_moving = regions.per_region(moving[regions.ys, regions.xs] > 0)
        moves = still_moving >= np.maximum(SLOW_MOVING_PIXELS, SLOW_MOVING_SHARE * regions.sizes)
        counts = np.where(moves, regions.sizes, 0)
        if self.nuisance is not None:
            # A region mostly where things often move (a learned area, or one being learned)
            # is that movement; of the others, what lies elsewhere counts.
            busy = regions.per_region(self.nuisance.busy(regions.ys, regions.xs, changed.shape))
            counts = np.where(2 * busy >= counts, 0, counts - busy)
        if self.config.light_check:
            large = counts >= min_pixels
            light = light_regions(*_where(regions, large), now=current, before=past.pair)
            counts = np.where(light, 0, counts)
        why = np.where(counts >= min_pixels, Why.SLOW, Why.SMALL)
        return Judged(regions, counts, why, min_pixels, mover=False)

    def _nuisance_counts(
        self,
        regions: Regions,
        min_pixels: int,
        shape: tuple[int, ...],
        now: float,
        mask: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per region, its changed pixels that count given the learned nuisance areas, and
        whether it lies mostly in one; then the model learns from what moved (specks, in
        groups smaller than min_area, excluded).

        A region mostly in an ignored area is that area's own movement: only its pixels in
        cells moving far more than usual count. Otherwise its pixels outside the areas count
        too (someone walking past a tree).
        """
        assert self.nuisance is not None
        counts = regions.sizes
        in_areas = np.zeros(regions.count, bool)
        judged = self.nuisance.judge(regions.ys, regions.xs, shape)
        if judged is not None:
            in_area, unusual = judged
            area = regions.per_region(in_area)
            outside = regions.sizes - area + regions.per_region(in_area & unusual)
            in_areas = 2 * area >= regions.sizes
            in_areas[0] = False
            counts = np.where(in_areas, regions.per_region(unusual), outside)
        if self.nuisance.learns_at(now):
            moving = regions.in_large_neighbourhoods(min_pixels)
            self.nuisance.update(regions.ys[moving], regions.xs[moving], shape, now, mask)
        return counts, in_areas

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


def _where(regions: Regions, chosen: np.ndarray) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """The changed pixels of the ``chosen`` regions (one bool per region) as
    ``light_regions`` takes them."""
    pixels = regions.pixels_of(chosen)
    return regions.label[pixels], regions.count, regions.ys[pixels], regions.xs[pixels]


def _spread(changed: np.ndarray) -> float:
    """The share of the picture's blocks (SPREAD_GRID) with changed pixels: a shake changes
    edges all over the picture, a person a few blocks."""
    sampled = changed[::2, ::2].astype(np.float32)  # a quarter of the pixels tell as much
    blocks = cv2.resize(sampled, SPREAD_GRID, interpolation=cv2.INTER_AREA)
    return float(np.count_nonzero(blocks > SPREAD_SHARE)) / blocks.size


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
