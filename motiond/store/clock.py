"""Is a wall-clock time plausible? Retention ages clips by it, so a clock that was wrong when
a clip was recorded must not make that clip look decades old once the clock is corrected.

A Raspberry Pi has no real-time clock: after a power cut without network it starts at the
time of its last shutdown (fake-hwclock) or at 1970, until NTP corrects it. Anything dated
before this release was built cannot have been recorded by it, so such a time is known wrong.
"""

from __future__ import annotations

import datetime as dt
import logging

logger = logging.getLogger(__name__)

# The day this version was released (bump at each release); no clip of it is older.
BUILD_DATE = dt.date(2026, 1, 1)
BUILD_TIME = dt.datetime(
    BUILD_DATE.year, BUILD_DATE.month, BUILD_DATE.day, tzinfo=dt.UTC
).timestamp()
# A time this far past "now" was taken while the clock ran ahead (a bad RTC read, a bad NTP).
FAR_AHEAD = 2 * 86400.0


def plausible(wall: float, now: float | None = None) -> bool:
    """True unless ``wall`` is before the build date or, given ``now``, far ahead of it."""
    if wall < BUILD_TIME:
        return False
    return now is None or wall <= now + FAR_AHEAD


def warn_if_wrong(wall: float) -> None:
    """Log once at start when the clock itself is implausible (before the build date)."""
    if not plausible(wall):
        logger.warning(
            "the clock says %s, before this version was built: clips get wrong dates "
            "until it is set (NTP); retention will not age them out",
            dt.datetime.fromtimestamp(wall).isoformat(timespec="seconds"),
        )
