"""The whole file: its top-level keys, and the rules across sections."""

from __future__ import annotations

from collections.abc import Collection

from motiond.config.camera import CameraConfig
from motiond.config.fields import Invalid, rule, section, setting
from motiond.config.hooks import HooksConfig
from motiond.config.mqtt import MqttConfig
from motiond.config.storage import StorageConfig
from motiond.config.upload import UploadConfig
from motiond.config.web import WebConfig

LOG_LEVELS = ("debug", "info", "warning", "error")


@section
class Config:
    cameras: tuple[CameraConfig, ...] = setting(items="camera")
    storage: StorageConfig
    web: WebConfig = setting(default_factory=WebConfig)
    hooks: HooksConfig = setting(default_factory=HooksConfig)
    mqtt: MqttConfig | None = None
    upload: UploadConfig | None = None
    log_level: str = setting(default="info", choices=LOG_LEVELS)
    source_path: str = setting(default="<embedded demo>", derived=True)

    def camera(self, name: str) -> CameraConfig:
        for camera in self.cameras:
            if camera.name == name:
                return camera
        raise KeyError(name)


@rule(Config)
def _cameras_named_once(config: Config, given: Collection[object]) -> None:
    names = [c.name for c in config.cameras]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise Invalid(f"cameras[{i}].name", f"duplicate camera name {name!r}")
    destinations = config.upload.destinations if config.upload else ()
    for i, destination in enumerate(destinations):
        for j, camera in enumerate(destination.cameras):
            if camera not in names:
                key = f"upload.destinations[{i}].cameras[{j}]"
                raise Invalid(key, f"no camera named {camera!r}")
