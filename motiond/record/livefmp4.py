"""A camera's H.264 packets as fragmented MP4 for a browser's Media Source Extensions (pure).

The live view sends an IP camera's own pictures, neither decoded nor encoded: each coded
packet becomes one media segment (``moof`` + ``mdat``, one sample), so a picture leaves as
soon as it arrived; an init segment (``ftyp`` + ``moov``) describes the stream. Samples hold
the packet's NAL units unchanged, length-prefixed instead of behind start codes (in-band
parameter sets included, as the camera sent them). Times are the frames' capture times on a
90 kHz timescale counted from the first frame the segmenter saw, so the timeline of a stream
is one for all its viewers.

``LiveSegmenter.push`` takes frames in capture order and returns what to send: a new
``InitSegment`` when the stream's parameters are first known or change, and a ``Fragment`` per
packet from the first keyframe on. It reads no clock and does no I/O. H.264 goes as ``avc1``,
H.265 as ``hvc1`` (Safari and some Chrome builds play it; where the browser cannot,
``MediaSource.isTypeSupported`` says so and the page shows JPEG pictures); anything else is
refused (``UnsupportedStream``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from motiond.capture.nal import nal_spans, nal_type, nal_units, parameter_sets
from motiond.frames import Frame, StreamParams

TIMESCALE = 90_000  # ticks per second, as RTP's video clock
DEFAULT_FRAME_SECONDS = 1 / 15  # a sample's duration until two frames have been seen
MAX_FRAME_SECONDS = 1.0
TRACK_ID = 1
_SPS, _PPS = 7, 8
_HEVC_VPS, _HEVC_SPS, _HEVC_PPS = 32, 33, 34
# sample_flags (ISO/IEC 14496-12 8.8.3.1): depends on no other / depends on others, non-sync
_SYNC_SAMPLE = 0x02000000
_NON_SYNC_SAMPLE = 0x01010000
_LENGTH = struct.Struct(">I")
_UNITY_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


class UnsupportedStream(ValueError):
    """Frames that cannot be sent as MP4 to a browser (JPEG pictures, MPEG-4 part 2, ...)."""


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def stream_parameter_sets(params: StreamParams, keyframe: bytes) -> dict[int, list[bytes]]:
    """The parameter set units by NAL type: the stream's, else those in front of the keyframe."""
    annex_b = params.parameter_sets or parameter_sets(params.codec, keyframe)
    found: dict[int, list[bytes]] = {}
    for unit in nal_units(annex_b):
        found.setdefault(nal_type(params.codec, unit), []).append(unit)
    return found


def avc_codec_string(sps: bytes) -> str:
    """RFC 6381's ``avc1.PPCCLL``: profile_idc, the constraint flags and level_idc of an SPS
    (a NAL unit without start code; these three bytes follow its header)."""
    if len(sps) < 4:
        raise UnsupportedStream("SPS too short")
    return f"avc1.{sps[1]:02x}{sps[2]:02x}{sps[3]:02x}"


def mp4_codec(params: StreamParams) -> str | None:
    """The codec the segmenter can carry for this stream, or None (it cannot)."""
    return params.codec if params.codec in ("h264", "hevc") else None


def _rbsp(unit: bytes) -> bytes:
    """A NAL unit's payload without emulation prevention bytes (00 00 03 -> 00 00)."""
    out = bytearray()
    zeros = 0
    for byte in unit:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def hevc_profile_tier_level(sps: bytes) -> bytes:
    """The 12 bytes of an H.265 SPS's general profile_tier_level: profile space, tier and
    profile, 32 compatibility flags, 48 constraint flags, level (what hvcC and RFC 6381's
    codec string carry)."""
    payload = _rbsp(sps)
    if len(payload) < 15:
        raise UnsupportedStream("H.265 SPS too short")
    return payload[3:15]  # after the 2-byte NAL header and the VPS id / sub-layers byte


def hevc_codec_string(sps: bytes) -> str:
    """RFC 6381 / ISO 14496-15 E.3: ``hvc1.<space><profile>.<compat>.<tier><level>.<flags>``."""
    ptl = hevc_profile_tier_level(sps)
    space = "" if ptl[0] >> 6 == 0 else "ABC"[(ptl[0] >> 6) - 1]
    compat = int.from_bytes(ptl[1:5], "big")
    reversed_compat = int(f"{compat:032b}"[::-1], 2)
    tier = "H" if ptl[0] & 0x20 else "L"
    constraints = ptl[5:11].rstrip(b"\x00")
    parts = [f"hvc1.{space}{ptl[0] & 0x1F}", f"{reversed_compat:x}", f"{tier}{ptl[11]}"]
    parts += [f"{b:02X}" for b in constraints]
    return ".".join(parts)


