"""What every source shares: errors, the Source protocol, frame making, pacing."""

from __future__ import annotations

import threading
import time
from typing import Protocol

import cv2
import numpy as np

from motiond.config.capture import CaptureConfig
from motiond.frames import Frame, FrameDecodeError
from motiond.redact import redact_url as redact_url  # noqa: PLC0414 (re-exported for sources)

DEFAULT_FPS = 15.0
DEFAULT_SNAPSHOT_FPS = 5.0
MAX_PART_BYTES = 32 * 1024 * 1024  # a larger "JPEG" means we lost the stream's framing
READ_CHUNK = 256 * 1024
MAX_PART_HEADERS = 16 * 1024


class SourceError(Exception):
    """A source failed; the message says what failed (``cannot open /dev/video0: ...``)."""


class Source(Protocol):
    """What the capture loop reads; every source derives from it (see sources/__init__.py)."""

    description: str
    """What this source reads, for logs; URLs have their password removed."""
    realtime: bool
    """False only for a file read as fast as it decodes (frame.mono is the file's timestamp)."""
    garbled_parts: int = 0
    """Parts of the stream skipped since the source was made, because they were not a
    picture (a network camera's garbage); the capture loop counts them as garbled frames."""

    def open(self) -> None: ...

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


class SourceFactory(Protocol):
    """Makes the (unopened) source for a camera's capture config; ``open_source`` is the real
    one, tests hand the capture loop their own."""

    def __call__(
        self, capture: CaptureConfig, stop: threading.Event, *, audio: bool = False
    ) -> Source: ...


# Shared pieces


_ROTATE_CODES = {
    90: cv2.ROTATE_90_CLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_COUNTERCLOCKWISE,
}
_FLIP_CODES = {"horizontal": 1, "vertical": 0, "both": -1}


class FrameMaker:
    """Numbers frames from 0 per open and applies rotate, then flip.

    JPEG frames stay undecoded unless they have to be rotated or flipped.
    """

    def __init__(self, capture: CaptureConfig) -> None:
        self._rotate = _ROTATE_CODES.get(capture.rotate)
        self._flip = _FLIP_CODES.get(capture.flip)
        self.seq = 0

    @property
    def transforms(self) -> bool:
        return self._rotate is not None or self._flip is not None

    def image(self, image: np.ndarray, mono: float, wall: float) -> Frame:
        if self._rotate is not None:
            image = cv2.rotate(image, self._rotate)
        if self._flip is not None:
            image = cv2.flip(image, self._flip)
        frame = Frame.from_image(self.seq, mono, wall, image)
        self.seq += 1
        return frame

    def jpeg(self, data: bytes, mono: float, wall: float) -> Frame:
        """Raises FrameDecodeError when ``data`` is not a (decodable, if transformed) JPEG."""
        if self.transforms:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                raise FrameDecodeError("JPEG decode failed")
            return self.image(image, mono, wall)
        frame = Frame.from_jpeg(self.seq, mono, wall, data)
        self.seq += 1
        return frame


class Pacer:
    """Lets one frame through every 1/fps seconds on monotonic deadlines, waiting on ``stop``."""

    def __init__(self, fps: float, stop: threading.Event) -> None:
        self.interval = 1.0 / fps
        self._stop = stop
        self._due: float | None = None

    def wait(self) -> bool:
        """Wait until the next frame is due; False when ``stop`` is set."""
        if self._stop.is_set():
            return False
        now = time.monotonic()
        if self._due is None or now - self._due > self.interval:
            self._due = now  # first frame, or we fell behind: carry on from now, no burst
        delay = self._due - now
        if delay > 0 and self._stop.wait(delay):
            return False
        self._due += self.interval
        return True


# ---------------------------------------------------------------------------------------------
# Demo


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
