"""The IP camera benchmark's streams: camera-like H.264 files, a still part then footage.

An RTSP stream is a file served in real time from when a client connects, so the phases are
cut into the file: ``still_s`` seconds of the footage's first frame (with light sensor noise,
as a real camera's idle picture has; a perfectly still picture would code to almost nothing),
then ``footage_s`` seconds of the footage (vtest.avi: people walking throughout), each source
frame once at ``fps``, from its start and looped if needed. Encoded as cameras send it: x264
Main profile, a keyframe every ``gop`` frames, no B-frames, bitrate capped (``-maxrate``) at
``bitrate`` (the encoder options of testbed/camera_video.py; H.265 by x265 the same way). Files are
cached in ``cache_dir`` under a name made of every parameter, so a second run starts at once.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from testbed.camera_video import encoder_args

NOISE = 3  # gray levels, uniform, fresh in every still frame


@dataclass(frozen=True)
class StreamVideo:
    path: Path
    size: tuple[int, int]
    fps: float
    gop: int
    bitrate: int  # bit/s asked of the encoder (-b:v and -maxrate)
    still_s: float
    footage_s: float
    still_kbit_s: float  # what the encoder made of each part
    footage_kbit_s: float

    @property
    def name(self) -> str:
        return f"{self.size[0]}x{self.size[1]}/{self.fps:g}"


def stream_video(
    footage: Path,
    cache_dir: Path,
    size: tuple[int, int],
    fps: float,
    bitrate: int,
    still_s: float,
    footage_s: float,
    gop: int = 30,
    codec: str = "h264",
) -> StreamVideo:
    """The file for these parameters, encoded now unless already in ``cache_dir``.

    ``codec`` is ``h264`` or ``hevc`` (x265 ultrafast, as testbed/camera_video.py encodes it)."""
    stat = footage.stat()
    key = f"{footage.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{size}:{fps}:{bitrate}:{gop}"
    key += f":{still_s}:{footage_s}:{NOISE}"
    key += "" if codec == "h264" else f":{codec}"  # the H.264 files keep their cached names
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    name = f"{size[0]}x{size[1]}-{fps:g}fps-{bitrate // 1000}k-{digest}.mp4"
    path = cache_dir / (f"ipcam-{name}" if codec == "h264" else f"ipcam-{codec}-{name}")
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.mp4")
        _encode(footage, partial, size, fps, bitrate, gop, still_s, footage_s, codec)
        partial.rename(path)
    still_kbit_s, footage_kbit_s = _part_bitrates(path, still_s)
    return StreamVideo(
        path, size, fps, gop, bitrate, still_s, footage_s, still_kbit_s, footage_kbit_s
    )


def _frames(footage: Path, size: tuple[int, int], count: int) -> Iterator[np.ndarray]:
    """The first ``count`` frames of ``footage`` at ``size``, looped if it is shorter."""
    sent = 0
    while sent < count:
        capture = cv2.VideoCapture(str(footage))
        try:
            read_any = False
            while sent < count:
                ok, image = capture.read()
                if not ok:
                    break
                read_any = True
                sent += 1
                yield cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        finally:
            capture.release()
        if not read_any:
            raise ValueError(f"no frames decoded from {footage}")


def _encode(
    footage: Path,
    path: Path,
    size: tuple[int, int],
    fps: float,
    bitrate: int,
    gop: int,
    still_s: float,
    footage_s: float,
    codec: str = "h264",
) -> None:
    width, height = size
    moving = _frames(footage, size, round(footage_s * fps))
    first = next(_frames(footage, size, 1))
    still = first.astype(np.int16)
    command = [
        "ffmpeg", "-v", "error", "-y", "-nostdin",
        "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}", "-r", f"{fps:g}",
        "-i", "-", *encoder_args(codec, gop, bitrate), "-movflags", "+faststart", str(path),
    ]  # fmt: skip
    rng = np.random.default_rng(0)
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None and process.stderr is not None
    try:
        for _ in range(round(still_s * fps)):
            noise = rng.integers(-NOISE, NOISE + 1, still.shape, dtype=np.int16)
            process.stdin.write(np.clip(still + noise, 0, 255).astype(np.uint8).tobytes())
        for image in moving:
            process.stdin.write(image.tobytes())
    finally:
        process.stdin.close()
        errors = process.stderr.read().decode(errors="replace")
        code = process.wait()
    if code != 0:
        raise RuntimeError(f"ffmpeg exited {code} encoding {path.name}: {errors.strip()}")


def _part_bitrates(path: Path, still_s: float) -> tuple[float, float]:
    """kbit/s of the video packets before and after ``still_s``."""
    sizes = [0, 0]
    ends = [0.0, 0.0]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frame = 1 / float(stream.average_rate or 15)
        for packet in container.demux(stream):
            if packet.pts is None or not packet.size:
                continue
            at = float(packet.pts * packet.time_base)
            part = 0 if at < still_s - frame / 2 else 1
            sizes[part] += packet.size
            ends[part] = at + frame
    seconds = [still_s, ends[1] - still_s]
    return (
        round(sizes[0] * 8 / seconds[0] / 1000, 1) if seconds[0] > 0 else 0.0,
        round(sizes[1] * 8 / seconds[1] / 1000, 1) if seconds[1] > 0 else 0.0,
    )
