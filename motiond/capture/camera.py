"""One camera: its capture thread runs source -> detector -> trigger -> recorder.

Detection (motion, and the scene monitor's day/night and tampering: ``PictureWatch``) runs on
the picture the capture thread just read, or, for an IP camera with a
``capture.detect_source`` (its low-resolution sub stream), on a second thread that decodes that
stream (``DetectionThread``); the main stream is then only copied. Either way the capture thread
owns the trigger, the pre-roll ring and the calls into the recorder, and every frame it buffers
or queues is compressed (``Frame.compressed()``).

Thread crossings (the only ones):
- ``ClipRecorder`` methods, which only enqueue (see recorder.py).
- ``frame_listeners``: called with each new frame that has a picture (on the capture thread, or
  the detection thread with a sub stream); a listener must only hand the frame over (the web
  side uses ``IOLoop.add_callback``) and never block.
- With a sub stream, ``DetectionThread`` hands its results to the capture thread through a
  bounded deque (``Detections``); a full one drops the oldest (counted). Each result carries
  the scene report as levels (night, suspect, tampered since), so a dropped one loses nothing
  the next does not repeat.
- ``on_event`` is called on the capture thread (online/offline), the recorder thread (clips)
  and the thread that watches the pictures (``camera_tampered``: the capture thread, or the
  detection thread with a sub stream); the daemon's handler only hands events on.
- ``status()`` and the counters are read from other threads; they are plain attributes written
  by one thread each, so a reader sees a recent value, never a torn one. The same holds for
  the watch's scene report (day/night, tampering) and its learned nuisance areas
  (``ignored_areas()``): immutable values its owner thread replaces, never changes.
- ``armed`` is written by the web side and read by the capture thread (a plain bool).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from motiond.backoff import RECONNECT
from motiond.capture.sources import Source, SourceError, open_source
from motiond.capture.substream import DetectionThread, wait_beating
from motiond.config import CameraConfig
from motiond.detect.motion import Box, MotionResult, Outlines, union_of
from motiond.detect.trigger import Action, ClipStats, Decision, RecordingTrigger
from motiond.detect.watch import Detection, PictureWatch, Still
from motiond.events import CameraOffline, CameraOnline, EventSink
from motiond.frames import Frame, FrameDecodeError, StreamParams
from motiond.record.preroll import PreRollBuffer
from motiond.record.recorder import ClipRecorder, RoomCheck
from motiond.record.snapshots import encode_jpeg, write_snapshot
from motiond.store.layout import Storage
from motiond.threads import named_thread

logger = logging.getLogger(__name__)

PRE_ROLL_MAX_BYTES = 96 * 1024 * 1024
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
    ignored_share: float = 0.0  # of the picture, learned as always moving (nuisance)
    day_night: str | None = None  # "day", "night", or None before the first colour sample
    tampered: str | None = None  # covered, blinded, defocused, turned; None: not tampered
    tampered_since: float | None = None  # wall-clock seconds
    min_area: float = 0.0  # in effect now (night overrides included)


class CameraOfflineError(Exception):
    """The camera has no current picture (offline, or not started yet)."""


@dataclass(frozen=True, slots=True)
class ClipEnding:
    """What closing a clip needs: the trigger's numbers, its peak snapshot, what moved."""

    stats: ClipStats
    peak: Still | None
    union: Box | None

    def merged(self, later: ClipEnding) -> ClipEnding:
        """This clip and the one the trigger began after it, as one file (a split that had to
        wait for a keyframe)."""
        first_peak = self.stats.peak_delta >= later.stats.peak_delta
        union = self.union if later.union is None else later.union
        if self.union is not None and later.union is not None:
            union = self.union.union(later.union)
        return ClipEnding(
            self.stats.merged(later.stats), self.peak if first_peak else later.peak, union
        )


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
        self.capture_heartbeat = time.monotonic()  # capture loop's last sign of life (watchdog)
        self.online = False
        self.frames = 0
        self.frames_garbled = 0
        self.last_delta: float | None = None
        self.last_frame_mono: float | None = None
        self.latest_frame: Frame | None = None
        self._frame_times: deque[float] = deque(maxlen=30)
        self._thread: threading.Thread | None = None
        self.trigger = RecordingTrigger(config.motion, config.record.max_clip)
        # Motion, day/night and tampering: owned by the thread with the pictures (this camera's
        # capture thread, or its detection thread with a sub stream).
        self.watch = PictureWatch(config, on_event, lambda: self.trigger.recording)
        self.preroll = PreRollBuffer(config.record.pre_roll, PRE_ROLL_MAX_BYTES)
        self.recorder: ClipRecorder | None = None
        self.detection: DetectionThread | None = None
        if config.capture.detect_source:
            self.detection = DetectionThread(
                config,
                self.watch,
                self.stop_event,
                listeners=self.frame_listeners,
                on_picture=self._set_latest,
                armed=lambda: self.armed,
            )
        # The scene as the trigger follows it (capture thread only).
        self._night_motion = config.motion.at_night()
        self._trigger_motion = config.motion
        self._tamper_kept: float | None = None  # the tampering whose clip was marked kept
        # The clip as the recorder has it (capture thread only).
        self._clip_open = False
        self._clip_params: StreamParams | None = None
        self._last_routed: Frame | None = None
        self._last_clip_end: float | None = None  # capture time of the last clip's last frame
        self._pending_start: Detection | None = None  # waiting for a keyframe
        self._pending_split: ClipEnding | None = None  # max_clip reached: split at a keyframe
        # Per-clip bookkeeping of the trigger's clip (capture thread only).
        self._clip_union: Box | None = None
        self._start_still: Still | None = None
        self._peak: Still | None = None
        self._newest_still: Still | None = None  # from a sub stream's detection
        self._wall_offset: float | None = None
        self._last_lighting_log = float("-inf")

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

    def stop(self, timeout: float) -> bool:
        """Stop capturing, finish the clip in progress, wait for the recorder. False on timeout."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        if self.detection is not None:
            self.detection.join(max(0.0, deadline - time.monotonic()))
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

    @property
    def heartbeat(self) -> float:
        """The older of the capture and detection loops' last signs of life (watchdog)."""
        if self.detection is None:
            return self.capture_heartbeat
        return min(self.capture_heartbeat, self.detection.heartbeat)

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
            **self._scene_status(),
        )

    def _scene_status(self) -> dict[str, Any]:
        """The status fields about nuisance areas, day/night and tampering (any thread)."""
        watch = self.watch
        tamper = watch.report.tamper
        since = tamper.tampered_since
        offset = self._wall_offset
        return {
            "ignored_share": round(watch.ignored_share, 4),
            "day_night": watch.report.mode,
            "tampered": tamper.tampered,
            "tampered_since": None if since is None or offset is None else since + offset,
            "min_area": watch.motion.min_area,
        }

    def ignored_areas(self) -> Outlines:
        """Outlines of the areas learned as always moving, in camera pixels (any thread; the
        same object until they change)."""
        return self.watch.ignored_areas()

    def picture_size(self) -> tuple[int, int] | None:
        """The camera's picture size (its main stream's), in which masks, boxes and ignored
        areas are given; None before the first frame (any thread)."""
        if self.detection is not None:
            return self.detection.main_size
        latest = self.latest_frame
        return None if latest is None else (latest.width, latest.height)

    def buffered_bytes(self) -> int:
        """Memory held in this camera's frame buffers: the pre-roll ring and encoder queue."""
        recorder = self.recorder
        return self.preroll.nbytes + (recorder.queued_bytes if recorder else 0)

    def take_snapshot(self) -> Path:
        """Write the latest picture to snapshots/ now; returns its path. Any thread may call it
        (the web side does, off the IOLoop); it only reads the latest-frame slot."""
        frame = self.latest_frame
        if frame is None or not self.online:
            raise CameraOfflineError(f"camera {self.config.name} has no picture right now")
        path = self.storage.reserve_snapshot(self.config.name, frame.wall)
        write_snapshot(path, frame)
        logger.info("camera %s: snapshot %s", self.config.name, self.storage.relative(path))
        return path

    def _set_latest(self, frame: Frame) -> None:
        self.latest_frame = frame

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
                source = open_source(
                    self.config.capture, self.stop_event, audio=self.config.record.audio
                )
                self.capture_heartbeat = time.monotonic()
                try:
                    source.open()
                except SourceError as exc:
                    failures += 1
                    delay = RECONNECT.delay(failures)
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
                    self._wait(RECONNECT.first)
        except Exception:
            logger.exception("camera %s: capture thread failed", name)
        finally:
            self._finish_clip()
            self._set_online(False, "stopped")

    def _wait(self, seconds: float) -> None:
        """Wait while beating the heartbeat, so a retrying camera is not taken for a hang."""
        wait_beating(self.stop_event, seconds, self._beat)

    def _beat(self, now: float) -> None:
        self.capture_heartbeat = now

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
        first = True
        hang_at = _test_hang_deadline()
        stall_timeout = self.config.capture.stall_timeout
        last_usable = time.monotonic()
        skipped_seen = 0  # the source's own count of skipped parts, as far as added in
        try:
            while not self.stop_event.is_set():
                self.capture_heartbeat = time.monotonic()
                if hang_at is not None and self.capture_heartbeat >= hang_at:
                    _hang_for_tests(self.config.name)
                frame = source.read()
                if frame is None:
                    return True
                if first:
                    first = False
                    self.trigger.hold_off(frame.mono + self.config.motion.warmup)
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
        name = self.config.name
        self.on_event(
            CameraOnline(camera=name, detail=detail)
            if online
            else CameraOffline(camera=name, detail=detail)
        )

    def _process(self, frame: Frame) -> None:
        self._note_clocks(frame)
        self.frames += 1
        self.last_frame_mono = frame.mono
        self._frame_times.append(frame.mono)
        result = None
        if self.detection is None:
            self.latest_frame = frame
            result = self._detect(frame) if self.armed else None
            for listener in self.frame_listeners:
                listener(frame, result)
        else:
            self.detection.main_size = (frame.width, frame.height)
        if not self.armed:
            self._finish_clip()
            return
        stored = frame.compressed()
        self.preroll.push(stored)
        self._route(stored)
        if self.detection is not None:
            for detection in self.detection.results.take_all():
                if detection.still is not None:
                    self._newest_still = detection.still
                self._judge(detection)
        elif result is not None:
            # A coded frame's snapshot is made from its picture; others from what is stored.
            snapshot_frame = frame if frame.packet else stored
            self._judge(Detection(frame.mono, result, self.watch.report, frame=snapshot_frame))

    def _detect(self, frame: Frame) -> MotionResult | None:
        try:
            return self.watch.look(frame, (frame.width, frame.height))
        except FrameDecodeError:
            self.frames_garbled += 1
            return None

    # -- the trigger: detections in, clip decisions out ----------------------------------------

    def _judge(self, detection: Detection) -> None:
        result = detection.result
        if detection.reopened or result is None:
            self.trigger.hold_off(detection.mono + self.config.motion.warmup)
            return
        self.last_delta = result.delta
        self._follow_scene(detection)
        decision = self.trigger.update(
            result.delta,
            result.lighting or detection.settling,  # a day/night switch is not motion
            detection.mono,
            suspect=detection.suspect,
        )
        if result.lighting:
            self._log_lighting(detection.mono, result)
        action = decision.action
        if action in (Action.STOP, Action.SPLIT):
            if action is Action.SPLIT and not self._clip_open:
                pass  # the clip never opened (no keyframe yet): nothing to split
            elif action is Action.SPLIT:
                self._pending_split = self._with_pending_split(self._ending(decision))
            else:
                self._end_clip(decision)
            self._reset_clip_bookkeeping()
        if action in (Action.START, Action.SPLIT):
            self._clip_union = union_of(result.boxes)
            if action is Action.START or decision.changed:
                self._peak = self._still(detection)
            if action is Action.START:
                self._start_still = self._peak
                self._begin_clip(detection)
        elif action is Action.NONE and self.trigger.recording:
            if decision.changed:
                union = union_of(result.boxes)
                if union is not None:
                    self._clip_union = (
                        union if self._clip_union is None else self._clip_union.union(union)
                    )
            if decision.new_peak:
                self._peak = self._still(detection)

    def _follow_scene(self, detection: Detection) -> None:
        """The trigger follows the scene monitor: the night overrides while at night, and the
        clip of the moment kept once tampering is confirmed (each tampering once)."""
        scene = detection.scene
        if scene is None:
            return
        night = scene.mode == "night"
        motion = self._night_motion if night else self.config.motion
        if motion is not self._trigger_motion:
            self._trigger_motion = motion
            self.trigger.configure(motion)
        tamper = scene.tamper
        if tamper.tampered is not None and tamper.tampered_since != self._tamper_kept:
            self._tamper_kept = tamper.tampered_since
            self.trigger.keep_clip()  # the clip of the moment, started when it became suspect

    def _still(self, detection: Detection) -> Still | None:
        """The detection's picture for a warn snapshot: a JPEG, made now for a coded frame (or
        the newest one a sub stream's detection made, where it made none for this one)."""
        frame = detection.frame
        if detection.still is not None or frame is None or detection.result is None:
            return detection.still or self._newest_still
        if frame.packet is None:
            return Still(frame, detection.result.boxes)
        try:
            jpeg = encode_jpeg(frame.bgr())
        except FrameDecodeError:
            return None
        return Still(
            Frame.from_jpeg(frame.seq, frame.mono, frame.wall, jpeg), detection.result.boxes
        )

    # -- routing compressed frames to the recorder ---------------------------------------------

    def _begin_clip(self, detection: Detection) -> None:
        assert self.recorder is not None
        frames = self.preroll.take(detection.mono, self._last_clip_end)
        if not frames:
            self._pending_start = detection  # no keyframe yet: the clip opens at the next one
            return
        self._open_clip(frames, self._start_still, _boxes_of(detection))

    def _open_clip(
        self, frames: list[Frame], trigger: Still | None, boxes: tuple[Box, ...] = ()
    ) -> None:
        assert self.recorder is not None
        self.recorder.begin_clip(frames, trigger, boxes)
        self._clip_open = True
        self._clip_params = frames[0].packet.params if frames[0].packet else None
        self._last_routed = frames[-1]

    def _route(self, stored: Frame) -> None:
        """Hand a new frame to the clip being written, opening or splitting clips at keyframes."""
        recorder = self.recorder
        assert recorder is not None
        if self._pending_start is not None:
            if stored.keyframe:
                start, self._pending_start = self._pending_start, None
                self._open_clip([stored], self._start_still, _boxes_of(start))
            return
        if not self._clip_open:
            return
        params = stored.packet.params if stored.packet else None
        if stored.keyframe and params is not self._clip_params:
            # The camera restarted or changed resolution: a clip never mixes two streams.
            logger.info(
                "camera %s: stream parameters changed; continuing in a new clip",
                self.config.name,
            )
            self._split_at(stored)
            return
        if stored.keyframe and self._pending_split is not None:
            self._split_at(stored)
            return
        recorder.add_frame(stored)
        self._last_routed = stored

    def _split_at(self, keyframe: Frame) -> None:
        """Close the clip being written just before ``keyframe`` and open the next one with it;
        the trigger's clip starts over there too, so its numbers and ``max_clip`` follow the
        files (a split asked for earlier ends here, with what came since folded in)."""
        decision = self.trigger.split(keyframe.mono)
        if decision.ended is None:  # cannot happen while a clip is open; be safe
            return
        ending = self._with_pending_split(self._ending(decision))
        self._pending_split = None
        self._close_clip(ending)
        self._reset_clip_bookkeeping()
        self._open_clip([keyframe], None)

    def _ending(self, decision: Decision) -> ClipEnding:
        """How the trigger's clip that ``decision`` ended is to be closed."""
        assert decision.ended is not None
        return ClipEnding(decision.ended, self._peak, self._clip_union)

    def _with_pending_split(self, ending: ClipEnding) -> ClipEnding:
        """``ending`` with a split still waiting for its keyframe folded in (one file)."""
        pending = self._pending_split
        return ending if pending is None else pending.merged(ending)

    def _end_clip(self, decision: Decision) -> None:
        """The trigger ended its clip: close the recorder's (with a waiting split folded in)."""
        if self._pending_start is not None:
            self._pending_start = None  # it never opened: no keyframe came in time
            logger.info(
                "camera %s: motion ended before the stream's next keyframe", self.config.name
            )
            return
        if not self._clip_open:
            return
        ending = self._with_pending_split(self._ending(decision))
        self._pending_split = None
        self._close_clip(ending)

    def _close_clip(self, ending: ClipEnding) -> None:
        assert self.recorder is not None
        keep = self.trigger.keeps(ending.stats)
        self.recorder.end_clip(keep, ending.stats, ending.peak, ending.union)
        self._clip_open = False
        if self._last_routed is not None:
            self._last_clip_end = self._last_routed.mono

    def _reset_clip_bookkeeping(self) -> None:
        self._peak = None
        self._start_still = None
        self._clip_union = None

    def _finish_clip(self) -> None:
        """End the clip in progress (stream lost, disarmed, stopping)."""
        decision = self.trigger.finish()
        if decision.ended is not None:
            self._end_clip(decision)
        elif self._clip_open and self._pending_split is not None:
            ending, self._pending_split = self._pending_split, None
            self._close_clip(ending)
        self._reset_clip_bookkeeping()
        self._pending_start = None
        self.preroll.clear()
        self._last_clip_end = None

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

    def _log_lighting(self, mono: float, result: MotionResult) -> None:
        if mono - self._last_lighting_log >= LIGHTING_LOG_INTERVAL:
            self._last_lighting_log = mono
            logger.info(
                "camera %s: lighting change (%.0f%% of the picture at once), not motion",
                self.config.name,
                result.delta * 100,
            )


def _boxes_of(detection: Detection) -> tuple[Box, ...]:
    """What moved in a detection, in the camera's (main stream's) pixels: the detector scales
    its boxes to the main stream's size, also when it watches a sub stream."""
    return detection.result.boxes if detection.result is not None else ()


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
