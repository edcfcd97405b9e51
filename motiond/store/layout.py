"""The on-disk format: the storage layout, its names, and the clip record (the sidecar).

Layout under ``storage.dir`` (times in names are UTC)::

    clips/<camera>/<YYYY-MM-DD>/<HHMMSSZ>.mp4           a finished clip
    clips/<camera>/<YYYY-MM-DD>/<HHMMSSZ>.json          its sidecar (the truth about the clip)
    clips/<camera>/<YYYY-MM-DD>/<HHMMSSZ>.partial.mp4   a clip being written
    warn/<camera>/<YYYY-MM-DD>/<HHMMSSZ>-start.jpg      warn snapshots (start = the clip's poster)
    warn/<camera>/<YYYY-MM-DD>/<HHMMSSZ>-peak.jpg
    snapshots/<camera>/<YYYY-MM-DD>/<HHMMSSZ>.jpg       on-demand snapshots
    continuous/<camera>/<YYYY-MM-DD>/<HHMMSSmmm>Z-<D>ms.mp4   a continuous segment: its first
                                                        frame's capture time (to the ms) and
                                                        its duration (D ms) in its name
    continuous/<camera>/<YYYY-MM-DD>/<HHMMSSmmm>Z.partial.mp4 a segment being written

A name already taken gets a ``-N`` suffix (``061502Z-1.mp4``). A clip's id is its path relative
to ``clips/`` (``door/2026-11-21/061502Z.mp4``).

This module is the only one that spells these names: every other module builds, parses, checks
and lists them through it. Free names are reserved atomically (``O_EXCL``, or a hard link that
fails when the name exists), so two writers never get the same file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar

PARTIAL_SUFFIX = ".partial"
CLIP_EXTENSION = ".mp4"
SIDECAR_EXTENSION = ".json"
MAX_NAME_ATTEMPTS = 1000

# The pieces of every name. [0-9], not \d (which matches other scripts' digits), and every
# pattern is used with fullmatch (a "$" would let a trailing newline through).
CAMERA_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_CAMERA = f"(?P<camera>{CAMERA_NAME_PATTERN})"
_DAY = r"(?P<day>[0-9]{4}-[0-9]{2}-[0-9]{2})"
_STEM = r"(?P<stem>(?P<hms>[0-9]{6})Z(?:-[0-9]{1,6})?)"
_CAMERA_NAME = re.compile(CAMERA_NAME_PATTERN)
_CLIP_ID = re.compile(f"{_CAMERA}/{_DAY}/{_STEM}\\.mp4")
_CLIP_FILE = re.compile(f"clips/{_CAMERA}/{_DAY}/{_STEM}(?P<partial>\\.partial)?\\.mp4")
_SIDECAR_FILE = re.compile(f"clips/{_CAMERA}/{_DAY}/{_STEM}\\.json")
_JPEG_FILE = re.compile(
    f"(?P<folder>warn|snapshots)/{_CAMERA}/{_DAY}/{_STEM}(?:-(?P<which>start|peak))?\\.jpg"
)
_SEGMENT_FILE = re.compile(
    f"continuous/{_CAMERA}/{_DAY}/(?P<hms>[0-9]{{6}})(?P<ms>[0-9]{{3}})Z"
    f"(?:-(?P<duration>[0-9]{{1,9}})ms|(?P<partial>\\.partial))\\.mp4"
)
_DAY_NAME = re.compile(_DAY)

SnapshotKind = Literal["warn", "snapshot"]
_FOLDER_KIND: dict[str, SnapshotKind] = {"warn": "warn", "snapshots": "snapshot"}


class LayoutError(ValueError):
    """A name or path that is not part of the storage layout."""


# -- names and times -------------------------------------------------------------------------------


def utc_parts(wall: float) -> tuple[str, str]:
    """('YYYY-MM-DD', 'HHMMSSZ') of a wall-clock time, in UTC."""
    moment = dt.datetime.fromtimestamp(wall, dt.UTC)
    return moment.strftime("%Y-%m-%d"), moment.strftime("%H%M%SZ")


def name_time(day: str, name: str) -> float | None:
    """Epoch seconds of ``<day>/<HHMMSSZ>[-N]...`` (a stem or a file name), or None."""
    match = re.match(r"([0-9]{6})Z", name)
    if match is None or not _DAY_NAME.fullmatch(day):
        return None
    try:
        moment = dt.datetime.strptime(f"{day} {match.group(1)}", "%Y-%m-%d %H%M%S")
    except ValueError:
        return None
    return moment.replace(tzinfo=dt.UTC).timestamp()


def local_iso(wall: float) -> str:
    """Local time with its UTC offset, to the millisecond, for what users read."""
    return dt.datetime.fromtimestamp(wall).astimezone().isoformat(timespec="milliseconds")


def is_camera_name(text: str) -> bool:
    return _CAMERA_NAME.fullmatch(text) is not None


def is_clip_id(text: str) -> bool:
    return _CLIP_ID.fullmatch(text) is not None


def is_media_path(relative: str) -> bool:
    """True for a clip or a continuous segment (finished or partial) or a snapshot path
    relative to the data directory."""
    return bool(
        _CLIP_FILE.fullmatch(relative)
        or _JPEG_FILE.fullmatch(relative)
        or _SEGMENT_FILE.fullmatch(relative)
    )


def is_layout_file(relative: str) -> bool:
    """True for a clip, a sidecar or a snapshot path relative to the data directory."""
    return is_media_path(relative) or _SIDECAR_FILE.fullmatch(relative) is not None


def _candidates(stem: str) -> Iterator[str]:
    """``stem``, then ``stem-1``, ``stem-2`` ... : the names a free one is picked from."""
    yield stem
    for attempt in range(1, MAX_NAME_ATTEMPTS):
        yield f"{stem}-{attempt}"


# -- files -----------------------------------------------------------------------------------------


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


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True, mode: int = 0o644) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place.

    ``mode`` (before the umask) applies from the start: a private file is never readable by
    others, not even half written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with open(fd, "wb") as handle:
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


def _create_new(path: Path) -> bool:
    """Create ``path`` empty if no file has that name (O_EXCL); False when it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def rename_no_overwrite(source: Path, target: Path) -> Path:
    """Move ``source`` to ``target``, or to ``target-N`` if taken; never replaces a file.

    Uses a hard link (atomic "create if absent"); on filesystems without hard links (FAT on
    a USB stick) falls back to checking then renaming.
    """
    stem, suffix = target.name.split(".", 1)
    for name in _candidates(stem):
        candidate = target.with_name(f"{name}.{suffix}")
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


