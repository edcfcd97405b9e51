"""Reading clip files: where a fragmented MP4's last complete fragment ends, and a demux probe.

A clip is written as fragmented MP4 (``ftyp``, an empty ``moov``, then ``moof``+``mdat`` pairs,
about one per second). Both the recorder (a clip cut short by a full disk) and crash recovery
(a ``*.partial.mp4`` left by a crash) cut a clip back to its last complete fragment and probe
what is left.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av


class ClipProbeError(Exception):
    """A clip file that PyAV cannot read as video."""


def _box_header(handle: BinaryIO, offset: int, file_size: int) -> tuple[bytes, int, int] | None:
    """(type, total size, header size) of the box at ``offset``, or None if cut or invalid."""
    handle.seek(offset)
    header = handle.read(8)
    if len(header) < 8:
        return None
    size, kind = struct.unpack(">I4s", header)
    header_size = 8
    if size == 1:  # 64-bit size follows the type
        large = handle.read(8)
        if len(large) < 8:
            return None
        (size,) = struct.unpack(">Q", large)
        header_size = 16
    elif size == 0:  # "to the end of the file": only the last box of a finished file
        size = file_size - offset
    if size < header_size:
        return None
    return kind, size, header_size


def playable_end(path: Path) -> int:
    """The byte offset just after the last complete ``moof``+``mdat`` pair; 0 if none.

    0 also when the file has no ``ftyp``/``moov`` before its first fragment (not a
    fragmented MP4, or cut inside its header).
    """
    file_size = path.stat().st_size
    end = 0
    seen_moov = False
    moof_complete = False  # the previous box was a complete moof
    offset = 0
    with open(path, "rb") as handle:
        while offset < file_size:
            header = _box_header(handle, offset, file_size)
            if header is None:
                break
            kind, size, _ = header
            box_end = offset + size
            if box_end > file_size:
                break  # cut inside this box
            if offset == 0 and kind != b"ftyp":
                return 0
            if kind == b"moov":
                seen_moov = True
            elif kind == b"mdat" and moof_complete and seen_moov:
                end = box_end
            moof_complete = kind == b"moof"
            offset = box_end
    return end


@dataclass(frozen=True, slots=True)
class ClipProbe:
    codec: str
    width: int
    height: int
    frames: int
    span: float  # seconds from the first frame's timestamp to the last one's


def probe_clip(path: Path) -> ClipProbe:
    """Demux every packet (no decoding) to count frames and measure the timestamps."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ClipProbeError(f"{path} has no video stream")
            stream = container.streams.video[0]
            frames = 0
            first: int | None = None
            last: int | None = None
            for packet in container.demux(stream):
                if packet.pts is None or packet.size == 0:
                    continue
                frames += 1
                first = packet.pts if first is None else min(first, packet.pts)
                last = packet.pts if last is None else max(last, packet.pts)
            codec = stream.codec_context.name
            width, height = stream.codec_context.width, stream.codec_context.height
            time_base = stream.time_base
    except av.FFmpegError as exc:
        raise ClipProbeError(f"{path}: {exc}") from exc
    if frames == 0 or first is None or last is None or time_base is None:
        raise ClipProbeError(f"{path} holds no video frames")
    return ClipProbe(codec, width, height, frames, float((last - first) * time_base))
