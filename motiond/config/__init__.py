"""Typed configuration: loaded and validated once, into frozen objects.

Every error names the file, the key path and the reason, e.g.
``motiond.yaml: cameras[0].motion.pixel_threshold: must be 1..255, got 300``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from motiond.redact import redact_config, redact_url
from motiond.store.layout import is_camera_name
from motiond.units import format_duration, format_size, parse_duration, parse_size

SYSTEM_CONFIG_PATH = Path("/etc/motiond/motiond.yaml")
DEMO_CONFIG_NAME = "demo.yaml"

SourceKind = Literal["v4l2", "url", "file", "demo"]
URL_SCHEMES = ("rtsp", "rtsps", "http", "https")
LOG_LEVELS = ("debug", "info", "warning", "error")
HOOK_EVENTS = (
    "on_clip_start",
    "on_clip_end",
    "on_camera_offline",
    "on_camera_online",
    "on_storage_error",
    "on_upload_failed",
    "on_camera_tampered",
)
MQTT_TOPIC_LEVELS = re.compile(r"^[^/#+\x00]+(?:/[^/#+\x00]+)*$")
# An rclone remote ("name:path") or an absolute local path; never an option ("-...").
RCLONE_REMOTE = re.compile(r"^(?:[A-Za-z0-9_.][A-Za-z0-9_. -]*:|/)")
RCLONE_BWLIMIT = re.compile(r"^(?:off|[0-9]+(?:\.[0-9]+)?(?:[BbKkMmGgTtPp](?:i[Bb]?)?)?)$")


class ConfigError(Exception):
    """The configuration is unusable. ``str()`` is the one line shown to the user."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source = source
        self.key = key
        self.reason = reason
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + reason)


class _KeyError(Exception):
    """Internal: a bad value at ``key`` (a dotted path), turned into ConfigError at the top."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# The typed configuration


@dataclass(frozen=True)
class CaptureConfig:
    """Where frames come from, and how they are captured."""

    source: str
    kind: SourceKind
    device_index: int | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    mjpeg: bool = True
    open_timeout: float = 5.0
    read_timeout: float = 5.0
    stall_timeout: float = 5.0
    loop: bool = False
    pacing: Literal["realtime", "fast"] = "realtime"
    rotate: Literal[0, 90, 180, 270] = 0
    flip: Literal["none", "horizontal", "vertical", "both"] = "none"
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    # A second, low-resolution stream of the same camera, decoded for detection and live view.
    detect_source: str | None = None


@dataclass(frozen=True)
class NightOverrides:
    """``motion`` values used instead while the camera is in night (infrared) mode; None:
    the day's value."""

    pixel_threshold: int | None = None
    threshold: float | None = None
    min_area: float | None = None
    lightswitch: float | None = None
    min_changed_frames: int | None = None


@dataclass(frozen=True)
class MotionConfig:
    """How a frame's change is measured and when a clip starts and stops."""

    pixel_threshold: int = 20
    threshold: float = 0.003
    lightswitch: float = 0.35
    stable_frames: int = 20
    min_changed_frames: int = 5
    detect_width: int = 320
    blur: int = 5
    warmup: float = 1.0
    masks: tuple[tuple[tuple[int, int], ...], ...] = ()
    min_area: float = 0.001
    nuisance: bool = True
    nuisance_learning: float = 120.0
    tamper_after: float = 5.0  # 0: no tamper detection
    night: NightOverrides = field(default_factory=NightOverrides)

    def at_night(self) -> MotionConfig:
        """This config with the night overrides applied."""
        overrides = {
            f.name: getattr(self.night, f.name)
            for f in dataclasses.fields(self.night)
            if getattr(self.night, f.name) is not None
        }
        return dataclasses.replace(self, **overrides) if overrides else self


@dataclass(frozen=True)
class OverlayConfig:
    """Text burned into recorded frames."""

    timestamp: bool = False
    name: bool = False


@dataclass(frozen=True)
class RecordConfig:
    """How clips are encoded."""

    encoder: Literal["pyav", "opencv"] = "pyav"
    codec: Literal["h264", "vp9"] = "h264"
    preset: str = "veryfast"
    crf: int = 26
    pre_roll: float = 2.0
    max_clip: float = 600.0
    queue_frames: int = 90
    overlay: OverlayConfig = field(default_factory=OverlayConfig)
    max_bytes: int = 0  # this camera's share of storage; 0: no limit of its own
    # copy: the camera's own packets; transcode: re-encode; auto: copy what browsers play.
    mode: Literal["auto", "copy", "transcode"] = "auto"
    copy_hevc: bool = False
    audio: bool = False


@dataclass(frozen=True)
class HookConfig:
    """What to do on one event: run a command (no shell) and/or POST JSON to a URL."""

    command: tuple[str, ...] = ()
    url: str | None = None
    timeout: float = 10.0


