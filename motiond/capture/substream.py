"""Detection on an IP camera's sub stream, on a thread of its own.

Cameras send a second, low-resolution stream of the same picture. With
``capture.detect_source`` set, this thread decodes that stream (640x360 costs a ninth of a 1080p
decode), runs the camera's ``PictureWatch`` on it (motion, and day/night and tampering: the
capture thread has only coded packets of the main stream, no pictures), feeds the live view,
and hands its results to the camera's capture thread, which copies the main stream and decides
clips. Masks, boxes and learned areas stay in main-stream pixels: the detector maps between the
two sizes. Both streams' frames carry capture times from their own packets' timestamps on the
same monotonic clock, so a result lines up with the main stream's frames by time.

Which pictures may become a clip's warn snapshot is the trigger's rule (``Decision.takes_still``:
a clip's start, a new peak): this thread runs its own ``ClipJudge`` on the same results as the
capture thread's, so it JPEG-encodes only those pictures (encoding every changed one, in case,
cost 0.02 core at 15 fps). Where the two judges part (a warm-up counted from the main stream's
open, a split at the main stream's keyframe), the capture thread uses the newest still it got.

Thread crossings: ``results`` (a bounded deque under a lock) to the capture thread, each with
the scene report after its picture; ``main_size`` (a tuple swapped by the capture thread); the
camera's ``on_picture`` (the latest-frame slot and the frame listeners) is called on this
thread and only hands frames over; the watch publishes ``CameraTampered`` through the camera's
``on_event`` on this thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from motiond.backoff import RECONNECT
from motiond.capture.reconnect import open_retrying, wait_beating
from motiond.capture.sources.base import SourceError
from motiond.capture.sources.pyav import PyAVSource
from motiond.config.camera import CameraConfig
from motiond.detect.boxes import Box, MotionResult
from motiond.detect.judge import ClipJudge
from motiond.detect.still import Still
from motiond.detect.watch import Detection, PictureWatch
from motiond.frames import Frame, FrameDecodeError
from motiond.record.snapshots import still_jpeg
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


class DetectionThread:
    """Reads and decodes the sub stream, detects, reconnects with backoff, forever."""

    def __init__(
        self,
        config: CameraConfig,
        watch: PictureWatch,
        stop: threading.Event,
        *,
        on_picture: Callable[[Frame, MotionResult | None], None],
        armed: Callable[[], bool],
    ) -> None:
        assert config.capture.detect_source is not None
        self.config = config
        self.url = config.capture.detect_source
        self.stop_event = stop
        self.on_picture = on_picture  # each picture and what was detected in it
        self.armed = armed
        self.watch = watch
        self.results = Detections()
        # The trigger's rule, on this thread: which pictures may become warn snapshots.
        self.judge = ClipJudge(config.motion, config.record.max_clip)
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
        while not self.stop_event.is_set():
            source = open_retrying(
                lambda: PyAVSource(self.config.capture, self.stop_event, url=self.url, decode=True),
                self.stop_event,
                RECONNECT,
                self._beat,
                f"camera {self.config.name}: detection stream",
            )
            if source is None:
                return
            self._read(source)
            self._wait(1.0)

    def _read(self, source: PyAVSource) -> None:
        name = self.config.name
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
                    self.judge.reopened(frame.mono)
                    self.results.put(Detection(frame.mono, None, reopened=True))
                self._detect(frame)
        except SourceError as exc:
            logger.warning("camera %s: lost detection stream: %s", name, exc)
        finally:
            source.close()
            self.online = False

    def _detect(self, frame: Frame) -> None:
        self.frames += 1
        main_size = self.main_size
        result = None
        if not self.armed():
            self.judge.trigger.finish()  # as the capture thread finishes its clip
        elif main_size is not None:
            try:
                result = self.watch.look(frame, main_size, clip_kept=self.judge.clip_kept)
            except FrameDecodeError:
                self.frames_garbled += 1
        self.on_picture(frame, result)
        if result is None or main_size is None:
            return
        watch = self.watch
        report, motion = watch.report, watch.motion
        still = None
        if self.judge.judge(result, report, motion, frame.mono).takes_still:
            still = Still(
                still_jpeg(frame),
                scale_boxes(result.boxes, main_size, (frame.width, frame.height)),
            )
        self.results.put(Detection(frame.mono, result, report, still=still, motion=motion))

    def _wait(self, seconds: float) -> None:
        wait_beating(self.stop_event, seconds, self._beat)

    def _beat(self, now: float) -> None:
        self.heartbeat = now


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
