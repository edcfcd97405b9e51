"""Finding, reading and validating the config file (or the embedded demo)."""

from __future__ import annotations

import dataclasses
import os
import ssl
from importlib import resources
from pathlib import Path

import yaml

from motiond.config.mqtt import MqttTlsConfig
from motiond.config.reader import BadKey, read_section
from motiond.config.top import Config

SYSTEM_CONFIG_PATH = Path("/etc/motiond/motiond.yaml")
DEMO_CONFIG_NAME = "demo.yaml"


class ConfigError(Exception):
    """The configuration is unusable. ``str()`` is the one line shown to the user."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source = source
        self.key = key
        self.reason = reason
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + reason)


def parse_config(text: str, source_path: str = "<string>", base: Path | None = None) -> Config:
    """Validate YAML text into a Config. Relative paths resolve against ``base``."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(source_path, "", f"YAML syntax error: {where}{problem}") from None
    try:
        config = read_section(Config, raw, "", base or Path.cwd())
    except BadKey as exc:
        raise ConfigError(source_path, exc.key, exc.reason) from None
    return dataclasses.replace(config, source_path=source_path)


def embedded_demo_text() -> str:
    return resources.files("motiond").joinpath(DEMO_CONFIG_NAME).read_text(encoding="utf-8")


def load_config(path: Path | None) -> Config:
    """Load ``path``; without one, /etc/motiond/motiond.yaml if present, else the embedded demo."""
    if path is None:
        if SYSTEM_CONFIG_PATH.is_file():
            path = SYSTEM_CONFIG_PATH
        else:
            return parse_config(embedded_demo_text(), "<embedded demo config>", Path.cwd())
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "", "config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), "", f"cannot read config file: {exc}") from None
    return parse_config(text, str(path), path.resolve().parent)


def check_storage_writable(config: Config) -> None:
    """Raise ConfigError unless storage.dir is writable or could be created; creates nothing."""
    target = config.storage.dir.absolute()
    probe = target
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ConfigError(config.source_path, "storage.dir", f"{probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "not writable" if probe == target else f"cannot be created ({probe} is not writable)"
        raise ConfigError(config.source_path, "storage.dir", f"{target} is {what}")


def check_startable(config: Config) -> None:
    """What ``run`` needs beyond a valid file, checked the same way by ``check-config``: a
    writable storage.dir and TLS files that load. ConfigError otherwise (the entry point exits
    78 for it, so systemd does not restart in a loop). Not checked: whether web.listen can be
    bound, since at boot a LAN address may come up later (a restart is then the right thing)."""
    check_storage_writable(config)
    web = config.web
    if web.tls_cert is not None and web.tls_key is not None:
        tls_context(web.tls_cert, web.tls_key, config.source_path)
    if config.mqtt is not None and config.mqtt.tls is not None:
        _check_mqtt_tls(config.mqtt.tls, config.source_path)


def _check_mqtt_tls(tls: MqttTlsConfig, source: str) -> None:
    """The broker's CA and the client certificate load (paho would fail at start otherwise)."""
    try:
        context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigError(source, "mqtt.tls.ca_file", f"cannot load {tls.ca_file}: {exc}") from None
    if tls.cert_file is not None:
        try:
            context.load_cert_chain(tls.cert_file, tls.key_file)
        except (OSError, ssl.SSLError, ValueError) as exc:
            where = f"{tls.cert_file}" + (f" with {tls.key_file}" if tls.key_file else "")
            raise ConfigError(source, "mqtt.tls.cert_file", f"cannot load {where}: {exc}") from None


def tls_context(cert: Path, key: Path, source: str = "<config>") -> ssl.SSLContext:
    """The server's TLS context from ``web.tls_cert``/``tls_key``; ConfigError if they do not
    load (missing, unreadable, not a certificate, or a key that does not match)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(source, "web.tls_cert", f"cannot load {cert} with {key}: {exc}") from None
    return context
