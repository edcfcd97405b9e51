"""Sources without a camera: the demo, files written here, MJPEG served on loopback."""

from __future__ import annotations

import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from motiond.capture.sources import (
    DemoSource,
    FileSource,
    HttpSource,
    MjpegHttpSource,
    MultipartReader,
    OpenCVSource,
    PyAVSource,
    Source,
    SourceError,
    open_source,
    redact_url,
)
from motiond.config import CaptureConfig
from motiond.frames import Frame, jpeg_size
from testbed.mjpeg_server import MjpegServer, jpeg_frames_from_video

VIDEO_FRAMES = 30
VIDEO_FPS = 10.0
WIDTH, HEIGHT = 160, 120


def capture(source: str, kind: str = "url", **options: object) -> CaptureConfig:
    return CaptureConfig(source=source, kind=kind, **options)  # type: ignore[arg-type]


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def opened() -> Iterator[Callable[[Source], Source]]:
    """Opens a source and closes it (twice: close is idempotent) after the test."""
    sources: list[Source] = []

    def open_it(source: Source) -> Source:
        sources.append(source)
        source.open()
        return source

    yield open_it
    for source in sources:
        source.close()
        source.close()


def _numbered_image(index: int) -> np.ndarray:
    """A picture whose gray level encodes ``index``, with a white corner to check orientation."""
    image = np.full((HEIGHT, WIDTH, 3), 20 + index * 7, np.uint8)
    image[:30, :20] = 255
    return image


@pytest.fixture(scope="module")
def jpegs() -> list[bytes]:
    return [cv2.imencode(".jpg", _numbered_image(i))[1].tobytes() for i in range(6)]


@pytest.fixture
def serve() -> Iterator[Callable[..., MjpegServer]]:
    servers: list[MjpegServer] = []

    def start(frames: list[bytes], fps: float = 50.0, **options: object) -> MjpegServer:
        server = MjpegServer(frames, fps, **options)  # type: ignore[arg-type]
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "numbered.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), VIDEO_FPS, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for index in range(VIDEO_FRAMES):
        writer.write(_numbered_image(index))
    writer.release()
    return path


