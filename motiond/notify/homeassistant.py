"""MQTT topics and Home Assistant discovery payloads (pure: names and dicts, no I/O).

Topics, under ``mqtt.topic_prefix`` (``motiond``)::

    motiond/status                      online / offline (retained; offline is the last will)
    motiond/<camera>/motion             ON / OFF (retained)
    motiond/<camera>/recording          ON / OFF (retained)
    motiond/<camera>/online             ON / OFF (retained)
    motiond/<camera>/armed              ON / OFF (retained)
    motiond/<camera>/armed/set          ON / OFF: arm or disarm (subscribed)
    motiond/<camera>/snapshot/set       any payload: take a snapshot now (subscribed)
    motiond/<camera>/snapshot           JPEG bytes of the latest snapshot (retained)
    motiond/<camera>/last_clip          JSON of the newest clip (retained)
    motiond/<camera>/event              JSON per clip start, clip end, snapshot (QoS 1)
    motiond/<camera>/delta              the current delta, at most once a second

Discovery (Home Assistant's MQTT discovery, one config topic per entity)::

    <discovery_prefix>/<component>/<node_id>/<object_id>/config

where ``node_id`` is the topic prefix made safe for a topic level (``motiond``) and
``object_id`` is ``<camera>_<entity>``. Each camera is a device, linked (``via_device``) to
a device for the daemon itself, which carries one entity: whether motiond is running.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ON, OFF = "ON", "OFF"
ONLINE, OFFLINE = "online", "offline"
# Camera state topics that are retained (cleared when a camera leaves the config).
RETAINED_CAMERA_LEAVES = ("motion", "recording", "online", "armed", "snapshot", "last_clip")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, slots=True)
class Topics:
    """The topic names under one prefix."""

    prefix: str

    @property
    def status(self) -> str:
        return f"{self.prefix}/status"

    def camera(self, camera: str, leaf: str) -> str:
        return f"{self.prefix}/{camera}/{leaf}"

    def command_filters(self) -> tuple[str, str]:
        """Subscriptions for the commands: arm/disarm and snapshot now."""
        return (f"{self.prefix}/+/armed/set", f"{self.prefix}/+/snapshot/set")

    def parse_command(self, topic: str) -> tuple[str, str] | None:
        """(camera, "armed" or "snapshot") for a command topic, else None."""
        head = f"{self.prefix}/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head) :].split("/")
        if len(parts) == 3 and parts[2] == "set" and parts[1] in ("armed", "snapshot"):
            return parts[0], parts[1]
        return None

    def parse_camera_state(self, topic: str) -> str | None:
        """The camera of a retained ``<prefix>/<camera>/online`` topic, else None."""
        head = f"{self.prefix}/"
        if topic.startswith(head) and topic.endswith("/online"):
            camera = topic[len(head) : -len("/online")]
            return camera if camera and "/" not in camera else None
        return None


def node_id(topic_prefix: str) -> str:
    """The prefix as one discovery topic level (letters, digits, ``_`` and ``-`` only)."""
    return _UNSAFE.sub("_", topic_prefix)


@dataclass(frozen=True, slots=True)
class Entity:
    """One Home Assistant entity: its component and the payload keys beyond the common ones."""

    component: str
    key: str
    fields: Mapping[str, Any]


def camera_entities(topics: Topics, camera: str) -> list[Entity]:
    """The entities of one camera's device."""

    def topic(leaf: str) -> str:
        return topics.camera(camera, leaf)

    on_off = {"payload_on": ON, "payload_off": OFF}
    return [
        Entity(
            "binary_sensor",
            "motion",
            {"name": "Motion", "device_class": "motion", "state_topic": topic("motion"), **on_off},
        ),
        Entity(
            "binary_sensor",
            "recording",
            {
                "name": "Recording",
                "device_class": "running",
                "state_topic": topic("recording"),
                "icon": "mdi:record-rec",
                **on_off,
            },
        ),
        Entity(
            "binary_sensor",
            "online",
            {
                "name": "Camera connected",
                "device_class": "connectivity",
                "state_topic": topic("online"),
                "entity_category": "diagnostic",
                **on_off,
            },
        ),
        Entity(
            "switch",
            "armed",
            {
                "name": "Armed",
                "icon": "mdi:motion-sensor",
                "state_topic": topic("armed"),
                "command_topic": topic("armed/set"),
                "state_on": ON,
                "state_off": OFF,
                **on_off,
            },
        ),
        Entity(
            "image",
            "snapshot",
            {"name": "Snapshot", "image_topic": topic("snapshot"), "content_type": "image/jpeg"},
        ),
        Entity(
            "sensor",
            "last_clip",
            {
                "name": "Last clip",
                "device_class": "timestamp",
                "state_topic": topic("last_clip"),
                "value_template": "{{ value_json.start }}",
                "json_attributes_topic": topic("last_clip"),
                "icon": "mdi:filmstrip",
            },
        ),
        Entity(
            "button",
            "take_snapshot",
            {
                "name": "Take snapshot",
                "command_topic": topic("snapshot/set"),
                "payload_press": "PRESS",
                "icon": "mdi:camera",
            },
        ),
        Entity(
            "sensor",
            "delta",
            {
                "name": "Delta",
                "state_topic": topic("delta"),
                "state_class": "measurement",
                "entity_category": "diagnostic",
                "enabled_by_default": False,
                "icon": "mdi:chart-bell-curve",
            },
        ),
    ]


