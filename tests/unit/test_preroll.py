"""The pre-roll ring: bounded by time from a keyframe, and by bytes; what a clip starts with."""

from __future__ import annotations

from motiond.frames import Frame, StreamParams, VideoPacket
from motiond.record.preroll import PreRollBuffer

FPS = 10.0
PARAMS = StreamParams("h264", b"\x00\x00\x00\x01\x67", 320, 240)


def jpeg_frame(i: int, size: int = 300) -> Frame:
    return Frame(seq=i, mono=i / FPS, wall=0.0, width=320, height=240, jpeg=b"\xff" * size)


def coded_frame(i: int, gop: int = 10, size: int = 100) -> Frame:
    packet = VideoPacket(bytes(size), keyframe=i % gop == 0, params=PARAMS)
    return Frame(seq=i, mono=i / FPS, wall=0.0, width=320, height=240, packet=packet)


def test_jpeg_frames_keep_the_last_one_at_or_before_the_pre_roll() -> None:
    ring = PreRollBuffer(seconds=1.0, max_bytes=10_000)
    for i in range(30):
        ring.push(jpeg_frame(i))
    # Every JPEG is a keyframe: from the last frame at or before 2.9 - 1.0 s.
    assert [f.seq for f in ring.take(first_changed=2.9)] == list(range(19, 30))
    assert len(ring) == 11  # take() leaves the frames: they may open the next clip too


def test_the_byte_bound_drops_the_oldest_and_counts_them() -> None:
    small = PreRollBuffer(seconds=10.0, max_bytes=1000)
    for i in range(10):
        small.push(jpeg_frame(i))
    assert len(small) == 3 and small.trimmed_by_size == 7 and small.nbytes == 900


def test_coded_frames_start_at_the_keyframe_at_or_before_the_pre_roll() -> None:
    ring = PreRollBuffer(seconds=1.0, max_bytes=10**6)
    for i in range(45):  # keyframes at 0, 10, 20, 30, 40 (one a second)
        ring.push(coded_frame(i))
    # Motion at 4.4 s: 1 s before is 3.4 s, inside the group from 3.0 s; never later than that.
    taken = ring.take(first_changed=4.4)
    assert taken[0].seq == 30 and taken[0].keyframe and taken[-1].seq == 44
    # The ring holds whole groups, back to the keyframe at or before 1 s ago.
    assert len(ring) == 15


def test_a_clip_just_ended_bounds_the_pre_roll_to_part_of_a_group() -> None:
    ring = PreRollBuffer(seconds=2.0, max_bytes=10**6)
    for i in range(45):
        ring.push(coded_frame(i))
    # The previous clip ended with frame 36 (3.6 s): the next one starts at the keyframe before
    # frame 37, 3.0 s, not 2.0 s (the pre-roll), and repeats less than one group.
    assert ring.take(first_changed=4.4, not_before=3.6)[0].seq == 30
    jpegs = PreRollBuffer(seconds=2.0, max_bytes=10**6)
    for i in range(45):
        jpegs.push(jpeg_frame(i))
    assert jpegs.take(first_changed=4.4, not_before=3.6)[0].seq == 37


def test_no_keyframe_yet_means_no_clip_start_from_the_ring() -> None:
    ring = PreRollBuffer(seconds=1.0, max_bytes=10**6)
    for i in range(5, 9):  # joined mid-group
        ring.push(coded_frame(i))
    assert ring.take(first_changed=0.8) == []
    ring.push(coded_frame(10))
    assert [f.seq for f in ring.take(first_changed=1.0)] == [10]


def test_clear_empties_it() -> None:
    ring = PreRollBuffer(seconds=1.0, max_bytes=10**6)
    for i in range(12):
        ring.push(coded_frame(i))
    ring.clear()
    assert len(ring) == 0 and ring.nbytes == 0