def _level(frame: Frame) -> int:
    """The index _numbered_image() encoded, read back from the frame's center."""
    center = frame.bgr()[frame.height // 2, frame.width // 2].mean()
    return round((float(center) - 20) / 7)


def _read_all(source: Source, limit: int = 1000) -> list[Frame]:
    frames: list[Frame] = []
    while (frame := source.read()) is not None and len(frames) < limit:
        frames.append(frame)
    return frames


# ---------------------------------------------------------------------------------------------
# Demo


def test_demo_frames_have_the_configured_size_and_pace(opened, stop) -> None:
    source = opened(DemoSource(capture("demo", "demo", width=WIDTH, height=HEIGHT, fps=20.0), stop))
    started = time.monotonic()
    frames = [source.read() for _ in range(11)]
    elapsed = time.monotonic() - started
    assert all(f is not None for f in frames)
    assert [f.seq for f in frames if f] == list(range(11))
    assert {(f.width, f.height, f.image.shape) for f in frames if f and f.image is not None} == {
        (WIDTH, HEIGHT, (HEIGHT, WIDTH, 3))
    }
    assert 0.4 <= elapsed <= 1.5  # 10 intervals of 50 ms, on a noisy machine
    monos = [f.mono for f in frames if f]
    assert monos == sorted(monos)
    assert source.realtime and source.description == "demo"


def test_demo_defaults_to_640x480_at_15_fps(stop) -> None:
    source = DemoSource(capture("demo", "demo"), stop)
    assert (source.width, source.height, source.fps) == (640, 480, 15.0)


def test_demo_has_sensor_noise_but_a_static_scene(opened, stop) -> None:
    source = opened(DemoSource(capture("demo", "demo", fps=30.0), stop, first_object_after=60))
    first, second = source.read(), source.read()
    assert first is not None and second is not None
    diff = cv2.absdiff(first.bgr(), second.bgr())
    assert 0.5 < float(diff.mean()) < 8
    assert np.count_nonzero(diff > 40) < diff.size * 0.001


def test_demo_object_crosses_the_frame(opened, stop) -> None:
    demo = DemoSource(
        capture("demo", "demo", width=WIDTH, height=HEIGHT, fps=30.0),
        stop,
        seed=3,
        first_object_after=0.3,
        crossing_time=0.8,
    )
    source = opened(demo)
    background = source.read()
    assert background is not None
    changed_while_active: list[int] = []
    changed_while_idle: list[int] = []
    deadline = time.monotonic() + 1.6
    while time.monotonic() < deadline:
        frame = source.read()
        assert frame is not None
        changed = int(np.count_nonzero(cv2.absdiff(frame.bgr(), background.bgr()).max(axis=2) > 40))
        active = demo.motion_active(frame.mono)
        (changed_while_active if active else changed_while_idle).append(changed)
    assert changed_while_active and max(changed_while_active) > WIDTH * HEIGHT * 0.005
    assert max(changed_while_idle) < WIDTH * HEIGHT * 0.002


def test_demo_schedules_first_object_after_5s_then_every_20_to_30s(opened, stop) -> None:
    demo = DemoSource(capture("demo", "demo", width=WIDTH, height=HEIGHT), stop, seed=11)
    opened(demo)
    opened_at = time.monotonic()  # a hair after the source's own
    steps = np.arange(0.0, 120.0, 0.05)
    active = [demo.motion_active(opened_at + t) for t in steps]
    starts = [float(steps[i]) for i in range(1, len(steps)) if active[i] and not active[i - 1]]
    assert 4.9 <= starts[0] <= 5.1
    gaps = np.diff(starts)
    assert len(gaps) >= 3 and all(19.9 <= gap <= 30.1 for gap in gaps)
    crossing = sum(active[: int(20 / 0.05)]) * 0.05
    assert 3.0 <= crossing <= 4.0


def test_demo_stop_interrupts_pacing(opened, stop) -> None:
    source = opened(DemoSource(capture("demo", "demo", width=WIDTH, height=HEIGHT, fps=0.5), stop))
    assert source.read() is not None  # the first frame is due at once, the next in 2 s
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    assert source.read() is None
    assert time.monotonic() - started < 1.0


# ---------------------------------------------------------------------------------------------
# Files


def test_file_fast_reads_every_frame_with_the_files_timestamps(opened, stop, video) -> None:
    source = opened(FileSource(capture(str(video), "file", pacing="fast"), stop))
    assert not source.realtime
    frames = _read_all(source)
    assert len(frames) == VIDEO_FRAMES
    assert [f.seq for f in frames] == list(range(VIDEO_FRAMES))
    assert [_level(f) for f in frames] == list(range(VIDEO_FRAMES))
    for index, frame in enumerate(frames):
        assert frame.mono == pytest.approx(index / VIDEO_FPS, abs=1e-6)
        assert frame.wall - frame.mono == pytest.approx(frames[0].wall - frames[0].mono)
    assert source.read() is None  # and it stays ended


def test_file_loop_wraps_with_increasing_timestamps(opened, stop, video) -> None:
    source = opened(FileSource(capture(str(video), "file", pacing="fast", loop=True), stop))
    frames = [source.read() for _ in range(VIDEO_FRAMES * 2 + 15)]
    assert all(f is not None for f in frames)
    levels = [_level(f) for f in frames if f]
    assert levels == [i % VIDEO_FRAMES for i in range(len(frames))]
    for index, frame in enumerate(frames):
        assert frame is not None
        assert frame.mono == pytest.approx(index / VIDEO_FPS, abs=1e-6)


def test_file_realtime_is_paced_at_the_files_fps(opened, stop, video) -> None:
    source = opened(FileSource(capture(str(video), "file"), stop))
    assert source.realtime
    started = time.monotonic()
    frames = [source.read() for _ in range(6)]
    elapsed = time.monotonic() - started
    assert all(f is not None for f in frames)
    assert 0.4 <= elapsed <= 2.0  # 5 intervals of 100 ms


@pytest.mark.parametrize(
    ("rotate", "flip", "expected"),
    [
        (90, "none", lambda im: cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE)),
        (270, "none", lambda im: cv2.rotate(im, cv2.ROTATE_90_COUNTERCLOCKWISE)),
        (180, "none", lambda im: cv2.rotate(im, cv2.ROTATE_180)),
        (0, "horizontal", lambda im: cv2.flip(im, 1)),
        (0, "vertical", lambda im: cv2.flip(im, 0)),
        (90, "horizontal", lambda im: cv2.flip(cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE), 1)),
    ],
)
def test_file_rotate_and_flip(opened, stop, video, rotate, flip, expected) -> None:
    plain = opened(FileSource(capture(str(video), "file", pacing="fast"), stop)).read()
    turned = opened(
        FileSource(capture(str(video), "file", pacing="fast", rotate=rotate, flip=flip), stop)
    ).read()
    assert plain is not None and turned is not None
    assert np.array_equal(turned.bgr(), expected(plain.bgr()))
    assert (turned.width, turned.height) == (turned.bgr().shape[1], turned.bgr().shape[0])


