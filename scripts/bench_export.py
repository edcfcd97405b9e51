"""How an export (``GET /api/export``) behaves on an hour of continuous footage: time to the
first bytes, time to the whole file, and the daemon's memory and CPU meanwhile.

The footage: one minute of the IP camera benchmark's 1280x720/15 fps, 3 Mbit/s camera file
(vtest.avi scaled), recorded by motiond's own continuous writer into a segment, then linked
under 60 consecutive segment names (hard links: an hour of footage in one minute's space).
``motiond run`` starts on that storage (the segment index is rebuilt from the names), and the
hour is exported ``--runs`` times over loopback by a client that reads as fast as it can.
Writes Markdown and JSON to bench-results/.

    python -m scripts.bench_export            # 3 exports of an hour, about 2 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from motiond.capture.sources.pyav import PyAVSource
from motiond.config import CameraConfig, CaptureConfig, RecordConfig
from motiond.events import Event, SegmentEnded
from motiond.record.continuous import ContinuousRecorder
from motiond.store.layout import Segment, Storage, finished_segment_path, reserve_segment
from scripts.bench.harness import (
    DEFAULT_VIDEO,
    MEDIA_DIR,
    REPO_ROOT,
    RESULTS_DIR,
    free_port,
    log,
    machine_info,
    motiond_source_digest,
    work_dir,
    write_results,
)
from scripts.bench.ipcam_media import stream_video
from scripts.bench.procstat import memory, sample_cpu

SIZE, FPS, BITRATE = (1280, 720), 15.0, 3_000_000
MINUTES = 60
T0 = 1_800_000_000.0  # the footage's first frame, epoch seconds


def one_segment(video: Path, storage: Storage) -> Segment:
    """A minute of the camera file as motiond's continuous writer records it."""
    capture = CaptureConfig(source=str(video), kind="url", open_timeout=10, read_timeout=10)
    source = PyAVSource(capture, threading.Event(), decode=False)
    camera = CameraConfig(
        name="cam", capture=capture, record=RecordConfig(continuous=True, segment=3600.0)
    )
    finished: list[Segment] = []

    def on_event(event: Event) -> None:
        if isinstance(event, SegmentEnded):
            finished.append(event.segment)

    writer = ContinuousRecorder(camera, storage, on_event, FPS, wait_when_full=True)
    writer.start()
    source.open()
    try:
        first = None
        while (frame := source.read()) is not None:
            first = first if first is not None else frame.mono
            if frame.mono - first >= 60.0:
                break
            writer.push(frame)
    finally:
        source.close()
        writer.stop(60)
    (segment,) = finished
    return segment


def an_hour_of(segment: Segment, storage: Storage) -> None:
    """``segment`` linked under MINUTES consecutive names from T0 (then removed itself)."""
    for minute in range(MINUTES):
        partial = reserve_segment(storage, "cam", T0 + 60.0 * minute)
        partial.unlink()
        os.link(segment.path, finished_segment_path(partial, segment.duration))
    segment.path.unlink()


def export_once(base: str, pid: int, start: float, end: float) -> dict[str, Any]:
    """One export, read as fast as it comes; the daemon's RSS sampled meanwhile."""
    peak = {"rss": memory(pid).rss_mb}
    done = threading.Event()

    def watch_memory() -> None:
        while not done.wait(0.05):
            peak["rss"] = max(peak["rss"], memory(pid).rss_mb)

    watcher = threading.Thread(target=watch_memory, daemon=True)
    rss_before = peak["rss"]
    watcher.start()
    cpu_before = sample_cpu(pid)
    asked = time.monotonic()
    url = f"{base}/api/export?camera=cam&start={start}&end={end}"
    size = 0
    with urllib.request.urlopen(url, timeout=120) as reply:
        first = reply.read(1)
        first_byte = time.monotonic() - asked
        size = len(first)
        while chunk := reply.read(1 << 20):
            size += len(chunk)
    total = time.monotonic() - asked
    cpu_after = sample_cpu(pid)
    done.set()
    watcher.join()
    return {
        "first_byte_s": round(first_byte, 3),
        "total_s": round(total, 2),
        "mb": round(size / 1e6, 1),
        "mb_per_s": round(size / 1e6 / total, 1),
        "daemon_cpu_s": round(cpu_after.process - cpu_before.process, 2),
        "rss_before_mb": round(rss_before, 1),
        "rss_peak_mb": round(peak["rss"], 1),
    }


def run_daemon(workdir: Path, storage: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = workdir / "motiond.yaml"
    config.write_text(
        json.dumps(
            {
                "storage": {"dir": str(storage), "min_free": 0},
                "web": {"port": port},
                "cameras": [{"name": "demo", "source": "demo", "capture": {"fps": 2}}],
            }
        )
    )
    log_file = (workdir / "motiond.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "motiond", "run", "-c", str(config)],
        cwd=REPO_ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while b"web: listening" not in (workdir / "motiond.log").read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((workdir / "motiond.log").read_text())
        time.sleep(0.1)
    return process, f"http://127.0.0.1:{port}"


def markdown(runs: list[dict[str, Any]], segment_mb: float) -> str:
    def median(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    firsts = ", ".join(f"{r['first_byte_s']:.3f} s" for r in runs)

    return (
        f"## Export of an hour (`python -m scripts.bench_export`)\n\n"
        f"An hour of one 1280x720/15 fps, 3 Mbit/s camera's continuous footage (60 segments "
        f"of a minute, {segment_mb:.1f} MB each), exported over loopback; medians of "
        f"{len(runs)} exports.\n\n"
        "| first bytes after | whole hour in | size MB | MB/s | daemon CPU s | daemon RSS "
        "before the first export / highest during any MB |\n|---|---|---|---|---|---|\n"
        f"| {median('first_byte_s'):.3f} s | {median('total_s'):.1f} s | {median('mb'):.0f} | "
        f"{median('mb_per_s'):.0f} | {median('daemon_cpu_s'):.1f} | "
        f"{runs[0]['rss_before_mb']:.0f} / {max(r['rss_peak_mb'] for r in runs):.0f} |\n"
        f"\nFirst bytes after, per export: {firsts}.\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--media-dir", type=Path, default=MEDIA_DIR)
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args(argv)
    if not args.video.is_file():
        print(f"no footage at {args.video} (see docs/benchmarks.md)", file=sys.stderr)
        return 2
    source = motiond_source_digest()
    video = stream_video(args.video, args.media_dir, SIZE, FPS, BITRATE, 30.0, 35.0)
    runs = []
    with work_dir("motiond-bench-export-", args.keep) as workdir:
        storage = Storage(workdir / "data")
        log("recording a minute of footage")
        segment = one_segment(video.path, storage)
        segment_mb = segment.size / 1e6
        an_hour_of(segment, storage)
        process, base = run_daemon(workdir, storage.root)
        try:
            for run in range(args.runs):
                result = export_once(base, process.pid, T0 + 30, T0 + 30 + 3600)
                log(f"export {run + 1}: {result}")
                runs.append(result)
        finally:
            process.terminate()
            process.wait(30)
    text = markdown(runs, segment_mb)
    print(text)
    results = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "motiond_source_sha256": source,
        "runs": runs,
    }
    stem = f"bench-export-{time.strftime('%Y%m%d-%H%M%S')}"
    log(f"results: {write_results(args.out, stem, results, text)}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
