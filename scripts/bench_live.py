"""Benchmark motiond's WebSocket live view: latency, and the cost of many viewers.

One 1280x720/15 fps MJPEG camera on loopback (vtest.avi: people walk throughout, so motiond
records the whole time), motiond as its own process, and viewers on ``/ws/live/bench``:

- no viewer, then 1 viewer (full frame, then ``?width=640``), then 50 viewers (full frame, then
  ``?width=640``); each window after the viewers have settled;
- per window: motiond's CPU cores, RSS and VmHWM, threads, capture fps, frames per viewer, and
  the capture-to-arrival latency of the viewers' ``frame`` info messages.

Prints Markdown and writes it, with every figure as JSON, to bench-results/bench_live.{md,json}.

    python -m scripts.bench_live            # about 3.5 minutes
    python -m scripts.bench_live --quick    # under 2 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import tornado.httpclient

from scripts.bench import live_report
from scripts.bench.harness import (
    DEFAULT_VIDEO,
    RESULTS_DIR,
    free_port,
    git_commit,
    log,
    machine_basics,
    other_load,
    work_dir,
    write_results,
)
from scripts.bench.live_client import LatencySample, LiveViewer, latency_summary
from scripts.bench.live_procs import CAMERA, MjpegCamera, ViewerCrowd, cpu_split, motiond_program
from scripts.bench.procstat import cpu_between, memory, sample_cpu, threads, tree_cpu_seconds
from scripts.bench.programs import Program
from testbed.mjpeg_server import parse_size


@dataclass(frozen=True)
class WindowSpec:
    key: str
    label: str
    viewers: int
    width: int | None  # None: the full frame


@dataclass(frozen=True)
class Timing:
    warmup_s: float  # after the camera is online, before the first window
    settle_s: float  # after a window's viewers connect, before measuring
    seconds: float  # each measured window


class DaemonDied(RuntimeError):
    pass


def window_specs(crowd: int, width: int) -> list[WindowSpec]:
    return [
        WindowSpec("0", "no viewer", 0, None),
        WindowSpec("1-full", "1 viewer, full frame", 1, None),
        WindowSpec(f"1-w{width}", f"1 viewer, width={width}", 1, width),
        WindowSpec("crowd-full", f"{crowd} viewers, full frame", crowd, None),
        WindowSpec(f"crowd-w{width}", f"{crowd} viewers, width={width}", crowd, width),
    ]


class LiveBench:
    """Runs the windows against one running daemon and measures each."""

    def __init__(self, daemon: Program, camera: MjpegCamera, web_port: int, timing: Timing):
        self.daemon = daemon
        self.camera = camera
        self.base = f"127.0.0.1:{web_port}"
        self.timing = timing
        self.http = tornado.httpclient.AsyncHTTPClient()

    async def camera_status(self) -> dict[str, Any]:
        response = await self.http.fetch(f"http://{self.base}/api/cameras", request_timeout=5)
        cameras: list[dict[str, Any]] = json.loads(response.body)
        return next(c for c in cameras if c["name"] == CAMERA)

    def check_alive(self) -> None:
        if not self.daemon.alive():
            code = self.daemon.process.returncode if self.daemon.process else None
            raise DaemonDied(f"motiond exited (code {code}); log: {self.daemon.log_path}")

    async def wait_online(self, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                status = await self.camera_status()
            except (OSError, tornado.httpclient.HTTPClientError):
                status = {}
            if status.get("online") and status.get("frames", 0) > 0:
                return status
            await asyncio.sleep(0.5)
        raise RuntimeError(f"camera not online after {timeout:g} s; log: {self.daemon.log_path}")

    async def run_window(self, spec: WindowSpec) -> dict[str, Any]:
        query = f"?width={spec.width}" if spec.width else ""
        url = f"ws://{self.base}/ws/live/{CAMERA}{query}"
        probe = LiveViewer(url) if spec.viewers else None
        crowd = ViewerCrowd(url, spec.viewers - 1) if spec.viewers > 1 else None
        try:
            if probe is not None:
                await probe.connect()
            if crowd is not None:
                await crowd.start()
                if crowd.failures:
                    log(f"  {crowd.count - crowd.connected} viewer(s) failed: {crowd.failures}")
            await asyncio.sleep(self.timing.settle_s)
            return await self.measure(spec, probe, crowd)
        finally:
            if probe is not None:
                probe.close()
            if crowd is not None:
                await crowd.stop()
            await asyncio.sleep(1.0)  # let the daemon see the closes before the next window

    async def measure(
        self, spec: WindowSpec, probe: LiveViewer | None, crowd: ViewerCrowd | None
    ) -> dict[str, Any]:
        pid = self.daemon.pid
        status_start = await self.camera_status()
        counts_start = await crowd.counts() if crowd else None
        probe_start = probe.frames if probe else 0
        if probe is not None:
            probe.take_latencies()
        cpu_start, camera_start = sample_cpu(pid), sample_cpu(self.camera.pid)
        split_start = cpu_split(pid)
        own_start = _own_cpu_seconds()
        crowd_start = tree_cpu_seconds(crowd.pid) if crowd else 0.0
        rss_start = memory(pid).rss_mb

        samples = await self.sample_during(self.timing.seconds)

        cpu_end, camera_end = sample_cpu(pid), sample_cpu(self.camera.pid)
        split_end = cpu_split(pid)
        own_end = _own_cpu_seconds()
        crowd_end = tree_cpu_seconds(crowd.pid) if crowd else 0.0
        counts_end = await crowd.counts() if crowd else None
        status_end = await self.camera_status()
        mem = memory(pid)

        use, camera_use = cpu_between(cpu_start, cpu_end), cpu_between(camera_start, camera_end)
        client_cores = (own_end - own_start + crowd_end - crowd_start) / use.seconds
        frames = [probe.frames - probe_start] if probe else []
        crowd_latencies = []
        if counts_start is not None and counts_end is not None:
            frames += [
                b - a for a, b in zip(counts_start["frames"], counts_end["frames"], strict=True)
            ]
            crowd_latencies = counts_end["latencies"]
        probe_open = int(probe.open) if probe else 0
        result = {
            "key": spec.key,
            "label": spec.label,
            "viewers": spec.viewers,
            "width": spec.width,
            "seconds": round(use.seconds, 2),
            "daemon_cores": round(use.cores, 3),
            "daemon_system_cores": round((split_end.system - split_start.system) / use.seconds, 3),
            "daemon_ioloop_cores": round(
                (split_end.main_thread - split_start.main_thread) / use.seconds, 3
            ),
            "camera_server_cores": round(camera_use.cores, 3),
            "client_cores": round(client_cores, 3),
            # everything else on the machine: other users' work, the kernel, this harness's sampling
            "other_cores": round(
                use.machine_cores - use.cores - camera_use.cores - client_cores, 3
            ),
            "viewers_api": status_start["viewers"],
            "viewers_open": probe_open + (counts_end["open"] if counts_end else 0),
            "close_codes": counts_end["close_codes"] if counts_end else [],
            "not_jpeg": (probe.not_jpeg if probe else 0)
            + (counts_end["not_jpeg"] if counts_end else 0),
            "viewer_frames": _frame_stats(frames, use.seconds),
            "capture_fps_api_min": min((s["fps"] for s in samples), default=None),
            "capture_fps_api_end": status_end["fps"],
            "capture_fps_counted": round(
                (status_end["frames"] - status_start["frames"]) / use.seconds, 2
            ),
            "frames_dropped": status_end["frames_dropped"] - status_start["frames_dropped"],
            "recording_throughout": status_start["recording"]
            and all(s["recording"] for s in samples),
            "rss_start_mb": round(rss_start, 1),
            "rss_end_mb": round(mem.rss_mb, 1),
            "rss_max_mb": round(max([rss_start, mem.rss_mb] + [s["rss_mb"] for s in samples]), 1),
            "hwm_mb": round(mem.peak_rss_mb, 1),
            "threads_min": min(s["threads"] for s in samples),
            "threads_max": max(s["threads"] for s in samples),
            "latency_probe": latency_summary(probe.take_latencies() if probe else []),
            "latency_crowd": latency_summary(crowd_latencies_from(crowd_latencies)),
        }
        return result

    async def sample_during(self, seconds: float) -> list[dict[str, Any]]:
        """Once a second: RSS, threads, and the camera's fps and recording flag."""
        samples = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(1.0, left))
            self.check_alive()
            status = await self.camera_status()
            samples.append(
                {
                    "rss_mb": memory(self.daemon.pid).rss_mb,
                    "threads": threads(self.daemon.pid),
                    "fps": status["fps"],
                    "recording": status["recording"],
                }
            )
        return samples


