"""The changed regions of one frame (pure): changed pixels near each other form one region.

A region's size is its number of changed pixels, not its outline, so sparse specks that the
merging joins (rain, snow, insects) stay small. Everything after the labelling works on the
list of changed pixels, a few hundred to a few thousand, not on whole pictures: that keeps a
frame's detection well under a millisecond.
"""

from __future__ import annotations

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


class Regions:
    """The regions of a 0/1 changed picture. ``ys``/``xs`` are the changed pixels, ``label``
    the region of each (1..count-1), ``sizes`` the changed pixels per region (index 0: none)."""

    def __init__(self, changed: np.ndarray) -> None:
        self._changed = changed
        self.shape: tuple[int, ...] = changed.shape
        merged = cv2.dilate(changed, MERGE_KERNEL)
        self.count, labels = cv2.connectedComponents(merged, connectivity=8)
        points = cv2.findNonZero(changed)  # far faster than np.nonzero
        points = np.zeros((0, 2), np.int32) if points is None else points.reshape(-1, 2)
        self.xs: np.ndarray = points[:, 0]
        self.ys: np.ndarray = points[:, 1]
        self.label: np.ndarray = labels[self.ys, self.xs]
        self.sizes: np.ndarray = np.bincount(self.label, minlength=self.count)
        self._neighbourhoods: tuple[np.ndarray, int] | None = None

    def neighbourhoods(self) -> tuple[np.ndarray, int]:
        """(per changed pixel, its neighbourhood: the changed pixels within about 4 pixels,
        merging more generously than the regions do, worked out on a half-size grid; how
        many neighbourhood numbers there are). Worked out once."""
        if self._neighbourhoods is not None:
            return self._neighbourhoods
        height, width = self._changed.shape
        grid = np.zeros((-(-height // 2), -(-width // 2)), np.uint8)
        grid[self.ys // 2, self.xs // 2] = 1
        count, labels = cv2.connectedComponents(
            cv2.dilate(grid, NEIGHBOURHOOD_KERNEL), connectivity=8
        )
        neighbourhood: np.ndarray = labels[self.ys // 2, self.xs // 2]
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
        starts = np.concatenate(([0], np.cumsum(self.sizes[1:])[:-1]))
        xs, ys = self.xs[order], self.ys[order]
        left = np.minimum.reduceat(xs, starts)
        top = np.minimum.reduceat(ys, starts)
        width = np.maximum.reduceat(xs, starts) + 1 - left
        height = np.maximum.reduceat(ys, starts) + 1 - top
        by_size = np.argsort(-self.sizes[1:], kind="stable")
        counted = counts[1:][by_size]
        sx, sy = scale
        result: list[tuple[Box, ...]] = []
        picked = (by_size[counted][:MAX_BOXES], by_size[~counted][:MAX_BOXES])
        for chosen in picked:
            rows = np.rint(
                np.stack(
                    (left[chosen] * sx, top[chosen] * sy, width[chosen] * sx, height[chosen] * sy),
                    axis=1,
                )
            ).astype(int)
            result.append(tuple(Box(x, y, max(1, w), max(1, h)) for x, y, w, h in rows.tolist()))
        return result[0], picked[0] + 1, result[1], picked[1] + 1
