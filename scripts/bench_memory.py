"""Measure motiond's memory per camera for each source kind, at 1280x720/15 and 1920x1080/15.

Source kinds: RTSP H.264 copied (the main stream decoded for detection), the same with a
640x360 sub stream for detection, RTSP H.265 transcoded to H.264, HTTP MJPEG encoded to H.264,
and raw pictures (a video file read in real time: decoded BGR frames, as from a webcam without
MJPG or the demo). For each kind and size, motiond runs with 1 camera, then with 3 cameras on
the same stream, all recording footage with people walking throughout; after a settle period,
a measurement window: peak RSS (VmHWM), mean RSS, and the frame buffers per camera
(``motiond_buffered_bytes`` from /metrics). Reports the process with 1 camera, what each
further camera adds, and the buffers per camera. Writes Markdown and JSON to bench-results/ and
prints the Markdown.

    python -m scripts.bench_memory            # full run, about 15 minutes
    python -m scripts.bench_memory --quick    # about 8 minutes
    python -m scripts.bench_memory --kinds mjpeg raw --sizes 720p
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scripts.bench import memory_report
from scripts.bench.clips import summarise, video_files
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
from scripts.bench.ipcam_media import StreamVideo
from scripts.bench.ipcam_programs import CameraSource, motiond_ipcam_program
from scripts.bench.memory_media import FOOTAGE_S, FPS, SIZES, Size, camera_stream, raw_video
from scripts.bench.memory_probe import camera_metrics, smaps_breakdown, web_port
from scripts.bench.procstat import cpu_between, memory, sample_cpu, threads
from scripts.bench.programs import Program, ProgramDied, check_config
from scripts.bench.stream import StreamProcess
from testbed.rtsp import RtspCamera, rtsp_server_unavailable

SUB_SIZE, SUB_BITRATE = (640, 360), 750_000
CAMERA_COUNTS = (1, 3)
START_TIMEOUT_S = 90.0  # for every camera to be recording
METRICS_EVERY_S = 1.0
RSS_EVERY_S = 0.5


@dataclass(frozen=True)
class SourceKind:
    key: str
    label: str
    transport: str  # "rtsp", "mjpeg" or "file"
    codec: str = "h264"  # of an RTSP stream: "h264" or "hevc"
    sub: bool = False
    clip_mode: str = "transcode"  # what record.mode: auto should do with it


KINDS = (
    SourceKind("rtsp-h264", "RTSP H.264, copied", "rtsp", clip_mode="copy"),
    SourceKind("rtsp-h264-sub", "RTSP H.264, copied, 640x360 sub stream", "rtsp", sub=True,
               clip_mode="copy"),
    SourceKind("rtsp-h265", "RTSP H.265, transcoded", "rtsp", codec="hevc"),
    SourceKind("mjpeg", "HTTP MJPEG", "mjpeg"),
    SourceKind("raw", "raw pictures (file, realtime)", "file"),
)  # fmt: skip


@dataclass(frozen=True)
class Timing:
    settle_s: float
    window_s: float


# ---------------------------------------------------------------------------------------------
# The stream the cameras read


@dataclass
class Feed:
    """What every camera of a run reads, and the process serving it (stopped by ``stop``)."""

    camera: CameraSource
    server_pid: int | None  # None: motiond reads a file itself
    stop: Callable[[], object]


def start_feed(kind: SourceKind, media: dict[str, Path], size: Size, workdir: Path) -> Feed:
    """Starts the stream server for ``kind``; the caller stops it (``Feed.stop``)."""
    if kind.transport == "file":
        return Feed(CameraSource(str(media["file"]), size.size, loop=True), None, lambda: None)
    if kind.transport == "mjpeg":
        mjpeg = StreamProcess(media["footage"], size.size, FPS)
        try:
            mjpeg.start()
            mjpeg.set_mode("motion")
        except BaseException:
            mjpeg.stop()
            raise
        return Feed(CameraSource(mjpeg.url, size.size), mjpeg.pid, mjpeg.stop)
    server = RtspCamera(
        {mount: path for mount, path in media.items()},
        log_path=workdir / "rtsp-server.log",
        loop=True,
    )
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    sub = (server.url("/sub"), SUB_SIZE) if kind.sub else (None, None)
    return Feed(CameraSource(server.url("/main"), size.size, *sub), server.pid, server.stop)


def prepare_media(
    kind: SourceKind, size: Size, footage: Path, cache_dir: Path
) -> tuple[dict[str, Path], list[str]]:
    """The files a kind's stream needs (encoded once, cached), and a line on each."""
    if kind.transport == "mjpeg":
        return {"footage": footage}, []
    if kind.transport == "file":
        path = raw_video(footage, cache_dir, size.size, FPS, FOOTAGE_S)
        jpeg_kb = path.stat().st_size / round(FOOTAGE_S * FPS) / 1024
        line = f"{kind.label}, {size.label}: {path.name}, MJPEG AVI, {jpeg_kb:.0f} KiB a frame"
        return {"file": path}, [line]
    videos = {"/main": camera_stream(footage, cache_dir, size.size, size.bitrate, kind.codec)}
    if kind.sub:
        videos["/sub"] = camera_stream(footage, cache_dir, SUB_SIZE, SUB_BITRATE, kind.codec)
    lines = [f"{kind.label}, {size.label}, {mount}: {_describe(v)}" for mount, v in videos.items()]
    return {mount: video.path for mount, video in videos.items()}, lines


