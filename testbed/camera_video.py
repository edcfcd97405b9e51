"""Camera-like video files with a known truth, encoded by Debian's ffmpeg as cameras send them.

:func:`write_camera_video` draws a still textured scene with fresh sensor noise in every frame,
a square moving during given spans and the frame number in a strip (``testbed.framecode``),
and encodes it with a fixed GOP, no B-frames and a capped bitrate (:func:`encoder_args`, which
the benchmarks' stream files use too). :func:`encode_pictures` encodes pictures drawn elsewhere
the same way. Served over RTSP by ``testbed.rtsp``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from testbed.framecode import CODE_HEIGHT, draw_frame_number
from testbed.synthetic import background

Spans = tuple[tuple[float, float], ...]

DEFAULT_MOVING: Spans = ((5.0, 8.0),)  # a block moves from 5 s to 8 s (mid-GOP start)
REFERENCE_BITRATE = 3_000_000  # bit/s at 1280x720, as the camera; scaled by area


@dataclass(frozen=True)
class CameraVideo:
    """A generated camera recording: what it holds, to check clips against the truth.

    Scene: a still textured background with fresh sensor noise in every frame (so no two
    pictures code alike), a white square of side width/10 moving left to right at a third of
    the height during each ``moving`` span (start inclusive, end exclusive, seconds of the
    file), and the frame number in a strip of ``CODE_HEIGHT`` rows along the bottom
    (``CODE_BITS`` black/white blocks, read with ``testbed.framecode.read_frame_number``; mask it
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
            # 60 px/s at 320 px wide, like tests.fixtures.video.write_test_video; scaled
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
    ffmpeg: ``encoder_args``), for a scene a test draws itself (see tests/fixtures/scenes.py)."""
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


def ffmpeg_unavailable() -> str | None:
    return None if shutil.which("ffmpeg") else "ffmpeg not installed (apt-get install ffmpeg)"
