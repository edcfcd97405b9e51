"""Which frames are detected when ``motion.detect_fps`` caps the detection rate (pure).

A camera sends every frame it has; detecting each costs a Python pass per picture, about
0.7 ms for a moving 320x180 picture, however little of it moves. At a capped rate the frames
between two detected ones are not looked at (for an H.264 stream they are still decoded: the
next picture needs them), and each detected frame stands for the frames since the previous
one: the trigger counts it that many times, so ``stable_frames`` and ``min_changed_frames``
keep meaning the camera's frames (the same time) whatever the rate. Frame differencing then
compares pictures that far apart, which shows a slow mover more, not less.

The rate is kept on average (a 12.5 fps camera at 5: frames 3, 2, 3, 2 apart), from the
frames' capture times, not from the clock: a late burst of frames is paced as it was sent.
"""

from __future__ import annotations

# A frame this early (a share of the interval) is on time: capture times jitter, and a camera
# sending exactly ``detect_fps`` has every frame detected.
EARLY = 0.25


class DetectionPace:
    """Picks the frames to detect, at most ``fps`` a second (0: every frame)."""

    def __init__(self, fps: float) -> None:
        self.interval = 1.0 / fps if fps else 0.0
        self._next: float | None = None
        self._since = 0  # frames since the last detected one, this one included

    def reset(self) -> None:
        """The stream (re)opened: its next frame is detected."""
        self._next = None
        self._since = 0

    def take(self, now: float) -> int:
        """A frame captured at ``now``: 0 if it is not detected, else how many frames its
        detection stands for (itself and those skipped since the last detected one)."""
        interval = self.interval
        if not interval:
            return 1
        self._since += 1
        due = self._next
        if due is not None and now < due - EARLY * interval:
            return 0
        # Keep the average rate; start afresh after a gap (an outage, a late stream).
        self._next = now + interval if due is None or now - due >= interval else due + interval
        frames, self._since = self._since, 0
        return frames
