"""The camera sections of motiond's config as msgspec Structs, with today's error messages
(``file: cameras[0].motion.pixel_threshold: must be 1..255, got 300``)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
import msgspec.inspect
import yaml

from motiond.config import ConfigError
from motiond.units import format_duration, parse_duration, parse_size

Duration = str | int | float  # converted in __post_init__ (msgspec has no per-field parser)


def _seconds(value: Duration, low: float, high: float, key: str) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{key}\0{exc}") from None
    if not low <= seconds <= high:
        reason = f"must be {format_duration(low)}..{format_duration(high)}, got {seconds:g}s"
        raise ValueError(f"{key}\0{reason}")
    return seconds


class Motion(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pixel_threshold: Annotated[int, msgspec.Meta(ge=1, le=255)] = 20
    threshold: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.003
    lightswitch: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.35
    stable_frames: Annotated[int, msgspec.Meta(ge=1, le=10000)] = 20
    min_changed_frames: Annotated[int, msgspec.Meta(ge=1, le=100000)] = 5
    detect_width: Annotated[int, msgspec.Meta(ge=64, le=1920)] = 320
    blur: Annotated[int, msgspec.Meta(ge=0, le=31)] = 5
    warmup: Duration = 1.0
    masks: tuple[tuple[tuple[int, int], ...], ...] = ()

    def __post_init__(self) -> None:
        # Not frozen: a frozen Struct cannot store the converted value (and msgspec has no
        # per-field parser), so durations and sizes are converted here, in place.
        self.warmup = _seconds(self.warmup, 0.0, 60.0, "warmup")
        if self.blur and self.blur % 2 == 0:
            raise ValueError(f"blur\0must be 0 (off) or an odd number, got {self.blur}")
        if self.lightswitch and self.lightswitch <= self.threshold:
            reason = f"must be above threshold ({self.threshold:g}) or 0 to turn it off"
            raise ValueError(f"lightswitch\0{reason}")


class Overlay(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    timestamp: bool = False
    name: bool = False


class Record(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    encoder: Literal["pyav", "opencv"] = "pyav"
    codec: Literal["h264", "vp9"] = "h264"
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = (
        "veryfast"
    )
    crf: Annotated[int, msgspec.Meta(ge=0, le=63)] = 26
    pre_roll: Duration = 2.0
    max_clip: Duration = 600.0
    queue_frames: Annotated[int, msgspec.Meta(ge=4, le=10000)] = 90
    overlay: Overlay = msgspec.field(default_factory=Overlay)
    max_bytes: str | int = 0

    def __post_init__(self) -> None:
        self.pre_roll = _seconds(self.pre_roll, 0.0, 30.0, "pre_roll")
        self.max_clip = _seconds(self.max_clip, 5.0, 86400.0, "max_clip")
        try:
            self.max_bytes = parse_size(self.max_bytes)
        except ValueError as exc:
            raise ValueError(f"max_bytes\0{exc}") from None
        if self.codec == "h264" and self.crf > 51:
            raise ValueError(f"crf\0must be 0..51 for h264, got {self.crf}")
        if self.encoder == "opencv" and self.codec != "h264":
            raise ValueError("codec\0the opencv encoder writes mp4v only; use encoder: pyav")


class Camera(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
    source: str
    motion: Motion = msgspec.field(default_factory=Motion)
    record: Record = msgspec.field(default_factory=Record)


class Document(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    cameras: Annotated[list[Camera], msgspec.Meta(min_length=1)]


# -- errors in motiond's words ---------------------------------------------------------------------

# msgspec says "Expected `int` <= 255 - at `$.cameras[0].motion.pixel_threshold`": one string,
# without the value, so the value is looked up in the document by its path.
_MESSAGE = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_RANGE = re.compile(r"Expected `(?:int|float)` ([<>]=) (\S+)")


def _value_at(document: Any, path: str) -> Any:
    for part in re.findall(r"\.([A-Za-z_]\w*)|\[(\d+)\]", path):
        key, index = part
        try:
            document = document[int(index)] if index else document[key]
        except (KeyError, IndexError, TypeError):
            return None
    return document


def _field_type(path: str) -> Any:
    """msgspec's description of the field at ``path`` (its ge/le bounds, its choices)."""
    info: Any = msgspec.inspect.type_info(Document)
    for name in re.findall(r"[A-Za-z_]\w*", path):
        while isinstance(info, msgspec.inspect.ListType):
            info = info.item_type
        fields = {f.name: f.type for f in getattr(info, "fields", ())}
        if name not in fields:
            return None
        info = fields[name]
    return info


def _reason(what: str, value: Any, path: str) -> str:
    if what.startswith("Object contains unknown field"):
        return "unknown key"
    if _RANGE.match(what):
        info = _field_type(path)
        return f"must be {info.ge:g}..{info.le:g}, got {value:g}"
    if what.startswith("Expected `int`"):
        return f"must be a whole number, got {value!r}"
    if what.startswith("Expected `float`"):
        return f"must be a number, got {value!r}"
    if what.startswith("Expected `bool`"):
        return f"must be true or false, got {value!r}"
    if what.startswith("Invalid enum value"):
        choices = ", ".join(str(v) for v in _field_type(path).values)
        return f"must be one of {choices}, got {value!r}"
    if what.startswith("Expected `str` matching regex"):
        return f"required: 1-64 letters, digits, '-' or '_' (used in file names), got {value!r}"
    if what.startswith("Object missing required field"):
        return "required"
    return what


def parse(text: str, source_path: str = "<string>") -> Document:
    raw = yaml.safe_load(text)
    try:
        return msgspec.convert(raw, Document)
    except msgspec.ValidationError as exc:
        match = _MESSAGE.match(str(exc))
        assert match is not None
        what, path = match["what"], (match["path"] or "").lstrip(".")
        if "\0" in what:  # our own __post_init__ check: it names its key
            key, what = what.split("\0", 1)
            path = f"{path}.{key}" if path else key
            reason = what
        else:
            missing = re.search(r"Object contains unknown field `(\w+)`", what) or re.search(
                r"Object missing required field `(\w+)`", what
            )
            if missing:
                path = f"{path}.{missing[1]}" if path else missing[1]
            reason = _reason(what, _value_at(raw, "." + path), path)
        raise ConfigError(source_path, path.replace(".[", "["), reason) from None
