"""``cameras[].record``: how clips are encoded."""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from motiond.config.fields import Invalid, rule, section, setting

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow")


@section
class OverlayConfig:
    """Text burned into recorded frames."""

    timestamp: bool = False
    name: bool = False


@section
class RecordConfig:
    """How clips are encoded."""

    encoder: Literal["pyav", "opencv"] = "pyav"
    codec: Literal["h264", "vp9"] = "h264"
    preset: str = setting(default="veryfast", choices=X264_PRESETS)
    crf: int = setting(default=26, ge=0, le=63)
    pre_roll: float = setting(default=2.0, ge=0.0, le=30.0, unit="duration")
    max_clip: float = setting(default=600.0, ge=5.0, le=24 * 3600.0, unit="duration")
    queue_frames: int = setting(default=90, ge=4, le=10000)
    overlay: OverlayConfig = setting(default_factory=OverlayConfig)
    # this camera's share of storage; 0: no limit of its own
    max_bytes: int = setting(default=0, unit="size")
    # copy: the camera's own packets; transcode: re-encode; auto: copy what browsers play.
    mode: Literal["auto", "copy", "transcode"] = "auto"
    copy_hevc: bool = False
    audio: bool = False
    # record the stream all the time too, in segments of ``segment`` (docs/continuous.md)
    continuous: bool = False
    segment: float = setting(default=600.0, ge=10.0, le=24 * 3600.0, unit="duration")


@rule(RecordConfig)
def _codec_limits(record: RecordConfig, given: Collection[object]) -> None:
    if record.codec == "h264" and record.crf > 51:
        raise Invalid("crf", f"must be 0..51 for h264, got {record.crf}")
    if record.encoder == "opencv" and record.codec != "h264":
        raise Invalid("codec", "the opencv encoder writes mp4v only; use encoder: pyav")
