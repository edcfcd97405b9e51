"""What a recorder wrote: video files under a directory, probed with PyAV (no decoding)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import av

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi")


@dataclass(frozen=True)
class Clip:
    name: str
    bytes: int
    codec: str
    profile: str | None
    width: int
    height: int
    frames: int
    seconds: float
    kbit_s: float
    error: str | None = None


def video_files(directory: Path) -> list[Path]:
    if not directory.exists():
        return []
    return sorted(
        path
        for path in directory.rglob("*")
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES
    )


def probe(path: Path) -> Clip:
    """Codec, frame count and duration by demuxing every packet (works for fragmented MP4)."""
    size = path.stat().st_size
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            timestamps = [
                packet.pts
                for packet in container.demux(stream)
                if packet.pts is not None and packet.size
            ]
            codec = stream.codec_context.name
            profile = stream.codec_context.profile
            width, height = stream.codec_context.width, stream.codec_context.height
            time_base = float(stream.time_base) if stream.time_base else 0.0
            rate = float(stream.average_rate or stream.guessed_rate or 0)
    except (av.FFmpegError, IndexError) as exc:
        return Clip(path.name, size, "?", None, 0, 0, 0, 0.0, 0.0, error=str(exc))
    frames = len(timestamps)
    seconds = 0.0
    if frames:
        seconds = (max(timestamps) - min(timestamps)) * time_base
        seconds += 1 / rate if rate else 0.0  # the last frame lasts one frame interval too
    kbit_s = size * 8 / seconds / 1000 if seconds > 0 else 0.0
    return Clip(path.name, size, codec, profile, width, height, frames, seconds, kbit_s)


@dataclass(frozen=True)
class ClipSummary:
    count: int
    codecs: list[str]
    total_bytes: int
    total_seconds: float
    total_frames: int
    kbit_s: float  # over all clips: total bytes / total duration
    clips: list[dict[str, object]]


def summarise(paths: list[Path]) -> ClipSummary:
    clips = [probe(path) for path in paths]
    total_bytes = sum(clip.bytes for clip in clips)
    total_seconds = sum(clip.seconds for clip in clips)
    return ClipSummary(
        count=len(clips),
        codecs=sorted(
            {f"{clip.codec} ({clip.profile})" if clip.profile else clip.codec for clip in clips}
        ),
        total_bytes=total_bytes,
        total_seconds=round(total_seconds, 2),
        total_frames=sum(clip.frames for clip in clips),
        kbit_s=round(total_bytes * 8 / total_seconds / 1000, 1) if total_seconds else 0.0,
        clips=[asdict(clip) for clip in clips],
    )
