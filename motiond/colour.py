"""How colourful a frame is: the cheap statistic that tells day from infrared night.

Colourfulness is the mean, over a sparse sample of the picture, of |Cb - 128| + |Cr - 128|
(8-bit chroma, the JPEG/BT.601 definition): 0 for a picture without colour (an infrared
camera's), typically 10 to 40 for a daylight scene.

Cost, on the capture thread, once a second and on frames where the picture jumped (see
``SceneMonitor.wants_colour``): a decoded YUV picture (a clip being recorded) costs nothing
but a strided read of its chroma planes; a BGR picture a strided sample and a colour
conversion of about 80x60 pixels (well under 0.1 ms); a camera JPEG not otherwise decoded a
reduced colour decode at 1/8 scale (about 3 ms at 1080p here, so under 0.2 ms per frame on
average at 15 fps).
"""

from __future__ import annotations

import cv2
import numpy as np

from motiond.frames import Frame, FrameDecodeError

SAMPLE_WIDTH = 80  # pixels across the sample of a BGR picture


def colourfulness(frame: Frame) -> float:
    """The frame's colourfulness (see the module docstring). Raises FrameDecodeError for a
    JPEG that does not decode."""
    if frame.yuv is not None:
        return _from_planes(frame.yuv)
    if frame.image is not None:
        return _from_bgr(frame.image)
    assert frame.jpeg is not None
    small = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_REDUCED_COLOR_8)
    if small is None:
        raise FrameDecodeError("JPEG decode failed")
    return _from_bgr(small)


def _from_bgr(image: np.ndarray) -> float:
    step = max(1, image.shape[1] // SAMPLE_WIDTH)
    sample = np.ascontiguousarray(image[::step, ::step])
    ycrcb = cv2.cvtColor(sample, cv2.COLOR_BGR2YCrCb)
    return _chroma_distance(ycrcb[..., 1], ycrcb[..., 2])


def _from_planes(picture: object) -> float:
    planes = picture.planes  # type: ignore[attr-defined]
    chroma = []
    for plane in planes[1:3]:
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        step = max(1, plane.width // SAMPLE_WIDTH)
        chroma.append(rows[::step, : plane.width : step])
    return _chroma_distance(chroma[0], chroma[1])


def _chroma_distance(cb: np.ndarray, cr: np.ndarray) -> float:
    total = 0.0
    for plane in (cb, cr):
        distance = np.abs(plane.astype(np.int16) - 128)
        total += float(distance.mean()) if distance.size else 0.0
    return total
