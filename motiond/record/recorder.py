"""Clip writing: one encoder thread per camera behind a bounded mailbox.

Thread crossing: the camera's clip flow (clipflow.py, on its capture thread) calls
``begin_clip``/``add_frame``/``end_clip``, which only put messages in the mailbox; everything
else (encoding, files, snapshots, events) happens on the recorder's own thread. A full mailbox
drops the frame and counts it, so a slow disk or encoder never stalls capture (except for a
file read "as fast as it decodes", where the capture thread waits instead, so results are
deterministic).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from motiond.config.camera import CameraConfig
from motiond.config.record import RecordConfig
from motiond.detect.boxes import Box
from motiond.detect.still import Still
from motiond.detect.trigger import ClipStats
from motiond.events import (
    ClipDiscarded,
    ClipEnded,
    ClipStarted,
    EventSink,
    StorageError,
)
from motiond.frames import AudioParams, Frame, FrameDecodeError
from motiond.record.encoders import (
    ClipWriter,
    CopyClipWriter,
    OpenCVClipWriter,
    Overlay,
    PyAVClipWriter,
    burn_overlay,
)
from motiond.record.mp4boxes import ClipProbeError, playable_end, probe_clip
from motiond.record.snapshots import write_snapshot
from motiond.store.layout import (
    ClipPaths,
    ClipRecord,
    Storage,
    clip_timing,
    new_clip_record,
    rename_no_overwrite,
    write_sidecar,
)
from motiond.threads import named_thread

logger = logging.getLogger(__name__)


# Asked before each clip: make room per retention (the argument says why); False: storage full.
RoomCheck = Callable[[str], bool]
# Errors that mean "the disk cannot take more", not "this clip is broken".
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG})


def is_disk_error(exc: BaseException) -> bool:
    """True for ENOSPC and friends, from Python's OSError or PyAV's FFmpegError alike."""
    return getattr(exc, "errno", None) in DISK_ERRNOS


# ---------------------------------------------------------------------------------------------
# Messages from the capture thread


@dataclass(slots=True)
class _BeginClip:
    frames: list[Frame]  # from a keyframe: pre-roll, then the first changed frame
    trigger: Still | None
    boxes: tuple[Box, ...]  # what moved first, in the camera's pixels (for the event)


@dataclass(slots=True)
class _EndClip:
    keep: bool
    stats: ClipStats
    peak: Still | None
    union: Box | None
    dropped: int


@dataclass(slots=True)
class _ActiveClip:
    paths: ClipPaths
    writer: ClipWriter | None = None
    first: Frame | None = None
    last: Frame | None = None
    frames_written: int = 0
    frames_garbled: int = 0
    codec: str = ""
    width: int = 0
    height: int = 0
    mode: str = ""  # copy or transcode
    source_codec: str = ""
    audio: AudioParams | None = None
    failed: str | None = None
    disk_full: bool = False
    frames_lost: int = 0  # frames after a write failure, dropped
    salvaged_span: float | None = None  # first to last frame kept, once cut to its fragments
    snapshots: list[Path] = field(default_factory=list)


QUEUE_MAX_BYTES = 96 * 1024 * 1024


class FrameMailbox:
    """Frames bounded to ``capacity`` and ``max_bytes`` (the excess is dropped or waited for);
    control messages always fit.

    Its condition protects ``_items`` and ``_frames``; the capture thread puts, the recorder
    thread takes.
    """

    def __init__(self, capacity: int, max_bytes: int = QUEUE_MAX_BYTES) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._items: deque[object] = deque()
        self._frames = 0
        self.frame_bytes = 0
        self._condition = threading.Condition()
        self.closed = False

    def put_control(self, item: object) -> None:
        with self._condition:
            self._items.append(item)
            self._condition.notify_all()

    def put_frame(self, frame: Frame, wait: bool) -> bool:
        with self._condition:
            while self._frames >= self.capacity or (
                self._frames and self.frame_bytes + frame.nbytes > self.max_bytes
            ):
                if not wait or self.closed:
                    return False
                self._condition.wait(0.5)
            self._items.append(frame)
            self._frames += 1
            self.frame_bytes += frame.nbytes
            self._condition.notify_all()
            return True

    def take(self, timeout: float) -> object | None:
        with self._condition:
            if not self._items:
                self._condition.wait(timeout)
            if not self._items:
                return None
            item = self._items.popleft()
            if isinstance(item, Frame):
                self._frames -= 1
                self.frame_bytes -= item.nbytes
            self._condition.notify_all()
            return item

    def __len__(self) -> int:
        with self._condition:
            return len(self._items)


_STOP = object()


class ClipRecorder:
    """Writes one camera's clips on its own thread."""

    def __init__(
        self,
        camera: CameraConfig,
        storage: Storage,
        on_event: EventSink,
        nominal_fps: float,
        *,
        wait_when_full: bool = False,
        make_room: RoomCheck | None = None,
    ) -> None:
        self.camera = camera
        self.storage = storage
        self.on_event = on_event
        self.make_room = make_room
        self.storage_full = False  # recorder thread only: clips refused until room returns
        self.clips_refused = 0
        self.nominal_fps = nominal_fps
        self.wait_when_full = wait_when_full
        self._mailbox = FrameMailbox(camera.record.queue_frames)
        self._thread: threading.Thread | None = None
        self._active: _ActiveClip | None = None
        self.heartbeat = 0.0  # monotonic time of the recorder loop's last turn (watchdog)
        self.frames_dropped = 0  # written by the capture thread only
        self._dropped_in_clip = 0  # capture thread only
        self.clips_kept = 0
        self.clips_discarded = 0
        self.clips_failed = 0

    # -- called from the capture thread ---------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("recorder already started")
        self._thread = named_thread(
            self._run, f"recorder-{self.camera.name}", os_name=f"rec:{self.camera.name}"
        )
        self._thread.start()

    def begin_clip(
        self, frames: list[Frame], trigger: Still | None, boxes: tuple[Box, ...] = ()
    ) -> None:
        """Start a clip with ``frames`` (compressed, from a keyframe); ``trigger`` is the
        picture of what moved first, for the start snapshot (None: a clip split off);
        ``boxes`` are what moved, in the camera's (main stream's) pixels, for ``clip_start``:
        a sub stream's still has its boxes in its own, smaller pixels."""
        self._mailbox.put_control(_BeginClip(frames, trigger, boxes))

    def add_frame(self, frame: Frame) -> bool:
        """Queue a frame of the clip in progress; False (and counted) when it had to be dropped."""
        if self._mailbox.put_frame(frame, self.wait_when_full):
            return True
        self.frames_dropped += 1
        self._dropped_in_clip += 1
        return False

    def end_clip(self, keep: bool, stats: ClipStats, peak: Still | None, union: Box | None) -> None:
        dropped, self._dropped_in_clip = self._dropped_in_clip, 0
        self._mailbox.put_control(_EndClip(keep, stats, peak, union, dropped))

    def stop(self, timeout: float) -> bool:
        """Finish queued work (the caller ends any clip first) and join; False on timeout."""
        if self._thread is None:
            return True
        self._mailbox.put_control(_STOP)
        self._thread.join(timeout)
        self._mailbox.closed = True
        return not self._thread.is_alive()

    @property
    def queued(self) -> int:
        return len(self._mailbox)

    @property
    def queued_bytes(self) -> int:
        return self._mailbox.frame_bytes

    # -- the recorder thread --------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self.heartbeat = time.monotonic()
            item = self._mailbox.take(timeout=1.0)
            if item is None:
                continue
            if item is _STOP:
                return
            try:
                if isinstance(item, Frame):
                    self._write(item)
                elif isinstance(item, _BeginClip):
                    self._begin(item)
                elif isinstance(item, _EndClip):
                    self._end(item)
            except Exception:
                logger.exception("camera %s: recorder error", self.camera.name)

    def _begin(self, message: _BeginClip) -> None:
        if self._active is not None:  # cannot happen through CameraWorker; be safe
            logger.error("camera %s: new clip while one is open; closing it", self.camera.name)
            self._close_writer(self._active)
        first = message.frames[0]
        if not self._room_for_a_clip():
            return
        try:
            paths = self.storage.reserve_clip(self.camera.name, first.wall)
        except OSError as exc:
            logger.error("camera %s: cannot start a clip: %s", self.camera.name, exc)
            self.on_event(
                StorageError(camera=self.camera.name, error=str(exc), path=self.storage.clips_dir)
            )
            return
        clip = _ActiveClip(paths=paths, audio=_audio_params(message.frames, self.camera))
        self._active = clip
        if message.trigger is not None:
            self._snapshot(clip, paths.start_snapshot, message.trigger)
        logger.info(
            "camera %s: clip started %s (%d pre-roll frames)",
            self.camera.name,
            paths.clip_id,
            len(message.frames) - 1,
        )
        self.on_event(
            ClipStarted(
                camera=self.camera.name,
                clip_id=paths.clip_id,
                partial_path=paths.partial,
                poster=self.storage.relative(paths.start_snapshot),
                start=first.wall,
                boxes=message.boxes,
            )
        )
        for frame in message.frames:
            self._write(frame)

    def _room_for_a_clip(self) -> bool:
        """Run retention before a clip; while the storage is full, refuse (logged once)."""
        if self.make_room is None:
            return True
        room = self.make_room(f"camera {self.camera.name} starting a clip")
        if not room:
            self.clips_refused += 1
            if not self.storage_full:
                logger.error("camera %s: storage full: not recording this clip", self.camera.name)
        elif self.storage_full:
            logger.warning("camera %s: recording again: storage has room", self.camera.name)
        self.storage_full = not room
        return room

    def _write(self, frame: Frame) -> None:
        clip = self._active
        if clip is None:
            return
        if clip.failed:
            clip.frames_lost += 1
            return
        if clip.writer is None and not frame.keyframe:
            clip.frames_lost += 1  # a coded stream decodes from a keyframe on; cannot happen
            return
        try:
            if clip.writer is None:
                clip.writer = self._open_writer(clip, frame)
            clip.writer.write(frame)
        except FrameDecodeError:
            clip.frames_garbled += 1
            return
        except Exception as exc:
            # A full disk is expected and explained in one line; anything else gets its trace.
            disk_full = is_disk_error(exc)
            logger.error(
                "camera %s: %s writing %s (%s): keeping the clip up to its last complete "
                "fragment, dropping the rest of it",
                self.camera.name,
                "disk full" if disk_full else "failed",
                clip.paths.clip_id,
                exc,
                exc_info=not disk_full,
            )
            self._write_failed(clip, exc, disk_full)
            return
        if clip.first is None:
            clip.first = frame
        clip.last = frame
        clip.frames_written += 1

    def _write_failed(self, clip: _ActiveClip, exc: Exception, disk_full: bool) -> None:
        """Keep what was written, drop the rest of the clip; on a full disk, make room."""
        clip.failed = str(exc)
        clip.disk_full = disk_full
        clip.frames_lost += 1  # the frame that failed
        self._close_writer(clip)
        self.on_event(
            StorageError(camera=self.camera.name, error=str(exc), path=clip.paths.partial)
        )
        if clip.disk_full and self.make_room is not None:
            self.make_room(f"camera {self.camera.name}: disk full")

    def _open_writer(self, clip: _ActiveClip, frame: Frame) -> ClipWriter:
        record = self.camera.record
        source_codec = frame.packet.params.codec if frame.packet else "mjpeg"
        if frame.jpeg is None and frame.packet is None:
            source_codec = "rawvideo"
        writer: ClipWriter
        if record.mode == "copy" and not copies(record, source_codec):
            logger.warning(
                "camera %s: record.mode is copy but the camera sends %s, which an MP4 clip "
                "cannot carry playably; transcoding %s",
                self.camera.name,
                source_codec,
                clip.paths.clip_id,
            )
        if frame.packet is not None and copies(record, source_codec):
            writer = CopyClipWriter(clip.paths.partial, frame, frame.mono, clip.audio)
            clip.mode = "copy"
        elif record.encoder == "opencv":
            writer = OpenCVClipWriter(
                clip.paths.partial,
                frame.width,
                frame.height,
                self.nominal_fps,
                overlay_of(self.camera),
            )
            clip.mode = "transcode"
        else:
            writer = PyAVClipWriter(
                clip.paths.partial,
                record,
                width=frame.width,
                height=frame.height,
                fps=self.nominal_fps,
                origin=frame.mono,
                audio=clip.audio,
                overlay=overlay_of(self.camera),
            )
            clip.mode = "transcode"
        clip.source_codec = source_codec
        clip.codec, clip.width, clip.height = writer.codec_name, writer.width, writer.height
        return writer

    def _close_writer(self, clip: _ActiveClip) -> None:
        writer, clip.writer = clip.writer, None
        if writer is None:
            return
        try:
            writer.close()
        except Exception as exc:
            if clip.disk_full or is_disk_error(exc):
                # Expected after ENOSPC: the last fragment is cut; _salvage trims it.
                clip.disk_full = True
                clip.failed = clip.failed or str(exc)
                return
            clip.failed = clip.failed or str(exc)
            logger.exception("camera %s: closing %s failed", self.camera.name, clip.paths.partial)

    def _end(self, message: _EndClip) -> None:
        clip, self._active = self._active, None
        if clip is None:
            return
        self._close_writer(clip)
        paths = clip.paths
        keep = message.keep and clip.frames_written > 0
        if keep and clip.failed:
            keep = self._salvage(clip)
        if keep and paths.partial.stat().st_size == 0:
            keep = False
        if not keep:
            self._discard(clip, message)
            return
        if message.peak is not None and not clip.disk_full:
            self._snapshot(clip, paths.peak_snapshot, message.peak)
        final = rename_no_overwrite(paths.partial, paths.final)
        record = self._sidecar_record(clip, message, final)
        self._write_sidecar(final, record)
        self.clips_kept += 1
        logger.info(
            "camera %s: clip kept %s: %.1f s, %d frames, %d changed, peak delta %.4f%s",
            self.camera.name,
            record.id,
            record.duration,
            record.frames,
            record.changed_frames,
            record.peak_delta,
            f", {message.dropped} frames dropped (encoder or disk too slow)"
            if message.dropped
            else "",
        )
        self.on_event(ClipEnded(camera=self.camera.name, record=record))
        if clip.disk_full and self.make_room is not None:
            self.make_room(f"camera {self.camera.name}: clip cut short by a full disk")

    def _salvage(self, clip: _ActiveClip) -> bool:
        """Cut a failed clip to its last complete fragment; False when nothing plays."""
        partial = clip.paths.partial
        try:
            end = playable_end(partial)
            if end == 0:
                return False
            if end < partial.stat().st_size:
                os.truncate(partial, end)
            probe = probe_clip(partial)
        except (OSError, ClipProbeError) as exc:
            logger.warning("camera %s: nothing playable in %s: %s", self.camera.name, partial, exc)
            return False
        clip.frames_lost += clip.frames_written - probe.frames
        clip.frames_written = probe.frames
        clip.salvaged_span = probe.span
        return probe.frames > 0

    def _write_sidecar(self, final: Path, record: ClipRecord) -> None:
        """Write the sidecar; on a full disk make room and retry once. If it still fails the
        clip stays (the index lists it from the event; a restart rebuilds its sidecar)."""
        for attempt in (1, 2):
            try:
                write_sidecar(self.storage.sidecar_of(final), record)
                return
            except OSError as exc:
                if attempt == 1 and is_disk_error(exc) and self.make_room is not None:
                    self.make_room(f"camera {self.camera.name}: disk full")
                    continue
                logger.error(
                    "camera %s: cannot write the sidecar of %s (%s); the clip is kept and "
                    "its sidecar is rebuilt at the next start",
                    self.camera.name,
                    record.id,
                    exc,
                )
                self.on_event(StorageError(camera=self.camera.name, error=str(exc), path=final))

    def _snapshot(self, clip: _ActiveClip, path: Path, still: Still) -> None:
        """Write a warn snapshot of the clip; a failure is logged, the clip goes on."""
        try:
            write_snapshot(path, still.frame, still.boxes)
        except Exception as exc:
            logger.error(
                "camera %s: cannot write snapshot %s: %s",
                self.camera.name,
                path,
                exc,
                exc_info=not is_disk_error(exc),  # a full disk needs no traceback
            )
            return
        clip.snapshots.append(path)

    def _discard(self, clip: _ActiveClip, message: _EndClip) -> None:
        for path in (clip.paths.partial, *clip.snapshots):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if clip.failed:
            self.clips_failed += 1
        self.clips_discarded += 1
        reason = (
            f"failed: {clip.failed}"
            if clip.failed and not clip.frames_written
            else f"{message.stats.changed_frames} changed frames "
            f"< min_changed_frames {self.camera.motion.min_changed_frames}"
        )
        logger.info(
            "camera %s: clip discarded %s (%s)", self.camera.name, clip.paths.clip_id, reason
        )
        self.on_event(
            ClipDiscarded(
                camera=self.camera.name,
                clip_id=clip.paths.clip_id,
                changed_frames=message.stats.changed_frames,
            )
        )

    def _sidecar_record(self, clip: _ActiveClip, message: _EndClip, final: Path) -> ClipRecord:
        assert clip.first is not None and clip.last is not None
        span = clip.last.mono - clip.first.mono
        if clip.salvaged_span is not None:
            span = clip.salvaged_span
        duration, interval = clip_timing(span, clip.frames_written, 1.0 / self.nominal_fps)
        union = message.union
        return new_clip_record(
            self.storage,
            final,
            start_ts=clip.first.wall,
            duration=duration,
            frames=clip.frames_written,
            codec=clip.codec,
            width=clip.width,
            height=clip.height,
            fps=1.0 / interval if interval > 0 else self.nominal_fps,
            snapshots=clip.snapshots,
            changed_frames=message.stats.changed_frames,
            peak_delta=message.stats.peak_delta,
            boxes_union=(union.x, union.y, union.width, union.height) if union else None,
            dropped_frames=message.dropped + clip.frames_lost,
            error=clip.failed or None,
            mode=clip.mode,
            source_codec=clip.source_codec,
            audio="aac" if clip.audio is not None else None,
        )


