"""Areas that never stop moving: learned per detection pixel, then ignored (pure).

Branches in the wind, a flag, water or a screen change in most frames for as long as they move.
The model keeps, per square of ``GRID`` x ``GRID`` detection pixels, a slow running average of
how often a moving region (specks excluded) lies within a few pixels (its *activity*, 0..1,
weighted by frame time, not frame count). A square whose activity rises above ``ENTER_LEVEL``
is *ignored*, with the squares around it that move fairly often (an area's rim moves less than
its middle); it counts again once its activity has fallen below ``LEAVE_LEVEL``, i.e. after the
area has been calm for a while.

The time constant follows from ``learning_time``: a square moving in ``TYPICAL_SHARE`` of the
frames (foliage in the wind) is ignored after ``learning_time``; one moving in every frame
sooner. Learning looks at a frame at most every ``LEARN_INTERVAL`` (the averages are weighted
by time, so that changes nothing but the work).

Ignored areas still let a person through: the picture is also cut into cells of ``CELL``
pixels, and each cell keeps the running mean and spread of the share of its pixels that change
per frame (its usual movement). Changes in a cell far above its usual share (a solid body
walking through sparse branches) count even inside an ignored area. Changes outside ignored
areas always count.

Nothing here reads a clock: ``update`` takes the frame's time.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

ENTER_LEVEL = 0.5  # activity above which a pixel is ignored: it moves in most frames
LEAVE_LEVEL = 0.15  # ... and below which it counts again
# Where regions are near this often, a slow change or a small mover is that movement (the
# baseline and the tracks of small regions do not count it), learned as an area or not yet.
BUSY_LEVEL = 0.08
RIM_LEVEL = 0.25  # ... or above this within RIM_KERNEL of such pixels
TYPICAL_SHARE = 0.8  # share of frames foliage in the wind moves in, for the learning time
CELL = 8  # detection pixels per side of a cell of the usual-movement statistics
CELL_SPEEDUP = 4.0  # cells learn this much faster than pixels, so they are ready first
UNUSUAL_SIGMAS = 3.0  # a cell's change above mean + this many standard deviations ...
UNUSUAL_MARGIN = 0.12  # ... plus this share of the cell is unusual
# Activity is kept per square of GRID detection pixels: areas are what matters, and a quarter
# of the memory to go through every frame keeps detection fast.
GRID = 2
# A square is active when a moving region is this close (in squares: about 5 detection pixels
# around): a swaying tree is one active area, not a lace of the pixels its leaves crossed.
NEAR_KERNEL = cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5))
RIM_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
MAX_STEP = 1.0  # seconds: a longer gap between frames (offline, stalled) counts as this
# Seconds of frame time between frames learned from: the averages are weighted by time, so
# learning from every second frame of a 15 fps camera learns the same, for half the work.
LEARN_INTERVAL = 0.095
REFRESH_INTERVAL = 0.5  # seconds of frame time between recomputing the ignored areas
MAX_AREA_POINTS = 400  # points of the ignored areas' outlines kept for the live page


def time_constant(learning_time: float) -> float:
    """The averaging time constant that learns a ``TYPICAL_SHARE`` mover in ``learning_time``."""
    return learning_time / -math.log(1.0 - ENTER_LEVEL / TYPICAL_SHARE)


class NuisanceModel:
    """Per-pixel activity of one camera's detection picture. Not thread-safe, except that
    ``ignored_share`` and ``areas`` are replaced (never changed) and may be read anywhere.

    Changed pixels come as coordinate lists (``ys``, ``xs``): a frame changes a few hundred
    pixels, and per-pixel work on them is far cheaper than on whole pictures.
    """

    def __init__(self, learning_time: float) -> None:
        self.tau = time_constant(learning_time)
        self._shape: tuple[int, int] | None = None  # of the detection picture
        self._activity = np.zeros((0, 0), np.float32)  # per GRID square
        self._ignored = np.zeros((0, 0), np.uint8)  # per GRID square: 1 where ignored
        self._mask_key: tuple[int, ...] | None = None
        self._grid_mask: np.ndarray | None = None  # squares mostly unmasked (None: all)
        self._cells = (0, 0)
        self._cell_area = np.ones(0, np.float32)  # pixels in each cell (edge cells are smaller)
        self._cell_mean = np.zeros(0, np.float32)  # usual share of a cell changed per frame
        self._cell_square = np.zeros(0, np.float32)
        self._cell_limit = np.zeros(0, np.float32)  # a share above this is unusual
        self._last_now: float | None = None
        self._next_refresh = float("-inf")
        self._any_ignored = False
        self.ignored_share = 0.0
        self.areas: tuple[tuple[tuple[int, int], ...], ...] = ()  # in detection pixels

    def learns_at(self, now: float) -> bool:
        """Whether the frame at ``now`` is one to learn from (``update`` or ``calm``)."""
        return (
            self._last_now is None or now - self._last_now >= LEARN_INTERVAL or now < self._last_now
        )

    def reset_clock(self) -> None:
        """The next frame follows a gap (reconnect): it learns nothing from the time between."""
        self._last_now = None

    def _ensure(self, shape: tuple[int, ...]) -> None:
        height, width = shape[0], shape[1]
        if self._shape == (height, width):
            return
        self._shape = (height, width)
        rows, cols = -(-height // CELL), -(-width // CELL)
        self._cells = (rows, cols)
        heights = np.minimum(CELL, height - CELL * np.arange(rows))
        widths = np.minimum(CELL, width - CELL * np.arange(cols))
        self._cell_area = np.outer(heights, widths).astype(np.float32).ravel()
        grid = (-(-height // GRID), -(-width // GRID))
        self._activity = np.zeros(grid, np.float32)
        self._ignored = np.zeros(grid, np.uint8)
        self._mask_key = None
        self._cell_mean = np.zeros(rows * cols, np.float32)
        self._cell_square = np.zeros(rows * cols, np.float32)
        self._cell_limit = np.ones(rows * cols, np.float32)
        self._any_ignored = False
        self.ignored_share = 0.0
        self.areas = ()

    def _cell_of(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        cell: np.ndarray = (ys // CELL) * self._cells[1] + xs // CELL
        return cell

    def _cell_shares(self, cells: np.ndarray) -> np.ndarray:
        """The share of each cell's pixels among ``cells`` (one cell index per pixel)."""
        counts = np.bincount(cells, minlength=self._cell_area.size)
        shares: np.ndarray = counts.astype(np.float32) / self._cell_area
        return shares

    def judge(
        self, ys: np.ndarray, xs: np.ndarray, shape: tuple[int, ...]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """For the changed pixels of a picture of ``shape``: (in an ignored area, in a cell
        changing far more than usual), one bool each; None while nothing is ignored. Uses what
        was learned before this frame."""
        self._ensure(shape)
        if not self._any_ignored:
            return None
        cells = self._cell_of(ys, xs)
        unusual_cells = self._cell_shares(cells) > self._cell_limit
        in_area: np.ndarray = self._ignored[ys // GRID, xs // GRID] > 0
        return in_area, unusual_cells[cells]

    def busy(self, ys: np.ndarray, xs: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """For the pixels ``ys``/``xs`` of a picture of ``shape``, one bool each: near where
        moving regions are often seen (activity at least BUSY_LEVEL, learned or not yet)."""
        self._ensure(shape)
        busy: np.ndarray = self._activity[ys // GRID, xs // GRID] >= BUSY_LEVEL
        return busy

    def update(
        self,
        ys: np.ndarray,
        xs: np.ndarray,
        shape: tuple[int, ...],
        now: float,
        mask: np.ndarray | None,
    ) -> None:
        """Learn from one frame at ``now``: ``ys``/``xs`` are the changed pixels of the
        regions that moved (specks excluded); ``mask`` (0/1) the pixels that count at all."""
        self._ensure(shape)
        alpha, cell_alpha = self._step(now)
        if alpha:
            moving = np.zeros(self._activity.shape, np.uint8)
            moving[ys // GRID, xs // GRID] = 1
            cv2.accumulateWeighted(cv2.dilate(moving, NEAR_KERNEL), self._activity, alpha)
            shares = self._cell_shares(self._cell_of(ys, xs))
            self._cell_mean += cell_alpha * (shares - self._cell_mean)
            self._cell_square += cell_alpha * (shares * shares - self._cell_square)
        self._maybe_refresh(now, mask)

    def calm(self, shape: tuple[int, ...], now: float, mask: np.ndarray | None) -> None:
        """Learn from a frame of ``shape`` at ``now`` in which nothing changed."""
        self._ensure(shape)
        alpha, cell_alpha = self._step(now)
        if alpha:
            self._activity *= 1.0 - alpha
            self._cell_mean *= 1.0 - cell_alpha
            self._cell_square *= 1.0 - cell_alpha
        self._maybe_refresh(now, mask)

    def _step(self, now: float) -> tuple[float, float]:
        """The weights of this frame in the running averages (0 after a gap)."""
        step = 0.0 if self._last_now is None else min(MAX_STEP, max(0.0, now - self._last_now))
        self._last_now = now
        if step <= 0.0:
            return 0.0, 0.0
        return 1.0 - math.exp(-step / self.tau), 1.0 - math.exp(-step * CELL_SPEEDUP / self.tau)

    def _maybe_refresh(self, now: float, mask: np.ndarray | None) -> None:
        if now >= self._next_refresh:
            self._next_refresh = now + REFRESH_INTERVAL
            self._refresh(mask)

    def _refresh(self, mask: np.ndarray | None) -> None:
        """Recompute the ignored areas (with hysteresis) and each cell's unusual share."""
        entering = self._activity >= ENTER_LEVEL
        staying = (self._ignored > 0) & (self._activity >= LEAVE_LEVEL)
        core = (entering | staying).astype(np.uint8)
        # The rim of an area moves less often than its middle: pixels around the core that
        # move fairly often belong to it.
        rim = (cv2.dilate(core, RIM_KERNEL) > 0) & (self._activity >= RIM_LEVEL)
        ignored = core | rim.astype(np.uint8)
        grid_mask = self._grid_mask_of(mask)
        if grid_mask is not None:
            ignored &= grid_mask
        self._ignored = ignored
        count = int(cv2.countNonZero(ignored))
        self._any_ignored = count > 0
        total = int(cv2.countNonZero(grid_mask)) if grid_mask is not None else ignored.size
        self.ignored_share = count / total if total else 0.0
        variance = np.maximum(self._cell_square - self._cell_mean * self._cell_mean, 0.0)
        spread = UNUSUAL_SIGMAS * np.sqrt(variance)
        self._cell_limit = (self._cell_mean + spread + UNUSUAL_MARGIN).astype(np.float32)
        self.areas = _outlines(ignored, GRID) if count else ()

    def _grid_mask_of(self, mask: np.ndarray | None) -> np.ndarray | None:
        """The detection mask per GRID square (a square counts when most of it does)."""
        key = None if mask is None else (id(mask), *mask.shape)
        if key != self._mask_key:
            self._mask_key = key
            self._grid_mask = None
            if mask is not None:
                rows, cols = self._activity.shape
                shares = cv2.resize(
                    mask.astype(np.float32), (cols, rows), interpolation=cv2.INTER_AREA
                )
                self._grid_mask = (shares >= 0.5).astype(np.uint8)
        return self._grid_mask

    @property
    def activity(self) -> np.ndarray:
        """Per GRID square, how often a moving region is near it (a copy, for tuning)."""
        return self._activity.copy()

    @property
    def ignored(self) -> np.ndarray:
        """1 where changes are ignored, per detection pixel (a copy, for tests and tuning)."""
        if self._shape is None:
            return np.zeros((0, 0), np.uint8)
        height, width = self._shape
        full = np.repeat(np.repeat(self._ignored, GRID, axis=0), GRID, axis=1)
        return full[:height, :width].copy()


def _outlines(ignored: np.ndarray, scale: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Simplified outlines of the ignored areas (in pixels ``scale`` times those of
    ``ignored``), largest first, at most MAX_AREA_POINTS points in all."""
    contours, _ = cv2.findContours(ignored, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    contours = sorted(contours, key=cv2.contourArea, reverse=True)
    outlines = []
    points = 0
    for contour in contours:
        simple = cv2.approxPolyDP(contour, 1.0, True)
        if len(simple) < 3:
            continue
        if points + len(simple) > MAX_AREA_POINTS:
            break
        points += len(simple)
        outlines.append(tuple((int(p[0][0]) * scale, int(p[0][1]) * scale) for p in simple))
    return tuple(outlines)