def sample_parts(annex_b: bytes) -> list[bytes | memoryview]:
    """An Annex B packet as the pieces of an MP4 sample: each NAL unit's 4-byte length, then
    a view of the unit (joined once, into the segment: a picture is copied once)."""
    view = memoryview(annex_b)
    parts: list[bytes | memoryview] = []
    for begin, end in nal_spans(annex_b):
        parts += (_LENGTH.pack(end - begin), view[begin:end])
    return parts


def _avcc(sps: list[bytes], pps: list[bytes]) -> bytes:
    first = sps[0]
    parts = [bytes([1, first[1], first[2], first[3], 0xFF, 0xE0 | len(sps)])]
    parts += [struct.pack(">H", len(unit)) + unit for unit in sps]
    parts.append(bytes([len(pps)]))
    parts += [struct.pack(">H", len(unit)) + unit for unit in pps]
    return box(b"avcC", *parts)


def _hvcc(vps: list[bytes], sps: list[bytes], pps: list[bytes]) -> bytes:
    ptl = hevc_profile_tier_level(sps[0])
    nested = (_rbsp(sps[0])[2] & 1) << 2  # sps_temporal_id_nesting_flag
    head = bytes([1]) + ptl + bytes([0xF0, 0x00, 0xFC, 0xFD, 0xF8, 0xF8, 0, 0])
    head += bytes([(1 << 3) | nested | 3])  # one temporal layer, 4-byte lengths
    arrays = [(_HEVC_VPS, vps), (_HEVC_SPS, sps), (_HEVC_PPS, pps)]
    body = bytes([len(arrays)])
    for kind, units in arrays:
        body += bytes([0x80 | kind]) + struct.pack(">H", len(units))
        body += b"".join(struct.pack(">H", len(unit)) + unit for unit in units)
    return box(b"hvcC", head, body)


def _visual_entry(kind: bytes, width: int, height: int, config: bytes) -> bytes:
    return box(
        kind,
        bytes(6),
        struct.pack(">H", 1),  # data_reference_index
        bytes(16),
        struct.pack(">HHII", width, height, 0x00480000, 0x00480000),
        bytes(4),
        struct.pack(">H", 1),  # frame_count
        bytes(32),  # compressorname
        struct.pack(">Hh", 0x0018, -1),
        config,
    )


def init_segment(
    width: int, height: int, sps: list[bytes], pps: list[bytes], vps: list[bytes] | None = None
) -> bytes:
    """``ftyp`` + ``moov`` of one video track, no samples (they come in fragments): H.264
    (``avc1``), or H.265 (``hvc1``) when ``vps`` is given."""
    if not sps or not pps or vps == []:
        raise UnsupportedStream("no parameter sets for the stream")
    if vps is None:
        entry = _visual_entry(b"avc1", width, height, _avcc(sps, pps))
    else:
        entry = _visual_entry(b"hvc1", width, height, _hvcc(vps, sps, pps))
    ftyp = box(b"ftyp", b"iso5", struct.pack(">I", 512), b"iso5iso6avc1mp41")
    mvhd = full_box(
        b"mvhd", 0, 0,
        struct.pack(">IIII", 0, 0, 1000, 0),  # times, timescale, duration
        struct.pack(">IH", 0x00010000, 0x0100), bytes(10), _UNITY_MATRIX, bytes(24),
        struct.pack(">I", TRACK_ID + 1),
    )  # fmt: skip
    tkhd = full_box(
        b"tkhd", 0, 3,  # enabled, in movie
        struct.pack(">IIIII", 0, 0, TRACK_ID, 0, 0),
        bytes(8), struct.pack(">hhhH", 0, 0, 0, 0), _UNITY_MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )  # fmt: skip
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, TIMESCALE, 0, 0x55C4, 0))
    hdlr = full_box(b"hdlr", 0, 0, bytes(4), b"vide", bytes(12), b"motiond live\x00")
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))
    stbl = box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), entry),
        full_box(b"stts", 0, 0, bytes(4)),
        full_box(b"stsc", 0, 0, bytes(4)),
        full_box(b"stsz", 0, 0, bytes(8)),
        full_box(b"stco", 0, 0, bytes(4)),
    )
    minf = box(b"minf", full_box(b"vmhd", 0, 1, bytes(8)), dinf, stbl)
    trak = box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf))
    trex = full_box(b"trex", 0, 0, struct.pack(">IIIII", TRACK_ID, 1, 0, 0, 0))
    return ftyp + box(b"moov", mvhd, trak, box(b"mvex", trex))


# moof (mfhd, traf: tfhd, tfdt, trun of one sample) and the mdat's header, as media_segment
# writes them: sizes and box types fixed, then sequence, decode time, the trun's flags, data
# offset and sample entry (with a composition offset or without), then the mdat's size.
_MOOF_HEAD = ">I4s" + "I4sII" + "I4s" + "I4sII" + "I4sIQ" + "I4sIIiIII"
_SEGMENT_HEAD = struct.Struct(_MOOF_HEAD + "I4s")
_SEGMENT_HEAD_CTO = struct.Struct(_MOOF_HEAD + "I" + "I4s")


