"""The JSON API, health and metrics. Documented in openapi.yaml."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Callable
from typing import Any

import tornado.web

from motiond import __version__
from motiond.control import (
    CameraStatus,
    CameraUnavailable,
    SnapshotsTooFrequent,
    UnknownCamera,
)
from motiond.store.layout import (
    ClipRecord,
    LayoutError,
    SnapshotKind,
    StoredSnapshot,
    is_camera_name,
    local_iso,
)
from motiond.web.base import BaseHandler
from motiond.web.door import Door

MAX_LIMIT = 500
MAX_TIME_TEXT = 40  # characters of a since/until value (ISO 8601 with offset is 32)
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")  # ASCII digits only
SNAPSHOT_KINDS: dict[str, SnapshotKind] = {"warn": "warn", "snapshot": "snapshot"}


class NotFoundHandler(BaseHandler):
    requires_auth = False

    async def prepare(self) -> None:
        await super().prepare()
        raise tornado.web.HTTPError(404, reason="not found")


class SessionHandler(BaseHandler):
    requires_auth = False

    def get(self) -> None:
        enabled = self.context.auth_enabled
        self.write_json({"auth": enabled, "user": self.current_user if enabled else None})


class HealthHandler(BaseHandler):
    """200 when every camera delivers frames and none is tampered with, 503 otherwise.
    No auth: for monitors; without a login it says states and counts only, never an upload
    remote's name or the broker's error text (which can name its host and user)."""

    requires_auth = False

    def get(self) -> None:
        cameras = {
            state.name: {
                "online": state.online,
                "last_frame_age": _round(state.last_frame_age),
                "tampered": state.tampered,
            }
            for state in self.door.cameras()
        }
        ok = bool(cameras) and all(c["online"] for c in cameras.values())
        body: dict[str, Any] = {"ok": ok, "version": __version__, "cameras": cameras}
        reasons = []
        tampered = [f"{name} ({c['tampered']})" for name, c in cameras.items() if c["tampered"]]
        if tampered:
            reasons.append("tampered with: " + ", ".join(tampered))
        storage = self.door.storage_state()
        body["storage_full"] = storage.full
        if storage.full:
            reasons.append(storage.reason)
        if reasons:
            body["ok"] = ok = False
            body["reason"] = "; ".join(reasons)
        body.update(_mqtt_and_upload_health(self.door, detailed=self.current_user is not None))
        self.write_json(body, 200 if ok else 503)


def _mqtt_and_upload_health(door: Door, detailed: bool) -> dict[str, Any]:
    """Whether the broker is connected and how the upload queues stand (informational: neither
    changes the status code, recording does not depend on them). Names and error texts only
    when ``detailed`` (a logged-in user, or no auth on loopback)."""
    extra: dict[str, Any] = {}
    mqtt = door.mqtt_state()
    if mqtt is not None:
        extra["mqtt"] = {"connected": mqtt.connected, "failing": mqtt.error is not None}
        if detailed:
            extra["mqtt"]["error"] = mqtt.error
    uploads = door.upload_states()
    if uploads is not None:
        extra["uploads"] = [
            {
                **({"remote": s.remote} if detailed else {}),
                "queued": s.queued,
                "oldest_age": round(s.oldest_age, 1),
                "failing_since": s.failing_since,
            }
            for s in uploads
        ]
    return extra


def camera_json(state: CameraStatus, viewers: int) -> dict[str, Any]:
    data = dataclasses.asdict(state)
    for internal in ("buffered_bytes", "realtime", "min_area"):
        del data[internal]
    data.update(
        {
            "fps": round(state.fps, 2),
            "last_frame_age": _round(state.last_frame_age),
            "viewers": viewers,
            "live_url": f"ws/live/{state.name}",
        }
    )
    return data


class CamerasHandler(BaseHandler):
    def get(self) -> None:
        viewers = self.context.viewers
        self.write_json([camera_json(s, viewers(s.name)) for s in self.door.cameras()])


class CameraActionHandler(BaseHandler):
    async def post(self, name: str, action: str) -> None:
        try:
            if action == "snapshot":
                await self._snapshot(name)
                return
            state = self.door.set_armed(name, action == "arm")
        except UnknownCamera:
            raise tornado.web.HTTPError(404, reason="no camera of that name") from None
        self.context.log_action(f"camera {name}: {action}ed by {self.current_user}")
        self.write_json(camera_json(state, self.context.viewers(name)))

    async def _snapshot(self, name: str) -> None:
        try:
            snapshot = await self.context.run_io(self.door.take_snapshot, name)
        except CameraUnavailable as exc:
            raise tornado.web.HTTPError(503, reason=str(exc)) from None
        except SnapshotsTooFrequent as exc:  # answered here: send_error would drop the header
            self.set_header("Retry-After", str(math.ceil(exc.retry_after)))
            self.write_json({"error": str(exc)}, status=429)
            return
        relative = self.door.storage.relative(snapshot.path)
        self.write_json(
            {"url": f"media/{relative}", "camera": name, "time": _local_now()}, status=201
        )


def clip_json(record: ClipRecord) -> dict[str, Any]:
    return {
        **record.to_json(),
        "url": f"media/{record.file}",
        "poster_url": f"media/{record.poster}" if record.poster else None,
        "snapshot_urls": [f"media/{s}" for s in record.snapshots],
    }


def snapshot_json(snapshot: StoredSnapshot, relative: str) -> dict[str, Any]:
    return {
        "url": f"media/{relative}",
        "camera": snapshot.camera,
        "kind": snapshot.kind,
        "time": local_iso(snapshot.ts),
        "ts": snapshot.ts,
        "clip_id": snapshot.clip_id,
    }


def camera_argument(handler: BaseHandler) -> str | None:
    """The ``camera`` query argument: a camera name that is configured or still has clips
    (400 for anything that is not a camera name, 404 for an unknown one)."""
    camera = handler.get_query_argument("camera", None, strip=False) or None
    if camera is None:
        return None
    if not is_camera_name(camera):
        raise tornado.web.HTTPError(400, reason="camera must be a camera's name")
    if camera not in handler.door.known_cameras():
        raise tornado.web.HTTPError(404, reason="no camera of that name")
    return camera


class ClipsHandler(BaseHandler):
    def get(self) -> None:
        camera = camera_argument(self)
        since = _time_argument(self, "since")
        until = _time_argument(self, "until")
        limit = _int_argument(self, "limit", 50, 1, MAX_LIMIT)
        offset = _int_argument(self, "offset", 0, 0, 10**9)
        clips = self.door.clips(camera, since, until)
        page = clips[offset : offset + limit]
        self.write_json({"total": len(clips), "clips": [clip_json(c) for c in page]})


class ClipHandler(BaseHandler):
    def _record(self, clip_id: str) -> ClipRecord:
        try:
            self.door.storage.clip_path(clip_id)
        except LayoutError:
            raise tornado.web.HTTPError(400, reason="not a clip id") from None
        record = self.door.clip(clip_id)
        if record is None:
            raise tornado.web.HTTPError(404, reason="no such clip")
        return record

    def get(self, clip_id: str) -> None:
        self.write_json(clip_json(self._record(clip_id)))

    async def patch(self, clip_id: str) -> None:
        body = self.json_body()
        if set(body) != {"keep"} or not isinstance(body["keep"], bool):
            raise tornado.web.HTTPError(400, reason='expected {"keep": true} or {"keep": false}')
        record = self._record(clip_id)
        updated = await self.context.run_io(self.door.set_keep, record, body["keep"])
        self.context.log_action(f"clip {clip_id}: keep={body['keep']} by {self.current_user}")
        self.write_json(clip_json(updated))

    async def delete(self, clip_id: str) -> None:
        record = self._record(clip_id)
        await self.context.run_io(self.door.delete_clip, record)
        self.context.log_action(f"clip {clip_id}: deleted by {self.current_user}")
        self.set_status(204)
        self.finish()


class SnapshotsHandler(BaseHandler):
    async def get(self) -> None:
        camera = camera_argument(self)
        kind_name = self.get_query_argument("kind", None) or None
        kind = SNAPSHOT_KINDS.get(kind_name or "")
        if kind_name is not None and kind is None:
            raise tornado.web.HTTPError(400, reason="kind must be warn or snapshot")
        limit = _int_argument(self, "limit", 50, 1, MAX_LIMIT)
        offset = _int_argument(self, "offset", 0, 0, 10**9)
        # From the snapshot index, a page at a time: quick, on the loop (no executor to wait for).
        total, snapshots = self.door.snapshots(camera, kind, offset, limit)
        relative = self.door.storage.relative
        page = [snapshot_json(s, relative(s.path)) for s in snapshots]
        self.write_json({"total": total, "snapshots": page})


# (metric, type, help, CameraStatus field) for the per-camera metrics.
CAMERA_METRICS = (
    ("camera_online", "gauge", "1 while the camera delivers frames", "online"),
    ("recording", "gauge", "1 while a clip is being recorded", "recording"),
    ("armed", "gauge", "1 while detection is armed", "armed"),
    ("frames_total", "counter", "frames captured", "frames"),
    ("fps", "gauge", "measured capture frame rate", "fps"),
    (
        "last_delta",
        "gauge",
        "fraction of the picture in changed regions that count, last frame",
        "last_delta",
    ),
    ("threshold", "gauge", "the configured motion threshold", "threshold"),
    ("clips_kept_total", "counter", "clips kept", "clips_kept"),
    ("clips_discarded_total", "counter", "clips discarded as noise", "clips_discarded"),
    (
        "frames_dropped_total",
        "counter",
        "frames dropped: slow encoder or disk",
        "frames_dropped",
    ),
    ("frames_garbled_total", "counter", "frames that could not be decoded", "frames_garbled"),
    (
        "buffered_bytes",
        "gauge",
        "bytes held by the pre-roll ring and the encoder queue",
        "buffered_bytes",
    ),
)


def metric_value(value: float | bool | None) -> str:
    """A sample value, exact: whole numbers in full (a counter never rounds to 6 digits),
    other numbers as Python's shortest round-trip text."""
    if value is None:
        return "0"
    if isinstance(value, bool | int):
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


