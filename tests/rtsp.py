"""IP cameras for tests: camera-like H.264/H.265 files with known motion, served over RTSP.

Fixtures (make them visible with ``pytest_plugins = ("tests.rtsp",)`` in a test module, or
once in tests/conftest.py):

- ``camera_media`` (session): ``camera_media(width=640, height=360, codec="h264", ...)``
  returns a :class:`CameraVideo`, generated once per session and parameters;
  ``camera_media.pair(main=(1280, 720), sub=(640, 360), ...)`` a main + sub stream cut from
  the same timeline.
- ``rtsp_camera`` (function): ``rtsp_camera({"/main": video, "/sub": sub}, loop=True)``
  starts ``tests/rtsp_server.py`` (GStreamer's rtsp-server, run by Debian's
  ``/usr/bin/python3``) on a free loopback port and returns a running :class:`RtspCamera`
  (``url(mount)``, ``stall()``/``resume()``, ``stop()``, ``start()``/``restart()`` on the
  same port, ``pid``, ``events()``); every camera started is stopped after the test. A mount
  given a list of videos plays them one after the other in one session (the parameters change
  mid-stream). Fails the test, saying what to install, if ``/usr/bin/python3`` cannot import
  GstRtspServer through ``gi``, or if ``ffmpeg`` is missing.

:class:`RtspCamera` and :func:`write_camera_video` need no pytest (the benchmark uses them).

PYTEST_DONT_REWRITE: test modules import this before pytest loads it as a plugin.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import cv2
import numpy as np
import pytest

from tests.conftest import CODE_BITS, CODE_HEIGHT, draw_frame_number
from tests.synthetic import background

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).resolve().parent / "rtsp_server.py"
Spans = tuple[tuple[float, float], ...]
StartRtspCamera = Callable[..., "RtspCamera"]  # the rtsp_camera fixture's value

DEFAULT_MOVING: Spans = ((5.0, 8.0),)  # a block moves from 5 s to 8 s (mid-GOP start)
REFERENCE_BITRATE = 3_000_000  # bit/s at 1280x720, as the camera; scaled by area


# ---------------------------------------------------------------------------------------------
# Camera-like media


@dataclass(frozen=True)
class CameraVideo:
    """A generated camera recording: what it holds, to check clips against the truth.

    Scene: a still textured background with fresh sensor noise in every frame (so no two
    pictures code alike), a white square of side width/10 moving left to right at a third of
    the height during each ``moving`` span (start inclusive, end exclusive, seconds of the
    file), and the frame number in a strip of ``CODE_HEIGHT`` rows along the bottom
    (``CODE_BITS`` black/white blocks, read with ``tests.conftest.read_frame_number``; mask it
    out of detection with ``code_mask``). A fixed GOP (a keyframe every ``gop`` frames, no
    scene-cut keyframes), no B-frames, constant-ish bitrate (``-maxrate``), as cameras send.
    """

    path: Path
    codec: str  # PyAV's name: "h264" or "hevc"
    width: int
    height: int
    fps: float
    frames: int
    gop: int
    bitrate: int  # bit/s asked of the encoder
    moving: Spans
    audio: str | None  # "aac" or "pcm_mulaw" (G.711 mu-law, in MKV), or None

    @property
    def seconds(self) -> float:
        return self.frames / self.fps

    @property
    def keyframe_times(self) -> list[float]:
        return [index / self.fps for index in range(0, self.frames, self.gop)]

    @property
    def motion_frames(self) -> list[range]:
        """Frame numbers with the square visible, one range per moving span."""
        return [
            range(
                min(self.frames, _first_frame_at(start, self.fps)),
                min(self.frames, _first_frame_at(end, self.fps)),
            )
            for start, end in self.moving
        ]

    @property
    def code_mask(self) -> list[list[int]]:
        """A config mask polygon covering the frame-number strip (this video's pixels)."""
        top = self.height - CODE_HEIGHT
        return [[0, top], [self.width, top], [self.width, self.height], [0, self.height]]


MountMedia: TypeAlias = Path | CameraVideo | Sequence[Path | CameraVideo]


def _first_frame_at(seconds: float, fps: float) -> int:
    """The first frame whose time index/fps is >= seconds."""
    index = int(seconds * fps)
    return index if index / fps >= seconds - 1e-9 else index + 1


def default_bitrate(width: int, height: int) -> int:
    return max(200_000, round(REFERENCE_BITRATE * width * height / (1280 * 720)))


def render_frame(
    scene: np.ndarray, index: int, fps: float, moving: Spans, rng: np.random.Generator
) -> np.ndarray:
    """Frame ``index`` of the timeline at ``scene``'s size (BGR)."""
    height, width = scene.shape[:2]
    image = scene.copy()
    t = index / fps
    size = width // 10
    for start, end in moving:
        if start <= t < end:
            # 60 px/s at 320 px wide, like tests.conftest.write_test_video; scaled to the size
            x = round((20 + (t - start) * 60) / 320 * width) % (width - size)
            y = height // 3
            image[y : y + size, x : x + size] = 250
    noise = rng.integers(-4, 5, image.shape, dtype=np.int16)
    image = np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    draw_frame_number(image, index)
    return image


def encoder_args(codec: str, gop: int, bitrate: int) -> list[str]:
    """ffmpeg output options: fixed GOP, no B-frames, capped bitrate, browser-friendly tags.

    x265 runs at ultrafast: its veryfast takes about 0.1 s per 640x360 frame of noise here.
    """
    rate = ["-b:v", str(bitrate), "-maxrate", str(bitrate), "-bufsize", str(2 * bitrate)]
    if codec == "h264":
        return [
            "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main",
            "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-bf", "0",
            *rate, "-pix_fmt", "yuv420p",
        ]  # fmt: skip
    if codec == "hevc":
        params = f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:log-level=error"
        return [
            "-c:v", "libx265", "-preset", "ultrafast", "-profile:v", "main", "-tag:v", "hvc1",
            "-x265-params", params, *rate, "-pix_fmt", "yuv420p",
        ]  # fmt: skip
    raise ValueError(f"codec must be h264 or hevc, got {codec!r}")


def audio_args(audio: str | None, seconds: float) -> tuple[list[str], list[str]]:
    """(ffmpeg input options, output options) for a tone track, or none."""
    if audio is None:
        return [], []
    rate = 48000 if audio == "aac" else 8000
    source = ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={rate}:duration={seconds}"]
    if audio == "aac":
        return source, ["-c:a", "aac", "-b:a", "64k", "-ac", "1"]
    if audio == "pcm_mulaw":
        return source, ["-c:a", "pcm_mulaw", "-ac", "1"]
    raise ValueError(f"audio must be aac, pcm_mulaw or None, got {audio!r}")


def write_camera_video(
    path: Path,
    *,
    width: int = 640,
    height: int = 360,
    fps: float = 15.0,
    seconds: float = 12.0,
    codec: str = "h264",
    gop: int = 30,
    bitrate: int | None = None,
    moving: Sequence[tuple[float, float]] = DEFAULT_MOVING,
    audio: str | None = None,
) -> CameraVideo:
    """Encode a :class:`CameraVideo` with Debian's ffmpeg (MP4; MKV for G.711 audio)."""
    if audio == "pcm_mulaw" and path.suffix != ".mkv":
        raise ValueError("G.711 does not go in MP4: give the path a .mkv suffix")
    bitrate = bitrate or default_bitrate(width, height)
    frames = round(seconds * fps)
    spans = tuple((float(a), float(b)) for a, b in moving)
    audio_in, audio_out = audio_args(audio, frames / fps)
    command = [
        "ffmpeg", "-v", "error", "-y", "-nostdin",
        "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}", "-r", f"{fps:g}",
        "-i", "-", *audio_in,
        *encoder_args(codec, gop, bitrate), *audio_out,
        "-movflags", "+faststart", str(path),
    ]  # fmt: skip
    if path.suffix == ".mkv":
        command.remove("-movflags")
        command.remove("+faststart")
    # The timeline is drawn at 320 px wide and scaled, so every size shows the same scene.
    scene = cv2.resize(background(320, max(2, round(320 * height / width))), (width, height))
    rng = np.random.default_rng(width * 10_000 + height)
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None
    try:
        for index in range(frames):
            process.stdin.write(render_frame(scene, index, fps, spans, rng).tobytes())
    finally:
        process.stdin.close()
        errors = process.stderr.read().decode(errors="replace") if process.stderr else ""
        code = process.wait()
    if code != 0:
        raise RuntimeError(f"ffmpeg exited {code}: {errors.strip()}")
    return CameraVideo(path, codec, width, height, fps, frames, gop, bitrate, spans, audio)


def encode_pictures(
    path: Path,
    pictures: Iterable[np.ndarray],
    *,
    width: int,
    height: int,
    fps: float = 15.0,
    codec: str = "h264",
    gop: int = 30,
) -> None:
    """Encode BGR pictures of ``width`` x ``height`` as a camera would (MP4 with Debian's
    ffmpeg: ``encoder_args``), for a scene a test draws itself (see tests/scenes.py)."""
    command = [
        "ffmpeg", "-v", "error", "-y", "-nostdin",
        "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}", "-r", f"{fps:g}",
        "-i", "-", *encoder_args(codec, gop, default_bitrate(width, height)),
        "-movflags", "+faststart", str(path),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None
    try:
        for picture in pictures:
            process.stdin.write(np.ascontiguousarray(picture).tobytes())
    finally:
        process.stdin.close()
        errors = process.stderr.read().decode(errors="replace") if process.stderr else ""
        code = process.wait()
    if code != 0:
        raise RuntimeError(f"ffmpeg exited {code}: {errors.strip()}")


class CameraMediaCache:
    """The ``camera_media`` fixture: generated videos, made once per session and parameters."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._made: dict[tuple[object, ...], CameraVideo] = {}

    def __call__(
        self,
        *,
        width: int = 640,
        height: int = 360,
        fps: float = 15.0,
        seconds: float = 12.0,
        codec: str = "h264",
        gop: int = 30,
        bitrate: int | None = None,
        moving: Sequence[tuple[float, float]] = DEFAULT_MOVING,
        audio: str | None = None,
    ) -> CameraVideo:
        spans = tuple((float(a), float(b)) for a, b in moving)
        key = (width, height, fps, seconds, codec, gop, bitrate, spans, audio)
        if key not in self._made:
            suffix = ".mkv" if audio == "pcm_mulaw" else ".mp4"
            name = f"{codec}-{width}x{height}-{fps:g}fps-{len(self._made)}{suffix}"
            self._made[key] = write_camera_video(
                self.directory / name,
                width=width,
                height=height,
                fps=fps,
                seconds=seconds,
                codec=codec,
                gop=gop,
                bitrate=bitrate,
                moving=spans,
                audio=audio,
            )
        return self._made[key]

    def pair(
        self,
        main: tuple[int, int] = (1280, 720),
        sub: tuple[int, int] = (640, 360),
        **options: object,
    ) -> tuple[CameraVideo, CameraVideo]:
        """A main and a sub stream of the same timeline (same frames, motion, GOP; own sizes).

        ``options`` as for a single video (codec, seconds, moving, ...); audio goes in the main
        stream only, as most cameras do.
        """
        sub_options = {key: value for key, value in options.items() if key != "audio"}
        return (
            self(width=main[0], height=main[1], **options),  # type: ignore[arg-type]
            self(width=sub[0], height=sub[1], **sub_options),  # type: ignore[arg-type]
        )


# ---------------------------------------------------------------------------------------------
# The RTSP server process


class RtspCamera:
    """``tests/rtsp_server.py`` as a child process, controlled by its pid.

    ``mounts`` maps a mount path ("/main") to a file (or a :class:`CameraVideo`), or to a
    list of them, served one after the other in one session (the camera's parameters change
    mid-stream). Output (the server's event lines, see its docstring) goes to ``log_path``.
    """

    def __init__(
        self,
        mounts: Mapping[str, MountMedia],
        *,
        log_path: Path,
        loop: bool = False,
        stall_after: float | None = None,
        port: int = 0,
        python: str = SYSTEM_PYTHON,
    ) -> None:
        self.mounts = {mount: _paths(media) for mount, media in mounts.items()}
        self.log_path = log_path
        self.loop = loop
        self.stall_after = stall_after
        self.port = port
        self.python = python
        self.process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0  # where this run's lines start in the log

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the RTSP server is not running")
        return self.process.pid

    def url(self, mount: str = "/main") -> str:
        if mount not in self.mounts:
            raise KeyError(f"no mount {mount!r}; mounts: {sorted(self.mounts)}")
        return f"rtsp://127.0.0.1:{self.port}{mount}"

    def start(self, timeout: float = 60.0) -> RtspCamera:
        """Start the server and wait for its READY line (files are read into memory first)."""
        if self.process is not None:
            raise RuntimeError("the RTSP server is already running")
        argv = [self.python, str(SERVER_SCRIPT), "--port", str(self.port)]
        for mount, paths in self.mounts.items():
            argv += ["--mount", f"{mount}={','.join(str(path) for path in paths)}"]
        if self.loop:
            argv.append("--loop")
        if self.stall_after is not None:
            argv += ["--stall-after", str(self.stall_after)]
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        line = self.wait_for("READY", timeout)
        self.port = int(line.rsplit(":", 1)[1])
        return self

    def events(self) -> list[str]:
        """The server's output lines since the last start."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace").splitlines()

    def wait_for(self, prefix: str, timeout: float = 30.0) -> str:
        """The first output line since the last start that begins with ``prefix``."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.events():
                if line.startswith(prefix):
                    return line
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise RuntimeError(
                    f"RTSP server exited (code {code}) before {prefix!r}:\n"
                    + "\n".join(self.events()[-20:])
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {prefix!r} from the RTSP server in {timeout} s")
            time.sleep(0.05)

    def play_times(self, mount: str = "/main") -> list[float]:
        """CLOCK_MONOTONIC times (time.monotonic()) at which ``mount``'s stream started."""
        return [
            float(line.split()[2])
            for line in self.events()
            if line.startswith("PLAY ") and line.split()[1] == mount
        ]

    def stall(self) -> None:
        """Stop sending on every stream; connections and sessions stay open."""
        self._switch(signal.SIGUSR1, "STALL")

    def resume(self) -> None:
        self._switch(signal.SIGUSR2, "RESUME")

    @property
    def stalled(self) -> bool:
        states = [line for line in self.events() if line in ("STALL", "RESUME")]
        return bool(states) and states[-1] == "STALL"

    def _switch(self, signum: int, event: str, timeout: float = 10.0) -> None:
        if self.stalled == (event == "STALL"):
            return
        os.kill(self.pid, signum)
        deadline = time.monotonic() + timeout
        while self.stalled != (event == "STALL"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the RTSP server did not print {event} in {timeout} s")
            time.sleep(0.02)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM by pid, SIGKILL after ``timeout``; the exit code (None if not running)."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        return process.returncode

    def restart(self, down_for: float = 0.0, timeout: float = 60.0) -> RtspCamera:
        """Stop, wait ``down_for`` seconds, start again on the same port."""
        self.stop()
        time.sleep(down_for)
        return self.start(timeout)


# ---------------------------------------------------------------------------------------------
# Fixtures


def _paths(media: MountMedia) -> list[Path]:
    items = media if isinstance(media, list | tuple) else [media]
    return [item.path if isinstance(item, CameraVideo) else Path(item) for item in items]


@functools.cache
def rtsp_server_unavailable() -> str | None:
    """Why the RTSP server cannot run here, or None."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); "
        "gi.require_version('GstRtspServer', '1.0'); gi.require_version('GstApp', '1.0'); "
        "from gi.repository import Gst, GstRtspServer, GstApp; Gst.init(None); "
        "missing = [e for e in ('qtdemux', 'matroskademux', 'h264parse', 'h265parse', "
        "'rtph264pay', 'rtph265pay', 'rtpmp4gpay', 'rtppcmupay', 'aacparse', 'appsrc') "
        "if Gst.ElementFactory.find(e) is None]; "
        "print(' '.join(missing))"
    )
    result = subprocess.run(
        [SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return (
            f"{SYSTEM_PYTHON} cannot run GStreamer's RTSP server ({last}); install "
            "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-{base,good,bad}"
        )
    if result.stdout.strip():
        return f"GStreamer elements missing: {result.stdout.strip()}"
    return None


def ffmpeg_unavailable() -> str | None:
    return None if shutil.which("ffmpeg") else "ffmpeg not installed (apt-get install ffmpeg)"


@pytest.fixture(scope="session")
def camera_media(tmp_path_factory: pytest.TempPathFactory) -> CameraMediaCache:
    if why := ffmpeg_unavailable():
        pytest.fail(why, pytrace=False)  # as every test that needs a Debian package
    return CameraMediaCache(tmp_path_factory.mktemp("camera-media"))


@pytest.fixture
def rtsp_camera(tmp_path: Path) -> Iterator[StartRtspCamera]:
    if why := rtsp_server_unavailable():
        pytest.fail(why, pytrace=False)  # as every test that needs a Debian package
    started: list[RtspCamera] = []

    def start(
        mounts: Mapping[str, MountMedia],
        *,
        loop: bool = False,
        stall_after: float | None = None,
        port: int = 0,
    ) -> RtspCamera:
        log = tmp_path / f"rtsp-server-{len(started)}.log"
        camera = RtspCamera(mounts, log_path=log, loop=loop, stall_after=stall_after, port=port)
        started.append(camera)
        return camera.start()

    yield start
    for camera in started:
        camera.stop()


__all__ = [
    "CODE_BITS",
    "CODE_HEIGHT",
    "CameraMediaCache",
    "CameraVideo",
    "RtspCamera",
    "StartRtspCamera",
    "camera_media",
    "rtsp_camera",
    "rtsp_server_unavailable",
    "write_camera_video",
]