def discovery_topic(discovery_prefix: str, node: str, entity: Entity, camera: str | None) -> str:
    object_id = f"{camera}_{entity.key}" if camera is not None else entity.key
    return f"{discovery_prefix}/{entity.component}/{node}/{object_id}/config"


def discovery_filter(discovery_prefix: str, node: str) -> str:
    """A subscription matching every discovery config this daemon may have published."""
    return f"{discovery_prefix}/+/{node}/+/config"


def discovery_messages(
    topics: Topics,
    discovery_prefix: str,
    cameras: Iterable[str],
    version: str,
    base_url: str,
) -> dict[str, dict[str, Any]]:
    """Discovery topic -> config payload for the daemon's device and every camera's entities.

    Every payload carries what Home Assistant requires of its component (``state_topic``,
    ``command_topic``, ``image_topic``), a ``unique_id`` (which the device registry needs),
    availability on the daemon's status topic and the device it belongs to.
    """
    node = node_id(topics.prefix)
    origin = {"name": "motiond", "sw_version": version}
    daemon_device = {
        "identifiers": [node],
        "name": f"motiond ({topics.prefix})" if node != "motiond" else "motiond",
        "manufacturer": "motiond",
        "model": "motion-triggered video recorder",
        "sw_version": version,
        "configuration_url": base_url,
    }
    availability = [
        {"topic": topics.status, "payload_available": ONLINE, "payload_not_available": OFFLINE}
    ]
    messages: dict[str, dict[str, Any]] = {}
    running = Entity(
        "binary_sensor",
        "running",
        {
            "name": "Running",
            "device_class": "running",
            "state_topic": topics.status,
            "payload_on": ONLINE,
            "payload_off": OFFLINE,
            "entity_category": "diagnostic",
        },
    )
    messages[discovery_topic(discovery_prefix, node, running, None)] = {
        **running.fields,
        "unique_id": f"{node}_running",
        "device": daemon_device,
        "origin": origin,
    }
    for camera in cameras:
        device = {
            "identifiers": [f"{node}_{camera}"],
            "name": camera,
            "manufacturer": "motiond",
            "model": "camera",
            "sw_version": version,
            "via_device": node,
            "configuration_url": base_url,
        }
        for entity in camera_entities(topics, camera):
            unique_id = f"{node}_{camera}_{entity.key}"
            messages[discovery_topic(discovery_prefix, node, entity, camera)] = {
                **entity.fields,
                "unique_id": unique_id,
                "availability": availability,
                "device": device,
                "origin": origin,
            }
    return messages


def is_discovery_topic_of(topic: str, discovery_prefix: str, node: str) -> bool:
    """True for ``<discovery_prefix>/<component>/<node>/<object_id>/config``."""
    head = f"{discovery_prefix}/"
    if not topic.startswith(head) or not topic.endswith("/config"):
        return False
    parts = topic[len(head) : -len("/config")].split("/")
    return len(parts) == 3 and parts[1] == node and all(parts)


__all__ = [
    "OFF",
    "OFFLINE",
    "ON",
    "ONLINE",
    "RETAINED_CAMERA_LEAVES",
    "Entity",
    "Topics",
    "camera_entities",
    "discovery_filter",
    "discovery_messages",
    "discovery_topic",
    "is_discovery_topic_of",
    "node_id",
]
