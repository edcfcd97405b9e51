"""Frame sources: V4L2 devices, network URLs, video files and the built-in demo.

    source = open_source(capture_config, stop_event)   # builds, does not open
    source.open()          # raises SourceError; bounded by capture.open_timeout
    frame = source.read()  # a Frame, or None when the stream ended (or stop_event was set while
                           # waiting for a frame to be due); raises SourceError on failure;
                           # bounded by capture.read_timeout
    source.close()         # idempotent

A source belongs to one thread, the one that reads it: open, read and close are not thread-safe.
Nothing blocks without a bound: pacing waits on the stop event, network reads have timeouts.

Frame times are taken when a frame arrives (``time.monotonic()``, ``time.time()``), except for
a file read as fast as it decodes (``realtime`` False): then ``mono`` is the file's own
timestamp, continued across loops, and ``wall`` is the wall time at open plus that.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import logging
import math
import os
import socket
import ssl
import threading
import time
from typing import Protocol
from urllib.parse import SplitResult, unquote, urlsplit

import cv2
import numpy as np

from motiond.config import CaptureConfig
from motiond.frames import Frame, FrameDecodeError

logger = logging.getLogger(__name__)

DEFAULT_FPS = 15.0
DEFAULT_SNAPSHOT_FPS = 5.0
MAX_PART_BYTES = 32 * 1024 * 1024  # a larger "JPEG" means we lost the stream's framing
_READ_CHUNK = 256 * 1024
_MAX_PART_HEADERS = 16 * 1024


class SourceError(Exception):
    """A source failed; the message says what failed (``cannot open /dev/video0: ...``)."""


class Source(Protocol):
    description: str
    """What this source reads, for logs; URLs have their password removed."""
    realtime: bool
    """False only for a file read as fast as it decodes (frame.mono is the file's timestamp)."""

    def open(self) -> None: ...

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


def open_source(capture: CaptureConfig, stop: threading.Event) -> Source:
    """The source for ``capture.kind``, not yet opened."""
    if capture.kind == "demo":
        return DemoSource(capture, stop)
    if capture.kind == "file":
        return FileSource(capture, stop)
    if capture.kind == "url" and urlsplit(capture.source).scheme.lower() in ("http", "https"):
        return MjpegHttpSource(capture, stop)
    return OpenCVSource(capture, stop)


# ---------------------------------------------------------------------------------------------
# Shared pieces


_ROTATE_CODES = {
    90: cv2.ROTATE_90_CLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_COUNTERCLOCKWISE,
}
_FLIP_CODES = {"horizontal": 1, "vertical": 0, "both": -1}


class _FrameMaker:
    """Numbers frames from 0 per open and applies rotate, then flip.

    JPEG frames stay undecoded unless they have to be rotated or flipped.
    """

    def __init__(self, capture: CaptureConfig) -> None:
        self._rotate = _ROTATE_CODES.get(capture.rotate)
        self._flip = _FLIP_CODES.get(capture.flip)
        self.seq = 0

    @property
    def transforms(self) -> bool:
        return self._rotate is not None or self._flip is not None

    def image(self, image: np.ndarray, mono: float, wall: float) -> Frame:
        if self._rotate is not None:
            image = cv2.rotate(image, self._rotate)
        if self._flip is not None:
            image = cv2.flip(image, self._flip)
        frame = Frame.from_image(self.seq, mono, wall, image)
        self.seq += 1
        return frame

    def jpeg(self, data: bytes, mono: float, wall: float) -> Frame:
        """Raises FrameDecodeError when ``data`` is not a (decodable, if transformed) JPEG."""
        if self.transforms:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                raise FrameDecodeError("JPEG decode failed")
            return self.image(image, mono, wall)
        frame = Frame.from_jpeg(self.seq, mono, wall, data)
        self.seq += 1
        return frame


class _Pacer:
    """Lets one frame through every 1/fps seconds on monotonic deadlines, waiting on ``stop``."""

    def __init__(self, fps: float, stop: threading.Event) -> None:
        self.interval = 1.0 / fps
        self._stop = stop
        self._due: float | None = None

    def wait(self) -> bool:
        """Wait until the next frame is due; False when ``stop`` is set."""
        if self._stop.is_set():
            return False
        now = time.monotonic()
        if self._due is None or now - self._due > self.interval:
            self._due = now  # first frame, or we fell behind: carry on from now, no burst
        delay = self._due - now
        if delay > 0 and self._stop.wait(delay):
            return False
        self._due += self.interval
        return True


def redact_url(url: str) -> str:
    """``url`` without the password, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


# ---------------------------------------------------------------------------------------------
# Demo


class DemoSource:
    """A synthetic camera: a static room with sensor noise and, now and then, a walker.

    The first walker starts ``first_object_after`` seconds after open and crosses the frame in
    ``crossing_time`` seconds; the next ones start every ``object_interval`` seconds (uniformly
    drawn from the seeded RNG). Frames are paced in real time at ``capture.fps``.
    """

    realtime = True

    def __init__(
        self,
        capture: CaptureConfig,
        stop: threading.Event,
        *,
        seed: int | None = None,
        first_object_after: float = 5.0,
        object_interval: tuple[float, float] = (20.0, 30.0),
        crossing_time: float = 3.5,
        noise_sigma: float = 3.0,
    ) -> None:
        self.description = "demo"
        self.width = capture.width or 640
        self.height = capture.height or 480
        self.fps = capture.fps or DEFAULT_FPS
        self._stop = stop
        self._seed = seed
        self._first_object_after = first_object_after
        self._object_interval = object_interval
        self._crossing_time = crossing_time
        self._noise_sigma = noise_sigma
        self._frames = _FrameMaker(capture)
        self._pacer = _Pacer(self.fps, stop)
        self._background: np.ndarray | None = None
        self._noise_add = np.empty(0, np.uint8)
        self._noise_sub = np.empty(0, np.uint8)
        self._walkers: _WalkerSchedule | None = None
        self._noise_rng = np.random.default_rng(seed)
        self._opened_at = 0.0

    def open(self) -> None:
        # Separate streams, so the walkers' schedule does not depend on how many frames were read.
        scene_rng, walker_rng, self._noise_rng = np.random.default_rng(self._seed).spawn(3)
        self._background = _draw_room(self.width, self.height, scene_rng)
        # One tall noise field; a random row offset per frame gives a fresh pattern for the
        # price of two saturating adds (uint8 cannot hold the negative half, hence two arrays).
        shape = (self.height + 64, self.width, 3)
        noise = self._noise_rng.normal(0.0, self._noise_sigma, shape)
        self._noise_add = np.clip(noise, 0, 255).astype(np.uint8)
        self._noise_sub = np.clip(-noise, 0, 255).astype(np.uint8)
        self._walkers = _WalkerSchedule(
            self.width,
            self.height,
            walker_rng,
            first_after=self._first_object_after,
            interval=self._object_interval,
            crossing_time=self._crossing_time,
        )
        self._frames.seq = 0
        self._pacer = _Pacer(self.fps, self._stop)
        self._opened_at = time.monotonic()
        logger.info("demo source: %dx%d at %g fps", self.width, self.height, self.fps)

    def read(self) -> Frame | None:
        if self._background is None or self._walkers is None:
            raise SourceError("demo source is not open")
        if not self._pacer.wait():
            return None
        mono, wall = time.monotonic(), time.time()
        image = self._background.copy()
        self._walkers.draw(image, mono - self._opened_at)
        row = int(self._noise_rng.integers(0, self._noise_add.shape[0] - self.height + 1))
        cv2.add(image, self._noise_add[row : row + self.height], dst=image)
        cv2.subtract(image, self._noise_sub[row : row + self.height], dst=image)
        return self._frames.image(image, mono, wall)

    def motion_active(self, now: float) -> bool:
        """Whether a walker is in the frame at monotonic time ``now``.

        The schedule is drawn as time passes: ``now`` must not go back before frames read.
        """
        if self._walkers is None:
            return False
        return self._walkers.active(now - self._opened_at) is not None

    def close(self) -> None:
        self._background = None
        self._walkers = None


class _Walker:
    """One crossing: a body and a head moving horizontally at constant speed."""

    def __init__(self, start: float, rng: np.random.Generator, width: int, height: int) -> None:
        self.start = start
        self.left_to_right = bool(rng.integers(0, 2))
        self.body_width = max(4, width // 15)
        self.feet_y = int(height * rng.uniform(0.72, 0.95))
        self.color = tuple(int(c) for c in rng.integers(20, 110, 3))


class _WalkerSchedule:
    """When walkers cross, drawn lazily from the RNG; times are seconds since open."""

    def __init__(
        self,
        width: int,
        height: int,
        rng: np.random.Generator,
        *,
        first_after: float,
        interval: tuple[float, float],
        crossing_time: float,
    ) -> None:
        self._width = width
        self._height = height
        self._rng = rng
        self._interval = interval
        self._crossing_time = crossing_time
        self._current = _Walker(first_after, rng, width, height)

    def active(self, elapsed: float) -> _Walker | None:
        while elapsed >= self._current.start + self._crossing_time:
            start = self._current.start + float(self._rng.uniform(*self._interval))
            self._current = _Walker(start, self._rng, self._width, self._height)
        return self._current if elapsed >= self._current.start else None

    def draw(self, image: np.ndarray, elapsed: float) -> None:
        walker = self.active(elapsed)
        if walker is None:
            return
        progress = (elapsed - walker.start) / self._crossing_time
        if not walker.left_to_right:
            progress = 1.0 - progress
        size = walker.body_width
        x = int(-size + progress * (self._width + 2 * size))
        feet, body_height = walker.feet_y, int(size * 2.6)
        cv2.ellipse(
            image,
            (x, feet - body_height // 2),
            (size // 2, body_height // 2),
            0,
            0,
            360,
            walker.color,
            -1,
            cv2.LINE_AA,
        )
        cv2.circle(
            image, (x, feet - body_height - size // 3), size // 3, (80, 110, 150), -1, cv2.LINE_AA
        )


def _draw_room(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A static scene that looks vaguely like a room: wall, floor, window, door, table, clock."""

    def px(fx: float, fy: float) -> tuple[int, int]:
        return int(fx * width), int(fy * height)

    floor_y = int(height * 0.62)
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    wall_top, wall_low = np.array([214, 208, 200]), np.array([176, 172, 166])
    floor_far, floor_near = np.array([96, 116, 142]), np.array([58, 76, 104])
    image = np.empty((height, width, 3), np.float32)
    wall_ramp = ramp[:floor_y] / max(ramp[floor_y - 1, 0, 0], 1e-6)
    image[:floor_y] = wall_top + (wall_low - wall_top) * wall_ramp
    floor_ramp = (ramp[floor_y:] - ramp[floor_y]) / max(1.0 - float(ramp[floor_y, 0, 0]), 1e-6)
    image[floor_y:] = floor_far + (floor_near - floor_far) * floor_ramp
    # A fixed, blurred texture so the wall is not perfectly flat (compression and noise behave).
    texture = cv2.GaussianBlur(
        rng.normal(0.0, 10.0, (height, width)).astype(np.float32), (0, 0), 1.5
    )
    image += texture[:, :, None]
    room = np.clip(image, 0, 255).astype(np.uint8)

    thick = max(1, width // 160)
    cv2.rectangle(room, px(0, 0.61), px(1, 0.63), (70, 80, 95), -1)  # skirting board
    cv2.rectangle(room, px(0.07, 0.12), px(0.31, 0.46), (236, 214, 178), -1)  # window
    cv2.rectangle(room, px(0.07, 0.12), px(0.31, 0.46), (235, 235, 235), thick * 2)
    cv2.line(room, px(0.19, 0.12), px(0.19, 0.46), (235, 235, 235), thick * 2)
    cv2.line(room, px(0.07, 0.29), px(0.31, 0.29), (235, 235, 235), thick * 2)
    cv2.rectangle(room, px(0.73, 0.2), px(0.87, 0.62), (62, 92, 132), -1)  # door
    cv2.circle(room, px(0.76, 0.42), max(2, width // 120), (40, 170, 200), -1, cv2.LINE_AA)
    cv2.rectangle(room, px(0.40, 0.17), px(0.55, 0.35), (50, 60, 70), thick * 2)  # picture
    cv2.rectangle(room, px(0.415, 0.19), px(0.535, 0.33), (90, 140, 80), -1)
    cv2.circle(room, px(0.475, 0.24), max(3, width // 60), (60, 200, 230), -1, cv2.LINE_AA)
    clock = px(0.64, 0.2)
    radius = max(4, width // 30)
    cv2.circle(room, clock, radius, (245, 245, 245), -1, cv2.LINE_AA)
    cv2.circle(room, clock, radius, (40, 40, 40), thick, cv2.LINE_AA)
    cv2.line(room, clock, (clock[0], clock[1] - radius * 3 // 4), (30, 30, 30), thick, cv2.LINE_AA)
    cv2.line(room, clock, (clock[0] + radius // 2, clock[1]), (30, 30, 30), thick, cv2.LINE_AA)
    cv2.rectangle(room, px(0.36, 0.66), px(0.62, 0.70), (40, 70, 110), -1)  # table top
    for leg in (0.38, 0.59):
        cv2.rectangle(room, px(leg, 0.70), px(leg + 0.015, 0.86), (35, 60, 95), -1)
    scale = max(0.3, width / 1600)
    cv2.putText(
        room,
        "motiond demo",
        px(0.02, 0.06),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (60, 60, 60),
        max(1, thick),
        cv2.LINE_AA,
    )
    return room


# ---------------------------------------------------------------------------------------------
# Video files


class FileSource:
    """A video file through cv2.VideoCapture, paced at the file's fps or read as fast as it decodes.

    With ``capture.loop`` the file restarts (by reopening) at the end; ``mono`` keeps increasing.
    In "fast" pacing ``mono`` is the file's timestamp (``CAP_PROP_POS_MSEC``, or index/fps where
    that is unusable) plus the length of the passes before this one, starting at 0 on open.
    """

    def __init__(self, capture: CaptureConfig, stop: threading.Event) -> None:
        self.description = capture.source
        self.realtime = capture.pacing == "realtime"
        self._capture_config = capture
        self._stop = stop
        self._frames = _FrameMaker(capture)
        self._video: cv2.VideoCapture | None = None
        self.fps = DEFAULT_FPS
        self._pacer = _Pacer(self.fps, stop)
        self._pass_offset = 0.0  # seconds of file played in earlier passes
        self._last_time: float | None = None  # file timestamp of the previous frame this pass
        self._opened_wall = 0.0
        self._ended = False

    def open(self) -> None:
        self.close()
        self._video = self._open_video()
        fps = self._video.get(cv2.CAP_PROP_FPS)
        self.fps = (
            fps if math.isfinite(fps) and fps > 0 else (self._capture_config.fps or DEFAULT_FPS)
        )
        self._pacer = _Pacer(self.fps, self._stop)
        self._frames.seq = 0
        self._pass_offset = 0.0
        self._last_time = None
        self._opened_wall = time.time()
        self._ended = False
        logger.info(
            "opened %s at %g fps (%s pacing)",
            self.description,
            self.fps,
            "realtime" if self.realtime else "fast",
        )

    def _open_video(self) -> cv2.VideoCapture:
        video = cv2.VideoCapture(self._capture_config.source)
        if not video.isOpened():
            video.release()
            raise SourceError(f"cannot open video file {self.description}")
        return video

    def read(self) -> Frame | None:
        if self._video is None:
            raise SourceError(f"{self.description} is not open")
        if self._ended:
            return None
        if self.realtime and not self._pacer.wait():
            return None
        ok, image = self._video.read()
        if not ok or image is None:
            if not self._capture_config.loop:
                self._ended = True
                return None
            self._rewind()
            ok, image = self._video.read()
            if not ok or image is None:
                raise SourceError(f"{self.description}: no frame after restarting the file")
        if self.realtime:
            return self._frames.image(image, time.monotonic(), time.time())
        mono = self._pass_offset + self._file_time(self._video.get(cv2.CAP_PROP_POS_MSEC) / 1000)
        return self._frames.image(image, mono, self._opened_wall + mono)

    def _file_time(self, position: float) -> float:
        """This frame's time in the file: ``position`` unless it fails to move forward."""
        previous = self._last_time
        if (
            not math.isfinite(position)
            or position < 0
            or (previous is not None and position <= previous + 0.001)
        ):
            position = 0.0 if previous is None else previous + 1.0 / self.fps
        self._last_time = position
        return position

    def _rewind(self) -> None:
        # Reopening is slower than seeking to 0 but works for every container and codec.
        self.close()
        self._video = self._open_video()
        if self._last_time is not None:
            self._pass_offset += self._last_time + 1.0 / self.fps
        self._last_time = None

    def close(self) -> None:
        if self._video is not None:
            self._video.release()
            self._video = None


# ---------------------------------------------------------------------------------------------
# V4L2 devices and RTSP through OpenCV


class OpenCVSource:
    """A V4L2 device (kind "v4l2") or an RTSP/other FFmpeg URL (kind "url") via cv2.VideoCapture.

    V4L2 with ``capture.mjpeg`` asks the camera for MJPG and turns OpenCV's conversion off, so
    frames carry the camera's JPEG bytes undecoded; if the device does not hand out JPEG that
    way, conversion is turned back on. A device read that fails raises SourceError (the device
    went away or gave no frame within OpenCV's select timeout, set from ``read_timeout``).

    For a URL, FFmpeg's open and read timeouts come from the config. A failed read that took
    about ``read_timeout`` raises SourceError (stalled); one that fails at once means the
    server ended the stream, and read() returns None.
    """

    realtime = True

    def __init__(self, capture: CaptureConfig, stop: threading.Event) -> None:
        self._capture_config = capture
        self._is_device = capture.kind == "v4l2"
        self.description = capture.source if self._is_device else redact_url(capture.source)
        self._frames = _FrameMaker(capture)
        self._video: cv2.VideoCapture | None = None
        self._jpeg_passthrough = False

    def open(self) -> None:
        self.close()
        self._frames.seq = 0
        self._video = self._open_device() if self._is_device else self._open_url()
        logger.info(
            "opened %s: %dx%d, %g fps reported%s",
            self.description,
            int(self._video.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(self._video.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            self._video.get(cv2.CAP_PROP_FPS),
            ", JPEG passthrough" if self._jpeg_passthrough else "",
        )

    def _open_device(self) -> cv2.VideoCapture:
        capture = self._capture_config
        if not os.path.exists(capture.source):
            raise SourceError(f"cannot open {capture.source}: no such device")
        if not os.access(capture.source, os.R_OK | os.W_OK):
            raise SourceError(
                f"cannot open {capture.source}: permission denied (is the user in group video?)"
            )
        # OpenCV's V4L2 backend waits for a frame in select() for this many seconds (default
        # 10); it reads the variable once per process, so the first camera opened sets it.
        os.environ.setdefault(
            "OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT", str(math.ceil(capture.read_timeout))
        )
        video = cv2.VideoCapture(os.path.realpath(capture.source), cv2.CAP_V4L2)
        if not video.isOpened():
            video.release()
            raise SourceError(f"cannot open {capture.source}: not a usable V4L2 capture device")
        if capture.mjpeg:
            video.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
        if capture.width and capture.height:
            video.set(cv2.CAP_PROP_FRAME_WIDTH, capture.width)
            video.set(cv2.CAP_PROP_FRAME_HEIGHT, capture.height)
        if capture.fps:
            video.set(cv2.CAP_PROP_FPS, capture.fps)
        fourcc = int(video.get(cv2.CAP_PROP_FOURCC))
        self._jpeg_passthrough = (
            capture.mjpeg
            and fourcc == cv2.VideoWriter.fourcc(*"MJPG")
            and bool(video.set(cv2.CAP_PROP_CONVERT_RGB, 0))
        )
        return video

    def _open_url(self) -> cv2.VideoCapture:
        capture = self._capture_config
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(capture.open_timeout * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(capture.read_timeout * 1000),
        ]
        video = cv2.VideoCapture(capture.source, cv2.CAP_FFMPEG, params)
        if not video.isOpened():
            video.release()
            raise SourceError(f"cannot open {self.description}")
        return video

    def read(self) -> Frame | None:
        if self._video is None:
            raise SourceError(f"{self.description} is not open")
        started = time.monotonic()
        ok, image = self._video.read()
        mono, wall = time.monotonic(), time.time()
        if not ok or image is None:
            if self._is_device:
                raise SourceError(f"{self.description}: read failed")
            if mono - started >= 0.9 * self._capture_config.read_timeout:
                raise SourceError(f"{self.description}: no frame for {mono - started:.1f} s")
            return None
        if image.ndim == 3:
            return self._frames.image(image, mono, wall)
        data = image.tobytes()
        if self._jpeg_passthrough and data[:2] == b"\xff\xd8":
            try:
                return self._frames.jpeg(data, mono, wall)
            except FrameDecodeError as exc:
                raise SourceError(f"{self.description}: garbled JPEG from the device") from exc
        if self._jpeg_passthrough:
            logger.warning(
                "%s: no JPEG passthrough, letting OpenCV convert frames", self.description
            )
            self._jpeg_passthrough = False
            self._video.set(cv2.CAP_PROP_CONVERT_RGB, 1)
            return self.read()
        raise SourceError(f"{self.description}: unexpected frame of shape {image.shape}")

    def close(self) -> None:
        if self._video is not None:
            self._video.release()
            self._video = None


# ---------------------------------------------------------------------------------------------
# MJPEG over HTTP


class MultipartReader:
    """Splits a ``multipart/x-mixed-replace`` byte stream into part bodies, without copying much.

    Feed it bytes as they arrive; ``next_part()`` returns each complete body. A part with a
    Content-Length is cut by length, otherwise at the next boundary. ``boundary`` None means
    "take it from the first ``--`` line" (cameras that leave it out of the Content-Type).
    """

    def __init__(self, boundary: bytes | None) -> None:
        # Some cameras declare boundary=--foo and then write --foo instead of ----foo; matching
        # the declared string itself finds both (and a "--" left before it is not body).
        self._sloppy = bool(boundary and boundary.startswith(b"--"))
        self._delimiter = (boundary if self._sloppy else b"--" + boundary) if boundary else None
        self._buffer = bytearray()
        self._in_body = False
        self._length: int | None = None
        self._scan_from = 0
        self.finished = False  # the closing boundary was seen

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_part(self) -> bytes | None:
        """The next complete part's body, or None until more bytes are fed."""
        if not self._in_body and not self._start_part():
            return None
        buffer = self._buffer
        if self._length is not None:
            if len(buffer) < self._length:
                return None
            end = self._length
            body_end = end
        else:
            assert self._delimiter is not None
            end = buffer.find(self._delimiter, self._scan_from)
            if end < 0:
                if len(buffer) > MAX_PART_BYTES:
                    raise SourceError(f"multipart part larger than {MAX_PART_BYTES} bytes")
                self._scan_from = max(0, len(buffer) - len(self._delimiter))
                return None
            body_end = end
            if self._sloppy and buffer.endswith(b"--", 0, body_end):
                body_end -= 2
            if buffer.endswith(b"\r\n", 0, body_end):
                body_end -= 2
            elif buffer.endswith(b"\n", 0, body_end):
                body_end -= 1
        with memoryview(buffer) as view:
            body = bytes(view[:body_end])
        del buffer[:end]
        self._in_body = False
        return body

    def _start_part(self) -> bool:
        """Consume up to the end of the next part's headers; False when more bytes are needed."""
        buffer = self._buffer
        if self._delimiter is None and not self._detect_delimiter():
            return False
        assert self._delimiter is not None
        start = buffer.find(self._delimiter)
        if start < 0:
            # Nothing but preamble or garbage: keep only what could begin a delimiter.
            del buffer[: max(0, len(buffer) - len(self._delimiter) + 1)]
            return False
        if start > 0:
            del buffer[:start]  # garbage before the delimiter
            start = 0
        after = start + len(self._delimiter)
        if len(buffer) < after + 2:
            return False
        if buffer[after : after + 2] == b"--":
            self.finished = True
            del buffer[:]
            return False
        header_end = buffer.find(b"\r\n\r\n", after)
        separator = 4
        bare_end = buffer.find(b"\n\n", after)  # some cameras end lines with a bare LF
        if bare_end >= 0 and (header_end < 0 or bare_end < header_end):
            header_end, separator = bare_end, 2
        if header_end < 0:
            if len(buffer) - after > _MAX_PART_HEADERS:
                raise SourceError("multipart part headers too long")
            return False
        self._length = _content_length(bytes(buffer[after:header_end]))
        del buffer[: header_end + separator]
        self._in_body = True
        self._scan_from = 0
        return True

    def _detect_delimiter(self) -> bool:
        """Take the delimiter from the first non-blank line; False when it is incomplete."""
        while True:
            line_end = self._buffer.find(b"\n", 0, _MAX_PART_HEADERS)
            if line_end < 0:
                if len(self._buffer) >= _MAX_PART_HEADERS:
                    raise SourceError("no multipart boundary in the stream")
                return False
            line = bytes(self._buffer[:line_end]).strip()
            if line:
                break
            del self._buffer[: line_end + 1]
        if not line.startswith(b"--"):
            raise SourceError("no multipart boundary in the stream")
        self._delimiter = line
        return True


def _content_length(headers: bytes) -> int | None:
    for line in headers.splitlines():
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return None
            if length > MAX_PART_BYTES:
                raise SourceError(f"multipart part of {length} bytes is too large")
            return length if length >= 0 else None
    return None


def _boundary_param(content_type: str) -> bytes | None:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "boundary":
            value = value.strip().strip('"')
            return value.encode("latin-1") if value else None
    return None


class MjpegHttpSource:
    """An HTTP(S) camera: a ``multipart/x-mixed-replace`` MJPEG stream, or a JPEG snapshot URL.

    Stream parts become frames with their bytes unchanged (no decode unless rotate/flip are
    set). Parts that are not JPEG are skipped and counted in ``garbled_parts``. A URL that
    answers with a single ``image/jpeg`` is polled at ``capture.fps`` (default 5). Basic auth
    comes from ``user:pass@`` in the URL. The stream ending (closing boundary, connection
    closed) makes read() return None; no complete frame within ``read_timeout`` (stall,
    garbage) raises SourceError. ``open_timeout`` bounds connecting and each wait for the
    response's headers (a socket timeout, not one deadline for the whole exchange).
    """

    realtime = True

    def __init__(self, capture: CaptureConfig, stop: threading.Event) -> None:
        self._capture_config = capture
        self._stop = stop
        url = urlsplit(capture.source)
        self._url = url
        self.description = f"{redact_url(capture.source)} (MJPEG)"
        self._headers = {"User-Agent": "motiond", "Accept": "multipart/x-mixed-replace, image/jpeg"}
        if url.username is not None:
            credentials = f"{unquote(url.username)}:{unquote(url.password or '')}"
            token = base64.b64encode(credentials.encode("utf-8")).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"
        self.garbled_parts = 0
        self.snapshot_mode = False
        self._frames = _FrameMaker(capture)
        self._pacer = _Pacer(capture.fps or DEFAULT_SNAPSHOT_FPS, stop)
        self._connection: http.client.HTTPConnection | None = None
        self._response: http.client.HTTPResponse | None = None
        self._socket: socket.socket | None = None
        self._parts: MultipartReader | None = None
        self._first_snapshot: tuple[bytes, float, float] | None = None
        self._ended = False

    def open(self) -> None:
        self.close()
        self._frames.seq = 0
        self._ended = False
        self.garbled_parts = 0
        capture = self._capture_config
        response = self._request(capture.open_timeout)
        content_type = response.getheader("Content-Type") or ""
        mime = content_type.partition(";")[0].strip().lower()
        if mime.startswith("multipart/"):
            self.snapshot_mode = False
            self._parts = MultipartReader(_boundary_param(content_type))
            self._response = response
        elif mime in ("image/jpeg", "image/jpg"):
            self.snapshot_mode = True
            self.description = f"{redact_url(capture.source)} (JPEG snapshots)"
            self._first_snapshot = (self._read_body(response), time.monotonic(), time.time())
            self._pacer = _Pacer(capture.fps or DEFAULT_SNAPSHOT_FPS, self._stop)
            self._pacer.wait()  # the first snapshot counts as the first poll
        else:
            self.close()
            raise SourceError(
                f"{self.description}: unexpected content type {content_type!r} "
                "(want multipart/x-mixed-replace or image/jpeg)"
            )
        self._set_timeout(capture.read_timeout)
        logger.info("opened %s", self.description)

    def _request(self, timeout: float) -> http.client.HTTPResponse:
        """GET the URL on the open connection (made if needed); raises SourceError unless 200."""
        if self._connection is None:
            self._connection = self._new_connection(timeout)
        connection = self._connection
        target = self._url.path or "/"
        if self._url.query:
            target += "?" + self._url.query
        try:
            connection.request("GET", target, headers=self._headers)
            # Kept because http.client forgets the socket once the response owns it.
            self._socket = connection.sock
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise SourceError(f"cannot get {self.description}: {_describe(exc)}") from exc
        if response.status != 200:
            self.close()
            raise SourceError(f"{self.description}: HTTP {response.status} {response.reason}")
        return response

    def _new_connection(self, timeout: float) -> http.client.HTTPConnection:
        url: SplitResult = self._url
        try:
            port = url.port
        except ValueError as exc:
            raise SourceError(f"{self.description}: bad port in URL") from exc
        if not url.hostname:
            raise SourceError(f"{self.description}: no host in URL")
        if url.scheme.lower() == "https":
            context = ssl.create_default_context()
            return http.client.HTTPSConnection(url.hostname, port, timeout=timeout, context=context)
        return http.client.HTTPConnection(url.hostname, port, timeout=timeout)

    def _set_timeout(self, seconds: float) -> None:
        if self._connection is not None:
            self._connection.timeout = seconds  # used when http.client reconnects for a poll
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.settimeout(seconds)

    def read(self) -> Frame | None:
        if self._connection is None and self._response is None:
            raise SourceError(f"{self.description} is not open")
        if self._ended:
            return None
        if self.snapshot_mode:
            return self._read_snapshot()
        return self._read_stream()

    def _read_stream(self) -> Frame | None:
        assert self._parts is not None and self._response is not None
        timeout = self._capture_config.read_timeout
        deadline = time.monotonic() + timeout
        while True:
            body = self._parts.next_part()
            if body is not None:
                mono, wall = time.monotonic(), time.time()
                try:
                    return self._frames.jpeg(body, mono, wall)
                except FrameDecodeError:
                    self.garbled_parts += 1
                    logger.debug(
                        "%s: skipped a garbled part (%d bytes)", self.description, len(body)
                    )
                    continue
            if self._parts.finished:
                self._ended = True
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SourceError(f"{self.description}: no frame for {timeout:g} s")
            self._set_timeout(min(remaining, timeout))
            try:
                chunk = self._response.read1(_READ_CHUNK)
            except TimeoutError as exc:
                raise SourceError(f"{self.description}: no frame for {timeout:g} s") from exc
            except http.client.IncompleteRead:
                chunk = b""
            except (OSError, http.client.HTTPException) as exc:
                raise SourceError(f"{self.description}: {_describe(exc)}") from exc
            if not chunk:
                self._ended = True
                return None
            self._parts.feed(chunk)

    def _read_snapshot(self) -> Frame | None:
        timeout = self._capture_config.read_timeout
        deadline = time.monotonic() + timeout
        while True:
            if self._first_snapshot is not None:
                body, mono, wall = self._first_snapshot
                self._first_snapshot = None
            else:
                if not self._pacer.wait():
                    return None
                body = self._read_body(self._request(timeout))
                mono, wall = time.monotonic(), time.time()
            try:
                return self._frames.jpeg(body, mono, wall)
            except FrameDecodeError:
                self.garbled_parts += 1
                if time.monotonic() > deadline:
                    raise SourceError(
                        f"{self.description}: no valid JPEG for {timeout:g} s"
                    ) from None

    def _read_body(self, response: http.client.HTTPResponse) -> bytes:
        try:
            body = response.read(MAX_PART_BYTES + 1)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise SourceError(f"{self.description}: {_describe(exc)}") from exc
        if len(body) > MAX_PART_BYTES:
            self.close()
            raise SourceError(f"{self.description}: snapshot larger than {MAX_PART_BYTES} bytes")
        return body

    def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
            self._socket = None
        if self._response is not None:
            self._response.close()
            self._response = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._parts = None
        self._first_snapshot = None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
