"""One frame's regions as judged: which count and why, turned into a ``MotionResult`` (pure)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from motiond.detect.boxes import MAX_BOXES, MotionResult
from motiond.detect.regions import Regions
from motiond.detect.shake import Shift


class Why(enum.IntEnum):
    """Why a region counted, or did not (the live page's overlay shows the names)."""

    SMALL = 0  # below min_area
    CHANGED = 1  # at least min_area
    NUISANCE = 2  # in an area learned as always moving
    LIGHT = 3  # the same texture, lit differently
    MOVER = 4  # below min_area, but moving steadily over frames
    SLOW = 5  # changed since the picture of slow_baseline ago

    @property
    def label(self) -> str:
        return LABELS[self]


LABELS = {
    Why.SMALL: "small",
    Why.CHANGED: "changed",
    Why.NUISANCE: "always moving",
    Why.LIGHT: "light",
    Why.MOVER: "small mover",
    Why.SLOW: "slow",
}
# Per reason (its number), whether a region with it counts, and its label.
COUNTING = np.array([w in (Why.CHANGED, Why.MOVER, Why.SLOW) for w in sorted(Why)], bool)
LABEL_OF = [LABELS[w] for w in sorted(Why)]


@dataclass(frozen=True, slots=True)
class Judged:
    """Regions with the pixels of each that count (``counts``) and why (``why``)."""

    regions: Regions
    counts: np.ndarray
    why: np.ndarray
    min_pixels: int
    mover: bool

    def counting(self) -> np.ndarray:
        """One bool per region: it counts."""
        result: np.ndarray = (self.counts >= self.min_pixels) & COUNTING[self.why]
        result[0] = False
        return result

    def delta(self, counted: int) -> float:
        if not counted:
            return 0.0
        return float(self.regions.sizes[self.counting()].sum()) / counted

    def result(
        self,
        slow: Judged | None,
        counted: int,
        raw_delta: float,
        shift: Shift | None,
        scale: tuple[float, float],
    ) -> MotionResult:
        """This frame's result: its delta is the larger of the frame-to-frame one and the
        one since ``slow_baseline`` ago; boxes and reasons of both (the frame's first)."""
        counting = self.counting()
        boxes, chosen, ignored, left = self.regions.labelled_boxes(counting, scale)
        reasons = [LABEL_OF[w] for w in self.why[chosen].tolist()]
        ignored_reasons = [LABEL_OF[w] for w in self.why[left].tolist()]
        delta = self.delta(counted)
        if slow is not None:
            slow_delta = slow.delta(counted)
            if slow_delta > delta:
                delta = slow_delta
                slow_boxes, _, _, _ = slow.regions.labelled_boxes(slow.counting(), scale)
                boxes += slow_boxes[: max(0, MAX_BOXES - len(boxes))]
                reasons += ["slow"] * (len(boxes) - len(reasons))
        largest = float(self.regions.sizes.max()) / counted if counted else 0.0
        return MotionResult(
            delta=delta,
            lighting=False,
            boxes=boxes,
            raw_delta=raw_delta,
            ignored_boxes=ignored,
            largest=largest,
            reasons=tuple(reasons),
            ignored_reasons=tuple(ignored_reasons),
            mover=self.mover,
            shift=None if shift is None else (round(shift.dx, 2), round(shift.dy, 2)),
        )