class MetricsHandler(BaseHandler):
    """Prometheus text format."""

    async def get(self) -> None:
        door = self.door
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, values: list[tuple[str, Any]]) -> None:
            lines.append(f"# HELP motiond_{name} {help_text}")
            lines.append(f"# TYPE motiond_{name} {kind}")
            lines.extend(f"motiond_{name}{labels} {metric_value(v)}" for labels, v in values)

        states = door.cameras()
        for name, kind, help_text, field in CAMERA_METRICS:
            metric(name, kind, help_text, [(_label(s.name), getattr(s, field)) for s in states])
        viewers = [(_label(s.name), self.context.viewers(s.name)) for s in states]
        metric("viewers", "gauge", "live viewers", viewers)
        clips = door.clips(None, None, None)
        free = await self.context.run_io(door.disk_free)
        storage = door.storage_state()
        metric("clips", "gauge", "clips in the index", [("", len(clips))])
        stored = sum(r.size for r in clips)
        metric("stored_bytes", "gauge", "bytes of clips in the index", [("", stored)])
        metric("disk_free_bytes", "gauge", "free bytes for storage", [("", free)])
        resident, peak = process_memory()
        metric("process_resident_bytes", "gauge", "the process's resident memory", [("", resident)])
        metric(
            "process_peak_resident_bytes",
            "gauge",
            "the process's peak resident memory since it started",
            [("", peak)],
        )
        metric(
            "storage_full",
            "gauge",
            "1 while only kept clips are left and space ran out",
            [("", storage.full)],
        )
        metric(
            "camera_tampered",
            "gauge",
            "1 while the camera seems tampered with (covered, blinded, defocused, turned)",
            [(_label(s.name), s.tampered is not None) for s in states],
        )
        metric(
            "ignored_share",
            "gauge",
            "share of the picture learned as always moving and ignored",
            [(_label(s.name), s.ignored_share) for s in states],
        )
        metric(
            "night",
            "gauge",
            "1 while the camera is in night (infrared) mode",
            [(_label(s.name), s.day_night == "night") for s in states],
        )
        deleted = [("", storage.deleted_total)]
        metric("retention_deleted_total", "counter", "clips deleted by retention", deleted)
        failures = [("", door.hook_failures())]
        metric("hook_failures_total", "counter", "event hooks that failed", failures)
        _mqtt_and_upload_metrics(door, metric)
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish("\n".join(lines) + "\n")


