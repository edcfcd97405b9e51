"""The camera history: entries written by its thread from the bus's events, read back per time
range (also after a restart: a new object on the same directory), spans, pruning by age."""

from __future__ import annotations

import time
from pathlib import Path

from motiond.events import CameraOffline, CameraOnline, CameraTampered, EventBus
from motiond.store.history import CameraHistory, HistoryEntry, Span, offline_spans
from motiond.web.timeline import merged_spans

DAY = 86400.0
T = 1_764_000_000.0 - 1_764_000_000.0 % DAY  # a UTC midnight


def entry(ts: float, event: str) -> HistoryEntry:
    return HistoryEntry("door", ts, event)


def test_offline_spans_clipped_to_the_range_and_open_until_now() -> None:
    entries = [
        entry(T - 50, "offline"),
        entry(T + 10, "online"),
        entry(T + 20, "offline"),
        entry(T + 25, "offline"),
        entry(T + 30, "online"),
        entry(T + 90, "offline"),
    ]
    assert offline_spans(entries, T, T + 100, now=T + 95) == [
        Span(T, T + 10),
        Span(T + 20, T + 30),
        Span(T + 90, T + 95),
    ]
    assert offline_spans(entries, T, T + 60, now=T + 95) == [Span(T, T + 10), Span(T + 20, T + 30)]
    assert offline_spans([entry(T - 5, "online")], T, T + 60, now=T + 95) == []


def test_events_from_the_bus_are_written_and_read_back_after_a_restart(tmp_path: Path) -> None:
    now = [T + 100.0]
    history = CameraHistory(tmp_path, 30 * DAY, clock=lambda: now[0])
    bus = EventBus()
    history.subscribe(bus)
    history.start()
    bus.publish(CameraOffline("door", "lost"))
    now[0] = T + 160
    bus.publish(CameraOnline("door", "rtsp://cam/main"))
    bus.publish(CameraTampered("door", "covered", "covered up", since=T + 170, detected=T + 180))
    now[0] = T + DAY + 5
    bus.publish(CameraOffline("door", "stopped"))  # the next UTC day
    history.stop(5)
    assert sorted(p.name for p in (tmp_path / "history" / "door").iterdir()) == [
        time.strftime("%Y-%m-%d.jsonl", time.gmtime(T)),
        time.strftime("%Y-%m-%d.jsonl", time.gmtime(T + DAY)),
    ]

    again = CameraHistory(tmp_path, 30 * DAY)
    got = again.read("door", T, T + 2 * DAY)
    assert [(e.ts, e.event, e.detail) for e in got] == [
        (T + 100, "offline", "lost"),
        (T + 160, "online", "rtsp://cam/main"),
        (T + 180, "tampered", "covered up"),
        (T + DAY + 5, "offline", "stopped"),
    ]
    assert (got[2].kind, got[2].since) == ("covered", T + 170)
    # A range starting later begins with the last entry before it (how the camera stood).
    later = again.read("door", T + DAY + 1, T + DAY + 100)
    assert [(e.ts, e.event) for e in later] == [(T + 180, "tampered"), (T + DAY + 5, "offline")]
    assert again.read("other", T, T + DAY) == [] and again.read("../x", T, T + DAY) == []


def test_a_line_cut_short_is_skipped(tmp_path: Path) -> None:
    history = CameraHistory(tmp_path, 30 * DAY)
    history.write(entry(T + 1, "offline"))
    with open(next((tmp_path / "history" / "door").iterdir()), "a") as file:
        file.write('{"ts": 17640')
    assert [e.ts for e in history.read("door", T, T + 10)] == [T + 1]


def test_days_older_than_the_age_limit_are_deleted(tmp_path: Path) -> None:
    history = CameraHistory(tmp_path, 3 * DAY, clock=lambda: T + 10 * DAY)
    for day in range(11):
        history.write(entry(T + day * DAY + 1, "offline"))
    assert history.prune() == 7
    kept = sorted(p.stem for p in (tmp_path / "history" / "door").iterdir())
    assert kept == [time.strftime("%Y-%m-%d", time.gmtime(T + d * DAY)) for d in range(7, 11)]


def test_a_full_queue_drops_and_counts(tmp_path: Path) -> None:
    history = CameraHistory(tmp_path, DAY, clock=lambda: T)
    bus = EventBus()
    history.subscribe(bus)
    for _ in range(1005):  # not started: nothing takes from the queue
        bus.publish(CameraOffline("door", "lost"))
    assert history.dropped == 5


def test_merged_spans() -> None:
    spans = [(10.0, 20.0), (0.0, 5.0), (19.0, 30.0), (30.2, 40.0), (50.0, 50.0), (41.0, 45.0)]
    assert [(s.start, s.end) for s in merged_spans(spans)] == [
        (0.0, 5.0),
        (10.0, 30.0),
        (30.2, 40.0),
        (41.0, 45.0),
    ]
    assert [(s.start, s.end) for s in merged_spans(spans, join=0.5)] == [
        (0.0, 5.0),
        (10.0, 40.0),
        (41.0, 45.0),
    ]


def test_cameras_are_offline_from_the_start_until_their_first_frame(tmp_path: Path) -> None:
    now = [T + 10.0]
    history = CameraHistory(tmp_path, DAY, clock=lambda: now[0])
    bus = EventBus()
    history.subscribe(bus)
    history.start()
    history.starting(["door", "yard"])
    now[0] = T + 12
    bus.publish(CameraOnline("door", "rtsp://cam/main"))  # yard never comes up
    history.stop(5)
    spans = {
        camera: offline_spans(history.read(camera, T, T + 60), T, T + 60, now=T + 30)
        for camera in ("door", "yard")
    }
    assert spans == {"door": [Span(T + 10, T + 12)], "yard": [Span(T + 10, T + 30)]}
