"""Where eight idle IP cameras' CPU goes inside motiond, part by part, in the running daemon.

``bench_copy_cost`` times each part alone on one thread; in the daemon the same work shares the
interpreter with the other cameras' threads, and a picture's detection hands the GIL over at
each OpenCV and numpy call. This script runs motiond on ``bench_ipcam``'s 8-camera scenario
(one 1280x720/15 RTSP stream and its 640x360 sub stream, served on loopback by
testbed/rtsp_server.py) during the still part of the stream, four ways in turn, each on a
fresh stream:

- ``whole``: motiond as it is;
- ``no-detection``: no picture looked at (scripts/bench/idle_parts_child.py);
- ``no-decode``: nothing decoded either, the sub stream only read;
- ``floor``: no motiond: scripts/bench/pyav_floor.py, each stream read and the sub stream
  decoded by bare PyAV, a thread per stream.

Per kind of thread (motiond's ``cap:``, ``det:``, ``rec:``; the rest ``other``): time on a CPU
(the scheduler's schedstat) and context switches, per second of the window. The differences
give detection and the decode as the daemon runs them, and motiond's reading and Python per
frame above bare PyAV. Markdown on stdout and in bench-results/bench-idle-parts-*.{md,json}.

    python -m scripts.bench_idle_parts              # 2 rounds, about 6 minutes
    python -m scripts.bench_idle_parts --rounds 1   # about 3 minutes
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
    work_dir,
    write_results,
)
from scripts.bench.ipcam_media import stream_video
from scripts.bench.ipcam_programs import CameraSource, floor_program, motiond_ipcam_config
from scripts.bench.procstat import thread_run_seconds, thread_switches
from scripts.bench.programs import Program, write_config
from scripts.bench.report import machine_line
from testbed.rtsp import RtspCamera, rtsp_server_unavailable

VARIANTS = ("whole", "no-detection", "no-decode", "floor")
# bench_copy_cost's full-length files (41 s still, then footage): the window ends in the still.
STILL_S, FOOTAGE_S, FPS = 41.0, 40.0, 15.0
MAIN, SUB = ((1280, 720), 3_000_000), ((640, 360), 750_000)
PLAY_TIMEOUT_S = 60.0


def program_for(variant: str, workdir: Path, cameras: list[CameraSource]) -> Program:
    if variant == "floor":
        return floor_program(workdir, cameras)
    storage = workdir / "motiond-data"
    config = motiond_ipcam_config(cameras, storage, None)
    argv = [sys.executable, "-m", "scripts.bench.idle_parts_child", variant, "run", "-c"]
    return Program(
        key=variant,
        label=variant,
        argv=[*argv, str(write_config(workdir, config))],
        workdir=workdir,
        clip_dir=storage,
        settings=config,
    )


def measure(
    variant: str,
    media: dict[str, Path],
    cameras: int,
    settle_s: float,
    window_s: float,
    where: Path,
) -> dict[str, Any]:
    """One run: a fresh stream, the program, its threads over the window."""
    where.mkdir(parents=True, exist_ok=True)
    server = RtspCamera(media, log_path=where / "rtsp-server.log")
    server.start()
    program = None
    try:
        sources = [CameraSource(server.url("/main"), MAIN[0], server.url("/sub"), SUB[0])]
        program = program_for(variant, where, sources * cameras)
        program.start()
        deadline = time.monotonic() + PLAY_TIMEOUT_S
        while not any(line.startswith("EPOCH") for line in server.events()):
            program.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{variant} did not play the stream")
            time.sleep(0.1)
        program.sleep_until(time.monotonic() + settle_s)
        run0, switches0, start = (
            thread_run_seconds(program.pid),
            thread_switches(program.pid),
            time.monotonic(),
        )
        program.sleep_until(start + window_s)
        run1, switches1 = thread_run_seconds(program.pid), thread_switches(program.pid)
        seconds = time.monotonic() - start
    finally:
        if program is not None:
            program.stop()
        server.stop()
    kinds = sorted(run1)
    cores = {kind: (run1[kind] - run0.get(kind, 0.0)) / seconds for kind in kinds}
    switches = {kind: (switches1[kind] - switches0.get(kind, 0)) / seconds for kind in kinds}
    return {
        "variant": variant,
        "seconds": round(seconds, 2),
        "cores": {kind: round(value, 4) for kind, value in cores.items()},
        "total_cores": round(sum(cores.values()), 4),
        "switches_per_s": {kind: round(value) for kind, value in switches.items()},
    }


def summary(runs: list[dict[str, Any]], cameras: int) -> dict[str, Any]:
    """Per variant the median total (and per kind); the parts as differences of medians."""
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_variant.setdefault(run["variant"], []).append(run)
    medians = {
        variant: {
            "total": statistics.median(run["total_cores"] for run in group),
            "kinds": {
                kind: statistics.median(run["cores"].get(kind, 0.0) for run in group)
                for kind in sorted({k for run in group for k in run["cores"]})
            },
            "switches": {
                kind: statistics.median(run["switches_per_s"].get(kind, 0) for run in group)
                for kind in sorted({k for run in group for k in run["switches_per_s"]})
            },
            "totals": [run["total_cores"] for run in group],
        }
        for variant, group in by_variant.items()
    }
    total = {variant: figures["total"] for variant, figures in medians.items()}
    pictures = cameras * FPS
    parts: dict[str, Any] = {}
    if {"whole", "no-detection"} <= total.keys():
        detection = total["whole"] - total["no-detection"]
        parts["detection"] = {
            "cores": round(detection, 4),
            "ms_per_picture": round(detection / pictures * 1000, 3),
        }
    if {"no-detection", "no-decode"} <= total.keys():
        decode = total["no-detection"] - total["no-decode"]
        parts["decode"] = {
            "cores": round(decode, 4),
            "ms_per_picture": round(decode / pictures * 1000, 3),
        }
    if {"whole", "floor"} <= total.keys():
        parts["above_floor"] = {
            "cores": round(total["whole"] - total["floor"], 4),
            "per_camera": round((total["whole"] - total["floor"]) / cameras, 4),
        }
    return {"medians": medians, "parts": parts}


def markdown(results: dict[str, Any]) -> str:
    medians, parts = results["summary"]["medians"], results["summary"]["parts"]
    cameras = results["cameras"]
    kinds = sorted({kind for figures in medians.values() for kind in figures["kinds"]})
    lines = [
        f"## Where {cameras} idle IP cameras' CPU goes in motiond (`bench_idle_parts`)",
        "",
        machine_line(results["machine"]),
        "",
        f"{cameras} cameras on one 1280x720/15 RTSP stream (3 Mbit/s) and its 640x360 sub stream "
        f"(0.75 Mbit/s), the still part; {results['settle_s']:g} s after the stream starts, a "
        f"{results['window_s']:g} s window; {results['rounds']} round(s), the variants in turn, "
        "medians. Cores: time on a CPU per second (schedstat), by kind of thread; switches: "
        "context switches a second.",
        "",
        "| variant | total cores (each run) | "
        + " | ".join(kinds)
        + " | switches/s: "
        + ", ".join(kinds)
        + " |",
        "|---|---|" + "---|" * len(kinds) + "---|",
    ]
    for variant in VARIANTS:
        figures = medians.get(variant)
        if figures is None:
            continue
        each = " ".join(f"{value:.3f}" for value in figures["totals"])
        cells = [f"{figures['kinds'].get(kind, 0.0):.4f}" for kind in kinds]
        switches = ", ".join(f"{figures['switches'].get(kind, 0):.0f}" for kind in kinds)
        lines.append(
            f"| {variant} | {figures['total']:.3f} ({each}) | "
            + " | ".join(cells)
            + f" | {switches} |"
        )
    lines.append("")
    if "detection" in parts:
        d = parts["detection"]
        lines.append(
            f"- Detection in the daemon (whole - no-detection): {d['cores']:.4f} cores, "
            f"{d['ms_per_picture']:.3f} ms a picture."
        )
    if "decode" in parts:
        d = parts["decode"]
        lines.append(
            f"- The sub streams' decode in the daemon (no-detection - no-decode): {d['cores']:.4f} "
            f"cores, {d['ms_per_picture']:.3f} ms a picture."
        )
    if "above_floor" in parts:
        d = parts["above_floor"]
        lines.append(
            f"- motiond above the floor (whole - floor): {d['cores']:.4f} cores, "
            f"{d['per_camera']:.4f} a camera."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds before the window")
    parser.add_argument("--window", type=float, default=25.0, help="seconds measured")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--media-dir", type=Path, default=MEDIA_DIR)
    args = parser.parse_args(argv)
    if args.settle + args.window > STILL_S - 3:
        print(f"--settle + --window must end in the {STILL_S:g} s still part", file=sys.stderr)
        return 2
    if not args.video.exists():
        print(f"no such video: {args.video}", file=sys.stderr)
        return 2
    if why := rtsp_server_unavailable():
        print(why, file=sys.stderr)
        return 2
    media = {
        mount: stream_video(args.video, args.media_dir, size, FPS, rate, STILL_S, FOOTAGE_S).path
        for mount, (size, rate) in (("/main", MAIN), ("/sub", SUB))
    }
    source_digest = motiond_source_digest()
    runs = []
    with work_dir("motiond-bench-idle-parts-", False) as workdir:
        for round_index in range(1, args.rounds + 1):
            for variant in args.variants:
                where = workdir / f"{variant}-{round_index}"
                run = measure(variant, media, args.cameras, args.settle, args.window, where)
                total = run["total_cores"]
                log(f"{variant}, round {round_index}: {total:.3f} cores, {run['cores']}")
                runs.append(run)
    results = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "motiond_source_sha256": source_digest,
        "cameras": args.cameras,
        "rounds": args.rounds,
        "settle_s": args.settle,
        "window_s": args.window,
        "runs": runs,
        "summary": summary(runs, args.cameras),
    }
    text = markdown(results)
    where = write_results(
        args.out, f"bench-idle-parts-{time.strftime('%Y%m%d-%H%M%S')}", results, text
    )
    print(text)
    log(f"results in {where}.{{md,json}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