def _mqtt_and_upload_metrics(door: Door, metric: Callable[..., None]) -> None:
    mqtt = door.mqtt_state()
    if mqtt is not None:
        metric(
            "mqtt_connected",
            "gauge",
            "1 while connected to the MQTT broker",
            [("", mqtt.connected)],
        )
        metric(
            "mqtt_connection_failures_total",
            "counter",
            "failed attempts to connect to the MQTT broker",
            [("", mqtt.connection_failures)],
        )
        metric(
            "mqtt_events_dropped_total",
            "counter",
            "MQTT events dropped while the broker was away (more than the queue holds)",
            [("", mqtt.events_dropped)],
        )
    uploads = door.upload_states()
    if uploads is not None:

        def per_remote(field: str) -> list[tuple[str, Any]]:
            return [(_remote_label(s.remote), getattr(s, field)) for s in uploads]

        metric(
            "upload_queue_files",
            "gauge",
            "files waiting to be copied off-site",
            per_remote("queued"),
        )
        metric(
            "upload_oldest_age_seconds",
            "gauge",
            "age of the oldest file waiting to be copied (0: none)",
            per_remote("oldest_age"),
        )
        metric("uploads_total", "counter", "files copied off-site", per_remote("uploaded"))
        metric("upload_failures_total", "counter", "failed copy attempts", per_remote("failures"))


