"""``hooks`` and ``cameras[].hooks``: what to run or POST on each event."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection

from motiond.config.fields import Invalid, Reading, rule, section, setting
from motiond.redact import redact_url


def _command(raw: object, reading: Reading) -> tuple[str, ...]:
    """A program and its arguments (no shell); a string is a program without arguments."""
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(a, str) for a in raw):
        raise ValueError("must be a list of strings (no shell)")
    return tuple(raw)


def _http_url(url: str) -> None:
    if not re.match(r"^https?://", url):
        raise ValueError(f"must be an http:// or https:// URL, got {redact_url(url)!r}")


@section
class HookConfig:
    """What to do on one event: run a command (no shell) and/or POST JSON to a URL."""

    command: tuple[str, ...] = setting(default=(), parse=_command)
    url: str | None = setting(default=None, check=_http_url)
    timeout: float = setting(default=10.0, ge=0.1, le=3600.0, unit="duration")


@rule(HookConfig)
def _does_something(hook: HookConfig, given: Collection[object]) -> None:
    if not hook.command and hook.url is None:
        raise Invalid("", "needs a command, a url, or both")


@section
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


HOOK_EVENTS = tuple(f.name for f in dataclasses.fields(HooksConfig))