@dataclass(frozen=True)
class HooksConfig:
    on_clip_start: HookConfig | None = None
    on_clip_end: HookConfig | None = None
    on_camera_offline: HookConfig | None = None
    on_camera_online: HookConfig | None = None
    on_storage_error: HookConfig | None = None
    on_upload_failed: HookConfig | None = None
    on_camera_tampered: HookConfig | None = None

    def for_event(self, event: str) -> HookConfig | None:
        hook: HookConfig | None = getattr(self, event)
        return hook


@dataclass(frozen=True)
class CameraConfig:
    name: str
    capture: CaptureConfig
    motion: MotionConfig = field(default_factory=MotionConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    hooks: HooksConfig = field(default_factory=HooksConfig)


@dataclass(frozen=True)
class FreeSpace:
    """Space to keep free: a size in bytes or a percentage of the filesystem."""

    size: int = 0
    percent: float = 0.0

    def bytes_of(self, total: int) -> int:
        """The bytes to keep free on a filesystem of ``total`` bytes."""
        return round(total * self.percent / 100) if self.percent else self.size

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent else format_size(self.size)


@dataclass(frozen=True)
class StorageConfig:
    """Where clips go and how long they stay (0: no limit); retention deletes oldest first."""

    dir: Path
    max_age: float = 30 * 86400.0
    max_bytes: int = 0
    min_free: FreeSpace = field(default_factory=lambda: FreeSpace(size=1_000_000_000))
    retention_interval: float = 600.0


@dataclass(frozen=True)
class UserConfig:
    name: str
    password_hash: str


@dataclass(frozen=True)
class TokenConfig:
    name: str
    token_hash: str


@dataclass(frozen=True)
class AuthConfig:
    """Who may use the web side. Empty: no auth (only allowed on a loopback address)."""

    users: tuple[UserConfig, ...] = ()
    tokens: tuple[TokenConfig, ...] = ()
    session_lifetime: float = 7 * 86400.0

    @property
    def enabled(self) -> bool:
        return bool(self.users or self.tokens)


@dataclass(frozen=True)
class WebConfig:
    listen: str = "127.0.0.1"
    port: int = 8100
    public_url: str | None = None
    auth: AuthConfig = field(default_factory=AuthConfig)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    trusted_proxies: tuple[str, ...] = ()
    max_viewers_per_camera: int = 64
    max_viewers_per_client: int = 8

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.listen}]" if ":" in self.listen else self.listen
        return f"http://{host}:{self.port}"


@dataclass(frozen=True)
class MqttTlsConfig:
    """TLS to the broker: the CA that signed its certificate (None: the system's CAs), and a
    client certificate for brokers that ask for one."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False  # accept a certificate for another host name (a LAN IP address)


@dataclass(frozen=True)
class MqttConfig:
    """The MQTT broker, the topics and Home Assistant discovery (see mqtt.py)."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # from password or password_file
    password_file: Path | None = None
    tls: MqttTlsConfig | None = None
    client_id: str | None = None  # None: motiond-<hostname>-<topic_prefix>
    topic_prefix: str = "motiond"
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    keepalive: float = 60.0


@dataclass(frozen=True)
class UploadDestination:
    """One place clips are copied to: an rclone remote path."""

    remote: str
    cameras: tuple[str, ...] = ()  # empty: every camera
    bwlimit: str | None = None

    def applies_to(self, camera: str) -> bool:
        return not self.cameras or camera in self.cameras


@dataclass(frozen=True)
class UploadConfig:
    """Off-site copies of clips, posters and sidecars, through rclone (see upload.py)."""

    destinations: tuple[UploadDestination, ...]
    rclone: str = "rclone"
    rclone_config: Path | None = None
    keep_until_uploaded: bool = True
    timeout: float = 1800.0
    retry_min: float = 10.0
    retry_max: float = 600.0
    alert_after: float = 3600.0


@dataclass(frozen=True)
class Config:
    cameras: tuple[CameraConfig, ...]
    storage: StorageConfig
    web: WebConfig = field(default_factory=WebConfig)
    hooks: HooksConfig = field(default_factory=HooksConfig)
    mqtt: MqttConfig | None = None
    upload: UploadConfig | None = None
    log_level: str = "info"
    source_path: str = "<embedded demo>"

    def camera(self, name: str) -> CameraConfig:
        for camera in self.cameras:
            if camera.name == name:
                return camera
        raise KeyError(name)


# ---------------------------------------------------------------------------------------------
# Reading a mapping with key paths


T = TypeVar("T")


