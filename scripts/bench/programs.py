"""The two recorders under test, each started as its own process with its own config.

Motion's settings are chosen to match motiond's: H.264 in MP4 at the same CRF, about 2 s of
pre-capture, a short event gap, no pictures, no network ports. Its motion-detection settings
are those of Debian's shipped ``/etc/motion/motion.conf`` (threshold 1500 is also the built-in
default), i.e. Motion as a Debian user runs it.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from scripts.bench.harness import REPO_ROOT, motion_version
from scripts.bench.procstat import stop_process

# Motion's libx264 CRF is (100 - movie_quality) * 51 // 100 (src/ffmpeg.c, ffmpeg_set_quality),
# so 49 gives CRF 26, motiond's default. Motion always adds preset ultrafast + tune zerolatency.
MOTION_MOVIE_QUALITY = 49
MOTION_EVENT_GAP_S = 5


class ProgramDied(RuntimeError):
    pass


@dataclass
class Program:
    """One recorder process under test: how to start it and where it puts clips."""

    key: str  # "motion", "motiond-ultrafast", ...
    label: str  # shown in the table
    argv: list[str]
    workdir: Path
    clip_dir: Path
    settings: dict[str, Any]  # what the report lists as the settings used
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.key}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        if self.process is not None:
            raise RuntimeError(f"{self.key} already started")
        self.clip_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the harness only; it stops us in order
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check_alive(self) -> None:
        """Raises ProgramDied if the program has exited."""
        if not self.alive():
            code = None if self.process is None else self.process.returncode
            raise ProgramDied(f"{self.key} exited (code {code})")

    def sleep_until(self, when: float) -> None:
        """Sleep until ``when`` (time.monotonic()), failing early if the program exits."""
        while (left := when - time.monotonic()) > 0:
            self.check_alive()
            time.sleep(min(0.25, left))

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (both programs close their clips on it), SIGKILL after ``timeout``."""
        if self.process is None:
            return None
        process = self.process
        try:
            stop_process(process, timeout)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
        return process.returncode

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


# ---------------------------------------------------------------------------------------------
# Motion 4.5


def motion_settings(
    url: str, size: tuple[int, int], fps: float, target_dir: Path, log_file: Path
) -> dict[str, str]:
    """Motion options, in config-file order."""
    rate = round(fps)
    return {
        "daemon": "off",
        "setup_mode": "off",
        "log_file": str(log_file),
        "log_level": "6",
        "target_dir": str(target_dir),
        "netcam_url": url,
        "width": str(size[0]),
        "height": str(size[1]),
        "framerate": str(rate),
        # Detection and overlay as in Debian's shipped motion.conf.
        "text_left": "CAMERA1",
        "text_right": r"%Y-%m-%d\n%T-%q",
        "emulate_motion": "off",
        "threshold": "1500",
        "despeckle_filter": "EedDl",
        "minimum_motion_frames": "1",
        # Events and output, matched to motiond.
        "event_gap": str(MOTION_EVENT_GAP_S),
        "pre_capture": str(2 * rate),
        "post_capture": "0",
        "picture_output": "off",
        "movie_output": "on",
        "movie_max_time": "60",
        "movie_quality": str(MOTION_MOVIE_QUALITY),
        "movie_codec": "mp4",
        "movie_filename": "%t-%v-%Y%m%d%H%M%S",
        # No network ports at all.
        "webcontrol_port": "0",
        "stream_port": "0",
    }


def motion_summary() -> str:
    return (
        "Motion: `netcam_url` on the stream, `movie_codec mp4` (libx264, which Motion always runs "
        "with preset ultrafast + tune zerolatency and a GOP of fps/2), "
        f"`movie_quality {MOTION_MOVIE_QUALITY}` (= CRF 26), `pre_capture` 2 s of frames, "
        f"`event_gap {MOTION_EVENT_GAP_S}`, `post_capture 0`, `picture_output off`, "
        "`stream_port 0`, `webcontrol_port 0`; detection and text overlay as in Debian's "
        "shipped motion.conf (`threshold 1500`, `despeckle_filter EedDl`, "
        "`minimum_motion_frames 1`, `text_left`/`text_right`)."
    )


def motion_program(workdir: Path, url: str, size: tuple[int, int], fps: float) -> Program:
    workdir.mkdir(parents=True, exist_ok=True)
    clip_dir = workdir / "clips"
    settings = motion_settings(url, size, fps, clip_dir, workdir / "motion-own.log")
    config = workdir / "motion.conf"
    config.write_text("".join(f"{key} {value}\n" for key, value in settings.items()))
    return Program(
        key="motion",
        label=motion_version(),
        argv=["motion", "-n", "-c", str(config)],
        workdir=workdir,
        clip_dir=clip_dir,
        settings=settings,
    )


# ---------------------------------------------------------------------------------------------
# motiond
#
# >>> The one place that knows motiond's config keys. Update here if the schema changes. <<<


def motiond_config(
    url: str,
    fps: float,
    storage_dir: Path,
    preset: str,
    motion: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """motiond's config for one benchmark camera reading ``url`` (with ``motion`` keys when
    given: ``detect_fps``, ``clip_detect_fps``)."""
    camera: dict[str, Any] = {"name": "bench", "source": url, "capture": {"fps": fps}}
    if motion:
        camera["motion"] = dict(motion)
    camera["record"] = {"preset": preset, "pre_roll": "2s"}
    return {"storage": {"dir": str(storage_dir)}, "web": {"port": 0}, "cameras": [camera]}


def motiond_summary(motion: Mapping[str, float] | None = None) -> str:
    pace = "".join(f" With `motion.{key}: {value:g}`." for key, value in (motion or {}).items())
    return (
        "motiond: the config in `motiond_config()` of scripts/bench/programs.py "
        "(`record.preset` ultrafast or veryfast, `pre_roll: 2s`, everything else default: "
        "H.264 CRF 26, GOP 1 s, fragmented MP4); web UI on an ephemeral 127.0.0.1 port, "
        "no viewer connected."
    ) + pace


def motiond_program(
    workdir: Path, url: str, fps: float, preset: str, motion: Mapping[str, float] | None = None
) -> Program:
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "motiond-data"
    config = motiond_config(url, fps, storage, preset, motion)
    return motiond_run(workdir, config, storage, f"motiond-{preset}", f"motiond {preset}")


def motiond_runnable(workdir: Path) -> str | None:
    """None if ``python -m motiond`` accepts the benchmark's config, else why not."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = motiond_config("http://127.0.0.1:9/stream.mjpg", 15, workdir / "data", "ultrafast")
    return check_config(write_config(workdir, config))


def write_config(workdir: Path, config: dict[str, Any]) -> Path:
    """``config`` as ``workdir/motiond.yaml``."""
    path = workdir / "motiond.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def motiond_run(
    workdir: Path, config: dict[str, Any], clip_dir: Path, key: str = "motiond", label: str = ""
) -> Program:
    """``python -m motiond run`` on ``config`` (written to ``workdir/motiond.yaml``)."""
    return Program(
        key=key,
        label=label or key,
        argv=[sys.executable, "-m", "motiond", "run", "-c", str(write_config(workdir, config))],
        workdir=workdir,
        clip_dir=clip_dir,
        settings=config,
    )


def check_config(config_path: Path | str) -> str | None:
    """None if ``python -m motiond check-config`` accepts ``config_path``, else why not."""
    result = subprocess.run(
        [sys.executable, "-m", "motiond", "check-config", "-c", str(config_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode == 0:
        return None
    last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
    return f"`python -m motiond check-config` exited {result.returncode}: {last[0]}"
