"""Opening a source until it opens: the capture thread's and the sub stream's one retry loop.

Both threads make a fresh source for each attempt and wait with the one backoff
(``motiond.backoff``) between failures, beating their heartbeat while they wait so the
watchdog does not take a camera that is retrying for a hung one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from motiond.backoff import Backoff
from motiond.capture.sources.base import Source, SourceError

logger = logging.getLogger(__name__)

S = TypeVar("S", bound=Source)


def wait_beating(stop: threading.Event, seconds: float, beat: Callable[[float], None]) -> None:
    """Wait ``seconds`` or until ``stop``, calling ``beat(now)`` at least every second, so a
    loop that waits to retry is not taken for a hung one (the watchdog reads heartbeats)."""
    deadline = time.monotonic() + seconds
    while not stop.is_set():
        now = time.monotonic()
        beat(now)
        if now >= deadline:
            return
        stop.wait(min(deadline - now, 1.0))


def open_retrying(
    make: Callable[[], S],
    stop: threading.Event,
    backoff: Backoff,
    beat: Callable[[float], None],
    what: str,
) -> S | None:
    """A source that opened, made by ``make`` and retried with ``backoff`` until it opens;
    None once ``stop`` is set. ``what`` names it in the log line of each failure."""
    failures = 0
    while not stop.is_set():
        beat(time.monotonic())
        source = make()
        try:
            source.open()
        except SourceError as exc:
            failures += 1
            delay = backoff.delay(failures)
            logger.warning(
                "%s: cannot open %s (%s); retrying in %.1f s", what, source.description, exc, delay
            )
            wait_beating(stop, delay, beat)
            continue
        return source
    return None
