"""One camera: its capture thread runs source -> detector -> trigger -> recorder.

Thread crossings (the only ones):
- ``ClipRecorder`` methods, which only enqueue (see recorder.py).
- ``frame_listeners``: called on the capture thread with each new frame; a listener must only
  hand the frame over (the web side uses ``IOLoop.add_callback``) and never block.
- ``status()`` and the counters are read from other threads; they are plain attributes written
  by the capture thread only, so a reader sees a recent value, never a torn one.
- ``armed`` is written by the web side and read by the capture thread (a plain bool).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from motiond.config import CameraConfig
from motiond.frames import Frame, FrameDecodeError
from motiond.motion import Box, MotionDetector, MotionResult, detection_scale, union_of
from motiond.preroll import PreRollBuffer
from motiond.recorder import ClipRecorder, EventSink, RoomCheck
from motiond.snapshots import write_snapshot
from motiond.sources import Source, SourceError, open_source
from motiond.storage import Storage
from motiond.trigger import Action, Decision, RecordingTrigger

logger = logging.getLogger(__name__)

PRE_ROLL_MAX_BYTES = 96 * 1024 * 1024
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 60.0
WALL_CLOCK_JUMP = 2.0  # seconds of disagreement between wall and monotonic clocks worth a log line
LIGHTING_LOG_INTERVAL = 60.0

FrameListener = Callable[[Frame, MotionResult | None], None]


@dataclass(frozen=True, slots=True)
class CameraStatus:
    name: str
    online: bool
    armed: bool
    recording: bool
    fps: float
    frames: int
    last_delta: float | None
    threshold: float
    clips_kept: int
    clips_discarded: int
    frames_dropped: int
    frames_garbled: int
    last_frame_age: float | None
    source: str


class CameraOfflineError(Exception):
    """The camera has no current picture (offline, or not started yet)."""


class CameraWorker:
    """Captures, detects and drives the recorder for one camera, on its own thread."""

    def __init__(
        self,
        config: CameraConfig,
        storage: Storage,
        on_event: EventSink,
        make_room: RoomCheck | None = None,
    ) -> None:
        self.config = config
        self.storage = storage
        self.on_event = on_event
        self.make_room = make_room  # retention, asked by the recorder before each clip
        self.stop_event = threading.Event()
        self.armed = True
        self.frame_listeners: list[FrameListener] = []
        self.heartbeat = time.monotonic()  # capture loop's last sign of life (watchdog)
        self.online = False
        self.frames = 0
        self.frames_garbled = 0
        self.last_delta: float | None = None
        self.last_frame_mono: float | None = None
        self.latest_frame: Frame | None = None
        self._frame_times: deque[float] = deque(maxlen=30)
        self._thread: threading.Thread | None = None
        self._source: Source | None = None
        self.detector = MotionDetector(config.motion)
        self.trigger = RecordingTrigger(config.motion, config.record.max_clip)
        self.preroll = PreRollBuffer(config.record.pre_roll, PRE_ROLL_MAX_BYTES)
        self.recorder: ClipRecorder | None = None
        # Per-clip bookkeeping (capture thread only).
        self._clip_union: Box | None = None
        self._peak: tuple[Frame, tuple[Box, ...]] | None = None
        self._wall_offset: float | None = None
        # Decodes camera JPEGs to YUV while recording (capture thread only); None when the
        # recorder needs BGR anyway (overlay, OpenCV encoder).
        record = config.record
        self._jpeg_decoder: Any = None
        if record.encoder == "pyav" and not (record.overlay.name or record.overlay.timestamp):
            self._jpeg_decoder = av.CodecContext.create("mjpeg", "r")
        self._last_lighting_log = float("-inf")

    # -- lifecycle (called from the daemon's thread) -------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"camera {self.config.name} already started")
        self._thread = threading.Thread(
            target=self._run, name=f"capture-{self.config.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Stop capturing, finish the clip in progress, wait for the recorder. False on timeout."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
            if self._thread.is_alive():
                logger.error("camera %s: capture thread did not stop in time", self.config.name)
                return False
        if self.recorder is not None:
            return self.recorder.stop(max(0.1, deadline - time.monotonic()))
        return True

    @property
    def finished(self) -> bool:
        """True once the capture thread has ended by itself (a file source reached its end)."""
        return self._thread is not None and not self._thread.is_alive()

    def status(self) -> CameraStatus:
        now = time.monotonic()
        recorder = self.recorder
        return CameraStatus(
            name=self.config.name,
            online=self.online,
            armed=self.armed,
            # A clip refused for lack of storage is not being recorded.
            recording=self.trigger.recording and not (recorder and recorder.storage_full),
            fps=self.measured_fps(),
            frames=self.frames,
            last_delta=self.last_delta,
            threshold=self.config.motion.threshold,
            clips_kept=recorder.clips_kept if recorder else 0,
            clips_discarded=recorder.clips_discarded if recorder else 0,
            frames_dropped=recorder.frames_dropped if recorder else 0,
            frames_garbled=self.frames_garbled,
            last_frame_age=None if self.last_frame_mono is None else now - self.last_frame_mono,
            source=self.config.capture.source,
        )

    def buffered_bytes(self) -> int:
        """Memory held in this camera's frame buffers: the pre-roll ring and encoder queue."""
        recorder = self.recorder
        return self.preroll.nbytes + (recorder.queued_bytes if recorder else 0)

    def take_snapshot(self) -> Path:
        """Write the latest frame to snapshots/ now; returns its path. Any thread may call it
        (the web side does, off the IOLoop); it only reads the latest-frame slot."""
        frame = self.latest_frame
        if frame is None or not self.online:
            raise CameraOfflineError(f"camera {self.config.name} has no picture right now")
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
        failures = 0
        try:
            while not self.stop_event.is_set():
                source = open_source(self.config.capture, self.stop_event)
                self._source = source
                self.heartbeat = time.monotonic()
                try:
                    source.open()
                except SourceError as exc:
                    failures += 1
                    delay = backoff_delay(failures)
                    logger.warning(
                        "camera %s: cannot open %s (%s); retrying in %.1f s",
                        name,
                        source.description,
                        exc,
                        delay,
                    )
                    self._wait(delay)
                    continue
                failures = 0
                ended = self._capture(source)
                if ended and not self.stop_event.is_set():
                    logger.info("camera %s: %s ended", name, source.description)
                    if self.config.capture.kind == "file":
                        break
                    self._wait(BACKOFF_FIRST)
        except Exception:
            logger.exception("camera %s: capture thread failed", name)
        finally:
            self._finish_clip()
            self._set_online(False, "stopped")

    def _wait(self, seconds: float) -> None:
        """Wait while beating the heartbeat, so a retrying camera is not taken for a hang."""
        deadline = time.monotonic() + seconds
        while not self.stop_event.is_set():
            self.heartbeat = time.monotonic()
            remaining = deadline - self.heartbeat
            if remaining <= 0:
                return
            self.stop_event.wait(min(remaining, 1.0))

    def _capture(self, source: Source) -> bool:
        """Read frames until the source ends (True) or fails or we stop (False)."""
        name = self.config.name
        if self.recorder is None:
            self.recorder = ClipRecorder(
                self.config,
                self.storage,
                self.on_event,
                nominal_fps=self.config.capture.fps or 15.0,
                wait_when_full=not source.realtime,
                make_room=self.make_room,
            )
            self.recorder.start()
        self.detector.reset()
        first = True
        hang_at = _test_hang_deadline()
        stall_timeout = self.config.capture.stall_timeout
        last_usable = time.monotonic()
        skipped_seen = 0  # the source's own count of skipped parts, as far as added in
        try:
            while not self.stop_event.is_set():
                self.heartbeat = time.monotonic()
                if hang_at is not None and self.heartbeat >= hang_at:
                    _hang_for_tests(self.config.name)
                frame = source.read()
                if frame is None:
                    return True
                if first:
                    first = False
                    self.trigger.hold_off(frame.mono + self.config.motion.warmup)
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
                skipped = getattr(source, "garbled_parts", 0)
                self.frames_garbled += max(0, skipped - skipped_seen)
                skipped_seen = skipped
        except SourceError as exc:
            logger.warning("camera %s: lost %s: %s", name, source.description, exc)
            return False
        finally:
            source.close()
            self._finish_clip()
            self._set_online(False, "stopped" if self.stop_event.is_set() else "lost")
        return False

    def _set_online(self, online: bool, detail: str) -> None:
        if online == self.online:
            return
        self.online = online
        if online:
            logger.info("camera %s: online (%s)", self.config.name, detail)
        elif self.stop_event.is_set():
            logger.info("camera %s: stopped", self.config.name)
        else:
            logger.warning("camera %s: offline (%s)", self.config.name, detail)
        self.on_event("camera_online" if online else "camera_offline", {"detail": detail})

    def _process(self, frame: Frame) -> None:
        self._note_clocks(frame)
        self.frames += 1
        self.last_frame_mono = frame.mono
        self._frame_times.append(frame.mono)
        self.latest_frame = frame
        result = self._detect(frame) if self.armed else None
        for listener in self.frame_listeners:
            listener(frame, result)
        if not self.armed:
            self._finish_clip()
            return
        if result is None:
            if not self.trigger.recording:
                self._push_preroll(frame)
            return
        self.last_delta = result.delta
        decision = self.trigger.update(result.delta, result.lighting, frame.mono)
        if result.lighting:
            self._log_lighting(frame, result)
        self._act(decision, frame, result)

    def _detect(self, frame: Frame) -> MotionResult | None:
        try:
            if self.trigger.recording and self._jpeg_decoder is not None:
                # This frame goes to the encoder: decode it once, detect on its Y plane.
                frame.decode_yuv(self._jpeg_decoder)
            gray = frame.gray_for_detection(
                detection_scale(frame.width, self.config.motion.detect_width)
            )
        except FrameDecodeError:
            self.frames_garbled += 1
            return None
        return self.detector.detect(gray, frame.width, frame.height)

    def _act(self, decision: Decision, frame: Frame, result: MotionResult) -> None:
        recorder = self.recorder
        assert recorder is not None
        action = decision.action
        if action in (Action.STOP, Action.SPLIT):
            if action is Action.STOP:
                recorder.add_frame(frame)
            self._end_clip(decision)
        if action in (Action.START, Action.SPLIT):
            frames = self.preroll.take() if action is Action.START else []
            frames.append(frame)
            self._clip_union = union_of(result.boxes)
            self._peak = (frame, result.boxes)
            recorder.begin_clip(frames, result.boxes)
        elif action is Action.NONE:
            if self.trigger.recording:
                recorder.add_frame(frame)
                if decision.changed:
                    union = union_of(result.boxes)
                    if union is not None:
                        self._clip_union = (
                            union if self._clip_union is None else self._clip_union.union(union)
                        )
                if decision.new_peak:
                    self._peak = (frame, result.boxes)
            else:
                self._push_preroll(frame)

    def _push_preroll(self, frame: Frame) -> None:
        trimmed = self.preroll.trimmed_by_size
        self.preroll.push(frame)
        if trimmed == 0 and self.preroll.trimmed_by_size:
            logger.warning(
                "camera %s: pre-roll of %g s of raw %dx%d frames exceeds %d MiB; it is "
                "shortened to fit (cameras that deliver JPEG keep it whole)",
                self.config.name,
                self.config.record.pre_roll,
                frame.width,
                frame.height,
                PRE_ROLL_MAX_BYTES // 2**20,
            )

    def _end_clip(self, decision: Decision) -> None:
        assert decision.ended is not None and self.recorder is not None
        peak_frame, peak_boxes = self._peak if self._peak else (None, ())
        self.recorder.end_clip(
            decision.keep, decision.ended, peak_frame, peak_boxes, self._clip_union
        )
        self._peak = None
        self._clip_union = None

    def _finish_clip(self) -> None:
        """End the clip in progress (stream lost, disarmed, stopping)."""
        decision = self.trigger.finish()
        if decision.ended is not None:
            self._end_clip(decision)
        self.preroll.clear()

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

    def _log_lighting(self, frame: Frame, result: MotionResult) -> None:
        if frame.mono - self._last_lighting_log >= LIGHTING_LOG_INTERVAL:
            self._last_lighting_log = frame.mono
            logger.info(
                "camera %s: lighting change (%.0f%% of the picture at once), not motion",
                self.config.name,
                result.delta * 100,
            )


def _test_hang_deadline() -> float | None:
    """TEST ONLY: ``MOTIOND_TEST_HANG_CAPTURE_AFTER=<seconds>`` hangs every capture loop after
    that long, without heartbeats, so tests can prove the systemd watchdog restarts a hung
    daemon. Never set it in production."""
    raw = os.environ.get("MOTIOND_TEST_HANG_CAPTURE_AFTER")
    if not raw:
        return None
    return time.monotonic() + float(raw)


def _hang_for_tests(camera: str) -> None:
    logger.warning(
        "camera %s: MOTIOND_TEST_HANG_CAPTURE_AFTER reached: hanging (test only)", camera
    )
    threading.Event().wait()


def backoff_delay(failures: int, rng: random.Random | None = None) -> float:
    """Exponential backoff from 1 s, capped at 60 s, with jitter (50-100% of the step)."""
    step = min(BACKOFF_CAP, BACKOFF_FIRST * 2.0 ** max(0, failures - 1))
    draw = rng.random() if rng is not None else random.random()  # noqa: S311 (jitter)
    return step * (0.5 + 0.5 * draw)