def _remote_label(remote: str) -> str:
    escaped = remote.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{{remote="{escaped}"}}'


def process_memory() -> tuple[int, int]:
    """(resident, peak resident) bytes of this process, from /proc (Linux); 0 elsewhere."""
    values = {"VmRSS:": 0, "VmHWM:": 0}
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                fields = line.split()
                if fields and fields[0] in values:
                    values[fields[0]] = int(fields[1]) * 1024  # kB
    except OSError:
        pass
    return values["VmRSS:"], values["VmHWM:"]


def _label(camera: str) -> str:
    return f'{{camera="{camera}"}}'


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _local_now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _int_argument(handler: BaseHandler, name: str, default: int, low: int, high: int) -> int:
    raw = handler.get_query_argument(name, None)
    if raw is None or raw == "":
        return default
    if not _WHOLE_NUMBER.fullmatch(raw):
        raise tornado.web.HTTPError(400, reason=f"{name} must be a whole number")
    # Digits beyond any bound are out of range before int() has to read thousands of them.
    if len(raw.lstrip("+-0")) > len(str(high)) or not low <= int(raw) <= high:
        raise tornado.web.HTTPError(400, reason=f"{name} must be {low}..{high}")
    return int(raw)


def _time_argument(handler: BaseHandler, name: str) -> float | None:
    """Epoch seconds from ISO 8601 (local time if no offset) or a number."""
    raw = handler.get_query_argument(name, None)
    if not raw:
        return None
    reason = f"{name} must be ISO 8601 or epoch seconds"
    if len(raw) > MAX_TIME_TEXT:
        raise tornado.web.HTTPError(400, reason=reason)
    try:
        seconds = float(raw)
    except ValueError:
        try:
            moment = dt.datetime.fromisoformat(raw)
            if moment.tzinfo is None:
                moment = moment.astimezone()
            seconds = moment.timestamp()
        # Dates near year 1 or 9999 overflow when moved into local time.
        except (ValueError, OverflowError, OSError):
            raise tornado.web.HTTPError(400, reason=reason) from None
    if not math.isfinite(seconds):
        raise tornado.web.HTTPError(400, reason=reason)
    return seconds
