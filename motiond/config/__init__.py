"""Typed configuration: loaded and validated once, into frozen objects.

Every error names the file, the key path and the reason, e.g.
``motiond.yaml: cameras[0].motion.pixel_threshold: must be 1..255, got 300``.

One module per section declares its keys once, as dataclass fields with their type, default,
bounds and unit (fields.py); reader.py reads any section from them, dump.py prints them back.
"""

from __future__ import annotations

from motiond.config.camera import CameraConfig
from motiond.config.capture import URL_SCHEMES, CaptureConfig, SourceKind
from motiond.config.dump import dump_effective_config, effective_config
from motiond.config.hooks import HOOK_EVENTS, HookConfig, HooksConfig
from motiond.config.load import (
    DEMO_CONFIG_NAME,
    SYSTEM_CONFIG_PATH,
    ConfigError,
    check_storage_writable,
    embedded_demo_text,
    load_config,
    parse_config,
)
from motiond.config.motion import MotionConfig, NightOverrides
from motiond.config.mqtt import MQTT_TOPIC_LEVELS, MqttConfig, MqttTlsConfig
from motiond.config.record import OverlayConfig, RecordConfig
from motiond.config.storage import FreeSpace, StorageConfig, default_storage_dir
from motiond.config.top import LOG_LEVELS, Config
from motiond.config.upload import RCLONE_BWLIMIT, RCLONE_REMOTE, UploadConfig, UploadDestination
from motiond.config.web import (
    AUTH_HOWTO,
    LOOPBACK_ADDRESSES,
    AuthConfig,
    TokenConfig,
    UserConfig,
    WebConfig,
)
from motiond.units import parse_size

__all__ = [
    "AUTH_HOWTO",
    "DEMO_CONFIG_NAME",
    "HOOK_EVENTS",
    "LOG_LEVELS",
    "LOOPBACK_ADDRESSES",
    "MQTT_TOPIC_LEVELS",
    "RCLONE_BWLIMIT",
    "RCLONE_REMOTE",
    "SYSTEM_CONFIG_PATH",
    "URL_SCHEMES",
    "AuthConfig",
    "CameraConfig",
    "CaptureConfig",
    "Config",
    "ConfigError",
    "FreeSpace",
    "HookConfig",
    "HooksConfig",
    "MotionConfig",
    "MqttConfig",
    "MqttTlsConfig",
    "NightOverrides",
    "OverlayConfig",
    "RecordConfig",
    "SourceKind",
    "StorageConfig",
    "TokenConfig",
    "UploadConfig",
    "UploadDestination",
    "UserConfig",
    "WebConfig",
    "check_storage_writable",
    "default_storage_dir",
    "dump_effective_config",
    "effective_config",
    "embedded_demo_text",
    "load_config",
    "parse_config",
    "parse_size",
]