def _describe(video: StreamVideo) -> str:
    return (
        f"{video.path.name}, {video.name}, a keyframe every {video.gop} frames, asked "
        f"{video.bitrate // 1000} kbit/s, got {video.footage_kbit_s:.0f} kbit/s"
    )


# ---------------------------------------------------------------------------------------------
# One run: motiond with N cameras on a feed


def wait_recording(program: Program, cameras: list[str], timeout: float) -> int:
    """Waits for the web port, then until every camera records; returns the port."""
    deadline = time.monotonic() + timeout
    while (port := web_port(program.log_path)) is None:
        program.check_alive()
        if time.monotonic() > deadline:
            raise ProgramDied(f"no 'web: listening on' line in the log in {timeout:g} s")
        time.sleep(0.2)
    while True:
        program.check_alive()
        recording = camera_metrics(port).get("recording", {})
        if all(recording.get(camera) == 1 for camera in cameras):
            return port
        if time.monotonic() > deadline:
            waiting = [camera for camera in cameras if recording.get(camera) != 1]
            raise ProgramDied(f"not recording after {timeout:g} s: {', '.join(waiting)}")
        time.sleep(0.5)


def measure_window(
    program: Program, port: int, cameras: list[str], server_pid: int | None, seconds: float
) -> dict[str, Any]:
    """RSS every 0.5 s and /metrics every second for ``seconds``; CPU over the window."""
    pid = program.pid
    before = sample_cpu(pid)
    server_before = sample_cpu(server_pid) if server_pid else None
    rss: list[float] = []
    samples: list[dict[str, dict[str, float]]] = []
    start = time.monotonic()
    next_metrics = start
    while (now := time.monotonic()) < start + seconds:
        program.check_alive()
        rss.append(memory(pid).rss_mb)
        if now >= next_metrics:
            samples.append(camera_metrics(port))
            next_metrics += METRICS_EVERY_S
        time.sleep(max(0.0, min(RSS_EVERY_S, start + seconds - time.monotonic())))
    samples.append(camera_metrics(port))
    after = sample_cpu(pid)
    use = cpu_between(before, after)
    server_cores = 0.0
    if server_pid and server_before:
        server_cores = cpu_between(server_before, sample_cpu(server_pid)).cores
    final = memory(pid)
    per_camera = {camera: _camera_window(samples, camera, use.seconds) for camera in cameras}
    return {
        "window": {
            "seconds": round(use.seconds, 2),
            "cores": round(use.cores, 3),
            "stream_server_cores": round(server_cores, 3),
            "other_cores": round(use.machine_cores - use.cores - server_cores, 3),
            "rss_mean_mb": round(statistics.fmean(rss), 1),
            "rss_min_mb": round(min(rss), 1),
            "rss_max_mb": round(max(rss), 1),
            "rss_samples": len(rss),
        },
        "peak_rss_mb": round(final.peak_rss_mb, 1),
        "rss_end_mb": round(final.rss_mb, 1),
        "threads": threads(pid),
        "smaps": asdict(smaps_breakdown(pid)),
        "per_camera": per_camera,
        "buffered_mean_mb": round(
            statistics.fmean(c["buffered_mean_mb"] for c in per_camera.values()), 2
        ),
        "buffered_max_mb": max(c["buffered_max_mb"] for c in per_camera.values()),
    }


