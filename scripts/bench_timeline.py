"""Timeline request time with a month of footage: python -m scripts.bench_timeline

Fills a storage directory with what a month of three cameras leaves: --days days of --clips
motion clips a day per camera (sidecars, posters, clip files of a few bytes: the timeline
never opens them), continuous segments of 10 minutes around the clock for the newest
--segment-days days (storage.continuous_max_age's default, 3 days), five on-demand snapshots a
day and a camera outage a day in the camera history. Then it starts the real daemon on it
(its cameras point at a closed loopback port: they stay offline and cost nothing) and times
``GET /api/timeline`` for a whole local day, over HTTP on loopback, as the /review page asks:

- each camera's day alone, --repeat times, for a day with continuous footage (yesterday) and
  one without (the oldest day);
- the three cameras' days at once (the page's first load: three requests in parallel), the
  time until the last answer arrives;
- with --browser, the page itself in headless Chromium (Debian's, driven by playwright-core
  from tests/browser/node_modules): a fresh browser context opens
  /review?camera=front&t=<yesterday noon> and the time until the page has drawn the three
  cameras' day and chosen the footage (``body[data-ready]``) is taken, --repeat times.

Prints a Markdown table (median and slowest of the repeats) and the daemon's start-up time
(clip and segment indexes rebuilt from disk).
Usage: python -m scripts.bench_timeline [--days 30] [--clips 50] [--segment-days 3]
                                        [--repeat 20] [--quick] [--browser]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from motiond.store.history import CameraHistory, HistoryEntry
from motiond.store.layout import (
    ClipRecord,
    Storage,
    finished_segment_path,
    reserve_segment,
    utc_parts,
)
from scripts.bench.harness import free_port, log, machine_basics, work_dir

CAMERAS = ("front", "garden", "drive")
DAY = 86400.0
SEGMENT = 600.0
START_TIMEOUT = 120.0


def local_midnight(t: float) -> float:
    moment = time.localtime(t)
    return time.mktime((moment.tm_year, moment.tm_mon, moment.tm_mday, 0, 0, 0, 0, 0, -1))


def clip_record(camera: str, start: float, duration: float) -> ClipRecord:
    day, stem = utc_parts(start)
    clip_id = f"{camera}/{day}/{stem}.mp4"
    poster = f"warn/{camera}/{day}/{stem}-start.jpg"
    return ClipRecord.from_json(
        {
            "id": clip_id,
            "camera": camera,
            "file": f"clips/{clip_id}",
            "start_ts": start,
            "end_ts": start + duration,
            "duration": duration,
            "frames": int(duration * 15),
            "changed_frames": int(duration * 10),
            "peak_delta": 0.02,
            "codec": "h264",
            "width": 1920,
            "height": 1080,
            "fps": 15.0,
            "size": int(duration * 500_000),
            "snapshots": [poster],
            "poster": poster,
            "mode": "copy",
        }
    )


def fill(storage: Storage, days: int, clips: int, segment_days: int, now: float) -> dict[str, int]:
    """A month of footage on disk; returns what was written."""
    storage.ensure()
    counts = {"clips": 0, "segments": 0, "snapshots": 0, "history": 0}
    history = CameraHistory(storage.root, 0)
    today = local_midnight(now)
    for camera in CAMERAS:
        for back in range(days):
            day = local_midnight(today - back * DAY + DAY / 2)
            for n in range(clips):
                start = day + (n + 0.5) * (DAY / clips) + (n * 137 + len(camera) * 61) % 600
                if start > now - 60:
                    continue
                record = clip_record(camera, start, 15.0 + n % 40)
                clip = storage.clip_path(record.id)
                clip.parent.mkdir(parents=True, exist_ok=True)
                clip.write_bytes(b"\0" * 64)
                storage.sidecar_of(clip).write_text(json.dumps(record.to_json()))
                assert record.poster is not None
                poster = storage.root / record.poster
                poster.parent.mkdir(parents=True, exist_ok=True)
                poster.write_bytes(b"\xff\xd8\xff\xd9")
                counts["clips"] += 1
            for n in range(5):
                taken = day + 3600 * (4 * n + 1)
                if taken < now:
                    storage.reserve_snapshot(camera, taken).write_bytes(b"\xff\xd8\xff\xd9")
                    counts["snapshots"] += 1
            for at, event in ((day + 7200, "offline"), (day + 7500, "online")):
                if at < now:
                    history.write(HistoryEntry(camera, at, event, "lost"))
                    counts["history"] += 1
        start = today - (segment_days - 1) * DAY
        while start + SEGMENT < now:
            partial = reserve_segment(storage, camera, start)
            partial.write_bytes(b"\0" * 64)
            partial.rename(finished_segment_path(partial, SEGMENT - 0.067))
            counts["segments"] += 1
            start += SEGMENT
    return counts


def start_daemon(workdir: Path, storage: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    import yaml  # noqa: PLC0415

    port = free_port()
    closed = free_port()  # nobody listens there: the cameras stay offline
    config = {
        "storage": {"dir": str(storage), "max_age": "400d", "min_free": "0"},
        "web": {"listen": "127.0.0.1", "port": port},
        "cameras": [{"name": c, "source": f"http://127.0.0.1:{closed}/video"} for c in CAMERAS],
    }
    (workdir / "motiond.yaml").write_text(yaml.safe_dump(config))
    log_file = open(workdir / "motiond.log", "wb")  # noqa: SIM115 (the daemon's stderr)
    began = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "motiond", "run", "-c", str(workdir / "motiond.yaml")],
        stderr=log_file,
    )
    url = f"http://127.0.0.1:{port}"
    while time.monotonic() - began < START_TIMEOUT:
        if process.poll() is not None:
            raise RuntimeError((workdir / "motiond.log").read_text()[-2000:])
        try:
            with urllib.request.urlopen(url + "/api/session", timeout=2):
                return process, url, time.monotonic() - began
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the daemon did not answer in time")


def fetch_day(url: str, camera: str, day: float) -> tuple[float, int, dict[str, Any]]:
    """(seconds, bytes, answer) of one camera's day."""
    began = time.perf_counter()
    query = f"/api/timeline?camera={camera}&since={day}&until={local_midnight(day + 1.5 * DAY)}"
    with urllib.request.urlopen(url + query, timeout=30) as response:
        body = response.read()
    return time.perf_counter() - began, len(body), json.loads(body)


