"""The effective config as YAML (``motiond check-config``): every key with its value, in the
shape users write it, units from the fields' settings, secrets hidden."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from motiond.config.fields import Spec, spec_of
from motiond.redact import redact_config
from motiond.units import format_duration, format_size

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from motiond.config.top import Config

_PLAIN = Spec()


def effective_config(config: Config) -> dict[str, Any]:
    """The config as plain YAML-able data, durations and sizes with units."""
    return _section(config)


def dump_effective_config(config: Config) -> str:
    """The effective config as YAML, with its secrets (passwords in URLs, hashes) hidden."""
    header = f"# effective configuration from {config.source_path} (secrets hidden)\n"
    return header + yaml.safe_dump(redact_config(effective_config(config)), sort_keys=False)


def _section(section: DataclassInstance) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for field in dataclasses.fields(section):
        spec = spec_of(field)
        if spec.derived:
            continue
        value = getattr(section, field.name)
        data = _value(value, spec)
        if isinstance(data, dict) and dataclasses.is_dataclass(value):
            # Keys written in this mapping though they belong to the nested section.
            for inner in dataclasses.fields(value):
                if spec_of(inner).in_parent:
                    shown[inner.name] = data.pop(inner.name)
        shown[field.name] = data
    return shown


def _value(value: object, spec: Spec) -> object:
    if value is None:
        return None
    if spec.show is not None:
        return spec.show(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _section(value)
    if isinstance(value, tuple):
        return [_value(item, _PLAIN) for item in value]
    if isinstance(value, Path):
        return str(value)
    if spec.unit == "duration" and isinstance(value, float):
        return format_duration(value)
    if spec.unit == "size" and isinstance(value, int):
        return format_size(value)
    return value
