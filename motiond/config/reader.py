"""The generic reader: a YAML mapping into a section's dataclass, by its fields' settings.

Keys are read in the order their fields are declared and the first bad value stops the read,
naming its key path (``cameras[0].motion.pixel_threshold``); then keys the section does not
declare are rejected; then the section's rules run.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeGuard, TypeVar

from motiond.config.fields import FieldValues, Reading, Spec, rules_of, spec_of
from motiond.units import format_duration, parse_duration, parse_size

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

S = TypeVar("S", bound="DataclassInstance")


class BadKey(Exception):
    """A bad value at ``key``, a full key path (load.py turns it into a ConfigError)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


def join(path: str, key: str) -> str:
    """``path`` with ``key`` below it: ``a.b`` + ``c`` is ``a.b.c``, + ``[0]`` is ``a.b[0]``."""
    if not key:
        return path
    if not path or key.startswith("["):
        return path + key
    return f"{path}.{key}"


class _Mapping:
    """One YAML mapping being read: its key path and the keys taken so far."""

    def __init__(self, raw: object, path: str) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise BadKey(path, f"must be a mapping, got {_type_name(raw)}")
        self.raw: Mapping[object, object] = raw
        self.path = path
        self.taken: set[object] = set()

    def key(self, name: str) -> str:
        return join(self.path, name)

    def take(self, name: str) -> tuple[bool, object]:
        """Whether ``name`` is given, and its value (None if not)."""
        self.taken.add(name)
        return name in self.raw, self.raw.get(name)

    def reject_unknown(self) -> None:
        for name in self.raw:
            if name not in self.taken:
                raise BadKey(self.key(str(name)), "unknown key")


def _type_name(value: object) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def read_section(
    cls: type[S], raw: object, path: str, base: Path, parent: _Mapping | None = None
) -> S:
    """``raw`` (a YAML mapping, or None for all defaults) read into ``cls``. ``parent``: the
    mapping that holds this one, where ``in_parent`` keys are written."""
    mapping = _Mapping(raw, path)
    values: dict[str, Any] = {}
    for key in _keys(cls):
        holder = parent if key.spec.in_parent and parent is not None else mapping
        value = _read_key(key, holder, Reading(holder.key(key.name), base, values), mapping)
        if isinstance(value, FieldValues):
            values.update(value)
        else:
            values[key.name] = value
    mapping.reject_unknown()
    result = cls(**values)
    for each_rule in rules_of(cls):
        try:
            replaced = each_rule(result, mapping.raw.keys())
        except ValueError as exc:
            raise BadKey(join(path, getattr(exc, "key", "")), str(exc)) from None
        if replaced is not None:
            result = replaced
    return result


@dataclasses.dataclass(frozen=True)
class _Key:
    """A section's field as the reader needs it."""

    field: dataclasses.Field[Any]
    spec: Spec
    hint: Any  # its type, without "| None"
    optional: bool  # "| None": null is None

    @property
    def name(self) -> str:
        return self.field.name

    @property
    def required(self) -> bool:
        return self.field.default is MISSING and self.field.default_factory is MISSING

    def default(self) -> Any:
        factory = self.field.default_factory
        return factory() if callable(factory) else self.field.default


@functools.cache
def _keys(cls: type[DataclassInstance]) -> tuple[_Key, ...]:
    """The keys of ``cls`` in declaration order (not its derived fields)."""
    hints = typing.get_type_hints(cls)
    keys = []
    for field in dataclasses.fields(cls):
        spec = spec_of(field)
        if not spec.derived:
            keys.append(_Key(field, spec, *_unwrap_optional(hints[field.name])))
    return tuple(keys)


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    """``X | None`` is ``(X, True)``; any other type ``(type, False)``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        others = [a for a in args if a is not type(None)]
        if len(others) == 1:
            return others[0], len(others) < len(args)
    return hint, False


def _read_key(key: _Key, holder: _Mapping, reading: Reading, mapping: _Mapping) -> Any:
    """One key's value: read from ``holder`` if given, else its default; then checked."""
    given, raw = holder.take(key.name)
    if key.spec.blank_is_default and raw in (None, ""):
        given = False
    try:
        value = _read_value(key, raw, reading, mapping) if given or key.required else key.default()
        if key.spec.check is not None and (value is not None or not key.optional):
            key.spec.check(value)
    except ValueError as exc:
        raise BadKey(join(reading.key, getattr(exc, "key", "")), str(exc)) from None
    return value


