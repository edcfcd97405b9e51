"""Benchmark motiond against Motion 4.5 on IP cameras (RTSP H.264, sub streams, MJPEG).

Scenarios: one RTSP H.264 camera at 1280x720/15 (3 Mbit/s) and 1920x1080/15 (6 Mbit/s), each
with and without a 640x360 sub stream; one and four cameras on one 1280x720/15 MJPEG stream;
four cameras on one RTSP stream; eight cameras on one RTSP stream with its 640x360 sub stream
(Motion in its own sub-stream mode: ``netcam_url`` the sub stream, ``netcam_high_url`` the main
one, ``movie_passthrough on``). Several cameras run in one process of each program; memory per
further camera is (N cameras - 1 camera) / (N - 1), from the one-camera scenario of the same
streams, and the report gives the RSS of motiond's interpreter with its libraries loaded before
any camera.

Each scenario's stream is served on loopback by a separate process: RTSP by GStreamer's
rtsp-server (testbed/rtsp_server.py, the camera of the tests) from a camera-like H.264 file
(a still scene, then footage with people walking throughout), MJPEG by scripts/bench/stream.py.
Each program runs alone, as its own process, on a fresh stream: idle phase, then recording
phase. Measured: CPU cores per phase, peak RSS, the clips written; ratios to Motion; the
issue's targets. Writes Markdown and JSON to bench-results/ and prints the Markdown.

    python -m scripts.bench_ipcam            # full run, about 25 minutes
    python -m scripts.bench_ipcam --quick    # about 9 minutes
    python -m scripts.bench_ipcam --quick --scenarios 720p-sub 8x720p-sub
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

from scripts.bench import harness, ipcam_report
from scripts.bench.clips import summarise, video_files
from scripts.bench.harness import (
    DEFAULT_VIDEO,
    MEDIA_DIR,
    RESULTS_DIR,
    add_motion_arguments,
    log,
    machine_info,
    motion_overrides,
    motiond_source_digest,
    other_load,
    work_dir,
    write_results,
)
from scripts.bench.ipcam_media import StreamVideo, stream_video
from scripts.bench.ipcam_programs import (
    CameraSource,
    floor_program,
    motion_ipcam_program,
    motion_ipcam_summary,
    motiond_ipcam_program,
    motiond_ipcam_runnable,
    motiond_ipcam_summary,
    motiond_libraries_rss_mb,
)
from scripts.bench.procstat import (
    cpu_between,
    memory,
    sample_cpu,
    thread_cpu_seconds,
    thread_switches,
)
from scripts.bench.programs import Program, ProgramDied
from scripts.bench.stream import StreamProcess
from testbed.rtsp import RtspCamera, rtsp_server_unavailable

PROGRAMS = ("motion", "motiond", "floor")  # floor: RTSP scenarios only, not by default
DEFAULT_PROGRAMS = ("motion", "motiond")
SUB_SIZE, SUB_BITRATE = (640, 360), 750_000
PLAY_TIMEOUT_S = 60.0  # for the program's first client to start the stream


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    kind: str  # "rtsp" or "mjpeg"
    size: tuple[int, int]
    fps: float
    bitrate: int  # RTSP main stream, bit/s (0 for MJPEG)
    sub: bool = False
    cameras: int = 1
    single: str | None = None  # the one-camera scenario of the same streams


SCENARIOS = (
    Scenario("720p", "1280x720/15 RTSP", "rtsp", (1280, 720), 15.0, 3_000_000),
    Scenario("720p-sub", "1280x720/15 RTSP + 640x360 sub", "rtsp", (1280, 720), 15.0,
             3_000_000, sub=True),
    Scenario("1080p", "1920x1080/15 RTSP", "rtsp", (1920, 1080), 15.0, 6_000_000),
    Scenario("1080p-sub", "1920x1080/15 RTSP + 640x360 sub", "rtsp", (1920, 1080), 15.0,
             6_000_000, sub=True),
    Scenario("720p-mjpeg", "1280x720/15 MJPEG", "mjpeg", (1280, 720), 15.0, 0),
    Scenario("4x720p-mjpeg", "4 cameras, one 1280x720/15 MJPEG stream", "mjpeg", (1280, 720),
             15.0, 0, cameras=4, single="720p-mjpeg"),
    Scenario("4x720p-rtsp", "4 cameras, one 1280x720/15 RTSP stream", "rtsp", (1280, 720),
             15.0, 3_000_000, cameras=4, single="720p"),
    Scenario("8x720p-sub", "8 cameras, one 1280x720/15 RTSP stream + 640x360 sub", "rtsp",
             (1280, 720), 15.0, 3_000_000, sub=True, cameras=8, single="720p-sub"),
)  # fmt: skip


class Phases(harness.Phases):
    """warmup_s: before the idle window, and between the motion's start and recording's."""

    @property
    def still_s(self) -> float:
        """When the motion starts, from the stream's start: after the idle window, with room
        for a program that restarts the stream once while connecting."""
        return 2 * self.warmup_s + self.idle_s + 1.0

    @property
    def footage_s(self) -> float:
        """Footage after the still part: settle, recording, and time to stop."""
        return self.warmup_s + self.recording_s + 5.0


# ---------------------------------------------------------------------------------------------
# The stream a program reads, and where its phases are


class RtspStream:
    """testbed/rtsp_server.py serving the scenario's files; phases are cut into the files."""

    def __init__(self, mounts: dict[str, StreamVideo], workdir: Path) -> None:
        self.server = RtspCamera(
            {mount: video.path for mount, video in mounts.items()},
            log_path=workdir / "rtsp-server.log",
        )

    @property
    def pid(self) -> int:
        return self.server.pid

    def start(self) -> None:
        self.server.start()

    def url(self, mount: str) -> str:
        return self.server.url(mount)

    def began(self, program: Program) -> float:
        """When the program's first client started the stream's timeline (time.monotonic())."""
        deadline = time.monotonic() + PLAY_TIMEOUT_S
        while (epoch := self.epoch()) is None:
            program.check_alive()
            if time.monotonic() > deadline:
                raise ProgramDied(f"{program.key} did not play the stream in {PLAY_TIMEOUT_S} s")
            time.sleep(0.1)
        return epoch

    def epoch(self) -> float | None:
        """The start of the current timeline: it restarts when every client has left (a
        program that probes a stream and then opens it again restarts it once)."""
        epochs = [line for line in self.server.events() if line.startswith("EPOCH")]
        return float(epochs[-1].split()[1]) if epochs else None

    def start_motion(self) -> None:
        """Nothing to do: the file turns to footage by itself."""

    def events(self) -> list[str]:
        return [line for line in self.server.events() if not line.startswith("READY")]

    def stop(self) -> None:
        self.server.stop()


