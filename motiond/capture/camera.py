"""One camera's capture loop: open the source (with backoff), read, hand each frame on.

The capture thread reads the camera's source, reopens it with backoff when it fails or stalls,
says when the camera goes online or offline, and hands each frame to detection and to the
camera's clip flow (``record.clipflow.ClipFlow``: the pre-roll ring, the trigger's decisions
applied at keyframes, the recorder). Detection (motion, and the scene monitor's day/night and
tampering: ``PictureWatch``) runs on the picture the capture thread just read, or, for an IP
camera with a ``capture.detect_source`` (its low-resolution sub stream), on a second thread
that decodes that stream (``DetectionThread``); the main stream is then only copied. Either
way the clip flow runs on the capture thread, and every frame it buffers or queues is
compressed (``Frame.compressed()``).

The worker is given its collaborators: the source factory (the daemon gives
``capture.sources.open_source``, tests their own sources) and the reconnect backoff.

Thread crossings (the only ones):
- The clip flow's calls into ``ClipRecorder``, which only enqueue (see recorder.py).
- Frame listeners (``add_frame_listener``): called with each new frame that has a picture (on
  the capture thread, or the detection thread with a sub stream); a listener must only hand
  the frame over (the web side uses ``IOLoop.add_callback``) and never block. The tuple of
  listeners is replaced, never changed in place.
- Packet listeners (``add_packet_listener``): called with every frame read, as read, tagged
  with its stream: "main" on the capture thread, "sub" on the detection thread; the same
  rule (hand over, never block). The live view's MP4 feed copies the camera's packets from here.
- With a sub stream, ``DetectionThread`` hands its results to the capture thread through a
  bounded deque (``Detections``); a full one drops the oldest (counted). Each result carries
  the scene report as levels (night, suspect, tampered since), so a dropped one loses nothing
  the next does not repeat.
- ``on_event`` (the event bus's ``publish``) is called with typed events on the capture
  thread (``CameraOnline``/``CameraOffline``), the recorder thread (clips) and the thread that
  watches the pictures (``CameraTampered``: the capture thread, or the detection thread with a
  sub stream); subscribers only hand events on.
- ``status()``, ``detection_areas()`` and the counters are read from other threads; they are
  plain attributes written by one thread each, so a reader sees a recent value, never a torn
  one. The same holds for the watch's scene report (day/night, tampering) and its learned
  nuisance areas: immutable values its owner thread replaces, never changes.
- From outside, a camera is changed only through ``arm()`` (a plain bool the capture and
  detection threads read; the camera door calls it for the web side and MQTT) and
  ``request_stop()``/``stop()`` (an Event).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any

import av

from motiond.backoff import RECONNECT, Backoff
from motiond.capture.reconnect import open_retrying, wait_beating
from motiond.capture.sources.base import Source, SourceError, SourceFactory
from motiond.capture.substream import DetectionThread
from motiond.config.camera import CameraConfig
from motiond.control import (
    CameraStatus,
    CameraUnavailable,
    DetectionAreas,
    FrameListener,
    PacketListener,
)
from motiond.detect.boxes import MotionResult
from motiond.detect.watch import Detection, PictureWatch
from motiond.events import CameraOffline, CameraOnline, EventSink
from motiond.frames import Frame, FrameDecodeError, decode_jpeg_to_yuv
from motiond.record.clipflow import ClipFlow
from motiond.record.recorder import ClipRecorder, RoomCheck
from motiond.record.snapshots import write_snapshot
from motiond.store.layout import Storage
from motiond.threads import named_thread

logger = logging.getLogger(__name__)

WALL_CLOCK_JUMP = 2.0  # seconds of disagreement between wall and monotonic clocks worth a log line


class CameraWorker:
    """Captures one camera on its own thread and hands its frames to detection and clips."""

    def __init__(
        self,
        config: CameraConfig,
        storage: Storage,
        on_event: EventSink,
        make_room: RoomCheck | None = None,
        *,
        source_factory: SourceFactory,
        reconnect: Backoff = RECONNECT,
    ) -> None:
        self.config = config
        self.storage = storage
        self.on_event = on_event
        self.source_factory = source_factory
        self.reconnect = reconnect
        self.stop_event = threading.Event()
        self._armed = True
        self._frame_listeners: tuple[FrameListener, ...] = ()
        self._packet_listeners: tuple[PacketListener, ...] = ()
        self._listeners_lock = threading.Lock()  # orders add_frame_listener's writers
        self.capture_heartbeat = time.monotonic()  # capture loop's last sign of life (watchdog)
        self.online = False
        self.frames = 0
        self.frames_garbled = 0
        self.last_frame_mono: float | None = None
        self.latest_frame: Frame | None = None
        self._frame_times: deque[float] = deque(maxlen=30)
        self._thread: threading.Thread | None = None
        self.clips = ClipFlow(config, storage, on_event, make_room)
        self._jpeg_decoder: Any = None  # camera JPEGs of a clip being written (capture thread)
        # Motion, day/night and tampering: owned by the thread with the pictures (this camera's
        # capture thread, or its detection thread with a sub stream).
        judge = self.clips.judge
        self.watch = PictureWatch(config, on_event, lambda: judge.recording)
        self.detection: DetectionThread | None = None
        if config.capture.detect_source:
            self.detection = DetectionThread(
                config,
                self.watch,
                self.stop_event,
                on_picture=self._show_sub,
                armed=lambda: self._armed,
            )
        self._wall_offset: float | None = None

    # -- lifecycle (called from the daemon's thread) -------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"camera {self.config.name} already started")
        self._thread = named_thread(
            self._run, f"capture-{self.config.name}", os_name=f"cap:{self.config.name}"
        )
        self._thread.start()
        if self.detection is not None:
            self.detection.start()

    def request_stop(self) -> None:
        """Ask the capture (and detection) thread to stop; ``stop`` waits for them (any thread)."""
        self.stop_event.set()

    def stop(self, timeout: float) -> bool:
        """Stop capturing, finish the clip in progress, wait for the recorder. False on timeout."""
        self.request_stop()
        deadline = time.monotonic() + timeout
        if self.detection is not None:
            self.detection.join(max(0.0, deadline - time.monotonic()))
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
            if self._thread.is_alive():
                logger.error("camera %s: capture thread did not stop in time", self.config.name)
                return False
        return self.clips.stop_recorder(max(0.1, deadline - time.monotonic()))

    @property
    def finished(self) -> bool:
        """True once the capture thread has ended by itself (a file source reached its end)."""
        return self._thread is not None and not self._thread.is_alive()

    @property
    def heartbeat(self) -> float:
        """The older of the capture and detection loops' last signs of life (watchdog)."""
        if self.detection is None:
            return self.capture_heartbeat
        return min(self.capture_heartbeat, self.detection.heartbeat)

    @property
    def recorder(self) -> ClipRecorder | None:
        """The clip recorder (from the source's first open on), for its heartbeat (watchdog)."""
        return self.clips.recorder

    # -- the camera door's side (any thread) ----------------------------------------------------

    @property
    def armed(self) -> bool:
        return self._armed

    def arm(self, armed: bool) -> None:
        """Resume or pause detection; disarmed, the capture thread finishes the clip in
        progress and records nothing (frames still reach the listeners)."""
        self._armed = armed

    def add_frame_listener(self, listener: FrameListener) -> None:
        """Call ``listener`` with each new picture (see the module's docstring)."""
        with self._listeners_lock:
            self._frame_listeners = (*self._frame_listeners, listener)

    def add_packet_listener(self, listener: PacketListener) -> None:
        """Call ``listener`` with each frame read, of either stream (see the module's docstring)."""
        with self._listeners_lock:
            self._packet_listeners = (*self._packet_listeners, listener)

    def status(self) -> CameraStatus:
        now = time.monotonic()
        recorder = self.clips.recorder
        latest = self.latest_frame
        last_frame = self.last_frame_mono
        watch = self.watch
        report = watch.report
        since = report.tamper.tampered_since
        offset = self._wall_offset
        return CameraStatus(
            name=self.config.name,
            online=self.online,
            armed=self._armed,
            recording=self.clips.recording,
            fps=self.measured_fps(),
            frames=self.frames,
            last_delta=self.clips.judge.last_delta,
            threshold=self.config.motion.threshold,
            clips_kept=recorder.clips_kept if recorder else 0,
            clips_discarded=recorder.clips_discarded if recorder else 0,
            frames_dropped=recorder.frames_dropped if recorder else 0,
            frames_garbled=self.frames_garbled,
            last_frame_age=None if last_frame is None else now - last_frame,
            width=latest.width if latest else None,
            height=latest.height if latest else None,
            buffered_bytes=self.clips.buffered_bytes(),
            realtime=self.config.capture.pacing == "realtime",
            ignored_share=round(watch.ignored_share, 4),
            day_night=report.mode,
            tampered=report.tamper.tampered,
            tampered_since=None if since is None or offset is None else since + offset,
            min_area=watch.motion.min_area,
        )

    def detection_areas(self) -> DetectionAreas:
        """The areas learned as always moving (the same object until they change) and the
        masks, in the camera's pixels: its main stream's, also with a sub stream."""
        if self.detection is not None:
            size = self.detection.main_size
        else:
            latest = self.latest_frame
            size = None if latest is None else (latest.width, latest.height)
        return DetectionAreas(
            width=size[0] if size else None,
            height=size[1] if size else None,
            ignored=self.watch.ignored_areas(),
            masks=self.config.motion.masks,
        )

    def take_snapshot(self) -> Path:
        """Write the latest picture to snapshots/ now; returns its path. Any thread may call it
        (the web side does, off the IOLoop); it only reads the latest-frame slot."""
        frame = self.latest_frame
        if frame is None or not self.online:
            raise CameraUnavailable(f"camera {self.config.name} has no picture right now")
        path = self.storage.reserve_snapshot(self.config.name, frame.wall)
        write_snapshot(path, frame)
        logger.info("camera %s: snapshot %s", self.config.name, self.storage.relative(path))
        return path

    def measured_fps(self) -> float:
        times = self._frame_times
        if len(times) < 2 or times[-1] == times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    # -- the capture thread ---------------------------------------------------------------------

    def _run(self) -> None:
        name = self.config.name
        try:
            while not self.stop_event.is_set():
                source = open_retrying(
                    lambda: self.source_factory(
                        self.config.capture, self.stop_event, audio=self.config.record.audio
                    ),
                    self.stop_event,
                    self.reconnect,
                    self._beat,
                    f"camera {name}",
                )
                if source is None:
                    break
                ended = self._capture(source)
                if ended and not self.stop_event.is_set():
                    logger.info("camera %s: %s ended", name, source.description)
                    if self.config.capture.kind == "file":
                        break
                    self._wait(self.reconnect.first)
        except Exception:
            logger.exception("camera %s: capture thread failed", name)
        finally:
            self.clips.finish()
            self._set_online(False, "stopped")

    def _wait(self, seconds: float) -> None:
        """Wait while beating the heartbeat, so a retrying camera is not taken for a hang."""
        wait_beating(self.stop_event, seconds, self._beat)

    def _beat(self, now: float) -> None:
        self.capture_heartbeat = now

    def _capture(self, source: Source) -> bool:
        """Read frames until the source ends (True) or fails or we stop (False)."""
        self.clips.start_recorder(source.realtime)
        first = True
        stall_timeout = self.config.capture.stall_timeout
        last_usable = time.monotonic()
        skipped_seen = 0  # the source's own count of skipped parts, as far as added in
        try:
            while not self.stop_event.is_set():
                self.capture_heartbeat = time.monotonic()
                frame = source.read()
                if frame is None:
                    return True
                if first:
                    first = False
                    self.clips.reopened(frame.mono)
                    if self.detection is None:
                        self.watch.reopened(frame.mono)
                    self._set_online(True, source.description)
                garbled_before = self.frames_garbled
                self._process(frame)
                now = time.monotonic()
                if self.frames_garbled == garbled_before:
                    last_usable = now
                elif now - last_usable > stall_timeout:
                    raise SourceError(f"no usable frame for {stall_timeout:g} s")
                # Parts the source skipped before this frame (not JPEG) count as garbled too;
                # added after the check above, since this frame itself was usable.
                skipped = source.garbled_parts
                self.frames_garbled += max(0, skipped - skipped_seen)
                skipped_seen = skipped
        except SourceError as exc:
            logger.warning("camera %s: lost %s: %s", self.config.name, source.description, exc)
            return False
        finally:
            source.close()
            self.clips.finish()
            self._set_online(False, "stopped" if self.stop_event.is_set() else "lost")
        return False

    def _set_online(self, online: bool, detail: str) -> None:
        if online == self.online:
            return
        self.online = online
        name = self.config.name
        if online:
            logger.info("camera %s: online (%s)", name, detail)
        elif self.stop_event.is_set():
            logger.info("camera %s: stopped", name)
        else:
            logger.warning("camera %s: offline (%s)", name, detail)
        self.on_event(
            CameraOnline(camera=name, detail=detail)
            if online
            else CameraOffline(camera=name, detail=detail)
        )

    def _process(self, frame: Frame) -> None:
        self._note_clocks(frame)
        self._hand_packet("main", frame)
        self.frames += 1
        self.last_frame_mono = frame.mono
        self._frame_times.append(frame.mono)
        armed = self._armed
        detection = self.detection
        result = None
        if detection is None:
            if armed and frame.jpeg is not None and self.clips.writing:
                frame = self._decoded(frame)
            result = self._detect(frame) if armed else None
            self._show(frame, result)
        else:
            detection.main_size = (frame.width, frame.height)
        if not armed:
            self.clips.finish()
            return
        stored = frame.compressed()
        self.clips.push(stored, frame.picture if frame.jpeg is not None else None)
        if detection is not None:
            for found in detection.results.take_all():
                self.clips.on_detection(found)
        elif result is not None:
            # A coded frame's snapshot is made from its picture; others from what is stored.
            snapshot_frame = frame if frame.packet else stored
            watch = self.watch
            self.clips.on_detection(
                Detection(
                    frame.mono, result, watch.report, frame=snapshot_frame, motion=watch.motion
                )
            )

    def _decoded(self, frame: Frame) -> Frame:
        """A camera JPEG of a clip being written, decoded once here for both detection (its Y
        plane, reduced) and the recorder, which would otherwise decode it again; unchanged if
        it does not decode (detection then counts it garbled)."""
        if self._jpeg_decoder is None:
            self._jpeg_decoder = av.CodecContext.create("mjpeg", "r")
        assert frame.jpeg is not None
        try:
            return replace(frame, picture=decode_jpeg_to_yuv(frame.jpeg, self._jpeg_decoder))
        except FrameDecodeError:
            return frame

    def _detect(self, frame: Frame) -> MotionResult | None:
        try:
            size = (frame.width, frame.height)
            return self.watch.look(frame, size, clip_kept=self.clips.judge.clip_kept)
        except FrameDecodeError:
            self.frames_garbled += 1
            return None

    def _show(self, frame: Frame, result: MotionResult | None) -> None:
        """A new picture (the thread that has the pictures): the latest-frame slot for
        snapshots and the status, then the frame listeners."""
        self.latest_frame = frame
        name = self.config.name
        for listener in self._frame_listeners:
            listener(name, frame, result)

    def _show_sub(self, frame: Frame, result: MotionResult | None) -> None:
        """A picture of the sub stream (detection thread): its packet, then as ``_show``."""
        self._hand_packet("sub", frame)
        self._show(frame, result)

    def _hand_packet(self, stream: str, frame: Frame) -> None:
        name = self.config.name
        for listener in self._packet_listeners:
            listener(name, stream, frame)

    def _note_clocks(self, frame: Frame) -> None:
        """Log a wall-clock jump (NTP sync on a board without RTC, a manual change); no more."""
        offset = frame.wall - frame.mono
        previous, self._wall_offset = self._wall_offset, offset
        if previous is not None and abs(offset - previous) > WALL_CLOCK_JUMP:
            logger.warning(
                "camera %s: wall clock jumped by %+.1f s; clip timing is unaffected",
                self.config.name,
                offset - previous,
            )