# -- the layout ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClipPaths:
    """Where one clip and its companions go; the partial file already exists (reserved)."""

    clip_id: str
    final: Path
    partial: Path
    sidecar: Path
    start_snapshot: Path
    peak_snapshot: Path


@dataclass(frozen=True, slots=True)
class ClipFolder:
    """The layout's files in one ``clips/<camera>/<day>`` folder, by name."""

    path: Path
    clips: list[Path]  # finished
    sidecars: list[Path]
    partials: list[Path]


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    """A JPEG of the layout: a warn snapshot (of a clip) or an on-demand one."""

    path: Path
    ts: float  # from its name, epoch seconds
    camera: str = ""
    kind: SnapshotKind = "snapshot"
    clip_id: str | None = None  # a warn snapshot's clip, by name (it may be gone)
    size: int = 0  # bytes, when known (the snapshot index stats each file once)


class Storage:
    """The data directory. Methods are safe to call from any thread (they only touch files)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.clips_dir = root / "clips"
        self.warn_dir = root / "warn"
        self.snapshots_dir = root / "snapshots"
        self.continuous_dir = root / "continuous"

    def ensure(self) -> None:
        for directory in (self.clips_dir, self.warn_dir, self.snapshots_dir, self.continuous_dir):
            directory.mkdir(parents=True, exist_ok=True)

    # -- reserving names ----------------------------------------------------------------------

    def reserve_clip(self, camera: str, wall: float, extension: str = CLIP_EXTENSION) -> ClipPaths:
        """Pick a free name for a clip starting at ``wall`` and create its partial file."""
        _check_camera(camera)
        day, stem = utc_parts(wall)
        directory = self.clips_dir / camera / day
        directory.mkdir(parents=True, exist_ok=True)
        for name in _candidates(stem):
            final = directory / f"{name}{extension}"
            if final.exists() or (directory / f"{name}{SIDECAR_EXTENSION}").exists():
                continue
            if not _create_new(directory / f"{name}{PARTIAL_SUFFIX}{extension}"):
                continue
            warn = self.warn_dir / camera / day
            return ClipPaths(
                clip_id=f"{camera}/{day}/{name}{extension}",
                final=final,
                partial=directory / f"{name}{PARTIAL_SUFFIX}{extension}",
                sidecar=directory / f"{name}{SIDECAR_EXTENSION}",
                start_snapshot=warn / f"{name}-start.jpg",
                peak_snapshot=warn / f"{name}-peak.jpg",
            )
        raise FileExistsError(f"no free clip name in {directory}")

    def reserve_snapshot(self, camera: str, wall: float) -> Path:
        """Create an empty file under a free name for an on-demand snapshot taken at ``wall``.

        Atomic: two snapshots in the same second get two names. The caller fills it in
        (``snapshots.write_snapshot`` replaces it atomically, or removes it on failure).
        """
        _check_camera(camera)
        day, stem = utc_parts(wall)
        directory = self.snapshots_dir / camera / day
        directory.mkdir(parents=True, exist_ok=True)
        for name in _candidates(stem):
            candidate = directory / f"{name}.jpg"
            if _create_new(candidate):
                return candidate
        raise FileExistsError(f"no free snapshot name in {directory}")

    # -- paths from names ---------------------------------------------------------------------

    def relative(self, path: Path) -> str:
        """A path relative to the data directory, with '/' separators (for sidecars and URLs)."""
        return path.relative_to(self.root).as_posix()

    def clip_path(self, clip_id: str) -> Path:
        """The file of a clip id, after checking the id's form (no traversal possible)."""
        if not is_clip_id(clip_id):
            raise LayoutError(f"not a clip id: {clip_id!r}")
        return self.clips_dir / clip_id

    def media_path(self, relative: str) -> Path:
        """The file of a clip or snapshot path relative to the data directory, checked."""
        if not is_media_path(relative):
            raise LayoutError(f"not a clip or snapshot path: {relative!r}")
        return self.root / relative

    def sidecar_of(self, clip: Path) -> Path:
        """The sidecar beside a clip file (finished or partial)."""
        return clip.with_name(clip.name.split(".", 1)[0] + SIDECAR_EXTENSION)

    def clip_id_of(self, clip: Path) -> str:
        return self.relative(clip).removeprefix("clips/")

    def warn_snapshots_of(self, clip: Path) -> tuple[Path, Path]:
        """(start, peak) warn snapshot paths of a clip file, by its name."""
        stem = clip.name.split(".", 1)[0]
        warn = self.warn_dir / clip.parent.parent.name / clip.parent.name
        return warn / f"{stem}-start.jpg", warn / f"{stem}-peak.jpg"

    def has_clip_files(self, snapshot: StoredSnapshot) -> bool:
        """True when any file of a warn snapshot's clip exists (partial, finished or sidecar)."""
        if snapshot.clip_id is None:
            return False
        folder = (self.clips_dir / snapshot.clip_id).parent
        stem = snapshot.clip_id.rsplit("/", 1)[1].split(".", 1)[0]
        return any(
            (folder / f"{stem}{suffix}").exists()
            for suffix in (CLIP_EXTENSION, PARTIAL_SUFFIX + CLIP_EXTENSION, SIDECAR_EXTENSION)
        )

    # -- listing ------------------------------------------------------------------------------

    def _layout_files(
        self, pattern: re.Pattern[str], folder: Path, camera: str = "*"
    ) -> list[Path]:
        """Files at ``folder/<camera>/<day>/<name>`` whose relative path fits ``pattern``."""
        if not folder.is_dir():
            return []
        found = [
            path
            for path in folder.glob(f"{camera}/*/*")
            if pattern.fullmatch(self.relative(path)) is not None
        ]
        return sorted(found)

    def clip_folders(self) -> Iterator[ClipFolder]:
        """Each ``clips/<camera>/<day>`` folder, oldest day first per camera, listed once
        (one ``scandir`` each: what start-up reads for tens of thousands of clips)."""
        for folder in self._day_folders():
            yield self._clip_folder(folder)

    def _day_folders(self) -> Iterator[Path]:
        if not self.clips_dir.is_dir():
            return
        for camera in sorted(os.scandir(self.clips_dir), key=lambda e: e.name):
            if not camera.is_dir() or not is_camera_name(camera.name):
                continue
            for day in sorted(os.scandir(camera.path), key=lambda e: e.name):
                if day.is_dir() and _DAY_NAME.fullmatch(day.name):
                    yield Path(day.path)

    def _clip_folder(self, folder: Path) -> ClipFolder:
        prefix = f"clips/{folder.parent.name}/{folder.name}/"
        clips: list[Path] = []
        sidecars: list[Path] = []
        partials: list[Path] = []
        for name in sorted(os.listdir(folder)):
            clip = _CLIP_FILE.fullmatch(prefix + name)
            if clip is not None:
                (partials if clip["partial"] else clips).append(folder / name)
            elif _SIDECAR_FILE.fullmatch(prefix + name) is not None:
                sidecars.append(folder / name)
        return ClipFolder(folder, clips, sidecars, partials)

    def has_partials_since(self, wall: float) -> bool:
        """True when a clip is being written (or was left unfinished) in a day folder of
        ``wall``'s UTC day or later; reads only those folders."""
        first_day = utc_parts(wall)[0]
        if not self.clips_dir.is_dir():
            return False
        for camera in os.scandir(self.clips_dir):
            if not camera.is_dir() or not is_camera_name(camera.name):
                continue
            for day in os.scandir(camera.path):
                if day.name >= first_day and _DAY_NAME.fullmatch(day.name) and day.is_dir():
                    folder = self._clip_folder(Path(day.path))
                    if folder.partials:
                        return True
        return False

    def iter_clips(self) -> Iterator[Path]:
        """Finished clips, oldest name first."""
        for path in self._layout_files(_CLIP_FILE, self.clips_dir):
            if not path.name.endswith(PARTIAL_SUFFIX + CLIP_EXTENSION):
                yield path

    def iter_partials(self) -> Iterator[Path]:
        """Clips being written, or left unfinished by a crash (quick: a name is matched against
        the layout only when it ends like a partial clip)."""
        for folder in self._day_folders():
            prefix = f"clips/{folder.parent.name}/{folder.name}/"
            for name in sorted(os.listdir(folder)):
                if name.endswith(PARTIAL_SUFFIX + CLIP_EXTENSION) and _CLIP_FILE.fullmatch(
                    prefix + name
                ):
                    yield folder / name

    def iter_sidecars(self) -> Iterator[Path]:
        yield from self._layout_files(_SIDECAR_FILE, self.clips_dir)

    def iter_snapshots(
        self, kind: SnapshotKind | None = None, camera: str | None = None
    ) -> Iterator[StoredSnapshot]:
        """Warn and/or on-demand snapshots, of one camera or all; only names of the layout.

        Raises LayoutError for a ``camera`` that is not a camera name: it becomes part of a
        path, so nothing else may reach the filesystem.
        """
        if camera is not None:
            _check_camera(camera)
        folders = ((self.warn_dir, "warn"), (self.snapshots_dir, "snapshot"))
        for folder, folder_kind in folders:
            if kind not in (None, folder_kind):
                continue
            for path in self._layout_files(_JPEG_FILE, folder, camera or "*"):
                snapshot = self.snapshot_of(path)
                if snapshot is not None:
                    yield snapshot

    def snapshot_of(self, path: Path, size: int = 0) -> StoredSnapshot | None:
        """What a snapshot file of the layout is, from its path; None if it is not one."""
        match = _JPEG_FILE.fullmatch(self.relative(path))
        if match is None:
            return None
        ts = name_time(match["day"], match["stem"])
        if ts is None:
            return None
        kind = _FOLDER_KIND[match["folder"]]
        clip_id = None
        if kind == "warn":
            clip_id = f"{match['camera']}/{match['day']}/{match['stem']}{CLIP_EXTENSION}"
        return StoredSnapshot(path, ts, match["camera"], kind, clip_id, size)


