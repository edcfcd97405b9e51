"""The memory benchmark's sizes and footage: a video file of raw pictures to read in real time.

The RTSP streams come from :func:`scripts.bench.ipcam_media.stream_video` (camera-like H.264 or
H.265, no still part). This is the "raw pictures" source: vtest.avi, each source frame once at
``fps``, scaled to ``size``, as an MJPEG AVI that motiond reads as a video file
(``capture.pacing: realtime``, ``loop: true``): OpenCV decodes it to BGR pictures, as it does a
webcam without MJPG. MJPEG, because its decoder holds one picture and no reference frames, so
the file's decoder adds little that a webcam would not. Cached in ``cache_dir`` by parameters.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from scripts.bench.ipcam_media import StreamVideo, stream_video

FPS = 15.0
FOOTAGE_S = 30.0  # length of the stream files; served (or read) in a loop
JPEG_QSCALE = 3  # ffmpeg's -q:v for MJPEG: 2 (best) .. 31


@dataclass(frozen=True)
class Size:
    key: str
    size: tuple[int, int]
    bitrate: int  # of an RTSP main stream, bit/s

    @property
    def label(self) -> str:
        return f"{self.size[0]}x{self.size[1]}/{FPS:g}"


SIZES = (Size("720p", (1280, 720), 3_000_000), Size("1080p", (1920, 1080), 6_000_000))


def raw_video(
    footage: Path, cache_dir: Path, size: tuple[int, int], fps: float, seconds: float
) -> Path:
    """The MJPEG AVI for these parameters, encoded now unless already in ``cache_dir``."""
    stat = footage.stat()
    key = f"{footage.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{size}:{fps}:{seconds}"
    key += f":{JPEG_QSCALE}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    path = cache_dir / f"raw-{size[0]}x{size[1]}-{fps:g}fps-{digest}.avi"
    if path.exists():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.avi")
    command = [
        "ffmpeg", "-v", "error", "-y", "-nostdin",
        "-r", f"{fps:g}", "-stream_loop", "-1", "-i", str(footage),  # each frame once, at fps
        "-frames:v", str(round(seconds * fps)), "-an",
        "-vf", f"scale={size[0]}:{size[1]}", "-c:v", "mjpeg", "-q:v", str(JPEG_QSCALE),
        "-pix_fmt", "yuvj420p", str(partial),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg exited {result.returncode}: {result.stderr.strip()}")
    partial.rename(path)
    return path


def camera_stream(
    footage: Path, cache_dir: Path, size: tuple[int, int], bitrate: int, codec: str
) -> StreamVideo:
    """An RTSP camera's file: ``codec`` (h264 or hevc) at ``bitrate``, footage only (no still
    part), ``FOOTAGE_S`` long at ``FPS`` (served in a loop)."""
    return stream_video(
        footage, cache_dir, size, FPS, bitrate, still_s=0.0, footage_s=FOOTAGE_S, codec=codec
    )
