"""The one backoff: doubling from its first wait to its cap, with jitter below the step."""

from __future__ import annotations

import random

from motiond.backoff import RECONNECT, Backoff


def test_reconnects_double_from_a_second_to_a_minute_with_jitter() -> None:
    rng = random.Random(1)
    for failures, step in [(1, 1.0), (2, 2.0), (3, 4.0), (7, 60.0), (50, 60.0)]:
        delay = RECONNECT.delay(failures, rng)
        assert step / 2 <= delay <= step


def test_jitter_spreads_retries_that_failed_together() -> None:
    rng = random.Random(2)
    delays = {round(RECONNECT.delay(4, rng), 3) for _ in range(20)}
    assert len(delays) > 10 and min(delays) >= 4.0 and max(delays) <= 8.0


def test_an_upload_retry_stays_within_its_configured_bounds() -> None:
    rng = random.Random(3)
    backoff = Backoff(first=10.0, cap=600.0, jitter=0.25)
    assert [7.5 <= backoff.delay(1, rng) <= 10.0, 450.0 <= backoff.delay(30, rng) <= 600.0] == [
        True,
        True,
    ]