def test_file_that_vanished_fails_to_open(stop, tmp_path) -> None:
    source = FileSource(capture(str(tmp_path / "gone.avi"), "file"), stop)
    with pytest.raises(SourceError, match=r"cannot open video file .*gone\.avi"):
        source.open()


# ---------------------------------------------------------------------------------------------
# MJPEG over HTTP


def _assert_consecutive(frames: list[Frame | None], served: list[bytes]) -> None:
    """Each frame carries the served bytes, in the order served (starting anywhere)."""
    jpegs = [f.jpeg if f is not None else None for f in frames]
    assert jpegs[0] is not None
    start = served.index(jpegs[0])
    assert jpegs == [served[(start + i) % len(served)] for i in range(len(frames))]


@pytest.mark.parametrize("send_content_length", [True, False])
def test_mjpeg_frames_are_the_served_bytes(opened, stop, serve, jpegs, send_content_length) -> None:
    server = serve(jpegs, send_content_length=send_content_length)
    source = opened(open_source(capture(server.url), stop))
    assert isinstance(source, HttpSource)  # MJPEG, by its Content-Type
    frames = [source.read() for _ in range(8)]
    assert all(f is not None and f.image is None for f in frames)
    _assert_consecutive(frames, jpegs)
    assert [f.seq for f in frames if f] == list(range(8))
    assert {(f.width, f.height) for f in frames if f} == {(WIDTH, HEIGHT)}
    assert source.description == f"{server.url} (MJPEG)"


def test_mjpeg_stall_raises_within_the_read_timeout(opened, stop, serve, jpegs) -> None:
    server = serve(jpegs)
    source = opened(open_source(capture(server.url, read_timeout=0.5), stop))
    assert source.read() is not None
    server.stall()
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"no frame for 0\.5 s"):
        for _ in range(5):  # a frame or two may already be on the way
            source.read()
    assert 0.3 <= time.monotonic() - started <= 2.0


def test_mjpeg_dropped_connection_ends_the_stream(opened, stop, serve, jpegs) -> None:
    server = serve(jpegs)
    source = opened(open_source(capture(server.url, read_timeout=2.0), stop))
    assert source.read() is not None
    server.drop_connections()
    started = time.monotonic()
    outcome: object = None
    for _ in range(5):
        try:
            outcome = source.read()
        except SourceError as exc:
            outcome = exc
        if not isinstance(outcome, Frame):
            break
    assert outcome is None or isinstance(outcome, SourceError)
    assert time.monotonic() - started < 1.0


def test_mjpeg_unavailable_camera_fails_to_open_with_the_status(stop, serve, jpegs) -> None:
    server = serve(jpegs)
    server.set_available(False)
    source = open_source(capture(server.url), stop)
    with pytest.raises(SourceError, match="HTTP 503"):
        source.open()
    server.set_available(True)
    source.open()
    assert source.read() is not None
    source.close()


def test_mjpeg_stalled_server_fails_to_open_within_the_open_timeout(stop, serve, jpegs) -> None:
    server = serve(jpegs)
    server.stall()
    source = open_source(capture(server.url, open_timeout=0.5), stop)
    started = time.monotonic()
    with pytest.raises(SourceError, match="timed out"):
        source.open()
    assert time.monotonic() - started < 2.0


