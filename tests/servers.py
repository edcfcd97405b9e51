"""Real servers for the MQTT and upload tests, on free loopback ports, stopped by pid.

- ``Mosquitto``: Debian's broker with its own config file, password file and ACL.
- ``MqttWatcher``: a client of that broker (as Home Assistant would be), recording what arrives.
- ``RcloneServer``: ``rclone serve sftp`` or ``rclone serve webdav`` over a folder, and the
  rclone.conf that reaches it.
- ``MotionScene``: frames for the test MJPEG camera; the test switches motion on and off.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.synthetic import background, with_noise, with_square
from tests.test_camera_faults import HEIGHT, WIDTH, encode, still_jpegs

MQTT_USER, MQTT_PASSWORD = "motiond", "motiond-secret"
HA_USER, HA_PASSWORD = "homeassistant", "ha-secret"
RCLONE_USER, RCLONE_PASSWORD = "cams", "upload-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.05)


def require(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} is not installed (Debian: apt-get install {program})")
    return path


def stop_pid(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.kill(process.pid, sig)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


class Mosquitto:
    """Debian's mosquitto on a fixed free loopback port; ``kill``/``start`` keep the port."""

    def __init__(self, tmp: Path) -> None:
        require("mosquitto")
        self.dir = tmp / "mosquitto"
        self.dir.mkdir()
        self.port = free_port()
        self.log_path = self.dir / "mosquitto.log"
        self.process: subprocess.Popen[bytes] | None = None
        passwords = self.dir / "passwords"
        for index, (user, password) in enumerate(
            [(MQTT_USER, MQTT_PASSWORD), (HA_USER, HA_PASSWORD)]
        ):
            flags = ["-b", "-c"] if index == 0 else ["-b"]
            subprocess.run(
                [require("mosquitto_passwd"), *flags, str(passwords), user, password],
                check=True,
                capture_output=True,
            )
        acl = self.dir / "acl"
        acl.write_text(
            f"user {MQTT_USER}\ntopic readwrite motiond/#\ntopic readwrite homeassistant/#\n\n"
            f"user {HA_USER}\ntopic readwrite #\n"
        )
        self.config_path = self.dir / "mosquitto.conf"
        self._settings = [
            "allow_anonymous false",
            f"password_file {passwords}",
            f"acl_file {acl}",
            "persistence false",
            f"log_dest file {self.log_path}",
            "log_type all",
        ]
        if os.geteuid() == 0:
            self._settings.append("user root")  # else it drops to "mosquitto": no tmp_path
        self.tls: tuple[Path, Path, Path] | None = None  # CA, certificate, key

    def start(self) -> None:
        listener = [f"listener {self.port} 127.0.0.1"]
        if self.tls is not None:
            ca, cert, key = self.tls
            listener += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
        self.config_path.write_text("\n".join([*listener, *self._settings]) + "\n")
        self.process = subprocess.Popen(
            [require("mosquitto"), "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._listening, 10, "mosquitto listening")

    def _listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"mosquitto exited:\n{self.log()}")
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def kill(self) -> None:
        """The broker dies (SIGKILL): no clean disconnect, retained messages gone."""
        if self.process is not None:
            stop_pid(self.process, signal.SIGKILL)

    def stop(self) -> None:
        if self.process is not None:
            stop_pid(self.process)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    at: float  # monotonic

    def text(self) -> str:
        return self.payload.decode()

    def json(self) -> Any:
        return json.loads(self.payload)


class MqttWatcher:
    """A client of the test broker that records every message on ``topics``."""

    def __init__(
        self,
        broker: Mosquitto,
        topics: tuple[str, ...] = ("#",),
        user: str = HA_USER,
        password: str = HA_PASSWORD,
    ) -> None:
        self.messages: list[Message] = []
        self._lock = threading.Lock()  # guards messages: paho's thread appends, the test reads
        self._subscribed = threading.Event()
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.username_pw_set(user, password)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe([(topic, 1) for topic in topics])
        self.client.loop_start()
        assert self._subscribed.wait(5), "the watcher could not subscribe"

    def _on_message(self, client: object, userdata: object, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(
                Message(
                    message.topic,
                    bytes(message.payload),
                    bool(message.retain),
                    message.qos,
                    time.monotonic(),
                )
            )

    def on(self, topic: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def last(self, topic: str) -> Message | None:
        found = self.on(topic)
        return found[-1] if found else None

    def wait_for(
        self, topic: str, payload: str | None = None, timeout: float = 15, after: float = 0.0
    ) -> Message:
        """The newest message on ``topic`` (with ``payload``) that arrived after ``after``."""

        def match() -> Message | None:
            for message in reversed(self.on(topic)):
                if message.at <= after:
                    break
                if payload is None or message.payload == payload.encode():
                    return message
            return None

        wait_until(lambda: match() is not None, timeout, f"{payload!r} on {topic}")
        found = match()
        assert found is not None
        return found

    def wait_count(self, topic: str, count: int, timeout: float = 15) -> list[Message]:
        wait_until(lambda: len(self.on(topic)) >= count, timeout, f"{count} messages on {topic}")
        return self.on(topic)

    def publish(self, topic: str, payload: str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def retained_messages(broker: Mosquitto, topic: str = "#", settle: float = 1.0) -> dict[str, bytes]:
    """What a new subscriber gets at once: the broker's retained messages (empty ones omitted)."""
    watcher = MqttWatcher(broker, (topic,))
    try:
        time.sleep(settle)
        with watcher._lock:
            return {m.topic: m.payload for m in watcher.messages if m.retain and m.payload}
    finally:
        watcher.close()


def rclone_obscure(password: str) -> str:
    result = subprocess.run(
        [require("rclone"), "obscure", password], check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


class RcloneServer:
    """``rclone serve sftp|webdav`` over ``root`` on a fixed free loopback port."""

    def __init__(self, tmp: Path, kind: str, name: str) -> None:
        require("rclone")
        self.kind = kind
        self.name = name  # the remote's name in rclone.conf
        self.root = tmp / f"{name}-root"
        self.root.mkdir()
        self.home = tmp / f"{name}-home"  # rclone serve sftp keeps its host keys under $HOME
        self.home.mkdir()
        self.port = free_port()
        self.log_path = tmp / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "HOME": str(self.home), "XDG_CACHE_HOME": str(self.home / "cache")}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    require("rclone"),
                    "serve",
                    self.kind,
                    str(self.root),
                    f"--addr=127.0.0.1:{self.port}",
                    f"--user={RCLONE_USER}",
                    f"--pass={RCLONE_PASSWORD}",
                    "--config=/dev/null",
                    "-v",
                ],
                stdout=log,
                stderr=log,
                env=env,
            )
        wait_until(self._listening, 20, f"rclone serve {self.kind} listening")

    def _listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"rclone serve {self.kind} exited:\n{self.log()}")
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.process is not None:
            stop_pid(self.process)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def config_section(self) -> str:
        password = rclone_obscure(RCLONE_PASSWORD)
        if self.kind == "webdav":
            return (
                f"[{self.name}]\ntype = webdav\nurl = http://127.0.0.1:{self.port}/\n"
                f"vendor = other\nuser = {RCLONE_USER}\npass = {password}\n"
            )
        return (
            f"[{self.name}]\ntype = sftp\nhost = 127.0.0.1\nport = {self.port}\n"
            f"user = {RCLONE_USER}\npass = {password}\n"
        )

    def files(self) -> dict[str, bytes]:
        """Every file on the server: path relative to its root -> contents."""
        return {
            p.relative_to(self.root).as_posix(): p.read_bytes()
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        }


def write_rclone_config(path: Path, *servers: RcloneServer) -> Path:
    path.write_text("\n".join(s.config_section() for s in servers))
    return path


class MotionScene:
    """Frames for the test camera: a still scene with noise, or a square crossing it (growing
    and shrinking, so the delta changes from frame to frame)."""

    def __init__(self) -> None:
        self.moving = False
        self._still = still_jpegs(30)
        rng = np.random.default_rng(5)
        scene = background(WIDTH, HEIGHT)
        self._moving = [
            encode(with_noise(with_square(scene, 10 + 4 * i, 80, size=30 + 2 * (i % 10)), rng, 3.0))
            for i in range(60)
        ]

    def __call__(self) -> Iterator[bytes]:
        index = 0
        while True:
            frames = self._moving if self.moving else self._still
            yield frames[index % len(frames)]
            index += 1


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (from /proc)."""
    children: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                children.extend(int(c) for c in (task / "children").read_text().split())
    return children