def media_segment(
    sequence: int,
    decode_time: int,
    duration: int,
    sample: list[bytes | memoryview],
    *,
    keyframe: bool,
    cto: int = 0,
) -> bytes:
    """``moof`` + ``mdat`` holding one sample, given in parts (``sample_parts``); ``cto``: its
    composition offset (B-frames). One ``struct`` call writes every header."""
    size = sum(map(len, sample))
    head = _SEGMENT_HEAD_CTO if cto else _SEGMENT_HEAD
    trun = 20 + (16 if cto else 12)
    traf = 8 + 16 + 20 + trun
    moof = 8 + 16 + traf
    flags = 0x000001 | 0x000100 | 0x000200 | 0x000400 | (0x000800 if cto else 0)
    entry = [duration, size, _SYNC_SAMPLE if keyframe else _NON_SYNC_SAMPLE]
    if cto:
        entry.append(cto)
    header = head.pack(
        moof, b"moof",
        16, b"mfhd", 0, sequence,
        traf, b"traf",
        16, b"tfhd", 0x020000, TRACK_ID,  # base data offset: the moof
        20, b"tfdt", 1 << 24, decode_time,
        trun, b"trun", flags, 1, moof + 8, *entry,
        8 + size, b"mdat",
    )  # fmt: skip
    return b"".join([header, *sample])


@dataclass(frozen=True, slots=True)
class InitSegment:
    mime: str  # video/mp4; codecs="avc1.PPCCLL"
    data: bytes
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Fragment:
    data: bytes  # moof + mdat
    keyframe: bool
    media_time: float  # seconds on the stream's timeline (tfdt)
    mono: float  # the frame's capture time (monotonic clock)
    wall: float  # and on the wall clock


class LiveSegmenter:
    """One stream's frames to MP4 init and media segments, in capture order. Not thread-safe."""

    def __init__(self) -> None:
        self.init: InitSegment | None = None
        self._params: StreamParams | None = None
        self._origin: float | None = None
        self._last_mono: float | None = None
        self._last_decode = -1
        self._frame_seconds = DEFAULT_FRAME_SECONDS
        self._sequence = 0
        self.restart()

    def restart(self) -> None:
        """Frames were lost: go on at the next keyframe (the timeline continues)."""
        self._waiting_for_keyframe = True

    def push(self, frame: Frame) -> list[InitSegment | Fragment]:
        """What to send for ``frame``: nothing before the first keyframe; UnsupportedStream for
        frames that are not H.264 packets."""
        packet = frame.packet
        if packet is None:
            raise UnsupportedStream("the camera sends pictures, not a coded stream")
        if mp4_codec(packet.params) is None:
            raise UnsupportedStream(f"{packet.params.codec} is not sent as MP4 here")
        out: list[InitSegment | Fragment] = []
        if self._waiting_for_keyframe and not packet.keyframe:
            self._note_time(frame.mono)
            return out
        if packet.keyframe and (self.init is None or packet.params is not self._params):
            init = self._init_for(packet.params, packet.data)
            if self.init is None or init.data != self.init.data:
                self.init = init
                out.append(init)
            self._params = packet.params
        self._waiting_for_keyframe = False
        out.append(self._fragment(frame))
        return out

    def _init_for(self, params: StreamParams, keyframe: bytes) -> InitSegment:
        sets = stream_parameter_sets(params, keyframe)
        if params.codec == "hevc":
            sps, pps = sets.get(_HEVC_SPS, []), sets.get(_HEVC_PPS, [])
            data = init_segment(params.width, params.height, sps, pps, sets.get(_HEVC_VPS, []))
            codec = hevc_codec_string(sps[0])
        else:
            sps, pps = sets.get(_SPS, []), sets.get(_PPS, [])
            data = init_segment(params.width, params.height, sps, pps)
            codec = avc_codec_string(sps[0])
        return InitSegment(f'video/mp4; codecs="{codec}"', data, params.width, params.height)

    def _note_time(self, mono: float) -> None:
        if self._origin is None:
            self._origin = mono
        last = self._last_mono
        if last is not None and 0 < mono - last <= MAX_FRAME_SECONDS:
            self._frame_seconds = mono - last
        self._last_mono = mono

    def _fragment(self, frame: Frame) -> Fragment:
        packet = frame.packet
        assert packet is not None
        self._note_time(frame.mono)
        assert self._origin is not None
        decode = max(round((frame.mono - self._origin) * TIMESCALE), self._last_decode + 1)
        self._last_decode = decode
        self._sequence += 1
        data = media_segment(
            self._sequence,
            decode,
            max(1, round(self._frame_seconds * TIMESCALE)),
            sample_parts(packet.data),
            keyframe=packet.keyframe,
            cto=round(packet.pts_delay * TIMESCALE),
        )
        return Fragment(data, packet.keyframe, decode / TIMESCALE, frame.mono, frame.wall)
