"""The sd_notify contract, against a datagram socket the test binds itself (as systemd would).

The daemon runs as a subprocess with NOTIFY_SOCKET and WATCHDOG_USEC set, on a looping video
with motion all the time, so a clip is in progress from about a second after the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from motiond.config import load_config
from motiond.daemon import Daemon
from motiond.events import CameraOffline, CameraOnline, ClipDiscarded, ClipEnded, ClipStarted
from motiond.systemd import Notifier
from testbed.framecode import read_frame_number
from tests.fixtures import REPO
from tests.fixtures.daemon import clean_env, motiond_command, sidecars, wait_until, write_config
from tests.fixtures.video import decode_clip, write_test_video

if TYPE_CHECKING:
    from tests.fixtures.video import TestVideo

pytestmark = pytest.mark.slow

WATCHDOG_USEC = 1_000_000  # pings every 0.5 s
# The real daemon whose sources hang after a while (run as: HANGING_DAEMON SECONDS -c CONFIG).
HANGING_DAEMON = REPO / "tests" / "fixtures" / "hanging_daemon.py"
STATUS = re.compile(
    r"^\d+/\d+ cameras online, (not recording|recording: [\w, -]+), \d+ clips today$"
)


@dataclass
class Message:
    at: float  # time.monotonic() when received
    fields: dict[str, str]
    pid: int  # the sender, from SCM_CREDENTIALS
    port_open: bool | None = None  # READY=1 only: did the web port accept a connection then?


@dataclass
class NotifySocket:
    """An AF_UNIX datagram socket like systemd's; collects every message on a thread."""

    address: str  # as NOTIFY_SOCKET: a path, or "@name" for the abstract namespace
    port: int  # probed the moment READY=1 arrives, with the sender stopped (SIGSTOP)
    messages: list[Message] = field(default_factory=list)
    _socket: socket.socket = field(init=False)
    _thread: threading.Thread = field(init=False)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        bind_to = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        self._socket.bind(bind_to)
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        credentials_size = socket.CMSG_LEN(struct.calcsize("3i"))
        while True:
            try:
                data, ancillary, _, _ = self._socket.recvmsg(4096, credentials_size)
            except OSError:
                return
            pid = -1
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload[: struct.calcsize("3i")])[0]
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
            message = Message(time.monotonic(), fields, pid)
            if fields.get("READY") == "1" and pid not in (-1, os.getpid()):
                # Freeze the sender while probing, so it cannot start listening in between.
                os.kill(pid, signal.SIGSTOP)
                try:
                    message.port_open = port_accepts(self.port)
                finally:
                    os.kill(pid, signal.SIGCONT)
            with self._changed:
                self.messages.append(message)
                self._changed.notify_all()

    def wait_for(
        self, accept: Callable[[Message], bool], timeout: float, after: int = 0
    ) -> tuple[int, Message]:
        """The first message from index ``after`` on that ``accept`` takes, and its index."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index in range(after, len(self.messages)):
                    if accept(self.messages[index]):
                        return index, self.messages[index]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [m.fields for m in self.messages[after:]]
                    raise AssertionError(f"no such sd_notify message in {timeout} s; got {seen}")
                self._changed.wait(remaining)

    def pings(self, since: float = 0.0) -> list[float]:
        with self._changed:
            return [m.at for m in self.messages if m.at >= since and "WATCHDOG" in m.fields]

    def close(self) -> None:
        self._socket.close()


def has(key: str, value: str = "1") -> Callable[[Message], bool]:
    return lambda message: message.fields.get(key) == value


def port_accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def moving_video(tmp_path_factory: pytest.TempPathFactory) -> TestVideo:
    """20 s at 10 fps with a square moving all the time: a clip is always in progress."""
    path = tmp_path_factory.mktemp("video") / "moving.avi"
    return write_test_video(path, seconds=20, fps=10, moving=[(0.0, 20.0)])


def camera(name: str, video: TestVideo, **capture: object) -> dict[str, object]:
    return {
        "name": name,
        "source": str(video.path),
        "capture": {"loop": True, "pacing": "realtime", **capture},
        "motion": {"masks": [video.code_mask], "warmup": "0s"},
        "record": {"pre_roll": "1s"},
    }


def daemon_config(
    directory: Path, port: int, cameras: list[dict[str, object]], **extra: object
) -> dict[str, object]:
    return {
        "storage": {"dir": str(directory / "data")},
        "web": {"listen": "127.0.0.1", "port": port},
        "cameras": cameras,
        **extra,
    }


@dataclass
class RunningDaemon:
    process: subprocess.Popen[bytes]
    notify: NotifySocket
    log_path: Path
    config_path: Path
    storage: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for_log(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log:
            assert self.process.poll() is None, f"motiond exited:\n{self.log}"
            assert time.monotonic() < deadline, f"no {text!r} in the log:\n{self.log}"
            time.sleep(0.05)

    def partial_clips(self) -> list[Path]:
        return sorted((self.storage / "clips").glob("*/*/*.partial.mp4"))


@contextlib.contextmanager
def running_daemon(
    directory: Path,
    config: dict[str, object],
    notify_address: str,
    command: Sequence[str] = (),
) -> Iterator[RunningDaemon]:
    """The daemon as systemd would start it; killed at the end if the test left it running.
    ``command``: what runs it instead of ``motiond run`` (given ``-c CONFIG``)."""
    web = config["web"]
    assert isinstance(web, dict)
    config_path = write_config(directory / "motiond.yaml", config)
    notify = NotifySocket(notify_address, port=web["port"])
    log_path = directory / "motiond.log"
    environment = {
        **clean_env(),
        "NOTIFY_SOCKET": notify_address,
        "WATCHDOG_USEC": str(WATCHDOG_USEC),
    }
    config_args = ["-c", str(config_path)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*command, *config_args] if command else motiond_command("run", *config_args),
            cwd=directory,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    try:
        yield RunningDaemon(process, notify, log_path, config_path, directory / "data")
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        notify.close()


@pytest.fixture
def notify_path() -> Iterator[str]:
    # A short directory: an AF_UNIX path holds at most 107 bytes, and pytest's tmp_path is long.
    with tempfile.TemporaryDirectory(prefix="motiond-notify-") as directory:
        yield str(Path(directory) / "notify.sock")


def test_ready_status_watchdog_and_a_clean_stop(
    tmp_path: Path, moving_video: TestVideo, notify_path: str
) -> None:
    port = free_port()
    config = daemon_config(tmp_path, port, [camera("cam", moving_video)])
    with running_daemon(tmp_path, config, notify_path) as daemon:
        _, ready = daemon.notify.wait_for(has("READY"), timeout=30)
        assert ready.port_open, "READY=1 came before the web port accepted connections"
        assert ready.pid == daemon.process.pid
        assert STATUS.match(ready.fields["STATUS"]), ready.fields

        # Pings at half of WATCHDOG_USEC, and never a gap long enough for systemd to kill.
        time.sleep(3.0)
        pings = daemon.notify.pings(since=ready.at)
        assert len(pings) >= 4, daemon.log
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        assert 0.35 <= statistics.median(gaps) <= 0.75, gaps
        assert pings[0] - ready.at < WATCHDOG_USEC / 1e6 and max(gaps) < WATCHDOG_USEC / 1e6, gaps

        # SIGTERM with a clip in progress: STOPPING=1, exit 0, the clip finished and playable.
        assert daemon.partial_clips(), f"no clip in progress after 3 s:\n{daemon.log}"
        partial = daemon.partial_clips()[0]
        stop_sent = time.monotonic()
        daemon.process.send_signal(signal.SIGTERM)
        _, stopping = daemon.notify.wait_for(has("STOPPING"), timeout=10)
        assert stopping.pid == daemon.process.pid
        assert daemon.process.wait(timeout=25) == 0, daemon.log
        assert time.monotonic() - stop_sent < 20

    assert not partial.exists()
    clip = partial.with_name(partial.name.replace(".partial", ""))
    assert clip.with_suffix(".json").is_file()
    codec, frames, _ = decode_clip(clip)
    assert codec == "h264" and frames
    (record,) = sidecars(daemon.storage)
    assert record["frames"] == len(frames)


def test_sighup_reloads_and_keeps_the_old_config_on_error(
    tmp_path: Path, moving_video: TestVideo, notify_path: str
) -> None:
    port = free_port()
    config = daemon_config(tmp_path, port, [camera("cam", moving_video)])
    with running_daemon(tmp_path, config, notify_path) as daemon:
        daemon.notify.wait_for(has("READY"), timeout=30)
        daemon.wait_for_log("clip started", timeout=10)

        # A good config: RELOADING=1, then READY=1 with a fresh status; still running.
        write_config(daemon.config_path, {**config, "log_level": "debug"})
        start = len(daemon.notify.messages)
        daemon.process.send_signal(signal.SIGHUP)
        index, reloading = daemon.notify.wait_for(has("RELOADING"), timeout=10, after=start)
        assert int(reloading.fields["MONOTONIC_USEC"]) > 0
        _, ready = daemon.notify.wait_for(has("READY"), timeout=10, after=index)
        assert ready.fields["STATUS"] == "1/1 cameras online, recording: cam, 0 clips today"
        daemon.wait_for_log("reloaded", timeout=5)

        # A bad config: RELOADING=1, READY=1, the error logged, the old config kept.
        daemon.config_path.write_text("cameras:\n  - name: cam\n    source: [not, a, source]\n")
        start = len(daemon.notify.messages)
        daemon.process.send_signal(signal.SIGHUP)
        index, _ = daemon.notify.wait_for(has("RELOADING"), timeout=10, after=start)
        _, ready = daemon.notify.wait_for(has("READY"), timeout=10, after=index)
        daemon.wait_for_log("reload failed, keeping the running config", timeout=5)
        assert "cameras[0].source" in daemon.log
        # Still alive, still recording the same clip, still pinging the watchdog.
        time.sleep(1.0)
        assert daemon.process.poll() is None
        assert len(daemon.notify.pings(since=ready.at)) >= 1
        assert "clip kept" not in daemon.log
        assert len(daemon.partial_clips()) == 1

        daemon.process.send_signal(signal.SIGTERM)
        assert daemon.process.wait(timeout=25) == 0, daemon.log


def test_a_hung_capture_loop_stops_the_watchdog_pings(
    tmp_path: Path, moving_video: TestVideo
) -> None:
    # "cam" hangs 1 s after its source opened (the daemon is given sources that do: see
    # HANGING_DAEMON); "unplugged" never opens and is retried with backoff, which must not count
    # as a hang.
    cameras = [
        camera("cam", moving_video, open_timeout="500ms", read_timeout="500ms"),
        {"name": "unplugged", "source": "/dev/video63"},
    ]
    config = daemon_config(tmp_path, free_port(), cameras)
    address = f"@motiond-test-{os.getpid()}-{time.monotonic_ns()}"  # the abstract namespace
    hanging = [sys.executable, str(HANGING_DAEMON), "1"]
    with running_daemon(tmp_path, config, address, command=hanging) as daemon:
        _, ready = daemon.notify.wait_for(has("READY"), timeout=30)
        daemon.wait_for_log("hanging (test only)", timeout=10)
        assert daemon.notify.pings(since=ready.at), "no WATCHDOG=1 before the hang"
        # hung_loops() gives a loop read_timeout + HANG_MARGIN (15 s) before it counts as hung.
        daemon.wait_for_log("not pinging the watchdog", timeout=30)
        last_ping = daemon.notify.pings()[-1]
        time.sleep(2.0)
        assert daemon.notify.pings(since=last_ping + 0.001) == []
        assert daemon.process.poll() is None  # systemd kills it (WatchdogSec), not the daemon
        complaint = next(
            line for line in daemon.log.splitlines() if "not pinging the watchdog" in line
        )
        assert "camera cam capture" in complaint and "unplugged" not in complaint


# -- reload, in process: the same CameraWorker object keeps recording the same clip ----------------


@pytest.mark.usefixtures("restore_process_state")
def test_reload_keeps_an_unchanged_camera_recording_without_a_gap(
    tmp_path: Path, moving_video: TestVideo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    port = free_port()
    config = daemon_config(tmp_path, port, [camera("cam", moving_video), camera("b", moving_video)])
    config_path = write_config(tmp_path / "motiond.yaml", config)
    daemon = Daemon(load_config(config_path), config_path)
    events: list[tuple[float, str, str]] = []
    for event_type in (ClipStarted, ClipEnded, ClipDiscarded, CameraOnline, CameraOffline):
        daemon.events.subscribe(
            event_type, lambda event: events.append((time.time(), event.camera, event.name))
        )

    async def scenario() -> tuple[float, float]:
        serving = asyncio.create_task(daemon.serve())
        await wait_until(
            lambda: any(e[1:] == ("cam", "clip_start") for e in events), 10, "cam's clip to start"
        )
        worker, other = daemon.cameras["cam"], daemon.cameras["b"]
        frames_before = worker.frames
        # cam's pipeline unchanged (only its hooks, applied live), b changed; new global hooks
        # and log level (live); web and storage changed (logged as needing a restart).
        true_hook = {"on_clip_end": {"command": ["/bin/true"]}}
        changed = daemon_config(
            tmp_path / "elsewhere",
            free_port(),
            [
                {**camera("cam", moving_video), "hooks": true_hook},
                {**camera("b", moving_video), "motion": {"blur": 3}},
            ],
            log_level="debug",
            hooks=true_hook,
        )
        write_config(config_path, changed)
        reloaded_at = time.time()
        assert daemon.reload()
        assert daemon.cameras["cam"] is worker and worker.status().recording
        assert daemon.cameras["b"] is not other
        await asyncio.sleep(1.0)
        assert worker.frames >= frames_before + 5
        assert daemon.config.web.port == port and daemon.web_port == port
        assert daemon.config.storage.dir == tmp_path / "data"
        assert daemon.config.hooks.on_clip_end is not None
        assert daemon.config.camera("cam").hooks.on_clip_end is not None
        assert logging.getLogger().level == logging.DEBUG
        assert port_accepts(port)
        stopped_at = time.time()
        daemon.request_stop()
        await serving
        return reloaded_at, stopped_at

    reloaded_at, stopped_at = asyncio.run(scenario())

    messages = [r.getMessage() for r in caplog.records]
    assert "reload: web changed; it takes effect at the next restart" in messages
    assert "reload: storage changed; it takes effect at the next restart" in messages
    assert "reload: camera b changed" in messages
    assert not any("camera cam" in m and "reload" in m for m in messages)
    # cam's clip spans the reload in one piece: one clip, frame numbers without a gap.
    cam_ends = [e for e in events if e[1:] == ("cam", "clip_end")]
    assert len(cam_ends) == 1 and cam_ends[0][0] >= stopped_at
    (record,) = [r for r in sidecars(tmp_path / "data") if r["camera"] == "cam"]
    assert float(record["start_ts"]) < reloaded_at < float(record["end_ts"])  # type: ignore[arg-type]
    _, frames, _ = decode_clip(tmp_path / "data" / str(record["file"]))
    numbers = [read_frame_number(f) for f in frames]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), numbers


# -- the Notifier on its own --------------------------------------------------------------------


def test_notifier_sends_to_an_abstract_socket_and_honours_watchdog_pid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    address = f"@motiond-test-{os.getpid()}-{time.monotonic_ns()}"
    receiver = NotifySocket(address, port=free_port())
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", address)
        monkeypatch.setenv("WATCHDOG_USEC", "30000000")
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        notifier = Notifier.from_env()
        assert notifier.watchdog_interval == 15.0
        notifier.status("hello")
        _, message = receiver.wait_for(has("STATUS", "hello"), timeout=5)
        assert message.pid == os.getpid()
        notifier.close()
        # WATCHDOG_PID names another process (a child of ours): the watchdog is not ours to feed.
        monkeypatch.setenv("WATCHDOG_PID", "1")
        assert Notifier.from_env().watchdog_interval is None
    finally:
        receiver.close()


def test_notifier_does_nothing_outside_systemd() -> None:
    notifier = Notifier.from_env()  # conftest removed NOTIFY_SOCKET and WATCHDOG_USEC
    assert not notifier.enabled and notifier.watchdog_interval is None
    notifier.ready("ignored")  # must not raise