# -- continuous segments ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    """A finished segment of continuous recording, as its name says.

    ``start`` is its first frame's capture time (epoch seconds, to the millisecond), ``end``
    is ``start`` plus its duration (the last frame's time plus one frame interval).
    """

    camera: str
    start: float
    end: float
    path: Path
    size: int

    @property
    def duration(self) -> float:
        return self.end - self.start


def _segment_stem(wall: float) -> tuple[str, str]:
    """('YYYY-MM-DD', 'HHMMSSmmmZ') of a segment's start, in UTC."""
    millis = round(wall * 1000)
    day, hms = utc_parts(millis // 1000)
    return day, f"{hms[:6]}{millis % 1000:03d}Z"


def segment_start_of(day: str, stem: str) -> float | None:
    """The start time a segment's ``day`` and name (``HHMMSSmmmZ...``) spell, or None."""
    whole = name_time(day, stem[:6] + "Z")
    if whole is None or not stem[6:9].isdigit():
        return None
    return whole + int(stem[6:9]) / 1000


def reserve_segment(storage: Storage, camera: str, wall: float) -> Path:
    """Create the partial file of a segment whose first frame was captured at ``wall``."""
    _check_camera(camera)
    day, stem = _segment_stem(wall)
    directory = storage.continuous_dir / camera / day
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / f"{stem}{PARTIAL_SUFFIX}{CLIP_EXTENSION}"
    if not _create_new(partial):
        raise FileExistsError(f"segment already exists: {partial}")
    return partial


def finished_segment_path(partial: Path, duration: float) -> Path:
    """The finished name of a partial segment that lasts ``duration`` seconds."""
    stem = partial.name.split(".", 1)[0]
    return partial.with_name(f"{stem}-{max(0, round(duration * 1000))}ms{CLIP_EXTENSION}")


def segment_of(storage: Storage, path: Path) -> Segment | None:
    """The finished segment a file of the layout is (its size read now); None if it is not."""
    match = _SEGMENT_FILE.fullmatch(storage.relative(path))
    if match is None or match["partial"]:
        return None
    start = segment_start_of(match["day"], match["hms"] + match["ms"] + "Z")
    if start is None:
        return None
    try:
        size = path.stat().st_size
    except OSError:
        return None
    end = start + int(match["duration"]) / 1000
    return Segment(match["camera"], round(start, 3), round(end, 3), path, size)


def _segment_files(storage: Storage, camera: str = "*") -> list[Path]:
    folder = storage.continuous_dir
    if not folder.is_dir():
        return []
    found = (
        p for p in folder.glob(f"{camera}/*/*") if _SEGMENT_FILE.fullmatch(storage.relative(p))
    )
    return sorted(found)


def iter_segments(storage: Storage, camera: str = "*") -> Iterator[Segment]:
    """Finished segments (one camera's, or all), by path."""
    for path in _segment_files(storage, camera):
        segment = segment_of(storage, path)
        if segment is not None:
            yield segment


def iter_segment_partials(storage: Storage, camera: str = "*") -> Iterator[Path]:
    """Segments being written, or left unfinished by a crash (one camera's, or all)."""
    for path in _segment_files(storage, camera):
        if path.name.endswith(PARTIAL_SUFFIX + CLIP_EXTENSION):
            yield path


def _check_camera(camera: str) -> None:
    if not is_camera_name(camera):
        raise LayoutError(f"not a camera name: {camera!r}")


# -- the clip record (sidecar) ---------------------------------------------------------------------


T = TypeVar("T")


class SidecarError(ValueError):
    """A sidecar that cannot be used; the message says why."""


# Keys a sidecar must hold for the index and the web side to use it.
REQUIRED_KEYS = frozenset(
    {"id", "camera", "file", "start_ts", "end_ts", "duration", "frames", "codec", "width", "height"}
)


OPTIONAL_KEYS = ("error", "mode", "source_codec", "audio")
_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})  # one for every record without unknown keys


