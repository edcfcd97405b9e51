"""How long to wait before trying again: the one backoff every reconnecting part uses.

Cameras, the sub stream, the MQTT connection and upload retries all wait ``first`` seconds
after the first failure, doubling up to ``cap``, with jitter so that parts failing together
(a switch rebooting) do not retry in lockstep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    first: float = 1.0  # seconds after the first failure
    cap: float = 60.0  # never longer than this
    jitter: float = 0.5  # the wait is drawn from (1 - jitter) .. 1 times the step

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """The wait after ``failures`` failures in a row (1 for the first)."""
        step = min(self.cap, self.first * 2.0 ** max(0, failures - 1))
        draw = rng.random() if rng is not None else random.random()  # noqa: S311 (jitter)
        return step * (1.0 - self.jitter + self.jitter * draw)


RECONNECT = Backoff()  # cameras, the sub stream and the MQTT broker: 1 s doubling to a minute
