"""MQTT and Home Assistant, end to end: the real daemon, Debian's mosquitto (its own config,
password file and ACL) on a free loopback port, and a test MJPEG camera whose motion the test
switches on and off. Home Assistant's side is a plain MQTT client subscribed to everything.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from motiond.config import MqttConfig
from motiond.notify.homeassistant import RETAINED_CAMERA_LEAVES
from motiond.notify.mqtt import MqttClient
from testbed.mjpeg_server import MjpegServer
from tests.fixtures.daemon import RunningDaemon, sidecars, write_config
from tests.fixtures.mjpeg import FPS, MotionScene
from tests.fixtures.servers import (
    MQTT_PASSWORD,
    MQTT_USER,
    Mosquitto,
    MqttWatcher,
    retained_messages,
    wait_until,
)

pytestmark = pytest.mark.slow

# What Home Assistant's documentation marks required for each component (integrations
# binary_sensor.mqtt, sensor.mqtt, switch.mqtt, button.mqtt, image.mqtt): image needs one of
# image_topic and url_topic. The device registry needs unique_id and, in the device, at least
# one of identifiers or connections; each availability entry needs its topic.
REQUIRED_KEYS = {
    "binary_sensor": {"state_topic"},
    "sensor": {"state_topic"},
    "switch": {"command_topic"},
    "button": {"command_topic"},
    "image": set(),
}
CAMERA_ENTITIES = {
    ("binary_sensor", "motion"),
    ("binary_sensor", "recording"),
    ("binary_sensor", "online"),
    ("switch", "armed"),
    ("image", "snapshot"),
    ("sensor", "last_clip"),
    ("button", "take_snapshot"),
    ("sensor", "delta"),
}


class Daemon(RunningDaemon):
    def metric_value(self, name: str) -> float:
        """A metric without labels from /metrics."""
        _, body = self.get("/metrics")
        for line in body.decode().splitlines():
            if line.startswith(f"motiond_{name} "):
                return float(line.split()[-1])
        raise AssertionError(f"no motiond_{name} in /metrics")


class Rig:
    """A broker, a camera with switchable motion, and daemons pointed at both."""

    def __init__(self, tmp: Path, broker: Mosquitto, camera: MjpegServer, scene: MotionScene):
        self.tmp = tmp
        self.broker = broker
        self.camera = camera
        self.scene = scene
        self.daemons: list[Daemon] = []

    def camera_config(self, name: str = "door") -> dict[str, Any]:
        return {
            "name": name,
            "source": self.camera.url,
            "capture": {"fps": FPS, "read_timeout": "1s", "open_timeout": "1s"},
            "motion": {"warmup": "0.5s", "stable_frames": 8},
            "record": {"pre_roll": "0.5s"},
        }

    def mqtt_config(self, **overrides: object) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": self.broker.port,
            "username": MQTT_USER,
            "password": MQTT_PASSWORD,
            **overrides,
        }

    def daemon(self, cameras: list[dict[str, Any]] | None = None, **mqtt: object) -> Daemon:
        config = {"mqtt": self.mqtt_config(**mqtt), "cameras": cameras or [self.camera_config()]}
        daemon = Daemon(self.tmp, config)
        self.daemons.append(daemon)
        daemon.start()
        return daemon


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    broker = Mosquitto(tmp_path)
    broker.start()
    scene = MotionScene()
    camera = MjpegServer(scene, FPS)
    camera.start()
    rig = Rig(tmp_path, broker, camera, scene)
    try:
        yield rig
    finally:
        for daemon in rig.daemons:
            daemon.stop()
        camera.stop()
        broker.stop()


@pytest.fixture
def watcher(rig: Rig) -> Iterator[MqttWatcher]:
    watcher = MqttWatcher(rig.broker)
    yield watcher
    watcher.close()


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        data: bytes = response.read()
        return data


def discovery_configs(retained: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    return {
        topic: json.loads(payload)
        for topic, payload in retained.items()
        if topic.startswith("homeassistant/")
    }


def record_clip(rig: Rig, watcher: MqttWatcher, seconds: float = 2.0) -> tuple[Any, Any]:
    """Motion for ``seconds``, then still: the clip_start and clip_end events."""
    since = time.monotonic()
    rig.scene.moving = True
    start = watcher.wait_for("motiond/door/event", after=since, timeout=20)
    time.sleep(seconds)
    rig.scene.moving = False
    end = watcher.wait_for("motiond/door/event", after=start.at, timeout=20)
    return start, end


# ---------------------------------------------------------------------------------------------


def test_topics_payloads_retained_flags_and_discovery(rig: Rig, watcher: MqttWatcher) -> None:
    daemon = rig.daemon()
    assert watcher.wait_for("motiond/status", "online").retain is False  # live, not replayed
    watcher.wait_for("motiond/door/online", "ON")
    watcher.wait_for("motiond/door/armed", "ON")

    start, end = record_clip(rig, watcher)
    # Events: JSON, QoS 1, not retained.
    assert start.qos == 1 and not start.retain and end.qos == 1
    started, ended = start.json(), end.json()
    assert started["event"] == "clip_start" and ended["event"] == "clip_end"
    assert started["camera"] == ended["camera"] == "door"
    assert started["clip_id"] == ended["clip_id"]
    assert started["boxes"] and all(len(box) == 4 for box in started["boxes"])
    assert started["start"] == ended["start"] and started["end"] is None
    assert ended["duration"] > 2.0 and ended["changed_frames"] >= 5 and ended["peak_delta"] > 0
    (box,) = ended["boxes"]
    assert len(box) == 4 and box[2] > 0 and box[3] > 0
    (record,) = daemon.json("/api/clips")["clips"]
    assert record["id"] == ended["clip_id"] and record["duration"] == ended["duration"]
    assert len(fetch(ended["clip_url"])) == record["size"]
    poster = fetch(started["poster_url"])
    assert poster[:2] == b"\xff\xd8" and ended["poster_url"] == started["poster_url"]

    # States around the clip: motion and recording ON at its start, OFF after it.
    assert watcher.wait_for("motiond/door/motion", "ON", after=start.at - 1).at < end.at
    watcher.wait_for("motiond/door/motion", "OFF", after=start.at)
    watcher.wait_for("motiond/door/recording", "OFF", after=start.at)
    # The snapshot image: the poster at the start, then the clip's newest warn snapshot.
    snapshots = watcher.wait_count("motiond/door/snapshot", 2)
    assert snapshots[0].payload == poster
    peak = (daemon.storage / record["snapshots"][-1]).read_bytes()
    wait_until(
        lambda: watcher.on("motiond/door/snapshot")[-1].payload == peak, 5, "the peak snapshot"
    )
    last_clip = watcher.wait_for("motiond/door/last_clip").json()
    assert last_clip["clip_id"] == record["id"] and last_clip["clip_url"] == ended["clip_url"]

    # The delta: numbers, not retained, at most once a second.
    deltas = watcher.on("motiond/door/delta")
    assert len(deltas) >= 2 and all(not m.retain for m in deltas)
    assert all(0.0 <= float(m.text()) <= 1.0 for m in deltas)
    gaps = [b.at - a.at for a, b in itertools.pairwise(deltas)]
    assert min(gaps) > 0.8, gaps

    # What a new subscriber (Home Assistant starting) gets at once: the retained states.
    retained = retained_messages(rig.broker)
    assert retained["motiond/status"] == b"online"
    for leaf, value in [("motion", b"OFF"), ("recording", b"OFF"), ("online", b"ON")]:
        assert retained[f"motiond/door/{leaf}"] == value
    assert retained["motiond/door/armed"] == b"ON"
    assert retained["motiond/door/snapshot"] == peak
    assert json.loads(retained["motiond/door/last_clip"])["clip_id"] == record["id"]
    assert "motiond/door/event" not in retained and "motiond/door/delta" not in retained

    configs = discovery_configs(retained)
    found = {(t.split("/")[1], t.split("/")[3].removeprefix("door_")) for t in configs}
    assert found == {*CAMERA_ENTITIES, ("binary_sensor", "running")}
    unique_ids = [c["unique_id"] for c in configs.values()]
    assert len(set(unique_ids)) == len(unique_ids)
    for topic, config in configs.items():
        component = topic.split("/")[1]
        assert topic.split("/")[2] == "motiond"  # the node id
        assert REQUIRED_KEYS[component] <= set(config), (topic, config)
        if component == "image":
            assert "image_topic" in config or "url_topic" in config
        assert config["unique_id"] and config["device"]["identifiers"]
        assert config["origin"]["name"] == "motiond"
        if config["device"]["identifiers"] != ["motiond"]:  # a camera's entity
            assert config["device"]["via_device"] == "motiond"
            assert config["availability"] == [
                {
                    "topic": "motiond/status",
                    "payload_available": "online",
                    "payload_not_available": "offline",
                }
            ]
        # Every state the entity reads is published (retained, except the delta).
        for key in ("state_topic", "image_topic", "json_attributes_topic"):
            if key in config and not config[key].endswith("/delta"):
                assert config[key] in retained, (topic, key)
        assert config.get("payload_on", "ON") in ("ON", "online")

    assert daemon.stop() == 0
    assert retained_messages(rig.broker, "motiond/status") == {"motiond/status": b"offline"}


def test_arming_over_mqtt_pauses_detection_like_the_api(rig: Rig, watcher: MqttWatcher) -> None:
    daemon = rig.daemon()
    watcher.wait_for("motiond/door/online", "ON")
    sent = time.monotonic()
    watcher.publish("motiond/door/armed/set", "OFF")
    watcher.wait_for("motiond/door/armed", "OFF", after=sent)
    assert daemon.camera("door")["armed"] is False
    assert "camera door: disarmed over MQTT" in daemon.log()

    # Disarmed: frames keep coming, nothing is detected or recorded.
    rig.scene.moving = True
    frames = daemon.camera("door")["frames"]
    time.sleep(3)
    camera = daemon.camera("door")
    assert camera["frames"] > frames + 20 and camera["recording"] is False
    assert daemon.json("/api/clips")["total"] == 0
    assert not watcher.on("motiond/door/event")
    assert watcher.last("motiond/door/motion") is not None
    assert watcher.last("motiond/door/motion").payload == b"OFF"  # type: ignore[union-attr]

    # Armed again over MQTT: the motion in front of it starts a clip.
    sent = time.monotonic()
    watcher.publish("motiond/door/armed/set", "on")
    watcher.wait_for("motiond/door/armed", "ON", after=sent)
    start = watcher.wait_for("motiond/door/event", after=sent, timeout=10)
    assert start.json()["event"] == "clip_start" and daemon.camera("door")["armed"] is True

    # Disarmed in the middle of a clip: the clip is finished and kept, as with the API.
    time.sleep(1.5)
    watcher.publish("motiond/door/armed/set", "OFF")
    end = watcher.wait_for("motiond/door/event", after=start.at, timeout=10)
    assert end.json()["event"] == "clip_end"
    wait_until(lambda: daemon.json("/api/clips")["total"] == 1, 10, "the clip in the index")
    assert daemon.camera("door")["recording"] is False

    # The API's arm is the same flag: MQTT reports it.
    sent = time.monotonic()
    status, _ = post(daemon, "/api/cameras/door/arm")
    assert status == 200
    watcher.wait_for("motiond/door/armed", "ON", after=sent, timeout=5)

    # A bad payload and an unknown camera change nothing.
    watcher.publish("motiond/door/armed/set", "maybe")
    watcher.publish("motiond/nope/armed/set", "OFF")
    wait_until(lambda: "got 'MAYBE'" in daemon.log(), 5, "the bad payload logged")
    wait_until(lambda: "unknown camera 'nope'" in daemon.log(), 5, "the unknown camera logged")
    assert daemon.camera("door")["armed"] is True

    # snapshot/set takes a snapshot now, as the API's snapshot does.
    sent = time.monotonic()
    watcher.publish("motiond/door/snapshot/set", "PRESS")
    event = watcher.wait_for("motiond/door/event", after=sent).json()
    assert event["event"] == "snapshot" and "/media/snapshots/door/" in event["url"]
    picture = fetch(event["url"])
    assert picture[:2] == b"\xff\xd8"
    assert watcher.wait_for("motiond/door/snapshot", after=sent).payload == picture
    assert daemon.json("/api/snapshots?kind=snapshot")["total"] == 1


def post(daemon: RunningDaemon, path: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        daemon.base + path, data=b"{}", method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.read()


def test_broker_killed_and_restarted(rig: Rig) -> None:
    """motiond reconnects, publishes its retained states again, and never stops recording."""
    daemon = rig.daemon()
    watcher = MqttWatcher(rig.broker)
    watcher.wait_for("motiond/door/online", "ON")
    rig.scene.moving = True
    watcher.wait_for("motiond/door/event")  # the clip started
    watcher.close()

    rig.broker.kill()  # retained messages die with it (no persistence)
    outage_started = time.monotonic()
    daemon.wait_for(lambda: daemon.metric_value("mqtt_connected") == 0, 10, "disconnected")
    frames = daemon.camera("door")["frames"]
    time.sleep(4)
    camera = daemon.camera("door")
    assert camera["recording"] is True and camera["frames"] > frames + 40
    status, body = daemon.get("/healthz")
    health = json.loads(body)
    assert status == 200 and health["mqtt"]["connected"] is False and health["mqtt"]["error"]

    rig.broker.start()
    daemon.wait_for(lambda: daemon.log().count("mqtt: connected") == 2, 90, "the reconnect")
    outage = time.monotonic() - outage_started
    assert daemon.metric_value("mqtt_connected") == 1
    retained = retained_messages(rig.broker)
    assert retained["motiond/status"] == b"online"
    for leaf, value in [("online", b"ON"), ("armed", b"ON"), ("motion", b"ON")]:
        assert retained[f"motiond/door/{leaf}"] == value
    assert retained["motiond/door/recording"] == b"ON"
    assert retained["motiond/door/snapshot"][:2] == b"\xff\xd8"
    assert len(discovery_configs(retained)) == len(CAMERA_ENTITIES) + 1

    rig.scene.moving = False
    daemon.wait_for(lambda: daemon.json("/api/clips")["total"] == 1, 20, "the clip")
    assert daemon.stop() == 0
    # The clip spans the whole outage without a gap: nothing dropped, every frame written.
    (record,) = sidecars(daemon.storage)
    assert float(record["duration"]) > outage  # type: ignore[arg-type]
    assert record["dropped_frames"] == 0
    assert int(record["frames"]) >= 0.9 * FPS * float(record["duration"])  # type: ignore[call-overload, arg-type]
    log = daemon.log()
    assert log.count("mqtt: lost the connection") == 1
    assert log.count("mqtt: cannot connect") <= 1, log  # the same reason is logged once


def test_wrong_password_one_clear_log_line_retries_and_recording_goes_on(rig: Rig) -> None:
    daemon = rig.daemon(password="not-the-password")
    # "Not authorized": 135 in MQTT 5 (what motiond speaks first), 5 in 3.1.1.
    refusals = re.compile(r"Sending CONNACK to 127\.0\.0\.1 \(0, (5|135)\)")
    daemon.wait_for(lambda: len(refusals.findall(rig.broker.log())) >= 3, 20, "retries")
    lines = [line for line in daemon.log().splitlines() if "mqtt:" in line]
    assert len(lines) == 1, lines
    assert "refused the login" in lines[0] and f"user '{MQTT_USER}'" in lines[0]
    assert "check mqtt.username and mqtt.password" in lines[0]
    assert "not-the-password" not in daemon.log()
    assert daemon.metric_value("mqtt_connected") == 0
    assert daemon.metric_value("mqtt_connection_failures_total") >= 3
    _, body = daemon.get("/healthz")
    assert "refused the login" in json.loads(body)["mqtt"]["error"]

    rig.scene.moving = True
    daemon.wait_for(lambda: daemon.camera("door")["recording"], 10, "a clip")
    time.sleep(1)
    rig.scene.moving = False
    daemon.wait_for(lambda: daemon.json("/api/clips")["total"] == 1, 15, "the clip kept")


def test_a_removed_camera_loses_its_entities_at_start_and_at_reload(rig: Rig) -> None:
    yard = {"name": "yard", "source": "demo", "capture": {"width": 160, "height": 120, "fps": 5}}
    daemon = rig.daemon([rig.camera_config(), yard])
    wait_until(
        lambda: "motiond/yard/online" in retained_messages(rig.broker, settle=0.3), 15, "yard"
    )
    retained = retained_messages(rig.broker)
    assert any("/motiond/yard_" in t for t in discovery_configs(retained))
    assert daemon.stop() == 0

    # Started again without the yard camera: its entities and retained states are gone.
    daemon = rig.daemon()
    wait_until(
        lambda: not any("yard" in t for t in retained_messages(rig.broker, settle=0.5)),
        15,
        "yard's retained topics cleared",
    )
    retained = retained_messages(rig.broker)
    assert len(discovery_configs(retained)) == len(CAMERA_ENTITIES) + 1
    assert "motiond/door/online" in retained
    assert "removing the stale Home Assistant entity" in daemon.log()

    # Reload with yard, then without: the same, without a restart.
    config = json.loads(json.dumps(yaml_of(daemon)))
    config["cameras"].append(yard)
    reload(daemon, config)
    wait_until(
        lambda: (
            "homeassistant/switch/motiond/yard_armed/config"
            in retained_messages(rig.broker, settle=0.3)
        ),
        15,
        "yard's entities after a reload",
    )
    config["cameras"].pop()
    reload(daemon, config)
    wait_until(
        lambda: not any("yard" in t for t in retained_messages(rig.broker, settle=0.5)),
        15,
        "yard's entities removed after a reload",
    )
    assert {t for t in retained_messages(rig.broker) if "door" in t} >= {
        f"motiond/door/{leaf}"
        for leaf in RETAINED_CAMERA_LEAVES
        if leaf not in ("snapshot", "last_clip")
    }


def yaml_of(daemon: RunningDaemon) -> dict[str, Any]:
    import yaml

    data: dict[str, Any] = yaml.safe_load(daemon.config_path.read_text())
    return data


def reload(daemon: RunningDaemon, config: dict[str, Any]) -> None:
    write_config(daemon.config_path, config)
    count = daemon.log().count("reloaded ")
    assert daemon.process is not None
    os.kill(daemon.process.pid, signal.SIGHUP)
    daemon.wait_for(lambda: daemon.log().count("reloaded ") > count, 20, "the reload")


def test_tls_with_the_brokers_ca_and_a_clear_line_for_an_untrusted_one(
    rig: Rig, tmp_path: Path
) -> None:
    tls = make_certificates(tmp_path / "tls")
    rig.broker.stop()
    rig.broker.tls = (tls["ca"], tls["server_cert"], tls["server_key"])
    rig.broker.start()
    daemon = rig.daemon(tls={"ca_file": str(tls["ca"])})
    daemon.wait_for(lambda: "mqtt: connected" in daemon.log(), 15, "a TLS connection")
    assert daemon.metric_value("mqtt_connected") == 1
    assert daemon.stop() == 0

    other = make_certificates(tmp_path / "other")
    daemon = rig.daemon(tls={"ca_file": str(other["ca"])})
    daemon.wait_for(lambda: "mqtt: cannot connect" in daemon.log(), 15, "the TLS failure")
    time.sleep(3)
    lines = [line for line in daemon.log().splitlines() if "mqtt:" in line]
    assert len(lines) == 1 and "TLS: the certificate of 127.0.0.1" in lines[0], lines
    assert "not trusted" in lines[0]


def make_certificates(folder: Path) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl)."""
    folder.mkdir()
    paths = {
        "ca": folder / "ca.pem",
        "ca_key": folder / "ca.key",
        "server_cert": folder / "server.pem",
        "server_key": folder / "server.key",
    }
    csr = folder / "server.csr"
    extensions = folder / "san.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=motiond test CA", "-keyout", str(paths["ca_key"]), "-out", str(paths["ca"]),
    )  # fmt: skip
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(paths["server_key"]), "-out", str(csr),
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(paths["ca"]), "-CAkey", str(paths["ca_key"]),
        "-CAcreateserial", "-days", "2", "-extfile", str(extensions),
        "-out", str(paths["server_cert"]),
    )  # fmt: skip
    return paths