@dataclass(frozen=True, slots=True)
class ClipUpload:
    """A confirmed off-site copy of a clip (``upload.destinations``)."""

    remote: str  # the destination, as configured: "b2:my-bucket/motiond"
    path: str  # the clip's path there
    time: str  # when the copy was confirmed, local time with offset

    def to_json(self) -> dict[str, str]:
        return {"remote": self.remote, "path": self.path, "time": self.time}

    @classmethod
    def from_json(cls, data: object) -> ClipUpload:
        if not isinstance(data, dict) or not all(
            isinstance(data.get(key), str) for key in ("remote", "path", "time")
        ):
            raise SidecarError(f"uploads: each must have remote, path and time, got {data!r}")
        return cls(data["remote"], data["path"], data["time"])


@dataclass(frozen=True, slots=True)
class ClipRecord:
    """What a sidecar says about a finished clip; immutable (``replace`` makes a changed copy).

    ``to_json``/``from_json`` are the sidecar's JSON object, field for field; keys this version
    does not know are kept in ``extra`` and written back unchanged.
    """

    id: str
    camera: str
    file: str  # relative to the data directory: "clips/" + id
    start: str  # local time with offset, for people
    end: str
    start_ts: float
    end_ts: float
    duration: float
    frames: int
    changed_frames: int | None
    peak_delta: float | None
    codec: str
    width: int
    height: int
    fps: float | None
    size: int
    boxes_union: tuple[int, int, int, int] | None
    snapshots: tuple[str, ...]
    poster: str | None
    dropped_frames: int = 0
    keep: bool = False
    recovered: bool = False
    error: str | None = None  # why the clip ended early (written only when set)
    mode: str | None = None  # copy (the camera's own packets) or transcode; None: unknown
    source_codec: str | None = None  # what the camera sent: h264, hevc, mjpeg, rawvideo ...
    audio: str | None = None  # the clip's sound track (aac), None without
    uploads: tuple[ClipUpload, ...] = ()  # off-site copies, one per destination (written when any)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> ClipRecord:
        return dataclasses.replace(self, **changes)

    def with_upload(self, upload: ClipUpload) -> ClipRecord:
        """This record with ``upload`` in place of any earlier copy to the same destination."""
        others = tuple(u for u in self.uploads if u.remote != upload.remote)
        return self.replace(uploads=(*others, upload))

    def uploaded_remotes(self) -> frozenset[str]:
        """The destinations that have confirmed a copy of the clip."""
        return frozenset(u.remote for u in self.uploads)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.extra)
        for item in dataclasses.fields(self):
            if item.name in ("extra", "uploads"):
                continue
            value = getattr(self, item.name)
            if isinstance(value, tuple):
                value = list(value)
            data[item.name] = value
        for optional in OPTIONAL_KEYS:  # written only when known, so old sidecars stay as they were
            if data[optional] is None:
                del data[optional]
        if self.uploads:
            data["uploads"] = [u.to_json() for u in self.uploads]
        return data

    @classmethod
    def from_json(cls, data: object) -> ClipRecord:
        """A record from a sidecar's JSON; SidecarError says what is wrong with it."""
        if not isinstance(data, dict):
            raise SidecarError("not a JSON object")
        missing = REQUIRED_KEYS - data.keys()
        if missing:
            raise SidecarError("missing " + ", ".join(sorted(missing)))
        reader = _Fields(data)
        clip_id = reader.text("id")
        if not is_clip_id(clip_id) or reader.text("file") != f"clips/{clip_id}":
            raise SidecarError(f"id and file are not a clip of the layout: {clip_id!r}")
        start_ts = reader.number("start_ts")
        end_ts = reader.number("end_ts")
        snapshots = tuple(
            s for s in reader.list_of("snapshots", str) if _JPEG_FILE.fullmatch(s) is not None
        )
        poster = reader.optional("poster", str)
        union = reader.optional("boxes_union", list)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(
            id=clip_id,
            camera=sys.intern(reader.text("camera")),  # shared by every record in memory
            file=f"clips/{clip_id}",
            start=reader.optional("start", str) or local_iso(start_ts),
            end=reader.optional("end", str) or local_iso(end_ts),
            start_ts=start_ts,
            end_ts=end_ts,
            duration=reader.number("duration"),
            frames=reader.integer("frames"),
            changed_frames=reader.optional_integer("changed_frames"),
            peak_delta=reader.optional_number("peak_delta"),
            codec=sys.intern(reader.text("codec")),
            width=reader.integer("width"),
            height=reader.integer("height"),
            fps=reader.optional_number("fps"),
            size=reader.optional_integer("size") or 0,
            boxes_union=_box(union),
            snapshots=snapshots,
            poster=poster if poster is None or _JPEG_FILE.fullmatch(poster) else None,
            dropped_frames=reader.optional_integer("dropped_frames") or 0,
            keep=reader.flag("keep"),
            recovered=reader.flag("recovered"),
            error=reader.optional("error", str),
            mode=reader.optional("mode", str),
            source_codec=reader.optional("source_codec", str),
            audio=reader.optional("audio", str),
            uploads=tuple(ClipUpload.from_json(u) for u in reader.list_of("uploads", dict)),
            extra={k: v for k, v in data.items() if k not in known} or _NO_EXTRA,
        )


