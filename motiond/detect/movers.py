"""Small movers: regions below ``min_area`` that persist and move steadily count (pure).

A person far away changes fewer pixels per frame than ``min_area``, which keeps rain, snow and
insects out. What tells them apart is time and speed: a drop is somewhere else in the next
frame, and snow falls across the picture far faster than a distant person walks, who is a
region of about the same place in frame after frame, drifting one way. Each small group of
regions (at least ``small_area`` of the picture) extends the track whose last place is
nearest (within ``MAX_STEP``, more after frames it was not seen in), or starts one. A track
counts once it has been seen in ``CONFIRM_FRAMES`` frames over at least ``CONFIRM_SECONDS``,
has travelled at least ``MIN_TRAVEL`` in a fairly straight line (net distance at least
``STRAIGHTNESS`` of the path) and no faster than ``MAX_SPEED_SHARE`` of the picture's width a
second: a region flickering in place, a chain of unrelated specks that happen to fall near
each other, or a falling flake does not.

What it could wrongly count: a small thing moving steadily (a cat, a bird walking, a slowly
drifting leaf, a car's far-away lights on a road); what it could still miss: someone far
away who stays smaller than ``small_area``, stops for long, or runs (faster than
``MAX_SPEED_SHARE``: they are then usually larger than ``min_area`` too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_STEP = 4.5  # detection pixels a small mover's middle may move between two frames ...
MAX_SPEED = 15.0  # ... or, after frames in which it was not seen, pixels a second
# Seconds a track may go unseen before it is dropped: a small mover's changed pixels fall
# below small_area in some frames (it changes only its edges).
MAX_GAP = 0.6
COUNTED_GAP = 1.5  # ... and a track that counts, before it is dropped
CONFIRM_FRAMES = 8
CONFIRM_SECONDS = 1.0
MIN_TRAVEL = 3.0  # detection pixels
STRAIGHTNESS = 0.7
# Far away, a person crosses the picture slowly: at most this share of its width a second.
# Snow and rain fall faster (a flake near the camera: a tenth of the picture a second).
MAX_SPEED_SHARE = 0.035
MAX_TRACKS = 64  # the oldest beyond this are dropped (a storm of specks)


@dataclass(slots=True)
class Track:
    """One small region followed over frames."""

    x0: float
    y0: float
    x: float
    y: float
    first: float
    last: float
    frames: int = 1
    path: float = 0.0
    counted: bool = False  # confirmed once: it goes on counting while followed

    def confirmed(self, width: int) -> bool:
        """Seen long enough, moving far enough, straight enough and slowly enough (for a
        picture ``width`` pixels wide)."""
        travel = float(np.hypot(self.x - self.x0, self.y - self.y0))
        seconds = self.last - self.first
        return (
            self.frames >= CONFIRM_FRAMES
            and seconds >= CONFIRM_SECONDS
            and travel >= MIN_TRAVEL
            and travel >= STRAIGHTNESS * self.path
            and travel <= MAX_SPEED_SHARE * width * seconds
        )


class SmallMovers:
    """The tracks of small regions of one camera. Not thread-safe."""

    def __init__(self) -> None:
        self.tracks: list[Track] = []

    def reset(self) -> None:
        self.tracks = []

    def follow(self, xs: np.ndarray, ys: np.ndarray, now: float, width: int) -> np.ndarray:
        """Extend the tracks with this frame's small regions, whose middles are ``xs``/``ys``
        (detection pixels of a picture ``width`` wide), seen at ``now``. One bool per region:
        on a confirmed track."""
        self.tracks = [
            t
            for t in self.tracks
            if now - t.last <= (COUNTED_GAP if t.counted else MAX_GAP) and now >= t.last
        ]
        result = np.zeros(len(xs), bool)
        taken: set[int] = set()
        for i in range(len(xs)):
            x, y = float(xs[i]), float(ys[i])
            best, best_distance, best_rank = -1, 0.0, float("inf")
            for j, track in enumerate(self.tracks):
                if j in taken or track.last >= now:
                    continue
                distance = float(np.hypot(x - track.x, y - track.y))
                reach = max(MAX_STEP, MAX_SPEED * (now - track.last))
                # A track that counts goes first: the mover's edges split and join again.
                rank = distance - (reach if track.counted else 0.0)
                if distance <= reach and rank < best_rank:
                    best, best_distance, best_rank = j, distance, rank
            if best < 0:
                self.tracks.append(Track(x, y, x, y, now, now))
                taken.add(len(self.tracks) - 1)
                continue
            track = self.tracks[best]
            track.path += best_distance
            track.x, track.y, track.last = x, y, now
            track.frames += 1
            taken.add(best)
            track.counted = track.counted or track.confirmed(width)
            result[i] = track.counted
        if len(self.tracks) > MAX_TRACKS:
            self.tracks = sorted(self.tracks, key=lambda t: t.last)[-MAX_TRACKS:]
        return result
