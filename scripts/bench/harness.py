"""What every benchmark run does around its measurements: where its files go, its log lines,
the machine it ran on, its phases, its work dir, its results files and its notes on noise."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from testbed import VTEST

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO_ROOT / "bench-results"  # git-ignored
MEDIA_DIR = RESULTS_DIR / "ipcam-media"  # encoded stream files, cached between runs
DEFAULT_VIDEO = VTEST


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the daemon binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# ---------------------------------------------------------------------------------------------
# The machine and the code measured


def machine_basics() -> dict[str, Any]:
    """CPU model, CPUs this process may use, RAM, kernel and Python."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu_model": model,
        "nproc": len(os.sched_getaffinity(0)),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def machine_info() -> dict[str, Any]:
    """The machine, Motion's version and motiond's (with its commit and source digest)."""
    try:
        import motiond  # noqa: PLC0415

        motiond_version = getattr(motiond, "__version__", "?")
    except ImportError:
        motiond_version = "not importable"
    return {
        **machine_basics(),
        "motion": motion_version(),
        "motiond": f"{motiond_version} ({git_commit() or 'no commit'}, "
        f"source {motiond_source_digest()})",
    }


def motion_version() -> str:
    """E.g. ``Motion 4.5.1``, from ``motion -h`` (which exits non-zero)."""
    if shutil.which("motion") is None:
        return "Motion not installed"
    result = subprocess.run(["motion", "-h"], capture_output=True, text=True, check=False)
    for line in (result.stdout + result.stderr).splitlines():
        if line.startswith("motion Version"):
            return "Motion " + line.split()[2].rstrip(",")
    return "Motion"


def git_commit() -> str:
    """``git describe --always --dirty`` of the checkout, or "" outside one."""
    return subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()


def motiond_source_digest() -> str:
    """A hash of motiond's source, to notice the code changing in the middle of a run."""
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "motiond").rglob("*.py")):
        digest.update(path.relative_to(REPO_ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# A run


@dataclass(frozen=True)
class Phases:
    """An idle window, then a recording window, each after a warm-up."""

    warmup_s: float
    idle_s: float
    recording_s: float

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--quick", action="store_true", help="3 s warm-up, 8 s phases")
        parser.add_argument("--warmup", type=float, help="seconds before each phase (default 5)")
        parser.add_argument("--idle", type=float, help="idle phase seconds (default 30)")
        parser.add_argument("--recording", type=float, help="recording phase seconds (default 30)")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Self:
        base = (3, 8, 8) if args.quick else (5, 30, 30)
        return cls(
            warmup_s=base[0] if args.warmup is None else args.warmup,
            idle_s=base[1] if args.idle is None else args.idle,
            recording_s=base[2] if args.recording is None else args.recording,
        )


def add_motion_arguments(parser: argparse.ArgumentParser) -> None:
    """``--detect-fps`` and ``--clip-detect-fps``: motiond with those ``motion`` keys set."""
    parser.add_argument(
        "--detect-fps",
        type=float,
        default=None,
        help="motiond with motion.detect_fps set to this (default: its default, every frame)",
    )
    parser.add_argument(
        "--clip-detect-fps",
        type=float,
        default=None,
        help="motiond with motion.clip_detect_fps set to this (default: its default, 5; "
        "0: every frame while a clip records too, as before it)",
    )


def motion_overrides(args: argparse.Namespace) -> dict[str, float]:
    """The ``motion`` keys given by ``add_motion_arguments``' options."""
    given = {"detect_fps": args.detect_fps, "clip_detect_fps": args.clip_detect_fps}
    return {key: value for key, value in given.items() if value is not None}


@contextlib.contextmanager
def work_dir(prefix: str, keep: bool) -> Iterator[Path]:
    """A fresh temporary directory for configs, logs and clips; removed afterwards unless
    ``keep`` (then its path is logged)."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield workdir
    finally:
        if keep:
            log(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def write_results(out: Path, stem: str, results: dict[str, Any], text: str) -> Path:
    """``out/stem.json`` (every figure) and ``out/stem.md`` (the report); returns ``out/stem``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{stem}.md").write_text(text)
    return out / stem


def other_load(cores: list[float], besides: str, median: bool = True) -> str:
    """The note on what else the machine did while measuring (``besides`` what was measured)."""
    text = (
        f"Other load on the machine while measuring (not {besides}): "
        f"{min(cores):.2f} to {max(cores):.2f} cores"
    )
    if median:
        text += f", median {statistics.median(cores):.2f}"
    return text + "."