class MjpegStream:
    """scripts/bench/stream.py: switched from the still frame to the footage by a command."""

    def __init__(self, footage: Path, size: tuple[int, int], fps: float) -> None:
        self.process = StreamProcess(footage, size, fps)

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self) -> None:
        self.process.start()
        self.process.set_mode("idle")

    def url(self, _mount: str) -> str:
        return self.process.url

    def began(self, _program: Program) -> float:
        return time.monotonic()

    def epoch(self) -> float | None:
        return None  # switched by command: no timeline to follow

    def start_motion(self) -> None:
        self.process.set_mode("motion")

    def events(self) -> list[str]:
        return []

    def stop(self) -> None:
        self.process.stop()


Stream = RtspStream | MjpegStream


# ---------------------------------------------------------------------------------------------
# Running one program


def measure(program: Program, stream: Stream, start: float, end: float) -> dict[str, Any]:
    program.sleep_until(start)
    before, server_before = sample_cpu(program.pid), sample_cpu(stream.pid)
    threads_before = thread_cpu_seconds(program.pid)
    switches_before = thread_switches(program.pid)
    program.sleep_until(end)
    after, server_after = sample_cpu(program.pid), sample_cpu(stream.pid)
    threads_after = thread_cpu_seconds(program.pid)
    switches_after = thread_switches(program.pid)
    use, server = cpu_between(before, after), cpu_between(server_before, server_after)
    return {
        "seconds": round(use.seconds, 2),
        "cores": round(use.cores, 3),
        # Per kind of thread (motiond's cap/det/rec per camera; Motion's are all "other").
        "thread_cores": {
            kind: round((threads_after[kind] - threads_before.get(kind, 0.0)) / use.seconds, 4)
            for kind in sorted(threads_after)
        },
        "thread_switches_per_s": {
            kind: round((switches_after[kind] - switches_before.get(kind, 0)) / use.seconds)
            for kind in sorted(switches_after)
        },
        "stream_server_cores": round(server.cores, 3),
        "other_cores": round(use.machine_cores - use.cores - server.cores, 3),
        "rss_mb": round(memory(program.pid).rss_mb, 1),
    }


