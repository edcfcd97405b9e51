"""Finding 11 of the abuse review (issue 16): an oversized MQTT message never reaches the
process's memory whole. Before: a 64 MB ``armed/set`` raised the daemon's peak RSS from 130 to
392 MB (mosquitto's default limit is 256 MB).

Against Debian's mosquitto. The 64 MB message is published by a separate Python process, so
only the receiver's memory is measured. MQTT 5 (the daemon, as run): the broker drops the
message for us (Maximum Packet Size in CONNECT). MQTT 3.1.1 (a client made to speak it, as with
a broker that refuses 5): the packet is refused as it is read, before its payload.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from motiond.config.mqtt import MqttConfig
from motiond.notify.mqtt import MAX_PACKET, MqttClient
from tests.fixtures.daemon import RunningDaemon
from tests.fixtures.servers import (
    HA_PASSWORD,
    HA_USER,
    MQTT_PASSWORD,
    MQTT_USER,
    Mosquitto,
    MqttWatcher,
    wait_until,
)

BIG = 64 * 1024 * 1024
ALLOWED_GROWTH = 32 * 1024 * 1024  # the payload, had it been read, would be at least 64 MB


def peak_rss(pid: int | str = "self") -> int:
    """The peak resident memory (VmHWM) of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def publish_from_another_process(broker: Mosquitto, topic: str, size: int) -> None:
    """Publish ``size`` bytes on ``topic`` (QoS 1) from a child Python process."""
    script = textwrap.dedent(
        f"""
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion
        client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        client.username_pw_set({HA_USER!r}, {HA_PASSWORD!r})
        client.connect("127.0.0.1", {broker.port})
        client.loop_start()
        client.publish({topic!r}, b"O" * {size}, qos=1).wait_for_publish(60)
        client.loop_stop()
        client.disconnect()
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    mosquitto = Mosquitto(tmp_path)
    mosquitto.start()
    try:
        yield mosquitto
    finally:
        mosquitto.stop()


def test_a_64_mb_command_does_not_raise_the_daemons_memory(
    tmp_path: Path, broker: Mosquitto
) -> None:
    daemon = RunningDaemon(
        tmp_path,
        {
            "cameras": [{"name": "cam", "source": "demo", "capture": {"fps": 5}}],
            "mqtt": {
                "host": "127.0.0.1",
                "port": broker.port,
                "username": MQTT_USER,
                "password": MQTT_PASSWORD,
            },
        },
    )
    watcher = MqttWatcher(broker)
    daemon.start()
    try:
        watcher.wait_for("motiond/cam/online", "ON")
        assert daemon.process is not None
        before = peak_rss(daemon.process.pid)
        publish_from_another_process(broker, "motiond/cam/armed/set", BIG)
        sent = time.monotonic()
        watcher.publish("motiond/cam/armed/set", "OFF")  # the next command still works
        watcher.wait_for("motiond/cam/armed", "OFF", after=sent)
        growth = peak_rss(daemon.process.pid) - before
        assert growth < ALLOWED_GROWTH, f"peak RSS grew by {growth / 2**20:.0f} MiB"
        assert daemon.camera()["armed"] is False
    finally:
        watcher.close()
        assert daemon.stop() == 0
    assert "Traceback" not in daemon.log()


def test_over_mqtt_3_1_1_an_oversized_packet_is_refused_as_it_is_read(
    broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    received: list[tuple[str, int]] = []
    lock = threading.Lock()

    def on_message(topic: str, payload: bytes, retained: bool) -> None:
        with lock:
            received.append((topic, len(payload)))

    config = MqttConfig(
        host="127.0.0.1", port=broker.port, username=MQTT_USER, password=MQTT_PASSWORD
    )
    client = MqttClient(
        config,
        "limits-test",
        "motiond/limits/status",
        ["motiond/limits/#"],
        on_message=on_message,
        protocol=paho.MQTTv311,
    )
    caplog.set_level(logging.INFO, logger="motiond.notify.mqtt")
    client.start()
    try:
        wait_until(lambda: client.connected, 10, "connected")
        time.sleep(0.5)  # subscribed
        before = peak_rss()
        publish_from_another_process(broker, "motiond/limits/big", BIG)
        wait_until(lambda: "dropped unread" in caplog.text, 30, "the refusal logged")
        growth = peak_rss() - before
        assert growth < ALLOWED_GROWTH, f"peak RSS grew by {growth / 2**20:.0f} MiB"
        assert f"a message of {BIG + 2 + len('motiond/limits/big') + 2}" in caplog.text
        assert f"more than {MAX_PACKET}" in caplog.text
        # It reconnects, and small messages flow again.
        wait_until(lambda: client.connected, 15, "reconnected")
        watcher = MqttWatcher(broker, topics=("motiond/limits/status",))
        try:
            deadline = time.monotonic() + 15
            while not any(topic == "motiond/limits/small" for topic, _ in received):
                assert time.monotonic() < deadline, received
                watcher.publish("motiond/limits/small", "hello")
                time.sleep(0.5)
        finally:
            watcher.close()
    finally:
        client.stop()
    with lock:
        assert all(size < MAX_PACKET for _, size in received), received
