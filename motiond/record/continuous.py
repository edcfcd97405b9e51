"""Continuous recording (``record.continuous``): a camera's whole stream, in segments.

Every compressed frame the clip flow sees is handed here too. On its own thread (``seg:NAME``)
it is written to consecutive fragmented MP4 segments of about ``record.segment``: a segment
ends just before the first keyframe at or after that length, and the next one starts with that
keyframe, so consecutive segments meet within a frame interval and each decodes from its
start. A copy camera's packets are copied (the cost is the copy alone); other cameras are
encoded as clips are (``record.codec``, ``preset``, ``crf``), by an encoder of their own.

A segment is written as ``<start>.partial.mp4`` and renamed, once closed, to a name holding
its first frame's capture time and its duration (``store/layout.py``), then announced with a
``SegmentEnded`` event (the segment index lists it). The stream ending (camera lost, disarmed,
stopping) closes the segment, so an outage is a gap between two playable files; a crash
leaves a partial segment that recovery cuts to its last fragment (``store/recovery.py``).

Threads: ``push``, ``cut``, ``start`` and ``stop`` are called on the camera's capture thread
and only enqueue (a bounded mailbox: full, the frame is dropped and counted, and frames are
skipped up to the next keyframe so the file still decodes); files, encoding, retention's
``make_room`` and events happen on the segment thread. ``frames_dropped`` and the other
counters are plain values one thread writes, read from any.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from motiond.config.camera import CameraConfig
from motiond.events import EventSink, SegmentEnded, StorageError
from motiond.frames import Frame, FrameDecodeError, StreamParams
from motiond.record.encoders import ClipWriter, CopyClipWriter, PyAVClipWriter
from motiond.record.recorder import FrameMailbox, RoomCheck, copies, is_disk_error, overlay_of
from motiond.store.layout import Storage, clip_timing, reserve_segment
from motiond.store.segments import finish_partial_segment
from motiond.threads import named_thread

logger = logging.getLogger(__name__)

# Storage full: the next attempt to open a segment waits this long (capture time).
REFUSED_RETRY = 10.0


@dataclass(slots=True)
class _Cut:
    """The stream ended: close the segment being written."""


_STOP = object()


@dataclass(slots=True)
class _OpenSegment:
    partial: Path
    writer: ClipWriter
    first: Frame
    params: StreamParams | None
    last: Frame | None = None
    frames: int = 0
    failed: str | None = None


class ContinuousRecorder:
    """Writes one camera's continuous segments on its own thread."""

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
        self.name = camera.name
        self.storage = storage
        self.on_event = on_event
        self.nominal_fps = nominal_fps
        self.segment_length = camera.record.segment
        self.wait_when_full = wait_when_full
        self.make_room = make_room
        self._mailbox = FrameMailbox(camera.record.queue_frames)
        self._thread: threading.Thread | None = None
        # capture thread only
        self._resync = False  # a frame was dropped: skip up to the next keyframe
        self._since_cut = False  # frames were queued since the last cut
        self.frames_dropped = 0
        # segment thread only
        self._active: _OpenSegment | None = None
        self._refused_until: float | None = None  # storage full: no segment before (mono)
        self.heartbeat = 0.0
        self.segments_written = 0
        self.frames_lost = 0  # not written: no room, a failed write, no keyframe yet

    # -- called from the capture thread ---------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("continuous recorder already started")
        self._thread = named_thread(
            self._run, f"continuous-{self.name}", os_name=f"seg:{self.name}"
        )
        self._thread.start()

    def push(self, frame: Frame) -> None:
        """A new compressed frame of the stream."""
        if self._resync and not frame.keyframe:
            self.frames_dropped += 1
            return
        if self._mailbox.put_frame(frame, self.wait_when_full):
            self._resync = False
            self._since_cut = True
            return
        self.frames_dropped += 1
        self._resync = True

    def cut(self) -> None:
        """The stream ended (lost, disarmed, stopping): close the segment being written."""
        if self._since_cut:
            self._since_cut = False
            self._mailbox.put_control(_Cut())

    def stop(self, timeout: float) -> bool:
        """Close the segment being written and join; False on timeout."""
        if self._thread is None:
            return True
        self._mailbox.put_control(_Cut())
        self._mailbox.put_control(_STOP)
        self._thread.join(timeout)
        self._mailbox.closed = True
        return not self._thread.is_alive()

    @property
    def queued_bytes(self) -> int:
        return self._mailbox.frame_bytes

    # -- the segment thread ---------------------------------------------------------------------

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
                elif isinstance(item, _Cut):
                    self._finish()
            except Exception:
                logger.exception("camera %s: continuous recording error", self.name)

    def _write(self, frame: Frame) -> None:
        segment = self._active
        if segment is not None and frame.keyframe and self._ends_before(segment, frame):
            self._finish()
            segment = None
        if segment is None:
            if not frame.keyframe:
                self.frames_lost += 1  # after a failure or a cut: the next keyframe starts
                return
            segment = self._open(frame)
            if segment is None:
                self.frames_lost += 1
                return
        if segment.failed:
            self.frames_lost += 1
            return
        try:
            segment.writer.write(frame)
        except FrameDecodeError:
            self.frames_lost += 1
            return
        except Exception as exc:
            # A full disk is expected and explained in one line; anything else gets its trace.
            disk_full = is_disk_error(exc)
            logger.error(
                "camera %s: %s writing %s (%s): keeping it up to its last complete fragment",
                self.name,
                "disk full" if disk_full else "failed",
                segment.partial,
                exc,
                exc_info=not disk_full,
            )
            self._write_failed(segment, exc, disk_full)
            return
        segment.last = frame
        segment.frames += 1

    def _ends_before(self, segment: _OpenSegment, keyframe: Frame) -> bool:
        """Whether ``keyframe`` starts the next segment: this one is long enough, or the
        stream's parameters changed (a segment never mixes two streams)."""
        params = keyframe.packet.params if keyframe.packet else None
        if params is not segment.params:
            return True
        return keyframe.mono - segment.first.mono >= self.segment_length

    def _open(self, frame: Frame) -> _OpenSegment | None:
        if self._refused_until is not None and frame.mono < self._refused_until:
            return None
        if self.make_room is not None and not self.make_room(
            f"camera {self.name} starting a continuous segment"
        ):
            if self._refused_until is None:
                logger.error("camera %s: storage full: continuous recording paused", self.name)
            self._refused_until = frame.mono + REFUSED_RETRY
            return None
        if self._refused_until is not None:
            logger.warning("camera %s: continuous recording again: storage has room", self.name)
            self._refused_until = None
        try:
            partial = reserve_segment(self.storage, self.name, frame.wall)
        except OSError as exc:
            logger.error("camera %s: cannot start a continuous segment: %s", self.name, exc)
            self.on_event(StorageError(camera=self.name, error=str(exc), path=self.storage.root))
            return None
        try:
            writer = self._open_writer(partial, frame)
        except Exception:
            logger.exception("camera %s: cannot open segment %s", self.name, partial)
            with contextlib.suppress(OSError):
                partial.unlink()
            return None
        params = frame.packet.params if frame.packet else None
        self._active = _OpenSegment(partial, writer, frame, params)
        return self._active

    def _open_writer(self, partial: Path, frame: Frame) -> ClipWriter:
        record = self.camera.record
        if frame.packet is not None and copies(record, frame.packet.params.codec):
            return CopyClipWriter(partial, frame, frame.mono)
        return PyAVClipWriter(
            partial,
            record,
            width=frame.width,
            height=frame.height,
            fps=self.nominal_fps,
            origin=frame.mono,
            overlay=overlay_of(self.camera),
        )

    def _write_failed(self, segment: _OpenSegment, exc: Exception, disk_full: bool) -> None:
        """Keep the segment up to its last complete fragment; the next keyframe opens another."""
        segment.failed = str(exc)
        self.frames_lost += 1
        self.on_event(StorageError(camera=self.name, error=str(exc), path=segment.partial))
        self._finish()
        if disk_full and self.make_room is not None:
            self.make_room(f"camera {self.name}: disk full")

    def _finish(self) -> None:
        """Close the segment being written, give it its finished name and announce it."""
        segment, self._active = self._active, None
        if segment is None:
            return
        try:
            segment.writer.close()
        except Exception as exc:
            segment.failed = segment.failed or str(exc)
            if not is_disk_error(exc):
                logger.exception("camera %s: closing %s failed", self.name, segment.partial)
        duration = None
        if segment.failed is None and segment.last is not None:
            span = segment.last.mono - segment.first.mono
            duration, _ = clip_timing(span, segment.frames, 1.0 / self.nominal_fps)
        try:
            finished = finish_partial_segment(
                self.storage, segment.partial, duration, self.nominal_fps
            )
        except OSError as exc:
            logger.error("camera %s: cannot finish %s: %s", self.name, segment.partial, exc)
            return
        if finished is None:
            logger.warning("camera %s: nothing playable in %s", self.name, segment.partial)
            return
        self.segments_written += 1
        logger.debug(
            "camera %s: segment %s: %.1f s", self.name, finished.path.name, finished.duration
        )
        self.on_event(SegmentEnded(camera=self.name, segment=finished))