def _camera_window(
    samples: list[dict[str, dict[str, float]]], camera: str, seconds: float
) -> dict[str, Any]:
    def series(metric: str) -> list[float]:
        return [s[metric][camera] for s in samples if camera in s.get(metric, {})]

    buffered = [value / 2**20 for value in series("buffered_bytes")]
    frames, dropped = series("frames_total"), series("frames_dropped_total")
    return {
        "buffered_mean_mb": round(statistics.fmean(buffered), 2) if buffered else 0.0,
        "buffered_max_mb": round(max(buffered), 2) if buffered else 0.0,
        "recording_throughout": bool(series("recording")) and min(series("recording")) == 1,
        "capture_fps": round((frames[-1] - frames[0]) / seconds, 2) if len(frames) > 1 else None,
        "frames_dropped": int(dropped[-1] - dropped[0]) if len(dropped) > 1 else None,
    }


def run_motiond(
    kind: SourceKind, size: Size, feed: Feed, cameras: int, timing: Timing, workdir: Path
) -> dict[str, Any]:
    """motiond with ``cameras`` cameras on ``feed``: settle, measure; always stopped."""
    where = workdir / f"{kind.key}-{size.key}-{cameras}cam"
    fps = FPS if kind.transport == "mjpeg" else None
    program = motiond_ipcam_program(where, [feed.camera] * cameras, fps)
    names = [f"cam{index}" for index in range(1, cameras + 1)]
    result: dict[str, Any] = {"kind": kind.key, "size": size.key, "cameras": cameras}
    result["settings"] = program.settings
    if cameras == CAMERA_COUNTS[0] and (why := check_config(program.argv[-1])):
        result["error"] = why
        return result
    started = time.monotonic()
    program.start()
    log(f"  {cameras} camera(s): motiond pid {program.pid}, logs in {program.workdir}")
    try:
        port = wait_recording(program, names, START_TIMEOUT_S)
        result["recording_after_s"] = round(time.monotonic() - started, 1)
        program.sleep_until(time.monotonic() + timing.settle_s)
        result |= measure_window(program, port, names, feed.server_pid, timing.window_s)
    except (ProgramDied, OSError) as exc:
        # OSError: /proc/PID vanished (the process exited), or /metrics did not answer.
        result["error"] = str(exc)
        result["log_tail"] = program.log_tail()
    finally:
        result["exit_code"] = program.stop()
    clips = summarise(video_files(program.clip_dir))
    result["clips"] = {"count": clips.count, "codecs": clips.codecs, "modes": clip_modes(program)}
    log(
        f"  {cameras} camera(s): peak RSS {result.get('peak_rss_mb')} MB, mean "
        f"{result.get('window', {}).get('rss_mean_mb')} MB, buffers "
        f"{result.get('buffered_mean_mb')} MB/camera, {result.get('window', {}).get('cores')} "
        f"cores{', ' + result['error'] if 'error' in result else ''}"
    )
    return result


def clip_modes(program: Program) -> list[str]:
    """How the clips were recorded (``mode`` of each sidecar: copy or transcode)."""
    modes = set()
    for sidecar in (program.clip_dir / "clips").rglob("*.json"):
        try:
            modes.add(str(json.loads(sidecar.read_text()).get("mode", "?")))
        except (OSError, ValueError):
            modes.add("unreadable sidecar")
    return sorted(modes)


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="5 s settle, 8 s window")
    parser.add_argument("--settle", type=float, help="seconds after every camera records (15)")
    parser.add_argument("--window", type=float, help="seconds of measurement (20)")
    parser.add_argument(
        "--kinds", nargs="+", choices=[k.key for k in KINDS], default=[k.key for k in KINDS]
    )
    parser.add_argument(
        "--sizes", nargs="+", choices=[s.key for s in SIZES], default=[s.key for s in SIZES]
    )
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--media-dir",
        type=Path,
        default=MEDIA_DIR,
        help="where the encoded stream files are cached",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir (configs, logs)")
    parser.add_argument(
        "--report",
        type=Path,
        metavar="JSON",
        help="measure nothing: print the Markdown of an earlier run's JSON again (and rewrite "
        "its .md), with this version's summary",
    )
    return parser.parse_args(argv)


def timing_from(args: argparse.Namespace) -> Timing:
    base = Timing(5, 8) if args.quick else Timing(15, 20)
    return Timing(
        settle_s=base.settle_s if args.settle is None else args.settle,
        window_s=base.window_s if args.window is None else args.window,
    )


def preflight(args: argparse.Namespace, kinds: list[SourceKind]) -> str | None:
    """Why the run cannot start, or None."""
    if not args.video.exists():
        return f"no such video: {args.video}"
    if any(k.transport != "mjpeg" for k in kinds) and shutil.which("ffmpeg") is None:
        return "ffmpeg is not installed: apt-get install -y ffmpeg"
    if any(k.transport == "rtsp" for k in kinds) and (why := rtsp_server_unavailable()):
        return why
    return None


