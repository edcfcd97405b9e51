"""Crash recovery at start: partial clips, missing or corrupt sidecars, orphan sidecars.

A clip is written as fragmented MP4 (``ftyp``, an empty ``moov``, then ``moof``+``mdat`` pairs,
about one per second). After a crash, a ``*.partial.mp4`` ends somewhere inside a fragment; a
file cut mid-fragment fails to decode near its end in Chromium, so it is truncated to its last
complete fragment, renamed into place and given a sidecar marked ``recovered``. Runs before the
clip index is rebuilt, on the main thread, before any camera starts; nothing here raises.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import av

from motiond.storage import (
    PARTIAL_SUFFIX,
    Storage,
    fsync_dir,
    local_iso,
    rename_no_overwrite,
    write_sidecar,
)

logger = logging.getLogger(__name__)

CLIP_STEM = re.compile(r"^(\d{6})Z(?:-\d+)?$")
# Keys a sidecar must hold for the index and the web side to use it.
REQUIRED_KEYS = frozenset(
    {"id", "camera", "file", "start_ts", "end_ts", "duration", "frames", "codec", "width", "height"}
)


class ClipProbeError(Exception):
    """A clip file that PyAV cannot read as video."""


@dataclass(slots=True)
class RecoveryReport:
    """What ``recover`` did, by file (paths relative to the data directory)."""

    recovered: list[str] = field(default_factory=list)  # partial clips kept, truncated
    deleted: list[str] = field(default_factory=list)  # partial clips with nothing playable
    sidecars_rebuilt: list[str] = field(default_factory=list)  # missing or corrupt ones
    sidecars_removed: list[str] = field(default_factory=list)  # whose clip is gone
    problems: list[str] = field(default_factory=list)  # files left as they were

    def __bool__(self) -> bool:
        return bool(
            self.recovered
            or self.deleted
            or self.sidecars_rebuilt
            or self.sidecars_removed
            or self.problems
        )

    def summary(self) -> str:
        return (
            f"{len(self.recovered)} partial clip(s) recovered, {len(self.deleted)} deleted, "
            f"{len(self.sidecars_rebuilt)} sidecar(s) rebuilt, "
            f"{len(self.sidecars_removed)} orphan sidecar(s) removed, "
            f"{len(self.problems)} problem(s)"
        )


# -- the MP4 box structure ----------------------------------------------------------------------


def _box_header(handle: BinaryIO, offset: int, file_size: int) -> tuple[bytes, int, int] | None:
    """(type, total size, header size) of the box at ``offset``, or None if cut or invalid."""
    handle.seek(offset)
    header = handle.read(8)
    if len(header) < 8:
        return None
    size, kind = struct.unpack(">I4s", header)
    header_size = 8
    if size == 1:  # 64-bit size follows the type
        large = handle.read(8)
        if len(large) < 8:
            return None
        (size,) = struct.unpack(">Q", large)
        header_size = 16
    elif size == 0:  # "to the end of the file": only the last box of a finished file
        size = file_size - offset
    if size < header_size:
        return None
    return kind, size, header_size


def playable_end(path: Path) -> int:
    """The byte offset just after the last complete ``moof``+``mdat`` pair; 0 if none.

    0 also when the file has no ``ftyp``/``moov`` before its first fragment (not a
    fragmented MP4, or cut inside its header).
    """
    file_size = path.stat().st_size
    end = 0
    seen_moov = False
    moof_complete = False  # the previous box was a complete moof
    offset = 0
    with open(path, "rb") as handle:
        while offset < file_size:
            header = _box_header(handle, offset, file_size)
            if header is None:
                break
            kind, size, _ = header
            box_end = offset + size
            if box_end > file_size:
                break  # cut inside this box
            if offset == 0 and kind != b"ftyp":
                return 0
            if kind == b"moov":
                seen_moov = True
            elif kind == b"mdat" and moof_complete and seen_moov:
                end = box_end
            moof_complete = kind == b"moof"
            offset = box_end
    return end


# -- probing and sidecars ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClipProbe:
    codec: str
    width: int
    height: int
    frames: int
    span: float  # seconds from the first frame's timestamp to the last one's


def probe_clip(path: Path) -> ClipProbe:
    """Demux every packet (no decoding) to count frames and measure the timestamps."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ClipProbeError(f"{path} has no video stream")
            stream = container.streams.video[0]
            frames = 0
            first: int | None = None
            last: int | None = None
            for packet in container.demux(stream):
                if packet.pts is None or packet.size == 0:
                    continue
                frames += 1
                first = packet.pts if first is None else min(first, packet.pts)
                last = packet.pts if last is None else max(last, packet.pts)
            codec = stream.codec_context.name
            width, height = stream.codec_context.width, stream.codec_context.height
            time_base = stream.time_base
    except av.FFmpegError as exc:
        raise ClipProbeError(f"{path}: {exc}") from exc
    if frames == 0 or first is None or last is None or time_base is None:
        raise ClipProbeError(f"{path} holds no video frames")
    return ClipProbe(codec, width, height, frames, float((last - first) * time_base))


