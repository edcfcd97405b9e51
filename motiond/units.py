"""Durations and sizes with units, as written in the config (``2s``, ``500ms``, ``20GB``)."""

from __future__ import annotations

import re

_DURATION_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_NUMBER_UNIT = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$")


def parse_duration(value: object) -> float:
    """Seconds from ``2s``, ``500ms``, ``10m``, ``1.5h``, ``7d``, or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 2s or 500ms, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"must not be negative, got {value!r}")
        return float(value)
    if isinstance(value, str):
        match = _NUMBER_UNIT.match(value)
        if match:
            number, unit = match.groups()
            factor = _DURATION_UNITS.get(unit.lower() if unit else "s")
            if factor is not None:
                return float(number) * factor
    raise ValueError(f"expected a duration such as 2s, 500ms, 10m or 1h, got {value!r}")


def parse_size(value: object) -> int:
    """Bytes from ``20GB``, ``512MiB``, ``100kb``, or a bare number of bytes."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as 20GB or 512MiB, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"must not be negative, got {value!r}")
        return value
    if isinstance(value, str):
        match = _NUMBER_UNIT.match(value)
        if match:
            number, unit = match.groups()
            factor = _SIZE_UNITS.get(unit.lower() if unit else "b")
            if factor is not None:
                return int(float(number) * factor)
    raise ValueError(f"expected a size such as 20GB, 512MiB or 100kB, got {value!r}")


def format_duration(seconds: float) -> str:
    """The shortest exact unit form: 0.5 -> ``500ms``, 600 -> ``10m``, 2 -> ``2s``."""
    for unit, factor in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= factor and (seconds / factor).is_integer():
            return f"{int(seconds / factor)}{unit}"
    milliseconds = seconds * 1000
    if milliseconds.is_integer():
        return f"{int(milliseconds)}ms"
    return f"{seconds:g}s"


def format_size(size: int) -> str:
    """The shortest exact unit form: 20_000_000_000 -> ``20GB``."""
    for unit, factor in (("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"