class _Section:
    """Reads one YAML mapping; every getter checks type and bounds; ``done()`` rejects extras."""

    def __init__(self, raw: object, path: str) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise _KeyError(path, f"must be a mapping, got {_type_name(raw)}")
        self.raw: Mapping[Any, Any] = raw
        self.path = path
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, default: object = None) -> object:
        self.seen.add(name)
        return self.raw.get(name, default)

    def has(self, name: str) -> bool:
        return name in self.raw

    def convert(self, name: str, default: T, convert: Callable[[object], T]) -> T:
        if not self.has(name):
            self.seen.add(name)
            return default
        try:
            return convert(self.get(name))
        except ValueError as exc:
            raise _KeyError(self.key(name), str(exc)) from None

    def boolean(self, name: str, default: bool) -> bool:
        value = self.get(name, default)
        if not isinstance(value, bool):
            raise _KeyError(self.key(name), f"must be true or false, got {value!r}")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _KeyError(self.key(name), f"must be a whole number, got {value!r}")
        if not low <= value <= high:
            raise _KeyError(self.key(name), f"must be {low}..{high}, got {value}")
        return value

    def size(self, name: str, default: int) -> int:
        return self.convert(name, default, parse_size)

    def optional_integer(self, name: str, low: int, high: int) -> int | None:
        if self.get(name) is None:
            return None
        return self.integer(name, 0, low, high)

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _KeyError(self.key(name), f"must be a number, got {value!r}")
        if not low <= value <= high:
            raise _KeyError(self.key(name), f"must be {low:g}..{high:g}, got {value:g}")
        return float(value)

    def duration(self, name: str, default: float, low: float, high: float) -> float:
        seconds = self.convert(name, default, parse_duration)
        if not low <= seconds <= high:
            raise _KeyError(
                self.key(name),
                f"must be {format_duration(low)}..{format_duration(high)}, got {seconds:g}s",
            )
        return seconds

    def string(self, name: str, default: str | None) -> str | None:
        value = self.get(name, default)
        if value is not None and not isinstance(value, str):
            raise _KeyError(self.key(name), f"must be a string, got {value!r}")
        return value

    def choice(self, name: str, default: T, choices: tuple[T, ...]) -> T:
        value = self.get(name, default)
        if value not in choices:
            listed = ", ".join(str(c) for c in choices)
            raise _KeyError(self.key(name), f"must be one of {listed}, got {value!r}")
        return value

    def section(self, name: str) -> _Section:
        return _Section(self.get(name), self.key(name))

    def done(self) -> None:
        unknown = [str(k) for k in self.raw if k not in self.seen]
        if unknown:
            raise _KeyError(self.key(unknown[0]), "unknown key")


def _type_name(value: object) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


# ---------------------------------------------------------------------------------------------
# Sections


def _read_capture(
    section: _Section, source_key: str, raw_source: object, base: Path
) -> CaptureConfig:
    kind, location, index = _classify_source(source_key, raw_source, base)
    capture = CaptureConfig(
        source=location,
        kind=kind,
        device_index=index,
        width=section.optional_integer("width", 16, 7680),
        height=section.optional_integer("height", 16, 4320),
        fps=(None if section.get("fps") is None else section.number("fps", 15.0, 0.5, 240.0)),
        mjpeg=section.boolean("mjpeg", True),
        open_timeout=section.duration("open_timeout", 5.0, 0.1, 300.0),
        read_timeout=section.duration("read_timeout", 5.0, 0.1, 300.0),
        stall_timeout=section.duration("stall_timeout", 5.0, 0.5, 600.0),
        loop=section.boolean("loop", False),
        pacing=section.choice("pacing", "realtime", ("realtime", "fast")),
        rotate=section.choice("rotate", 0, (0, 90, 180, 270)),
        flip=section.choice("flip", "none", ("none", "horizontal", "vertical", "both")),
        rtsp_transport=section.choice("rtsp_transport", "tcp", ("tcp", "udp")),
        detect_source=_read_detect_source(section, kind),
    )
    section.done()
    if (capture.width is None) != (capture.height is None):
        raise _KeyError(section.key("width"), "width and height go together: set both or neither")
    return capture


def _read_detect_source(section: _Section, kind: SourceKind) -> str | None:
    raw = section.get("detect_source")
    if raw is None:
        return None
    key = section.key("detect_source")
    if kind != "url":
        raise _KeyError(key, "only for a network camera (its source is an rtsp:// or http:// URL)")
    if not isinstance(raw, str) or not re.match(r"^(rtsps?|https?)://\S+$", raw.strip()):
        raise _KeyError(key, f"must be an rtsp://, rtsps://, http:// or https:// URL, got {raw!r}")
    return raw.strip()


