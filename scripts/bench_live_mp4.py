"""Benchmark the MP4 live view (the camera's own H.264 over WebSocket): cost per viewer, latency.

A 1920x1080/15 fps H.264 main stream (GOP 1 s, 6 Mbit/s) and a 640x360 sub stream, made from
vtest.avi (people walking throughout) and served by GStreamer's RTSP server on loopback;
motiond as its own process with that camera (sub stream decoded for detection, main copied),
disarmed so that clip writing does not blur the figures. Then:

- windows of 0, 1 and N (default 10) WebSocket viewers of ``?format=mp4&stream=main``, each
  after the viewers settled: motiond's CPU cores (and its web server thread's, where each
  picture is segmented and written to the viewers) and RSS; per viewer, the difference to the
  window without viewers, divided by the viewers; the pictures each viewer got per second, and
  how many times it was skipped forward; the daemon's pass-through latency (a picture's
  capture to its arrival at a viewer, from the server's clock messages: same machine, same clock);
- Debian's Chromium playing the live page (tests/browser/live_video.mjs) for a while: the
  latency from a packet's arrival to its display (the page's figure: capture time from the
  server's clock messages to ``requestVideoFrameCallback``'s expected display time), and how
  far behind the newest buffered picture it plays, once a second.

Prints Markdown and writes it, with every figure as JSON, to bench-results/bench_live_mp4.*.

    python -m scripts.bench_live_mp4            # about 4 minutes
    python -m scripts.bench_live_mp4 --quick    # about 2 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tornado.httpclient
import tornado.websocket

from scripts.bench.harness import (
    DEFAULT_VIDEO,
    MEDIA_DIR,
    REPO_ROOT,
    RESULTS_DIR,
    free_port,
    git_commit,
    log,
    machine_basics,
    work_dir,
    write_results,
)
from scripts.bench.ipcam_media import stream_video
from scripts.bench.procstat import cpu_between, memory, sample_cpu, thread_run_seconds
from scripts.bench.programs import Program, motiond_run
from testbed.rtsp import RtspCamera, rtsp_server_unavailable

CAMERA = "bench"
FPS = 15
BROWSER_DIR = REPO_ROOT / "tests" / "browser"


@dataclass
class Mp4Viewer:
    """One viewer of the MP4 live view: counts pictures, skips and pass-through latency."""

    url: str
    pictures: int = 0
    bytes_received: int = 0
    skips: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    _last_sequence: int | None = None
    _clock_wall_ms: float | None = None
    _connection: Any = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._connection = await tornado.websocket.websocket_connect(self.url)
        self._task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while (message := await self._connection.read_message()) is not None:
            if isinstance(message, str):
                data = json.loads(message)
                if data.get("type") == "clock":
                    self._clock_wall_ms = data["wall_ms"]
                continue
            self.bytes_received += len(message)
            if message[4:8] != b"moof":
                continue
            self.pictures += 1
            sequence = int.from_bytes(message[20:24], "big")  # moof > mfhd > sequence_number
            if self._last_sequence is not None and sequence != self._last_sequence + 1:
                self.skips += 1
            self._last_sequence = sequence
            if self._clock_wall_ms is not None:  # the picture right after a clock message
                self.latencies_ms.append(time.time() * 1000 - self._clock_wall_ms)
                self._clock_wall_ms = None

    def stop(self) -> None:
        if self._connection is not None:
            self._connection.close()
        if self._task is not None:
            self._task.cancel()


def summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p90": None, "max": None, "count": 0}
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 1),
        "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
        "max": round(ordered[-1], 1),
        "count": len(ordered),
    }


async def window(
    daemon: Program, url: str, viewers: int, settle: float, seconds: float
) -> dict[str, Any]:
    crowd = [Mp4Viewer(url) for _ in range(viewers)]
    try:
        for viewer in crowd:
            await viewer.start()
        await asyncio.sleep(settle)
        for viewer in crowd:
            viewer.pictures, viewer.skips, viewer.latencies_ms = 0, 0, []
        start = sample_cpu(daemon.pid)
        threads_before = thread_run_seconds(daemon.pid)
        rss = [memory(daemon.pid).rss_mb]
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(1.0, left))
            daemon.check_alive()
            rss.append(memory(daemon.pid).rss_mb)
        use = cpu_between(start, sample_cpu(daemon.pid))
        threads_after = thread_run_seconds(daemon.pid)
    finally:
        for viewer in crowd:
            viewer.stop()
        await asyncio.sleep(1.5)  # the daemon sees the closes before the next window
    return {
        "viewers": viewers,
        "seconds": round(use.seconds, 1),
        "daemon_cores": round(use.cores, 4),
        "machine_cores": round(use.machine_cores, 3),
        # The camera's threads (cap, det) and the rest: the web server's IOLoop, where the
        # segmenter and the viewers' writes run, and threads idle here.
        "thread_cores": {
            kind: round((seconds - threads_before.get(kind, 0.0)) / use.seconds, 4)
            for kind, seconds in sorted(threads_after.items())
        },
        "rss_median_mb": round(statistics.median(rss), 1),
        "rss_max_mb": round(max(rss), 1),
        "pictures_per_s": [round(v.pictures / use.seconds, 2) for v in crowd],
        "skips": sum(v.skips for v in crowd),
        "passthrough_ms": summary([x for v in crowd for x in v.latencies_ms]),
    }


def browser_run(base: str, seconds: int) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (BROWSER_DIR / "node_modules" / "playwright-core").exists():
        return {"error": "needs Node.js and tests/browser/node_modules (npm ci there)"}
    settings = {"base": base, "video": CAMERA, "seconds": seconds, "jpeg": [], "grid": False}
    ran = subprocess.run(
        [node, str(BROWSER_DIR / "live_video.mjs"), json.dumps(settings)],
        cwd=BROWSER_DIR,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    if ran.returncode != 0 or not ran.stdout.strip():
        return {"error": (ran.stdout + ran.stderr)[-2000:]}
    result: dict[str, Any] = json.loads(ran.stdout.strip().splitlines()[-1])
    if not result.get("ok"):
        return {"error": result.get("error")}
    samples = result["samples"]
    return {
        "seconds": seconds,
        "seconds_to_first_picture": result["secondsToVideo"],
        "mime": result["mime"],
        # Per picture: each sample holds the last 15 pictures' figures (a second at 15 fps).
        "latency_ms": summary([ms for s in samples for ms in s["frameLatenciesMs"]]),
        "behind_s": summary([s["behind"] for s in samples if s["behind"] is not None]),
        "frames_per_s": round(
            (samples[-1]["frames"] - samples[0]["frames"]) / (len(samples) - 1), 2
        ),
    }


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    footage_s = 30.0  # looped by the server
    main = stream_video(DEFAULT_VIDEO, MEDIA_DIR, (1920, 1080), FPS, 6_000_000, 1.0, footage_s, FPS)
    sub = stream_video(DEFAULT_VIDEO, MEDIA_DIR, (640, 360), FPS, 500_000, 1.0, footage_s, FPS)
    server = RtspCamera(
        {"/main": main.path, "/sub": sub.path}, log_path=workdir / "rtsp.log", loop=True
    )
    server.start()
    port = free_port()
    config = {
        "storage": {"dir": str(workdir / "data")},
        "web": {"port": port, "max_viewers_per_camera": 200, "max_viewers_per_client": 200},
        "cameras": [
            {
                "name": CAMERA,
                "source": server.url("/main"),
                "capture": {"detect_source": server.url("/sub")},
            }
        ],
    }
    daemon = motiond_run(workdir, config, workdir / "data")
    results: dict[str, Any] = {"stream": {"main": main.name, "sub": sub.name, "gop_s": 1.0}}
    try:
        daemon.start()
        http = tornado.httpclient.AsyncHTTPClient()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            daemon.check_alive()
            try:
                cameras = json.loads((await http.fetch(f"{base}/api/cameras")).body)
                if cameras[0]["online"] and cameras[0]["frames"] > 30:
                    break
            except (OSError, tornado.httpclient.HTTPClientError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"camera not online; log {daemon.log_path}")
            await asyncio.sleep(0.5)
        await http.fetch(
            f"{base}/api/cameras/{CAMERA}/disarm",
            method="POST",
            body=b"{}",
            headers={"Content-Type": "application/json"},
        )
        await asyncio.sleep(args.settle)
        url = f"ws://127.0.0.1:{port}/ws/live/{CAMERA}?format=mp4&stream=main"
        results["windows"] = []
        for count in (0, 1, args.viewers):
            log(f"window: {count} viewer(s)")
            row = await window(daemon, url, count, args.settle, args.seconds)
            log(f"  {row['daemon_cores']} cores, RSS {row['rss_median_mb']} MB")
            results["windows"].append(row)
        log(f"Chromium: the live page for {args.browser_seconds} s")
        results["browser"] = browser_run(base, args.browser_seconds)
    finally:
        results["daemon_exit_code"] = daemon.stop()
        server.stop()
    return results


def report(results: dict[str, Any]) -> str:
    windows = results["windows"]
    idle, one, crowd = windows[0], windows[1], windows[-1]
    n = crowd["viewers"]
    per_viewer_cores = (crowd["daemon_cores"] - idle["daemon_cores"]) / n
    per_viewer_mb = (crowd["rss_median_mb"] - idle["rss_median_mb"]) / n
    lines = [
        "# The MP4 live view: cost per viewer and latency",
        "",
        f"Stream: {results['stream']['main']} main (6 Mbit/s, GOP 1 s) + "
        f"{results['stream']['sub']} sub, RTSP on loopback; camera disarmed. "
        f"Commit {results['commit']}, {results['machine'].get('cpu_model', '')}.",
        "",
        "| viewers | motiond cores | web server thread cores | RSS median MB | "
        "pictures/s per viewer | skips | pass-through median ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in windows:
        pics = row["pictures_per_s"]
        lines.append(
            f"| {row['viewers']} | {row['daemon_cores']:.4f} | "
            f"{row.get('thread_cores', {}).get('other', 0.0):.4f} | {row['rss_median_mb']} | "
            f"{min(pics) if pics else '-'}-{max(pics) if pics else '-'} | {row['skips']} | "
            f"{row['passthrough_ms']['median']} |"
        )
    lines += [
        "",
        f"Per viewer ({n} viewers against none): {per_viewer_cores:+.4f} cores, "
        f"{per_viewer_mb:+.2f} MB RSS; {n} viewers add {n * per_viewer_cores:+.4f} cores "
        f"(1 viewer: {one['daemon_cores'] - idle['daemon_cores']:+.4f}).",
    ]
    browser = results.get("browser", {})
    if "error" in browser:
        lines += ["", f"Chromium: not measured ({browser['error']})."]
    else:
        lines += [
            "",
            f"Chromium ({browser['seconds']} s, {browser['mime']}): first picture after "
            f"{browser['seconds_to_first_picture']:.2f} s; capture-to-display latency median "
            f"{browser['latency_ms']['median']} ms (p90 {browser['latency_ms']['p90']}, max "
            f"{browser['latency_ms']['max']}); behind the newest buffered picture median "
            f"{browser['behind_s']['median']} s (max {browser['behind_s']['max']}); "
            f"{browser['frames_per_s']} frames/s shown.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short windows (about 1.5 min)")
    parser.add_argument("--viewers", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    args.seconds = 15.0 if args.quick else 40.0
    args.settle = 3.0 if args.quick else 5.0
    args.browser_seconds = 15 if args.quick else 40
    if why := rtsp_server_unavailable():
        print(why, file=sys.stderr)
        return 2
    with work_dir("bench-live-mp4-", args.keep) as workdir:
        results = asyncio.run(run(args, workdir))
    results["commit"] = git_commit()
    results["machine"] = machine_basics()
    results["quick"] = args.quick
    text = report(results)
    print(text)
    write_results(RESULTS_DIR, "bench_live_mp4", results, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
