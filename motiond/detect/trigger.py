"""When to start and stop a clip (pure: deltas and an explicit ``now`` in, decisions out).

- A *changed* frame is one whose delta exceeds ``threshold`` and is not a lighting change.
- Idle, a changed frame starts a clip (unless held off: the first ``warmup`` after a (re)open).
- Recording, the scene is stable again when the last ``stable_frames`` deltas are all at or
  below ``threshold``: the clip stops. It is kept if it has at least ``min_changed_frames``
  changed frames, otherwise it is noise and is discarded.
- A clip that reaches ``max_clip`` is split: it ends and the next one starts on the same frame.
- A delta may stand for several frames (``detect_fps`` detected one of them): it counts that
  many times, in the ring and in the clip's frames, so the numbers above stay the camera's.
- While the camera is suspected of being tampered with, a clip starts (whatever the deltas)
  and does not stop; a clip during which tampering was confirmed is kept whatever its count.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass

from motiond.config.motion import MotionConfig


class Action(enum.Enum):
    NONE = "none"
    START = "start"
    STOP = "stop"
    SPLIT = "split"


@dataclass(slots=True)
class ClipStats:
    """Numbers of the clip being recorded, from its first changed frame on."""

    started_at: float
    frames: int = 1
    changed_frames: int = 1
    peak_delta: float = 0.0
    peak_at: float = 0.0
    last_changed_at: float = 0.0
    keep_anyway: bool = False  # kept whatever its changed frames (the camera was tampered with)

    def merged(self, later: ClipStats) -> ClipStats:
        """These stats and those of the clip that followed, as one clip's."""
        peak = self if self.peak_delta >= later.peak_delta else later
        return ClipStats(
            started_at=self.started_at,
            frames=self.frames + later.frames,
            changed_frames=self.changed_frames + later.changed_frames,
            peak_delta=peak.peak_delta,
            peak_at=peak.peak_at,
            last_changed_at=max(self.last_changed_at, later.last_changed_at),
            keep_anyway=self.keep_anyway or later.keep_anyway,
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """What the frame just seen means for recording.

    ``ended`` holds the stats of the clip that STOP or SPLIT ended, and ``keep`` whether it has
    enough changed frames to keep. ``new_peak`` is True when this frame is the clip's peak so far.
    """

    action: Action
    changed: bool
    keep: bool = False
    ended: ClipStats | None = None
    new_peak: bool = False

    @property
    def takes_still(self) -> bool:
        """This frame's picture becomes the clip's warn snapshot (so far): a clip's first frame
        (a start, or a changed frame that begins the next clip at a split), or a new peak.
        The one rule for which pictures may become snapshots (``substream`` asks it too)."""
        action = self.action
        return action is Action.START or (action is Action.SPLIT and self.changed) or self.new_peak


# NONE is the answer for nearly every frame: one shared (immutable) object per combination,
# none made per frame. Indexed [changed][new_peak].
_GOING_ON = (
    (Decision(Action.NONE, changed=False), Decision(Action.NONE, changed=False, new_peak=True)),
    (Decision(Action.NONE, changed=True), Decision(Action.NONE, changed=True, new_peak=True)),
)


class DeltaHistory:
    """A ring of the last N deltas."""

    def __init__(self, size: int) -> None:
        self._deltas: deque[float] = deque(maxlen=size)

    def push(self, delta: float, frames: int = 1) -> None:
        """``delta`` for ``frames`` frames (the frames a detected one stands for)."""
        if frames == 1:
            self._deltas.append(delta)
        else:
            self._deltas.extend((delta,) * frames)

    def clear(self) -> None:
        self._deltas.clear()

    def is_stable(self, threshold: float) -> bool:
        """True when the ring is full and every delta in it is at or below ``threshold``."""
        return len(self._deltas) == self._deltas.maxlen and max(self._deltas) <= threshold

    def __len__(self) -> int:
        return len(self._deltas)


class RecordingTrigger:
    """The idle/recording state machine of one camera. Not thread-safe."""

    def __init__(self, motion: MotionConfig, max_clip: float) -> None:
        self.threshold = motion.threshold
        self.min_changed_frames = motion.min_changed_frames
        self.max_clip = max_clip
        self.history = DeltaHistory(motion.stable_frames)
        self.clip: ClipStats | None = None
        self._hold_until = float("-inf")

    @property
    def recording(self) -> bool:
        return self.clip is not None

    def configure(self, motion: MotionConfig) -> None:
        """Use ``motion``'s threshold and min_changed_frames from now on (night mode)."""
        self.threshold = motion.threshold
        self.min_changed_frames = motion.min_changed_frames

    def keeps(self, stats: ClipStats) -> bool:
        """Whether a clip with these numbers is kept (enough changed frames, or tampering)."""
        return stats.changed_frames >= self.min_changed_frames or stats.keep_anyway

    def keep_clip(self) -> None:
        """Keep the clip in progress whatever its changed frames (the camera was tampered)."""
        if self.clip is not None:
            self.clip.keep_anyway = True

    def hold_off(self, until: float) -> None:
        """Start no clip before ``until`` (after a (re)open the first frames are not trusted)."""
        self._hold_until = until
        self.history.clear()

    def update(
        self,
        delta: float,
        lighting: bool,
        now: float,
        *,
        suspect: bool = False,
        mover: bool = False,
        frames: int = 1,
    ) -> Decision:
        """Feed one frame's delta (``lighting``: a lighting change, not motion) seen at ``now``;
        ``suspect``: the camera may be being tampered with (start, and do not stop);
        ``mover``: a small mover was seen, a changed frame whatever the delta; ``frames``: how
        many of the camera's frames it stands for (``detect_fps`` skipped the others)."""
        if mover and not lighting and delta <= self.threshold:
            delta = math.nextafter(self.threshold, math.inf)
        self.history.push(delta, frames)
        changed = delta > self.threshold and not lighting
        clip = self.clip
        if clip is None:
            if (changed or suspect) and now >= self._hold_until:
                self.clip = ClipStats(
                    started_at=now,
                    frames=frames,
                    changed_frames=frames if changed else 0,
                    peak_delta=delta if changed else 0.0,
                    peak_at=now,
                    last_changed_at=now,
                )
                return Decision(Action.START, changed=changed, new_peak=True)
            return _GOING_ON[changed][False]

        stable = self.history.is_stable(self.threshold) and not suspect
        if not stable and now - clip.started_at >= self.max_clip:
            # This frame is the first of the next clip.
            ended = self._end(Action.SPLIT, changed)
            self.clip = ClipStats(
                started_at=now,
                frames=frames,
                changed_frames=frames if changed else 0,
                peak_delta=delta if changed else 0.0,
                peak_at=now,
                last_changed_at=now,
            )
            return ended
        clip.frames += frames
        new_peak = False
        if changed:
            clip.changed_frames += frames
            clip.last_changed_at = now
            if delta > clip.peak_delta:
                clip.peak_delta, clip.peak_at, new_peak = delta, now, True
        if stable:
            return self._end(Action.STOP, changed)
        return _GOING_ON[changed][new_peak]

    def split(self, now: float) -> Decision:
        """End the clip in progress at ``now`` and go on recording in a new one (the stream
        changed under it); NONE when idle."""
        if self.clip is None:
            return _GOING_ON[False][False]
        ended = self._end(Action.SPLIT, changed=False)
        self.clip = ClipStats(started_at=now, changed_frames=0, peak_at=now, last_changed_at=now)
        return ended

    def finish(self) -> Decision:
        """End the clip in progress now (camera lost, shutdown); NONE when idle."""
        if self.clip is None:
            return _GOING_ON[False][False]
        return self._end(Action.STOP, changed=False)

    def _end(self, action: Action, changed: bool) -> Decision:
        clip = self.clip
        assert clip is not None
        self.clip = None
        return Decision(action, changed=changed, keep=self.keeps(clip), ended=clip)
