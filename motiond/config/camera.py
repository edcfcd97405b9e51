"""``cameras[]``: one camera, its name, source and sections."""

from __future__ import annotations

from collections.abc import Collection

from motiond.config.capture import CaptureConfig
from motiond.config.fields import Invalid, Reading, rule, section, setting
from motiond.config.hooks import HooksConfig
from motiond.config.motion import MotionConfig
from motiond.config.record import OverlayConfig, RecordConfig
from motiond.store.layout import is_camera_name


def _camera_name(raw: object, reading: Reading) -> str:
    if not isinstance(raw, str) or not is_camera_name(raw):
        raise ValueError(
            f"required: 1-64 letters, digits, '-' or '_' (used in file names), got {raw!r}"
        )
    return raw


@section
class CameraConfig:
    name: str = setting(parse=_camera_name)
    capture: CaptureConfig
    motion: MotionConfig = setting(default_factory=MotionConfig)
    record: RecordConfig = setting(default_factory=RecordConfig)
    hooks: HooksConfig = setting(default_factory=HooksConfig)


@rule(CameraConfig)
def _copy_needs_coded_video(camera: CameraConfig, given: Collection[object]) -> None:
    if camera.record.mode != "copy":
        return
    if camera.capture.kind != "url":
        raise Invalid(
            "record.mode",
            "copy needs a camera that sends coded video (an rtsp:// or http:// video stream); "
            f"this source is {camera.capture.kind}: use auto or transcode",
        )
    if camera.record.overlay != OverlayConfig():
        raise Invalid(
            "record.overlay", "text cannot be burned into copied video: use mode transcode"
        )