def _classify_source(key: str, raw: object, base: Path) -> tuple[SourceKind, str, int | None]:
    if raw is None:
        raise _KeyError(key, "required (a device such as 0 or /dev/video0, a URL, a file, or demo)")
    if isinstance(raw, bool):
        raise _KeyError(key, f"must be a device, URL, file or demo, got {raw!r}")
    if isinstance(raw, int):
        if not 0 <= raw <= 63:
            raise _KeyError(key, f"device index must be 0..63, got {raw}")
        return "v4l2", f"/dev/video{raw}", raw
    if not isinstance(raw, str) or not raw.strip():
        raise _KeyError(key, f"must be a device, URL, file or demo, got {raw!r}")
    text = raw.strip()
    if text == "demo":
        return "demo", "demo", None
    if text.isdigit():
        return _classify_source(key, int(text), base)
    scheme_match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", text)
    if scheme_match:
        scheme = scheme_match.group(1).lower()
        if scheme in URL_SCHEMES:
            return "url", text, None
        if scheme == "file":
            text = text[len("file://") :]
        else:
            supported = ", ".join(f"{s}://" for s in URL_SCHEMES)
            raise _KeyError(
                key, f"unknown source scheme {scheme}:// (supported: {supported}, file://)"
            )
    if text.startswith("/dev/"):
        return "v4l2", text, None
    path = Path(text)
    if not path.is_absolute():
        path = base / path
    if not path.is_file():
        raise _KeyError(key, f"video file not found: {path}")
    return "file", str(path), None


def _read_motion(section: _Section) -> MotionConfig:
    defaults = MotionConfig()
    masks: list[tuple[tuple[int, int], ...]] = []
    raw_masks = section.get("masks", [])
    if not isinstance(raw_masks, list):
        raise _KeyError(section.key("masks"), "must be a list of polygons ([[x, y], ...])")
    for i, polygon in enumerate(raw_masks):
        key = f"{section.key('masks')}[{i}]"
        if not isinstance(polygon, list) or len(polygon) < 3:
            raise _KeyError(key, "must be a polygon of at least 3 [x, y] points")
        points = []
        for j, point in enumerate(polygon):
            ok = (
                isinstance(point, list)
                and len(point) == 2
                and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in point)
            )
            if not ok:
                raise _KeyError(
                    f"{key}[{j}]", f"must be [x, y] in pixels (whole numbers >= 0), got {point!r}"
                )
            points.append((point[0], point[1]))
        masks.append(tuple(points))
    motion = MotionConfig(
        pixel_threshold=section.integer("pixel_threshold", defaults.pixel_threshold, 1, 255),
        threshold=section.number("threshold", defaults.threshold, 0.0, 1.0),
        lightswitch=section.number("lightswitch", defaults.lightswitch, 0.0, 1.0),
        stable_frames=section.integer("stable_frames", defaults.stable_frames, 1, 10000),
        min_changed_frames=section.integer(
            "min_changed_frames", defaults.min_changed_frames, 1, 100000
        ),
        detect_width=section.integer("detect_width", defaults.detect_width, 64, 1920),
        blur=section.integer("blur", defaults.blur, 0, 31),
        warmup=section.duration("warmup", defaults.warmup, 0.0, 60.0),
        masks=tuple(masks),
        min_area=section.number("min_area", defaults.min_area, 0.0, 1.0),
        nuisance=section.boolean("nuisance", defaults.nuisance),
        nuisance_learning=section.duration(
            "nuisance_learning", defaults.nuisance_learning, 10.0, 3600.0
        ),
        tamper_after=section.duration("tamper_after", defaults.tamper_after, 0.0, 600.0),
        night=_read_night(section.section("night")),
    )
    section.done()
    if motion.blur and motion.blur % 2 == 0:
        raise _KeyError(section.key("blur"), f"must be 0 (off) or an odd number, got {motion.blur}")
    if motion.tamper_after and motion.tamper_after < 1.0:
        raise _KeyError(
            section.key("tamper_after"),
            f"must be 0 (off) or at least 1s, got {motion.tamper_after:g}s",
        )
    for config, prefix in ((motion, ""), (motion.at_night(), "night.")):
        if config.lightswitch and config.lightswitch <= config.threshold:
            raise _KeyError(
                section.key(prefix + "lightswitch"),
                f"must be above threshold ({config.threshold:g}) or 0 to turn it off",
            )
    return motion


def _read_night(section: _Section) -> NightOverrides:
    def optional_number(name: str) -> float | None:
        return None if section.get(name) is None else section.number(name, 0.0, 0.0, 1.0)

    night = NightOverrides(
        pixel_threshold=section.optional_integer("pixel_threshold", 1, 255),
        threshold=optional_number("threshold"),
        min_area=optional_number("min_area"),
        lightswitch=optional_number("lightswitch"),
        min_changed_frames=section.optional_integer("min_changed_frames", 1, 100000),
    )
    section.done()
    return night


