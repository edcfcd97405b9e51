"""The picture a warn snapshot is made from (a value: nothing here computes)."""

from __future__ import annotations

from dataclasses import dataclass

from motiond.detect.boxes import Box
from motiond.frames import Frame


@dataclass(frozen=True, slots=True)
class Still:
    """A picture for a warn snapshot: a decodable frame (JPEG or raw), boxes in its pixels."""

    frame: Frame
    boxes: tuple[Box, ...]