class _Fields:
    """Typed reads from a sidecar's JSON object; a wrong type raises SidecarError."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def _wrong(self, key: str, expected: str) -> SidecarError:
        return SidecarError(f"{key} must be {expected}, got {self.data.get(key)!r}")

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str):
            raise self._wrong(key, "a string")
        return value

    def number(self, key: str) -> float:
        value = self.optional_number(key)
        if value is None:
            raise self._wrong(key, "a number")
        return value

    def optional_number(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._wrong(key, "a number")
        return value

    def integer(self, key: str) -> int:
        value = self.optional_integer(key)
        if value is None:
            raise self._wrong(key, "a whole number")
        return value

    def optional_integer(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(key, "a whole number")
        return value

    def flag(self, key: str) -> bool:
        value = self.data.get(key, False)
        if not isinstance(value, bool):
            raise self._wrong(key, "true or false")
        return value

    def optional(self, key: str, kind: type[T]) -> T | None:
        value = self.data.get(key)
        if value is None or isinstance(value, kind):
            return value
        raise self._wrong(key, kind.__name__)

    def list_of(self, key: str, kind: type[T]) -> list[T]:
        value = self.data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, kind) for v in value):
            raise self._wrong(key, f"a list of {kind.__name__}")
        return value


def _box(value: list[Any] | None) -> tuple[int, int, int, int] | None:
    if value is None:
        return None
    if len(value) != 4 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise SidecarError(f"boxes_union must be [x, y, w, h], got {value!r}")
    return (value[0], value[1], value[2], value[3])


def clip_timing(span: float, frames: int, fallback_interval: float) -> tuple[float, float]:
    """(duration, frame interval) of ``frames`` whose timestamps span ``span`` seconds.

    One frame has no span: ``fallback_interval`` is its length.
    """
    interval = span / (frames - 1) if frames > 1 else fallback_interval
    return span + interval, interval


def new_clip_record(
    storage: Storage,
    clip: Path,
    *,
    start_ts: float,
    duration: float,
    frames: int,
    codec: str,
    width: int,
    height: int,
    fps: float | None,
    snapshots: Sequence[Path] = (),
    changed_frames: int | None = None,
    peak_delta: float | None = None,
    boxes_union: tuple[int, int, int, int] | None = None,
    dropped_frames: int = 0,
    recovered: bool = False,
    error: str | None = None,
    mode: str | None = None,
    source_codec: str | None = None,
    audio: str | None = None,
) -> ClipRecord:
    """The record of a finished clip file (its size is read now); the poster is the first
    snapshot, the start one when it was written."""
    relative_snapshots = tuple(storage.relative(p) for p in snapshots)
    return ClipRecord(
        id=storage.clip_id_of(clip),
        camera=clip.parent.parent.name,
        file=storage.relative(clip),
        start=local_iso(start_ts),
        end=local_iso(start_ts + duration),
        start_ts=round(start_ts, 3),
        end_ts=round(start_ts + duration, 3),
        duration=round(duration, 3),
        frames=frames,
        changed_frames=changed_frames,
        peak_delta=None if peak_delta is None else round(peak_delta, 5),
        codec=codec,
        width=width,
        height=height,
        fps=None if fps is None else round(fps, 3),
        size=clip.stat().st_size,
        boxes_union=boxes_union,
        snapshots=relative_snapshots,
        poster=relative_snapshots[0] if relative_snapshots else None,
        dropped_frames=dropped_frames,
        recovered=recovered,
        error=error,
        mode=mode,
        source_codec=source_codec,
        audio=audio,
    )


def write_sidecar(path: Path, record: ClipRecord) -> None:
    data = record.to_json()
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def read_sidecar(path: Path) -> ClipRecord:
    """The record in a sidecar; SidecarError when it is unreadable, not JSON or incomplete."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SidecarError(str(exc)) from None
    return ClipRecord.from_json(data)
