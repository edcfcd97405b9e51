"""The pages in a real browser: Debian's Chromium, driven by playwright-core from Node.

Two real daemons run on the demo camera, one without auth and one with a user; the Node script
``tests/browser/run.mjs`` goes through the live page, the clip browser and the login against
them, and may ask (a ``@@restart <name>`` line on its stdout) for a daemon to be restarted, to
check that the live page reconnects by itself. Screenshots go to ``artifacts/browser/``.

Needs Chromium at /usr/bin/chromium and Node.js 20 or newer with npm; ``npm ci`` runs when
tests/browser/node_modules is missing.
Chromium gets flags that keep it off the network: the pages only talk to the loopback daemons.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.browser import (
    ARTIFACTS,
    BROWSER_DIR,
    CHROMIUM,
    install_playwright,
    require_browser_tools,
)
from tests.fixtures.daemon import clean_env, free_port, motiond_command, write_config

USER = "tester"
PASSWORD = "correct horse battery"
NODE_TIMEOUT = 150.0  # the script takes about 25 s; this only bounds a hang
START_TIMEOUT = 20.0


def hash_password(password: str) -> str:
    result = subprocess.run(
        motiond_command("hash-password"),
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(),
        check=False,
    )
    assert result.returncode == 0, f"motiond hash-password failed: {result.stderr}"
    return result.stdout.strip()


class RunningDaemon:
    """``motiond run`` on the demo camera and a free loopback port, restartable on that port."""

    def __init__(self, workdir: Path, name: str, users: list[dict[str, str]] | None = None):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir()
        self.log_path = workdir / "motiond.log"
        web: dict[str, object] = {"listen": "127.0.0.1", "port": self.port}
        if users:
            web["auth"] = {"users": users}
        self.config = write_config(
            workdir / "motiond.yaml",
            {
                "storage": {"dir": str(workdir / "data")},
                "web": web,
                "cameras": [
                    {
                        "name": "demo",
                        "source": "demo",
                        "capture": {"fps": 15},
                        # The demo's walkers are sometimes nearly the floor's gray; with the
                        # defaults such a walker's clip can be discarded as noise, and the next
                        # walker comes 20-30 s later. Noise stays far below these.
                        "motion": {"pixel_threshold": 8, "threshold": 0.001},
                    }
                ],
            },
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                motiond_command("run", "-c", str(self.config)), stderr=log, env=clean_env()
            )

    def wait_ready(self) -> None:
        """Until the web server answers and the camera is online (/healthz 200)."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} daemon exited:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise AssertionError(
            f"{self.name} daemon not ready in {START_TIMEOUT} s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()
        self.wait_ready()

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text() if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture
def node() -> str:
    """Node, with playwright-core installed (checked before any daemon starts)."""
    node, npm = require_browser_tools()
    install_playwright(npm)
    return node


@pytest.fixture
def daemons(node: str, tmp_path: Path) -> Iterator[dict[str, RunningDaemon]]:
    users = [{"name": USER, "password_hash": hash_password(PASSWORD)}]
    running = {
        "plain": RunningDaemon(tmp_path / "plain", "plain"),
        "auth": RunningDaemon(tmp_path / "auth", "auth", users),
    }
    try:
        for daemon in running.values():
            daemon.start()
        for daemon in running.values():
            daemon.wait_ready()
        yield running
    finally:
        for daemon in running.values():
            daemon.stop()


def drive_browser(node: str, daemons: dict[str, RunningDaemon]) -> tuple[int, list[str]]:
    """Runs run.mjs, doing the restarts it asks for; returns its exit code and output lines."""
    settings = {
        "plain": daemons["plain"].url,
        "auth": daemons["auth"].url,
        "user": USER,
        "password": PASSWORD,
        "artifacts": str(ARTIFACTS),
        "chromium": str(CHROMIUM),
    }
    script = subprocess.Popen(
        [node, "run.mjs", json.dumps(settings)],
        cwd=BROWSER_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "NODE_OPTIONS": ""},
    )
    assert script.stdin is not None
    assert script.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def read_output() -> None:
        assert script.stdout is not None
        for line in script.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read_output, daemon=True).start()
    transcript: list[str] = []
    deadline = time.monotonic() + NODE_TIMEOUT
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                transcript.append(f"(no progress within {NODE_TIMEOUT} s: stopped)")
                break
            if line is None:
                break
            transcript.append(line)
            if line.startswith("@@restart "):
                daemons[line.removeprefix("@@restart ")].restart()
                script.stdin.write(f"ok {line.removeprefix('@@')}\n")
                script.stdin.flush()
    finally:
        if script.poll() is None:
            script.kill()
        code = script.wait()
    return code, transcript


def test_pages_in_chromium(node: str, daemons: dict[str, RunningDaemon]) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink(missing_ok=True)

    code, transcript = drive_browser(node, daemons)
    print("\n".join(transcript))  # shown with -rP, and on failure below

    logs = "\n".join(f"--- {name} daemon log ---\n{d.log_tail()}" for name, d in daemons.items())
    assert code == 0, "browser checks failed:\n" + "\n".join(transcript) + "\n" + logs
    for name in ("live-phone", "live-desktop", "clips-phone", "clips-player-phone", "login-phone"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000, f"{name}.png looks empty"
