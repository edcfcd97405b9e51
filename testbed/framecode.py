"""The frame number, drawn as black/white blocks in a strip along the bottom of a picture.

Generated videos carry it so that each frame of a clip can be traced back to the source (mask
the strip out of detection); ``read_frame_number`` reads it back from a decoded picture.
"""

from __future__ import annotations

import cv2
import numpy as np

CODE_BITS = 12
CODE_HEIGHT = 16


def draw_frame_number(image: np.ndarray, number: int) -> None:
    """Write ``number`` as CODE_BITS black/white blocks along the bottom edge."""
    height, width = image.shape[:2]
    block = width // CODE_BITS
    for bit in range(CODE_BITS):
        value = 255 if number >> bit & 1 else 0
        image[height - CODE_HEIGHT :, bit * block : (bit + 1) * block] = value


def read_frame_number(image: np.ndarray) -> int:
    height, width = image.shape[:2]
    block = width // CODE_BITS
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    strip = gray[height - CODE_HEIGHT + 4 : height - 4]
    number = 0
    for bit in range(CODE_BITS):
        if strip[:, bit * block + 4 : (bit + 1) * block - 4].mean() > 128:
            number |= 1 << bit
    return number
