"""The frame that flows through the pipeline, immutable once made.

A frame carries what the camera delivered, compressed when the camera compressed it: a JPEG
(MJPEG cameras), or one coded video packet of an H.264/H.265 stream (IP cameras). A source may
attach the decoded picture it made for detection (``picture``, a libavcodec YUV frame) or the
raw picture it read (``image``, BGR); those are for the capture thread, the live view and one
snapshot, and never go into a buffer: ``compressed()`` is what the pre-roll ring and the encoder
queue hold, so a buffer costs the stream's bitrate, not raw pictures. Frames are frozen, so they
cross threads safely and their byte counts never change.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
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
# Raw pictures (the demo, files, cameras without MJPG) are kept as JPEG at this quality.
BUFFER_JPEG_QUALITY = 90


class FrameDecodeError(ValueError):
    """The frame's data could not be decoded (a garbled frame)."""


@dataclass(frozen=True, slots=True)
class StreamParams:
    """What a decoder needs before a coded stream's first keyframe.

    ``parameter_sets`` are the stream's SPS/PPS (and VPS for H.265) in Annex B form. A camera
    that changes them mid-stream (a reboot, a new resolution) gets a new ``StreamParams``; a clip
    never mixes two.
    """

    codec: str  # libavcodec's name: h264, hevc, mpeg4, mjpeg, ...
    parameter_sets: bytes
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class VideoPacket:
    """One coded picture as the camera sent it (Annex B for H.264/H.265)."""

    data: bytes
    keyframe: bool
    params: StreamParams
    pts_delay: float = 0.0  # presentation minus decode time, seconds (B-frames), else 0


@dataclass(frozen=True, slots=True)
class AudioParams:
    codec: str  # aac, pcm_mulaw, pcm_alaw, ...
    sample_rate: int
    channels: int
    extradata: bytes = b""


@dataclass(frozen=True, slots=True)
class AudioPacket:
    """Coded audio as the camera sent it, with its capture time on the monotonic clock."""

    data: bytes
    mono: float
    duration: float
    params: AudioParams


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One captured picture.

    ``mono`` is the capture time on the monotonic clock (for a file read as fast as it decodes:
    the file's own timestamp), used for every duration, pacing and in-file timestamp. ``wall``
    is the wall-clock time at capture (seconds since the epoch), used only to label things.
    ``audio`` holds the camera's audio packets that arrived since the previous frame.
    """

    seq: int
    mono: float
    wall: float
    width: int
    height: int
    image: np.ndarray | None = None
    jpeg: bytes | None = None
    packet: VideoPacket | None = None
    picture: Any = field(default=None, repr=False)  # av.VideoFrame decoded from ``packet``
    audio: tuple[AudioPacket, ...] = ()

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

    @property
    def keyframe(self) -> bool:
        """True when a clip can start at this frame (always, except mid-GOP coded packets)."""
        return self.packet is None or self.packet.keyframe

    def compressed(self) -> Frame:
        """This frame as buffers keep it: the camera's JPEG or packet, or a JPEG of a raw
        picture (made here, on the caller's thread); never a decoded picture."""
        if self.packet is not None or self.jpeg is not None:
            if self.picture is None and self.image is None:
                return self
            return replace(self, image=None, picture=None)
        assert self.image is not None
        return replace(self, image=None, jpeg=encode_jpeg(self.image, BUFFER_JPEG_QUALITY))

    def bgr(self) -> np.ndarray:
        """The full picture as a new BGR array (decoded each call: frames cache nothing)."""
        if self.image is not None:
            return self.image
        if self.picture is not None:
            return self.picture.to_ndarray(format="bgr24")  # type: ignore[no-any-return]
        if self.jpeg is not None:
            decoded = cv2.imdecode(np.frombuffer(self.jpeg, np.uint8), cv2.IMREAD_COLOR)
            if decoded is None:
                raise FrameDecodeError("JPEG decode failed")
            return decoded
        raise FrameDecodeError("a coded video packet has no picture of its own")

    def gray_for_detection(self, scale: int) -> np.ndarray:
        """A grayscale picture, 1/``scale`` of the frame's size where that is cheap.

        The Y plane of a decoded picture costs nothing; a JPEG is decoded straight to gray at
        1/``scale`` (libjpeg's DCT scaling: 1/2, 1/4 or 1/8, far cheaper than a full decode); a
        BGR image is converted at full size. The caller resizes what is left.
        """
        if self.picture is not None:
            return luma(self.picture)
        if self.image is not None:
            return cv2.cvtColor(self.image, cv2.COLOR_BGR2GRAY)
        if self.jpeg is not None:
            flag = _REDUCED_GRAY_FLAGS[min(scale, 8)]
            gray = cv2.imdecode(np.frombuffer(self.jpeg, np.uint8), flag)
            if gray is None:
                raise FrameDecodeError("JPEG decode failed")
            return gray
        raise FrameDecodeError("a coded video packet has no picture of its own")

    @property
    def nbytes(self) -> int:
        """Memory held by this frame's data (for bounding buffers); fixed, as frames are."""
        total = sum(len(a.data) for a in self.audio)
        if self.jpeg is not None:
            total += len(self.jpeg)
        if self.packet is not None:
            total += len(self.packet.data)
        if self.image is not None:
            total += self.image.nbytes
        if self.picture is not None:
            total += sum(plane.buffer_size for plane in self.picture.planes)
        return total


def luma(picture: Any) -> np.ndarray:
    """The Y plane of a decoded YUV picture as a 2-D array (a view, no copy)."""
    plane = picture.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return encoded.tobytes()


def decode_jpeg_to_yuv(jpeg: bytes, decoder: Any) -> Any:
    """Decode a JPEG with ``decoder`` (an av "mjpeg" CodecContext) into a YUV picture."""
    try:
        pictures = decoder.decode(av.Packet(jpeg))
    except av.FFmpegError as exc:
        raise FrameDecodeError(str(exc)) from None
    if not pictures:
        raise FrameDecodeError("JPEG decode gave no picture")
    picture = pictures[0]
    # A decoded JPEG is marked as an I-frame, which libx264 would obey: every frame a
    # keyframe, seven times the bitrate. Let the encoder choose.
    picture.pict_type = PictureType.NONE
    return picture


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
