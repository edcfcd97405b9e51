"""A storage folder holding many synthetic clips, as months of recording leave it.

Each clip is a sidecar the daemon accepts and a small placeholder file in place of the MP4
(start-up reads sidecars and lists folders; it decodes a clip only when its sidecar is missing).
``per_day`` clips a day, one day folder after the other, ending ``days_ago_end`` days ago.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

CLIP_BYTES = b"\0" * 64  # a placeholder: never decoded while its sidecar is there
JPEG_BYTES = b"\xff\xd8" + b"\0" * 62 + b"\xff\xd9"  # a placeholder too


def write_many_clips(
    root: Path,
    count: int,
    *,
    camera: str = "cam",
    per_day: int = 1000,
    end: float | None = None,
    poster_every: int = 0,
) -> list[str]:
    """Write ``count`` clips of ``camera`` under ``root`` (a storage.dir); returns their ids,
    oldest first. The newest starts at ``end`` (default: an hour ago). Every
    ``poster_every``-th clip (0: none) has a start snapshot (a placeholder JPEG) as poster."""
    end = end if end is not None else dt.datetime.now(dt.UTC).timestamp() - 3600
    spacing = 86400.0 / per_day
    first = end - (count - 1) * spacing
    ids = []
    folder: Path | None = None
    for n in range(count):
        start = first + n * spacing
        moment = dt.datetime.fromtimestamp(start, dt.UTC)
        day = moment.strftime("%Y-%m-%d")
        stem = moment.strftime("%H%M%SZ")
        clip_id = f"{camera}/{day}/{stem}.mp4"
        target = root / "clips" / camera / day
        if target != folder:
            target.mkdir(parents=True, exist_ok=True)
            folder = target
        _write(target / f"{stem}.mp4", CLIP_BYTES)
        poster = None
        if poster_every and n % poster_every == 0:
            poster = f"warn/{camera}/{day}/{stem}-start.jpg"
            (root / poster).parent.mkdir(parents=True, exist_ok=True)
            _write(root / poster, JPEG_BYTES)
        _write(target / f"{stem}.json", _sidecar(clip_id, camera, start, poster))
        ids.append(clip_id)
    return ids


def _sidecar(clip_id: str, camera: str, start: float, poster: str | None) -> bytes:
    local = dt.datetime.fromtimestamp(start).astimezone()
    record = {
        "id": clip_id,
        "camera": camera,
        "file": f"clips/{clip_id}",
        "start": local.isoformat(timespec="milliseconds"),
        "end": (local + dt.timedelta(seconds=10)).isoformat(timespec="milliseconds"),
        "start_ts": round(start, 3),
        "end_ts": round(start + 10, 3),
        "duration": 10.0,
        "frames": 100,
        "changed_frames": 40,
        "peak_delta": 0.05,
        "codec": "h264",
        "width": 1280,
        "height": 720,
        "fps": 10.0,
        "size": len(CLIP_BYTES),
        "boxes_union": [10, 10, 100, 100],
        "snapshots": [poster] if poster else [],
        "poster": poster,
        "dropped_frames": 0,
        "keep": False,
        "recovered": False,
    }
    return (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
