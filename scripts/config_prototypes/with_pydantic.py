"""The camera sections of motiond's config as pydantic v2 models, with today's error messages
(``file: cameras[0].motion.pixel_threshold: must be 1..255, got 300``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from motiond.config import ConfigError
from motiond.units import format_duration, parse_duration, parse_size


def _duration(low: float, high: float) -> Any:
    def check(value: object) -> float:
        seconds = parse_duration(value)
        if not low <= seconds <= high:
            raise ValueError(
                f"must be {format_duration(low)}..{format_duration(high)}, got {seconds:g}s"
            )
        return seconds

    return BeforeValidator(check)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Motion(Model):
    pixel_threshold: Annotated[int, Field(ge=1, le=255)] = 20
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.003
    lightswitch: Annotated[float, Field(ge=0.0, le=1.0)] = 0.35
    stable_frames: Annotated[int, Field(ge=1, le=10000)] = 20
    min_changed_frames: Annotated[int, Field(ge=1, le=100000)] = 5
    detect_width: Annotated[int, Field(ge=64, le=1920)] = 320
    blur: Annotated[int, Field(ge=0, le=31)] = 5
    warmup: Annotated[float, _duration(0.0, 60.0)] = 1.0
    masks: tuple[tuple[tuple[int, int], ...], ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Motion:
        if self.blur and self.blur % 2 == 0:
            raise _Keyed("blur", f"must be 0 (off) or an odd number, got {self.blur}")
        if self.lightswitch and self.lightswitch <= self.threshold:
            raise _Keyed(
                "lightswitch", f"must be above threshold ({self.threshold:g}) or 0 to turn it off"
            )
        return self


class Overlay(Model):
    timestamp: bool = False
    name: bool = False


class Record(Model):
    encoder: Literal["pyav", "opencv"] = "pyav"
    codec: Literal["h264", "vp9"] = "h264"
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = (
        "veryfast"
    )
    crf: Annotated[int, Field(ge=0, le=63)] = 26
    pre_roll: Annotated[float, _duration(0.0, 30.0)] = 2.0
    max_clip: Annotated[float, _duration(5.0, 24 * 3600.0)] = 600.0
    queue_frames: Annotated[int, Field(ge=4, le=10000)] = 90
    overlay: Overlay = Overlay()
    max_bytes: Annotated[int, BeforeValidator(parse_size)] = 0

    @model_validator(mode="after")
    def _consistent(self) -> Record:
        if self.codec == "h264" and self.crf > 51:
            raise _Keyed("crf", f"must be 0..51 for h264, got {self.crf}")
        if self.encoder == "opencv" and self.codec != "h264":
            raise _Keyed("codec", "the opencv encoder writes mp4v only; use encoder: pyav")
        return self


class Camera(Model):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
    source: str
    motion: Motion = Motion()
    record: Record = Record()


class Document(Model):
    cameras: Annotated[list[Camera], Field(min_length=1)]


# -- errors in motiond's words ---------------------------------------------------------------------


class _Keyed(ValueError):
    """A cross-field error that names its key (pydantic would name the whole model)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}\0{reason}")


def _path(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _reason(error: Any, model: type[BaseModel] | None) -> str:
    kind, value, context = error["type"], error.get("input"), error.get("ctx") or {}
    if kind in ("greater_than_equal", "less_than_equal") and model is not None:
        bounds = {type(m).__name__: m for m in model.model_fields[str(error["loc"][-1])].metadata}
        low, high = bounds["Ge"].ge, bounds["Le"].le
        return f"must be {low:g}..{high:g}, got {value:g}"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("int_type", "int_from_float"):
        return f"must be a whole number, got {value!r}"
    if kind in ("float_type",):
        return f"must be a number, got {value!r}"
    if kind == "bool_type":
        return f"must be true or false, got {value!r}"
    if kind == "literal_error":
        return f"must be one of {context['expected'].replace(chr(39), '')}, got {value!r}"
    if kind == "string_pattern_mismatch":
        return f"required: 1-64 letters, digits, '-' or '_' (used in file names), got {value!r}"
    if kind == "missing":
        return "required"
    if kind == "value_error":
        return str(context.get("error", error["msg"]))
    return str(error["msg"])


def _model_at(location: tuple[int | str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Document
    for part in location[:-1]:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation
        inner = getattr(annotation, "__args__", (annotation,))[0]
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return None
        model = inner
    return model


def parse(text: str, source_path: str = "<string>") -> Document:
    try:
        return Document.model_validate(yaml.safe_load(text))
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        location = tuple(error["loc"])
        reason = _reason(error, _model_at(location))
        if "\0" in reason:  # a cross-field check names its own key
            key, reason = reason.split("\0", 1)
            location = (*location, key)
        raise ConfigError(source_path, _path(location), reason) from None