def notes_for(runs: list[dict[str, Any]], kinds: dict[str, SourceKind]) -> list[str]:
    """Anything in the results that makes a number less trustworthy than it looks."""
    notes = []
    for run in runs:
        kind = kinds[run["kind"]]
        where = f"{kind.label}, {run['size']}, {run['cameras']} camera(s)"
        if run.get("error"):
            notes.append(f"{where}: {run['error']}")
            continue
        for camera, figures in run["per_camera"].items():
            if not figures["recording_throughout"]:
                notes.append(f"{where}: {camera} was not recording throughout the window")
            if figures["frames_dropped"]:
                notes.append(
                    f"{where}: {camera} dropped {figures['frames_dropped']} frames in the "
                    f"window (encoder or disk too slow: its queue was full)"
                )
            if figures["capture_fps"] is not None and figures["capture_fps"] < 0.9 * FPS:
                notes.append(f"{where}: {camera} captured {figures['capture_fps']:g} fps")
        if run["clips"]["modes"] != [kind.clip_mode]:
            notes.append(
                f"{where}: clips recorded as {run['clips']['modes']}, expected {kind.clip_mode}"
            )
        if run["peak_rss_mb"] > run["window"]["rss_max_mb"] + 10:
            notes.append(
                f"{where}: the peak RSS ({run['peak_rss_mb']:.0f} MB) was reached before the "
                f"window (at most {run['window']['rss_max_mb']:.0f} MB in it): start-up or "
                f"the cameras' first seconds"
            )
    other = [run["window"]["other_cores"] for run in runs if not run.get("error")]
    if other:
        notes.append(other_load(other, "motiond, not the stream server"))
    return notes


def run_all(
    args: argparse.Namespace, kinds: list[SourceKind], sizes: list[Size], workdir: Path
) -> tuple[list[dict[str, Any]], list[str]]:
    runs: list[dict[str, Any]] = []
    streams: list[str] = []
    for kind in kinds:
        for size in sizes:
            log(f"{kind.label}, {size.label}: preparing the stream")
            media, lines = prepare_media(kind, size, args.video, args.media_dir)
            streams += lines
            timing = timing_from(args)
            feed = start_feed(kind, media, size, workdir)
            try:
                for cameras in CAMERA_COUNTS:
                    runs.append(run_motiond(kind, size, feed, cameras, timing, workdir))
            finally:
                feed.stop()
    return runs, streams


def report_again(path: Path) -> int:
    results = json.loads(path.read_text())
    results["summary"] = memory_report.summary(results["runs"])
    text = memory_report.markdown(results)
    path.write_text(json.dumps(results, indent=2) + "\n")
    path.with_suffix(".md").write_text(text)
    print(text)
    return 1 if any(run.get("error") for run in results["runs"]) else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report is not None:
        return report_again(args.report)
    kinds = [k for k in KINDS if k.key in args.kinds]
    sizes = [s for s in SIZES if s.key in args.sizes]
    if why := preflight(args, kinds):
        print(why, file=sys.stderr)
        return 2
    started = time.monotonic()
    source_at_start = motiond_source_digest()
    with work_dir("motiond-bench-memory-", args.keep) as workdir:
        runs, streams = run_all(args, kinds, sizes, workdir)

    notes = notes_for(runs, {k.key: k for k in KINDS})
    if motiond_source_digest() != source_at_start:
        notes.insert(0, "motiond's source changed during the run: the rows mix versions")
    streams.append(
        f"HTTP MJPEG: scripts/bench/stream.py serving {args.video.name} as JPEGs (quality 80), "
        f"{FPS:g} fps; RTSP: testbed/rtsp_server.py (GStreamer), the files looped, over TCP"
    )
    results = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "motiond_source_sha256": source_at_start,
        "video": str(args.video),
        "timing": {**asdict(timing_from(args)), "fps": FPS, "cameras": list(CAMERA_COUNTS)},
        "kinds": [asdict(k) for k in kinds],
        "sizes": [asdict(s) for s in sizes],
        "streams": streams,
        "runs": runs,
        "notes": notes,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    results["summary"] = memory_report.summary(runs)
    text = memory_report.markdown(results)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    where = write_results(args.out, f"bench-memory-{stamp}", results, text)
    print(text)
    log(f"done in {results['elapsed_s']:.0f} s; results in {where}")
    return 1 if any(run.get("error") for run in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
