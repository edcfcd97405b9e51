"""Slow movers: the picture of about ``slow_baseline`` ago, to compare the current one with (pure).

Someone creeping changes only a thin rim of pixels from one frame to the next, too little to
count until they have moved for seconds. Compared with the picture of a second ago they have
moved as far as a walker does in a quarter of a second, and show as a region of their size
from their first steps. The ring keeps a picture every quarter of the baseline, so at most
five, each with its brightness (mean, standard deviation) for matching it to the current one.

A change counts only where the current picture differs both from the picture of the baseline
and from the one kept before it: a blip (something there for a frame or two) differs from the
picture it was in, a second later, but not from the one before it, while a slow mover differs
from both.

A camera that shook within the baseline is not compared this way (the pictures do not line
up); frames are compared frame to frame only, as the shake is undone there.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from motiond.detect.light import Pair

KEPT = 4  # pictures per baseline (one every quarter of it)


@dataclass(frozen=True, slots=True)
class Past:
    """A picture kept for the baseline, with its brightness (mean, standard deviation)."""

    mono: float
    pair: Pair
    brightness: tuple[float, float]


class Baseline:
    """A ring of past pictures of one camera, a few per ``seconds``. Not thread-safe."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        # Kept at least a quarter of the baseline apart, the picture ``past`` picks is among the
        # newest KEPT + 1 and the one before it among the newest KEPT + 2: no more are kept.
        self._ring: deque[Past] = deque(maxlen=KEPT + 2)
        self._shaken_at = float("-inf")

    def reset(self) -> None:
        self._ring.clear()
        self._shaken_at = float("-inf")

    def shaken(self, now: float) -> None:
        """The camera shook at ``now``: no comparison across it for a baseline."""
        self._shaken_at = now
        self._ring.clear()

    def past(self, now: float) -> tuple[Past, Past] | None:
        """The newest kept picture at least ``seconds`` older than ``now`` and the one kept
        before it (None: not yet two, or the camera shook since)."""
        if now - self._shaken_at < self.seconds:
            return None
        chosen = None
        for before, past in zip(self._ring, list(self._ring)[1:], strict=False):
            if now - past.mono >= self.seconds:
                chosen = (past, before)
            else:
                break
        return chosen

    def keep(self, past: Past) -> None:
        """Offer the current picture: kept when a quarter of the baseline has passed since
        the last one kept (times going backwards start the ring afresh)."""
        ring = self._ring
        if ring and past.mono < ring[-1].mono:
            ring.clear()
        if not ring or past.mono - ring[-1].mono >= self.seconds / KEPT:
            ring.append(past)
