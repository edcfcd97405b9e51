"""Shared fixtures: running the real daemon as a user would, and generated test videos."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.fixtures.synthetic import background, with_noise, with_square

REPO = Path(__file__).resolve().parent.parent
VTEST = REPO.parent / "shared" / "data" / "vtest.avi"
CODE_BITS = 12
CODE_HEIGHT = 16


def motiond_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "motiond", *args]


def run_motiond(
    args: Sequence[str], cwd: Path, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        motiond_command(*args),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def run_motiond_until(
    args: Sequence[str], cwd: Path, log_contains: str, timeout: float = 120
) -> tuple[int, str]:
    """Run the daemon until its log contains ``log_contains``, then stop it with SIGTERM.

    Returns (exit code, log). Fails the test if the line does not come within ``timeout``.
    """
    log_path = cwd / "motiond.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(motiond_command(*args), cwd=cwd, stderr=log, env=clean_env())
    try:
        deadline = time.monotonic() + timeout
        while log_contains not in log_path.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {log_contains!r} in the log:\n{log_path.read_text()}")
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, log_path.read_text()


# Set by a service manager; the daemons the tests start must not see them.
SYSTEMD_VARIABLES = (
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "JOURNAL_STREAM",
    "STATE_DIRECTORY",
)


def clean_env() -> dict[str, str]:
    """The environment without systemd's variables (tests may run under a service manager)."""
    return {k: v for k, v in os.environ.items() if k not in SYSTEMD_VARIABLES}


@pytest.fixture(autouse=True)
def _no_systemd_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SYSTEMD_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@dataclass(frozen=True)
class TestVideo:
    path: Path
    fps: float
    frames: int
    width: int
    height: int

    @property
    def code_mask(self) -> list[list[int]]:
        """A config mask polygon covering the frame-number strip at the bottom."""
        top = self.height - CODE_HEIGHT
        return [[0, top], [self.width, top], [self.width, self.height], [0, self.height]]


def draw_frame_number(image: np.ndarray, number: int) -> None:
    """Write ``number`` as CODE_BITS black/white blocks along the bottom edge."""
    height, width = image.shape[:2]
    block = width // CODE_BITS
    for bit in range(CODE_BITS):
        value = 255 if number >> bit & 1 else 0
        image[height - CODE_HEIGHT :, bit * block : (bit + 1) * block] = value


def read_frame_number(image: np.ndarray) -> int:
    height, width = image.shape[:2]
    block = width // CODE_BITS
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    strip = gray[height - CODE_HEIGHT + 4 : height - 4]
    number = 0
    for bit in range(CODE_BITS):
        if strip[:, bit * block + 4 : (bit + 1) * block - 4].mean() > 128:
            number |= 1 << bit
    return number


def write_test_video(
    path: Path,
    seconds: float,
    fps: float,
    moving: Sequence[tuple[float, float]],
    width: int = 320,
    height: int = 240,
) -> TestVideo:
    """A noisy still scene with a square moving during each (start, end) span, in seconds.

    Frames are numbered in a strip along the bottom (mask it out of detection).
    """
    rng = np.random.default_rng(7)
    scene = cv2.resize(background(), (width, height))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened()
    count = round(seconds * fps)
    for index in range(count):
        t = index / fps
        image = scene
        for start, end in moving:
            if start <= t < end:
                x = int(20 + (t - start) * 60) % (width - 40)
                image = with_square(scene, x, height // 3, size=width // 10)
        image = with_noise(image, rng, sigma=3.0)
        draw_frame_number(image, index)
        writer.write(image)
    writer.release()
    return TestVideo(path, fps, count, width, height)


def decode_clip(path: Path) -> tuple[str, list[np.ndarray], list[float]]:
    """(codec name, frames as BGR, frame times in seconds) of a clip, decoded with PyAV."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        frames, times = [], []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="bgr24"))
            times.append(float(frame.pts * frame.time_base))
    return codec, frames, times


def write_config(path: Path, data: dict[str, object]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def sidecars(storage: Path) -> list[dict[str, object]]:
    records = [json.loads(p.read_text()) for p in sorted((storage / "clips").glob("*/*/*.json"))]
    return sorted(records, key=lambda r: float(r["start_ts"]))  # type: ignore[arg-type]


@pytest.fixture
def vtest() -> Iterator[Path]:
    if not VTEST.is_file():
        pytest.skip(
            f"real footage not found at {VTEST} (it lives in ../shared/data beside the repo)"
        )
    yield VTEST
