"""What continuous recording costs: CPU and peak RSS of motiond with ``record.continuous``
against motion-only, on one RTSP H.264 camera copied and the same camera transcoded.

The camera is GStreamer's rtsp-server (testbed/rtsp_server.py) serving the IP camera
benchmark's own 1280x720/15 fps, 3 Mbit/s file (vtest.avi: a still scene, then people
walking), a fresh stream for each run. Each configuration runs alone, as its own process, with
the phases of ``bench_ipcam`` (idle over the still scene, recording over the footage), and the
runs alternate motion-only and continuous (``--runs`` of each); the table shows each
configuration's median and the differences. Segments are ``record.segment: 10s``, so the
short phases include segment changes. Writes Markdown and JSON to bench-results/.

    python -m scripts.bench_continuous --quick     # 8 s phases, about 4 minutes
    python -m scripts.bench_continuous             # 30 s phases, 3 runs each, about 20 minutes
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from scripts.bench.harness import (
    DEFAULT_VIDEO,
    MEDIA_DIR,
    RESULTS_DIR,
    log,
    machine_info,
    motiond_source_digest,
    other_load,
    work_dir,
    write_results,
)
from scripts.bench.ipcam_media import stream_video
from scripts.bench.ipcam_programs import CameraSource, motiond_ipcam_config
from scripts.bench.programs import motiond_run
from scripts.bench_ipcam import Phases, RtspStream, run_program
from testbed.rtsp import rtsp_server_unavailable

SIZE, FPS, BITRATE = (1280, 720), 15.0, 3_000_000
SEGMENT = "10s"
TARGET_CORES, TARGET_MB = 0.005, 5.0  # what continuous may add to a copy camera (issue 17)
MODES = ("copy", "transcode")


def run_one(
    mode: str, continuous: bool, run: int, video: Any, phases: Phases, workdir: Path
) -> dict[str, Any]:
    key = f"{mode}-{'continuous' if continuous else 'motion'}-{run}"
    folder = workdir / key
    folder.mkdir(parents=True)
    stream = RtspStream({"/main": video}, folder)
    stream.start()
    try:
        storage = folder / "motiond-data"
        config = motiond_ipcam_config([CameraSource(stream.url("/main"), SIZE)], storage, None)
        record = config["cameras"][0]["record"]
        record["mode"] = mode
        if continuous:
            record.update({"continuous": True, "segment": SEGMENT})
        program = motiond_run(folder, config, storage, key=key, label=key)
        result = run_program(program, stream, phases)
    finally:
        stream.stop()
    segments = sorted((storage / "continuous").glob("*/*/*.mp4"))
    result.update(mode=mode, continuous=continuous, segments=len(segments))
    return result


def median_of(runs: list[dict[str, Any]], *path: str) -> float | None:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            values.append(float(value))
    return statistics.median(values) if values else None


def markdown(runs: list[dict[str, Any]], phases: Phases) -> str:
    lines = [
        "## Continuous recording against motion-only (one 1280x720/15 RTSP H.264 camera, 3 Mbit/s)",
        "",
        f"Medians of {max(1, len(runs) // 4)} run(s) each; idle {phases.idle_s:g} s over a "
        f"still scene, recording {phases.recording_s:g} s over people walking (motion clips "
        f"in both); `record.segment: {SEGMENT}`.",
        "",
        "| recording | config | idle cores | recording cores | peak RSS MB | segments |",
        "|---|---|---|---|---|---|",
    ]
    differences = []
    for mode in MODES:
        cells: dict[bool, tuple[float | None, ...]] = {}
        for continuous in (False, True):
            chosen = [r for r in runs if r["mode"] == mode and r["continuous"] is continuous]
            idle = median_of(chosen, "idle", "cores")
            busy = median_of(chosen, "recording", "cores")
            peak = median_of(chosen, "memory", "peak_rss_mb")
            segments = median_of(chosen, "segments")
            cells[continuous] = (idle, busy, peak)
            label = "continuous" if continuous else "motion-only"
            lines.append(
                f"| {mode} | {label} | {_fmt(idle, 3)} | {_fmt(busy, 3)} | {_fmt(peak, 1)} | "
                f"{_fmt(segments, 0)} |"
            )
        delta = [
            None if a is None or b is None else b - a
            for a, b in zip(cells[False], cells[True], strict=True)
        ]
        differences.append((mode, delta))
    lines += ["", "| recording | added idle cores | added recording cores | added peak RSS MB |"]
    lines.append("|---|---|---|---|")
    for mode, (idle, busy, peak) in differences:
        lines.append(
            f"| {mode} | {_fmt(idle, 4, '+')} | {_fmt(busy, 4, '+')} | {_fmt(peak, 1, '+')} |"
        )
    copy_idle, copy_busy, copy_peak = differences[0][1]
    if None not in (copy_idle, copy_busy, copy_peak):
        worst = max(copy_idle or 0.0, copy_busy or 0.0)
        met = worst <= TARGET_CORES and (copy_peak or 0.0) <= TARGET_MB
        lines += [
            "",
            f"Target for a copy camera: at most +{TARGET_CORES} core and +{TARGET_MB:g} MB: "
            f"{'met' if met else 'NOT met'} (+{worst:.4f} core, {copy_peak:+.1f} MB).",
        ]
    others = [
        r[phase]["other_cores"] for r in runs for phase in ("idle", "recording") if phase in r
    ]
    if others:
        lines += ["", other_load(others, "motiond and the RTSP server")]
    return "\n".join(lines) + "\n"


def _fmt(value: float | None, digits: int, sign: str = "") -> str:
    return "-" if value is None else f"{value:{sign}.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    Phases.add_arguments(parser)
    parser.add_argument("--runs", type=int, help="runs of each configuration (default 3; 1 quick)")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--media-dir", type=Path, default=MEDIA_DIR)
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args(argv)
    if why := rtsp_server_unavailable():
        print(why, file=sys.stderr)
        return 2
    if not args.video.is_file():
        print(f"no footage at {args.video} (see docs/benchmarks.md)", file=sys.stderr)
        return 2
    phases = Phases.from_args(args)
    repeats = args.runs or (1 if args.quick else 3)
    started = time.monotonic()
    source = motiond_source_digest()
    video = stream_video(
        args.video, args.media_dir, SIZE, FPS, BITRATE, phases.still_s, phases.footage_s
    )
    runs: list[dict[str, Any]] = []
    with work_dir("motiond-bench-continuous-", args.keep) as workdir:
        for run in range(repeats):
            for mode in MODES:
                for continuous in (False, True):
                    log(f"{mode}, {'continuous' if continuous else 'motion-only'}, run {run + 1}")
                    runs.append(run_one(mode, continuous, run, video, phases, workdir))
    text = markdown(runs, phases)
    print(text)
    results = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "motiond_source_sha256": source,
        "phases": {"warmup_s": phases.warmup_s, "idle_s": phases.idle_s,
                   "recording_s": phases.recording_s},
        "runs": runs,
        "elapsed_s": round(time.monotonic() - started, 1),
    }  # fmt: skip
    stem = f"bench-continuous-{time.strftime('%Y%m%d-%H%M%S')}"
    log(f"results: {write_results(args.out, stem, results, text)}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
