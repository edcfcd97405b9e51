"""The pre-roll ring: the last few seconds of frames seen while idle (pure)."""

from __future__ import annotations

from collections import deque

from motiond.frames import Frame


class PreRollBuffer:
    """Frames of the last ``seconds`` (by capture time), at most ``max_bytes`` of pixel data.

    Filled only while idle and emptied when a clip starts, so a clip's pre-roll never reaches
    back into the previous clip. JPEG frames cost their compressed size; raw frames their
    pixels, hence the byte bound. Not thread-safe: owned by the camera's capture thread.
    """

    def __init__(self, seconds: float, max_bytes: int) -> None:
        self.seconds = seconds
        self.max_bytes = max_bytes
        self._frames: deque[Frame] = deque()
        self.nbytes = 0
        self.trimmed_by_size = 0

    def push(self, frame: Frame) -> None:
        if self.seconds <= 0:
            return
        self._frames.append(frame)
        self.nbytes += frame.nbytes
        oldest_kept = frame.mono - self.seconds
        while self._frames and self._frames[0].mono < oldest_kept:
            self._pop_oldest()
        while self.nbytes > self.max_bytes and len(self._frames) > 1:
            self._pop_oldest()
            self.trimmed_by_size += 1

    def take(self) -> list[Frame]:
        """All frames, oldest first; the ring is empty afterwards."""
        frames = list(self._frames)
        self.clear()
        return frames

    def clear(self) -> None:
        self._frames.clear()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._frames)

    def _pop_oldest(self) -> None:
        self.nbytes -= self._frames.popleft().nbytes
