"""What the motion detector reports, as values (pure): boxes around changed regions, in the
source frame's pixels, and one frame's ``MotionResult``.

They live apart from the detector (motion.py) so that the recorder, the camera door and the
web side can read them without importing detection code.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_BOXES = 16  # per kind of region in one frame

Outlines = tuple[tuple[tuple[int, int], ...], ...]  # polygons of (x, y) points


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


def union_of(boxes: tuple[Box, ...] | list[Box]) -> Box | None:
    result: Box | None = None
    for box in boxes:
        result = box if result is None else result.union(box)
    return result


@dataclass(frozen=True, slots=True)
class MotionResult:
    """What one frame showed compared with the previous one.

    ``delta`` is the fraction of the picture in changed regions that count (what the trigger
    compares with ``threshold``); ``raw_delta`` the fraction that changed at all (lighting is
    judged on it). ``boxes`` are the regions that count, ``ignored_boxes`` those that changed
    but do not (specks smaller than ``min_area``, movement in learned nuisance areas);
    ``largest`` is the largest region's share of the picture (what ``min_area`` is set against).
    ``reasons`` and ``ignored_reasons`` say, box by box, why it counted (``changed``: at least
    ``min_area``; ``small mover``: smaller, but moving steadily over frames; ``slow``: changed
    since the picture of ``slow_baseline`` ago) or did not (``small``: below ``min_area``;
    ``always moving``: in a learned nuisance area; ``light``: the same texture, lit
    differently). ``mover``: a small mover counted in this frame (a changed frame even below
    ``threshold``). ``shift``: the camera's shake undone, in detection pixels (None: none).
    ``frames``: how many of the camera's frames this result stands for (more than 1 when
    ``detect_fps`` skipped frames before it: the trigger counts it that many times).
    """

    delta: float
    lighting: bool
    boxes: tuple[Box, ...]
    raw_delta: float = 0.0
    ignored_boxes: tuple[Box, ...] = ()
    largest: float = 0.0  # the largest changed region's changed pixels, as a fraction
    reasons: tuple[str, ...] = ()
    ignored_reasons: tuple[str, ...] = ()
    mover: bool = False
    shift: tuple[float, float] | None = None
    frames: int = 1

    def why(self) -> dict[str, object]:
        """Why each box counted or not, for the live page's overlay (JSON-ready)."""
        return {
            "reasons": list(self.reasons),
            "ignored_reasons": list(self.ignored_reasons),
            "mover": self.mover,
            "shift": list(self.shift) if self.shift is not None else None,
        }
