"""Colourfulness of frames of each kind: BGR pictures, camera JPEGs, decoded YUV pictures
(an IP camera's coded frame with its picture, a JPEG decoded by libavcodec)."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from motiond.detect.colour import colourfulness
from motiond.frames import Frame, FrameDecodeError, StreamParams, VideoPacket, decode_jpeg_to_yuv
from tests.fixtures.scenes import SceneScript


def jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return data.tobytes()


def coded(image: np.ndarray, pixel_format: str) -> Frame:
    """An IP camera's frame: a (dummy) coded packet and the picture decoded from it."""
    picture = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format=pixel_format)
    height, width = image.shape[:2]
    packet = VideoPacket(b"\x00\x00\x00\x01", True, StreamParams("h264", b"", width, height))
    return Frame(0, 0.0, 0.0, width, height, packet=packet, picture=picture)


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
        as_decoded_jpeg = Frame(
            0,
            0.0,
            0.0,
            as_jpeg.width,
            as_jpeg.height,
            jpeg=as_jpeg.jpeg,
            picture=decode_jpeg_to_yuv(jpeg(picture), decoder),
        )
        frames = (as_image, as_jpeg, as_decoded_jpeg, coded(picture, "yuv420p"))
        values = [colourfulness(f) for f in (*frames, coded(picture, "nv12"))]
        assert all(low <= v <= high for v in values), values
        # The kinds agree (video's limited-range chroma spans 224/255 of JPEG's full range).
        assert max(values) - min(values) < max(3.0, 0.15 * max(values)), values


def test_a_garbled_jpeg_raises_decode_error() -> None:
    good = jpeg(SceneScript().frame(0.0))
    frame = Frame.from_jpeg(0, 0.0, 0.0, good[:200])
    with pytest.raises(FrameDecodeError):
        colourfulness(frame)


def test_a_coded_frame_without_its_picture_raises_decode_error() -> None:
    frame = coded(SceneScript().frame(0.0), "yuv420p")
    with pytest.raises(FrameDecodeError):
        colourfulness(Frame(0, 0.0, 0.0, frame.width, frame.height, packet=frame.packet))
