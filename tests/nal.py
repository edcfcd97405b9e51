"""Coded pictures as NAL units, to check that a clip holds the camera's own packets.

A clip's video is "byte-identical to what the camera served" when, picture by picture, its
slice NAL units (the VCL NALs that carry the picture) are the same bytes as the source's.
Everything else may legitimately differ: parameter sets (SPS/PPS/VPS), access unit delimiters
and SEI are added, repeated or moved by RTSP packetizing and by muxers, and the framing differs
(MP4 stores NAL units length-prefixed, AVCC/HVCC; PyAV hands RTSP and MPEG-TS packets over in
Annex B, with start codes). :func:`coded_pictures` reads either into the same form.

    codec, source = coded_pictures(camera_video.path)
    _, clip = coded_pictures(clip_path)
    first = match_pictures(clip, source)   # index in the source of the clip's first picture
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import av

H264_VCL_TYPES = range(1, 6)  # non-IDR slice, partitions A-C, IDR slice
HEVC_VCL_TYPES = range(32)  # every NAL type below 32 is a slice segment
H264_NAMES = {1: "slice", 5: "IDR", 6: "SEI", 7: "SPS", 8: "PPS", 9: "AUD"}
HEVC_NAMES = {19: "IDR_W_RADL", 20: "IDR_N_LP", 21: "CRA", 32: "VPS", 33: "SPS", 34: "PPS"}
HEVC_NAMES |= {35: "AUD", 39: "SEI", 40: "SEI"}


def nal_type(nal: bytes, codec: str) -> int:
    """The NAL unit type from its header (``codec``: PyAV's name, "h264" or "hevc")."""
    if codec == "h264":
        return nal[0] & 0x1F
    if codec == "hevc":
        return (nal[0] >> 1) & 0x3F
    raise ValueError(f"not H.264 or H.265: {codec}")


def is_vcl(nal: bytes, codec: str) -> bool:
    kind = nal_type(nal, codec)
    return kind in (H264_VCL_TYPES if codec == "h264" else HEVC_VCL_TYPES)


def nal_name(kind: int, codec: str) -> str:
    names = H264_NAMES if codec == "h264" else HEVC_NAMES
    return names.get(kind, str(kind))


def length_size(extradata: bytes | None, codec: str) -> int | None:
    """Bytes per NAL length prefix from an avcC/hvcC record; None if the stream is Annex B.

    avcC and hvcC start with version 1; Annex B extradata (or none) means start codes.
    """
    if not extradata or extradata[0] != 1:
        return None
    if codec == "hevc":
        return (extradata[21] & 3) + 1  # lengthSizeMinusOne, ISO/IEC 14496-15 8.3.3.1
    return (extradata[4] & 3) + 1  # avcC, ISO/IEC 14496-15 5.3.3.1


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units between start codes (00 00 01 or 00 00 00 01), trailing zero bytes removed."""
    units: list[bytes] = []
    start = data.find(b"\x00\x00\x01")
    while start != -1:
        begin = start + 3
        start = data.find(b"\x00\x00\x01", begin)
        unit = data[begin : len(data) if start == -1 else start].rstrip(b"\x00")
        if unit:
            units.append(unit)
    return units


def split_length_prefixed(data: bytes, size: int) -> list[bytes]:
    units: list[bytes] = []
    at = 0
    while at + size <= len(data):
        length = int.from_bytes(data[at : at + size], "big")
        at += size
        if at + length > len(data):
            raise ValueError(f"NAL unit of {length} bytes overruns the packet ({len(data)})")
        units.append(data[at : at + length].rstrip(b"\x00"))
        at += length
    return units


def split_nal_units(data: bytes, prefix_size: int | None) -> list[bytes]:
    """A packet's NAL units; ``prefix_size`` from :func:`length_size` (None: Annex B).

    Trust the stream's extradata, not the packet: a 4-byte length of 256-511 reads 00 00 01 xx.
    """
    if prefix_size is None:
        return split_annexb(data)
    return split_length_prefixed(data, prefix_size)


@dataclass(frozen=True)
class CodedPicture:
    """One video packet, as NAL units."""

    index: int  # position in the file or stream as read (decode order)
    pts: float | None  # seconds; None where the demuxer gave none (RTSP's first packet)
    keyframe: bool
    slices: tuple[bytes, ...]  # the VCL NAL units, in order
    other: tuple[int, ...]  # types of the other NAL units (parameter sets, SEI, AUD, ...)


def coded_pictures(
    source: str | Path,
    *,
    options: Mapping[str, str] | None = None,
    timeout: float | tuple[float, float] | None = None,
    max_pictures: int | None = None,
) -> tuple[str, list[CodedPicture]]:
    """(codec, pictures) of the first video stream of a file or URL, read with PyAV.

    For a live URL pass ``max_pictures`` (and e.g. ``options={"rtsp_transport": "tcp"}``,
    ``timeout``).
    """
    with av.open(str(source), options=dict(options or {}), timeout=timeout) as container:
        stream = container.streams.video[0]
        return stream.codec_context.name, read_pictures(container.demux(stream), max_pictures)


def read_pictures(
    packets: Iterable[av.Packet], max_pictures: int | None = None
) -> list[CodedPicture]:
    """Video packets (e.g. ``container.demux(video_stream)``) as coded pictures.

    Packets of other streams, and packets without a slice (flush packets, stray parameter
    sets), are skipped.
    """
    pictures: list[CodedPicture] = []
    for packet in packets:
        if max_pictures is not None and len(pictures) >= max_pictures:
            break
        stream = packet.stream
        if not packet.size or stream.type != "video":
            continue
        codec = stream.codec_context.name
        units = split_nal_units(bytes(packet), length_size(stream.codec_context.extradata, codec))
        slices = tuple(unit for unit in units if is_vcl(unit, codec))
        if not slices:
            continue
        pictures.append(
            CodedPicture(
                index=len(pictures),
                pts=None if packet.pts is None else float(packet.pts * packet.time_base),
                keyframe=packet.is_keyframe,
                slices=slices,
                other=tuple(nal_type(u, codec) for u in units if not is_vcl(u, codec)),
            )
        )
    return pictures


@dataclass(frozen=True)
class Keyframe:
    index: int  # picture number in the file (0 = first)
    pts: float  # seconds


def keyframes(path: str | Path) -> list[Keyframe]:
    """Where the keyframes of a file are, by picture number and PTS (demuxed, not decoded)."""
    _, pictures = coded_pictures(path)
    return [Keyframe(p.index, p.pts or 0.0) for p in pictures if p.keyframe]


def match_pictures(
    clip: Sequence[CodedPicture], source: Sequence[CodedPicture], *, loop: bool = False
) -> int:
    """Index in ``source`` of the picture ``clip`` starts with, checking every later one.

    Each clip picture must have exactly the slices of the source picture at the same offset
    (wrapping around the source if ``loop``: a served file repeated). Raises AssertionError
    saying where they part.
    """
    if not clip:
        raise AssertionError("the clip has no coded picture")
    if not source:
        raise AssertionError("the source has no coded picture")
    by_slices: dict[tuple[bytes, ...], list[int]] = {}
    for picture in source:
        by_slices.setdefault(picture.slices, []).append(picture.index)
    candidates = by_slices.get(clip[0].slices, [])
    if not candidates:
        raise AssertionError(
            f"the clip's first picture ({_describe(clip[0])}) is in no source picture"
        )
    best: tuple[int, int] = (-1, candidates[0])  # (pictures matched, start)
    for start in candidates:
        matched = _matching_run(clip, source, start, loop)
        if matched == len(clip):
            return start
        best = max(best, (matched, start))
    matched, start = best
    where = start + matched
    if where >= len(source) and not loop:
        raise AssertionError(
            f"clip pictures 0-{matched - 1} are source pictures {start}-{where - 1}, then the "
            f"clip has {len(clip) - matched} more picture(s) than the source"
        )
    raise AssertionError(
        f"clip pictures 0-{matched - 1} are source pictures {start}-{where - 1}; clip picture "
        f"{matched} ({_describe(clip[matched])}) differs from source picture "
        f"{where % len(source)} ({_describe(source[where % len(source)])})"
    )


def _matching_run(
    clip: Sequence[CodedPicture], source: Sequence[CodedPicture], start: int, loop: bool
) -> int:
    for offset, picture in enumerate(clip):
        at = start + offset
        if at >= len(source) and not loop:
            return offset
        if picture.slices != source[at % len(source)].slices:
            return offset
    return len(clip)


def _describe(picture: CodedPicture) -> str:
    sizes = "+".join(str(len(s)) for s in picture.slices)
    kind = "keyframe" if picture.keyframe else "picture"
    return f"{kind} at {picture.pts}s, slices of {sizes} bytes"
