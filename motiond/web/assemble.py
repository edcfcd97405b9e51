"""One MP4 from the files of a time range: packets copied, never re-encoded.

``assemble`` takes the pieces of footage (continuous segments, the one being written, clips)
and writes one fragmented MP4 to anything with ``write``, as it goes. It starts at the keyframe
at or before ``start`` and ends before ``end``; timestamps follow the capture times, so an
outage stays a gap (the player holds the last picture). Where two files overlap (a clip inside
continuous footage, consecutive segments meeting within a GOP), what is already written wins
and the next file joins at its first keyframe after that. Only pieces of the stream the first
one holds are taken (a camera that changed resolution is another track, left out).

Threads: the caller's (``web/export.py``: an export thread); it holds the current packet and
at most one GOP, never the range.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

logger = logging.getLogger(__name__)

TIME_BASE = Fraction(1, 90000)
FRAGMENTED_MP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
OVERLAP_SLACK = 0.001  # seconds: a packet this close to what is written counts as written


@dataclass(frozen=True, slots=True)
class Piece:
    """A file of footage: a segment or a clip, and the capture time of its first frame."""

    start: float
    end: float
    path: Path
    size: int | None = None  # bytes to read: a growing segment's complete fragments

    def open(self) -> Any:
        """The file for PyAV; a growing segment cut at ``size``."""
        if self.size is None:
            return av.open(str(self.path))
        return av.open(_Prefix(self.path, self.size))


class _Prefix(io.RawIOBase):
    """The first ``size`` bytes of a file, seekable (what PyAV may read of a growing one)."""

    def __init__(self, path: Path, size: int) -> None:
        super().__init__()
        self.file = open(path, "rb")  # noqa: SIM115 (closed with this object)
        self.size = size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self.size - self.file.tell())
        if wanted <= 0:
            return 0
        data = self.file.read(wanted)
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            return self.file.seek(self.size + offset)
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()

    def close(self) -> None:
        self.file.close()
        super().close()


@dataclass(slots=True)
class ExportResult:
    packets: int = 0
    first: float | None = None  # capture time of the first packet written
    last: float | None = None  # and of the last


def _timed_packets(piece: Piece) -> Iterator[tuple[Any, float]]:
    """(packet, capture time) of each video packet of a piece."""
    start = piece.start
    with piece.open() as source:
        stream = source.streams.video[0]
        time_base = stream.time_base or TIME_BASE
        origin: int | None = None
        for packet in source.demux(stream):
            if packet.dts is None or packet.size == 0:
                continue
            origin = packet.dts if origin is None else origin
            yield packet, start + float((packet.dts - origin) * time_base)


def _stream_key(stream: Any) -> tuple[Any, ...]:
    """What two files must share for their packets to go in one track."""
    context = stream.codec_context
    return (context.name, context.width, context.height, context.extradata)


def assemble(pieces: list[Piece], start: float, end: float, output: Any) -> ExportResult:
    """Copy the packets of ``pieces`` from the keyframe at or before ``start`` to ``end`` into
    one fragmented MP4 written to ``output`` (anything with ``write``). A piece that cannot be
    read (deleted by retention meanwhile, cut by a crash) is left out from where it fails."""
    result = ExportResult()
    container = av.open(output, "w", format="mp4", options=dict(FRAGMENTED_MP4))
    track = _Track(container)
    try:
        for piece in sorted(pieces, key=lambda p: p.start):
            if piece.end <= start or (result.last is not None and piece.end <= result.last):
                continue
            try:
                if track.takes(piece):
                    for packet, at, delay in _packets_of(piece, start, end, result.last):
                        track.mux(packet, at, delay, result)
            except (av.FFmpegError, OSError) as exc:
                logger.warning("export: %s left out from where it failed: %s", piece.path, exc)
    finally:
        container.close()
    return result


class _Track:
    """The export's one video track: made like the first piece's, taking only pieces of the
    same stream, its timestamps the capture times from the first packet written."""

    def __init__(self, container: Any) -> None:
        self.container = container
        self.stream: Any = None
        self.key: tuple[Any, ...] = ()
        self.last_dts = -1

    def takes(self, piece: Piece) -> bool:
        with piece.open() as probe:
            template = probe.streams.video[0]
            if self.stream is None:
                self.stream = self.container.add_stream_from_template(template)
                self.stream.time_base = TIME_BASE
                self.key = _stream_key(template)
            elif _stream_key(template) != self.key:
                logger.warning("export: %s is another stream; left out", piece.path.name)
                return False
        return True

    def mux(self, packet: Any, at: float, delay: int, result: ExportResult) -> None:
        if result.first is None:
            result.first = at
        dts = max(round((at - result.first) / TIME_BASE), self.last_dts + 1)
        self.last_dts = dts
        packet.stream = self.stream
        packet.time_base = TIME_BASE
        packet.dts = dts
        packet.pts = dts + delay
        self.container.mux(packet)
        result.packets += 1
        result.last = at


def _packets_of(
    piece: Piece, start: float, end: float, written_until: float | None
) -> Iterator[tuple[Any, float, int]]:
    """(packet, capture time, pts - dts in 1/90000 s) of the packets of ``piece`` that belong
    in the export: from the keyframe at or before ``start`` (the first piece) or the first
    keyframe after what is written (the next ones), up to ``end``."""
    gop: list[tuple[Any, float, int]] = []  # from the last keyframe before ``start``
    joined = False
    for packet, at in _timed_packets(piece):
        if at >= end:
            break
        if written_until is not None and at <= written_until + OVERLAP_SLACK:
            continue
        delay = 0
        if packet.pts is not None:
            delay = round((packet.pts - packet.dts) * packet.time_base / TIME_BASE)
        item = (packet, at, delay)
        if not joined:
            if at < start:
                if packet.is_keyframe:
                    gop = [item]
                elif gop:
                    gop.append(item)
                continue
            if packet.is_keyframe:
                gop = []  # the range starts on a keyframe: nothing before it is needed
            elif not gop:
                continue  # a file joins at a keyframe
            joined = True
            yield from gop
        yield item
