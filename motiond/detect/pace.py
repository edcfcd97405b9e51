"""Which frames are detected when ``motion.detect_fps`` or ``clip_detect_fps`` caps the detection
rate (pure).

A camera sends every frame it has; detecting each costs a Python pass per picture, about
0.7 ms for a moving 320x180 picture, however little of it moves. At a capped rate the frames
between two detected ones are not looked at (for an H.264 stream they are still decoded: the
next picture needs them), and each detected frame stands for the frames since the previous
one: the trigger counts it that many times, so ``stable_frames`` and ``min_changed_frames``
keep meaning the camera's frames (the same time) whatever the rate. Frame differencing then
compares pictures that far apart, which shows a slow mover more, not less.

The rate is kept on average (a 12.5 fps camera at 5: frames 3, 2, 3, 2 apart), from the
frames' capture times, not from the clock: a late burst of frames is paced as it was sent.

``clip_detect_fps`` caps the rate only while a clip that will be kept is recording (it has its
``min_changed_frames``): until then every frame counts for whether a clip starts and is kept
(a blip of four frames is noise, a small mover is confirmed in 8 detected frames), and once it
is kept, what is left to decide is when it stops, which a frame standing for the two skipped
before it decides within a skipped frame. Back to every frame, the first detected frame stands
for those the cap skipped.
"""

from __future__ import annotations

# A frame this early (a share of the interval) is on time: capture times jitter, and a camera
# sending exactly ``detect_fps`` has every frame detected.
EARLY = 0.25


def _interval(fps: float) -> float:
    return 1.0 / fps if fps else 0.0


class DetectionPace:
    """Picks the frames to detect, at most ``fps`` a second (0: every frame), and at most
    ``clip_fps`` while a kept clip records (0: no other cap)."""

    def __init__(self, fps: float, clip_fps: float = 0.0) -> None:
        self.interval = _interval(fps)
        self.clip_interval = max(self.interval, _interval(clip_fps))
        self._pacing = self.interval  # the interval of the last frame's cap
        self._next: float | None = None  # when the next frame is due
        self._last: float | None = None  # when the last detected frame was captured
        self._afresh = False  # the cap changed: the next detected frame starts a new schedule
        self._since = 0  # frames since the last detected one, this one included

    def reset(self) -> None:
        """The stream (re)opened: its next frame is detected."""
        self._next = self._last = None
        self._since = 0

    def take(self, now: float, clip_kept: bool = False) -> int:
        """A frame captured at ``now`` (``clip_kept``: while a clip that will be kept records):
        0 if it is not detected, else how many frames its detection stands for (itself and
        those skipped since the last detected one)."""
        interval = self.clip_interval if clip_kept else self.interval
        self._since += 1
        if interval != self._pacing:
            # The other cap: due that long after the last detected frame, and no catching up
            # on the old schedule.
            self._pacing = interval
            self._next = self._last + interval if self._last is not None else None
            self._afresh = True
        if interval:
            due = self._next
            if due is not None and now < due - EARLY * interval:
                return 0
            # Keep the average rate; start afresh after a gap (an outage, a late stream).
            if due is None or self._afresh or now - due >= interval:
                due = now
            self._next = due + interval
            self._afresh = False
        self._last = now
        frames, self._since = self._since, 0
        return frames
