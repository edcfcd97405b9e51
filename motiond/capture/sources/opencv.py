"""V4L2 cameras and RTSP streams through OpenCV, with bounded blocking."""

from __future__ import annotations

import logging
import math
import os
import threading
import time

import cv2

from motiond.capture.sources.base import (
    FrameMaker,
    Source,
    SourceError,
    redact_url,
)
from motiond.config.capture import CaptureConfig
from motiond.frames import Frame, FrameDecodeError

logger = logging.getLogger(__name__)


class OpenCVSource(Source):
    """A V4L2 device (kind "v4l2") or an RTSP/other FFmpeg URL (kind "url") via cv2.VideoCapture.

    V4L2 with ``capture.mjpeg`` asks the camera for MJPG and turns OpenCV's conversion off, so
    frames carry the camera's JPEG bytes undecoded; if the device does not hand out JPEG that
    way, conversion is turned back on. A device read that fails raises SourceError (the device
    went away or gave no frame within OpenCV's select timeout, set from ``read_timeout``).

    For a URL, FFmpeg's open and read timeouts come from the config. A failed read that took
    about ``read_timeout`` raises SourceError (stalled); one that fails at once means the
    server ended the stream, and read() returns None.
    """

    realtime = True

    def __init__(self, capture: CaptureConfig, stop: threading.Event) -> None:
        self._capture_config = capture
        self._is_device = capture.kind == "v4l2"
        self.description = capture.source if self._is_device else redact_url(capture.source)
        self._frames = FrameMaker(capture)
        self._video: cv2.VideoCapture | None = None
        self._jpeg_passthrough = False

    def open(self) -> None:
        self.close()
        self._frames.seq = 0
        self._video = self._open_device() if self._is_device else self._open_url()
        logger.info(
            "opened %s: %dx%d, %g fps reported%s",
            self.description,
            int(self._video.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(self._video.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            self._video.get(cv2.CAP_PROP_FPS),
            ", JPEG passthrough" if self._jpeg_passthrough else "",
        )

    def _open_device(self) -> cv2.VideoCapture:
        capture = self._capture_config
        if not os.path.exists(capture.source):
            raise SourceError(f"cannot open {capture.source}: no such device")
        if not os.access(capture.source, os.R_OK | os.W_OK):
            raise SourceError(
                f"cannot open {capture.source}: permission denied (is the user in group video?)"
            )
        # OpenCV's V4L2 backend waits for a frame in select() for this many seconds (default
        # 10); it reads the variable once per process, so the first camera opened sets it.
        os.environ.setdefault(
            "OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT", str(math.ceil(capture.read_timeout))
        )
        video = cv2.VideoCapture(os.path.realpath(capture.source), cv2.CAP_V4L2)
        if not video.isOpened():
            video.release()
            raise SourceError(f"cannot open {capture.source}: not a usable V4L2 capture device")
        if capture.mjpeg:
            video.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
        if capture.width and capture.height:
            video.set(cv2.CAP_PROP_FRAME_WIDTH, capture.width)
            video.set(cv2.CAP_PROP_FRAME_HEIGHT, capture.height)
        if capture.fps:
            video.set(cv2.CAP_PROP_FPS, capture.fps)
        fourcc = int(video.get(cv2.CAP_PROP_FOURCC))
        self._jpeg_passthrough = (
            capture.mjpeg
            and fourcc == cv2.VideoWriter.fourcc(*"MJPG")
            and bool(video.set(cv2.CAP_PROP_CONVERT_RGB, 0))
        )
        return video

    def _open_url(self) -> cv2.VideoCapture:
        capture = self._capture_config
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(capture.open_timeout * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(capture.read_timeout * 1000),
        ]
        video = cv2.VideoCapture(capture.source, cv2.CAP_FFMPEG, params)
        if not video.isOpened():
            video.release()
            raise SourceError(f"cannot open {self.description}")
        return video

    def read(self) -> Frame | None:
        if self._video is None:
            raise SourceError(f"{self.description} is not open")
        started = time.monotonic()
        ok, image = self._video.read()
        mono, wall = time.monotonic(), time.time()
        if not ok or image is None:
            if self._is_device:
                raise SourceError(f"{self.description}: read failed")
            if mono - started >= 0.9 * self._capture_config.read_timeout:
                raise SourceError(f"{self.description}: no frame for {mono - started:.1f} s")
            return None
        if image.ndim == 3:
            return self._frames.image(image, mono, wall)
        data = image.tobytes()
        if self._jpeg_passthrough and data[:2] == b"\xff\xd8":
            try:
                return self._frames.jpeg(data, mono, wall)
            except FrameDecodeError as exc:
                raise SourceError(f"{self.description}: garbled JPEG from the device") from exc
        if self._jpeg_passthrough:
            logger.warning(
                "%s: no JPEG passthrough, letting OpenCV convert frames", self.description
            )
            self._jpeg_passthrough = False
            self._video.set(cv2.CAP_PROP_CONVERT_RGB, 1)
            return self.read()
        raise SourceError(f"{self.description}: unexpected frame of shape {image.shape}")

    def close(self) -> None:
        if self._video is not None:
            self._video.release()
            self._video = None


# ---------------------------------------------------------------------------------------------
# MJPEG over HTTP
