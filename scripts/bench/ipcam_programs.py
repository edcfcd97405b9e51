"""The IP camera benchmark's two recorders, with one or several cameras each.

Motion 4.5 keeps the camera's packets (``movie_passthrough on``); with a sub stream it
detects on ``netcam_url`` (the sub stream) and records ``netcam_high_url`` (the main one),
which is how Motion uses a camera's two streams. Everything else is the settings of
``scripts/bench/programs.py`` (Debian's detection settings, 2 s pre-capture, no ports).
Several cameras run in one Motion process (a ``camera`` file each), as in one motiond process.

>>> motiond_ipcam_config() is the one place that knows motiond's IP camera keys. <<<
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.bench.harness import REPO_ROOT, motion_version
from scripts.bench.programs import (
    Program,
    check_config,
    motion_settings,
    motiond_run,
    write_config,
)

# Options that belong to each camera in a multi-camera Motion setup.
_MOTION_CAMERA_KEYS = ("netcam_url", "netcam_high_url", "target_dir", "width", "height")


@dataclass(frozen=True)
class CameraSource:
    """One camera of a run: the URL it records and, optionally, a sub stream to detect on."""

    url: str
    size: tuple[int, int]  # of the main stream
    detect_url: str | None = None
    detect_size: tuple[int, int] | None = None  # of the sub stream
    loop: bool = False  # a video file (``url`` is its path): read in real time, looped

    @property
    def is_rtsp(self) -> bool:
        return self.url.startswith(("rtsp://", "rtsps://"))


# ---------------------------------------------------------------------------------------------
# Motion 4.5


def motion_camera_settings(
    camera: CameraSource, fps: float, target_dir: Path, log_file: Path
) -> dict[str, str]:
    """Motion's options for one camera: passthrough for RTSP; the sub stream for detection."""
    size = camera.detect_size or camera.size
    settings = motion_settings(camera.detect_url or camera.url, size, fps, target_dir, log_file)
    if camera.detect_url is not None:
        settings["netcam_high_url"] = camera.url
        # Motion's threshold counts changed pixels: scaled by area, detecting on the sub stream
        # is as sensitive as on the main stream (Debian's 1500 on a 640x360 sub stream misses
        # much of what it sees at 1280x720: clips with gaps).
        share = size[0] * size[1] / (camera.size[0] * camera.size[1])
        settings["threshold"] = str(round(int(settings["threshold"]) * share))
    # An MJPEG camera has no packets worth passing through: Motion would store its JPEGs,
    # which no browser plays; it re-encodes them (libx264), as motiond does.
    settings["movie_passthrough"] = "on" if camera.is_rtsp else "off"
    return settings


def motion_ipcam_program(workdir: Path, cameras: list[CameraSource], fps: float) -> Program:
    """Motion with ``cameras`` in one process (one config file, or a camera file each)."""
    workdir.mkdir(parents=True, exist_ok=True)
    clip_dir = workdir / "clips"
    log_file = workdir / "motion-own.log"
    per_camera = [
        motion_camera_settings(camera, fps, clip_dir / f"cam{index}", log_file)
        for index, camera in enumerate(cameras, 1)
    ]
    files = {"motion.conf": _conf(per_camera[0])}
    if len(cameras) > 1:
        common = {k: v for k, v in per_camera[0].items() if k not in _MOTION_CAMERA_KEYS}
        files = {"motion.conf": _conf(common)}
        for index, own in enumerate(per_camera, 1):
            options = {"camera_id": str(index), "camera_name": f"cam{index}"}
            options |= {k: v for k, v in own.items() if k in _MOTION_CAMERA_KEYS}
            files[f"camera{index}.conf"] = _conf(options)
            files["motion.conf"] += f"camera {workdir / f'camera{index}.conf'}\n"
    for name, text in files.items():
        (workdir / name).write_text(text)
    kind = "passthrough" if cameras[0].is_rtsp else "x264 ultrafast"
    return Program(
        key="motion",
        label=f"{motion_version()} {kind}",
        argv=["motion", "-n", "-c", str(workdir / "motion.conf")],
        workdir=workdir,
        clip_dir=clip_dir,
        settings=dict(files),
    )


def _conf(settings: dict[str, str]) -> str:
    return "".join(f"{key} {value}\n" for key, value in settings.items())


def motion_ipcam_summary() -> str:
    return (
        "Motion: RTSP with `movie_passthrough on` (clips hold the camera's packets), MJPEG "
        "re-encoded (`movie_passthrough off`, `movie_codec mp4`: libx264 ultrafast, "
        "`movie_quality 49`); `netcam_url` the stream, or with a sub stream `netcam_url` the sub "
        "stream for detection and `netcam_high_url` the main one for the clip, with `threshold` "
        "scaled by the sub stream's area (1500 x 640x360 / main); RTSP over TCP (its default), "
        "`pre_capture` 2 s, `event_gap 5`, no pictures, no ports; detection as in Debian's "
        "motion.conf. Several cameras: one process, a `camera` file each."
    )


