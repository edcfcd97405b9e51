"""Crash recovery at start: partial clips, missing or corrupt sidecars, orphan sidecars.

A clip is written as fragmented MP4 (``ftyp``, an empty ``moov``, then ``moof``+``mdat`` pairs,
about one per second). After a crash, a ``*.partial.mp4`` ends somewhere inside a fragment; a
file cut mid-fragment fails to decode near its end in Chromium, so it is truncated to its last
complete fragment, renamed into place and given a sidecar marked ``recovered``. Runs before the
clip index is rebuilt, on the main thread, before any camera starts; nothing here raises.
A partial continuous segment is cut the same way and renamed to its finished name (which
holds its duration), or removed when nothing in it plays.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from motiond.record.mp4boxes import ClipProbe, ClipProbeError, playable_end, probe_clip
from motiond.store.layout import (
    CLIP_EXTENSION,
    PARTIAL_SUFFIX,
    ClipFolder,
    ClipRecord,
    SidecarError,
    Storage,
    clip_timing,
    fsync_dir,
    iter_segment_partials,
    name_time,
    new_clip_record,
    read_sidecar,
    rename_no_overwrite,
    write_sidecar,
)
from motiond.store.segments import finish_partial_segment

logger = logging.getLogger(__name__)

SEGMENT_FALLBACK_FPS = 15.0  # the length of a recovered one-frame segment: one frame at this


@dataclass(slots=True)
class RecoveryReport:
    """What ``recover`` did, by file (paths relative to the data directory)."""

    recovered: list[str] = field(default_factory=list)  # partial clips kept, truncated
    deleted: list[str] = field(default_factory=list)  # partial clips with nothing playable
    sidecars_rebuilt: list[str] = field(default_factory=list)  # missing or corrupt ones
    sidecars_removed: list[str] = field(default_factory=list)  # whose clip is gone
    problems: list[str] = field(default_factory=list)  # files left as they were
    segments_recovered: list[str] = field(default_factory=list)  # partial continuous segments

    def __bool__(self) -> bool:
        return bool(
            self.recovered
            or self.deleted
            or self.sidecars_rebuilt
            or self.sidecars_removed
            or self.problems
            or self.segments_recovered
        )

    def summary(self) -> str:
        return (
            f"{len(self.recovered)} partial clip(s) recovered, {len(self.deleted)} deleted, "
            f"{len(self.sidecars_rebuilt)} sidecar(s) rebuilt, "
            f"{len(self.sidecars_removed)} orphan sidecar(s) removed, "
            f"{len(self.problems)} problem(s), "
            f"{len(self.segments_recovered)} partial continuous segment(s) recovered"
        )


def recovered_record(
    storage: Storage, clip: Path, probe: ClipProbe, warn_of: Path | None = None
) -> ClipRecord:
    """A record for a clip whose recorder never wrote a sidecar: what the file tells, with
    what only the recorder knew (changed frames, peak delta, regions) null.

    ``warn_of`` is the file whose name its warn snapshots carry, when the clip was renamed to
    a free name (``-N``) on the way.
    """
    duration, interval = clip_timing(probe.span, probe.frames, 0.0)
    start_ts = name_time(clip.parent.name, clip.name)
    if start_ts is None:  # an odd name: the last write was the clip's end
        start_ts = clip.stat().st_mtime - duration
    snapshots = [p for p in storage.warn_snapshots_of(warn_of or clip) if p.is_file()]
    return new_clip_record(
        storage,
        clip,
        start_ts=start_ts,
        duration=duration,
        frames=probe.frames,
        codec=probe.codec,
        width=probe.width,
        height=probe.height,
        fps=1.0 / interval if interval > 0 else None,
        snapshots=snapshots,
        recovered=True,
    )


def sidecar_problem(sidecar: Path) -> str | None:
    """Why a sidecar cannot be used (unreadable, not JSON, keys missing), or None."""
    try:
        read_sidecar(sidecar)
    except SidecarError as exc:
        return str(exc)
    return None


# -- the steps -------------------------------------------------------------------------------------


def recover(storage: Storage) -> RecoveryReport:
    """Repair what a crash left in ``storage``; every problem is logged, none raises.

    Everything at once (tests, tools); the daemon runs ``recover_partials`` before its cameras
    start and ``load_clips`` (the sidecars, with the clip index) in the background after.
    """
    report = RecoveryReport()
    steps = (_recover_partials, _repair_sidecars, _remove_orphan_sidecars, _recover_segments)
    for step in steps:
        try:
            step(storage, report)
        except Exception as exc:  # a directory that cannot be listed, say
            logger.exception("crash recovery: %s failed", step.__name__)
            report.problems.append(f"{step.__name__}: {exc}")
    return report


def recover_partials(storage: Storage) -> RecoveryReport:
    """Finish or delete the partial clips and continuous segments a crash left (before any
    camera writes a new one); quick: one listing per day folder, and work only for the partial
    files themselves."""
    report = RecoveryReport()
    for step in (_recover_partials, _recover_segments):
        try:
            step(storage, report)
        except Exception as exc:  # a directory that cannot be listed, say
            logger.exception("crash recovery: %s failed", step.__name__)
            report.problems.append(f"{step.__name__}: {exc}")
    return report


def load_clips(
    storage: Storage,
    add: Callable[[ClipRecord], object],
    *,
    before: float,
    report: RecoveryReport | None = None,
) -> RecoveryReport:
    """Read every finished clip's sidecar and hand its record to ``add`` (the clip index), in
    one pass over the day folders: a missing or corrupt sidecar is rebuilt from its clip, an
    orphan sidecar removed, as ``recover`` does. Files changed at or after ``before`` (wall
    clock: this run's start) belong to this run's recorders and are left to them. Never raises.
    """
    report = report if report is not None else RecoveryReport()
    try:
        for folder in storage.clip_folders():
            _load_folder(storage, folder, add, before, report)
    except Exception as exc:  # a directory that cannot be listed, say
        logger.exception("clip index: loading the sidecars failed")
        report.problems.append(f"loading the sidecars: {exc}")
    return report


def _load_folder(
    storage: Storage,
    folder: ClipFolder,
    add: Callable[[ClipRecord], object],
    before: float,
    report: RecoveryReport,
) -> None:
    sidecars = set(folder.sidecars)
    for clip in folder.clips:
        sidecar = storage.sidecar_of(clip)
        sidecars.discard(sidecar)
        try:
            record = _record_of(storage, clip, sidecar, before, report)
        except OSError as exc:
            name = storage.relative(sidecar)
            logger.warning("clip index: cannot read %s; skipped: %s", name, exc)
            report.problems.append(f"{name}: {exc}")
            continue
        if record is not None:
            add(record)
    for orphan in sorted(sidecars):
        if orphan.with_suffix(CLIP_EXTENSION).exists() or _changed_since(orphan, before):
            continue
        _remove_orphan(storage, orphan, report)


def _record_of(
    storage: Storage, clip: Path, sidecar: Path, before: float, report: RecoveryReport
) -> ClipRecord | None:
    """The clip's record from its sidecar, or one rebuilt from the clip (None: left alone)."""
    try:
        record = read_sidecar(sidecar)
        if record.id == storage.clip_id_of(clip):
            return record
        problem = f"it names another clip, {record.id}"
    except SidecarError as exc:
        problem = str(exc)
    if _changed_since(clip, before):
        return None  # a clip of this run whose sidecar is being written now
    name = storage.relative(sidecar)
    if sidecar.exists():
        logger.warning("crash recovery: corrupt sidecar %s: %s", name, problem)
        os.replace(sidecar, sidecar.with_name(sidecar.name + ".corrupt"))
    else:
        logger.warning("crash recovery: clip %s has no sidecar", storage.relative(clip))
    try:
        record = recovered_record(storage, clip, probe_clip(clip))
    except ClipProbeError as exc:
        logger.warning("crash recovery: cannot rebuild sidecar %s; skipped: %s", name, exc)
        report.problems.append(f"{name}: {exc}")
        return None
    write_sidecar(sidecar, record)
    logger.warning("crash recovery: sidecar %s rebuilt from its clip", name)
    report.sidecars_rebuilt.append(name)
    return record


def _changed_since(path: Path, wall: float) -> bool:
    try:
        return path.stat().st_mtime >= wall
    except OSError:
        return True  # gone meanwhile: someone else's business


def _remove_orphan(storage: Storage, sidecar: Path, report: RecoveryReport) -> None:
    name = storage.relative(sidecar)
    try:
        with contextlib.suppress(FileNotFoundError):
            sidecar.unlink()
    except OSError as exc:
        logger.warning("crash recovery: cannot remove orphan sidecar %s: %s", name, exc)
        report.problems.append(f"{name}: {exc}")
        return
    fsync_dir(sidecar.parent)
    logger.warning("crash recovery: removed sidecar %s: its clip is missing", name)
    report.sidecars_removed.append(name)


def _recover_partials(storage: Storage, report: RecoveryReport) -> None:
    for partial in list(storage.iter_partials()):
        name = storage.relative(partial)
        try:
            _recover_partial(storage, partial, report)
        except Exception as exc:
            logger.exception("crash recovery: cannot recover %s; left as it is", name)
            report.problems.append(f"{name}: {exc}")


def _recover_segments(storage: Storage, report: RecoveryReport) -> None:
    """Partial continuous segments: cut to their last fragment and named, or removed."""
    for partial in list(iter_segment_partials(storage)):
        name = storage.relative(partial)
        try:
            segment = finish_partial_segment(storage, partial, None, SEGMENT_FALLBACK_FPS)
        except Exception as exc:
            logger.exception("crash recovery: cannot recover %s; left as it is", name)
            report.problems.append(f"{name}: {exc}")
            continue
        if segment is None:
            logger.warning("crash recovery: %s held nothing playable; deleted", name)
            report.deleted.append(name)
        else:
            logger.warning(
                "crash recovery: %s recovered: %.1f s", name, segment.end - segment.start
            )
            report.segments_recovered.append(storage.relative(segment.path))


def _recover_partial(storage: Storage, partial: Path, report: RecoveryReport) -> None:
    name = storage.relative(partial)
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
    record = recovered_record(storage, final, probe, warn_of=partial)
    write_sidecar(storage.sidecar_of(final), record)
    logger.warning(
        "crash recovery: clip recovered %s: %.1f s, %d frames (%d of %d bytes kept)",
        record.id,
        record.duration,
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
    for clip in storage.iter_clips():
        sidecar = storage.sidecar_of(clip)
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
        if not sidecar.with_suffix(CLIP_EXTENSION).exists():
            _remove_orphan(storage, sidecar, report)
