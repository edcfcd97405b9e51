"""The JSON API, health and metrics. Documented in openapi.yaml."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import shutil
from typing import Any

import tornado.web

from motiond import __version__
from motiond.camera import CameraOfflineError, CameraWorker
from motiond.storage import ClipRecord, LayoutError, StoredSnapshot, local_iso
from motiond.web.app import BaseHandler

MAX_LIMIT = 500


class NotFoundHandler(BaseHandler):
    requires_auth = False

    def prepare(self) -> None:
        raise tornado.web.HTTPError(404, reason="not found")


class SessionHandler(BaseHandler):
    requires_auth = False

    def get(self) -> None:
        user = self.current_user if self.security.enabled else None
        self.write_json({"auth": self.security.enabled, "user": user})


class HealthHandler(BaseHandler):
    """200 when every camera delivers frames, 503 otherwise. No auth: for monitors."""

    requires_auth = False

    def get(self) -> None:
        cameras = {}
        for worker in self.daemon.cameras.values():
            status = worker.status()
            cameras[status.name] = {
                "online": status.online,
                "last_frame_age": _round(status.last_frame_age),
            }
        ok = bool(cameras) and all(c["online"] for c in cameras.values())
        body: dict[str, Any] = {"ok": ok, "version": __version__, "cameras": cameras}
        retention = self.daemon.retention
        body["storage_full"] = retention.full
        if retention.full:
            body["ok"] = ok = False
            body["reason"] = retention.full_reason
        self.write_json(body, 200 if ok else 503)


def camera_json(daemon: Any, worker: CameraWorker) -> dict[str, Any]:
    status = worker.status()
    data = dataclasses.asdict(status)
    data.pop("source", None)  # may hold credentials
    latest = worker.latest_frame
    data.update(
        {
            "fps": round(status.fps, 2),
            "last_frame_age": _round(status.last_frame_age),
            "viewers": daemon.hub.viewers(status.name),
            "width": latest.width if latest else None,
            "height": latest.height if latest else None,
            "live_url": f"ws/live/{status.name}",
        }
    )
    return data


class CamerasHandler(BaseHandler):
    def get(self) -> None:
        self.write_json([camera_json(self.daemon, w) for w in self.daemon.cameras.values()])


class CameraActionHandler(BaseHandler):
    async def post(self, name: str, action: str) -> None:
        worker = self.daemon.cameras.get(name)
        if worker is None:
            raise tornado.web.HTTPError(404, reason=f"no camera named {name}")
        if action == "snapshot":
            try:
                path = await self.daemon.run_in_executor(worker.take_snapshot)
            except CameraOfflineError as exc:
                raise tornado.web.HTTPError(503, reason=str(exc)) from None
            relative = self.daemon.storage.relative(path)
            self.write_json(
                {"url": f"media/{relative}", "camera": name, "time": _local_now()}, status=201
            )
            return
        worker.armed = action == "arm"
        self.daemon.log_action(f"camera {name}: {action}ed by {self.current_user}")
        self.write_json(camera_json(self.daemon, worker))


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


class ClipsHandler(BaseHandler):
    def get(self) -> None:
        camera = self.get_query_argument("camera", None) or None
        since = _time_argument(self, "since")
        until = _time_argument(self, "until")
        limit = _int_argument(self, "limit", 50, 1, MAX_LIMIT)
        offset = _int_argument(self, "offset", 0, 0, 10**9)
        clips = self.daemon.index.list(camera=camera, since=since, until=until)
        page = clips[offset : offset + limit]
        self.write_json({"total": len(clips), "clips": [clip_json(c) for c in page]})


class ClipHandler(BaseHandler):
    def _record(self, clip_id: str) -> ClipRecord:
        try:
            self.daemon.storage.clip_path(clip_id)
        except LayoutError:
            raise tornado.web.HTTPError(400, reason="not a clip id") from None
        record = self.daemon.index.get(clip_id)
        if record is None:
            raise tornado.web.HTTPError(404, reason="no such clip")
        return record

    def get(self, clip_id: str) -> None:
        self.write_json(clip_json(self._record(clip_id)))

    async def patch(self, clip_id: str) -> None:
        record = self._record(clip_id)
        body = self.json_body()
        if set(body) != {"keep"} or not isinstance(body["keep"], bool):
            raise tornado.web.HTTPError(400, reason='expected {"keep": true} or {"keep": false}')
        updated = await self.daemon.run_in_executor(
            self.daemon.clips.set_keep, record, body["keep"]
        )
        self.daemon.log_action(f"clip {clip_id}: keep={body['keep']} by {self.current_user}")
        self.write_json(clip_json(updated))

    async def delete(self, clip_id: str) -> None:
        record = self._record(clip_id)
        await self.daemon.run_in_executor(self.daemon.clips.delete, record)
        self.daemon.log_action(f"clip {clip_id}: deleted by {self.current_user}")
        self.set_status(204)
        self.finish()


class SnapshotsHandler(BaseHandler):
    async def get(self) -> None:
        camera = self.get_query_argument("camera", None) or None
        kind = self.get_query_argument("kind", None) or None
        if kind not in (None, "warn", "snapshot"):
            raise tornado.web.HTTPError(400, reason="kind must be warn or snapshot")
        limit = _int_argument(self, "limit", 50, 1, MAX_LIMIT)
        offset = _int_argument(self, "offset", 0, 0, 10**9)
        snapshots = await self.daemon.run_in_executor(
            self.daemon.clips.list_snapshots, camera, kind
        )
        relative = self.daemon.storage.relative
        page = [snapshot_json(s, relative(s.path)) for s in snapshots[offset : offset + limit]]
        self.write_json({"total": len(snapshots), "snapshots": page})


# (metric, type, help, CameraStatus field) for the per-camera metrics.
CAMERA_METRICS = (
    ("camera_online", "gauge", "1 while the camera delivers frames", "online"),
    ("recording", "gauge", "1 while a clip is being recorded", "recording"),
    ("armed", "gauge", "1 while detection is armed", "armed"),
    ("frames_total", "counter", "frames captured", "frames"),
    ("fps", "gauge", "measured capture frame rate", "fps"),
    ("last_delta", "gauge", "fraction of the picture changed in the last frame", "last_delta"),
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
)


class MetricsHandler(BaseHandler):
    """Prometheus text format."""

    async def get(self) -> None:
        daemon = self.daemon
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, values: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP motiond_{name} {help_text}")
            lines.append(f"# TYPE motiond_{name} {kind}")
            lines.extend(f"motiond_{name}{labels} {value:g}" for labels, value in values)

        statuses = [w.status() for w in daemon.cameras.values()]
        for name, kind, help_text, field in CAMERA_METRICS:
            values = [(_label(s.name), float(getattr(s, field) or 0)) for s in statuses]
            metric(name, kind, help_text, values)
        metric(
            "viewers",
            "gauge",
            "live viewers",
            [(_label(s.name), float(daemon.hub.viewers(s.name))) for s in statuses],
        )
        metric(
            "buffered_bytes",
            "gauge",
            "bytes held by the pre-roll ring and the encoder queue",
            [(_label(n), float(w.buffered_bytes())) for n, w in daemon.cameras.items()],
        )
        resident, peak = process_memory()
        metric("process_resident_bytes", "gauge", "the process's resident memory", [("", resident)])
        metric(
            "process_peak_resident_bytes",
            "gauge",
            "the process's peak resident memory since it started",
            [("", peak)],
        )
        stored = sum(r.size for r in daemon.index.list())
        usage = await daemon.run_in_executor(shutil.disk_usage, daemon.storage.root)
        metric("clips", "gauge", "clips in the index", [("", float(len(daemon.index)))])
        metric("stored_bytes", "gauge", "bytes of clips in the index", [("", float(stored))])
        metric("disk_free_bytes", "gauge", "free bytes for storage", [("", float(usage.free))])
        full = float(daemon.retention.full)
        metric(
            "storage_full",
            "gauge",
            "1 while only kept clips are left and space ran out",
            [("", full)],
        )
        deleted = float(daemon.retention.deleted_total)
        metric("retention_deleted_total", "counter", "clips deleted by retention", [("", deleted)])
        failures = float(daemon.hooks.failures)
        metric("hook_failures_total", "counter", "event hooks that failed", [("", failures)])
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish("\n".join(lines) + "\n")


def process_memory() -> tuple[float, float]:
    """(resident, peak resident) bytes of this process, from /proc (Linux); 0 elsewhere."""
    values = {"VmRSS:": 0.0, "VmHWM:": 0.0}
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                key, _, rest = line.partition(" ")
                if key in values:
                    values[key] = float(rest.split()[0]) * 1024  # kB
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
    try:
        value = int(raw)
    except ValueError:
        raise tornado.web.HTTPError(400, reason=f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise tornado.web.HTTPError(400, reason=f"{name} must be {low}..{high}")
    return value


def _time_argument(handler: BaseHandler, name: str) -> float | None:
    """Epoch seconds from ISO 8601 (local time if no offset) or a number."""
    raw = handler.get_query_argument(name, None)
    if not raw:
        return None
    reason = f"{name} must be ISO 8601 or epoch seconds"
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
