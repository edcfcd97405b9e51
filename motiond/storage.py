"""Files on disk: layout, names that never overwrite, atomic writes, sidecars and the clip index.

Layout under ``storage.dir``::

    clips/<camera>/<YYYY-MM-DD>/<HHMMSSZ>.mp4       a finished clip (UTC in names)
    clips/<camera>/<YYYY-MM-DD>/<HHMMSSZ>.json      its sidecar (the truth about the clip)
    clips/<camera>/<YYYY-MM-DD>/<HHMMSSZ>.partial.mp4   a clip being written
    warn/<camera>/<YYYY-MM-DD>/<HHMMSSZ>-start.jpg  warn snapshots (start = the clip's poster)
    snapshots/<camera>/<YYYY-MM-DD>/<HHMMSSZ>.jpg   on-demand snapshots

A clip's id is its path relative to ``clips/`` (``door/2026-11-21/061502Z.mp4``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"
CLIP_ID_PATTERN = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}/\d{4}-\d{2}-\d{2}/\d{6}Z(?:-\d+)?\.(?:mp4)$"
)


def utc_parts(wall: float) -> tuple[str, str]:
    """('YYYY-MM-DD', 'HHMMSSZ') of a wall-clock time, in UTC."""
    moment = dt.datetime.fromtimestamp(wall, dt.UTC)
    return moment.strftime("%Y-%m-%d"), moment.strftime("%H%M%SZ")


def local_iso(wall: float) -> str:
    """Local time with its UTC offset, to the millisecond, for what users read."""
    return dt.datetime.fromtimestamp(wall).astimezone().isoformat(timespec="milliseconds")


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (best effort on odd filesystems)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    if durable:
        fsync_dir(path.parent)


def rename_no_overwrite(source: Path, target: Path) -> Path:
    """Move ``source`` to ``target``, or to ``target-N`` if taken; never replaces a file.

    Uses a hard link (atomic "create if absent"); on filesystems without hard links (FAT on
    a USB stick) falls back to checking then renaming.
    """
    stem, suffix = target.name.split(".", 1)
    for attempt in range(1000):
        candidate = target if attempt == 0 else target.with_name(f"{stem}-{attempt}.{suffix}")
        try:
            os.link(source, candidate)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            if candidate.exists():
                continue
            os.rename(source, candidate)
            fsync_dir(candidate.parent)
            return candidate
        os.unlink(source)
        fsync_dir(candidate.parent)
        return candidate
    raise FileExistsError(f"no free name for {target}")


@dataclass(frozen=True, slots=True)
class ClipPaths:
    """Where one clip and its companions go; the partial file already exists (reserved)."""

    clip_id: str
    final: Path
    partial: Path
    sidecar: Path
    start_snapshot: Path
    peak_snapshot: Path


class Storage:
    """The data directory. Methods are safe to call from any thread (they only touch files)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.clips_dir = root / "clips"
        self.warn_dir = root / "warn"
        self.snapshots_dir = root / "snapshots"

    def ensure(self) -> None:
        for directory in (self.clips_dir, self.warn_dir, self.snapshots_dir):
            directory.mkdir(parents=True, exist_ok=True)

    def reserve_clip(self, camera: str, wall: float, extension: str = ".mp4") -> ClipPaths:
        """Pick a free name for a clip starting at ``wall`` and create its partial file."""
        day, stem = utc_parts(wall)
        directory = self.clips_dir / camera / day
        directory.mkdir(parents=True, exist_ok=True)
        for attempt in range(1000):
            name = stem if attempt == 0 else f"{stem}-{attempt}"
            final = directory / f"{name}{extension}"
            partial = directory / f"{name}{PARTIAL_SUFFIX}{extension}"
            if final.exists() or (directory / f"{name}.json").exists():
                continue
            try:
                partial.open("xb").close()
            except FileExistsError:
                continue
            warn = self.warn_dir / camera / day
            return ClipPaths(
                clip_id=f"{camera}/{day}/{name}{extension}",
                final=final,
                partial=partial,
                sidecar=directory / f"{name}.json",
                start_snapshot=warn / f"{name}-start.jpg",
                peak_snapshot=warn / f"{name}-peak.jpg",
            )
        raise FileExistsError(f"no free clip name in {directory}")

    def snapshot_path(self, camera: str, wall: float) -> Path:
        """A free name for an on-demand snapshot taken at ``wall``."""
        day, stem = utc_parts(wall)
        directory = self.snapshots_dir / camera / day
        candidate = directory / f"{stem}.jpg"
        attempt = 0
        while candidate.exists():
            attempt += 1
            candidate = directory / f"{stem}-{attempt}.jpg"
        return candidate

    def relative(self, path: Path) -> str:
        """A path relative to the data directory, with '/' separators (for sidecars and URLs)."""
        return path.relative_to(self.root).as_posix()

    def clip_path(self, clip_id: str) -> Path:
        """The file of a clip id, after checking the id's form (no traversal possible)."""
        if not CLIP_ID_PATTERN.match(clip_id):
            raise ValueError(f"not a clip id: {clip_id!r}")
        return self.clips_dir / clip_id

    def iter_sidecars(self) -> Iterator[Path]:
        if self.clips_dir.is_dir():
            yield from sorted(self.clips_dir.glob("*/*/*.json"))

    def iter_partials(self) -> Iterator[Path]:
        if self.clips_dir.is_dir():
            yield from sorted(self.clips_dir.glob(f"*/*/*{PARTIAL_SUFFIX}.*"))