def crowd_latencies_from(rows: list[list[float]]) -> list[LatencySample]:
    return [LatencySample(*row) for row in rows]


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _frame_stats(frames: list[int], seconds: float) -> dict[str, Any]:
    if not frames:
        return {"min": None, "median": None, "max": None, "fps_min": None, "fps_median": None}
    return {
        "min": min(frames),
        "median": statistics.median(frames),
        "max": max(frames),
        "fps_min": round(min(frames) / seconds, 2),
        "fps_median": round(statistics.median(frames) / seconds, 2),
    }


async def run_all(
    args: argparse.Namespace, timing: Timing, workdir: Path
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Start the camera and motiond, run every window; both are stopped whatever happens."""
    camera = MjpegCamera(args.video, args.size, args.fps, workdir / "mjpeg_server.log", free_port())
    web_port = free_port()
    windows: list[dict[str, Any]] = []
    run: dict[str, Any] = {"daemon_exit_code": None}
    log(f"camera: encoding {args.video.name} at {args.size[0]}x{args.size[1]}")
    try:
        camera.start()
        log(f"camera: {camera.url} (pid {camera.pid})")
        daemon = motiond_program(workdir, camera.url, args.fps, web_port)
        run["config"] = daemon.settings
        daemon.start()
        try:
            log(f"motiond: pid {daemon.pid}, http://127.0.0.1:{web_port}/, log {daemon.log_path}")
            bench = LiveBench(daemon, camera, web_port, timing)
            status = await bench.wait_online()
            log(f"motiond: camera online at {status['width']}x{status['height']}")
            await asyncio.sleep(timing.warmup_s)
            for spec in window_specs(args.viewers, args.width):
                log(f"window: {spec.label}")
                try:
                    result = await bench.run_window(spec)
                except DaemonDied as exc:
                    windows.append({"key": spec.key, "label": spec.label, "error": str(exc)})
                    break
                windows.append(result)
                log(
                    f"  {result['daemon_cores']:.3f} cores, "
                    f"{result['capture_fps_counted']} fps captured, "
                    f"latency median {result['latency_probe']['median_ms']} ms"
                )
        finally:
            run["daemon_exit_code"] = daemon.stop()
            log(f"motiond: stopped (exit code {run['daemon_exit_code']})")
    finally:
        camera.stop()
    return windows, run


def jpeg_kb(video: Path, size: tuple[int, int]) -> float:
    from testbed.mjpeg_server import jpeg_frames_from_video  # noqa: PLC0415

    frames = jpeg_frames_from_video(str(video), size, limit=30)
    return round(sum(len(f) for f in frames) / len(frames) / 1024, 1)


def machine_info() -> dict[str, Any]:
    import cv2  # noqa: PLC0415

    import motiond  # noqa: PLC0415

    return {
        **machine_basics(),
        "tornado": tornado.version,
        "opencv": cv2.__version__,
        "motiond": f"{motiond.__version__} ({git_commit() or 'no commit'})",
        "loadavg_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def notes_for(windows: list[dict[str, Any]], fps: float) -> list[str]:
    notes = []
    for w in windows:
        if "error" in w:
            notes.append(f"{w['label']}: {w['error']}")
            continue
        if w["viewers_api"] != w["viewers"]:
            notes.append(f"{w['label']}: the API counted {w['viewers_api']} viewers")
        if w["close_codes"]:
            notes.append(f"{w['label']}: viewers closed with codes {w['close_codes']}")
        if w["not_jpeg"]:
            notes.append(f"{w['label']}: {w['not_jpeg']} binary message(s) were not JPEG")
        if not w["recording_throughout"]:
            notes.append(f"{w['label']}: motiond was not recording throughout")
        if w["frames_dropped"]:
            notes.append(f"{w['label']}: the recorder dropped {w['frames_dropped']} frame(s)")
        if w["capture_fps_counted"] < 0.95 * fps:
            notes.append(f"{w['label']}: captured {w['capture_fps_counted']} fps of {fps:g}")
    measured = [w for w in windows if "error" not in w]
    if measured:
        other = [w["other_cores"] for w in measured]
        notes.append(
            other_load(other, "motiond, the camera server or the viewers", median=False)
            + " CPU figures are per-process CPU time, so contention shows mostly as noise; on a "
            "shared machine, run it twice."
        )
    return notes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--size", type=parse_size, default=(1280, 720))
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--viewers", type=int, default=50, help="viewers in the crowd windows")
    parser.add_argument("--width", type=int, default=640, help="the scaled windows' ?width=")
    parser.add_argument(
        "--quick", action="store_true", help="5 s warm-up, 3 s settle, 12 s windows"
    )
    parser.add_argument("--warmup", type=float, help="seconds after the camera is online (10)")
    parser.add_argument("--settle", type=float, help="seconds after viewers connect (5)")
    parser.add_argument("--seconds", type=float, help="each measured window (30)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--keep", action="store_true", help="keep the work dir (config, logs)")
    args = parser.parse_args(argv)
    if args.viewers < 2:
        parser.error("--viewers must be at least 2")
    return args


def timing_from(args: argparse.Namespace) -> Timing:
    base = Timing(5, 3, 12) if args.quick else Timing(10, 5, 30)
    return Timing(
        warmup_s=base.warmup_s if args.warmup is None else args.warmup,
        settle_s=base.settle_s if args.settle is None else args.settle,
        seconds=base.seconds if args.seconds is None else args.seconds,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.video.exists():
        print(f"no such video: {args.video}", file=sys.stderr)
        return 2
    timing = timing_from(args)
    started = time.monotonic()
    machine = machine_info()
    with work_dir("motiond-bench-live-", args.keep) as workdir:
        windows, run = asyncio.run(run_all(args, timing, workdir))
    results: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine,
        "stream": {
            "video": args.video.name,
            "size": f"{args.size[0]}x{args.size[1]}",
            "fps": args.fps,
            "jpeg_kb": jpeg_kb(args.video, args.size),
        },
        "timing": asdict(timing),
        **run,
        "windows": windows,
        "notes": notes_for(windows, args.fps),
    }
    results["targets"] = live_report.check_targets(results)
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    text = live_report.markdown(results)
    write_results(args.out, "bench_live", results, text)
    print(text)
    log(f"done in {results['elapsed_s']:.0f} s; results in {args.out}/bench_live.{{md,json}}")
    failed = any("error" in w for w in windows) or not all(c["met"] for c in results["targets"])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
