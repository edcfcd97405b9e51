"""Boxes around changed regions, in the source frame's pixels."""

from __future__ import annotations

from dataclasses import dataclass

MAX_BOXES = 16  # per kind of region in one frame


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