def _read_record(section: _Section) -> RecordConfig:
    defaults = RecordConfig()
    overlay_section = section.section("overlay")
    overlay = OverlayConfig(
        timestamp=overlay_section.boolean("timestamp", False),
        name=overlay_section.boolean("name", False),
    )
    overlay_section.done()
    record = RecordConfig(
        encoder=section.choice("encoder", defaults.encoder, ("pyav", "opencv")),
        codec=section.choice("codec", defaults.codec, ("h264", "vp9")),
        preset=section.choice(
            "preset",
            defaults.preset,
            ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"),
        ),
        crf=section.integer("crf", defaults.crf, 0, 63),
        pre_roll=section.duration("pre_roll", defaults.pre_roll, 0.0, 30.0),
        max_clip=section.duration("max_clip", defaults.max_clip, 5.0, 24 * 3600.0),
        queue_frames=section.integer("queue_frames", defaults.queue_frames, 4, 10000),
        overlay=overlay,
        max_bytes=section.size("max_bytes", defaults.max_bytes),
        mode=section.choice("mode", defaults.mode, ("auto", "copy", "transcode")),
        copy_hevc=section.boolean("copy_hevc", defaults.copy_hevc),
        audio=section.boolean("audio", defaults.audio),
    )
    section.done()
    if record.codec == "h264" and record.crf > 51:
        raise _KeyError(section.key("crf"), f"must be 0..51 for h264, got {record.crf}")
    if record.encoder == "opencv" and record.codec != "h264":
        raise _KeyError(
            section.key("codec"), "the opencv encoder writes mp4v only; use encoder: pyav"
        )
    return record


def _read_hooks(section: _Section) -> HooksConfig:
    hooks: dict[str, HookConfig | None] = {}
    for event in HOOK_EVENTS:
        if section.get(event) is None:
            hooks[event] = None
            continue
        hook_section = section.section(event)
        raw_command = hook_section.get("command", [])
        if isinstance(raw_command, str):
            raw_command = [raw_command]
        if not isinstance(raw_command, list) or not all(isinstance(a, str) for a in raw_command):
            raise _KeyError(hook_section.key("command"), "must be a list of strings (no shell)")
        url = hook_section.string("url", None)
        if url is not None and not re.match(r"^https?://", url):
            raise _KeyError(
                hook_section.key("url"),
                f"must be an http:// or https:// URL, got {redact_url(url)!r}",
            )
        hook = HookConfig(
            command=tuple(raw_command),
            url=url,
            timeout=hook_section.duration("timeout", 10.0, 0.1, 3600.0),
        )
        hook_section.done()
        if not hook.command and hook.url is None:
            raise _KeyError(hook_section.path, "needs a command, a url, or both")
        hooks[event] = hook
    section.done()
    return HooksConfig(**hooks)


def _read_camera(raw: object, path: str, base: Path) -> CameraConfig:
    section = _Section(raw, path)
    name = section.get("name")
    if not isinstance(name, str) or not is_camera_name(name):
        raise _KeyError(
            section.key("name"),
            f"required: 1-64 letters, digits, '-' or '_' (used in file names), got {name!r}",
        )
    raw_source = section.get("source")
    capture = _read_capture(section.section("capture"), section.key("source"), raw_source, base)
    camera = CameraConfig(
        name=name,
        capture=capture,
        motion=_read_motion(section.section("motion")),
        record=_read_record(section.section("record")),
        hooks=_read_hooks(section.section("hooks")),
    )
    section.done()
    if camera.record.mode == "copy" and capture.kind != "url":
        raise _KeyError(
            f"{path}.record.mode",
            "copy needs a camera that sends coded video (an rtsp:// or http:// video stream); "
            f"this source is {capture.kind}: use auto or transcode",
        )
    if camera.record.mode == "copy" and camera.record.overlay != OverlayConfig():
        raise _KeyError(
            f"{path}.record.overlay", "text cannot be burned into copied video: use mode transcode"
        )
    return camera


LOOPBACK_ADDRESSES = ("127.0.0.1", "::1", "localhost")
AUTH_HOWTO = (
    "listening on {listen} needs web.auth: add a user with a hash from "
    "`motiond hash-password` (web.auth.users: [{{name: me, password_hash: ...}}]) "
    "or a token from `motiond new-token`, or listen on 127.0.0.1 behind a reverse proxy"
)


