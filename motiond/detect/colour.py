"""How colourful a frame is: the cheap statistic that tells day from infrared night.

Colourfulness is the mean, over a sparse sample of the picture, of |Cb - 128| + |Cr - 128|
(8-bit chroma, the JPEG/BT.601 definition), each less one level (a gray picture converted to
video's YUV by libswscale comes out at 127, not 128): 0 for a picture without colour (an
infrared camera's), typically 10 to 40 for a daylight scene.

Cost, on the thread that detects (the capture thread, or a sub stream's detection thread),
once a second and on frames where the picture jumped (see ``SceneMonitor.wants_colour``): a
decoded YUV picture (an IP camera's, main or sub stream) costs nothing but a strided read of
its chroma planes; a BGR picture a strided sample and a colour conversion of about 80x60
pixels (well under 0.1 ms); a camera JPEG a reduced colour decode at 1/8 scale (about 3 ms at
1080p here, so under 0.2 ms per frame on average at 15 fps).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from motiond.frames import Frame, FrameDecodeError

SAMPLE_WIDTH = 80  # pixels across the sample of a picture
# Decoded pictures whose planes are Y, Cb, Cr (H.264/H.265 and JPEG decoders give these).
PLANAR_YUV = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuvj440p"}
)


def colourfulness(frame: Frame) -> float:
    """The frame's colourfulness (see the module docstring). Raises FrameDecodeError for a
    JPEG that does not decode or a coded frame without its decoded picture."""
    if frame.picture is not None:
        return _from_picture(frame.picture)
    if frame.image is not None:
        return _from_bgr(frame.image)
    if frame.jpeg is None:
        raise FrameDecodeError("a coded video packet has no picture of its own")
    small = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_REDUCED_COLOR_8)
    if small is None:
        raise FrameDecodeError("JPEG decode failed")
    return _from_bgr(small)


def _from_bgr(image: np.ndarray) -> float:
    step = max(1, image.shape[1] // SAMPLE_WIDTH)
    sample = np.ascontiguousarray(image[::step, ::step])
    ycrcb = cv2.cvtColor(sample, cv2.COLOR_BGR2YCrCb)
    return _chroma_distance(ycrcb[..., 1], ycrcb[..., 2])


def _from_picture(picture: Any) -> float:
    """A decoded picture (an ``av.VideoFrame``): its chroma planes as they are; another pixel
    format (rare: NV12 from some decoders) through a small BGR conversion."""
    if picture.format.name not in PLANAR_YUV:
        width = min(picture.width, SAMPLE_WIDTH * 2)
        height = max(1, round(picture.height * width / picture.width))
        small = picture.reformat(width=width, height=height, format="bgr24")
        return _from_bgr(small.to_ndarray())
    chroma = []
    for plane in picture.planes[1:3]:
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        step = max(1, plane.width // SAMPLE_WIDTH)
        chroma.append(rows[::step, : plane.width : step])
    return _chroma_distance(chroma[0], chroma[1])


def _chroma_distance(cb: np.ndarray, cr: np.ndarray) -> float:
    total = 0.0
    for plane in (cb, cr):
        distance = np.maximum(np.abs(plane.astype(np.int16) - 128) - 1, 0)
        total += float(distance.mean()) if distance.size else 0.0
    return total