def run_program(program: Program, stream: Stream, phases: Phases) -> dict[str, Any]:
    """Idle window, then recording window, timed from the stream's start; always stopped."""
    result: dict[str, Any] = {"key": program.key, "label": program.label}
    program.start()
    log(f"  {program.label}: pid {program.pid}, logs in {program.workdir}")
    try:
        began = stream.began(program)
        program.sleep_until(began + phases.warmup_s)
        # A program may have reconnected meanwhile (Motion probes each stream, closes it and
        # opens it again): the phases follow the timeline it ended up on.
        began = stream.epoch() or began
        idle_start = max(time.monotonic(), began + phases.warmup_s)
        result["idle"] = measure(program, stream, idle_start, idle_start + phases.idle_s)
        result["clips_during_idle"] = len(video_files(program.clip_dir))
        program.sleep_until(began + phases.still_s)
        stream.start_motion()
        recording_start = began + phases.still_s + phases.warmup_s
        result["recording"] = measure(
            program, stream, recording_start, recording_start + phases.recording_s
        )
        result["timeline_moved"] = stream.epoch() not in (None, began)
        mem = memory(program.pid)
        peak, now = round(mem.peak_rss_mb, 1), round(mem.rss_mb, 1)
        result["memory"] = {"peak_rss_mb": peak, "rss_mb": now}
    except (ProgramDied, ProcessLookupError, FileNotFoundError) as exc:
        # FileNotFoundError: /proc/PID vanished between the liveness check and the read.
        result["error"] = str(exc) if isinstance(exc, ProgramDied) else f"{program.key} exited"
        result["log_tail"] = program.log_tail()
    finally:
        stopped_at = time.monotonic()
        result["exit_code"] = program.stop()
        result["stop_s"] = round(time.monotonic() - stopped_at, 2)
    result["stream_events"] = stream.events()
    result["clips"] = asdict(summarise(video_files(program.clip_dir)))
    log(
        f"  {program.label}: idle {result.get('idle', {}).get('cores')} cores, recording "
        f"{result.get('recording', {}).get('cores')} cores, peak RSS "
        f"{result.get('memory', {}).get('peak_rss_mb')} MB, {result['clips']['count']} clip(s) "
        f"{result['clips']['codecs']}, {result['clips']['kbit_s']} kbit/s"
        f"{', ' + result['error'] if 'error' in result else ''}"
    )
    return result


def make_program(
    key: str,
    workdir: Path,
    scenario: Scenario,
    stream: Stream,
    motion: Mapping[str, float] | None = None,
) -> Program:
    sub = (stream.url("/sub"), SUB_SIZE) if scenario.sub else (None, None)
    cameras = [CameraSource(stream.url("/main"), scenario.size, *sub)] * scenario.cameras
    if key == "motion":
        return motion_ipcam_program(workdir, cameras, scenario.fps)
    if key == "floor":
        return floor_program(workdir, cameras)
    fps = scenario.fps if scenario.kind == "mjpeg" else None
    return motiond_ipcam_program(workdir, cameras, fps, motion=motion)


