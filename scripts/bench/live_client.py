"""A WebSocket live viewer that counts frames and measures capture-to-arrival latency.

The daemon sends ``{"type": "frame", "seq", "age_ms", "sent_at"}`` right before about one binary
frame a second (docs/web-contract.md). For each one, latency is ``age_ms`` (server side, capture
to send) plus ``received_at - sent_at``, where ``received_at`` is this client's wall clock when
the whole following binary message has arrived (same machine, so the same clock).

Everything here runs on one asyncio/Tornado loop; ``on_message`` is called by Tornado's reader
as soon as a message is complete, so the receive time includes no queueing of our own.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field

import tornado.websocket

JPEG_START = b"\xff\xd8"


@dataclass(frozen=True)
class LatencySample:
    latency_ms: float  # age_ms + transit_ms: capture to the binary message's arrival
    age_ms: float  # server side: capture to the frame info being sent
    transit_ms: float  # frame info sent to its binary frame received, wall clock


@dataclass
class LiveViewer:
    """One viewer of ``url``; counters are cumulative, ``take_latencies`` drains the samples."""

    url: str
    frames: int = 0
    bytes_received: int = 0
    not_jpeg: int = 0
    status_messages: int = 0
    hello: dict[str, object] | None = None
    close_code: int | None = None
    close_reason: str | None = None
    latencies: list[LatencySample] = field(default_factory=list)
    _pending_info: dict[str, float] | None = None
    _connection: tornado.websocket.WebSocketClientConnection | None = None

    async def connect(self, timeout: float = 10.0) -> None:
        self._connection = await tornado.websocket.websocket_connect(
            self.url, on_message_callback=self._on_message, connect_timeout=timeout
        )

    @property
    def open(self) -> bool:
        return self._connection is not None and self.close_code is None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()

    def take_latencies(self) -> list[LatencySample]:
        taken, self.latencies = self.latencies, []
        return taken

    def _on_message(self, message: str | bytes | None) -> None:
        if message is None:  # closed
            connection = self._connection
            self.close_code = connection.close_code if connection else None
            self.close_reason = connection.close_reason if connection else None
            if self.close_code is None:
                self.close_code = -1  # the connection dropped without a close frame
            return
        if isinstance(message, bytes):
            self._on_frame(message, time.time() * 1000)
            return
        data = json.loads(message)
        kind = data.get("type")
        if kind == "frame":
            self._pending_info = {"age_ms": data["age_ms"], "sent_at": data["sent_at"]}
        elif kind == "status":
            self.status_messages += 1
        elif kind == "hello":
            self.hello = data

    def _on_frame(self, jpeg: bytes, received_at: float) -> None:
        self.frames += 1
        self.bytes_received += len(jpeg)
        if not jpeg.startswith(JPEG_START):
            self.not_jpeg += 1
        info, self._pending_info = self._pending_info, None
        if info is not None:
            transit = received_at - info["sent_at"]
            self.latencies.append(LatencySample(info["age_ms"] + transit, info["age_ms"], transit))


def percentile(values: list[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default); ``values`` non-empty."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(samples: list[LatencySample]) -> dict[str, float | int | None]:
    """Median, p90, p99 and max of the latency, and the medians of its two parts."""
    if not samples:
        return {"count": 0, "median_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    latencies = [s.latency_ms for s in samples]
    return {
        "count": len(samples),
        "median_ms": round(statistics.median(latencies), 1),
        "p90_ms": round(percentile(latencies, 0.90), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1),
        "age_median_ms": round(statistics.median(s.age_ms for s in samples), 1),
        "transit_median_ms": round(statistics.median(s.transit_ms for s in samples), 1),
    }
