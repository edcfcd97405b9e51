"""``storage``: where clips go and how long they stay."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from motiond.config.fields import Reading, section, setting
from motiond.units import format_size, parse_size


def default_storage_dir() -> Path:
    """``$STATE_DIRECTORY`` when systemd sets it (first entry), else ``./motiond-data``."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    return Path("motiond-data")


def _storage_dir(raw: object, reading: Reading) -> Path:
    """Unset or empty: the default; relative: relative to the config file's folder."""
    if raw is not None and not isinstance(raw, str):
        raise ValueError(f"must be a string, got {raw!r}")
    if not raw:
        return default_storage_dir()
    directory = Path(raw)
    return directory if directory.is_absolute() else reading.base / directory


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


def _free_space(raw: object, reading: Reading) -> FreeSpace:
    if isinstance(raw, str) and raw.strip().endswith("%"):
        try:
            percent = float(raw.strip()[:-1])
        except ValueError:
            raise ValueError(
                f"expected a size such as 1GB or a percentage such as 5%, got {raw!r}"
            ) from None
        if not 0 <= percent <= 50:
            raise ValueError(f"a percentage must be 0%..50%, got {raw!r}")
        return FreeSpace(percent=percent)
    return FreeSpace(size=parse_size(raw))


def _off_or_an_hour(seconds: float) -> None:
    if seconds and seconds < 3600:
        raise ValueError(f"must be 0 (off) or at least 1h, got {seconds:g}s")


@section
class StorageConfig:
    """Where clips go and how long they stay (0: no limit); retention deletes oldest first."""

    dir: Path = setting(parse=_storage_dir)
    max_age: float = setting(
        default=30 * 86400.0, ge=0.0, le=100 * 365 * 86400.0, unit="duration", check=_off_or_an_hour
    )
    max_bytes: int = setting(default=0, unit="size")
    min_free: FreeSpace = setting(
        default_factory=lambda: FreeSpace(size=1_000_000_000), parse=_free_space, show=str
    )
    # continuous footage (record.continuous) is deleted after this; 0: no limit of its own
    continuous_max_age: float = setting(
        default=3 * 86400.0, ge=0.0, le=100 * 365 * 86400.0, unit="duration", check=_off_or_an_hour
    )
    retention_interval: float = setting(default=600.0, ge=10.0, le=86400.0, unit="duration")
    snapshots_per_minute: int = setting(default=10, ge=1, le=600)
