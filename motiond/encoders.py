"""Encoders: a clip's frames to a file. PyAV (H.264 or VP9 in fragmented MP4) or OpenCV (mp4v).

Used by the recorder's thread only.
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import av
import cv2
import numpy as np

from motiond.config import RecordConfig
from motiond.frames import Frame

TIME_BASE = Fraction(1, 90000)
FRAGMENTED_MP4 = "frag_keyframe+empty_moov+default_base_moof"


class ClipWriter(Protocol):
    codec_name: str  # as ffprobe names it: h264, vp9, mpeg4
    width: int
    height: int

    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...


class PyAVClipWriter:
    """H.264 (libx264) or VP9 in fragmented MP4, timestamps from the frames' capture times.

    Fragmented, with a keyframe about every second, so the file plays while it is being written
    and a crash leaves everything up to the last complete fragment playable.
    """

    def __init__(
        self,
        path: Path,
        record: RecordConfig,
        *,
        width: int,
        height: int,
        fps: float,
        origin: float,
    ) -> None:
        # yuv420p needs even dimensions; an odd pixel row or column is cropped.
        self.width = width - width % 2
        self.height = height - height % 2
        self.origin = origin
        self.last_pts = -1
        gop = max(1, round(fps))
        self.codec_name: str = record.codec
        self._jpeg_decoder: Any = None
        self.container: Any = av.open(
            str(path),
            "w",
            format="mp4",
            # Flushing each packet puts every finished fragment on disk, not in a buffer.
            options={"movflags": FRAGMENTED_MP4, "flush_packets": "1"},
        )
        try:
            if record.codec == "vp9":
                options = {
                    "deadline": "realtime",
                    "cpu-used": "8",
                    "row-mt": "1",
                    "crf": str(record.crf),
                    "b": "0",
                    "g": str(gop),
                }
                self.stream = self.container.add_stream("libvpx-vp9", rate=gop, options=options)
            else:
                # No B-frames: timestamps start at 0 (fragmented MP4 has no edit list to hide
                # a reorder delay) and every fragment decodes in capture order.
                options = {
                    "preset": record.preset,
                    "crf": str(record.crf),
                    "g": str(gop),
                    "bf": "0",
                }
                if record.preset == "ultrafast":
                    options["tune"] = "zerolatency"
                self.stream = self.container.add_stream("libx264", rate=gop, options=options)
            self.stream.width = self.width
            self.stream.height = self.height
            self.stream.pix_fmt = "yuv420p"
            self.stream.codec_context.time_base = TIME_BASE
        except BaseException:
            self.container.close()
            raise

    def write(self, frame: Frame) -> None:
        video_frame = self._video_frame(frame)
        pts = round((frame.mono - self.origin) / TIME_BASE)
        pts = max(pts, self.last_pts + 1)  # strictly increasing, whatever the source did
        self.last_pts = pts
        video_frame.pts = pts
        video_frame.time_base = TIME_BASE
        for packet in self.stream.encode(video_frame):
            self.container.mux(packet)

    def _video_frame(self, frame: Frame) -> Any:
        if frame.jpeg is not None and frame.image is None:
            # Straight from JPEG to YUV through libavcodec: no BGR round trip. Frames that
            # arrived while recording were decoded by the capture thread already.
            if self._jpeg_decoder is None:
                self._jpeg_decoder = av.CodecContext.create("mjpeg", "r")
            frame.decode_yuv(self._jpeg_decoder)
            return frame.yuv
        return av.VideoFrame.from_ndarray(frame.bgr(), format="bgr24")

    def close(self) -> None:
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
        finally:
            self.container.close()


class OpenCVClipWriter:
    """cv2.VideoWriter with ``mp4v``: plays in VLC and ffplay, NOT in browsers; fixed frame rate."""

    def __init__(self, path: Path, width: int, height: int, fps: float) -> None:
        self.codec_name = "mpeg4"
        self.width, self.height = width, height
        self.size = (width, height)
        fourcc = cv2.VideoWriter.fourcc(*"mp4v")
        self.writer = cv2.VideoWriter(str(path), fourcc, fps, self.size)
        if not self.writer.isOpened():
            raise OSError(f"cv2.VideoWriter could not open {path}")

    def write(self, frame: Frame) -> None:
        image = frame.bgr()
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size)
        self.writer.write(image)

    def close(self) -> None:
        self.writer.release()


def burn_overlay(image: np.ndarray, camera: str | None, wall: float | None) -> np.ndarray:
    """A copy of ``image`` with the camera name and/or local time written in its top left."""
    parts = []
    if camera:
        parts.append(camera)
    if wall is not None:
        parts.append(dt.datetime.fromtimestamp(wall).strftime("%Y-%m-%d %H:%M:%S"))
    result = image.copy()
    scale = max(0.5, image.shape[1] / 1280)
    origin = (int(10 * scale), int(30 * scale))
    text = "  ".join(parts)
    thickness = max(1, round(2 * scale))
    cv2.putText(result, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2)
    cv2.putText(result, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness)
    return result