def _start_from_name(clip: Path) -> float | None:
    """The clip's start in epoch seconds from ``<camera>/<YYYY-MM-DD>/<HHMMSSZ>...``, in UTC."""
    stem = clip.name.split(".", 1)[0]
    match = CLIP_STEM.match(stem)
    if match is None:
        return None
    try:
        moment = dt.datetime.strptime(f"{clip.parent.name} {match.group(1)}", "%Y-%m-%d %H%M%S")
    except ValueError:
        return None
    return moment.replace(tzinfo=dt.UTC).timestamp()


def recovered_record(
    storage: Storage, clip: Path, probe: ClipProbe, stem: str | None = None
) -> dict[str, Any]:
    """A sidecar for a clip whose recorder never wrote one: the fields ``_sidecar_record``
    writes, with what only the recorder knew (changed frames, peak delta, regions) null.

    ``stem`` names its warn snapshots when the clip was renamed to a free name (``-N``).
    """
    interval = probe.span / (probe.frames - 1) if probe.frames > 1 else 0.0
    duration = probe.span + interval
    start_ts = _start_from_name(clip)
    if start_ts is None:  # an odd name: the last write was the clip's end
        start_ts = clip.stat().st_mtime - duration
    stem = stem or clip.name.split(".", 1)[0]
    camera, day = clip.parent.parent.name, clip.parent.name
    warn = storage.warn_dir / camera / day
    snapshots = [p for p in (warn / f"{stem}-start.jpg", warn / f"{stem}-peak.jpg") if p.is_file()]
    start_snapshot = warn / f"{stem}-start.jpg"
    return {
        "id": storage.relative(clip).removeprefix("clips/"),
        "camera": camera,
        "file": storage.relative(clip),
        "start": local_iso(start_ts),
        "end": local_iso(start_ts + duration),
        "start_ts": round(start_ts, 3),
        "end_ts": round(start_ts + duration, 3),
        "duration": round(duration, 3),
        "frames": probe.frames,
        "changed_frames": None,
        "peak_delta": None,
        "codec": probe.codec,
        "width": probe.width,
        "height": probe.height,
        "fps": round(1.0 / interval, 3) if interval > 0 else None,
        "size": clip.stat().st_size,
        "boxes_union": None,
        "snapshots": [storage.relative(p) for p in snapshots],
        "poster": storage.relative(start_snapshot) if start_snapshot in snapshots else None,
        "dropped_frames": 0,
        "keep": False,
        "recovered": True,
    }


def sidecar_problem(sidecar: Path) -> str | None:
    """Why a sidecar cannot be used (unreadable, not JSON, keys missing), or None."""
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return str(exc)
    if not isinstance(record, dict):
        return "not a JSON object"
    missing = REQUIRED_KEYS - record.keys()
    if missing:
        return "missing " + ", ".join(sorted(missing))
    return None


# -- the steps -------------------------------------------------------------------------------------


def recover(storage: Storage) -> RecoveryReport:
    """Repair what a crash left in ``storage``; every problem is logged, none raises."""
    report = RecoveryReport()
    for step in (_recover_partials, _repair_sidecars, _remove_orphan_sidecars):
        try:
            step(storage, report)
        except Exception as exc:  # a directory that cannot be listed, say
            logger.exception("crash recovery: %s failed", step.__name__)
            report.problems.append(f"{step.__name__}: {exc}")
    return report


