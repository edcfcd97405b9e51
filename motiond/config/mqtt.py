"""``mqtt``: the broker, the topics and Home Assistant discovery (see notify/mqtt.py)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection
from pathlib import Path

from motiond.config.fields import Invalid, Reading, rule, section, setting
from motiond.config.reader import read_section

MQTT_TOPIC_LEVELS = re.compile(r"^[^/#+\x00]+(?:/[^/#+\x00]+)*$")


@section
class MqttTlsConfig:
    """TLS to the broker: the CA that signed its certificate (None: the system's CAs), and a
    client certificate for brokers that ask for one."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False  # accept a certificate for another host name (a LAN IP address)


@rule(MqttTlsConfig)
def _key_with_certificate(tls: MqttTlsConfig, given: Collection[object]) -> None:
    if tls.key_file is not None and tls.cert_file is None:
        raise Invalid("key_file", "needs cert_file (the client certificate)")


def _tls(raw: object, reading: Reading) -> MqttTlsConfig | None:
    """``true`` (the system's CAs), a mapping of files, or null or ``false`` (no TLS)."""
    if raw is None or raw is False:
        return None
    if raw is True:
        return MqttTlsConfig()
    return read_section(MqttTlsConfig, raw, reading.key, reading.base)


def _broker(host: str | None) -> None:
    if not host:
        raise ValueError("required: the broker's host name or IP address")


def _client_id(client_id: str) -> None:
    if not 1 <= len(client_id) <= 128:
        raise ValueError("must be 1..128 characters")


def _topic_levels(value: str | None) -> None:
    if not value or not MQTT_TOPIC_LEVELS.match(value):
        raise ValueError(
            f"must be MQTT topic levels without wildcards or empty levels (motiond, "
            f"home/cameras), got {value!r}"
        )


@section
class MqttConfig:
    """The MQTT broker, the topics and Home Assistant discovery (see notify/mqtt.py)."""

    host: str = setting(check=_broker)
    port: int = setting(default=1883, ge=1, le=65535)  # 8883 when tls is on
    username: str | None = None
    password: str | None = setting(default=None, secret=True)  # from password or password_file
    password_file: Path | None = None
    tls: MqttTlsConfig | None = setting(default=None, parse=_tls)
    # None: motiond-<hostname>-<topic_prefix>
    client_id: str | None = setting(default=None, check=_client_id)
    topic_prefix: str = setting(default="motiond", check=_topic_levels)
    discovery: bool = True
    discovery_prefix: str = setting(default="homeassistant", check=_topic_levels)
    keepalive: float = setting(default=60.0, ge=5.0, le=3600.0, unit="duration")


def _password_from_file(mqtt: MqttConfig, path: Path) -> str:
    if mqtt.password is not None:
        raise ValueError("set password or password_file, not both")
    try:
        return path.read_text(encoding="utf-8").strip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read: {exc}") from None


@rule(MqttConfig)
def _password_and_port(mqtt: MqttConfig, given: Collection[object]) -> MqttConfig:
    if mqtt.password_file is not None:
        try:
            mqtt = dataclasses.replace(mqtt, password=_password_from_file(mqtt, mqtt.password_file))
        except ValueError as exc:
            raise Invalid("password_file", str(exc)) from None
    if mqtt.tls is not None and "port" not in given:
        mqtt = dataclasses.replace(mqtt, port=8883)
    if mqtt.password is not None and mqtt.username is None:
        raise Invalid("username", "required with a password")
    return mqtt
