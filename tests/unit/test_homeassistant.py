"""Topics, Home Assistant discovery payloads and event JSON: pure functions on plain data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from motiond.config import MqttConfig
from motiond.detect.boxes import Box
from motiond.events import ClipStarted, MediaLinks
from motiond.notify.homeassistant import (
    Topics,
    camera_entities,
    discovery_filter,
    discovery_messages,
    is_discovery_topic_of,
    node_id,
)
from motiond.notify.mqtt import default_client_id, describe_refusal
from motiond.notify.mqtt_bridge import clip_ended_event, clip_started_event, last_clip_state
from motiond.store.layout import local_iso
from tests.fixtures.events import clip_ended

BASE = "http://cams.lan:8100"
LINKS = MediaLinks(BASE, Path("/data"))
# Required per Home Assistant's MQTT integration docs (binary_sensor, sensor, switch, button,
# image: image_topic or url_topic).
REQUIRED = {
    "binary_sensor": {"state_topic"},
    "sensor": {"state_topic"},
    "switch": {"command_topic"},
    "button": {"command_topic"},
    "image": {"image_topic"},
}


def test_topic_names_and_parsing() -> None:
    topics = Topics("home/cams")
    assert topics.status == "home/cams/status"
    assert topics.camera("door", "armed/set") == "home/cams/door/armed/set"
    assert topics.command_filters() == ("home/cams/+/armed/set", "home/cams/+/snapshot/set")
    assert topics.parse_command("home/cams/door/armed/set") == ("door", "armed")
    assert topics.parse_command("home/cams/door/snapshot/set") == ("door", "snapshot")
    for other in ("home/cams/door/armed", "home/cams/door/motion/set", "motiond/door/armed/set"):
        assert topics.parse_command(other) is None
    assert topics.parse_camera_state("home/cams/yard/online") == "yard"
    assert topics.parse_camera_state("home/cams/status") is None
    assert node_id("home/cams") == "home_cams" and node_id("motiond") == "motiond"


def test_discovery_payloads_for_two_cameras() -> None:
    topics = Topics("motiond")
    messages = discovery_messages(topics, "homeassistant", ["door", "yard"], "1.2.3", BASE)
    per_camera = len(camera_entities(topics, "door"))
    assert len(messages) == 1 + 2 * per_camera
    assert "homeassistant/binary_sensor/motiond/door_motion/config" in messages
    assert "homeassistant/switch/motiond/yard_armed/config" in messages
    assert "homeassistant/binary_sensor/motiond/running/config" in messages
    unique_ids = [m["unique_id"] for m in messages.values()]
    assert len(set(unique_ids)) == len(unique_ids)
    for topic, payload in messages.items():
        component = topic.split("/")[1]
        assert REQUIRED[component] <= set(payload), topic
        assert is_discovery_topic_of(topic, "homeassistant", "motiond")
        assert payload["device"]["identifiers"] and payload["origin"]["sw_version"] == "1.2.3"
        assert payload["device"]["configuration_url"] == BASE
    motion = messages["homeassistant/binary_sensor/motiond/door_motion/config"]
    assert motion["device_class"] == "motion" and motion["state_topic"] == "motiond/door/motion"
    assert motion["device"]["via_device"] == "motiond"
    assert motion["availability"][0]["topic"] == "motiond/status"
    online = messages["homeassistant/binary_sensor/motiond/door_online/config"]
    assert online["device_class"] == "connectivity"
    switch = messages["homeassistant/switch/motiond/door_armed/config"]
    assert switch["command_topic"] == "motiond/door/armed/set"
    assert switch["state_topic"] == "motiond/door/armed"
    image = messages["homeassistant/image/motiond/door_snapshot/config"]
    assert image["image_topic"] == "motiond/door/snapshot"
    assert image["content_type"] == "image/jpeg"
    last_clip = messages["homeassistant/sensor/motiond/door_last_clip/config"]
    assert last_clip["json_attributes_topic"] == last_clip["state_topic"]
    assert last_clip["device_class"] == "timestamp"
    button = messages["homeassistant/button/motiond/door_take_snapshot/config"]
    assert button["command_topic"] == "motiond/door/snapshot/set"
    running = messages["homeassistant/binary_sensor/motiond/running/config"]
    assert running["state_topic"] == "motiond/status" and "availability" not in running


def test_discovery_topics_of_another_node_are_not_ours() -> None:
    assert discovery_filter("homeassistant", "motiond") == "homeassistant/+/motiond/+/config"
    assert not is_discovery_topic_of(
        "homeassistant/switch/other/x/config", "homeassistant", "motiond"
    )
    assert not is_discovery_topic_of(
        "homeassistant/switch/motiond/x/state", "homeassistant", "motiond"
    )
    assert not is_discovery_topic_of("ha/switch/motiond/x/config", "homeassistant", "motiond")


def test_clip_events_and_the_last_clip_state() -> None:
    started = ClipStarted(
        camera="door",
        clip_id="door/2026-01-01/120000Z.mp4",
        partial_path=Path("/data/clips/door/2026-01-01/120000Z.mp4.partial"),
        poster="warn/door/2026-01-01/120000Z-start.jpg",
        start=datetime(2026, 1, 1, 13, tzinfo=timezone(timedelta(hours=1))).timestamp(),
        boxes=(Box(1, 2, 3, 4),),
    )
    start = clip_started_event(started, LINKS)
    assert start == {
        "event": "clip_start",
        "camera": "door",
        "clip_id": "door/2026-01-01/120000Z.mp4",
        "clip_url": f"{BASE}/media/clips/door/2026-01-01/120000Z.mp4",
        "poster_url": f"{BASE}/media/warn/door/2026-01-01/120000Z-start.jpg",
        "start": local_iso(started.start),
        "end": None,
        "duration": None,
        "changed_frames": None,
        "peak_delta": None,
        "boxes": [[1, 2, 3, 4]],
    }
    ended = clip_ended("door", frames=73, links=LINKS)
    end = clip_ended_event(ended, LINKS)
    assert end["boxes"] == [[5, 6, 70, 80]] and end["duration"] == 7.3
    assert end["clip_url"] == start["clip_url"] and end["start"] == ended.record.start
    state = last_clip_state(ended, LINKS)
    assert state["frames"] == 73 and state["clip_url"] == start["clip_url"]
    assert "boxes" not in state and "event" not in state
    # The entity links to the timeline at the clip's start (/review?camera=NAME&t=ISO8601).
    moment = datetime.fromtimestamp(ended.record.start_ts, UTC)
    assert state["review_url"] == (
        f"{BASE}/review?camera=door&t={moment.isoformat(timespec='milliseconds')[:-6]}Z"
    )
    parsed = datetime.fromisoformat(state["review_url"].split("&t=")[1])
    assert abs(parsed.timestamp() - ended.record.start_ts) < 0.001


def test_connection_problems_in_words() -> None:
    config = MqttConfig(host="broker.lan", username="motiond", password="x")
    for identifier in (0x86, 0x87):  # bad user name or password; not authorized
        text = describe_refusal(ReasonCode(PacketTypes.CONNACK, identifier=identifier), config)
        assert "broker.lan:1883 refused the login" in text and "user 'motiond'" in text
    other = describe_refusal(ReasonCode(PacketTypes.CONNACK, identifier=0x88), config)
    assert "refused the connection" in other
    assert default_client_id("home/cams").startswith("motiond-")
    assert default_client_id("home/cams").endswith("-home_cams")