def test_mjpeg_garbled_part_is_skipped_and_counted(opened, stop, serve, jpegs) -> None:
    server = serve([jpegs[0], b"<html>not a jpeg</html>", jpegs[1]])
    source = opened(open_source(capture(server.url), stop))
    frames = [source.read() for _ in range(5)]
    assert all(f is not None and f.jpeg in jpegs[:2] for f in frames)
    assert isinstance(source, HttpSource)
    assert source.garbled_parts >= 2


def test_mjpeg_snapshot_url_is_polled_at_fps(opened, stop, serve, jpegs) -> None:
    server = serve(jpegs)
    source = opened(open_source(capture(server.snapshot_url, fps=10.0), stop))
    started = time.monotonic()
    frames = [source.read() for _ in range(4)]
    elapsed = time.monotonic() - started
    assert isinstance(source, HttpSource)
    assert isinstance(source.reader, MjpegHttpSource) and source.reader.snapshot_mode
    assert "snapshots" in source.description
    _assert_consecutive(frames, jpegs)
    assert 0.25 <= elapsed <= 2.0  # 3 polls 100 ms apart
    assert server.frames_sent == 4


def test_mjpeg_basic_auth_from_the_url(opened, stop, serve, jpegs) -> None:
    server = serve(jpegs, credentials=("viewer", "p@ss:word"))
    with pytest.raises(SourceError, match="HTTP 401"):
        open_source(capture(server.url), stop).open()
    url = server.url.replace("http://", "http://viewer:p%40ss%3Aword@")
    source = opened(open_source(capture(url), stop))
    assert source.read() is not None
    assert "p%40ss" not in source.description and "viewer:***@" in source.description


def test_mjpeg_wrong_content_type_or_path_fails_to_open(stop, serve, jpegs) -> None:
    server = serve(jpegs)
    base = server.url.removesuffix("stream.mjpg")
    with pytest.raises(SourceError, match="unexpected content type 'text/html"):
        open_source(capture(base), stop).open()
    with pytest.raises(SourceError, match="HTTP 404"):
        open_source(capture(base + "nothing"), stop).open()


def test_mjpeg_refused_connection_fails_to_open(stop) -> None:
    source = open_source(capture(f"http://127.0.0.1:{_closed_port()}/stream.mjpg"), stop)
    with pytest.raises(SourceError, match="cannot get"):
        source.open()


def test_mjpeg_rotation_decodes_the_jpeg(opened, stop, serve, jpegs) -> None:
    server = serve(jpegs)
    source = opened(open_source(capture(server.url, rotate=90), stop))
    frame = source.read()
    assert frame is not None and frame.jpeg is None and frame.image is not None
    assert frame.image.shape == (WIDTH, HEIGHT, 3)
    assert frame.image[5, -5].min() > 200  # the white top-left corner is now top-right


def _multipart(parts: list[bytes], boundary: bytes, *, lengths: bool, newline: bytes) -> bytes:
    stream = b"preamble to ignore" + newline
    for body in parts:
        stream += b"--" + boundary + newline + b"Content-Type: image/jpeg" + newline
        if lengths:
            stream += b"Content-Length: %d" % len(body) + newline
        stream += newline + body + newline
    return stream + b"--" + boundary + b"--" + newline


@pytest.mark.parametrize("chunk", [1, 7, 1000, 1 << 20])
@pytest.mark.parametrize("lengths", [True, False])
@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
def test_multipart_reader_splits_parts_however_bytes_arrive(jpegs, chunk, lengths, newline) -> None:
    stream = _multipart(jpegs[:3], b"cam", lengths=lengths, newline=newline)
    reader = MultipartReader(b"cam")
    parts = []
    for offset in range(0, len(stream), chunk):
        reader.feed(stream[offset : offset + chunk])
        while (part := reader.next_part()) is not None:
            parts.append(part)
    assert parts == jpegs[:3]
    assert reader.finished


@pytest.mark.parametrize(
    ("declared", "written"), [(None, b"cam"), (b"--cam", b"cam"), (b"--cam", b"--cam")]
)
def test_multipart_reader_copes_with_sloppy_boundaries(jpegs, declared, written) -> None:
    stream = _multipart(jpegs[:2], written, lengths=False, newline=b"\r\n").removeprefix(
        b"preamble to ignore"
    )
    reader = MultipartReader(declared)
    reader.feed(stream)
    assert [reader.next_part(), reader.next_part()] == jpegs[:2]


