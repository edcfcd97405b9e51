"""Each camera's history of going offline, coming back and being tampered with, kept on disk.

The timeline shows offline spans and tamper alerts for any day still within ``storage.max_age``,
also after a restart, so the camera events are written down as they happen, one JSON line each::

    history/<camera>/<YYYY-MM-DD>.jsonl     (the UTC day of the event)
    {"ts": 1764835200.5, "event": "offline", "detail": "lost"}
    {"ts": 1764835260.1, "event": "online", "detail": "rtsp://..."}
    {"ts": 1764835300.0, "event": "tampered", "kind": "covered", "detail": "...", "since": ...}

A camera counts as offline from the daemon's start until its first frame, and from its stop
(``"stopped"``) until the next start; a crash leaves no line, so that time shows as online.

Threads: ``CameraHistory`` subscribes to ``CameraOffline``, ``CameraOnline`` and
``CameraTampered``; its handler runs on the publishing thread and only puts the entry in a
bounded queue (full: the entry is dropped and counted). Its own thread ``history`` appends the
lines and deletes the days older than the age limit (at start and when the day changes).
``read`` is called from the web side's executor: it only reads files, and skips a line being
written. Pure functions (``offline_spans``) turn the entries into what the timeline shows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from motiond.events import CameraOffline, CameraOnline, CameraTampered, EventBus
from motiond.store.layout import is_camera_name
from motiond.threads import named_thread

logger = logging.getLogger(__name__)

HISTORY_DIR = "history"
SUFFIX = ".jsonl"
QUEUE_ENTRIES = 1000  # far more than cameras change state; full: dropped and counted
NO_AGE_LIMIT_DAYS = 400  # with storage.max_age 0 (no limit), the history still stays bounded


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One camera event as written down: ``event`` is offline, online or tampered."""

    camera: str
    ts: float  # wall clock
    event: str
    detail: str = ""
    kind: str | None = None  # tampered: covered, blinded, defocused, turned
    since: float | None = None  # tampered: when the picture started looking tampered with

    def to_line(self) -> str:
        data: dict[str, Any] = {"ts": round(self.ts, 3), "event": self.event}
        if self.detail:
            data["detail"] = self.detail
        if self.kind is not None:
            data["kind"] = self.kind
        if self.since is not None:
            data["since"] = round(self.since, 3)
        return json.dumps(data, separators=(",", ":")) + "\n"

    @classmethod
    def from_line(cls, camera: str, line: str) -> HistoryEntry | None:
        """An entry from its line; None for a line that is not one (cut short, edited)."""
        try:
            data = json.loads(line)
            ts = float(data["ts"])
            event = str(data["event"])
            since = data.get("since")
            return cls(
                camera,
                ts,
                event,
                str(data.get("detail", "")),
                None if data.get("kind") is None else str(data["kind"]),
                None if since is None else float(since),
            )
        except (ValueError, TypeError, KeyError):
            return None


@dataclass(frozen=True, slots=True)
class Span:
    start: float
    end: float


def offline_spans(
    entries: Sequence[HistoryEntry], since: float, until: float, now: float
) -> list[Span]:
    """The spans of [since, until) during which the camera was offline, from its entries in
    time order (including the last one before ``since``, which says how it stood then). A span
    still open ends at ``now`` (or ``until``, whichever is earlier)."""
    spans: list[Span] = []
    offline_from: float | None = None
    for entry in entries:
        if entry.event == "offline" and offline_from is None:
            offline_from = entry.ts
        elif entry.event == "online" and offline_from is not None:
            spans.append(Span(offline_from, entry.ts))
            offline_from = None
    if offline_from is not None:
        spans.append(Span(offline_from, max(offline_from, min(until, now))))
    return [
        Span(max(s.start, since), min(s.end, until))
        for s in spans
        if s.end > since and s.start < until
    ]


def utc_day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