def copies(record: RecordConfig, source_codec: str) -> bool:
    """Whether a camera stream of ``source_codec`` is recorded as it came (no re-encoding).

    ``auto`` copies H.264, which every browser plays, and H.265 only with ``copy_hevc`` (Safari
    and recent Chromium on some systems play it; Firefox does not); everything else is
    transcoded. ``copy`` copies H.264 and H.265 (an MP4 of anything else would not play).
    """
    if record.mode == "transcode" or record.encoder == "opencv":
        return False
    overlay = record.overlay
    if overlay.name or overlay.timestamp:
        return False
    if source_codec == "h264":
        return True
    if source_codec == "hevc":
        return record.mode == "copy" or record.copy_hevc
    return False


def overlay_of(camera: CameraConfig) -> Overlay | None:
    """What a transcoded clip's frames get burnt in (the camera's name, the time), if any."""
    overlay = camera.record.overlay
    if not (overlay.name or overlay.timestamp):
        return None
    name = camera.name if overlay.name else None

    def burn(image: Any, wall: float) -> Any:
        return burn_overlay(image, name, wall if overlay.timestamp else None)

    return burn


def _audio_params(frames: list[Frame], camera: CameraConfig) -> AudioParams | None:
    """The camera's audio format, from the first audio packet of a clip's first frames."""
    if not camera.record.audio:
        return None
    for frame in frames:
        for packet in frame.audio:
            return packet.params
    return None
