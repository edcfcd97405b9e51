"""The ``mqtt:`` and ``upload:`` config sections: defaults, motiond.yaml, and bad values (78)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from motiond.cli import EX_CONFIG, main
from motiond.config import (
    ConfigError,
    MqttConfig,
    MqttTlsConfig,
    UploadConfig,
    UploadDestination,
    parse_config,
)
from motiond.redact import REDACTED
from tests.fixtures import REPO
from tests.fixtures.daemon import run_motiond

CAMERAS = "cameras:\n  - {name: door, source: demo}\n  - {name: yard, source: demo}\n"


def parse(text: str, base: Path | None = None) -> object:
    return parse_config(CAMERAS + text, base=base)


def test_no_mqtt_and_no_upload_by_default() -> None:
    config = parse_config(CAMERAS)
    assert config.mqtt is None and config.upload is None


def test_mqtt_defaults_and_tls(tmp_path: Path) -> None:
    config = parse_config(CAMERAS + "mqtt: {host: broker.lan}\n")
    assert config.mqtt == MqttConfig(host="broker.lan")
    assert config.mqtt.port == 1883 and config.mqtt.topic_prefix == "motiond"
    assert config.mqtt.discovery and config.mqtt.discovery_prefix == "homeassistant"
    assert parse_config(CAMERAS + "mqtt: {host: b, tls: true}\n").mqtt == MqttConfig(
        host="b", port=8883, tls=MqttTlsConfig()
    )
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    mqtt = parse_config(
        CAMERAS + "mqtt: {host: b, port: 8884, tls: {ca_file: ca.pem, insecure: true}}\n",
        base=tmp_path,
    ).mqtt
    assert mqtt is not None and mqtt.port == 8884
    assert mqtt.tls == MqttTlsConfig(ca_file=tmp_path / "ca.pem", insecure=True)


def test_mqtt_password_from_a_file_is_never_printed(tmp_path: Path) -> None:
    (tmp_path / "mqtt-password").write_text("s3cret-pass\n")
    config_path = tmp_path / "motiond.yaml"
    config_path.write_text(
        CAMERAS + "mqtt: {host: b, username: motiond, password_file: mqtt-password}\n"
    )
    config = parse_config(config_path.read_text(), base=tmp_path)
    assert config.mqtt is not None and config.mqtt.password == "s3cret-pass"
    assert "s3cret" not in repr(config)
    result = run_motiond(["check-config", "-c", str(config_path)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout
    printed = yaml.safe_load(result.stdout)
    assert printed["mqtt"]["password"] == REDACTED
    # redact.py hides every key named password*, the file's path with it.
    assert printed["mqtt"]["password_file"] == REDACTED
    assert printed["mqtt"]["keepalive"] == "1m"


def test_upload_defaults_and_a_destination(tmp_path: Path) -> None:
    (tmp_path / "rclone.conf").write_text("[b2]\ntype = b2\n")
    config = parse(
        "upload:\n  rclone_config: rclone.conf\n  destinations:\n"
        "    - {remote: 'b2:bucket/cams', cameras: [door], bwlimit: 2M}\n"
        "    - remote: /mnt/usb/cams\n",
        base=tmp_path,
    )
    upload = config.upload  # type: ignore[attr-defined]
    assert upload == UploadConfig(
        destinations=(
            UploadDestination("b2:bucket/cams", ("door",), "2M"),
            UploadDestination("/mnt/usb/cams"),
        ),
        rclone_config=tmp_path / "rclone.conf",
    )
    assert upload.keep_until_uploaded and upload.timeout == 1800 and upload.alert_after == 3600
    assert upload.destinations[0].applies_to("door")
    assert not upload.destinations[0].applies_to("yard")
    assert upload.destinations[1].applies_to("yard")


def test_upload_failed_is_a_hook_event() -> None:
    config = parse_config(
        CAMERAS + "hooks: {on_upload_failed: {command: [/usr/local/bin/alarm, '{remote}']}}\n"
    )
    hook = config.hooks.on_upload_failed
    assert hook is not None and hook.command == ("/usr/local/bin/alarm", "{remote}")


def commented_section(name: str) -> str:
    """The commented-out ``name:`` block of motiond.yaml, uncommented one level."""
    text = (REPO / "motiond.yaml").read_text()
    match = re.search(rf"^#{name}:\n(?:#.*\n)+", text, re.MULTILINE)
    assert match, f"motiond.yaml has no commented {name}: block"
    return "\n".join(line[1:] for line in match.group(0).splitlines()) + "\n"


def test_motiond_yaml_shows_every_mqtt_and_upload_key_with_its_default() -> None:
    mqtt = parse_config(CAMERAS + commented_section("mqtt")).mqtt
    assert mqtt == MqttConfig(host="192.168.1.10")
    upload = parse_config(CAMERAS + commented_section("upload")).upload
    assert upload == UploadConfig(destinations=(UploadDestination("b2:my-bucket/motiond"),))
    text = commented_section("mqtt") + commented_section("upload")
    for cls in (MqttConfig, MqttTlsConfig, UploadConfig, UploadDestination):
        for field in cls.__dataclass_fields__:
            assert f" {field}:" in text, f"motiond.yaml does not show {cls.__name__}.{field}"


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("mqtt: {port: 1883}", "mqtt.host", "required"),
        ("mqtt: {host: b, port: 0}", "mqtt.port", "must be 1..65535"),
        ("mqtt: {host: b, topic_prefix: 'a/#'}", "mqtt.topic_prefix", "wildcards"),
        ("mqtt: {host: b, topic_prefix: 'a//b'}", "mqtt.topic_prefix", "empty levels"),
        ("mqtt: {host: b, discovery_prefix: ''}", "mqtt.discovery_prefix", "topic levels"),
        ("mqtt: {host: b, discovery: yes please}", "mqtt.discovery", "true or false"),
        ("mqtt: {host: b, qos: 2}", "mqtt.qos", "unknown key"),
        ("mqtt: {host: b, password: x}", "mqtt.username", "required with a password"),
        ("mqtt: {host: b, password_file: nope}", "mqtt.password_file", "file not found"),
        ("mqtt: {host: b, tls: {ca_file: nope.pem}}", "mqtt.tls.ca_file", "file not found"),
        ("mqtt: {host: b, tls: {verify: false}}", "mqtt.tls.verify", "unknown key"),
        ("mqtt: {host: b, keepalive: 1s}", "mqtt.keepalive", "must be 5s..1h"),
        ("mqtt: [b]", "mqtt", "must be a mapping"),
        ("upload: {}", "upload.destinations", "required"),
        ("upload: {destinations: []}", "upload.destinations", "at least one"),
        (
            "upload: {destinations: [{remote: '--config=/x'}]}",
            "upload.destinations[0].remote",
            "rclone remote path",
        ),
        (
            "upload: {destinations: [{remote: relative/dir}]}",
            "upload.destinations[0].remote",
            "absolute local path",
        ),
        (
            "upload: {destinations: [{remote: 'b2:x', cameras: [porch]}]}",
            "upload.destinations[0].cameras[0]",
            "no camera named 'porch'",
        ),
        (
            "upload: {destinations: [{remote: 'b2:x', bwlimit: 2MB}]}",
            "upload.destinations[0].bwlimit",
            "must be a rate",
        ),
        (
            "upload: {destinations: [{remote: 'b2:x', bwlimit: '1M; rm -rf /'}]}",
            "upload.destinations[0].bwlimit",
            "must be a rate",
        ),
        (
            "upload: {destinations: [{remote: 'b2:x', speed: 1}]}",
            "upload.destinations[0].speed",
            "unknown key",
        ),
        (
            "upload: {destinations: [{remote: 'b2:x'}, {remote: 'b2:x/'}]}",
            "upload.destinations[1].remote",
            "duplicate",
        ),
        (
            "upload: {destinations: [{remote: 'b2:x'}], rclone: no-such-rclone}",
            "upload.rclone",
            "not found",
        ),
        (
            "upload: {destinations: [{remote: 'b2:x'}], rclone_config: nope.conf}",
            "upload.rclone_config",
            "file not found",
        ),
        (
            "upload: {destinations: [{remote: 'b2:x'}], retry_min: 1m, retry_max: 10s}",
            "upload.retry_max",
            "at least retry_min",
        ),
        (
            "upload: {destinations: [{remote: 'b2:x'}], keep_until_uploaded: 1}",
            "upload.keep_until_uploaded",
            "true or false",
        ),
        (
            "upload: {destinations: [{remote: 'b2:x'}], timeout: 1s}",
            "upload.timeout",
            "must be 10s..1d",
        ),
    ],
)
def test_bad_mqtt_and_upload_config_names_the_key(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(CAMERAS + text + "\n", "motiond.yaml", base=tmp_path)
    assert error.value.key == key and reason in error.value.reason, str(error.value)


def test_a_bad_upload_config_exits_78_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "motiond.yaml"
    path.write_text(CAMERAS + "upload: {destinations: [{remote: 'nas:', cameras: [porch]}]}\n")
    assert main(["run", "-c", str(path)]) == EX_CONFIG
    err = capsys.readouterr().err.strip()
    assert err == (
        f"motiond: config error: {path}: upload.destinations[0].cameras[0]: no camera named 'porch'"
    )
    assert not (tmp_path / "motiond-data").exists()