def test_while_the_broker_is_away_states_coalesce_and_events_are_bounded(rig: Rig) -> None:
    rig.broker.kill()
    config = MqttConfig(
        host="127.0.0.1", port=rig.broker.port, username=MQTT_USER, password=MQTT_PASSWORD
    )
    client = MqttClient(
        config, "coalescing-test", "motiond/status", [], on_message=lambda *a: None, max_events=10
    )
    client.start()
    try:
        # Backoff after three failures: the next attempt is at least 2 s away, time enough to
        # bring the broker back with a subscriber before the client returns.
        wait_until(lambda: client.connection_failures >= 3, 30, "three failed attempts")
        for i in range(500):
            client.set_retained("motiond/x/state", str(i))
        for i in range(25):
            client.send_event("motiond/x/event", str(i))
        client.send_if_connected("motiond/x/delta", "0.5")
        assert client.events_dropped == 15
        rig.broker.start()
        watcher = MqttWatcher(rig.broker)
        try:
            watcher.wait_for("motiond/x/state", "499", timeout=70)
            watcher.wait_count("motiond/x/event", 10)
            time.sleep(1)
            assert [m.text() for m in watcher.on("motiond/x/state")] == ["499"]
            assert [m.text() for m in watcher.on("motiond/x/event")] == [
                str(i) for i in range(15, 25)
            ]
            assert not watcher.on("motiond/x/delta")
            assert watcher.last("motiond/status").payload == b"online"  # type: ignore[union-attr]
        finally:
            watcher.close()
    finally:
        client.stop()
    assert retained_messages(rig.broker, "motiond/status") == {"motiond/status": b"offline"}


def test_300_snapshot_set_messages_write_ten_files_and_one_log_line(
    rig: Rig, watcher: MqttWatcher
) -> None:
    """A looping automation: snapshots over the rate are dropped, logged once, not written."""
    daemon = rig.daemon()
    daemon.wait_for(lambda: daemon.camera("door")["online"], 20, "the camera online")
    wait_until(lambda: watcher.last("motiond/status") is not None, 10, "the daemon's status")
    for _ in range(300):
        watcher.publish("motiond/door/snapshot/set", "PRESS")
    wait_until(lambda: "dropped so far" in daemon.log(), 20, "the drop logged")
    time.sleep(2)  # the rest of the 300 arrive
    files = list((daemon.storage / "snapshots" / "door").rglob("*.jpg"))
    assert len(files) == 10, files
    assert daemon.json("/api/snapshots?kind=snapshot")["total"] == 10
    assert daemon.log().count("snapshot/set dropped") == 1
    assert daemon.alive() and daemon.camera("door")["online"]
