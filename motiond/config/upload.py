"""``upload``: off-site copies of clips, posters and sidecars through rclone (see
notify/upload.py)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Collection
from pathlib import Path

from motiond.config.fields import Invalid, Reading, rule, section, setting

# An rclone remote ("name:path") or an absolute local path; never an option ("-...").
RCLONE_REMOTE = re.compile(r"^(?:[A-Za-z0-9_.][A-Za-z0-9_. -]*:|/)")
RCLONE_BWLIMIT = re.compile(r"^(?:off|[0-9]+(?:\.[0-9]+)?(?:[BbKkMmGgTtPp](?:i[Bb]?)?)?)$")


def _remote(remote: str | None) -> None:
    if not remote or not RCLONE_REMOTE.match(remote):
        raise ValueError(
            f"required: an rclone remote path (b2:bucket/motiond, nas:/volume1/cameras) or an "
            f"absolute local path, got {remote!r}"
        )


def _bwlimit(raw: object, reading: Reading) -> str | None:
    if raw is None:
        return None
    rate = str(raw)
    if not RCLONE_BWLIMIT.match(rate):
        raise ValueError(
            f"must be a rate in bytes per second such as 512k, 2M or 1.5M, got {rate!r}"
        )
    return rate


def _installed(program: str) -> None:
    if shutil.which(program) is None:
        raise ValueError(
            f"{program!r} not found: install rclone (Debian: apt-get install rclone) or set "
            f"upload.rclone to its path"
        )


@section
class UploadDestination:
    """One place clips are copied to: an rclone remote path."""

    remote: str = setting(check=_remote)
    cameras: tuple[str, ...] = setting(default=(), items="camera names")  # empty: every camera
    bwlimit: str | None = setting(default=None, parse=_bwlimit)
    continuous: bool = False  # continuous footage too (record.continuous), not clips alone

    def applies_to(self, camera: str) -> bool:
        return not self.cameras or camera in self.cameras


@section
class UploadConfig:
    """Off-site copies of clips, posters and sidecars, through rclone (see notify/upload.py)."""

    destinations: tuple[UploadDestination, ...] = setting(
        items="{remote: ...} (an rclone remote path)"
    )
    rclone: str = setting(default="rclone", blank_is_default=True, check=_installed)
    rclone_config: Path | None = None
    keep_until_uploaded: bool = True
    timeout: float = setting(default=1800.0, ge=10.0, le=24 * 3600.0, unit="duration")
    retry_min: float = setting(default=10.0, ge=0.1, le=3600.0, unit="duration")
    retry_max: float = setting(default=600.0, ge=0.1, le=24 * 3600.0, unit="duration")
    alert_after: float = setting(default=3600.0, ge=1.0, le=30 * 86400.0, unit="duration")


@rule(UploadConfig)
def _distinct_remotes_and_retries(upload: UploadConfig, given: Collection[object]) -> None:
    remotes = [d.remote.rstrip("/") for d in upload.destinations]
    for i, remote in enumerate(remotes):
        if remote in remotes[:i]:
            raise Invalid(f"destinations[{i}].remote", "duplicate remote")
    if upload.retry_max < upload.retry_min:
        raise Invalid("retry_max", f"must be at least retry_min ({upload.retry_min:g}s)")
