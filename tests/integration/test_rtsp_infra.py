"""The RTSP test camera serves what was generated: the file's own coded pictures, in real time.

Tests of the test infrastructure (testbed/camera_video.py, testbed/rtsp.py, testbed/rtsp_server.py,
tests/fixtures/nal.py), so that a failing IP camera test points at motiond, not at the camera.
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import av
import av.error
import numpy as np
import pytest

from testbed.camera_video import CameraVideo
from testbed.framecode import read_frame_number
from tests.fixtures.nal import (
    CodedPicture,
    coded_pictures,
    is_vcl,
    keyframes,
    match_pictures,
    nal_type,
    read_pictures,
    split_nal_units,
)
from tests.fixtures.rtsp import CameraMediaCache, StartRtspCamera

TCP = {"rtsp_transport": "tcp"}
H264_PARAMETER_SETS = {7, 8}  # SPS, PPS
HEVC_PARAMETER_SETS = {32, 33, 34}  # VPS, SPS, PPS


def small_video(camera_media: CameraMediaCache, **options: object) -> CameraVideo:
    settings: dict[str, object] = {"width": 320, "height": 180, "seconds": 6.0}
    return camera_media(**(settings | options))  # type: ignore[arg-type]


def test_nal_units_split_from_either_framing() -> None:
    sps, pps, idr = b"\x67\x4d\x40\x1e", b"\x68\xee\x3c\x80", b"\x65" + b"\x88" * 300
    annexb = b"\0\0\0\1" + sps + b"\0\0\1" + pps + b"\0\0\0\1" + idr
    # a 4-byte length of 256-511 begins 00 00 01: it must not be taken for a start code
    prefixed = b"".join(len(n).to_bytes(4, "big") + n for n in (sps, pps, idr))
    assert split_nal_units(annexb, None) == [sps, pps, idr]
    assert split_nal_units(prefixed, 4) == [sps, pps, idr]
    assert [nal_type(n, "h264") for n in (sps, pps, idr)] == [7, 8, 5]
    assert [is_vcl(n, "h264") for n in (sps, pps, idr)] == [False, False, True]
    hevc_trail_n, hevc_vps = b"\x00\x01\xaf", b"\x40\x01\x0c"
    assert [nal_type(n, "hevc") for n in (hevc_trail_n, hevc_vps)] == [0, 32]
    assert split_nal_units(b"\0\0\1" + hevc_vps + b"\0\0\1" + hevc_trail_n, None) == [
        hevc_vps,
        hevc_trail_n,
    ]


def test_match_pictures_finds_the_start_and_reports_a_difference() -> None:
    source = [CodedPicture(i, i / 15, i % 30 == 0, (bytes([1, i]),), ()) for i in range(60)]
    assert match_pictures(source[30:45], source) == 30
    assert match_pictures(source[50:] + source[:10], source, loop=True) == 50
    changed = [*source[30:40], replace(source[40], slices=(b"\x01\xff",)), *source[41:45]]
    with pytest.raises(AssertionError, match=r"clip picture 10 .* differs from source picture 40"):
        match_pictures(changed, source)
    with pytest.raises(AssertionError, match="more picture"):
        match_pictures(source[50:] + source[:10], source)
    with pytest.raises(AssertionError, match="in no source picture"):
        match_pictures([replace(source[3], slices=(b"\x02",))], source)


def test_generated_media_look_like_a_camera(camera_media: CameraMediaCache) -> None:
    video = small_video(camera_media, moving=((2.5, 4.0),))
    assert [k.index for k in keyframes(video.path)] == [0, 30, 60]
    assert [k.pts for k in keyframes(video.path)] == pytest.approx(video.keyframe_times)
    with av.open(str(video.path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.profile) == ("h264", "Main")
        packets = [p for p in container.demux(stream) if p.size]
    assert all(p.pts == p.dts for p in packets), "B-frames: pts and dts differ"
    with av.open(str(video.path)) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert [read_frame_number(frame) for frame in frames] == list(range(video.frames))
    size = video.width // 10
    band = slice(video.height // 3, video.height // 3 + size)
    changed = [
        index
        for index, frame in enumerate(frames)
        if np.abs(frame[band].astype(int) - frames[0][band].astype(int)).mean() > 10
    ]
    assert changed == list(video.motion_frames[0]) == list(range(38, 60))


def test_main_and_sub_media_share_the_timeline(camera_media: CameraMediaCache) -> None:
    main, sub = camera_media.pair(main=(640, 360), sub=(320, 180), seconds=4.0)
    assert (main.width, sub.width) == (640, 320)
    assert main.frames == sub.frames and main.motion_frames == sub.motion_frames
    assert [k.index for k in keyframes(main.path)] == [k.index for k in keyframes(sub.path)]


def test_h264_is_served_unchanged_with_parameter_sets_in_band(
    camera_media: CameraMediaCache, rtsp_camera: StartRtspCamera
) -> None:
    video = camera_media(seconds=6.0, audio="aac")
    camera = rtsp_camera({"/main": video})
    with av.open(camera.url("/main"), options=TCP, timeout=(10, 10)) as container:
        codecs = sorted(s.codec_context.name for s in container.streams)
        # A packet must not outlive its container: PyAV crashes reading its stream after.
        packets = list(_first_packets(container, video_packets=45))
        served = read_pictures(packets)
        audio = [p for p in packets if p.stream.type == "audio"]
        first_video = bytes(next(p for p in packets if p.stream.type == "video"))
    _, source = coded_pictures(video.path)

    assert codecs == ["aac", "h264"]
    assert audio, "no audio packet"
    assert match_pictures(served, source) == 0  # from the file's first picture
    assert len(served) == 45
    assert [p.index for p in served if p.keyframe] == [0, 30]
    # The MP4 keeps SPS/PPS in avcC only; the camera sends them before every keyframe.
    assert all(not H264_PARAMETER_SETS & set(p.other) for p in source)
    assert all(set(p.other) >= H264_PARAMETER_SETS for p in served if p.keyframe)
    # PyAV hands RTSP packets over in Annex B (start codes), not length-prefixed.
    assert first_video[:4] == b"\0\0\0\1"


def test_h265_with_g711_audio_is_served_unchanged(
    camera_media: CameraMediaCache, rtsp_camera: StartRtspCamera
) -> None:
    video = small_video(camera_media, codec="hevc", seconds=4.0, audio="pcm_mulaw")
    camera = rtsp_camera({"/cam": video})
    with av.open(camera.url("/cam"), options=TCP, timeout=(10, 10)) as container:
        codecs = sorted(s.codec_context.name for s in container.streams)
        packets = list(_first_packets(container, video_packets=35))
        served = read_pictures(packets)
        audio = [p for p in packets if p.stream.type == "audio"]
    _, source = coded_pictures(video.path)

    assert codecs == ["hevc", "pcm_mulaw"]
    assert audio, "no audio packet"
    assert match_pictures(served, source) == 0
    assert all(set(p.other) >= HEVC_PARAMETER_SETS for p in served if p.keyframe)


def test_loop_repeats_the_file_with_timestamps_going_on(
    camera_media: CameraMediaCache, rtsp_camera: StartRtspCamera
) -> None:
    video = small_video(camera_media, seconds=3.0)  # 45 pictures, keyframes at 0 and 30
    camera = rtsp_camera({"/main": video}, loop=True)
    _, served = coded_pictures(
        camera.url("/main"), options=TCP, timeout=(10, 10), max_pictures=2 * video.frames + 10
    )
    _, source = coded_pictures(video.path)

    assert match_pictures(served, source, loop=True) == 0
    assert [p.index for p in served if p.keyframe] == [0, 30, 45, 75, 90]
    times = [p.pts for p in served[1:]]  # the first packet has no pts
    steps = np.diff(np.array(times, dtype=float))
    assert steps == pytest.approx(1 / video.fps, abs=0.002), "a jump at a loop point"
    assert "LOOP /main 2" in camera.events()


def test_stall_stops_packets_but_keeps_the_connection(
    camera_media: CameraMediaCache, rtsp_camera: StartRtspCamera
) -> None:
    video = small_video(camera_media)
    camera = rtsp_camera({"/main": video}, loop=True)
    stall_s = 3.0
    arrivals: list[tuple[float, float]] = []  # (monotonic, pts) per video packet
    with av.open(camera.url("/main"), options=TCP, timeout=(10, 20)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.pts is None or not packet.size:
                continue
            arrivals.append((time.monotonic(), float(packet.pts * packet.time_base)))
            if len(arrivals) == 40:  # past the packets buffered while opening
                camera.stall()
                threading.Timer(stall_s, camera.resume).start()
            if len(arrivals) == 80:
                break
    # (PyAV's parser hands a picture over when the next one begins: the picture sent just
    # before the stall arrives after it, so the two gaps are one packet apart.)
    wall_gap = max(b[0] - a[0] for a, b in itertools.pairwise(arrivals))
    pts_gap = max(b[1] - a[1] for a, b in itertools.pairwise(arrivals))
    assert wall_gap > stall_s - 0.5  # nothing came while stalled ...
    assert pts_gap > stall_s - 0.5  # ... and the camera's clock went on meanwhile
    assert [e for e in camera.events() if e.startswith(("STALL", "RESUME", "STOP"))] == [
        "STALL",
        "RESUME",
    ]  # the same session throughout


def test_reads_time_out_while_stalled(
    camera_media: CameraMediaCache, rtsp_camera: StartRtspCamera
) -> None:
    video = small_video(camera_media)
    camera = rtsp_camera({"/main": video}, stall_after=1.0)
    read = 0
    with (
        av.open(camera.url("/main"), options=TCP, timeout=(10, 2)) as container,
        pytest.raises(av.error.ExitError),  # PyAV's read timeout interrupts the read
    ):
        for packet in container.demux(container.streams.video[0]):
            read += bool(packet.size)
    assert 10 <= read <= 20, "the stall should come after about 1 s of 15 fps"
    assert camera.stalled


def test_restart_on_the_same_port_ends_old_connections(
    camera_media: CameraMediaCache, rtsp_camera: StartRtspCamera
) -> None:
    video = small_video(camera_media)
    camera = rtsp_camera({"/main": video}, loop=True)
    port, pid = camera.port, camera.pid
    _, source = coded_pictures(video.path)
    with av.open(camera.url("/main"), options=TCP, timeout=(10, 5)) as container:
        stream = container.streams.video[0]
        before = read_pictures(container.demux(stream), 10)
        camera.restart()
        ended = "end of stream"
        try:
            for _ in container.demux(stream):
                pass
        except av.error.FFmpegError as exc:
            ended = repr(exc)
    assert "ExitError" not in ended, "the old connection hung until the read timeout"
    assert (camera.port, camera.pid != pid) == (port, True)
    _, after = coded_pictures(camera.url("/main"), options=TCP, timeout=(10, 5), max_pictures=10)
    assert match_pictures(before, source) == 0
    assert match_pictures(after, source) == 0  # a new timeline from the file's start


def test_a_late_mount_joins_the_running_timeline(
    camera_media: CameraMediaCache, rtsp_camera: StartRtspCamera
) -> None:
    """Main and sub opened 2.5 s apart still show the same frame at the same moment."""
    main, sub = camera_media.pair(main=(640, 360), sub=(320, 180), seconds=8.0)
    camera = rtsp_camera({"/main": main, "/sub": sub}, loop=True)
    seen: dict[str, dict[int, float]] = {"/main": {}, "/sub": {}}  # frame number -> arrival

    def watch(mount: str, frames: int) -> None:
        with av.open(camera.url(mount), options=TCP, timeout=(10, 10)) as container:
            for frame in container.decode(video=0):
                seen[mount][read_frame_number(frame.to_ndarray(format="bgr24"))] = time.monotonic()
                if len(seen[mount]) >= frames:
                    return

    main_watcher = threading.Thread(target=watch, args=("/main", 105))
    main_watcher.start()
    time.sleep(2.5)
    watch("/sub", 45)
    main_watcher.join(30)

    assert len([e for e in camera.events() if e.startswith("EPOCH")]) == 1
    first_sub = min(seen["/sub"])
    assert first_sub >= 30 and first_sub % main.gop == 0, "joins at a keyframe, mid-timeline"
    # Skip what the readers buffered while opening (about 2 s of packets, arriving at once).
    common = sorted(set(seen["/main"]) & set(seen["/sub"]))[30:]
    assert len(common) >= 10
    lag = statistics.median(seen["/sub"][n] - seen["/main"][n] for n in common)
    assert abs(lag) < 0.5, f"the sub stream runs {lag:.2f} s behind the main one"


def _first_packets(
    container: av.container.InputContainer, video_packets: int
) -> Iterator[av.Packet]:
    """Packets of every stream until ``video_packets`` video packets with data have come."""
    count = 0
    for packet in container.demux():
        if not packet.size:
            continue
        yield packet
        count += packet.stream.type == "video"
        if count >= video_packets:
            return


def test_clients_of_one_mount_share_the_stream(
    camera_media: CameraMediaCache, rtsp_camera: StartRtspCamera
) -> None:
    """A second client joins the running stream mid-GOP and gets every picture from there."""
    video = small_video(camera_media)
    camera = rtsp_camera({"/main": video}, loop=True)
    _, source = coded_pictures(video.path)
    with (
        av.open(camera.url("/main"), options=TCP, timeout=(10, 10)) as first,
        av.open(camera.url("/main"), options=TCP, timeout=(10, 10)) as second,
    ):
        early = read_pictures(first.demux(video=0), 40)
        late = read_pictures(second.demux(video=0), 40)
    assert match_pictures(early, source, loop=True) == 0
    assert match_pictures(late, source, loop=True) > 0  # the shared stream, not a new one
    assert len([e for e in camera.events() if e.startswith("PLAY")]) == 1


def test_a_mount_of_two_files_changes_parameters_mid_session(
    camera_media: CameraMediaCache, rtsp_camera: StartRtspCamera
) -> None:
    """As a camera whose resolution was changed: new SPS/PPS in the same session."""
    small = small_video(camera_media, seconds=2.0)  # 30 pictures, one GOP
    large = camera_media(width=640, height=360, seconds=2.0)
    camera = rtsp_camera({"/main": [small, large]})
    with av.open(camera.url("/main"), options=TCP, timeout=(10, 10)) as container:
        sizes, packets = [], []
        for packet in container.demux(video=0):
            packets.append(bytes(packet))
            sizes += [(f.width, f.height) for f in packet.decode()]
            if len(sizes) >= 45:
                break
    _, first = coded_pictures(small.path)
    _, second = coded_pictures(large.path)
    served = [split_nal_units(p, None) for p in packets if p]
    slices = [tuple(n for n in units if is_vcl(n, "h264")) for units in served]
    assert slices[:30] == [p.slices for p in first]
    assert slices[30:45] == [p.slices for p in second[:15]]
    assert sizes[:30] == [(320, 180)] * 30 and sizes[30:45] == [(640, 360)] * 15
    sps = [units[0] for units in served if nal_type(units[0], "h264") == 7]
    assert len(set(sps)) == 2, "the second file's SPS comes in-band"
