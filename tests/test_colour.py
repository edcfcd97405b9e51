"""Colourfulness of frames of each kind: BGR pictures, camera JPEGs, decoded YUV pictures."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from motiond.colour import colourfulness
from motiond.frames import Frame, FrameDecodeError
from tests.scenes import SceneScript


def jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return data.tobytes()


def infrared(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


@pytest.mark.parametrize("size", [(320, 240), (1280, 720)])
def test_day_is_colourful_and_infrared_is_not_whatever_the_frame_kind(
    size: tuple[int, int],
) -> None:
    day = SceneScript(width=size[0], height=size[1]).frame(0.0)
    night = infrared(day)
    decoder = av.CodecContext.create("mjpeg", "r")
    for picture, low, high in ((day, 8.0, 80.0), (night, 0.0, 1.0)):
        as_image = Frame.from_image(0, 0.0, 0.0, picture)
        as_jpeg = Frame.from_jpeg(0, 0.0, 0.0, jpeg(picture))
        as_yuv = Frame.from_jpeg(0, 0.0, 0.0, jpeg(picture))
        as_yuv.decode_yuv(decoder)
        values = [colourfulness(f) for f in (as_image, as_jpeg, as_yuv)]
        assert all(low <= v <= high for v in values), values
        assert max(values) - min(values) < 3.0, values  # the kinds agree


def test_a_garbled_jpeg_raises_decode_error() -> None:
    good = jpeg(SceneScript().frame(0.0))
    frame = Frame.from_jpeg(0, 0.0, 0.0, good[:200])
    with pytest.raises(FrameDecodeError):
        colourfulness(frame)