def _read_value(key: _Key, raw: object, reading: Reading, mapping: _Mapping) -> Any:
    spec, hint = key.spec, key.hint
    if spec.parse is not None:
        return spec.parse(raw, reading)
    if key.optional and raw is None:
        return None
    choices = spec.choices or (typing.get_args(hint) if typing.get_origin(hint) is Literal else ())
    if choices:
        if raw not in choices:
            listed = ", ".join(str(c) for c in choices)
            raise ValueError(f"must be one of {listed}, got {raw!r}")
        return raw
    if _is_section(hint):
        return read_section(hint, raw, reading.key, reading.base, parent=mapping)
    if typing.get_origin(hint) is tuple:
        return _read_list(key, raw, reading)
    return _SCALARS[hint](raw, spec, reading)


def _is_section(hint: Any) -> TypeGuard[type[DataclassInstance]]:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _read_list(key: _Key, raw: object, reading: Reading) -> tuple[Any, ...]:
    (item, _) = typing.get_args(key.hint)
    if key.required and (not isinstance(raw, list) or not raw):
        raise ValueError(f"required: a list with at least one {key.spec.items}")
    if not isinstance(raw, list) or (item is str and not all(isinstance(x, str) for x in raw)):
        raise ValueError(f"must be a list of {key.spec.items}")
    if _is_section(item):
        return tuple(
            read_section(item, value, f"{reading.key}[{i}]", reading.base)
            for i, value in enumerate(raw)
        )
    return tuple(raw)


def _boolean(raw: object, spec: Spec, reading: Reading) -> bool:
    if not isinstance(raw, bool):
        raise ValueError(f"must be true or false, got {raw!r}")
    return raw


def _integer(raw: object, spec: Spec, reading: Reading) -> int:
    if spec.unit == "size":
        return parse_size(raw)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ValueError(f"must be a whole number, got {raw!r}")
    if spec.ge is not None and spec.le is not None and not spec.ge <= raw <= spec.le:
        raise ValueError(f"must be {spec.ge}..{spec.le}, got {raw}")
    return raw


def _number(raw: object, spec: Spec, reading: Reading) -> float:
    if spec.unit == "duration":
        seconds = parse_duration(raw)
        if spec.ge is not None and spec.le is not None and not spec.ge <= seconds <= spec.le:
            low, high = format_duration(spec.ge), format_duration(spec.le)
            raise ValueError(f"must be {low}..{high}, got {seconds:g}s")
        return seconds
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"must be a number, got {raw!r}")
    if spec.ge is not None and spec.le is not None and not spec.ge <= raw <= spec.le:
        raise ValueError(f"must be {spec.ge:g}..{spec.le:g}, got {raw:g}")
    return float(raw)


def _string(raw: object, spec: Spec, reading: Reading) -> str | None:
    if raw is not None and not isinstance(raw, str):
        raise ValueError(f"must be a string, got {raw!r}")
    return raw


def _file(raw: object, spec: Spec, reading: Reading) -> Path:
    """An existing file; a relative path is relative to the config file's folder."""
    text = str(_string(raw, spec, reading))
    path = Path(text) if Path(text).is_absolute() else reading.base / text
    if not path.is_file():
        raise ValueError(f"file not found: {path}")
    return path


_SCALARS: dict[type, Callable[[object, Spec, Reading], Any]] = {
    bool: _boolean,
    int: _integer,
    float: _number,
    str: _string,
    Path: _file,
}
