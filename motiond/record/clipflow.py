"""One camera's clip flow: compressed frames and detections in, clips to the recorder out.

Every compressed frame goes into the pre-roll ring (``PreRollBuffer``) and, while a clip is
being written, on to the recorder. Each detection goes to the ``ClipJudge`` (the trigger), and
its decisions are applied here, at keyframes, because a coded stream can only start (and a
clip only be cut) at one, as picamera2's circular output keeps keyframe-aligned open, split
and close next to its ring:

- START: the clip opens with the ring's frames from a keyframe (the pre-roll); with no
  keyframe in the ring yet, it opens at the next keyframe that comes (a *pending start*).
- SPLIT (``max_clip``): the clip being written is closed just before the next keyframe and
  the next one opens with it (a *pending split*); the judge's clip starts over there too, so
  its numbers and ``max_clip`` follow the files.
- A keyframe with other stream parameters (the camera restarted or changed resolution) splits
  likewise: a clip never mixes two streams.
- STOP: the clip is closed, kept or discarded by the trigger's rule; a start still waiting
  for its keyframe is dropped.

Per clip it keeps what closing needs: the union of what moved, and the start and peak
pictures (``Still``) for the warn snapshots.

With ``record.continuous`` every compressed frame also goes to the camera's
``ContinuousRecorder`` (record/continuous.py), and ``finish`` closes its segment.

Threads: everything runs on the camera's capture thread, except what is documented *any
thread* (``recording``, ``buffered_bytes``, the judge's ``last_delta``, the recorder's
counters): plain values one thread writes. The recorders' methods only enqueue (recorder.py,
continuous.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from motiond.config.camera import CameraConfig
from motiond.detect.boxes import Box, MotionResult, union_of
from motiond.detect.judge import ClipJudge
from motiond.detect.still import Still
from motiond.detect.trigger import Action, ClipStats, Decision
from motiond.detect.watch import Detection
from motiond.events import EventSink
from motiond.frames import Frame, FrameDecodeError, StreamParams
from motiond.record.continuous import ContinuousRecorder
from motiond.record.preroll import PreRollBuffer
from motiond.record.recorder import ClipRecorder, RoomCheck
from motiond.record.snapshots import still_jpeg
from motiond.store.layout import Storage

logger = logging.getLogger(__name__)

PRE_ROLL_MAX_BYTES = 96 * 1024 * 1024


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


class ClipFlow:
    """Turns one camera's frames and detections into clips. Not thread-safe: the capture
    thread (see the module's docstring for what other threads may read)."""

    def __init__(
        self,
        config: CameraConfig,
        storage: Storage,
        on_event: EventSink,
        make_room: RoomCheck | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.storage = storage
        self.on_event = on_event
        self.make_room = make_room  # retention, asked by the recorder before each clip
        self.judge = ClipJudge(config.motion, config.record.max_clip)
        self.preroll = PreRollBuffer(config.record.pre_roll, PRE_ROLL_MAX_BYTES)
        self.recorder: ClipRecorder | None = None  # from the source's first open on
        self.continuous: ContinuousRecorder | None = None  # the same, with record.continuous
        # The clip as the recorder has it.
        self._clip_open = False
        self._clip_params: StreamParams | None = None
        self._last_routed: Frame | None = None
        self._last_clip_end: float | None = None  # capture time of the last clip's last frame
        self._pending_start: Detection | None = None  # waiting for a keyframe
        self._pending_split: ClipEnding | None = None  # max_clip reached: split at a keyframe
        # Per-clip bookkeeping of the judge's clip.
        self._clip_union: Box | None = None
        self._start_still: Still | None = None
        self._peak: Still | None = None
        self._newest_still: Still | None = None  # from a sub stream's detection

    # -- the recorder ---------------------------------------------------------------------------

    def start_recorder(self, realtime: bool) -> None:
        """Start the recorder, once: at the source's first open, which tells whether frames
        come in real time (a camera: a full queue drops frames) or not (a file read as fast as
        it decodes: a full queue makes capture wait)."""
        if self.recorder is not None:
            return
        self.recorder = ClipRecorder(
            self.config,
            self.storage,
            self.on_event,
            nominal_fps=self.config.capture.fps or 15.0,
            wait_when_full=not realtime,
            make_room=self.make_room,
        )
        self.recorder.start()
        if self.config.record.continuous:
            self.continuous = ContinuousRecorder(
                self.config,
                self.storage,
                self.on_event,
                nominal_fps=self.config.capture.fps or 15.0,
                wait_when_full=not realtime,
                make_room=self.make_room,
            )
            self.continuous.start()

    def stop_recorder(self, timeout: float) -> bool:
        """Let the recorders finish what is queued (``finish`` first); False on timeout."""
        stopped = True if self.recorder is None else self.recorder.stop(timeout)
        if self.continuous is not None:
            stopped = self.continuous.stop(timeout) and stopped
        return stopped

    @property
    def recording(self) -> bool:
        """A clip is being recorded (any thread); one refused for lack of storage is not."""
        recorder = self.recorder
        return self.judge.recording and not (recorder is not None and recorder.storage_full)

    def buffered_bytes(self) -> int:
        """Memory held in frame buffers: the pre-roll ring and the encoder queue (any thread)."""
        recorder, continuous = self.recorder, self.continuous
        queued = (recorder.queued_bytes if recorder else 0) + (
            continuous.queued_bytes if continuous else 0
        )
        return self.preroll.nbytes + queued

    # -- frames and detections in ---------------------------------------------------------------

    def reopened(self, now: float) -> None:
        """The source was (re)opened at ``now``: no clip starts before the warm-up ends."""
        self.judge.reopened(now)

    @property
    def writing(self) -> bool:
        """A clip is being written: the next frame goes to the recorder (capture thread)."""
        return self._clip_open and self._pending_start is None

    def push(self, stored: Frame, picture: Any = None) -> None:
        """A new compressed frame: into the ring, into the clip being written (if any), and
        into the continuous recording (with ``record.continuous``). ``picture``: the frame's
        camera JPEG already decoded (``Frame.picture``), for the recorder to encode rather
        than decode it again; buffers keep only ``stored``."""
        self.preroll.push(stored)
        self._route(stored, picture)
        if self.continuous is not None:
            self.continuous.push(stored)

    def on_detection(self, detection: Detection) -> None:
        """What detection saw in one picture: the judge decides, the clips follow."""
        if detection.still is not None:
            self._newest_still = detection.still
        result = detection.result
        if detection.reopened or result is None:
            self.judge.reopened(detection.mono)
            return
        decision = self.judge.judge(result, detection.scene, detection.motion, detection.mono)
        self._apply(decision, detection, result)

    def finish(self) -> None:
        """End the clip in progress (stream lost, disarmed, stopping) and empty the ring; the
        continuous segment being written ends too (an outage is a gap, not a broken file)."""
        if self.continuous is not None:
            self.continuous.cut()
        decision = self.judge.trigger.finish()
        if decision.ended is not None:
            self._end_clip(decision)
        elif self._clip_open and self._pending_split is not None:
            ending, self._pending_split = self._pending_split, None
            self._close_clip(ending)
        self._reset_clip_bookkeeping()
        self._pending_start = None
        self.preroll.clear()
        self._last_clip_end = None

    # -- the judge's decisions ------------------------------------------------------------------

    def _apply(self, decision: Decision, detection: Detection, result: MotionResult) -> None:
        action = decision.action
        if action is Action.STOP:
            self._end_clip(decision)
            self._reset_clip_bookkeeping()
        elif action is Action.SPLIT:
            if self._clip_open:  # else it never opened (no keyframe yet): nothing to split
                self._pending_split = self._with_pending_split(self._ending(decision))
            self._reset_clip_bookkeeping()
        if action is Action.START or action is Action.SPLIT:
            self._clip_union = union_of(result.boxes)
        elif decision.changed and self.judge.recording:
            union = union_of(result.boxes)
            if union is not None:
                previous = self._clip_union
                self._clip_union = union if previous is None else previous.union(union)
        if decision.takes_still:
            self._peak = self._still(detection)
        if action is Action.START:
            self._start_still = self._peak
            self._begin_clip(detection)

    def _still(self, detection: Detection) -> Still | None:
        """The detection's picture for a warn snapshot: a JPEG, made now for a coded frame (or
        the newest one a sub stream's detection made, where it made none for this one)."""
        frame = detection.frame
        if detection.still is not None or frame is None or detection.result is None:
            return detection.still or self._newest_still
        if frame.packet is None:
            return Still(frame, detection.result.boxes)
        try:
            return Still(still_jpeg(frame), detection.result.boxes)
        except FrameDecodeError:
            return None

    # -- routing compressed frames to the recorder ----------------------------------------------

    def _begin_clip(self, detection: Detection) -> None:
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

    def _route(self, stored: Frame, picture: Any = None) -> None:
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
            logger.info("camera %s: stream parameters changed; continuing in a new clip", self.name)
            self._split_at(stored)
            return
        if stored.keyframe and self._pending_split is not None:
            self._split_at(stored)
            return
        recorder.add_frame(stored if picture is None else replace(stored, picture=picture))
        self._last_routed = stored

    def _split_at(self, keyframe: Frame) -> None:
        """Close the clip being written just before ``keyframe`` and open the next one with it;
        the judge's clip starts over there too, so its numbers and ``max_clip`` follow the
        files (a split asked for earlier ends here, with what came since folded in)."""
        decision = self.judge.trigger.split(keyframe.mono)
        if decision.ended is None:  # cannot happen while a clip is open; be safe
            return
        ending = self._with_pending_split(self._ending(decision))
        self._pending_split = None
        self._close_clip(ending)
        self._reset_clip_bookkeeping()
        self._open_clip([keyframe], None)

    def _ending(self, decision: Decision) -> ClipEnding:
        """How the judge's clip that ``decision`` ended is to be closed."""
        assert decision.ended is not None
        return ClipEnding(decision.ended, self._peak, self._clip_union)

    def _with_pending_split(self, ending: ClipEnding) -> ClipEnding:
        """``ending`` with a split still waiting for its keyframe folded in (one file)."""
        pending = self._pending_split
        return ending if pending is None else pending.merged(ending)

    def _end_clip(self, decision: Decision) -> None:
        """The judge ended its clip: close the recorder's (with a waiting split folded in)."""
        if self._pending_start is not None:
            self._pending_start = None  # it never opened: no keyframe came in time
            logger.info("camera %s: motion ended before the stream's next keyframe", self.name)
            return
        if not self._clip_open:
            return
        ending = self._with_pending_split(self._ending(decision))
        self._pending_split = None
        self._close_clip(ending)

    def _close_clip(self, ending: ClipEnding) -> None:
        assert self.recorder is not None
        keep = self.judge.trigger.keeps(ending.stats)
        self.recorder.end_clip(keep, ending.stats, ending.peak, ending.union)
        self._clip_open = False
        if self._last_routed is not None:
            self._last_clip_end = self._last_routed.mono

    def _reset_clip_bookkeeping(self) -> None:
        self._peak = None
        self._start_still = None
        self._clip_union = None


def _boxes_of(detection: Detection) -> tuple[Box, ...]:
    """What moved in a detection, in the camera's (main stream's) pixels: the detector scales
    its boxes to the main stream's size, also when it watches a sub stream."""
    return detection.result.boxes if detection.result is not None else ()