def scenario_media(
    scenario: Scenario, footage: Path, cache_dir: Path, phases: Phases
) -> dict[str, StreamVideo]:
    if scenario.kind != "rtsp":
        return {}
    common = {"still_s": phases.still_s, "footage_s": phases.footage_s}
    mounts = {
        "/main": stream_video(
            footage, cache_dir, scenario.size, scenario.fps, scenario.bitrate, **common
        )
    }
    if scenario.sub:
        mounts["/sub"] = stream_video(
            footage, cache_dir, SUB_SIZE, scenario.fps, SUB_BITRATE, **common
        )
    return mounts


def run_scenario(
    scenario: Scenario,
    programs: list[str],
    footage: Path,
    media: dict[str, StreamVideo],
    phases: Phases,
    workdir: Path,
    motion: Mapping[str, float] | None = None,
    attempt: int = 1,
) -> list[dict[str, Any]]:
    runs = []
    for key in programs:
        if key == "floor" and scenario.kind != "rtsp":
            continue  # an MJPEG camera's floor would be its JPEG decode: not measured here
        where = workdir / scenario.key / (key if attempt == 1 else f"{key}-{attempt}")
        where.mkdir(parents=True, exist_ok=True)
        stream: Stream = (
            RtspStream(media, where)
            if scenario.kind == "rtsp"
            else MjpegStream(footage, scenario.size, scenario.fps)
        )
        stream.start()  # a fresh stream per program: its timeline starts with the program
        try:
            program = make_program(key, where, scenario, stream, motion)
            result = run_program(program, stream, phases)
        finally:
            stream.stop()
        result["scenario"] = scenario.key
        result["settings"] = program.settings
        runs.append(result)
    return runs


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    Phases.add_arguments(parser)
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=[s.key for s in SCENARIOS],
        default=[s.key for s in SCENARIOS],
    )
    parser.add_argument(
        "--programs",
        nargs="+",
        choices=PROGRAMS,
        default=list(DEFAULT_PROGRAMS),
        help="floor: each stream read and the detection stream decoded by PyAV and nothing "
        "else (scripts/bench/pyav_floor.py), RTSP scenarios only; motiond's cost above it is "
        "its own work (default: motion motiond)",
    )
    add_motion_arguments(parser)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per program and scenario, in turn; the report takes the median run "
        "(by recording cores) and lists all (default 1)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--media-dir",
        type=Path,
        default=MEDIA_DIR,
        help="where the encoded stream files are cached",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir (clips, logs)")
    return parser.parse_args(argv)


def preflight(args: argparse.Namespace, scenarios: list[Scenario]) -> str | None:
    """Why the run cannot start, or None."""
    if not args.video.exists():
        return f"no such video: {args.video}"
    if "motion" in args.programs and shutil.which("motion") is None:
        return "Motion is not installed: apt-get install -y motion"
    if any(s.kind == "rtsp" for s in scenarios):
        if shutil.which("ffmpeg") is None:
            return "ffmpeg is not installed: apt-get install -y ffmpeg"
        if why := rtsp_server_unavailable():
            return why
    return None


