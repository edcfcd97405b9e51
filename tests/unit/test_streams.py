"""The pure parts of IP-camera recording: stream clocks, NAL units, what is copied, config."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from motiond.capture.nal import nal_spans, nal_units, parameter_sets, vcl_units
from motiond.capture.streamclock import RESYNC_SECONDS, StreamClock
from motiond.config import ConfigError, MotionConfig, OverlayConfig, RecordConfig, parse_config
from motiond.detect.boxes import MotionResult
from motiond.detect.judge import ClipJudge
from motiond.detect.tamper import SceneReport, TamperState
from motiond.record.recorder import copies

SPS = b"\x67\x4d\x40\x1f\xda\x01"
PPS = b"\x68\xef\x3c\x80"
IDR = b"\x65\x88\x84\x00\x33"
SLICE = b"\x41\x9a\x26\x21"


# -- StreamClock ------------------------------------------------------------------------------


def test_a_steady_stream_is_timed_by_its_stamps_not_by_arrival_jitter() -> None:
    clock = StreamClock()
    jitter = itertools.cycle([0.0, 0.03, 0.01, 0.05, 0.002])
    times = [clock.map(i / 15, 100.0 + i / 15 + next(jitter)) for i in range(60)]
    steps = [b - a for a, b in itertools.pairwise(times)]
    assert steps == pytest.approx([1 / 15] * 59, abs=1e-9)
    assert times[0] == pytest.approx(100.0)


def test_a_burst_at_open_is_squashed_to_arrival_then_stamps_take_over() -> None:
    # The player's probing holds 20 pictures back and hands them over at once.
    clock = StreamClock()
    burst = [clock.map(i / 15, 101.3) for i in range(20)]
    later = [clock.map(i / 15, 100.0 + i / 15 + 0.01) for i in range(20, 40)]
    assert all(t <= 101.3 + 20 * 1e-4 for t in burst)  # squashed: 0.1 ms apart
    assert all(b > a for a, b in itertools.pairwise(burst + later))
    assert later[-1] - later[0] == pytest.approx(19 / 15, abs=1e-9)


def test_gaps_in_the_stamps_are_kept() -> None:
    clock = StreamClock()
    first = [clock.map(i / 10, 50.0 + i / 10) for i in range(10)]
    after_gap = clock.map(3.0, 53.0)  # the camera dropped 2 s of pictures
    assert after_gap - first[-1] == pytest.approx(2.1)


def test_a_camera_clock_reset_restarts_the_mapping_without_going_back() -> None:
    clock = StreamClock()
    before = [clock.map(1000.0 + i / 10, 10.0 + i / 10) for i in range(10)]
    after = [clock.map(i / 10, 11.5 + i / 10) for i in range(10)]  # rebooted: stamps from 0
    assert after[0] > before[-1] and after[0] == pytest.approx(11.5)
    assert all(b > a for a, b in itertools.pairwise(after))


def test_a_camera_clock_that_stops_while_time_goes_on_resyncs() -> None:
    clock = StreamClock()
    clock.map(5.0, 20.0)
    late = clock.map(5.1, 20.1 + RESYNC_SECONDS + 1.0)  # stamps paused, pictures did not
    assert late == pytest.approx(20.1 + RESYNC_SECONDS + 1.0) and clock.resyncs == 1


def test_unknown_stamps_take_the_arrival_time() -> None:
    clock = StreamClock()
    assert clock.map(None, 7.0) == 7.0
    assert clock.map(None, 7.0) > 7.0  # strictly increasing, even then


@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
            st.floats(0.0, 0.5, allow_nan=False),
        ),
        min_size=1,
        max_size=200,
    )
)
def test_mapped_times_always_increase_and_never_run_ahead_of_arrival(
    packets: list[tuple[float | None, float]],
) -> None:
    clock = StreamClock()
    arrival = 1000.0
    previous = float("-inf")
    for stamp, wait in packets:
        arrival += wait
        mapped = clock.map(stamp, arrival)
        assert mapped > previous
        # At or before arrival, unless only the strict increase pushed it (by 0.1 ms steps).
        assert mapped <= max(arrival, previous + 1e-3) + 1e-6
        previous = mapped


# -- NAL units --------------------------------------------------------------------------------


def annex_b(*units: bytes, long: bool = True) -> bytes:
    start = b"\x00\x00\x00\x01" if long else b"\x00\x00\x01"
    return b"".join(start + unit for unit in units)


def test_nal_units_split_on_both_start_code_lengths() -> None:
    data = annex_b(SPS, PPS) + annex_b(IDR, long=False)
    assert list(nal_units(data)) == [SPS, PPS, IDR]


def reference_nal_units(data: bytes) -> list[bytes]:
    """The split spelt out: a unit runs from after a start code to the next one, without the
    zero bytes in front of that one; empty units are none."""
    units = []
    start = data.find(b"\x00\x00\x01")
    while start >= 0:
        following = data.find(b"\x00\x00\x01", start + 3)
        unit = data[start + 3 : following] if following >= 0 else data[start + 3 :]
        if following >= 0:
            unit = unit.rstrip(b"\x00")
        if unit:
            units.append(unit)
        start = following
    return units


@given(st.lists(st.sampled_from([0, 0, 0, 1, 3, 0x65, 0x41, 0x67]), max_size=40).map(bytes))
@example(b"\x00\x00\x01\x00\x00\x00\x01\x65\x00\x00\x00\x00\x01\x41\x00\x00\x01")
@example(b"\x65\x00\x00\x01\x00\x00\x01\x00\x00\x03\x01\x00")
def test_nal_units_agree_with_the_split_spelt_out_on_awkward_buffers(data: bytes) -> None:
    """Runs of zeros, start codes back to back or at the end, garbage in front, emulation
    prevention bytes (00 00 03): ``nal_spans`` gives exactly those units."""
    assert list(nal_units(data)) == reference_nal_units(data)
    assert [data[b:e] for b, e in nal_spans(data)] == reference_nal_units(data)


def test_parameter_sets_are_picked_out_of_a_keyframe() -> None:
    keyframe = annex_b(b"\x09\xf0", SPS, PPS, b"\x06\x05\x01", IDR)  # AUD, SEI around them
    assert parameter_sets("h264", keyframe) == annex_b(SPS, PPS)
    assert parameter_sets("h264", annex_b(SLICE)) == b""
    assert vcl_units("h264", keyframe) == [IDR]
    hevc_vps, hevc_sps, hevc_pps, hevc_idr = (
        b"\x40\x01\x0c",
        b"\x42\x01\x01",
        b"\x44\x01\xc1",
        b"\x26\x01\xaf",
    )
    keyframe = annex_b(hevc_vps, hevc_sps, hevc_pps, hevc_idr)
    assert parameter_sets("hevc", keyframe) == annex_b(hevc_vps, hevc_sps, hevc_pps)
    assert vcl_units("hevc", keyframe) == [hevc_idr]
    assert parameter_sets("mpeg4", keyframe) == b""


# -- what is copied ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "copy_hevc", "codec", "expected"),
    [
        ("auto", False, "h264", True),
        ("auto", False, "hevc", False),
        ("auto", True, "hevc", True),
        ("auto", False, "mpeg4", False),
        ("auto", False, "mjpeg", False),
        ("copy", False, "hevc", True),
        ("copy", False, "mpeg4", False),
        ("transcode", True, "h264", False),
    ],
)
def test_auto_copies_what_every_browser_plays(
    mode: str, copy_hevc: bool, codec: str, expected: bool
) -> None:
    record = RecordConfig(mode=mode, copy_hevc=copy_hevc)  # type: ignore[arg-type]
    assert copies(record, codec) is expected


def test_burned_in_text_needs_a_transcode() -> None:
    record = RecordConfig(overlay=OverlayConfig(timestamp=True))
    assert not copies(record, "h264")


# -- config -----------------------------------------------------------------------------------


def camera_yaml(source: str, capture: str = "", record: str = "") -> str:
    return (
        f"cameras:\n  - name: door\n    source: {source}\n"
        f"    capture: {{{capture}}}\n    record: {{{record}}}\n"
    )


def test_ip_camera_keys_are_read_with_their_defaults() -> None:
    config = parse_config(camera_yaml("rtsp://cam/main"))
    camera = config.cameras[0]
    assert camera.capture.rtsp_transport == "tcp" and camera.capture.detect_source is None
    assert (camera.record.mode, camera.record.copy_hevc, camera.record.audio) == (
        "auto",
        False,
        False,
    )
    config = parse_config(
        camera_yaml(
            "rtsp://cam/main",
            "rtsp_transport: udp, detect_source: 'rtsp://u:p@cam/sub'",
            "mode: copy, copy_hevc: true, audio: true",
        )
    )
    camera = config.cameras[0]
    assert camera.capture.rtsp_transport == "udp"
    assert camera.capture.detect_source == "rtsp://u:p@cam/sub"
    assert (camera.record.mode, camera.record.copy_hevc, camera.record.audio) == (
        "copy",
        True,
        True,
    )


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (camera_yaml("rtsp://cam/main", "rtsp_transport: http"), "capture.rtsp_transport", "tcp"),
        (camera_yaml("rtsp://cam/main", "detect_source: 5"), "capture.detect_source", "URL"),
        (
            camera_yaml("rtsp://cam/main", "detect_source: /dev/video0"),
            "capture.detect_source",
            "URL",
        ),
        (
            camera_yaml("demo", "detect_source: 'rtsp://cam/sub'"),
            "capture.detect_source",
            "network",
        ),
        (camera_yaml("rtsp://cam/main", "", "mode: passthrough"), "record.mode", "auto"),
        (camera_yaml("demo", "", "mode: copy"), "record.mode", "copy needs"),
        (
            camera_yaml("rtsp://cam/main", "", "mode: copy, overlay: {name: true}"),
            "record.overlay",
            "transcode",
        ),
        (camera_yaml("rtsp://cam/main", "", "audio: yes please"), "record.audio", "true or false"),
    ],
)
def test_bad_ip_camera_keys_name_the_key(text: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(text)
    message = str(raised.value)
    assert f"cameras[0].{key}" in message and reason in message, message


# -- snapshot candidates on a sub stream's detection thread -----------------------------------
# The detection thread runs the trigger's own rule (a ClipJudge, ``Decision.takes_still``) to
# know which pictures to JPEG-encode.


def candidate_judge(warmup: float = 0.0) -> tuple[ClipJudge, MotionConfig]:
    motion = MotionConfig(threshold=0.01, stable_frames=3, warmup=warmup)
    return ClipJudge(motion, max_clip=600.0), motion


def test_snapshot_candidates_follow_the_triggers_start_and_peaks() -> None:
    judge, motion = candidate_judge()
    now = itertools.count()

    def wants(delta: float, lighting: bool = False) -> bool:
        result = MotionResult(delta=delta, lighting=lighting, boxes=())
        return judge.judge(result, None, motion, float(next(now))).takes_still

    # A start, a larger change (a peak), smaller ones (not), calm too short to end the clip.
    assert [wants(d) for d in (0.02, 0.05, 0.03, 0.0, 0.0, 0.04, 0.06)] == [
        True, True, False, False, False, False, True,
    ]  # fmt: skip
    # A calm spell of stable_frames ends it: the next change is a new clip's start.
    assert [wants(d) for d in (0.0, 0.0, 0.0, 0.02)] == [False, False, False, True]
    assert [wants(d) for d in (0.0, 0.0, 0.0)] == [False, False, False]
    # Lighting is never a candidate, and quiet pictures never are.
    assert not wants(0.5, lighting=True) and not wants(0.005)


def test_snapshot_candidates_include_the_picture_that_became_suspect_of_tampering() -> None:
    judge, motion = candidate_judge()
    now = itertools.count()

    def wants(delta: float, suspect: bool) -> bool:
        tamper = TamperState(condition="covered", suspect=True) if suspect else TamperState()
        scene = SceneReport(mode="day", switched=False, settling=False, tamper=tamper)
        result = MotionResult(delta=delta, lighting=False, boxes=())
        return judge.judge(result, scene, motion, float(next(now))).takes_still

    # A covered lens changes nothing from one picture to the next: the trigger starts a clip
    # when the camera becomes suspect, so that picture is its start snapshot; no other one is.
    assert [wants(0.0, s) for s in (False, True, True, True, False, True)] == [
        False, True, False, False, False, True,
    ]  # fmt: skip


def test_snapshot_candidates_wait_for_the_warm_up_as_the_trigger_does() -> None:
    judge, motion = candidate_judge(warmup=2.0)
    judge.reopened(10.0)
    result = MotionResult(delta=0.05, lighting=False, boxes=())
    assert not judge.judge(result, None, motion, 11.0).takes_still
    assert judge.judge(result, None, motion, 12.0).takes_still


def test_clip_kept_once_the_clip_has_its_changed_frames_or_was_tampered_with() -> None:
    """What caps the detection rate (``clip_detect_fps``) on the thread that detects."""
    motion = MotionConfig(threshold=0.01, stable_frames=3, min_changed_frames=3, warmup=0.0)
    judge = ClipJudge(motion, max_clip=600.0)
    now = itertools.count()

    def kept_after(delta: float, scene: SceneReport | None = None) -> bool:
        result = MotionResult(delta=delta, lighting=False, boxes=())
        judge.judge(result, scene, motion, float(next(now)))
        return judge.clip_kept

    # Idle, then a clip: kept from its third changed frame, until it stops.
    assert [kept_after(d) for d in (0.0, 0.02, 0.02, 0.0, 0.02, 0.03, 0.0, 0.0, 0.0)] == [
        False, False, False, False, True, True, True, True, False,
    ]  # fmt: skip
    # A clip started by tampering is kept once it is confirmed, whatever its changed frames
    # (here one, as the picture confirmed changes).
    suspect = SceneReport(
        mode="day",
        switched=False,
        settling=False,
        tamper=TamperState(condition="covered", suspect=True),
    )
    tampered = SceneReport(
        mode="day",
        switched=False,
        settling=False,
        tamper=TamperState(condition="covered", tampered="covered", tampered_since=20.0),
    )
    assert not kept_after(0.0, suspect) and judge.recording
    assert kept_after(0.02, tampered) and judge.trigger.clip is not None
    assert judge.trigger.clip.changed_frames == 1