def _read_auth(section: _Section) -> AuthConfig:
    users = []
    raw_users = section.get("users", [])
    if not isinstance(raw_users, list):
        raise _KeyError(section.key("users"), "must be a list of {name, password_hash}")
    for i, raw in enumerate(raw_users):
        user = _Section(raw, f"{section.key('users')}[{i}]")
        name = user.string("name", None)
        password_hash = user.string("password_hash", None)
        user.done()
        if not name:
            raise _KeyError(user.key("name"), "required")
        if not password_hash or not password_hash.startswith("scrypt$"):
            raise _KeyError(
                user.key("password_hash"), "required: a hash made by `motiond hash-password`"
            )
        users.append(UserConfig(name, password_hash))
    tokens = []
    raw_tokens = section.get("tokens", [])
    if not isinstance(raw_tokens, list):
        raise _KeyError(section.key("tokens"), "must be a list of {name, token_hash}")
    for i, raw in enumerate(raw_tokens):
        token = _Section(raw, f"{section.key('tokens')}[{i}]")
        name = token.string("name", None)
        token_hash = token.string("token_hash", None)
        token.done()
        if not name:
            raise _KeyError(token.key("name"), "required")
        if not token_hash or not re.match(r"^sha256\$[0-9a-f]{64}$", token_hash):
            raise _KeyError(token.key("token_hash"), "required: a hash made by `motiond new-token`")
        tokens.append(TokenConfig(name, token_hash))
    auth = AuthConfig(
        users=tuple(users),
        tokens=tuple(tokens),
        session_lifetime=section.duration("session_lifetime", 7 * 86400.0, 60.0, 365 * 86400.0),
    )
    section.done()
    return auth


def _read_web(section: _Section, base: Path) -> WebConfig:
    def optional_path(name: str) -> Path | None:
        value = section.string(name, None)
        if value is None:
            return None
        path = Path(value) if Path(value).is_absolute() else base / value
        if not path.is_file():
            raise _KeyError(section.key(name), f"file not found: {path}")
        return path

    raw_proxies = section.get("trusted_proxies", [])
    if not isinstance(raw_proxies, list) or not all(isinstance(p, str) for p in raw_proxies):
        raise _KeyError(section.key("trusted_proxies"), "must be a list of IP addresses")
    web = WebConfig(
        listen=section.string("listen", "127.0.0.1") or "127.0.0.1",
        port=section.integer("port", 8100, 0, 65535),
        public_url=section.string("public_url", None),
        auth=_read_auth(section.section("auth")),
        tls_cert=optional_path("tls_cert"),
        tls_key=optional_path("tls_key"),
        trusted_proxies=tuple(raw_proxies),
        max_viewers_per_camera=section.integer("max_viewers_per_camera", 64, 1, 10000),
        max_viewers_per_client=section.integer("max_viewers_per_client", 8, 1, 10000),
    )
    section.done()
    if (web.tls_cert is None) != (web.tls_key is None):
        raise _KeyError(section.key("tls_cert"), "tls_cert and tls_key go together")
    if web.listen not in LOOPBACK_ADDRESSES and not web.auth.enabled:
        raise _KeyError(section.key("listen"), AUTH_HOWTO.format(listen=web.listen))
    return web


def _config_file(section: _Section, name: str, base: Path) -> Path | None:
    """An optional path to an existing file, relative to the config file's folder."""
    value = section.string(name, None)
    if value is None:
        return None
    path = Path(value) if Path(value).is_absolute() else base / value
    if not path.is_file():
        raise _KeyError(section.key(name), f"file not found: {path}")
    return path


def _topic_prefix(section: _Section, name: str, default: str) -> str:
    value = section.string(name, default)
    if not value or not MQTT_TOPIC_LEVELS.match(value):
        raise _KeyError(
            section.key(name),
            f"must be MQTT topic levels without wildcards or empty levels (motiond, "
            f"home/cameras), got {value!r}",
        )
    return value


def _read_mqtt_tls(section: _Section, base: Path) -> MqttTlsConfig | None:
    raw = section.get("tls")
    if raw is None or raw is False:
        return None
    if raw is True:
        return MqttTlsConfig()
    tls_section = section.section("tls")
    tls = MqttTlsConfig(
        ca_file=_config_file(tls_section, "ca_file", base),
        cert_file=_config_file(tls_section, "cert_file", base),
        key_file=_config_file(tls_section, "key_file", base),
        insecure=tls_section.boolean("insecure", False),
    )
    tls_section.done()
    if tls.key_file is not None and tls.cert_file is None:
        raise _KeyError(tls_section.key("key_file"), "needs cert_file (the client certificate)")
    return tls


