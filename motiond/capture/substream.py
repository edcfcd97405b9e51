"""Detection on an IP camera's sub stream, on a thread of its own.

Cameras send a second, low-resolution stream of the same picture. With
``capture.detect_source`` set, this thread decodes that stream (640x360 costs a ninth of a 1080p
decode), runs the camera's ``PictureWatch`` on it (motion, and day/night and tampering: the
capture thread has only coded packets of the main stream, no pictures), feeds the live view,
and hands its results to the camera's capture thread, which copies the main stream and decides
clips. Masks, boxes and learned areas stay in main-stream pixels: the detector maps between the
two sizes. Both streams' frames carry capture times from their own packets' timestamps on the
same monotonic clock, so a result lines up with the main stream's frames by time.

Thread crossings: ``results`` (a bounded deque under a lock) to the capture thread, each with
the scene report after its picture; ``main_size`` (a tuple swapped by the capture thread); the
camera's frame listeners and ``on_picture`` are called on this thread and only hand frames
over; the watch emits ``camera_tampered`` through the camera's ``on_event`` on this thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from motiond.backoff import RECONNECT
from motiond.capture.sources import SourceError
from motiond.capture.sources.pyav import PyAVSource
from motiond.config import CameraConfig
from motiond.detect.motion import Box, MotionResult
from motiond.detect.watch import Detection, PictureWatch, Still
from motiond.frames import Frame, FrameDecodeError
from motiond.record.snapshots import encode_jpeg
from motiond.threads import named_thread

logger = logging.getLogger(__name__)

RESULTS_CAPACITY = 64  # about 4 s at 15 fps: the capture thread drains it with every frame


class Detections:
    """The hand-over of results to the capture thread: bounded, the oldest dropped (counted).
    Its lock protects ``_items``; the detection thread puts, the capture thread takes."""

    def __init__(self, capacity: int = RESULTS_CAPACITY) -> None:
        self._items: deque[Detection] = deque()
        self._capacity = capacity
        self._lock = threading.Lock()
        self.dropped = 0

    def put(self, detection: Detection) -> None:
        with self._lock:
            if len(self._items) >= self._capacity:
                self._items.popleft()
                self.dropped += 1
            self._items.append(detection)

    def take_all(self) -> list[Detection]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
        return items


FrameListener = Callable[[Frame, MotionResult | None], None]


class SnapshotCandidates:
    """Which detection pictures may become a clip's warn snapshot (pure).

    The trigger, on the capture thread, decides; this thread holds the picture. Encoding every
    changed picture, in case, cost 0.02 core at 15 fps; this follows the trigger's own rule
    instead: the first changed picture after a calm spell (``stable_frames`` calm pictures: a
    clip's start), every changed picture with a larger change than any since (its peak), and
    the picture on which the camera became suspect of tampering (a clip starts there too).
    Where the trigger departs from it (a warm-up delaying a start), the capture thread uses the
    newest picture it got.
    """

    def __init__(self, threshold: float, stable_frames: int) -> None:
        self.threshold = threshold
        self.stable_frames = stable_frames
        self.reset()

    def reset(self) -> None:
        self._calm = self.stable_frames  # as after a calm spell
        self._peak = 0.0
        self._suspect = False

    def wants(self, result: MotionResult, suspect: bool = False) -> bool:
        """Whether this picture (with ``result``; ``suspect``: the camera is suspect of
        tampering) may become a warn snapshot."""
        became_suspect = suspect and not self._suspect
        self._suspect = suspect
        changed = result.delta > self.threshold and not result.lighting
        if not changed:
            self._calm += 1
            if self._calm >= self.stable_frames:
                self._peak = 0.0
            return became_suspect
        starts = self._calm >= self.stable_frames
        self._calm = 0
        if starts or result.delta > self._peak:
            self._peak = result.delta
            return True
        return became_suspect


class DetectionThread:
    """Reads and decodes the sub stream, detects, reconnects with backoff, forever."""

    def __init__(
        self,
        config: CameraConfig,
        watch: PictureWatch,
        stop: threading.Event,
        *,
        listeners: Sequence[FrameListener],
        on_picture: Callable[[Frame], None],
        armed: Callable[[], bool],
    ) -> None:
        assert config.capture.detect_source is not None
        self.config = config
        self.url = config.capture.detect_source
        self.stop_event = stop
        self.listeners = listeners
        self.on_picture = on_picture
        self.armed = armed
        self.watch = watch
        self.results = Detections()
        self.candidates = SnapshotCandidates(
            self.config.motion.threshold, self.config.motion.stable_frames
        )
        self.main_size: tuple[int, int] | None = None  # written by the capture thread
        self.heartbeat = time.monotonic()
        self.online = False
        self.frames = 0
        self.frames_garbled = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = named_thread(
            self._run, f"detect-{self.config.name}", os_name=f"det:{self.config.name}"
        )
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        failures = 0
        while not self.stop_event.is_set():
            self.heartbeat = time.monotonic()
            source = PyAVSource(self.config.capture, self.stop_event, url=self.url, decode=True)
            try:
                source.open()
            except SourceError as exc:
                failures += 1
                delay = RECONNECT.delay(failures)
                logger.warning(
                    "camera %s: cannot open detection stream %s (%s); retrying in %.0f s",
                    self.config.name,
                    source.description,
                    exc,
                    delay,
                )
                self._wait(delay)
                continue
            failures = 0
            self._read(source)
            self._wait(1.0)

    def _read(self, source: PyAVSource) -> None:
        name = self.config.name
        self.candidates.reset()
        first = True
        try:
            while not self.stop_event.is_set():
                self.heartbeat = time.monotonic()
                frame = source.read()
                if frame is None:
                    logger.info("camera %s: detection stream ended", name)
                    return
                if first:
                    first = False
                    self.online = True
                    logger.info("camera %s: detection stream online (%s)", name, source.description)
                    self.watch.reopened(frame.mono)
                    self.results.put(Detection(frame.mono, None, reopened=True))
                self._detect(frame)
        except SourceError as exc:
            logger.warning("camera %s: lost detection stream: %s", name, exc)
        finally:
            source.close()
            self.online = False

    def _detect(self, frame: Frame) -> None:
        self.frames += 1
        self.on_picture(frame)
        main_size = self.main_size
        result = None
        if main_size is not None and self.armed():
            try:
                result = self.watch.look(frame, main_size)
            except FrameDecodeError:
                self.frames_garbled += 1
        for listener in self.listeners:
            listener(frame, result)
        if result is None or main_size is None:
            return
        detection = Detection(frame.mono, result, self.watch.report)
        self.candidates.threshold = self.watch.motion.threshold  # the night's, at night
        still = None
        if self.candidates.wants(result, detection.suspect):
            still = Still(
                Frame.from_jpeg(frame.seq, frame.mono, frame.wall, encode_jpeg(frame.bgr())),
                scale_boxes(result.boxes, main_size, (frame.width, frame.height)),
            )
            detection = Detection(frame.mono, result, detection.scene, still=still)
        self.results.put(detection)

    def _wait(self, seconds: float) -> None:
        wait_beating(self.stop_event, seconds, self._beat)

    def _beat(self, now: float) -> None:
        self.heartbeat = now


def wait_beating(stop: threading.Event, seconds: float, beat: Callable[[float], None]) -> None:
    """Wait ``seconds`` or until ``stop``, calling ``beat(now)`` at least every second, so a
    loop that waits to retry is not taken for a hung one (the watchdog reads heartbeats)."""
    deadline = time.monotonic() + seconds
    while not stop.is_set():
        now = time.monotonic()
        beat(now)
        if now >= deadline:
            return
        stop.wait(min(deadline - now, 1.0))


def scale_boxes(
    boxes: tuple[Box, ...], source: tuple[int, int], target: tuple[int, int]
) -> tuple[Box, ...]:
    """Boxes in ``source`` pixels, in ``target`` pixels (a stream of another size)."""
    if source == target:
        return boxes
    sx, sy = target[0] / source[0], target[1] / source[1]
    return tuple(
        Box(
            round(b.x * sx),
            round(b.y * sy),
            max(1, round(b.width * sx)),
            max(1, round(b.height * sy)),
        )
        for b in boxes
    )
