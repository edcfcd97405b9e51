"""Camera faults end to end: the real daemon against an HTTP MJPEG camera served by the test.

The camera stalls, drops the connection, goes away and comes back; it sends a black frame or a
garbled one. Each time the daemon must say so (API, /healthz, /metrics, log, hooks), come back
by itself, and never take the fault for motion. A clip in progress when the camera goes away is
finished and kept.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from motiond.backoff import RECONNECT, Backoff
from motiond.capture.camera import CameraWorker
from motiond.capture.sources import open_source
from motiond.config import CameraConfig, CaptureConfig, MotionConfig, RecordConfig
from motiond.store.layout import Storage
from testbed.mjpeg_server import FrameSupply, MjpegServer
from testbed.synthetic import background, with_noise, with_square
from tests.fixtures.daemon import RunningDaemon, sidecars
from tests.fixtures.mjpeg import FPS, HEIGHT, WIDTH, encode, still_jpegs
from tests.fixtures.video import decode_clip

# Appends its last argument to the file named by the one before (hooks run without a shell).
HOOK_SCRIPT = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + chr(10))"


class SwitchableScene:
    """A frame supply for MjpegServer whose picture the test changes while nobody is connected:
    the camera that comes back shows the scene a little shifted and brighter."""

    def __init__(self) -> None:
        self.jpegs = still_jpegs()

    def __call__(self) -> Iterator[bytes]:
        return iter(self.jpegs)

    def nudge(self, step: int) -> None:
        self.jpegs = still_jpegs(shift=2 * step, gain=6 * step)


def moving_jpegs(count: int = 60) -> list[bytes]:
    """A square crossing the same scene, every frame."""
    rng = np.random.default_rng(4)
    scene = background(WIDTH, HEIGHT)
    return [
        encode(with_noise(with_square(scene, 10 + 4 * i, 90, size=40), rng, sigma=3.0))
        for i in range(count)
    ]


class FaultRig:
    """The daemon watching a camera served by this process, with offline/online hooks."""

    def __init__(self, tmp: Path, server: MjpegServer, **motion: object) -> None:
        self.server = server
        self.scene = SwitchableScene()  # the fixture's rig serves this one
        self.events_path = tmp / "hook-events.txt"

        def hook(event: str) -> dict[str, Any]:
            return {"command": [sys.executable, "-c", HOOK_SCRIPT, str(self.events_path), event]}

        self.daemon = RunningDaemon(
            tmp,
            {
                "hooks": {
                    "on_camera_offline": hook("offline {camera}"),
                    "on_camera_online": hook("online {camera}"),
                    "on_clip_start": hook("clip_start {camera}"),
                    "on_camera_tampered": hook("tampered {kind}"),
                },
                "cameras": [
                    {
                        "name": "cam",
                        "source": server.url,
                        "capture": {
                            "fps": FPS,
                            "read_timeout": "1s",
                            "stall_timeout": "2s",
                            "open_timeout": "1s",
                        },
                        "motion": {"warmup": "1s", **motion},
                        "record": {"pre_roll": "1s"},
                    }
                ],
            },
        )

    def hook_events(self) -> list[str]:
        try:
            return self.events_path.read_text().split()[::2]
        except FileNotFoundError:
            return []

    def online(self) -> bool:
        return bool(self.daemon.camera()["online"])

    def wait_online(self, timeout: float = 20) -> float:
        return self.daemon.wait_for(self.online, timeout, "camera online")

    def wait_offline(self, timeout: float = 20) -> float:
        return self.daemon.wait_for(lambda: not self.online(), timeout, "camera offline")

    def assert_offline_everywhere(self) -> None:
        status, body = self.daemon.get("/healthz")
        assert status == 503 and json.loads(body)["cameras"]["cam"]["online"] is False
        assert self.daemon.metric("camera_online") == 0

    def assert_online_everywhere(self) -> None:
        status, body = self.daemon.get("/healthz")
        assert status == 200 and json.loads(body)["ok"] is True
        assert self.daemon.metric("camera_online") == 1
        frames = self.daemon.camera()["frames"]
        self.daemon.wait_for(lambda: self.daemon.camera()["frames"] > frames + 5, 5, "frames")

    def assert_no_clip(self) -> None:
        assert self.daemon.json("/api/clips") == {"total": 0, "clips": []}
        camera = self.daemon.camera()
        assert camera["recording"] is False and camera["clips_discarded"] == 0
        assert "clip_start" not in self.hook_events()
        assert "clip" not in " ".join(
            line for line in self.daemon.log().splitlines() if "camera cam" in line
        ), self.daemon.log()

    def wait_hooks(self, offline: int, online: int) -> None:
        self.daemon.wait_for(
            lambda: (
                self.hook_events().count("offline") >= offline
                and self.hook_events().count("online") >= online
            ),
            10,
            f"{offline} offline and {online} online hook runs",
        )
        events = self.hook_events()
        assert events.count("offline") == offline and events.count("online") == online, events


@pytest.fixture
def serve() -> Iterator[Callable[[FrameSupply], MjpegServer]]:
    servers: list[MjpegServer] = []

    def start(frames: FrameSupply) -> MjpegServer:
        server = MjpegServer(frames, FPS)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def rig(tmp_path: Path, serve: Callable[[FrameSupply], MjpegServer]) -> Iterator[FaultRig]:
    scene = SwitchableScene()
    rig = FaultRig(tmp_path, serve(scene))
    rig.scene = scene
    rig.daemon.start()
    try:
        rig.wait_online()
        yield rig
    finally:
        rig.daemon.stop()


def test_stalled_camera_goes_offline_and_comes_back_without_a_clip(rig: FaultRig) -> None:
    rig.daemon.wait_for(lambda: rig.hook_events() == ["online"], 10, "the online hook")
    rig.assert_online_everywhere()
    rig.server.stall()
    # read_timeout (1 s) ends the stream; the reopen gets no answer within open_timeout.
    assert rig.wait_offline(timeout=6) < 4
    rig.assert_offline_everywhere()
    time.sleep(2)  # reopen attempts against the stalled server, with backoff
    assert not rig.online()
    rig.scene.nudge(1)
    rig.server.resume()
    assert rig.wait_online(timeout=8) < 6
    rig.assert_online_everywhere()
    time.sleep(2.5)  # longer than the warm-up: the first frames after the reconnect are seen
    rig.wait_hooks(offline=1, online=2)
    log = rig.daemon.log()
    assert "camera cam: offline (lost)" in log and log.count("camera cam: online") == 2
    rig.assert_no_clip()


def test_an_offline_camera_is_not_a_tampered_one(rig: FaultRig) -> None:
    """Long enough online for the tamper watch to learn the picture (and longer than
    tamper_after), offline for longer than tamper_after, back with the picture a little
    shifted and brighter: never tampered with."""
    rig.daemon.wait_for(lambda: rig.hook_events() == ["online"], 10, "the online hook")
    time.sleep(8)
    rig.server.stall()
    rig.wait_offline(timeout=6)
    time.sleep(6)
    assert rig.daemon.camera()["tampered"] is None
    rig.scene.nudge(1)
    rig.server.resume()
    rig.wait_online(timeout=8)
    time.sleep(8)
    rig.wait_hooks(offline=1, online=2)
    assert "tampered" not in rig.hook_events()
    camera = rig.daemon.camera()
    assert camera["tampered"] is None and camera["day_night"] == "day"
    assert "tampered with" not in rig.daemon.log()
    rig.assert_no_clip()


def test_dropped_connection_reconnects_without_a_clip(rig: FaultRig) -> None:
    rig.daemon.wait_for(lambda: rig.hook_events() == ["online"], 10, "the online hook")
    for round_ in range(1, 4):
        rig.server.drop_connections()
        rig.scene.nudge(round_)
        rig.daemon.wait_for(
            lambda round_=round_: rig.daemon.log().count("camera cam: online") == round_ + 1,  # type: ignore[misc]
            8,
            f"reconnect {round_}",
        )
        time.sleep(1.5)
    rig.assert_online_everywhere()
    rig.wait_hooks(offline=3, online=4)
    assert rig.daemon.log().count("camera cam: offline (lost)") == 3
    rig.assert_no_clip()


def test_camera_gone_reconnects_within_the_backoff_bound(rig: FaultRig) -> None:
    rig.server.set_available(False)
    rig.server.drop_connections()
    rig.wait_offline(timeout=5)
    rig.assert_offline_everywhere()
    assert rig.daemon.camera()["online"] is False
    rig.daemon.wait_for(
        lambda: rig.daemon.log().count("cannot open") >= 3, 15, "three failed reopens"
    )
    rig.assert_offline_everywhere()
    failures = rig.daemon.log().count("cannot open")
    rig.scene.nudge(1)
    rig.server.set_available(True)
    # The next attempt comes within the current backoff step (jitter only shortens it).
    bound = min(RECONNECT.cap, RECONNECT.first * 2.0**failures) + 2.0
    took = rig.wait_online(timeout=bound + 5)
    assert took < bound, (took, failures)
    rig.assert_online_everywhere()
    time.sleep(2.5)
    rig.wait_hooks(offline=1, online=2)
    assert "503" in rig.daemon.log()  # the reason of the failed opens is logged
    rig.assert_no_clip()


def _with_fault(fault: bytes, at: int = 20) -> list[bytes]:
    frames = still_jpegs(40)
    frames[at] = fault
    return frames


BLACK = encode(np.zeros((HEIGHT, WIDTH, 3), np.uint8))
STILL = still_jpegs(1, seed=11)[0]


@pytest.mark.parametrize(
    ("fault", "seen_as"),
    [
        # A black frame is a lighting change; the others are counted as garbled, whether the
        # MJPEG source skips them (not a JPEG) or they fail to decode (truncated).
        pytest.param(BLACK, "lighting", id="black"),
        pytest.param(b"this is not a JPEG at all" * 20, "garbled", id="not-jpeg"),
        pytest.param(STILL[: len(STILL) * 2 // 3], "garbled", id="truncated-jpeg"),
        pytest.param(
            b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8, "garbled", id="jpeg-header-garbage"
        ),
    ],
)
def test_a_single_bad_frame_in_a_still_stream_never_starts_a_clip(
    tmp_path: Path,
    serve: Callable[[FrameSupply], MjpegServer],
    fault: bytes,
    seen_as: str,
) -> None:
    server = serve(_with_fault(fault))  # at 15 fps the bad frame comes every 2.7 s
    rig = FaultRig(tmp_path, server)
    rig.daemon.start()
    try:
        rig.wait_online()
        served = server.frames_sent
        rig.daemon.wait_for(lambda: server.frames_sent > served + 100, 20, "7 s of frames")
        assert rig.online()
        if seen_as == "lighting":
            assert "camera cam: lighting change" in rig.daemon.log()
        if seen_as == "garbled":
            assert rig.daemon.camera()["frames_garbled"] >= 1
        rig.assert_online_everywhere()
        rig.assert_no_clip()
        assert rig.hook_events() == ["online"]
    finally:
        rig.daemon.stop()


def test_a_clip_in_progress_when_the_camera_goes_away_is_finished_and_kept(
    tmp_path: Path, serve: Callable[[FrameSupply], MjpegServer]
) -> None:
    server = serve(moving_jpegs())
    rig = FaultRig(tmp_path, server)
    rig.daemon.start()
    try:
        rig.wait_online()
        rig.daemon.wait_for(lambda: rig.daemon.camera()["recording"], 10, "a clip to start")
        time.sleep(2)
        server.set_available(False)
        server.drop_connections()
        rig.wait_offline(timeout=5)
        rig.daemon.wait_for(
            lambda: rig.daemon.json("/api/clips")["total"] == 1, 15, "the clip to be finished"
        )
        assert rig.daemon.camera()["recording"] is False
        (clip,) = rig.daemon.json("/api/clips")["clips"]
        assert clip["camera"] == "cam"
        status, body = rig.daemon.get("/" + clip["url"])
        assert status == 200 and len(body) == clip["size"]
    finally:
        assert rig.daemon.stop() == 0
    (sidecar,) = sidecars(rig.daemon.storage)
    _, frames, times = decode_clip(rig.daemon.storage / str(sidecar["file"]))
    # pre-roll (1 s) plus about 2 s of recording at 15 fps
    assert len(frames) >= 30 and times[-1] - times[0] >= 2.0
    assert frames[0].shape == (HEIGHT, WIDTH, 3)
    assert not list(rig.daemon.storage.rglob("*.partial*"))


# -- a USB camera re-plugged under /dev/v4l/by-id/ ----------------------------------------------
# Stand-in: no V4L2 device here. The worker's source is an OpenCV "v4l2" source whose
# cv2.VideoCapture is replaced by one that reads the *file* the path resolves to, and the by-id
# path is a symlink the test repoints, as udev does when the camera comes back as another
# /dev/videoN.


def _solid_video(path: Path, level: int, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for _ in range(frames):
        writer.write(np.full((HEIGHT, WIDTH, 3), level, np.uint8))
    writer.release()
    return path


def test_reopen_resolves_the_by_id_symlink_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video_a = _solid_video(tmp_path / "video0.avi", 40, 10)
    video_b = _solid_video(tmp_path / "video2.avi", 200, 400)
    by_id = tmp_path / "usb-Camera_1234-video-index0"
    by_id.symlink_to(video_a)
    opened: list[str] = []
    real_capture = cv2.VideoCapture

    def fake_capture(path: str, api: int = 0) -> cv2.VideoCapture:
        opened.append(path)
        return real_capture(path)

    monkeypatch.setattr(cv2, "VideoCapture", fake_capture)
    monkeypatch.setenv("OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT", "1")
    config = CameraConfig(
        name="usb",
        capture=CaptureConfig(source=str(by_id), kind="v4l2", mjpeg=False, fps=FPS),
        motion=MotionConfig(warmup=0.5),
        record=RecordConfig(pre_roll=0.5),
    )
    storage = Storage(tmp_path / "data")
    storage.ensure()
    events: list[str] = []
    worker = CameraWorker(
        config,
        storage,
        lambda event: events.append(event.name),
        source_factory=open_source,
        reconnect=Backoff(first=0.05),
    )
    levels: list[int] = []
    lock = threading.Lock()  # guards levels: appended on the capture thread

    def listener(camera: str, frame: Any, result: Any) -> None:
        with lock:
            levels.append(int(frame.bgr().mean()))

    worker.add_frame_listener(listener)
    # The device "goes away": A is unplugged (its file ends, reads fail) and the camera comes
    # back as another node.
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while "camera_offline" not in events:
            assert time.monotonic() < deadline, events
            time.sleep(0.02)
        by_id.unlink()
        by_id.symlink_to(video_b)
        while not levels or levels[-1] < 150:
            assert time.monotonic() < deadline, (events, opened)
            time.sleep(0.02)
    finally:
        assert worker.stop(10)
    assert opened[0] == str(video_a) and str(video_b) in opened
    assert set(opened) <= {str(video_a), str(video_b)}
    with lock:
        assert 35 <= levels[0] <= 45 and 195 <= levels[-1] <= 205
    assert "clip_start" not in events
