"""Benchmark motiond against Motion 4.5 on the same loopback HTTP MJPEG stream.

For each stream (vtest.avi at 768x576/10 fps, upscaled to 1280x720 and 1920x1080 at 15 fps),
each program runs alone as its own process: an idle phase (a still frame) then a recording
phase (the real footage). Measured: CPU cores per phase, peak RSS, the clips written; plus
motiond's detection cost per frame. Writes Markdown and JSON to bench-results/ and prints the
Markdown.

    python -m scripts.bench_vs_motion            # full run, ~11 minutes
    python -m scripts.bench_vs_motion --quick    # ~3.5 minutes
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scripts.bench import report
from scripts.bench.clips import summarise, video_files
from scripts.bench.detect_cost import detection_cost
from scripts.bench.harness import (
    DEFAULT_VIDEO,
    RESULTS_DIR,
    Phases,
    add_motion_arguments,
    log,
    machine_info,
    motion_overrides,
    motiond_source_digest,
    other_load,
    work_dir,
    write_results,
)
from scripts.bench.procstat import cpu_between, memory, sample_cpu
from scripts.bench.programs import (
    Program,
    ProgramDied,
    motion_program,
    motion_summary,
    motiond_program,
    motiond_runnable,
    motiond_summary,
)
from scripts.bench.stream import StreamProcess

PROGRAMS = ("motion", "motiond-ultrafast", "motiond-veryfast")


@dataclass(frozen=True)
class StreamSpec:
    name: str  # "1280x720/15"
    size: tuple[int, int] | None  # None: the video's own size
    fps: float

    def frame_size(self, native: tuple[int, int]) -> tuple[int, int]:
        return self.size or native


STREAMS = (
    StreamSpec("768x576/10", None, 10.0),
    StreamSpec("1280x720/15", (1280, 720), 15.0),
    StreamSpec("1920x1080/15", (1920, 1080), 15.0),
)


def measure_phase(program: Program, stream: StreamProcess, seconds: float) -> dict[str, Any]:
    frames_before = stream.frames_sent()
    start, server_start = sample_cpu(program.pid), sample_cpu(stream.pid)
    program.sleep_until(time.monotonic() + seconds)
    end, server_end = sample_cpu(program.pid), sample_cpu(stream.pid)
    frames = stream.frames_sent() - frames_before
    use, server = cpu_between(start, end), cpu_between(server_start, server_end)
    return {
        "seconds": round(use.seconds, 2),
        "cores": round(use.cores, 3),
        "stream_server_cores": round(server.cores, 3),
        # everything else on the machine: other users' work, the kernel, this harness
        "other_cores": round(use.machine_cores - use.cores - server.cores, 3),
        "stream_fps": round(frames / use.seconds, 2),
        "rss_mb": round(memory(program.pid).rss_mb, 1),
    }


def run_program(program: Program, stream: StreamProcess, phases: Phases) -> dict[str, Any]:
    """Idle phase, then recording phase, then a clean stop; the program is always stopped."""
    result: dict[str, Any] = {"key": program.key, "label": program.label}
    stream.set_mode("idle")
    program.start()
    log(f"  {program.label}: pid {program.pid}, logs in {program.workdir}")
    try:
        program.sleep_until(time.monotonic() + phases.warmup_s)
        result["idle"] = measure_phase(program, stream, phases.idle_s)
        result["clips_during_idle"] = len(video_files(program.clip_dir))
        stream.set_mode("motion")
        program.sleep_until(time.monotonic() + phases.warmup_s)
        result["recording"] = measure_phase(program, stream, phases.recording_s)
        mem = memory(program.pid)
        result["memory"] = {
            "peak_rss_mb": round(mem.peak_rss_mb, 1),
            "rss_mb": round(mem.rss_mb, 1),
        }
    except (ProgramDied, ProcessLookupError, FileNotFoundError) as exc:
        # FileNotFoundError: /proc/PID vanished between the liveness check and the read.
        result["error"] = str(exc) if isinstance(exc, ProgramDied) else f"{program.key} exited"
        result["log_tail"] = program.log_tail()
    finally:
        stopped_at = time.monotonic()
        result["exit_code"] = program.stop()
        result["stop_s"] = round(time.monotonic() - stopped_at, 2)
        stream.set_mode("idle")
    result["clips"] = asdict(summarise(video_files(program.clip_dir)))
    log(
        f"  {program.label}: idle {result.get('idle', {}).get('cores')} cores, recording "
        f"{result.get('recording', {}).get('cores')} cores, {result['clips']['count']} clip(s), "
        f"{result['clips']['kbit_s']} kbit/s{', ' + result['error'] if 'error' in result else ''}"
    )
    return result


def make_program(
    key: str,
    workdir: Path,
    url: str,
    size: tuple[int, int],
    fps: float,
    motion: Mapping[str, float] | None = None,
) -> Program:
    if key == "motion":
        return motion_program(workdir, url, size, fps)
    preset = key.removeprefix("motiond-")
    return motiond_program(workdir, url, fps, preset, motion)


def video_size(video: Path) -> tuple[int, int]:
    import cv2  # noqa: PLC0415 - keep the harness's own import light

    capture = cv2.VideoCapture(str(video))
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(
            capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
        )
    finally:
        capture.release()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    Phases.add_arguments(parser)
    parser.add_argument(
        "--streams",
        nargs="+",
        choices=[spec.name for spec in STREAMS],
        default=[spec.name for spec in STREAMS],
    )
    parser.add_argument("--programs", nargs="+", choices=PROGRAMS, default=list(PROGRAMS))
    parser.add_argument("--detect-frames", type=int, default=300)
    add_motion_arguments(parser)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--keep", action="store_true", help="keep the work dir (clips, logs)")
    return parser.parse_args(argv)


def notes_for(runs: list[dict[str, Any]], streams: dict[str, StreamSpec]) -> list[str]:
    """Anything in the results that makes a number less trustworthy than it looks."""
    notes = []
    for run in runs:
        where = f"{run['stream']} {run['label']}"
        if run.get("error"):
            notes.append(f"{where}: {run['error']}")
            continue
        if run["clips_during_idle"]:
            notes.append(f"{where}: wrote {run['clips_during_idle']} clip(s) on the still frame")
        if run["clips"]["count"] == 0:
            notes.append(f"{where}: wrote no clip during the recording phase")
        fps = streams[run["stream"]].fps
        clips = run["clips"]
        if clips["total_seconds"] and clips["total_frames"] < 0.9 * fps * clips["total_seconds"]:
            recorded_fps = clips["total_frames"] / clips["total_seconds"]
            notes.append(f"{where}: its clips hold {recorded_fps:.1f} fps (stream: {fps:g})")
        for phase in ("idle", "recording"):
            served = run[phase]["stream_fps"]
            if served < 0.9 * fps:
                notes.append(
                    f"{where}: the stream delivered {served} fps in {phase} (target {fps:g})"
                )
    other = [
        run[phase]["other_cores"]
        for run in runs
        if not run.get("error")
        for phase in ("idle", "recording")
    ]
    if other:
        notes.append(
            other_load(other, "the program, not the stream server")
            + " Cores are per-process CPU time, so contention shows mostly as noise; re-run on "
            "a quiet machine for tighter figures."
        )
    return notes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    motion = motion_overrides(args)
    phases = Phases.from_args(args)
    if not args.video.exists():
        print(f"no such video: {args.video}", file=sys.stderr)
        return 2
    if shutil.which("motion") is None and "motion" in args.programs:
        print("Motion is not installed: apt-get install -y motion", file=sys.stderr)
        return 2
    started = time.monotonic()
    source_at_start = motiond_source_digest()
    native = video_size(args.video)
    specs = [spec for spec in STREAMS if spec.name in args.streams]
    programs = list(args.programs)
    skipped: list[str] = []
    runs: list[dict[str, Any]] = []
    detection: list[dict[str, Any]] = []
    with work_dir("motiond-bench-", args.keep) as workdir:
        wants_motiond = any(key.startswith("motiond") for key in programs)
        if wants_motiond and (why := motiond_runnable(workdir / "preflight")):
            skipped.append(f"motiond not run: {why}")
            programs = [key for key in programs if not key.startswith("motiond")]
            log(skipped[-1])
        for spec in specs:
            log(f"{spec.name}: detection cost over {args.detect_frames} frames")
            cost = detection_cost(args.video, spec.size, frames=args.detect_frames)
            detection.append({"stream": spec.name, **cost})
            stream = StreamProcess(args.video, spec.size, spec.fps)
            log(f"{spec.name}: preparing the stream")
            try:
                stream.start()
                log(f"{spec.name}: {stream.url}, {stream.info}")
                for key in programs:
                    program = make_program(
                        key,
                        workdir / spec.name.replace("/", "-") / key,
                        stream.url,
                        spec.frame_size(native),
                        spec.fps,
                        motion,
                    )
                    result = run_program(program, stream, phases)
                    result["stream"] = spec.name
                    result["stream_jpeg_kb"] = stream.info.get("jpeg_kb")
                    result["settings"] = program.settings
                    runs.append(result)
            finally:
                stream.stop()

    source_at_end = motiond_source_digest()
    if source_at_end != source_at_start:
        skipped.append("motiond's source changed during the run: the motiond rows mix versions")
    results = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "motiond_source_sha256": source_at_end,
        "video": str(args.video),
        "phases": asdict(phases),
        "detect_frames": args.detect_frames,
        "settings": [motion_summary(), motiond_summary(motion)],
        "runs": runs,
        "detection": detection,
        "notes": skipped + notes_for(runs, {spec.name: spec for spec in specs}),
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    text = report.markdown(results)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    write_results(args.out, f"bench-{stamp}", results, text)
    print(text)
    log(f"done in {results['elapsed_s']:.0f} s; results in {args.out}/bench-{stamp}.{{md,json}}")
    return 1 if any(run.get("error") for run in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
