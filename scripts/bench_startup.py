"""Start-up with many clips: python -m scripts.bench_startup [--short]

For each clip count (30,000 and 300,000; ``--short``: 30,000 only), a storage folder is filled
with synthetic clips (testbed/many_clips.py: a sidecar and a placeholder file each, 1000 a day,
every 10th with a poster), then ``python -m motiond run`` starts on it with the demo camera and
an off-site destination (rclone's local backend, when rclone is installed). Timed from the
process's start, by the first log line of each:

- the web server listening, and the camera online (capturing and detecting: it records as soon
  as something moves; the demo's first walker comes 5 s after it opens);
- the clip index loaded in the background (every sidecar read), and the upload catch-up done;
- then, with the index loaded: GET /api/clips?limit=50 and GET /api/snapshots?limit=50 (median
  of 20), a snapshot POST while six snapshot listings run at once (the issue's case), and the
  daemon's resident memory.

Prints a Markdown table and writes it with the figures to bench-results/startup-*.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from scripts.bench.harness import (
    REPO_ROOT,
    RESULTS_DIR,
    free_port,
    log,
    machine_info,
    work_dir,
    write_results,
)
from scripts.bench.procstat import memory, stop_process
from testbed.many_clips import write_many_clips

MARKS = {
    "web": "web: listening",
    "camera": "camera cam: online",
    "index": "clip index loaded",
    "uploads": "clip(s) added",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="30,000 clips only")
    parser.add_argument("--clips", type=int, nargs="*", help="clip counts (default 30000 300000)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    counts = args.clips or ([30_000] if args.short else [30_000, 300_000])
    results: dict[str, Any] = {"machine": machine_info(), "runs": []}
    for count in counts:
        with work_dir("motiond-startup-", args.keep) as work:
            results["runs"].append(measure(work, count))
    text = report(results)
    print(text)
    stem = time.strftime("startup-%Y%m%d-%H%M%S")
    log(f"written: {write_results(args.out, stem, results, text)}.md")


def measure(work: Path, count: int) -> dict[str, Any]:
    log(f"{count} clips: writing them")
    began = time.monotonic()
    write_many_clips(work / "data", count, poster_every=10)
    written = time.monotonic() - began
    subprocess.run(["sync"], check=False)
    port = free_port()
    config: dict[str, Any] = {
        "storage": {"dir": str(work / "data"), "max_age": 0, "min_free": 0},
        "web": {"listen": "127.0.0.1", "port": port},
        "cameras": [{"name": "cam", "source": "demo"}],
    }
    if shutil.which("rclone"):
        config["upload"] = {"destinations": [{"remote": str(work / "offsite")}]}
    (work / "motiond.yaml").write_text(json.dumps(config))
    log(f"{count} clips: starting motiond")
    with open(work / "motiond.log", "wb") as output:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "motiond", "run", "-c", str(work / "motiond.yaml")],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=output,
        )
    try:
        seen = wait_for_marks(work / "motiond.log", started, process, "upload" in config)
        base = f"http://127.0.0.1:{port}"
        run = {
            "clips": count,
            "write_seconds": round(written, 1),
            **{f"{k}_seconds": round(v, 2) for k, v in seen.items()},
            "clips_listed": json.loads(get(base + "/api/clips?limit=1")[1])["total"],
            "api_clips_ms": median_ms(lambda: get(base + "/api/clips?limit=50")),
            "api_snapshots_ms": median_ms(lambda: get(base + "/api/snapshots?limit=50")),
            "snapshot_post_behind_6_listings_ms": post_behind_listings(base),
            "rss_mb": round(memory(process.pid).rss_mb, 1),
        }
    finally:
        stop_process(process)
    log(f"{count} clips: {run}")
    return run


def wait_for_marks(
    log_path: Path, started: float, process: subprocess.Popen[bytes], uploads: bool
) -> dict[str, float]:
    wanted = {k: v for k, v in MARKS.items() if uploads or k != "uploads"}
    seen: dict[str, float] = {}
    deadline = started + 600
    while len(seen) < len(wanted):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"motiond stopped or took too long:\n{log_path.read_text()[-3000:]}")
        text = log_path.read_text(errors="replace")
        now = time.monotonic()
        for key, mark in wanted.items():
            if key not in seen and mark in text:
                seen[key] = now - started
        time.sleep(0.02)
    return seen


def get(url: str, data: bytes | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def median_ms(call: Any, times: int = 20) -> float:
    samples = []
    for _ in range(times):
        began = time.perf_counter()
        status, _body = call()
        samples.append((time.perf_counter() - began) * 1000)
        assert status == 200, status
    return round(statistics.median(samples), 1)


def post_behind_listings(base: str) -> float:
    """A snapshot POST sent while six snapshot listings are in flight."""
    listings = [
        threading.Thread(target=get, args=(base + "/api/snapshots?limit=500",)) for _ in range(6)
    ]
    for thread in listings:
        thread.start()
    began = time.perf_counter()
    status, body = get(base + "/api/cameras/cam/snapshot", data=b"{}")
    took = (time.perf_counter() - began) * 1000
    for thread in listings:
        thread.join()
    assert status == 201, (status, body)
    return round(took, 1)


def report(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        f"Machine: {machine['cpu_model']}, {machine['nproc']} CPUs, motiond {machine['motiond']}"
        " (timings from the process's start; the machine may be shared: see the note).",
        "",
        "| clips | web listening | camera online | clip index loaded | upload catch-up done "
        "| GET /api/clips | GET /api/snapshots | snapshot POST behind 6 listings | RSS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in results["runs"]:
        uploads = run.get("uploads_seconds")
        lines.append(
            f"| {run['clips']:,} | {run['web_seconds']:.2f} s | {run['camera_seconds']:.2f} s "
            f"| {run['index_seconds']:.1f} s | "
            + (f"{uploads:.1f} s" if uploads is not None else "(no rclone)")
            + f" | {run['api_clips_ms']} ms | {run['api_snapshots_ms']} ms "
            f"| {run['snapshot_post_behind_6_listings_ms']} ms | {run['rss_mb']} MB |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
