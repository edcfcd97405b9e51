"""A shaking camera: the global shift of the picture between two frames, and undoing it (pure).

A camera on a pole in the wind moves the whole picture by a few pixels from frame to frame;
differenced as it is, every edge in the scene looks like motion. Phase correlation of the two
(blurred, detection-size) pictures finds the shift that best lines them up, to a fraction of a
pixel; the previous picture is moved by it before differencing, and the strip along the border
that the shift brought in from outside is not judged. Someone moving in the scene during the
shake is a small part of the picture: the peak stays with the background, and they still
differ from the aligned picture.

Translation only. A rotation of the camera by an angle a moves the picture's edges by about
a * half its width (0.3 degrees: 1 pixel at 384 pixels wide), which is left over after the
alignment; zoom and a tilt of the view are not undone either.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIN_SHIFT = 0.3  # detection pixels: a smaller shift is noise, left alone
MIN_RESPONSE = 0.05  # phase correlation's peak below this: no single shift explains the change
MAX_SHIFT_SHARE = 0.1  # a shift beyond this share of the picture's width is a new view, not shake


@dataclass(frozen=True, slots=True)
class Shift:
    """How far the current picture moved from the previous one, in detection pixels."""

    dx: float
    dy: float

    @property
    def border(self) -> int:
        """Pixels along each edge that an alignment by this shift makes up."""
        return int(np.ceil(max(abs(self.dx), abs(self.dy)))) + 1


class ShakeEstimator:
    """Phase correlation with a window cached per picture size. Not thread-safe."""

    def __init__(self) -> None:
        self._window: np.ndarray | None = None

    def shift(self, previous: np.ndarray, current: np.ndarray) -> Shift | None:
        """The global shift from ``previous`` to ``current`` (gray pictures of one size), or
        None when there is none worth undoing."""
        height, width = current.shape
        if self._window is None or self._window.shape != (height, width):
            self._window = cv2.createHanningWindow((width, height), cv2.CV_32F)
        (dx, dy), response = cv2.phaseCorrelate(
            previous.astype(np.float32), current.astype(np.float32), self._window
        )
        if response < MIN_RESPONSE or max(abs(dx), abs(dy)) < MIN_SHIFT:
            return None
        if max(abs(dx), abs(dy)) > MAX_SHIFT_SHARE * width:
            return None
        return Shift(float(dx), float(dy))


def aligned(picture: np.ndarray, shift: Shift) -> np.ndarray:
    """``picture`` moved by ``shift`` (edges replicated: the border is not judged anyway)."""
    matrix = np.array([[1.0, 0.0, shift.dx], [0.0, 1.0, shift.dy]], np.float32)
    height, width = picture.shape
    moved: np.ndarray = cv2.warpAffine(
        picture, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return moved


def clear_border(changed: np.ndarray, border: int) -> None:
    """Zero ``border`` pixels along each edge of ``changed``, in place."""
    changed[:border] = 0
    changed[-border:] = 0
    changed[:, :border] = 0
    changed[:, -border:] = 0
