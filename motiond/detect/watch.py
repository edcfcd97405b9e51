"""What detection makes of one camera's pictures, on the thread that has them.

``PictureWatch`` runs, for each picture, the motion detector (changed regions, ``min_area``,
learned nuisance areas) and then the scene monitor (day or night from the colour, tampering),
chooses the settings in effect (the night overrides at night: the one place that choice is
made), and logs and emits what it finds (lighting changes, day/night switches,
``camera_tampered``). It runs where the decoded pictures are: on the capture thread of a
camera without a sub stream, on the ``DetectionThread`` of one with a sub stream.

What the trigger needs (on the capture thread either way) goes there in a ``Detection``: the
motion result, the scene report after it and the settings in effect. The trigger's side
(``ClipJudge``) reads the report's *levels* (the mode, whether the camera is suspect or
tampered with and since when, settling), never its one-picture news, so a detection dropped
by the hand-over loses nothing but itself.

Threads: one thread (the owner) calls ``reopened`` and ``look``, whose detection waits for
any other camera's (``ONE_AT_A_TIME``); others read ``report``, ``motion``, ``ignored_share``
and ``ignored_areas()``: values the owner replaces, never changes. ``on_event`` is called on
the owner thread; the event bus takes events from any thread (capture, detection and recorder
threads all emit) and only hands them on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from motiond.config.camera import CameraConfig
from motiond.config.motion import MotionConfig
from motiond.detect.boxes import MotionResult, Outlines
from motiond.detect.colour import colourfulness
from motiond.detect.motion import MotionDetector, detection_scale
from motiond.detect.pace import DetectionPace
from motiond.detect.still import Still
from motiond.detect.tamper import SceneMonitor, SceneReport, TamperState
from motiond.events import CameraTampered, EventSink
from motiond.frames import Frame, FrameDecodeError

logger = logging.getLogger(__name__)

# Detection of all cameras runs one picture at a time. It is short Python between many short
# OpenCV and numpy calls, each of which lets the GIL go: with several cameras detecting at once,
# every one of those handed the GIL to another camera's detection and back (eight cameras with
# sub streams, recording: 47,000 context switches a second on their detection threads, 0.40
# core; one at a time, and with the capture threads' reads no longer taking the GIL (see
# capture/stall.py): 2,300 a second, 0.21 core; docs/benchmarks.md). The decoding before it,
# which runs without the GIL for most of a millisecond, stays in parallel.
ONE_AT_A_TIME = threading.Lock()

LIGHTING_LOG_INTERVAL = 60.0  # seconds of frame time between "lighting change" lines

TAMPER_DETAILS = {
    "covered": "the picture is nearly uniform or far darker than usual",
    "blinded": "the picture is far brighter than usual",
    "defocused": "the picture is far less sharp than usual",
    "turned": "the camera no longer sees the scene it usually sees",
}


@dataclass(frozen=True, slots=True)
class Detection:
    """What detection saw in one picture, for the trigger on the capture thread.

    ``scene`` is the scene monitor's report after that picture (day/night, tampering), and
    ``motion`` the settings in effect for it (the night's at night), as the watch chose them.
    ``frame`` is that picture's frame while the capture thread holds it (detection on the main
    stream), else None and ``still`` is a JPEG of it (from a sub stream), made only for a
    picture that may become a warn snapshot (``Decision.takes_still``, on the detection thread).
    ``reopened``: the detection stream was (re)opened at ``mono``; clips wait for the warm-up.
    """

    mono: float
    result: MotionResult | None
    scene: SceneReport | None = None
    frame: Frame | None = None
    still: Still | None = None
    reopened: bool = False
    motion: MotionConfig | None = None

    @property
    def suspect(self) -> bool:
        """The camera may be being tampered with (not yet confirmed): a clip starts and goes on."""
        return self.scene is not None and self.scene.suspect

    @property
    def settling(self) -> bool:
        """Just after a day/night switch: the picture's changes are not motion."""
        return self.scene is not None and self.scene.settling