def write_sidecar(path: Path, record: dict[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())


class ClipIndex:
    """The in-memory list of finished clips, rebuilt from the sidecars (which are the truth).

    Its lock protects ``_clips``; the recorder threads add, the web side and retention read and
    remove. Records are the sidecar dicts; callers must not mutate what they get.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._lock = threading.Lock()
        self._clips: dict[str, dict[str, Any]] = {}

    def rebuild(self) -> int:
        """Read every sidecar; a corrupt one is logged and skipped. Returns the count."""
        clips: dict[str, dict[str, Any]] = {}
        for sidecar in self.storage.iter_sidecars():
            try:
                record = json.loads(sidecar.read_text(encoding="utf-8"))
                clip_id = record["id"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.warning("skipping unreadable sidecar %s: %s", sidecar, exc)
                continue
            if not (self.storage.clips_dir / clip_id).is_file():
                logger.warning("sidecar %s names a missing clip %s; skipped", sidecar, clip_id)
                continue
            clips[clip_id] = record
        for partial in self.storage.iter_partials():
            logger.warning("unfinished clip from an earlier run: %s", partial)
        with self._lock:
            self._clips = clips
        return len(clips)

    def add(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._clips[record["id"]] = record

    def remove(self, clip_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._clips.pop(clip_id, None)

    def get(self, clip_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._clips.get(clip_id)

    def list(
        self,
        camera: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[dict[str, Any]]:
        """Clips newest first, filtered by camera and start time (epoch seconds)."""
        with self._lock:
            records = list(self._clips.values())
        selected = [
            r
            for r in records
            if (camera is None or r["camera"] == camera)
            and (since is None or r["start_ts"] >= since)
            and (until is None or r["start_ts"] < until)
        ]
        selected.sort(key=lambda r: r["start_ts"], reverse=True)
        return selected

    def __len__(self) -> int:
        with self._lock:
            return len(self._clips)


SNAPSHOT_NAME = re.compile(r"^(\d{6})Z(?:-\d+)?(?:-(start|peak))?\.jpg$")


class ClipStore:
    """Changes to finished clips (keep, delete) and snapshot listings: files and index together.

    Called from the web side's executor threads; the index has its own lock, and a clip's files
    are only touched here once it is finished.
    """

    def __init__(self, storage: Storage, index: ClipIndex) -> None:
        self.storage = storage
        self.index = index
        # Serialises sidecar rewrites and deletions (web executor, retention, uploads), so a
        # change is never lost to another written from an older copy of the record.
        self._lock = threading.Lock()

    def set_keep(self, record: dict[str, Any], keep: bool) -> dict[str, Any]:
        with self._lock:
            current = self.index.get(record["id"]) or record
            updated = {**current, "keep": keep}
            write_sidecar(self.storage.root / Path(record["file"]).with_suffix(".json"), updated)
            self.index.add(updated)
            return updated

    def mark_uploaded(
        self, clip_id: str, remote: str, path_of: Callable[[dict[str, Any]], str]
    ) -> dict[str, Any] | None:
        """Record in the sidecar that the clip is copied to ``remote`` (``uploads``: remote,
        the clip's path there, time). None when the clip is no longer in the index."""
        with self._lock:
            record = self.index.get(clip_id)
            if record is None:
                return None
            uploads = [u for u in record.get("uploads", []) if u.get("remote") != remote]
            uploads.append(
                {"remote": remote, "path": path_of(record), "time": local_iso(time.time())}
            )
            updated = {**record, "uploads": uploads}
            write_sidecar(self.storage.root / Path(record["file"]).with_suffix(".json"), updated)
            self.index.add(updated)
            return updated

    def delete(self, record: dict[str, Any]) -> None:
        """Delete a clip, then its snapshots, then its sidecar (the sidecar last: never a
        sidecar without its clip)."""
        with self._lock:
            self._delete(record)

    def _delete(self, record: dict[str, Any]) -> None:
        self.index.remove(record["id"])
        root = self.storage.root
        with contextlib.suppress(FileNotFoundError):
            (root / record["file"]).unlink()
        for snapshot in record.get("snapshots", []):
            with contextlib.suppress(FileNotFoundError):
                (root / snapshot).unlink()
        with contextlib.suppress(FileNotFoundError):
            (root / Path(record["file"]).with_suffix(".json")).unlink()
        logger.info("clip %s deleted", record["id"])

    def list_snapshots(self, camera: str | None, kind: str | None) -> list[dict[str, Any]]:
        """Warn and on-demand snapshots, newest first."""
        found: list[dict[str, Any]] = []
        for folder, folder_kind in (
            (self.storage.warn_dir, "warn"),
            (self.storage.snapshots_dir, "snapshot"),
        ):
            if kind not in (None, folder_kind) or not folder.is_dir():
                continue
            for path in folder.glob(f"{camera or '*'}/*/*.jpg"):
                match = SNAPSHOT_NAME.match(path.name)
                if not match:
                    continue
                day = path.parent.name
                moment = dt.datetime.strptime(f"{day} {match.group(1)}", "%Y-%m-%d %H%M%S")
                timestamp = moment.replace(tzinfo=dt.UTC).timestamp()
                clip_id = None
                if folder_kind == "warn":
                    stem = path.name.rsplit("-", 1)[0]
                    clip_id = f"{path.parent.parent.name}/{day}/{stem}.mp4"
                    if self.index.get(clip_id) is None:
                        clip_id = None  # its clip is gone (deleted, or lost in a crash)
                found.append(
                    {
                        "url": f"media/{self.storage.relative(path)}",
                        "camera": path.parent.parent.name,
                        "kind": folder_kind,
                        "time": local_iso(timestamp),
                        "ts": timestamp,
                        "clip_id": clip_id,
                    }
                )
        found.sort(key=lambda s: (s["ts"], s["url"]), reverse=True)
        return found
