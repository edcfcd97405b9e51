"""GET /api/timeline: one camera's footage and events over a time range, for the /review page.

One request gives the page a day of one camera: its motion clips, its continuous segments, the
merged coverage of both (``recorded``), its offline spans and tamper alerts (from the camera
history on disk) and its on-demand snapshots; times are epoch seconds. Everything comes from
the indexes through the door; the file work (history, snapshots) runs on the web side's
executor.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import tornado.web

from motiond.store.layout import ClipRecord, StoredSnapshot
from motiond.web.api import _time_argument, camera_argument
from motiond.web.base import BaseHandler
from motiond.web.door import CameraEvents, Door, TimeSpan

MAX_RANGE = 7 * 86400.0
# A clip that started this long before the range may still reach into it (record.max_clip's
# largest value).
LONGEST_CLIP = 24 * 3600.0
RECORDED_JOIN = 0.5  # seconds: gaps this short are not gaps in ``recorded``


def merged_spans(spans: Iterable[tuple[float, float]], join: float = 0.0) -> list[TimeSpan]:
    """The union of ``spans`` as sorted, disjoint spans; gaps up to ``join`` seconds close."""
    merged: list[TimeSpan] = []
    for start, end in sorted(spans):
        if end <= start:
            continue
        if merged and start <= merged[-1].end + join:
            if end > merged[-1].end:
                merged[-1] = TimeSpan(merged[-1].start, end)
        else:
            merged.append(TimeSpan(start, end))
    return merged


def clips_between(door: Door, camera: str, since: float, until: float) -> list[ClipRecord]:
    """The camera's clips that overlap [since, until), oldest first (from the clip index)."""
    found = door.clips_between(camera, since - LONGEST_CLIP, until)
    return [c for c in found if c.end_ts > since]


def snapshots_between(door: Door, camera: str, since: float, until: float) -> list[StoredSnapshot]:
    """The camera's on-demand snapshots taken in [since, until), oldest first."""
    return door.snapshots_between(camera, since, until)


def timeline_json(
    door: Door, camera: str, since: float, until: float, events: CameraEvents
) -> dict[str, Any]:
    clips = clips_between(door, camera, since, until)
    segments = door.segments(camera, since, until)
    footage = [(c.start_ts, c.end_ts) for c in clips] + [(s["start"], s["end"]) for s in segments]
    relative = door.storage.relative
    return {
        "camera": camera,
        "since": since,
        "until": until,
        "clips": [
            {
                "id": c.id,
                "start": c.start_ts,
                "end": c.end_ts,
                "url": f"media/{c.file}",
                "poster": f"media/{c.poster}" if c.poster else None,
                "keep": c.keep,
                "codec": c.codec,
            }
            for c in clips
        ],
        "segments": segments,
        # Consecutive pieces are a frame interval apart; an outage stays a visible gap.
        "recorded": [
            {"start": s.start, "end": s.end} for s in merged_spans(footage, join=RECORDED_JOIN)
        ],
        "offline": [{"start": s.start, "end": s.end} for s in events.offline],
        "tampered": [
            {"start": t.start, "detected": t.detected, "kind": t.kind, "detail": t.detail}
            for t in events.tampered
        ],
        "snapshots": [
            {"ts": s.ts, "url": f"media/{relative(s.path)}"}
            for s in snapshots_between(door, camera, since, until)
        ],
    }


class TimelineHandler(BaseHandler):
    async def get(self) -> None:
        camera = camera_argument(self)
        since = _time_argument(self, "since")
        until = _time_argument(self, "until")
        if camera is None or since is None or until is None:
            raise tornado.web.HTTPError(400, reason="camera, since and until are required")
        if until <= since:
            raise tornado.web.HTTPError(400, reason="until must be after since")
        if until - since > MAX_RANGE:
            raise tornado.web.HTTPError(400, reason="at most 7 days at a time")
        door = self.door

        def gather() -> dict[str, Any]:
            events = door.camera_events(camera, since, until)
            return timeline_json(door, camera, since, until, events)

        self.write_json(await self.context.run_io(gather))
