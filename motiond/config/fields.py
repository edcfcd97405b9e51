"""Declaring config keys: each key's type, default, bounds and unit once, on its dataclass field.

    @section
    class MotionConfig:
        pixel_threshold: int = setting(default=20, ge=1, le=255)
        warmup: float = setting(default=1.0, ge=0.0, le=60.0, unit="duration")

The field's annotation is its type, ``setting`` holds the rest; the generic reader (reader.py)
and the effective-config dump (dump.py) work from these alone. What is not "a type and its
bounds" is a field's ``check`` (a rule on its value) or ``parse`` (a form of its own, such as a
camera source), or a section's ``@rule`` (a rule across its keys). All of them raise
``ValueError``; ``Invalid`` names a key below the one being read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, dataclass_transform

Unit = Literal["duration", "size"]
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
# A section rule: the section as read and the keys given in its YAML mapping; returns the
# section to use instead, or None to keep it.
Rule = Callable[[Any, Collection[object]], Any]


class Invalid(ValueError):
    """A bad value at ``key``, relative to what is being read: "" is the thing itself, ``[2]``
    an item of its list, ``name`` a key of its mapping."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key


class FieldValues(dict[str, Any]):
    """A ``parse`` result that sets its own field and others marked ``derived``."""


@dataclasses.dataclass(frozen=True)
class Reading:
    """What a ``parse`` sees besides the raw value."""

    key: str  # the key path, for reading a nested section
    base: Path  # the config file's folder: relative paths resolve against it
    values: Mapping[str, Any]  # the fields of this section read so far


@dataclasses.dataclass(frozen=True)
class Spec:
    """How one key is read and shown. See ``setting``."""

    ge: float | None = None
    le: float | None = None
    unit: Unit | None = None
    choices: tuple[object, ...] = ()
    items: str = ""
    check: Callable[[Any], None] | None = None
    parse: Callable[[object, Reading], Any] | None = None
    show: Callable[[Any], object] | None = None
    blank_is_default: bool = False
    in_parent: bool = False
    derived: bool = False
    like: type | None = None


_PLAIN = Spec()
_METADATA_KEY = "motiond.config"
_SECTIONS: list[type] = []
_RULES: dict[type, list[Rule]] = {}


def setting(
    *,
    default: Any = dataclasses.MISSING,
    default_factory: Any = dataclasses.MISSING,
    ge: float | None = None,
    le: float | None = None,
    unit: Unit | None = None,
    choices: tuple[object, ...] = (),
    items: str = "",
    check: Callable[[Any], None] | None = None,
    parse: Callable[[object, Reading], Any] | None = None,
    show: Callable[[Any], object] | None = None,
    secret: bool = False,
    blank_is_default: bool = False,
    in_parent: bool = False,
    derived: bool = False,
    like: type | None = None,
) -> Any:
    """A config key's field: its default and how it is read.

    ``ge``/``le``: bounds (numbers, durations). ``unit``: ``duration`` (``2s``, ``500ms``) or
    ``size`` (``20GB``), read and shown with units. ``choices``: the values allowed (a
    ``Literal`` annotation gives them too). ``items``: a list's message, "must be a list of
    <items>" (or, for a list without a default, "required: a list with at least one <items>").
    ``check``: raises ValueError for a bad value. ``parse``: reads the raw YAML value itself.
    ``show``: its form in the effective config. ``secret``: never shown or in ``repr``.
    ``blank_is_default``: null or "" means the default. ``in_parent``: written in the enclosing
    mapping (a camera's source beside its name). ``derived``: not a key; set by another key's
    ``parse``. ``like``: the bounds and unit of the same key in that section.
    """
    if secret:
        show = _hidden
    spec = Spec(
        ge=ge,
        le=le,
        unit=unit,
        choices=choices,
        items=items,
        check=check,
        parse=parse,
        show=show,
        blank_is_default=blank_is_default,
        in_parent=in_parent,
        derived=derived,
        like=like,
    )
    return dataclasses.field(
        default=default,
        default_factory=default_factory,
        repr=not secret,
        metadata={_METADATA_KEY: spec},
    )


def _hidden(_: object) -> str:
    return "********"


@dataclass_transform(frozen_default=True, field_specifiers=(setting, dataclasses.field))
def section(cls: type[T]) -> type[T]:
    """A config section: a frozen dataclass whose fields are its keys."""
    _SECTIONS.append(cls)
    return dataclasses.dataclass(frozen=True)(cls)


def rule(cls: type[Any]) -> Callable[[F], F]:
    """Register a rule across ``cls``'s keys, run once its keys are read (see ``Rule``)."""

    def register(function: F) -> F:
        _RULES.setdefault(cls, []).append(function)
        return function

    return register


def spec_of(field: dataclasses.Field[Any]) -> Spec:
    spec: Spec = field.metadata.get(_METADATA_KEY, _PLAIN)
    if spec.like is not None:
        day = next(f for f in dataclasses.fields(spec.like) if f.name == field.name)
        return dataclasses.replace(spec_of(day), like=None)
    return spec


def rules_of(cls: type) -> list[Rule]:
    return _RULES.get(cls, [])


def sections() -> tuple[type, ...]:
    """Every config section declared so far."""
    return tuple(_SECTIONS)