def measure(url: str, day: float, repeat: int) -> dict[str, Any]:
    singles: list[float] = []
    sizes: dict[str, int] = {}
    contents: dict[str, dict[str, int]] = {}
    for _ in range(repeat):
        for camera in CAMERAS:
            seconds, size, answer = fetch_day(url, camera, day)
            singles.append(seconds)
            sizes[camera] = size
            contents[camera] = {
                key: len(answer[key])
                for key in ("clips", "segments", "recorded", "offline", "snapshots")
            }
    together: list[float] = []
    with concurrent.futures.ThreadPoolExecutor(len(CAMERAS)) as pool:
        for _ in range(repeat):
            began = time.perf_counter()
            list(pool.map(lambda c: fetch_day(url, c, day), CAMERAS))
            together.append(time.perf_counter() - began)
    return {
        "single_ms": [round(s * 1000, 2) for s in singles],
        "three_ms": [round(s * 1000, 2) for s in together],
        "bytes": sizes,
        "contents": contents[CAMERAS[0]],
    }


# Run by node from tests/browser (where playwright-core is installed); prints one JSON line.
PAGE_TIMING = """
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './chromium.mjs';
const [url, repeat] = [process.argv[1], Number(process.argv[2])];
const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
const times = [];
for (let n = 0; n < repeat; n++) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const began = performance.now();
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
  times.push(performance.now() - began);
  const bars = await page.$$eval('.bar .span.clip', (all) => all.length);
  if (bars === 0) throw new Error('no clips drawn');
  await context.close();
}
await browser.close();
console.log(JSON.stringify(times));
"""


def page_times(url: str, moment: float, repeat: int) -> list[float]:
    """Milliseconds until /review has drawn the day (``body[data-ready]``), in Chromium."""
    browser_dir = Path(__file__).resolve().parents[1] / "tests" / "browser"
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))
    result = subprocess.run(
        ["node", "--input-type=module", "-e", PAGE_TIMING,
         f"{url}/review?camera={CAMERAS[0]}&t={iso}", str(repeat)],
        cwd=browser_dir, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(result.stdout + result.stderr)
    times: list[float] = json.loads(result.stdout.strip().splitlines()[-1])
    return times


def row(name: str, result: dict[str, Any]) -> str:
    single, three = result["single_ms"], result["three_ms"]
    contents = result["contents"]
    what = (
        f"{contents['clips']} clips, {contents['segments']} segments, "
        f"{contents['snapshots']} snapshots"
    )
    return (
        f"| {name} | {what} | {statistics.median(single):.1f} | {max(single):.1f} | "
        f"{statistics.median(three):.1f} | {max(three):.1f} | "
        f"{max(result['bytes'].values()) / 1000:.0f} kB |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--clips", type=int, default=50, help="clips a day per camera")
    parser.add_argument("--segment-days", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="3 days, 5 repeats")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--browser", action="store_true", help="also time the page in Chromium")
    args = parser.parse_args()
    if args.quick:
        args.days, args.repeat = 3, 5
    now = time.time()
    with work_dir("bench-timeline-", args.keep) as workdir:
        storage = Storage(workdir / "data")
        began = time.monotonic()
        counts = fill(storage, args.days, args.clips, min(args.segment_days, args.days), now)
        log(f"wrote {counts} in {time.monotonic() - began:.1f} s")
        process, url, startup = start_daemon(workdir, storage.root)
        try:
            yesterday = local_midnight(local_midnight(now) - DAY / 2)
            oldest = local_midnight(local_midnight(now) - (args.days - 1) * DAY + DAY / 2)
            results = {
                "yesterday": measure(url, yesterday, args.repeat),
                "oldest": measure(url, oldest, args.repeat),
            }
            page = page_times(url, yesterday + DAY / 2, args.repeat) if args.browser else []
        finally:
            process.terminate()
            process.wait(30)
    basics = machine_basics()
    print(
        f"{args.days} days x {len(CAMERAS)} cameras x {args.clips} clips a day "
        f"({counts['clips']} clips), {counts['segments']} continuous segments of 10 min "
        f"(newest {args.segment_days} days), {counts['snapshots']} snapshots, "
        f"{counts['history']} history entries; {args.repeat} repeats.\n"
        f"{basics['cpu_model']}, {basics['nproc']} CPUs, Python {basics['python']}.\n"
        f"Daemon start until the web side answers (indexes rebuilt): {startup:.2f} s.\n"
    )
    print("| day | one camera's answer | one camera: median ms | slowest ms | "
          "three cameras at once: median ms | slowest ms | answer size |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    print(row("yesterday (with continuous footage)", results["yesterday"]))
    has_segments = results["oldest"]["contents"]["segments"]
    kind = "with continuous footage" if has_segments else "clips only"
    print(row(f"{args.days - 1} days ago ({kind})", results["oldest"]))
    if page:
        print(
            f"\nThe page in Chromium, fresh context each time, until the day is drawn: median "
            f"{statistics.median(page):.0f} ms, slowest {max(page):.0f} ms ({len(page)} loads)."
        )


if __name__ == "__main__":
    main()
