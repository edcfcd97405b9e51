"""Video files, paced at their own frame rate or read as fast as they decode."""

from __future__ import annotations

import logging
import math
import threading
import time

import cv2

from motiond.capture.sources.base import (
    DEFAULT_FPS,
    FrameMaker,
    Pacer,
    Source,
    SourceError,
)
from motiond.config.capture import CaptureConfig
from motiond.frames import Frame

logger = logging.getLogger(__name__)


class FileSource(Source):
    """A video file through cv2.VideoCapture, paced at the file's fps or read as fast as it decodes.

    With ``capture.loop`` the file restarts (by reopening) at the end; ``mono`` keeps increasing.
    In "fast" pacing ``mono`` is the file's timestamp (``CAP_PROP_POS_MSEC``, or index/fps where
    that is unusable) plus the length of the passes before this one, starting at 0 on open.
    """

    def __init__(self, capture: CaptureConfig, stop: threading.Event) -> None:
        self.description = capture.source
        self.realtime = capture.pacing == "realtime"
        self._capture_config = capture
        self._stop = stop
        self._frames = FrameMaker(capture)
        self._video: cv2.VideoCapture | None = None
        self.fps = DEFAULT_FPS
        self._pacer = Pacer(self.fps, stop)
        self._pass_offset = 0.0  # seconds of file played in earlier passes
        self._last_time: float | None = None  # file timestamp of the previous frame this pass
        self._opened_wall = 0.0
        self._ended = False

    def open(self) -> None:
        self.close()
        self._video = self._open_video()
        fps = self._video.get(cv2.CAP_PROP_FPS)
        self.fps = (
            fps if math.isfinite(fps) and fps > 0 else (self._capture_config.fps or DEFAULT_FPS)
        )
        self._pacer = Pacer(self.fps, self._stop)
        self._frames.seq = 0
        self._pass_offset = 0.0
        self._last_time = None
        self._opened_wall = time.time()
        self._ended = False
        logger.info(
            "opened %s at %g fps (%s pacing)",
            self.description,
            self.fps,
            "realtime" if self.realtime else "fast",
        )

    def _open_video(self) -> cv2.VideoCapture:
        video = cv2.VideoCapture(self._capture_config.source)
        if not video.isOpened():
            video.release()
            raise SourceError(f"cannot open video file {self.description}")
        return video

    def read(self) -> Frame | None:
        if self._video is None:
            raise SourceError(f"{self.description} is not open")
        if self._ended:
            return None
        if self.realtime and not self._pacer.wait():
            return None
        ok, image = self._video.read()
        if not ok or image is None:
            if not self._capture_config.loop:
                self._ended = True
                return None
            self._rewind()
            ok, image = self._video.read()
            if not ok or image is None:
                raise SourceError(f"{self.description}: no frame after restarting the file")
        if self.realtime:
            return self._frames.image(image, time.monotonic(), time.time())
        mono = self._pass_offset + self._file_time(self._video.get(cv2.CAP_PROP_POS_MSEC) / 1000)
        return self._frames.image(image, mono, self._opened_wall + mono)

    def _file_time(self, position: float) -> float:
        """This frame's time in the file: ``position`` unless it fails to move forward."""
        previous = self._last_time
        if (
            not math.isfinite(position)
            or position < 0
            or (previous is not None and position <= previous + 0.001)
        ):
            position = 0.0 if previous is None else previous + 1.0 / self.fps
        self._last_time = position
        return position

    def _rewind(self) -> None:
        # Reopening is slower than seeking to 0 but works for every container and codec.
        self.close()
        self._video = self._open_video()
        if self._last_time is not None:
            self._pass_offset += self._last_time + 1.0 / self.fps
        self._last_time = None

    def close(self) -> None:
        if self._video is not None:
            self._video.release()
            self._video = None


# ---------------------------------------------------------------------------------------------
# V4L2 devices and RTSP through OpenCV
