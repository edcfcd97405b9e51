"""The event vocabulary and the bus: delivery by type, in order, a failing subscriber alone."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from motiond.config import HOOK_EVENTS
from motiond.events import (
    EVENT_TYPES,
    HOOKED_EVENT_TYPES,
    CameraOffline,
    CameraOnline,
    Event,
    EventBus,
    MediaLinks,
    StorageError,
)
from tests.fixtures.events import clip_ended, clip_started


def test_every_hook_key_has_an_event_and_every_hooked_event_a_key() -> None:
    assert {f"on_{t.name}" for t in HOOKED_EVENT_TYPES} == set(HOOK_EVENTS)
    assert len({t.name for t in EVENT_TYPES}) == len(EVENT_TYPES)


def test_subscribers_get_their_type_only_in_the_order_they_subscribed() -> None:
    bus = EventBus()
    seen: list[str] = []
    bus.subscribe(CameraOnline, lambda e: seen.append(f"first {e.name} {e.camera}"))
    bus.subscribe(CameraOnline, lambda e: seen.append(f"second {e.name} {e.camera}"))
    bus.subscribe(CameraOffline, lambda e: seen.append(f"offline {e.detail}"))
    bus.publish(CameraOnline(camera="door", detail="demo"))
    bus.publish(StorageError(camera=None, error="full", path=Path("/data")))  # nobody listens
    bus.publish(CameraOffline(camera="door", detail="lost"))
    assert seen == ["first camera_online door", "second camera_online door", "offline lost"]


def test_a_failing_subscriber_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    seen: list[Event] = []

    def broken(event: CameraOnline) -> None:
        raise RuntimeError("boom")

    bus.subscribe(CameraOnline, broken)
    bus.subscribe(CameraOnline, seen.append)
    with caplog.at_level(logging.ERROR):
        bus.publish(CameraOnline(camera="door", detail="demo"))
    assert len(seen) == 1 and "camera_online of camera door" in caplog.text


def test_only_the_known_events_can_be_subscribed_to() -> None:
    @dataclass(frozen=True, slots=True)
    class Invented(Event):
        name: ClassVar[str] = "invented"

    with pytest.raises(TypeError, match="Invented"):
        EventBus().subscribe(Invented, lambda e: None)


def test_a_clips_links_are_built_in_one_place() -> None:
    links = MediaLinks("http://cams.lan:8100", Path("/var/lib/motiond"))
    ended = clip_ended("door", links=links)
    payload = ended.payload(links)
    record = ended.record
    assert payload["clip_url"] == links.url(record.file) == links.clip_url(record.id)
    assert payload["clip_path"] == f"/var/lib/motiond/{record.file}"
    assert payload["poster_url"] == f"http://cams.lan:8100/media/{record.poster}"
    assert payload["clip_id"] == record.id and payload["frames"] == record.frames
    started = clip_started("door").payload(links)
    assert started["poster_path"] == f"/var/lib/motiond/{clip_started('door').poster}"
    full = StorageError(camera=None, error="full", path=Path("/d"), storage_full=True)
    assert full.payload(links) == {"error": "full", "path": "/d", "storage_full": True}
    assert StorageError(camera="a", error="x", path=Path("/d")).payload(links) == {
        "error": "x",
        "path": "/d",
    }