def notes_for(runs: list[dict[str, Any]], scenarios: dict[str, Scenario]) -> list[str]:
    """Anything in the results that makes a number less trustworthy than it looks."""
    notes = []
    for run in runs:
        scenario = scenarios[run["scenario"]]
        where = f"{scenario.label}, {run['label']}"
        if run.get("error"):
            notes.append(f"{where}: {run['error']}")
            continue
        if run["key"] == "floor":
            continue  # it writes no clips
        if run["clips_during_idle"]:
            notes.append(f"{where}: wrote {run['clips_during_idle']} clip(s) on the still scene")
        clips = run["clips"]
        if clips["count"] == 0:
            notes.append(f"{where}: wrote no clip during the recording phase")
        if 0 < clips["total_seconds"] < 0.9 * run["recording"]["seconds"]:
            notes.append(
                f"{where}: its clips last {clips['total_seconds']:.1f} s in all, less than the "
                f"{run['recording']['seconds']:.0f} s recording window: it was not recording "
                f"all the time the footage moved"
            )
        fps = scenario.fps
        if clips["total_seconds"] and clips["total_frames"] < 0.9 * fps * clips["total_seconds"]:
            recorded = clips["total_frames"] / clips["total_seconds"]
            notes.append(f"{where}: its clips hold {recorded:.1f} fps (stream: {fps:g})")
        if run.get("timeline_moved"):
            notes.append(
                f"{where}: every connection to the stream closed during the measurement (the "
                f"program reconnected), so the phases no longer line up with the file's still "
                f"and moving parts"
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
            + " Re-run on a quiet machine for tighter figures."
        )
    return notes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    phases = Phases.from_args(args)
    motion = motion_overrides(args)
    scenarios = [s for s in SCENARIOS if s.key in args.scenarios]
    if why := preflight(args, scenarios):
        print(why, file=sys.stderr)
        return 2
    started = time.monotonic()
    source_at_start = motiond_source_digest()
    programs = list(args.programs)
    skipped: list[str] = []
    runs: list[dict[str, Any]] = []
    streams: list[dict[str, Any]] = []
    with work_dir("motiond-bench-ipcam-", args.keep) as workdir:
        if "motiond" in programs and (why := motiond_ipcam_runnable(workdir / "preflight")):
            skipped.append(f"motiond not run: {why}")
            programs.remove("motiond")
            log(skipped[-1])
        for scenario in scenarios:
            log(f"{scenario.label}: preparing the stream")
            media = scenario_media(scenario, args.video, args.media_dir, phases)
            for mount, video in media.items():
                streams.append({"scenario": scenario.key, "mount": mount, **_stream_info(video)})
            for attempt in range(1, args.repeat + 1):  # the programs in turn: drift hits all
                runs += run_scenario(
                    scenario, programs, args.video, media, phases, workdir, motion, attempt
                )
    runs = ipcam_report.median_runs(runs)

    if motiond_source_digest() != source_at_start:
        skipped.append("motiond's source changed during the run: the motiond rows mix versions")
    by_key = {s.key: s for s in SCENARIOS}
    results = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "motiond_source_sha256": source_at_start,
        "video": str(args.video),
        "phases": {**asdict(phases), "still_s": phases.still_s, "footage_s": phases.footage_s},
        "scenarios": [asdict(s) for s in scenarios],
        "streams": streams,
        "settings": [motion_ipcam_summary(), motiond_ipcam_summary(motion)],
        "repeat": args.repeat,
        "runs": runs,
        "notes": skipped + notes_for(runs, by_key),
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    results["comparison"] = ipcam_report.comparison(runs, by_key)
    if "motiond" in programs:
        results["motiond_libraries_rss_mb"] = motiond_libraries_rss_mb()
    text = ipcam_report.markdown(results)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    where = write_results(args.out, f"bench-ipcam-{stamp}", results, text)
    print(text)
    log(f"done in {results['elapsed_s']:.0f} s; results in {where}.{{md,json}}")
    return 1 if any(run.get("error") for run in runs) else 0


def _stream_info(video: StreamVideo) -> dict[str, Any]:
    return {
        "size": f"{video.size[0]}x{video.size[1]}",
        "fps": video.fps,
        "gop": video.gop,
        "bitrate_kbit_s": video.bitrate // 1000,
        "still_kbit_s": video.still_kbit_s,
        "footage_kbit_s": video.footage_kbit_s,
        "file": video.path.name,
    }


if __name__ == "__main__":
    raise SystemExit(main())