def _recover_partials(storage: Storage, report: RecoveryReport) -> None:
    for partial in list(storage.iter_partials()):
        name = storage.relative(partial)
        try:
            _recover_partial(storage, partial, report)
        except Exception as exc:
            logger.exception("crash recovery: cannot recover %s; left as it is", name)
            report.problems.append(f"{name}: {exc}")


def _recover_partial(storage: Storage, partial: Path, report: RecoveryReport) -> None:
    name = storage.relative(partial)
    if not partial.name.endswith(PARTIAL_SUFFIX + ".mp4"):
        logger.warning("crash recovery: %s is not an MP4 clip; left as it is", name)
        report.problems.append(f"{name}: not an MP4 clip")
        return
    size = partial.stat().st_size
    end = playable_end(partial)
    probe: ClipProbe | None = None
    reason = "no complete fragment"
    if end > 0:
        _truncate(partial, end)
        try:
            probe = probe_clip(partial)
        except ClipProbeError as exc:
            reason = str(exc)
    if probe is None:
        partial.unlink()
        fsync_dir(partial.parent)
        logger.warning(
            "crash recovery: deleted unfinished clip %s (%d bytes): %s", name, size, reason
        )
        report.deleted.append(name)
        return
    final = rename_no_overwrite(
        partial, partial.with_name(partial.name.replace(PARTIAL_SUFFIX, ""))
    )
    record = recovered_record(storage, final, probe, stem=partial.name.split(".", 1)[0])
    write_sidecar(final.with_suffix(".json"), record)
    logger.warning(
        "crash recovery: clip recovered %s: %.1f s, %d frames (%d of %d bytes kept)",
        record["id"],
        record["duration"],
        probe.frames,
        end,
        size,
    )
    report.recovered.append(storage.relative(final))


def _truncate(path: Path, end: int) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(end)
        handle.flush()
        os.fsync(handle.fileno())


def _repair_sidecars(storage: Storage, report: RecoveryReport) -> None:
    """A finished clip with no sidecar (crash between rename and sidecar) or a corrupt one."""
    if not storage.clips_dir.is_dir():
        return
    for clip in sorted(storage.clips_dir.glob("*/*/*.mp4")):
        if clip.name.endswith(PARTIAL_SUFFIX + ".mp4"):
            continue  # one the step before could not recover
        sidecar = clip.with_suffix(".json")
        name = storage.relative(sidecar)
        try:
            if not sidecar.exists():
                logger.warning("crash recovery: clip %s has no sidecar", storage.relative(clip))
            else:
                problem = sidecar_problem(sidecar)
                if problem is None:
                    continue
                logger.warning("crash recovery: corrupt sidecar %s: %s", name, problem)
                os.replace(sidecar, sidecar.with_name(sidecar.name + ".corrupt"))
            write_sidecar(sidecar, recovered_record(storage, clip, probe_clip(clip)))
        except (OSError, ClipProbeError) as exc:
            logger.warning("crash recovery: cannot rebuild sidecar %s; skipped: %s", name, exc)
            report.problems.append(f"{name}: {exc}")
            continue
        logger.warning("crash recovery: sidecar %s rebuilt from its clip", name)
        report.sidecars_rebuilt.append(name)


def _remove_orphan_sidecars(storage: Storage, report: RecoveryReport) -> None:
    """A sidecar must never list a clip that is not there."""
    for sidecar in list(storage.iter_sidecars()):
        if sidecar.with_suffix(".mp4").exists():
            continue
        name = storage.relative(sidecar)
        try:
            with contextlib.suppress(FileNotFoundError):
                sidecar.unlink()
        except OSError as exc:
            logger.warning("crash recovery: cannot remove orphan sidecar %s: %s", name, exc)
            report.problems.append(f"{name}: {exc}")
            continue
        fsync_dir(sidecar.parent)
        logger.warning("crash recovery: removed sidecar %s: its clip is missing", name)
        report.sidecars_removed.append(name)
