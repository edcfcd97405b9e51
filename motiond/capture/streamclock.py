"""Capture times for a network stream's packets, from their timestamps (pure).

A camera stamps each picture (RTP/PTS). Arrival times jitter and come in bursts (TCP, the
player's probing at open), so a clip timed by arrival would stutter; a clip timed by the camera's
stamps alone would break when the camera resets its clock or the stream pauses. ``StreamClock``
maps stamps onto the monotonic clock with an offset that keeps, for every packet, the mapped time
at or before its arrival (the smallest arrival-minus-stamp seen), and starts over when the two
disagree by more than ``resync`` seconds (a clock reset, a pause of the camera's clock). Gaps in
the stamps are kept; mapped times never go backwards.
"""

from __future__ import annotations

RESYNC_SECONDS = 2.0
MIN_STEP = 1e-4  # seconds between two mapped times at least (strictly increasing)


class StreamClock:
    """Maps one stream's timestamps (seconds) to capture times. Not thread-safe."""

    def __init__(self, resync: float = RESYNC_SECONDS) -> None:
        self.resync = resync
        self._offset: float | None = None
        self._last: float | None = None
        self.resyncs = 0

    def map(self, stamp: float | None, arrival: float) -> float:
        """The capture time of a packet stamped ``stamp`` (None: unknown) that arrived at
        ``arrival`` (monotonic seconds)."""
        if stamp is None:
            mapped = arrival
        else:
            lag = arrival - stamp
            offset = self._offset
            if offset is None or lag < offset:
                self._offset = lag
            elif lag > offset + self.resync:
                self._offset = lag
                self.resyncs += 1
            assert self._offset is not None
            mapped = stamp + self._offset
        if self._last is not None and mapped <= self._last:
            mapped = self._last + MIN_STEP
        self._last = mapped
        return mapped
