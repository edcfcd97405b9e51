"""Warn and on-demand snapshots: a JPEG of a frame, with what moved outlined.

Thread crossing: ``still_jpeg`` and ``write_snapshot`` are called from every camera's threads
(capture, detection with a sub stream, recorder) and the web side's; one lock lets one picture
at a time be decoded, outlined and encoded in the whole process.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from motiond import frames
from motiond.detect.boxes import Box
from motiond.frames import Frame
from motiond.store.layout import atomic_write_bytes

SNAPSHOT_QUALITY = 85
OUTLINE_COLOR = (0, 0, 255)  # BGR red
# Cameras that see something at the same moment (one storm, the lights going on, cameras
# sharing a view) would each hold full colour pictures at once for their warn snapshots (two of
# 2.7 MB at 720p to outline one): one at a time in the whole process keeps that peak at one.
_ONE_PICTURE_AT_A_TIME = threading.Lock()


def outlined(image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
    """A copy of ``image`` with each box drawn as a rectangle."""
    result = image.copy()
    thickness = max(2, image.shape[1] // 400)
    for box in boxes:
        cv2.rectangle(
            result,
            (box.x, box.y),
            (box.x + box.width - 1, box.y + box.height - 1),
            OUTLINE_COLOR,
            thickness,
        )
    return result


def encode_jpeg(image: np.ndarray, quality: int = SNAPSHOT_QUALITY) -> bytes:
    return frames.encode_jpeg(image, quality)


def still_jpeg(frame: Frame) -> Frame:
    """A decoded ``frame`` as a JPEG frame (what a warn snapshot keeps until the clip ends),
    made one at a time across cameras. Raises FrameDecodeError."""
    with _ONE_PICTURE_AT_A_TIME:
        jpeg = encode_jpeg(frame.bgr())
    return Frame.from_jpeg(frame.seq, frame.mono, frame.wall, jpeg)


def write_snapshot(path: Path, frame: Frame, boxes: Sequence[Box] = ()) -> Path:
    """Write ``frame`` as a JPEG at ``path`` atomically; boxes, if any, are outlined.

    ``path`` is a name the storage layout gave out (for on-demand snapshots an empty file
    reserved by ``Storage.reserve_snapshot``); if writing fails, an empty file left there is
    removed. A camera JPEG with nothing to draw is written as it came, without re-encoding.
    """
    try:
        if not boxes and frame.jpeg is not None:
            data = frame.jpeg
        else:
            with _ONE_PICTURE_AT_A_TIME:
                data = encode_jpeg(outlined(frame.bgr(), boxes))
        atomic_write_bytes(path, data, durable=False)
    except BaseException:
        with contextlib.suppress(OSError):
            if path.stat().st_size == 0:
                path.unlink()
        raise
    return path


class SnapshotRate:
    """At most ``per_minute`` on-demand snapshots per camera in any 60 seconds (a sliding
    window), so a looping automation or a script cannot fill the disk with them.

    ``take`` is called from the web side's executor and the MQTT thread; ``_lock`` protects
    ``_taken``. Times are the caller's (monotonic seconds).
    """

    WINDOW = 60.0

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._lock = threading.Lock()
        self._taken: dict[str, deque[float]] = {}

    def take(self, camera: str, now: float) -> float:
        """0.0 and counted when a snapshot may be taken now, else the seconds to wait."""
        with self._lock:
            taken = self._taken.setdefault(camera, deque())
            while taken and taken[0] <= now - self.WINDOW:
                taken.popleft()
            if len(taken) >= self.per_minute:
                return max(0.001, taken[0] + self.WINDOW - now)
            taken.append(now)
            return 0.0

    def give_back(self, camera: str, now: float) -> None:
        """A snapshot that was not written after all (no picture, a disk error) does not count."""
        with self._lock:
            taken = self._taken.get(camera)
            if taken and now in taken:
                taken.remove(now)