# ---------------------------------------------------------------------------------------------
# motiond


def motiond_ipcam_config(
    cameras: list[CameraSource],
    storage_dir: Path,
    fps: float | None,
    motion: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """motiond's config: its defaults, plus the IP camera keys where a camera is RTSP (and
    ``motion`` keys when given: ``detect_fps``, ``clip_detect_fps``)."""
    entries = []
    for index, camera in enumerate(cameras, 1):
        capture: dict[str, Any] = {}
        if camera.is_rtsp:
            capture["rtsp_transport"] = "tcp"
        if camera.detect_url is not None:
            capture["detect_source"] = camera.detect_url
        if fps is not None:
            capture["fps"] = fps
        if camera.loop:
            capture["loop"] = True
            capture["pacing"] = "realtime"
        entry: dict[str, Any] = {"name": f"cam{index}", "source": camera.url}
        if capture:
            entry["capture"] = capture
        if motion:
            entry["motion"] = dict(motion)
        entry["record"] = {"mode": "auto", "pre_roll": "2s"}
        entries.append(entry)
    return {"storage": {"dir": str(storage_dir)}, "web": {"port": 0}, "cameras": entries}


def motiond_ipcam_program(
    workdir: Path,
    cameras: list[CameraSource],
    fps: float | None,
    *,
    motion: Mapping[str, float] | None = None,
) -> Program:
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "motiond-data"
    config = motiond_ipcam_config(cameras, storage, fps, motion)
    return motiond_run(workdir, config, storage)


def floor_program(workdir: Path, cameras: list[CameraSource]) -> Program:
    """scripts/bench/pyav_floor.py on the cameras' streams (RTSP; all cameras the same): each
    stream read, the detection stream decoded, nothing else. It writes no clips."""
    workdir.mkdir(parents=True, exist_ok=True)
    first = cameras[0]
    argv = [sys.executable, "-m", "scripts.bench.pyav_floor", "--main", first.url]
    if first.detect_url is not None:
        argv += ["--sub", first.detect_url]
    argv += ["--cameras", str(len(cameras))]
    return Program(
        key="floor",
        label="floor: each stream read, the detection stream decoded (PyAV, no more)",
        argv=argv,
        workdir=workdir,
        clip_dir=workdir / "no-clips",
        settings={"argv": argv[1:]},
    )


def motiond_ipcam_runnable(workdir: Path) -> str | None:
    """None if ``python -m motiond check-config`` accepts the benchmark's configs, else why."""
    workdir.mkdir(parents=True, exist_ok=True)
    cameras = [
        CameraSource("rtsp://127.0.0.1:9/main", (1280, 720), "rtsp://127.0.0.1:9/sub", (640, 360)),
        CameraSource("http://127.0.0.1:9/stream.mjpg", (1280, 720)),
    ]
    config = motiond_ipcam_config(cameras, workdir / "data", None)
    return check_config(write_config(workdir, config))


def motiond_ipcam_summary(motion: Mapping[str, float] | None = None) -> str:
    pace = "".join(f" With `motion.{key}: {value:g}`." for key, value in (motion or {}).items())
    return (
        "motiond: its default config (`record.mode: auto`: copies H.264, transcodes MJPEG with "
        "x264 veryfast), `pre_roll: 2s`, RTSP over TCP (`capture.rtsp_transport: tcp`), with a "
        "sub stream `capture.detect_source: rtsp://.../sub`; MJPEG cameras with "
        "`capture.fps: 15`. Built in `motiond_ipcam_config()` of "
        "scripts/bench/ipcam_programs.py; web UI on an ephemeral 127.0.0.1 port."
    ) + pace


# What ``python -m motiond run`` has loaded before its first camera: the daemon's modules and
# with them numpy, OpenCV, PyAV and Tornado, with malloc set up as the daemon sets it up.
_LIBRARIES_PROBE = (
    "import motiond.cli, motiond.daemon; motiond.cli.limit_malloc_arenas(); "
    "import av, cv2, numpy, tornado.web; "
    "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmRSS')][0])"
)


def motiond_libraries_rss_mb() -> float | None:
    """RSS (MB) of a Python process with what motiond loads before any camera; None if it
    failed. The one-camera rows' gap to Motion is mostly this."""
    result = subprocess.run(
        [sys.executable, "-c", _LIBRARIES_PROBE],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        return None
    return round(int(result.stdout.strip()) / 1024, 1)
