"""The pre-roll ring: the last seconds of compressed frames, from a keyframe on (pure).

Every frame goes in, recording or not, already compressed (a camera JPEG, a coded packet, or a
JPEG of a raw picture), so the ring costs the stream's bitrate. It keeps whole groups of
pictures: from the last keyframe at or before ``seconds`` ago, because a coded stream can only be
decoded, and a clip only start, at a keyframe.
"""

from __future__ import annotations

from collections import deque

from motiond.frames import Frame


class PreRollBuffer:
    """Frames of at least the last ``seconds`` (by capture time), from a keyframe, within
    ``max_bytes`` where whole groups allow. Not thread-safe: owned by the camera's capture
    thread."""

    def __init__(self, seconds: float, max_bytes: int) -> None:
        self.seconds = seconds
        self.max_bytes = max_bytes
        # Groups of pictures, each starting with a keyframe (the first may not, until one comes).
        self._groups: deque[list[Frame]] = deque()
        self.nbytes = 0
        self.trimmed_by_size = 0  # frames dropped to stay within max_bytes

    def push(self, frame: Frame) -> None:
        if frame.keyframe or not self._groups:
            self._groups.append([frame])
        else:
            self._groups[-1].append(frame)
        self.nbytes += frame.nbytes
        oldest_needed = frame.mono - self.seconds
        # Drop the oldest group while the next one still starts at or before oldest_needed.
        while len(self._groups) > 1 and self._groups[1][0].mono <= oldest_needed:
            self._drop_oldest()
        while self.nbytes > self.max_bytes and len(self._groups) > 1:
            self.trimmed_by_size += self._drop_oldest()

    def take(self, first_changed: float, not_before: float | None = None) -> list[Frame]:
        """The frames of a clip whose first changed frame was at ``first_changed``: from the last
        keyframe at or before ``first_changed - seconds``, or, when a clip ended at
        ``not_before`` later than that, from the keyframe at or before the first frame after it
        (so the pre-roll does not repeat the previous clip, beyond part of a group of pictures).
        The ring keeps its frames (they may open the next clip too)."""
        frames = [frame for group in self._groups for frame in group]
        target = first_changed - self.seconds
        start = 0
        for index, frame in enumerate(frames):
            if frame.mono <= target:
                start = index
            if not_before is not None and frame.mono <= not_before:
                start = index + 1
        start = min(start, len(frames) - 1) if frames else 0
        while start > 0 and not frames[start].keyframe:
            start -= 1
        if frames and not frames[start].keyframe:
            # No keyframe before: the clip can only start at the first one after.
            keyed = [i for i, frame in enumerate(frames) if frame.keyframe and i >= start]
            if not keyed:
                return []
            start = keyed[0]
        return frames[start:]

    def clear(self) -> None:
        self._groups.clear()
        self.nbytes = 0

    def __len__(self) -> int:
        return sum(len(group) for group in self._groups)

    def _drop_oldest(self) -> int:
        group = self._groups.popleft()
        self.nbytes -= sum(frame.nbytes for frame in group)
        return len(group)
