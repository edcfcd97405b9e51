"""Soak: the daemon for N minutes with live viewers; does its memory, threads or fds grow?

    python -m scripts.soak              # 10 minutes, 20 viewers
    python -m scripts.soak --quick      # 2 minutes
    python -m scripts.soak --minutes 60 --viewers 40

The daemon runs the demo camera (640x480, 15 fps, an object crossing every 20-30 s, so clips are
recorded and closed all along) with ``--viewers`` WebSocket live viewers from this process.
Every ``--interval`` seconds it samples the daemon's RSS (/proc/PID/status VmRSS), threads
(/proc/PID/task) and open fds (/proc/PID/fd), and the frames the viewers got. The report gives
start, end and max of each, and a least-squares trend per hour over the samples after the
first minute (start-up allocations are not a leak). Markdown on stdout and, with every sample
as JSON, in bench-results/soak-YYYYmmdd-HHMMSS.{md,json}. Not a test: nothing here fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import tornado.httpclient
import yaml

from scripts.bench.harness import RESULTS_DIR, free_port
from scripts.bench.live_client import LiveViewer

WARMUP_SECONDS = 60.0  # samples before this are left out of the trends


@dataclass(frozen=True)
class Sample:
    elapsed: float  # seconds since the daemon started
    rss_mb: float
    threads: int
    fds: int
    viewer_frames: int  # frames received by all viewers so far
    viewers_open: int


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def proc_sample(pid: int) -> tuple[float, int, int]:
    """(RSS in MB, threads, open fds) of ``pid``."""
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    threads = len(os.listdir(f"/proc/{pid}/task"))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss_kb / 1024, threads, fds


def trend_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value), in value per hour; None with < 3 points."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    slope = sum((t - mean_t) * (v - mean_v) for t, v in points) / spread
    return slope * 3600


def write_config(tmp: Path, port: int, viewers: int) -> Path:
    config = {
        "storage": {"dir": str(tmp / "data")},
        "web": {"listen": "127.0.0.1", "port": port, "max_viewers_per_client": viewers + 4},
        "cameras": [
            {"name": "demo", "source": "demo", "capture": {"width": 640, "height": 480, "fps": 15}}
        ],
    }
    path = tmp / "motiond.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Soak:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / "motiond.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.viewers: list[LiveViewer] = []
        self.samples: list[Sample] = []
        self.started = 0.0

    def start_daemon(self) -> None:
        config = write_config(self.tmp, self.port, self.args.viewers)
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "motiond", "run", "-c", str(config)],
                cwd=self.tmp,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )
        self.started = time.monotonic()
        deadline = self.started + 30
        while "web: listening" not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the daemon did not start:\n{self.log_path.read_text()}")
            time.sleep(0.1)

    def stop_daemon(self) -> int | None:
        process = self.process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        os.kill(process.pid, signal.SIGTERM)
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return None

    async def api(self, path: str) -> Any:
        client = tornado.httpclient.AsyncHTTPClient()
        response = await client.fetch(self.base + path, request_timeout=10)
        return json.loads(response.body)

    async def run(self) -> dict[str, Any]:
        assert self.process is not None
        pid = self.process.pid
        url = f"ws://127.0.0.1:{self.port}/ws/live/demo"
        for _ in range(self.args.viewers):
            viewer = LiveViewer(url)
            await viewer.connect()
            self.viewers.append(viewer)
        log(f"daemon pid {pid}, {len(self.viewers)} viewers, {self.args.minutes:g} minutes")
        end = self.started + self.args.minutes * 60
        next_log = time.monotonic()
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the daemon exited:\n{self.log_path.read_text()[-3000:]}")
            rss, threads, fds = proc_sample(pid)
            sample = Sample(
                elapsed=round(time.monotonic() - self.started, 1),
                rss_mb=round(rss, 2),
                threads=threads,
                fds=fds,
                viewer_frames=sum(v.frames for v in self.viewers),
                viewers_open=sum(v.open for v in self.viewers),
            )
            self.samples.append(sample)
            if time.monotonic() >= next_log:
                log(f"{sample}")
                next_log += 60
            if time.monotonic() >= end:
                break
            await asyncio.sleep(min(self.args.interval, max(0.0, end - time.monotonic())))
        cameras = await self.api("/api/cameras")
        clips = await self.api("/api/clips?limit=1")
        for viewer in self.viewers:
            viewer.close()
        return {"camera": cameras[0], "clips_total": clips["total"]}


def summarize(
    samples: list[Sample], final: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    steady = [s for s in samples if s.elapsed >= WARMUP_SECONDS] or samples
    metrics: dict[str, Any] = {}
    for name in ("rss_mb", "threads", "fds"):
        values = [getattr(s, name) for s in samples]
        metrics[name] = {
            "start": values[0],
            "end": values[-1],
            "max": max(values),
            "trend_per_hour": _round(
                trend_per_hour([(s.elapsed, float(getattr(s, name))) for s in steady])
            ),
        }
    seconds = samples[-1].elapsed - samples[0].elapsed
    frames = samples[-1].viewer_frames - samples[0].viewer_frames
    camera = final["camera"]
    return {
        "minutes": args.minutes,
        "viewers": args.viewers,
        "interval_s": args.interval,
        "samples": len(samples),
        "metrics": metrics,
        "viewer_fps_each": round(frames / seconds / max(1, args.viewers), 2) if seconds else None,
        "viewers_open_at_end": samples[-1].viewers_open,
        "clips_kept": camera["clips_kept"],
        "clips_discarded": camera["clips_discarded"],
        "clips_in_index": final["clips_total"],
        "camera_frames": camera["frames"],
        "frames_dropped": camera["frames_dropped"],
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def markdown(summary: dict[str, Any]) -> str:
    metrics = summary["metrics"]
    rows = [
        ("RSS (MB)", metrics["rss_mb"], "MB/h"),
        ("threads", metrics["threads"], "/h"),
        ("open fds", metrics["fds"], "/h"),
    ]
    lines = [
        f"### Soak: {summary['minutes']:g} minutes, demo camera 640x480 at 15 fps, "
        f"{summary['viewers']} live viewers",
        "",
        f"Sampled every {summary['interval_s']:g} s ({summary['samples']} samples); the trend is "
        f"a least-squares slope over the samples after the first {WARMUP_SECONDS:g} s.",
        "",
        "| | start | end | max | trend |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, values, unit in rows:
        trend = values["trend_per_hour"]
        trend_text = "n/a" if trend is None else f"{trend:+.2f} {unit}"
        lines.append(
            f"| {label} | {values['start']} | {values['end']} | {values['max']} | {trend_text} |"
        )
    lines += [
        "",
        f"Clips kept {summary['clips_kept']} (discarded {summary['clips_discarded']}, "
        f"{summary['clips_in_index']} in the index); camera frames {summary['camera_frames']}, "
        f"dropped {summary['frames_dropped']}; each viewer got {summary['viewer_fps_each']} "
        f"frames/s; {summary['viewers_open_at_end']} of {summary['viewers']} viewers "
        "still open at the end.",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="2 minutes")
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes = 2.0
    if args.minutes <= 0 or args.interval <= 0 or args.viewers < 0:
        parser.error("--minutes and --interval must be > 0, --viewers >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="motiond-soak-") as tmp_name:
        soak = Soak(args, Path(tmp_name))
        try:
            soak.start_daemon()
            final = asyncio.run(soak.run())
        finally:
            code = soak.stop_daemon()
        log(f"daemon exit code {code}")
    summary = summarize(soak.samples, final, args)
    summary["daemon_exit_code"] = code
    text = markdown(summary)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / time.strftime("soak-%Y%m%d-%H%M%S")
    stem.with_suffix(".md").write_text(text)
    stem.with_suffix(".json").write_text(
        json.dumps({**summary, "series": [asdict(s) for s in soak.samples]}, indent=1)
    )
    log(f"wrote {stem}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