def _read_mqtt(section: _Section, base: Path) -> MqttConfig:
    host = section.string("host", None)
    if not host:
        raise _KeyError(section.key("host"), "required: the broker's host name or IP address")
    tls = _read_mqtt_tls(section, base)
    password = section.string("password", None)
    password_file = _config_file(section, "password_file", base)
    if password is not None and password_file is not None:
        raise _KeyError(section.key("password_file"), "set password or password_file, not both")
    if password_file is not None:
        try:
            password = password_file.read_text(encoding="utf-8").strip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise _KeyError(section.key("password_file"), f"cannot read: {exc}") from None
    client_id = section.string("client_id", None)
    if client_id is not None and not 1 <= len(client_id) <= 128:
        raise _KeyError(section.key("client_id"), "must be 1..128 characters")
    mqtt = MqttConfig(
        host=host,
        port=section.integer("port", 8883 if tls else 1883, 1, 65535),
        username=section.string("username", None),
        password=password,
        password_file=password_file,
        tls=tls,
        client_id=client_id,
        topic_prefix=_topic_prefix(section, "topic_prefix", "motiond"),
        discovery=section.boolean("discovery", True),
        discovery_prefix=_topic_prefix(section, "discovery_prefix", "homeassistant"),
        keepalive=section.duration("keepalive", 60.0, 5.0, 3600.0),
    )
    section.done()
    if mqtt.password is not None and mqtt.username is None:
        raise _KeyError(section.key("username"), "required with a password")
    return mqtt


def _read_destination(raw: object, path: str, camera_names: tuple[str, ...]) -> UploadDestination:
    section = _Section(raw, path)
    remote = section.string("remote", None)
    if not remote or not RCLONE_REMOTE.match(remote):
        raise _KeyError(
            section.key("remote"),
            f"required: an rclone remote path (b2:bucket/motiond, nas:/volume1/cameras) or an "
            f"absolute local path, got {remote!r}",
        )
    raw_cameras = section.get("cameras", [])
    if not isinstance(raw_cameras, list) or not all(isinstance(c, str) for c in raw_cameras):
        raise _KeyError(section.key("cameras"), "must be a list of camera names")
    for i, name in enumerate(raw_cameras):
        if name not in camera_names:
            raise _KeyError(f"{section.key('cameras')}[{i}]", f"no camera named {name!r}")
    bwlimit = section.get("bwlimit")
    if bwlimit is not None:
        bwlimit = str(bwlimit)
        if not RCLONE_BWLIMIT.match(bwlimit):
            raise _KeyError(
                section.key("bwlimit"),
                f"must be a rate in bytes per second such as 512k, 2M or 1.5M, got {bwlimit!r}",
            )
    destination = UploadDestination(remote=remote, cameras=tuple(raw_cameras), bwlimit=bwlimit)
    section.done()
    return destination


def _read_upload(section: _Section, base: Path, camera_names: tuple[str, ...]) -> UploadConfig:
    defaults = UploadConfig(destinations=())
    raw_destinations = section.get("destinations")
    if not isinstance(raw_destinations, list) or not raw_destinations:
        raise _KeyError(
            section.key("destinations"),
            "required: a list with at least one {remote: ...} (an rclone remote path)",
        )
    destinations = tuple(
        _read_destination(raw, f"{section.key('destinations')}[{i}]", camera_names)
        for i, raw in enumerate(raw_destinations)
    )
    remotes = [d.remote.rstrip("/") for d in destinations]
    for i, remote in enumerate(remotes):
        if remote in remotes[:i]:
            raise _KeyError(f"{section.key('destinations')}[{i}].remote", "duplicate remote")
    rclone = section.string("rclone", defaults.rclone) or defaults.rclone
    if shutil.which(rclone) is None:
        raise _KeyError(
            section.key("rclone"),
            f"{rclone!r} not found: install rclone (Debian: apt-get install rclone) or set "
            f"upload.rclone to its path",
        )
    upload = UploadConfig(
        destinations=destinations,
        rclone=rclone,
        rclone_config=_config_file(section, "rclone_config", base),
        keep_until_uploaded=section.boolean("keep_until_uploaded", defaults.keep_until_uploaded),
        timeout=section.duration("timeout", defaults.timeout, 10.0, 24 * 3600.0),
        retry_min=section.duration("retry_min", defaults.retry_min, 0.1, 3600.0),
        retry_max=section.duration("retry_max", defaults.retry_max, 0.1, 24 * 3600.0),
        alert_after=section.duration("alert_after", defaults.alert_after, 1.0, 30 * 86400.0),
    )
    section.done()
    if upload.retry_max < upload.retry_min:
        raise _KeyError(
            section.key("retry_max"), f"must be at least retry_min ({upload.retry_min:g}s)"
        )
    return upload


