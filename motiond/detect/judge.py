"""The trigger fed what detection saw: one picture's result and scene in, a clip decision out.

``ClipJudge`` wraps ``RecordingTrigger`` (which knows only deltas) with what a camera adds
around it: no clip during the warm-up after a (re)open; the settings in effect for each
picture (the night's at night, as ``PictureWatch`` chose them: the choice is made there
only); a day/night switch's settling is not motion; a suspect camera starts a clip and keeps
it going; the clip of the moment is kept once tampering is confirmed (each tampering once).

Pure: no clock (each call carries the picture's capture time), no I/O. Not thread-safe: one
owner thread. The camera's clip flow runs one on its capture thread; a sub stream's detection
thread runs another on the same results, to know which pictures may become warn snapshots
(``Decision.takes_still``) without asking across threads. ``last_delta`` is read from other
threads (a float the owner replaces).
"""

from __future__ import annotations

from motiond.config.motion import MotionConfig
from motiond.detect.boxes import MotionResult
from motiond.detect.tamper import SceneReport
from motiond.detect.trigger import Decision, RecordingTrigger


class ClipJudge:
    """Decides clips from detection results, for one camera."""

    def __init__(self, motion: MotionConfig, max_clip: float) -> None:
        self.trigger = RecordingTrigger(motion, max_clip)
        self.warmup = motion.warmup
        self.last_delta: float | None = None  # the last judged picture's (status)
        self._motion = motion  # the settings the trigger has now
        self._tamper_kept: float | None = None  # the tampering whose clip was marked kept

    @property
    def recording(self) -> bool:
        return self.trigger.recording

    @property
    def clip_kept(self) -> bool:
        """A clip is recording and will be kept (its changed frames, or tampering)."""
        clip = self.trigger.clip
        return clip is not None and self.trigger.keeps(clip)

    def reopened(self, now: float) -> None:
        """A stream was (re)opened at ``now``: no clip starts before the warm-up ends."""
        self.trigger.hold_off(now + self.warmup)

    def judge(
        self,
        result: MotionResult,
        scene: SceneReport | None,
        motion: MotionConfig | None,
        now: float,
    ) -> Decision:
        """One picture seen at ``now``: its motion ``result``, the scene monitor's report
        after it, and the motion settings in effect for it (None: unchanged)."""
        self.last_delta = result.delta
        if motion is not None and motion is not self._motion:
            self._motion = motion
            self.trigger.configure(motion)
        suspect = False
        settling = False
        if scene is not None:
            suspect, settling = scene.suspect, scene.settling
            tamper = scene.tamper
            if tamper.tampered is not None and tamper.tampered_since != self._tamper_kept:
                self._tamper_kept = tamper.tampered_since
                self.trigger.keep_clip()  # the clip of the moment, started when it became suspect
        return self.trigger.update(
            result.delta,
            result.lighting or settling,  # a day/night switch is not motion
            now,
            suspect=suspect,
            mover=result.mover,
            frames=result.frames,
        )
