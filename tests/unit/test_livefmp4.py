"""The live view's MP4 segmenter on H.264 packets encoded here (libx264 through PyAV)."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from motiond.capture.nal import nal_units
from motiond.frames import Frame, StreamParams, VideoPacket
from motiond.record.livefmp4 import (
    TIMESCALE,
    TRACK_ID,
    Fragment,
    InitSegment,
    LiveSegmenter,
    UnsupportedStream,
    avc_codec_string,
    box,
    full_box,
    media_segment,
    sample_parts,
)
from tests.fixtures.livemp4 import fragment_info
from tests.fixtures.nal import split_length_prefixed

FPS = 15


def encoded_packets(count: int = 40, gop: int = 10) -> list[tuple[bytes, bool]]:
    """Annex B packets of a moving bar, a keyframe every ``gop``, no B-frames."""
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 320, 240, "yuv420p"
    encoder.time_base = Fraction(1, FPS)
    encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(gop), "bf": "0"}
    packets: list[tuple[bytes, bool]] = []
    for index in range(count):
        image = np.zeros((240, 320, 3), np.uint8)
        image[:, (index * 7) % 300 : (index * 7) % 300 + 20] = 255
        picture = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
        picture.pts = index
        packets += [(bytes(p), p.is_keyframe) for p in encoder.encode(picture)]
    packets += [(bytes(p), p.is_keyframe) for p in encoder.encode(None)]
    return packets


PARAMS = StreamParams("h264", b"", 320, 240)


def frames(packets: list[tuple[bytes, bool]], start: float = 100.0) -> list[Frame]:
    return [
        Frame(
            seq=i,
            mono=start + i / FPS,
            wall=1e9 + i / FPS,
            width=320,
            height=240,
            packet=VideoPacket(data, key, PARAMS),
        )
        for i, (data, key) in enumerate(packets)
    ]


def test_codec_string_is_profile_constraints_and_level_of_the_sps() -> None:
    sps = bytes([0x67, 0x4D, 0x40, 0x1F, 0xAA])
    assert avc_codec_string(sps) == "avc1.4d401f"
    packets = encoded_packets(1)
    units = list(nal_units(packets[0][0]))
    sps_unit = next(u for u in units if u[0] & 0x1F == 7)
    assert avc_codec_string(sps_unit) == f"avc1.{sps_unit[1:4].hex()}"


def boxed_media_segment(
    sequence: int, decode_time: int, duration: int, sample: bytes, keyframe: bool, cto: int
) -> bytes:
    """``media_segment`` spelt out box by box (ISO/IEC 14496-12 8.8)."""
    flags = 0x000F01 if cto else 0x000701  # data offset; duration, size, flags (, offset)
    entry = struct.pack(">III", duration, len(sample), 0x02000000 if keyframe else 0x01010000)
    entry += struct.pack(">I", cto) if cto else b""

    def moof(offset: int) -> bytes:
        return box(
            b"moof",
            full_box(b"mfhd", 0, 0, struct.pack(">I", sequence)),
            box(
                b"traf",
                full_box(b"tfhd", 0, 0x020000, struct.pack(">I", TRACK_ID)),
                full_box(b"tfdt", 1, 0, struct.pack(">Q", decode_time)),
                full_box(b"trun", 0, flags, struct.pack(">Ii", 1, offset), entry),
            ),
        )

    return moof(len(moof(0)) + 8) + box(b"mdat", sample)


@pytest.mark.parametrize("cto", [0, 3003])
@pytest.mark.parametrize("keyframe", [True, False])
def test_media_segment_headers_are_the_boxes_spelt_out(keyframe: bool, cto: int) -> None:
    packet = b"\x00\x00\x00\x01\x09\xf0" + b"\x00\x00\x01\x65" + bytes(range(1, 256)) * 300
    parts = sample_parts(packet)  # views of the packet: the sample is copied once, into it
    assert any(isinstance(part, memoryview) for part in parts)
    sample = b"".join(parts)
    expected = boxed_media_segment(9, 2**33 + 5, 6000, sample, keyframe, cto)
    assert media_segment(9, 2**33 + 5, 6000, parts, keyframe=keyframe, cto=cto) == expected
    assert split_length_prefixed(sample, 4) == list(nal_units(packet))


def test_segments_start_at_a_keyframe_and_read_back_as_the_same_pictures(tmp_path: Path) -> None:
    packets = encoded_packets(40, gop=10)
    segmenter = LiveSegmenter()
    made = [item for frame in frames(packets[3:]) for item in segmenter.push(frame)]
    # Nothing before the first keyframe (packet 10); then one init, then a fragment each.
    assert isinstance(made[0], InitSegment) and made[0].mime.startswith('video/mp4; codecs="avc1.')
    fragments = [m for m in made if isinstance(m, Fragment)]
    assert len(made) == 1 + len(fragments) and len(fragments) == 30
    assert fragments[0].keyframe
    infos = [fragment_info(f.data) for f in fragments]
    assert [i.keyframe for i in infos] == [k for _, k in packets[10:]]
    assert [i.sequence for i in infos] == list(range(1, 31))
    # Decode times follow capture times, from the first frame the segmenter saw.
    assert infos[0].decode_time == round(7 / FPS * TIMESCALE)
    assert fragments[1].media_time - fragments[0].media_time == pytest.approx(1 / FPS, abs=1e-4)
    # PyAV reads it back: the same packets, NAL unit for NAL unit, and it decodes them all.
    path = tmp_path / "live.mp4"
    path.write_bytes(made[0].data + b"".join(f.data for f in fragments))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 240)
        read = [bytes(p) for p in container.demux(stream) if p.size]
    assert len(read) == 30
    for sample, (original, _) in zip(read, packets[10:], strict=True):
        assert split_length_prefixed(sample, 4) == list(nal_units(original))
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 30


def test_after_lost_frames_it_goes_on_at_the_next_keyframe_on_the_same_timeline() -> None:
    packets = encoded_packets(40, gop=10)
    all_frames = frames(packets)
    segmenter = LiveSegmenter()
    first = [m for f in all_frames[:15] for m in segmenter.push(f)]
    segmenter.restart()
    later = [m for f in all_frames[15:] for m in segmenter.push(f)]
    assert isinstance(first[0], InitSegment) and len(first) == 16
    # No new init (same parameters); the next picture sent is keyframe 20, at its own time.
    assert all(isinstance(m, Fragment) for m in later)
    assert isinstance(later[0], Fragment) and later[0].keyframe
    assert later[0].media_time == pytest.approx(20 / FPS, abs=1e-4)


def test_a_change_of_parameters_sends_a_new_init_segment() -> None:
    segmenter = LiveSegmenter()
    made = [m for f in frames(encoded_packets(12, gop=10)) for m in segmenter.push(f)]
    other = StreamParams("h264", b"", 320, 240)  # a new object: the camera restarted
    data, key = encoded_packets(1)[0]
    again = segmenter.push(
        Frame(seq=99, mono=200.0, wall=0.0, width=320, height=240,
              packet=VideoPacket(data, key, other))
    )  # fmt: skip
    assert isinstance(made[0], InitSegment)
    # The same SPS/PPS (the same encoder settings) make the same init: not sent again.
    assert [type(m) for m in again] == [Fragment]


def test_pictures_that_are_not_h264_are_refused() -> None:
    segmenter = LiveSegmenter()
    jpeg_frame = Frame(seq=0, mono=0.0, wall=0.0, width=2, height=2, jpeg=b"\xff\xd8")
    with pytest.raises(UnsupportedStream):
        segmenter.push(jpeg_frame)
    mpeg4 = StreamParams("mpeg4", b"", 320, 240)
    with pytest.raises(UnsupportedStream, match="mpeg4"):
        segmenter.push(
            Frame(seq=0, mono=0.0, wall=0.0, width=320, height=240,
                  packet=VideoPacket(b"\x00\x00\x01\xb6", True, mpeg4))
        )  # fmt: skip


def hevc_packets(count: int = 30) -> list[tuple[bytes, bool]]:
    encoder = av.CodecContext.create("libx265", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 320, 240, "yuv420p"
    encoder.time_base = Fraction(1, FPS)
    encoder.options = {
        "preset": "ultrafast",
        "x265-params": "keyint=10:min-keyint=10:bframes=0:scenecut=0:repeat-headers=1:"
        "log-level=error",
    }
    packets: list[tuple[bytes, bool]] = []
    for index in range(count):
        image = np.zeros((240, 320, 3), np.uint8)
        image[:, (index * 7) % 300 : (index * 7) % 300 + 20] = 255
        picture = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
        picture.pts = index
        packets += [(bytes(p), p.is_keyframe) for p in encoder.encode(picture)]
    packets += [(bytes(p), p.is_keyframe) for p in encoder.encode(None)]
    return packets


def test_h265_goes_as_hvc1_with_its_profile_tier_and_level(tmp_path: Path) -> None:
    params = StreamParams("hevc", b"", 320, 240)
    packets = hevc_packets()
    segmenter = LiveSegmenter()
    made = [
        item
        for i, (data, key) in enumerate(packets)
        for item in segmenter.push(
            Frame(seq=i, mono=i / FPS, wall=0.0, width=320, height=240,
                  packet=VideoPacket(data, key, params))
        )
    ]  # fmt: skip
    init = made[0]
    assert isinstance(init, InitSegment)
    # Main profile (1), compatible with Main (flag 1 << 1 reversed: 6), level 2 (60), progressive.
    assert init.mime == 'video/mp4; codecs="hvc1.1.6.L60.90"'
    path = tmp_path / "live-hevc.mp4"
    path.write_bytes(b"".join(m.data for m in made))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "hevc"
        assert sum(1 for _ in container.decode(video=0)) == len(packets)