def default_storage_dir() -> Path:
    """``$STATE_DIRECTORY`` when systemd sets it (first entry), else ``./motiond-data``."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    return Path("motiond-data")


def _parse_free_space(value: object) -> FreeSpace:
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            percent = float(value.strip()[:-1])
        except ValueError:
            raise ValueError(
                f"expected a size such as 1GB or a percentage such as 5%, got {value!r}"
            ) from None
        if not 0 <= percent <= 50:
            raise ValueError(f"a percentage must be 0%..50%, got {value!r}")
        return FreeSpace(percent=percent)
    return FreeSpace(size=parse_size(value))


def _read_storage(section: _Section, base: Path) -> StorageConfig:
    defaults = StorageConfig(dir=Path())
    storage_dir = section.string("dir", None)
    directory = Path(storage_dir) if storage_dir else default_storage_dir()
    if storage_dir and not directory.is_absolute():
        directory = base / directory
    storage = StorageConfig(
        dir=directory,
        max_age=section.duration("max_age", defaults.max_age, 0.0, 100 * 365 * 86400.0),
        max_bytes=section.size("max_bytes", defaults.max_bytes),
        min_free=section.convert("min_free", defaults.min_free, _parse_free_space),
        retention_interval=section.duration(
            "retention_interval", defaults.retention_interval, 10.0, 86400.0
        ),
    )
    section.done()
    if storage.max_age and storage.max_age < 3600:
        raise _KeyError(
            section.key("max_age"), f"must be 0 (off) or at least 1h, got {storage.max_age:g}s"
        )
    return storage


def _read_config(raw: object, base: Path, source_path: str) -> Config:
    top = _Section(raw, "")
    log_level = top.choice("log_level", "info", LOG_LEVELS)

    storage = _read_storage(top.section("storage"), base)

    web = _read_web(top.section("web"), base)

    hooks = _read_hooks(top.section("hooks"))

    raw_cameras = top.get("cameras")
    if not isinstance(raw_cameras, list) or not raw_cameras:
        raise _KeyError("cameras", "required: a list with at least one camera")
    cameras = tuple(_read_camera(c, f"cameras[{i}]", base) for i, c in enumerate(raw_cameras))
    names = [c.name for c in cameras]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise _KeyError(f"cameras[{i}].name", f"duplicate camera name {name!r}")
    mqtt = _read_mqtt(top.section("mqtt"), base) if top.get("mqtt") is not None else None
    upload = (
        _read_upload(top.section("upload"), base, tuple(names))
        if top.get("upload") is not None
        else None
    )
    top.done()
    return Config(
        cameras=cameras,
        storage=storage,
        web=web,
        hooks=hooks,
        mqtt=mqtt,
        upload=upload,
        log_level=log_level,
        source_path=source_path,
    )


# ---------------------------------------------------------------------------------------------
# Loading


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
        return _read_config(raw, base or Path.cwd(), source_path)
    except _KeyError as exc:
        raise ConfigError(source_path, exc.key, exc.reason) from None


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


# ---------------------------------------------------------------------------------------------
# Printing the effective config


def effective_config(config: Config) -> dict[str, Any]:
    """The config as plain YAML-able data, durations with units (for ``check-config``)."""

    def convert(value: object, name: str = "") -> object:
        if name == "password" and value is not None:
            return "********"  # never printed
        if isinstance(value, FreeSpace):
            return str(value)
        if isinstance(value, int) and name in _SIZE_FIELDS:
            return format_size(value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {
                f.name: convert(getattr(value, f.name), f.name)
                for f in dataclasses.fields(value)
                if f.name not in ("source_path", "kind", "device_index")
            }
        if isinstance(value, tuple):
            return [convert(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, float) and name in _DURATION_FIELDS:
            return format_duration(value)
        return value

    data = convert(config)
    assert isinstance(data, dict)
    # Print cameras in the shape users write them: the source beside the name.
    for camera in data["cameras"]:
        capture = camera.pop("capture")
        camera_items = list(camera.items())
        camera.clear()
        camera.update(camera_items[:1])
        camera["source"] = capture.pop("source")
        camera["capture"] = capture
        camera.update(camera_items[1:])
    return data


_DURATION_FIELDS = frozenset(
    {
        "open_timeout",
        "read_timeout",
        "stall_timeout",
        "warmup",
        "pre_roll",
        "max_clip",
        "timeout",
        "session_lifetime",
        "max_age",
        "retention_interval",
        "keepalive",
        "retry_min",
        "retry_max",
        "alert_after",
        "nuisance_learning",
        "tamper_after",
    }
)
_SIZE_FIELDS = frozenset({"max_bytes"})


def dump_effective_config(config: Config) -> str:
    """The effective config as YAML, with its secrets (passwords in URLs, hashes) hidden."""
    header = f"# effective configuration from {config.source_path} (secrets hidden)\n"
    return header + yaml.safe_dump(redact_config(effective_config(config)), sort_keys=False)


__all__ = [
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
    "StorageConfig",
    "UploadConfig",
    "UploadDestination",
    "WebConfig",
    "check_storage_writable",
    "dump_effective_config",
    "load_config",
    "parse_config",
    "parse_size",
]
