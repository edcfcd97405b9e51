"""An RTSP camera for tests and benchmarks: ``testbed/rtsp_server.py`` as a child process.

:class:`RtspCamera` starts GStreamer's rtsp-server (run by Debian's ``/usr/bin/python3``, which
has ``gi``; a venv does not) on a loopback port, serving video files without re-encoding, and
controls it by its pid: ``url(mount)``, ``stall()``/``resume()``, ``stop()``,
``start()``/``restart()`` on the same port, ``events()``. :func:`rtsp_server_unavailable` says
what to install when it cannot run here.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeAlias

from testbed.camera_video import CameraVideo

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).resolve().parent / "rtsp_server.py"

MountMedia: TypeAlias = Path | CameraVideo | Sequence[Path | CameraVideo]


class RtspCamera:
    """``testbed/rtsp_server.py`` as a child process, controlled by its pid.

    ``mounts`` maps a mount path ("/main") to a file (or a :class:`CameraVideo`), or to a
    list of them, served one after the other in one session (the camera's parameters change
    mid-stream). Output (the server's event lines, see its docstring) goes to ``log_path``.
    """

    def __init__(
        self,
        mounts: Mapping[str, MountMedia],
        *,
        log_path: Path,
        loop: bool = False,
        stall_after: float | None = None,
        port: int = 0,
        python: str = SYSTEM_PYTHON,
    ) -> None:
        self.mounts = {mount: _paths(media) for mount, media in mounts.items()}
        self.log_path = log_path
        self.loop = loop
        self.stall_after = stall_after
        self.port = port
        self.python = python
        self.process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0  # where this run's lines start in the log

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the RTSP server is not running")
        return self.process.pid

    def url(self, mount: str = "/main") -> str:
        if mount not in self.mounts:
            raise KeyError(f"no mount {mount!r}; mounts: {sorted(self.mounts)}")
        return f"rtsp://127.0.0.1:{self.port}{mount}"

    def start(self, timeout: float = 60.0) -> RtspCamera:
        """Start the server and wait for its READY line (files are read into memory first)."""
        if self.process is not None:
            raise RuntimeError("the RTSP server is already running")
        argv = [self.python, str(SERVER_SCRIPT), "--port", str(self.port)]
        for mount, paths in self.mounts.items():
            argv += ["--mount", f"{mount}={','.join(str(path) for path in paths)}"]
        if self.loop:
            argv.append("--loop")
        if self.stall_after is not None:
            argv += ["--stall-after", str(self.stall_after)]
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        line = self.wait_for("READY", timeout)
        self.port = int(line.rsplit(":", 1)[1])
        return self

    def events(self) -> list[str]:
        """The server's output lines since the last start."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace").splitlines()

    def wait_for(self, prefix: str, timeout: float = 30.0) -> str:
        """The first output line since the last start that begins with ``prefix``."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.events():
                if line.startswith(prefix):
                    return line
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise RuntimeError(
                    f"RTSP server exited (code {code}) before {prefix!r}:\n"
                    + "\n".join(self.events()[-20:])
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {prefix!r} from the RTSP server in {timeout} s")
            time.sleep(0.05)

    def play_times(self, mount: str = "/main") -> list[float]:
        """CLOCK_MONOTONIC times (time.monotonic()) at which ``mount``'s stream started."""
        return [
            float(line.split()[2])
            for line in self.events()
            if line.startswith("PLAY ") and line.split()[1] == mount
        ]

    def stall(self) -> None:
        """Stop sending on every stream; connections and sessions stay open."""
        self._switch(signal.SIGUSR1, "STALL")

    def resume(self) -> None:
        self._switch(signal.SIGUSR2, "RESUME")

    @property
    def stalled(self) -> bool:
        states = [line for line in self.events() if line in ("STALL", "RESUME")]
        return bool(states) and states[-1] == "STALL"

    def _switch(self, signum: int, event: str, timeout: float = 10.0) -> None:
        if self.stalled == (event == "STALL"):
            return
        os.kill(self.pid, signum)
        deadline = time.monotonic() + timeout
        while self.stalled != (event == "STALL"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the RTSP server did not print {event} in {timeout} s")
            time.sleep(0.02)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM by pid, SIGKILL after ``timeout``; the exit code (None if not running)."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        return process.returncode

    def restart(self, down_for: float = 0.0, timeout: float = 60.0) -> RtspCamera:
        """Stop, wait ``down_for`` seconds, start again on the same port."""
        self.stop()
        time.sleep(down_for)
        return self.start(timeout)


def _paths(media: MountMedia) -> list[Path]:
    items = media if isinstance(media, list | tuple) else [media]
    return [item.path if isinstance(item, CameraVideo) else Path(item) for item in items]


@functools.cache
def rtsp_server_unavailable() -> str | None:
    """Why the RTSP server cannot run here, or None."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); "
        "gi.require_version('GstRtspServer', '1.0'); gi.require_version('GstApp', '1.0'); "
        "from gi.repository import Gst, GstRtspServer, GstApp; Gst.init(None); "
        "missing = [e for e in ('qtdemux', 'matroskademux', 'h264parse', 'h265parse', "
        "'rtph264pay', 'rtph265pay', 'rtpmp4gpay', 'rtppcmupay', 'aacparse', 'appsrc') "
        "if Gst.ElementFactory.find(e) is None]; "
        "print(' '.join(missing))"
    )
    result = subprocess.run(
        [SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return (
            f"{SYSTEM_PYTHON} cannot run GStreamer's RTSP server ({last}); install "
            "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-{base,good,bad}"
        )
    if result.stdout.strip():
        return f"GStreamer elements missing: {result.stdout.strip()}"
    return None