# ---------------------------------------------------------------------------------------------
# V4L2 and RTSP through OpenCV


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_v4l2_missing_device_fails_quickly(stop) -> None:
    path = "/dev/v4l/by-id/usb-motiond-test-missing-video-index0"
    source = open_source(capture(path, "v4l2"), stop)
    assert isinstance(source, OpenCVSource) and source.description == path
    started = time.monotonic()
    with pytest.raises(SourceError, match=f"cannot open {path}"):
        source.open()
    assert time.monotonic() - started < 1.0


def test_rtsp_on_a_closed_port_fails_within_the_open_timeout(stop) -> None:
    source = open_source(capture(f"rtsp://127.0.0.1:{_closed_port()}/live", open_timeout=1.0), stop)
    assert isinstance(source, PyAVSource)
    started = time.monotonic()
    with pytest.raises(SourceError, match="cannot open rtsp://"):
        source.open()
    assert time.monotonic() - started < 3.0


def test_opencv_url_reads_frames_then_ends_when_the_server_drops(
    opened, stop, serve, jpegs
) -> None:
    server = serve(jpegs, fps=30.0)
    source = opened(OpenCVSource(capture(server.url, open_timeout=3.0, read_timeout=2.0), stop))
    frame = source.read()
    assert frame is not None and frame.image is not None and frame.image.shape == (HEIGHT, WIDTH, 3)
    server.drop_connections()
    for _ in range(100):  # FFmpeg may hand out what it buffered first
        try:
            if source.read() is None:
                break
        except SourceError:
            break
    else:
        pytest.fail("the stream did not end")


# ---------------------------------------------------------------------------------------------
# Helpers


@pytest.mark.parametrize(
    ("kind", "location", "expected"),
    [
        ("demo", "demo", DemoSource),
        ("file", "clip.avi", FileSource),
        ("url", "http://cam/video.mjpg", HttpSource),
        ("url", "HTTPS://cam/video.mjpg", HttpSource),
        ("url", "rtsp://cam/live", PyAVSource),
        ("url", "rtsps://cam/live", PyAVSource),
        ("v4l2", "/dev/video0", OpenCVSource),
    ],
)
def test_open_source_picks_the_implementation(stop, kind, location, expected) -> None:
    assert type(open_source(capture(location, kind), stop)) is expected


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("rtsp://admin:secret@10.0.0.5:554/s1") == "rtsp://admin:***@10.0.0.5:554/s1"
    assert redact_url("http://10.0.0.5/video") == "http://10.0.0.5/video"


@pytest.mark.parametrize("flags", [[], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]])
def test_jpeg_size_reads_the_header(flags) -> None:
    data = cv2.imencode(".jpg", np.zeros((37, 91, 3), np.uint8), flags)[1].tobytes()
    assert jpeg_size(data) == (91, 37)
    assert jpeg_size(data[:20]) is None
    assert jpeg_size(b"\x89PNG\r\n\x1a\n") is None


def test_jpeg_frames_from_video_resizes_and_limits(video) -> None:
    frames = jpeg_frames_from_video(str(video), size=(80, 60), quality=70, limit=5)
    assert len(frames) == 5
    assert {jpeg_size(f) for f in frames} == {(80, 60)}


def test_mjpeg_server_cli_serves_until_sigterm(stop, video) -> None:
    script = Path(__file__).resolve().parents[2] / "testbed" / "mjpeg_server.py"
    command = [sys.executable, str(script), "--input", str(video), "--size", "80x60", "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as server:
        try:
            assert server.stdout is not None
            ready, _, _ = select.select([server.stdout], [], [], 20.0)
            assert ready, "the server printed no URL"
            url = server.stdout.readline().decode().strip()
            assert url.startswith("http://127.0.0.1:") and url.endswith("/stream.mjpg")
            source = open_source(capture(url), stop)
            source.open()
            frame = source.read()
            source.close()
            assert frame is not None and (frame.width, frame.height) == (80, 60)
        finally:
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=10) == 0
