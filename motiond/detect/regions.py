"""The changed regions of one frame (pure): changed pixels near each other form one region.

A region's size is its number of changed pixels, not its outline, so sparse specks that the
merging joins (rain, snow, insects) stay small. The labelling covers only the rectangle around
the changes, and everything after it works on the list of changed pixels, a few hundred to a
few thousand, not on whole pictures: that keeps a frame's detection well under a millisecond.
"""

from __future__ import annotations

from itertools import starmap

import cv2
import numpy as np

from motiond.detect.boxes import MAX_BOXES, Box

# Changed pixels this close (detection pixels) belong to one region: the parts of one moving
# thing (a person's edges, arms, legs) merge, while specks (rain, snow) mostly stay apart. A
# larger kernel chains snow flakes into large regions (measured: scripts/tune_defaults.py).
MERGE_KERNEL = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
# What moves in a neighbourhood, for learning areas that never stop moving: a tree's leaves
# flutter in many small regions that together are one moving thing (on a half-size grid).
NEIGHBOURHOOD_KERNEL = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
LABELS_16BIT = 65535  # a picture of at most this many pixels has fewer components


class Regions:
    """The regions of a 0/1 changed picture. ``ys``/``xs`` are the changed pixels, ``label``
    the region of each (1..count-1), ``sizes`` the changed pixels per region (index 0: none)."""

    def __init__(self, changed: np.ndarray) -> None:
        self._changed = changed
        self.shape: tuple[int, ...] = changed.shape
        points = cv2.findNonZero(changed)  # far faster than np.nonzero
        points = np.zeros((0, 2), np.int32) if points is None else points.reshape(-1, 2)
        self.xs: np.ndarray = points[:, 0]
        self.ys: np.ndarray = points[:, 1]
        self.count, self.label = _groups(changed, self.ys, self.xs, MERGE_KERNEL)
        self.sizes: np.ndarray = np.bincount(self.label, minlength=self.count)
        self._neighbourhoods: tuple[np.ndarray, int] | None = None

    def neighbourhoods(self) -> tuple[np.ndarray, int]:
        """(per changed pixel, its neighbourhood: the changed pixels within about 4 pixels,
        merging more generously than the regions do, worked out on a half-size grid; how
        many neighbourhood numbers there are). Worked out once."""
        if self._neighbourhoods is None:
            height, width = self._changed.shape
            grid = np.zeros((-(-height // 2), -(-width // 2)), np.uint8)
            ys, xs = self.ys // 2, self.xs // 2
            grid[ys, xs] = 1
            count, neighbourhood = _groups(grid, ys, xs, NEIGHBOURHOOD_KERNEL)
            self._neighbourhoods = (neighbourhood, count)
        return self._neighbourhoods

    def in_large_neighbourhoods(self, min_pixels: int) -> np.ndarray:
        """One bool per changed pixel: whether its neighbourhood has at least ``min_pixels``
        changed pixels."""
        label, count = self.neighbourhoods()
        large: np.ndarray = np.bincount(label, minlength=count)[label] >= min_pixels
        return large

    def per_region(self, flags: np.ndarray) -> np.ndarray:
        """How many of each region's changed pixels have ``flags`` (bool, one per pixel)."""
        return np.bincount(self.label[flags], minlength=self.count)

    def pixels_of(self, regions: np.ndarray) -> np.ndarray:
        """One bool per changed pixel: whether it belongs to a region where ``regions`` (one
        bool per region) is true."""
        selected: np.ndarray = regions[self.label]
        return selected

    def boxes(
        self, counts: np.ndarray, min_pixels: int, scale: tuple[float, float]
    ) -> tuple[tuple[Box, ...], tuple[Box, ...]]:
        """(regions with at least ``min_pixels`` counted, the other changed regions), each
        around its changed pixels, largest first, in source pixels; at most MAX_BOXES each."""
        counted, _, ignored, _ = self.labelled_boxes(counts >= min_pixels, scale)
        return counted, ignored

    def labelled_boxes(
        self, counts: np.ndarray, scale: tuple[float, float]
    ) -> tuple[tuple[Box, ...], np.ndarray, tuple[Box, ...], np.ndarray]:
        """(boxes of the regions where ``counts`` (one bool per region) is true, their
        region numbers, boxes of the others, theirs), around their changed pixels, largest
        first, in source pixels; at most MAX_BOXES each."""
        none = np.zeros(0, np.intp)
        if self.count <= 1:
            return (), none, (), none
        order = np.argsort(self.label, kind="stable")
        starts = np.cumsum(self.sizes)[:-1]  # where each region's pixels begin in ``order``
        xs, ys = self.xs[order], self.ys[order]
        left = np.minimum.reduceat(xs, starts)
        top = np.minimum.reduceat(ys, starts)
        width = np.maximum.reduceat(xs, starts) + 1 - left
        height = np.maximum.reduceat(ys, starts) + 1 - top
        by_size = np.argsort(-self.sizes[1:], kind="stable")
        counted = counts[1:][by_size]
        picked = (by_size[counted][:MAX_BOXES], by_size[~counted][:MAX_BOXES])
        chosen = np.concatenate(picked)
        sx, sy = scale
        rows = np.rint(
            np.stack((left[chosen], top[chosen], width[chosen], height[chosen]), axis=1)
            * (sx, sy, sx, sy)
        ).astype(int)
        rows[:, 2:] = np.maximum(rows[:, 2:], 1)
        boxes = tuple(starmap(Box, rows.tolist()))
        first = len(picked[0])
        return boxes[:first], picked[0] + 1, boxes[first:], picked[1] + 1


def _groups(
    marked: np.ndarray, ys: np.ndarray, xs: np.ndarray, kernel: np.ndarray
) -> tuple[int, np.ndarray]:
    """(how many group numbers, the group of each marked pixel ``ys``/``xs``): the marked
    pixels of ``marked`` that touch once each is grown by ``kernel`` (3x3) form one group,
    numbered from 1 as OpenCV numbers components.

    Only the rectangle around the marked pixels is labelled, a few times cheaper than the
    whole picture when something moves in part of it. It starts at an even row and column so
    that the labelling's 2x2 blocks fall as they do on the whole picture: the numbers are the
    same.
    """
    if not len(ys):
        return 1, np.zeros(0, np.uint16)
    height, width = marked.shape
    top, left = max(0, int(ys.min()) - 1) & ~1, max(0, int(xs.min()) - 1) & ~1
    bottom, right = min(height, int(ys.max()) + 2), min(width, int(xs.max()) + 2)
    grown = cv2.dilate(marked[top:bottom, left:right], kernel)
    # 16-bit numbers where they cannot run out (then the sorts by group are radix sorts).
    ltype = cv2.CV_16U if grown.size <= LABELS_16BIT else cv2.CV_32S
    count, labels = cv2.connectedComponents(grown, connectivity=8, ltype=ltype)
    group: np.ndarray = labels.ravel().take((ys - top) * (right - left) + (xs - left))
    return count, group
