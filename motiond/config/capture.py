"""``cameras[].source`` and ``cameras[].capture``: where frames come from, and how."""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import Literal

from motiond.config.fields import FieldValues, Invalid, Reading, rule, section, setting

SourceKind = Literal["v4l2", "url", "file", "demo"]
URL_SCHEMES = ("rtsp", "rtsps", "http", "https")


def classify_source(raw: object, reading: Reading) -> FieldValues:
    """A device (``0``, ``/dev/video0``), a URL, a video file, or ``demo``: the source, its
    kind and, for a device given by number, its index."""
    if raw is None:
        raise ValueError("required (a device such as 0 or /dev/video0, a URL, a file, or demo)")
    if isinstance(raw, bool):
        raise ValueError(f"must be a device, URL, file or demo, got {raw!r}")
    if isinstance(raw, int):
        if not 0 <= raw <= 63:
            raise ValueError(f"device index must be 0..63, got {raw}")
        return _found("v4l2", f"/dev/video{raw}", raw)
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"must be a device, URL, file or demo, got {raw!r}")
    text = raw.strip()
    if text == "demo":
        return _found("demo", "demo")
    if text.isdigit():
        return classify_source(int(text), reading)
    scheme_match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", text)
    if scheme_match:
        scheme = scheme_match.group(1).lower()
        if scheme in URL_SCHEMES:
            return _found("url", text)
        if scheme != "file":
            supported = ", ".join(f"{s}://" for s in URL_SCHEMES)
            raise ValueError(f"unknown source scheme {scheme}:// (supported: {supported}, file://)")
        text = text[len("file://") :]
    if text.startswith("/dev/"):
        return _found("v4l2", text)
    path = Path(text) if Path(text).is_absolute() else reading.base / text
    if not path.is_file():
        raise ValueError(f"video file not found: {path}")
    return _found("file", str(path))


def _found(kind: SourceKind, location: str, index: int | None = None) -> FieldValues:
    return FieldValues(source=location, kind=kind, device_index=index)


def _detect_source(raw: object, reading: Reading) -> str | None:
    """A network camera's second, low-resolution stream."""
    if raw is None:
        return None
    if reading.values["kind"] != "url":
        raise ValueError("only for a network camera (its source is an rtsp:// or http:// URL)")
    if not isinstance(raw, str) or not re.match(r"^(rtsps?|https?)://\S+$", raw.strip()):
        raise ValueError(f"must be an rtsp://, rtsps://, http:// or https:// URL, got {raw!r}")
    return raw.strip()


@section
class CaptureConfig:
    """Where frames come from, and how they are captured."""

    source: str = setting(parse=classify_source, in_parent=True)  # beside the camera's name
    kind: SourceKind = setting(derived=True)
    device_index: int | None = setting(default=None, derived=True)
    width: int | None = setting(default=None, ge=16, le=7680)
    height: int | None = setting(default=None, ge=16, le=4320)
    fps: float | None = setting(default=None, ge=0.5, le=240.0)
    mjpeg: bool = True
    open_timeout: float = setting(default=5.0, ge=0.1, le=300.0, unit="duration")
    read_timeout: float = setting(default=5.0, ge=0.1, le=300.0, unit="duration")
    stall_timeout: float = setting(default=5.0, ge=0.5, le=600.0, unit="duration")
    loop: bool = False
    pacing: Literal["realtime", "fast"] = "realtime"
    rotate: Literal[0, 90, 180, 270] = 0
    flip: Literal["none", "horizontal", "vertical", "both"] = "none"
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    # A second, low-resolution stream of the same camera, decoded for detection and live view.
    detect_source: str | None = setting(default=None, parse=_detect_source)


@rule(CaptureConfig)
def _size_in_pairs(capture: CaptureConfig, given: Collection[object]) -> None:
    if (capture.width is None) != (capture.height is None):
        raise Invalid("width", "width and height go together: set both or neither")
