"""The frame that flows through the pipeline.

A frame is created once by a source and then only read. It carries either a decoded BGR image
or the JPEG bytes a camera delivered (or both, once decoded), with its capture times. JPEG frames
are decoded lazily: detection asks for a reduced grayscale decode, the recorder and snapshots ask
for the full picture only while they need it, live viewers get the bytes unchanged.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import av
import cv2
import numpy as np
from av.video.frame import PictureType

# cv2.imdecode flags for libjpeg's DCT scaling, keyed by the scale denominator.
_REDUCED_GRAY_FLAGS = {
    1: cv2.IMREAD_GRAYSCALE,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
}


class FrameDecodeError(ValueError):
    """The frame's JPEG bytes could not be decoded (a garbled frame)."""


@dataclass(slots=True, eq=False)
class Frame:
    """One captured picture.

    ``mono`` is the capture time on the monotonic clock (for a file read as fast as it decodes:
    the file's own timestamp), used for every duration, pacing and in-file timestamp. ``wall``
    is the wall-clock time at capture (seconds since the epoch), used only to label things.
    """

    seq: int
    mono: float
    wall: float
    width: int
    height: int
    image: np.ndarray | None = None
    jpeg: bytes | None = None
    _bgr_cache: np.ndarray | None = field(default=None, repr=False)
    # A libavcodec picture (av.VideoFrame, YUV) of the JPEG, made once while recording: the
    # encoder takes it as it is and detection reads its Y plane.
    yuv: Any = field(default=None, repr=False)

    @classmethod
    def from_image(cls, seq: int, mono: float, wall: float, image: np.ndarray) -> Frame:
        height, width = image.shape[:2]
        return cls(seq=seq, mono=mono, wall=wall, width=width, height=height, image=image)

    @classmethod
    def from_jpeg(cls, seq: int, mono: float, wall: float, jpeg: bytes) -> Frame:
        """A frame from JPEG bytes; its size is read from the JPEG header, nothing is decoded."""
        size = jpeg_size(jpeg)
        if size is None:
            raise FrameDecodeError("not a JPEG image (no SOF marker)")
        width, height = size
        return cls(seq=seq, mono=mono, wall=wall, width=width, height=height, jpeg=jpeg)

    def bgr(self) -> np.ndarray:
        """The full picture as a BGR array, decoding the JPEG once if needed."""
        if self.image is not None:
            return self.image
        if self._bgr_cache is None:
            assert self.jpeg is not None
            decoded = cv2.imdecode(np.frombuffer(self.jpeg, np.uint8), cv2.IMREAD_COLOR)
            if decoded is None:
                raise FrameDecodeError("JPEG decode failed")
            self._bgr_cache = decoded
        return self._bgr_cache

    def decode_yuv(self, decoder: Any) -> None:
        """Decode the JPEG once with ``decoder`` (an av mjpeg CodecContext) into ``yuv``."""
        if self.yuv is not None or self.jpeg is None:
            return
        try:
            pictures = decoder.decode(av.Packet(self.jpeg))
        except av.FFmpegError as exc:
            raise FrameDecodeError(str(exc)) from None
        if not pictures:
            raise FrameDecodeError("JPEG decode gave no picture")
        picture = pictures[0]
        # A decoded JPEG is marked as an I-frame, which libx264 would obey: every frame a
        # keyframe, seven times the bitrate. Let the encoder choose.
        picture.pict_type = PictureType.NONE
        self.yuv = picture

    def gray_for_detection(self, scale: int) -> np.ndarray:
        """A grayscale picture, 1/``scale`` of the frame's size where that is cheap.

        The Y plane of a decoded ``yuv`` picture costs nothing; a JPEG is decoded straight to
        gray at 1/``scale`` (libjpeg's DCT scaling: 1/2, 1/4 or 1/8, far cheaper than a full
        decode); a BGR image is converted at full size. The caller resizes what is left.
        """
        if self.yuv is not None:
            plane = self.yuv.planes[0]
            rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
            return rows[:, : plane.width]
        if self.image is None and self._bgr_cache is None:
            assert self.jpeg is not None
            flag = _REDUCED_GRAY_FLAGS[min(scale, 8)]
            gray = cv2.imdecode(np.frombuffer(self.jpeg, np.uint8), flag)
            if gray is None:
                raise FrameDecodeError("JPEG decode failed")
            return gray
        return cv2.cvtColor(self.bgr(), cv2.COLOR_BGR2GRAY)

    @property
    def nbytes(self) -> int:
        """Memory held by this frame's pixel data (for bounding buffers)."""
        total = len(self.jpeg) if self.jpeg is not None else 0
        if self.image is not None:
            total += self.image.nbytes
        if self._bgr_cache is not None:
            total += self._bgr_cache.nbytes
        if self.yuv is not None:
            total += sum(plane.buffer_size for plane in self.yuv.planes)
        return total

    def drop_decoded(self) -> None:
        """Forget a cached full decode (kept JPEG frames stay small in buffers)."""
        self._bgr_cache = None


_SOF_MARKERS = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's SOF segment, or None when it is not a readable JPEG."""
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return None
    pos = 2
    end = len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _SOF_MARKERS:
            if pos + 9 > end:
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            if width == 0 or height == 0:
                return None
            return width, height
        pos += 2 + length
    return None
