"""The processes bench_live.py starts: the MJPEG camera, motiond, and a crowd of viewers.

Each is its own process, started with ``start_new_session`` (Ctrl-C reaches the harness only,
which then stops them in order) and stopped by its pid: SIGTERM, then SIGKILL after a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.bench.harness import REPO_ROOT
from scripts.bench.procstat import CLOCK_TICKS, stop_process
from scripts.bench.programs import Program, motiond_run

CAMERA = "bench"


@dataclass(frozen=True)
class CpuSplit:
    """CPU seconds of one process, split by mode and by thread."""

    user: float
    system: float
    main_thread: float  # the thread whose id is the pid: motiond runs its IOLoop there


def cpu_split(pid: int) -> CpuSplit:
    def user_system(path: str) -> tuple[float, float]:
        text = Path(path).read_text()
        fields = text[text.rindex(")") + 2 :].split()  # fields[11], [12]: utime, stime
        return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS

    user, system = user_system(f"/proc/{pid}/stat")
    return CpuSplit(user, system, sum(user_system(f"/proc/{pid}/task/{pid}/stat")))


class MjpegCamera:
    """``python -m testbed.mjpeg_server`` serving a video on a loopback port."""

    def __init__(
        self, video: Path, size: tuple[int, int], fps: float, log_path: Path, port: int
    ) -> None:
        self.argv = [sys.executable, "-m", "testbed.mjpeg_server", "--input", str(video)]
        self.argv += ["--size", f"{size[0]}x{size[1]}", "--fps", str(fps), "--port", str(port)]
        self.log_path = log_path
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        """Returns once it serves (it JPEG-encodes the whole video first: a few seconds)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,
            )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()  # printed once it listens
        if not self.url:
            raise RuntimeError(
                f"mjpeg_server exited (code {self.process.poll()}), see {self.log_path}"
            )

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


def motiond_program(workdir: Path, source_url: str, fps: float, web_port: int) -> Program:
    """motiond with one camera on ``source_url`` and room for many viewers from one client."""
    config = {
        "storage": {"dir": str(workdir / "data")},
        "web": {"port": web_port, "max_viewers_per_camera": 200, "max_viewers_per_client": 200},
        "cameras": [{"name": CAMERA, "source": source_url, "capture": {"fps": fps}}],
    }
    return motiond_run(workdir, config, workdir / "data")


class ViewerCrowd:
    """``python -m scripts.bench.live_viewers``: ``count`` viewers in their own process."""

    def __init__(self, url: str, count: int) -> None:
        self.url = url
        self.count = count
        self.process: asyncio.subprocess.Process | None = None
        self.connected = 0
        self.failures: list[str] = []

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "scripts.bench.live_viewers",
            "--url",
            self.url,
            "--count",
            str(self.count),
            cwd=REPO_ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,
            limit=64 * 1024 * 1024,  # a counts line holds every latency sample
        )
        ready = await self._reply(timeout=60)
        self.connected = int(ready["connected"])
        self.failures = list(ready["failures"])

    async def counts(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(b"counts\n")
        await self.process.stdin.drain()
        return await self._reply(timeout=10)

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        process = self.process
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.write(b"quit\n")
            await process.stdin.drain()
        try:
            await asyncio.wait_for(process.wait(), timeout=5)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def _reply(self, timeout: float) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"live_viewers exited (code {self.process.returncode})")
        reply: dict[str, Any] = json.loads(line)
        return reply