class CameraHistory:
    """Writes the camera events down (its own thread) and reads them back per time range."""

    def __init__(self, root: Path, max_age: float, clock: Callable[[], float] = time.time) -> None:
        self.directory = root / HISTORY_DIR
        self.max_age = max_age or NO_AGE_LIMIT_DAYS * 86400.0
        self._clock = clock
        self._queue: queue.Queue[HistoryEntry | None] = queue.Queue(QUEUE_ENTRIES)
        self.dropped = 0  # entries that did not fit the queue (only the publishers add)
        self._thread: threading.Thread | None = None
        self._pruned_day = ""

    # -- publishing threads -------------------------------------------------------------------

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(CameraOffline, self._on_offline)
        bus.subscribe(CameraOnline, self._on_online)
        bus.subscribe(CameraTampered, self._on_tampered)

    def starting(self, cameras: Iterable[str]) -> None:
        """Each camera is offline until its first frame (a camera that never comes up shows
        as offline from the start). Called by the daemon before it starts the cameras."""
        now = self._clock()
        for camera in cameras:
            self._put(HistoryEntry(camera, now, "offline", "starting"))

    def _on_offline(self, event: CameraOffline) -> None:
        self._put(HistoryEntry(event.camera, self._clock(), "offline", event.detail))

    def _on_online(self, event: CameraOnline) -> None:
        self._put(HistoryEntry(event.camera, self._clock(), "online", event.detail))

    def _on_tampered(self, event: CameraTampered) -> None:
        entry = HistoryEntry(
            event.camera, event.detected, "tampered", event.detail, event.kind, event.since
        )
        self._put(entry)

    def _put(self, entry: HistoryEntry | None) -> None:
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self.dropped += 1
            logger.warning("history: queue full, camera %s event dropped", entry and entry.camera)

    # -- the history thread -------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("CameraHistory already started")
        self._thread = named_thread(self._run, "history")
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Write what is queued, then end the thread (waits up to ``timeout``)."""
        if self._thread is None:
            raise RuntimeError("CameraHistory not started")
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)

    def _run(self) -> None:
        self.prune()
        while (entry := self._queue.get()) is not None:
            try:
                self.write(entry)
                if utc_day(entry.ts) != self._pruned_day:
                    self.prune()
            except OSError:
                logger.exception("history: camera %s: could not write its event", entry.camera)

    def write(self, entry: HistoryEntry) -> None:
        """Append one entry to its camera's day file (the history thread; tests call it)."""
        if not is_camera_name(entry.camera):
            return
        folder = self.directory / entry.camera
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{utc_day(entry.ts)}{SUFFIX}", "a", encoding="utf-8") as file:
            file.write(entry.to_line())

    def prune(self) -> int:
        """Delete the day files older than the age limit; returns how many."""
        now = self._clock()
        self._pruned_day = utc_day(now)
        oldest = utc_day(now - self.max_age)
        deleted = 0
        for path in self._day_files("*"):
            if path.stem < oldest:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    deleted += 1
        if deleted:
            logger.info("history: deleted %d day(s) older than %s", deleted, oldest)
        return deleted

    # -- readers (web executor) ---------------------------------------------------------------

    def read(self, camera: str, since: float, until: float) -> list[HistoryEntry]:
        """The camera's entries from the last one before ``since`` to ``until``, in time order."""
        if not is_camera_name(camera):
            return []
        first, last = utc_day(since), utc_day(until)
        files = self._day_files(camera)
        before = [p for p in files if p.stem < first]
        inside = [p for p in files if first <= p.stem <= last]
        earlier = _entries(camera, before[-1:])
        entries = [e for e in _entries(camera, inside) if e.ts < until]
        previous = [e for e in earlier + entries if e.ts < since][-1:]
        return previous + [e for e in entries if e.ts >= since]

    def _day_files(self, camera: str) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(
            (p for p in self.directory.glob(f"{camera}/*{SUFFIX}") if p.is_file()),
            key=lambda p: p.stem,
        )


def _entries(camera: str, files: Iterable[Path]) -> list[HistoryEntry]:
    entries: list[HistoryEntry] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        for line in text.splitlines():
            entry = HistoryEntry.from_line(camera, line)
            if entry is not None:
                entries.append(entry)
    entries.sort(key=lambda e: e.ts)
    return entries
