"""Event hooks: real commands (this Python) and a real HTTP server on a loopback port."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from motiond import __version__
from motiond.config import HookConfig, HooksConfig
from motiond.events import CameraOffline, CameraOnline, StorageError
from motiond.notify.hooks import HookRunner, format_argument
from tests.fixtures.daemon import wait_for_file
from tests.fixtures.events import LINKS, clip_ended, clip_started

# Writes what the command received (argv after the output path, stdin, env) to argv[1] as JSON.
RECORD = """
import json, os, sys
seen = {
    "argv": sys.argv[2:],
    "stdin": sys.stdin.read(),
    "env": {k: v for k, v in os.environ.items() if k.startswith("MOTIOND_")},
}
with open(sys.argv[1], "w") as out:
    json.dump(seen, out)
"""

# Writes its pid to argv[1], then waits until the file argv[2] exists (at most 30 s).
WAIT_FOR_FILE = """
import os, sys, time
partial = f"{sys.argv[1]}.{os.getpid()}"
with open(partial, "w") as out:
    out.write(str(os.getpid()))
os.replace(partial, sys.argv[1])
deadline = time.monotonic() + 30
while not os.path.exists(sys.argv[2]) and time.monotonic() < deadline:
    time.sleep(0.02)
"""


def record_command(out: Path, *args: str) -> tuple[str, ...]:
    return (sys.executable, "-c", RECORD, str(out), *args)


def recorded(out: Path) -> dict[str, Any]:
    seen: dict[str, Any] = json.loads(out.read_text())
    return seen


def waiting_command(pid_file: Path, release: Path) -> tuple[str, ...]:
    return (sys.executable, "-c", WAIT_FOR_FILE, str(pid_file), str(release))


@pytest.fixture
def make_runner() -> Iterator[Callable[..., HookRunner]]:
    """Builds started runners; stops any a test left running."""
    runners: list[HookRunner] = []

    def make(
        global_hooks: HooksConfig | None = None,
        camera_hooks: dict[str, HooksConfig] | None = None,
        **kwargs: Any,
    ) -> HookRunner:
        runner = HookRunner(global_hooks or HooksConfig(), camera_hooks or {}, LINKS, **kwargs)
        runner.start()
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        with contextlib.suppress(RuntimeError):  # the test stopped it already
            runner.stop(timeout=1.0)


class Requests:
    """What the test server received, and the status it answers with."""

    def __init__(self) -> None:
        self.status = 204
        self.received: list[tuple[str, dict[str, str], bytes]] = []


@pytest.fixture
def http_server() -> Iterator[tuple[str, Requests]]:
    requests = Requests()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            requests.received.append((self.path, dict(self.headers.items()), body))
            self.send_response(requests.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# ---------------------------------------------------------------------------------------------


def test_command_gets_the_document_on_stdin_in_argv_and_in_env(
    tmp_path: Path, make_runner: Callable[..., HookRunner]
) -> None:
    out = tmp_path / "seen.json"
    hook = HookConfig(
        command=record_command(out, "{camera}", "{clip_path}", "{frames}", "{nope}", "a{", "}{"),
        timeout=10,
    )
    runner = make_runner(HooksConfig(on_clip_end=hook))

    runner.on_event(clip_ended("door", frames=42))
    runner.stop(timeout=10)

    assert (runner.completed, runner.failures, runner.dropped) == (1, 0, 0)
    seen = recorded(out)
    assert seen["argv"] == [
        "door",
        str(LINKS.path("clips/door/2026-01-01/120000Z.mp4")),
        "42",
        "{nope}",
        "a{",
        "}{",
    ]
    document = json.loads(seen["stdin"])
    assert document["event"] == "clip_end"
    assert document["camera"] == "door"
    assert document["clip_path"] == str(LINKS.path("clips/door/2026-01-01/120000Z.mp4"))
    assert document["frames"] == 42
    assert datetime.fromisoformat(document["time"]).utcoffset() is not None
    assert seen["env"] == {
        "MOTIOND_EVENT": "clip_end",
        "MOTIOND_CAMERA": "door",
        "MOTIOND_JSON": seen["stdin"],
    }


def test_url_hook_posts_the_document_as_json(
    http_server: tuple[str, Requests], make_runner: Callable[..., HookRunner]
) -> None:
    base_url, requests = http_server
    runner = make_runner(HooksConfig(on_clip_start=HookConfig(url=base_url + "/hook?x=1")))

    runner.on_event(clip_started("door"))
    runner.stop(timeout=10)

    assert (runner.completed, runner.failures) == (1, 0)
    [(path, headers, body)] = requests.received
    assert path == "/hook?x=1"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == f"motiond/{__version__}"
    document = json.loads(body)
    assert {k: document[k] for k in ("event", "camera", "clip_id")} == {
        "event": "clip_start",
        "camera": "door",
        "clip_id": "door/2026-01-01/120000Z.mp4",
    }


def test_url_hook_answered_with_an_error_status_is_a_failure(
    http_server: tuple[str, Requests], make_runner: Callable[..., HookRunner]
) -> None:
    base_url, requests = http_server
    requests.status = 500
    runner = make_runner(HooksConfig(on_camera_offline=HookConfig(url=base_url)))

    runner.on_event(CameraOffline(camera="door", detail="lost"))
    runner.stop(timeout=10)

    assert len(requests.received) == 1
    assert (runner.completed, runner.failures) == (0, 1)


def test_global_and_camera_hooks_fire_and_other_cameras_do_not(
    tmp_path: Path, make_runner: Callable[..., HookRunner]
) -> None:
    def hooks(name: str) -> HooksConfig:
        command = record_command(tmp_path / f"{name}.json", name, "{camera}")
        return HooksConfig(on_camera_online=HookConfig(command=command))

    runner = make_runner(hooks("global"), {"door": hooks("door"), "yard": hooks("yard")})

    runner.on_event(CameraOnline(camera="door", detail="demo"))
    runner.stop(timeout=10)

    assert recorded(tmp_path / "global.json")["argv"] == ["global", "door"]
    assert recorded(tmp_path / "door.json")["argv"] == ["door", "door"]
    assert not (tmp_path / "yard.json").exists()
    assert (runner.completed, runner.failures) == (2, 0)


def test_event_without_a_camera_runs_only_the_global_hook(
    tmp_path: Path, make_runner: Callable[..., HookRunner]
) -> None:
    global_out, door_out = tmp_path / "global.json", tmp_path / "door.json"
    runner = make_runner(
        HooksConfig(on_storage_error=HookConfig(command=record_command(global_out))),
        {"door": HooksConfig(on_storage_error=HookConfig(command=record_command(door_out)))},
    )

    runner.on_event(StorageError(camera=None, error="disk full", path=Path("/data")))
    runner.stop(timeout=10)

    seen = recorded(global_out)
    assert json.loads(seen["stdin"])["camera"] is None
    assert seen["env"]["MOTIOND_CAMERA"] == ""
    assert not door_out.exists()


def test_an_event_nobody_hooks_is_neither_run_nor_dropped(
    make_runner: Callable[..., HookRunner],
) -> None:
    runner = make_runner(HooksConfig(), max_pending=1)
    for _ in range(5):
        runner.on_event(clip_ended("door"))
    runner.stop(timeout=1)
    assert (runner.completed, runner.failures, runner.dropped) == (0, 0, 0)


def test_emit_never_blocks_and_counts_what_it_drops(
    tmp_path: Path, make_runner: Callable[..., HookRunner]
) -> None:
    pid_file, release = tmp_path / "pid", tmp_path / "release"
    hook = HookConfig(command=waiting_command(pid_file, release), timeout=30)
    runner = make_runner(HooksConfig(on_clip_end=hook), max_pending=4)
    runner.on_event(clip_ended("door"))
    wait_for_file(pid_file)  # that one is running now, and still counts as pending

    started = time.monotonic()
    for _ in range(4 + 10 - 1):
        runner.on_event(clip_ended("door"))
    elapsed = time.monotonic() - started

    assert elapsed < 0.5
    assert runner.dropped == 10
    assert runner.completed == 0
    release.touch()
    runner.stop(timeout=10)
    assert (runner.completed, runner.failures, runner.dropped) == (4, 0, 10)


def test_a_finished_event_frees_its_place(
    tmp_path: Path, make_runner: Callable[..., HookRunner]
) -> None:
    command = record_command(tmp_path / "seen.json")
    hooks = HooksConfig(on_clip_end=HookConfig(command=command))
    runner = make_runner(hooks, {"door": hooks}, max_pending=1)

    for done in range(1, 4):
        runner.on_event(clip_ended("door"))
        deadline = time.monotonic() + 5
        while runner.completed < 2 * done:  # the global and the camera hook
            assert time.monotonic() < deadline, "hooks never finished"
            time.sleep(0.01)

    assert (runner.completed, runner.failures, runner.dropped) == (6, 0, 0)

    # Exactly one place is free again: one event is taken, the next one is dropped.
    pid_file, release = tmp_path / "pid", tmp_path / "release"
    waiting = HooksConfig(on_clip_end=HookConfig(command=waiting_command(pid_file, release)))
    runner.update(waiting, {"door": waiting})
    runner.on_event(clip_ended("door"))
    runner.on_event(clip_ended("door"))
    release.touch()
    assert runner.dropped == 1


def test_timed_out_command_is_killed_and_counted_as_a_failure(
    tmp_path: Path, make_runner: Callable[..., HookRunner]
) -> None:
    pid_file, never = tmp_path / "pid", tmp_path / "never"
    hook = HookConfig(command=waiting_command(pid_file, never), timeout=0.5)
    runner = make_runner(HooksConfig(on_clip_start=hook))

    started = time.monotonic()
    runner.on_event(clip_started("door"))
    runner.stop(timeout=10)

    assert time.monotonic() - started < 5
    assert (runner.completed, runner.failures) == (0, 1)
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


@pytest.mark.parametrize(
    "command",
    [
        ("/nonexistent/motiond-hook",),
        (sys.executable, "-c", "import sys; sys.exit(3)"),
    ],
    ids=["missing-executable", "exit-status-3"],
)
def test_failed_command_is_counted_not_raised(
    command: tuple[str, ...],
    make_runner: Callable[..., HookRunner],
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = make_runner(HooksConfig(on_clip_end=HookConfig(command=command)))

    with caplog.at_level(logging.WARNING, logger="motiond.notify.hooks"):
        runner.on_event(clip_ended("door"))
        runner.stop(timeout=10)

    assert (runner.completed, runner.failures) == (0, 1)
    [record] = [r for r in caplog.records if r.name == "motiond.notify.hooks"]
    assert "clip_end" in record.getMessage()
    assert "door" in record.getMessage()
    assert record.exc_info is None  # an expected failure, not a crash


def test_url_on_a_closed_port_is_a_failure(make_runner: Callable[..., HookRunner]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runner = make_runner(HooksConfig(on_clip_end=HookConfig(url=f"http://127.0.0.1:{port}/")))

    runner.on_event(clip_ended("door"))
    runner.stop(timeout=10)

    assert (runner.completed, runner.failures) == (0, 1)


def test_stop_returns_within_its_timeout_and_logs_what_it_abandons(
    tmp_path: Path, make_runner: Callable[..., HookRunner], caplog: pytest.LogCaptureFixture
) -> None:
    pid_file, release = tmp_path / "pid", tmp_path / "release"
    hook = HookConfig(command=waiting_command(pid_file, release), timeout=30)
    runner = make_runner(HooksConfig(on_clip_end=hook), workers=1)
    runner.on_event(clip_ended("door"))
    runner.on_event(clip_ended("yard"))
    wait_for_file(pid_file)

    try:
        with caplog.at_level(logging.WARNING, logger="motiond.notify.hooks"):
            started = time.monotonic()
            runner.stop(timeout=0.3)
            elapsed = time.monotonic() - started
    finally:
        release.touch()

    assert 0.25 < elapsed < 1.5
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "abandoned 1 running" in messages
    assert "clip_end for camera door" in messages
    assert "discarded 1 queued" in messages
    assert "clip_end for camera yard" in messages


def test_emit_after_stop_is_dropped(tmp_path: Path, make_runner: Callable[..., HookRunner]) -> None:
    out = tmp_path / "seen.json"
    runner = make_runner(HooksConfig(on_clip_end=HookConfig(command=record_command(out))))
    runner.stop(timeout=1)

    runner.on_event(clip_ended("door"))

    assert runner.dropped == 1
    assert not out.exists()


def test_update_applies_to_later_events(
    tmp_path: Path, make_runner: Callable[..., HookRunner]
) -> None:
    def hooks(name: str) -> HooksConfig:
        command = record_command(tmp_path / f"{name}.json", "{camera}")
        return HooksConfig(on_clip_end=HookConfig(command=command))

    runner = make_runner(hooks("before"), {})
    runner.on_event(clip_ended("door"))
    runner.update(hooks("after"), {"yard": hooks("yard")})
    runner.on_event(clip_ended("yard"))
    runner.stop(timeout=10)

    assert recorded(tmp_path / "before.json")["argv"] == ["door"]
    assert recorded(tmp_path / "after.json")["argv"] == ["yard"]
    assert recorded(tmp_path / "yard.json")["argv"] == ["yard"]


def test_lifecycle_is_checked() -> None:
    runner = HookRunner(HooksConfig(), {}, LINKS)
    with pytest.raises(RuntimeError):
        runner.stop()
    runner.start()
    with pytest.raises(RuntimeError):
        runner.start()
    runner.stop(timeout=1)
    with pytest.raises(RuntimeError):
        runner.stop()


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{camera}", "door"),
        ("clip={clip_path}!", "clip=/c/door.mp4!"),
        ("{frames:05d}", "00042"),
        ("{nope}", "{nope}"),
        ("{camera} {", "door {"),
        ("} {camera}", "} door"),
        ("{camera.upper}", "{camera.upper}"),
        ("{0} {camera}", "{0} door"),
        ("{}", "{}"),
        ("{{camera}}", "{camera}"),
        ("no placeholders", "no placeholders"),
    ],
)
def test_format_argument(template: str, expected: str) -> None:
    values = {"camera": "door", "clip_path": "/c/door.mp4", "frames": 42}
    assert format_argument(template, values) == expected