class PictureWatch:
    """Motion, day/night and tampering of one camera. Not thread-safe: one owner thread."""

    def __init__(
        self, config: CameraConfig, on_event: EventSink, recording: Callable[[], bool]
    ) -> None:
        self.name = config.name
        self.day_motion = config.motion
        self.night_motion = config.motion.at_night()
        self.motion = config.motion  # in effect: the day's, or with the night overrides
        self.detector = MotionDetector(config.motion)
        self.scene = SceneMonitor(config.motion.tamper_after)
        self.pace = DetectionPace(config.motion.detect_fps, config.motion.clip_detect_fps)
        self.on_event = on_event
        self.recording = recording  # whether the trigger records (read across threads)
        self._last_lighting_log = float("-inf")

    @property
    def report(self) -> SceneReport:
        """The scene monitor's latest report (any thread)."""
        return self.scene.report

    @property
    def ignored_share(self) -> float:
        """The share of the picture learned as always moving (any thread)."""
        nuisance = self.detector.nuisance
        return nuisance.ignored_share if nuisance is not None else 0.0

    def ignored_areas(self) -> Outlines:
        """Outlines of the areas learned as always moving, in camera pixels (any thread)."""
        return self.detector.ignored_areas()

    def reopened(self, now: float) -> None:
        """The stream was (re)opened at ``now``: the next picture is compared with nothing, and
        tampering is not judged before the warm-up ends."""
        self.detector.reset()
        self.pace.reset()
        self.scene.reset(now + self.day_motion.warmup)

    def look(
        self, frame: Frame, size: tuple[int, int], *, clip_kept: bool = False
    ) -> MotionResult | None:
        """Detect motion in ``frame`` and watch the scene. ``size`` is the camera's picture
        size (its main stream's), in which masks are given and boxes returned; ``clip_kept``:
        a clip that will be kept is recording (the owner thread's ``ClipJudge`` says), so
        ``clip_detect_fps`` caps the rate. None for the first picture after ``reopened`` and
        for a picture the cap skips (not decoded for detection, not looked at). Raises
        FrameDecodeError (a garbled picture)."""
        frames = self.pace.take(frame.mono, clip_kept)
        if not frames:
            return None
        width, height = size
        gray = frame.gray_for_detection(detection_scale(width, self.motion.detect_width))
        with ONE_AT_A_TIME:
            result = self.detector.detect(gray, width, height, now=frame.mono)
            if result is not None:
                if result.lighting:
                    self._log_lighting(frame.mono, result)
                self._watch_scene(frame, result)
        if result is not None and frames > 1:
            result = replace(result, frames=frames)
        return result

    def _log_lighting(self, mono: float, result: MotionResult) -> None:
        if mono - self._last_lighting_log >= LIGHTING_LOG_INTERVAL:
            self._last_lighting_log = mono
            logger.info(
                "camera %s: lighting change (%.0f%% of the picture at once), not motion",
                self.name,
                result.delta * 100,
            )

    def _watch_scene(self, frame: Frame, result: MotionResult) -> None:
        """Day/night and tampering, from the detection picture and, now and then, the colour."""
        picture = self.detector.picture
        if picture is None:
            return
        jumped = not self.recording() and (
            result.lighting or result.raw_delta > self.motion.threshold
        )
        colour = None
        if self.scene.wants_colour(frame.mono, jumped):
            try:
                colour = colourfulness(frame)
            except FrameDecodeError:
                colour = None
        report = self.scene.update(picture, frame.mono, colour, self.detector.mask)
        self._follow_mode(report)
        self._note_tamper(frame, report.tamper)

    def _follow_mode(self, report: SceneReport) -> None:
        """The night overrides while in night mode (also when the camera starts at night)."""
        motion = self.night_motion if report.mode == "night" else self.day_motion
        if motion is not self.motion:
            self.motion = motion
            self.detector.configure(motion)
            if not report.switched:  # the first colour sample: the camera started at night
                logger.info("camera %s: in night mode (the picture has no colour)", self.name)
        if report.switched:
            logger.info(
                "camera %s: switched to %s",
                self.name,
                "night mode (infrared: the picture lost its colour)"
                if report.mode == "night"
                else "day mode (the picture has colour again)",
            )

    def _note_tamper(self, frame: Frame, tamper: TamperState) -> None:
        name = self.name
        if tamper.cleared:
            logger.info("camera %s: no longer tampered with (was %s)", name, tamper.cleared)
            if tamper.relearned:
                logger.info("camera %s: its new view is now the usual one", name)
        if not tamper.raised or tamper.tampered is None or tamper.tampered_since is None:
            return
        since_wall = frame.wall - (frame.mono - tamper.tampered_since)
        detail = TAMPER_DETAILS[tamper.tampered]
        logger.warning(
            "camera %s: tampered with: %s (%s) for %.1f s",
            name,
            tamper.tampered,
            detail,
            frame.mono - tamper.tampered_since,
        )
        self.on_event(
            CameraTampered(
                camera=name,
                kind=tamper.tampered,
                detail=detail,
                since=since_wall,
                detected=frame.wall,
            )
        )
