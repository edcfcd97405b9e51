"""Where an IP camera's CPU goes, still scene against moving scene, part by part.

``bench_ipcam`` measures the whole process while the scene is still (idle) and while people
walk (recording). The difference mixes two things: the cost of recording (the camera's packets
copied into a clip) and the cost of the picture itself (a moving scene decodes and is analysed
at a higher cost, recording or not). This script takes the benchmark's own stream files and
measures, on one thread, CPU time per frame of each part, over the still part and over the
footage:

- reading the packets (libavformat), the decode for detection (one thread, no loop filter),
- detection with everything on (``PictureWatch.look``: differencing, regions, nuisance areas,
  day/night, tampering),
- the warn snapshots' JPEGs: while recording, each new peak of the clip (the trigger's
  ``new_peak``) is made into a JPEG from its decoded picture on the capture thread,
- writing the packets into a fragmented MP4 clip (``CopyClipWriter``: what recording adds).

Each part runs three times (``--runs``), each frame's lowest CPU time kept. Cores are
per-frame CPU times x 15 fps. Writes Markdown and JSON to bench-results/.

    python -m scripts.bench_copy_cost            # about 4 minutes
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2

from motiond.capture.sources.pyav import PyAVSource
from motiond.config import CameraConfig, CaptureConfig
from motiond.detect.trigger import RecordingTrigger
from motiond.detect.watch import PictureWatch
from motiond.frames import Frame
from motiond.record.encoders import CopyClipWriter
from motiond.record.snapshots import encode_jpeg
from scripts.bench.harness import DEFAULT_VIDEO, MEDIA_DIR, RESULTS_DIR
from scripts.bench.ipcam_media import stream_video

# The benchmark's full phases (scripts/bench_ipcam.py): the same cached files.
STILL_S, FOOTAGE_S = 41.0, 40.0
STREAMS = {
    "1280x720 main (3 Mbit/s)": ((1280, 720), 3_000_000),
    "1920x1080 main (6 Mbit/s)": ((1920, 1080), 6_000_000),
    "640x360 sub (0.75 Mbit/s)": ((640, 360), 750_000),
}
FPS = 15.0


def read_frames(path: Path, decode: bool) -> tuple[list[Frame], list[float]]:
    """Every frame of the file as the IP camera source makes it, each seen at its time in the
    stream (``mono`` 1/15 s apart, as from a camera), and each read's CPU ms.

    A file is read far faster than a camera sends it, and the source stamps each frame with
    its arrival: 350 frames fell within 0.4 s. Detection does part of its work by the clock
    (tampering and the colour sample a few times a second, the nuisance model's learning, the
    slow baseline's pictures), so with those stamps it did almost none of it: a still picture
    of the sub stream measured 0.11 to 0.12 ms, against 0.17 to 0.27 ms with the stream's
    times in the same two runs (a moving one about the same either way)."""
    capture = CaptureConfig(source=str(path), kind="url", open_timeout=10, read_timeout=10)
    source = PyAVSource(capture, threading.Event(), decode=decode)
    source.open()
    frames: list[Frame] = []
    costs: list[float] = []
    try:
        while True:
            started = time.thread_time()
            frame = source.read()
            if frame is None:
                break
            costs.append((time.thread_time() - started) * 1000)
            frames.append(replace(frame, mono=len(frames) / FPS))
    finally:
        source.close()
    return frames, costs


def watch_costs(frames: list[Frame], size: tuple[int, int]) -> tuple[list[float], list[float]]:
    """Per frame: detection's CPU ms, and the warn snapshot JPEG's (0 where the frame is not
    a new peak of a clip: what the capture thread does for a coded frame)."""
    config = CameraConfig(name="bench", capture=CaptureConfig(source="x", kind="url"))
    watch = PictureWatch(config, lambda _event: None, lambda: False)
    trigger = RecordingTrigger(config.motion, config.record.max_clip)
    detect, stills = [], []
    for frame in frames:
        started = time.thread_time()
        result = watch.look(frame, size)
        detect.append((time.thread_time() - started) * 1000)
        still_ms = 0.0
        if result is not None:
            decision = trigger.update(result.delta, result.lighting, frame.mono)
            if decision.new_peak:
                started = time.thread_time()
                encode_jpeg(frame.bgr())
                still_ms = (time.thread_time() - started) * 1000
        stills.append(still_ms)
    return detect, stills


def write_costs(frames: list[Frame], workdir: Path) -> list[float]:
    """CopyClipWriter per frame, a new clip at each part's first keyframe."""
    first = next(i for i, f in enumerate(frames) if f.keyframe)
    writer = CopyClipWriter(workdir / "clip.mp4", frames[first], frames[first].mono)
    costs = []
    try:
        for frame in frames[first:]:
            stored = frame.compressed()
            started = time.thread_time()
            writer.write(stored)
            costs.append((time.thread_time() - started) * 1000)
    finally:
        writer.close()
    return costs


def split(costs: list[float]) -> tuple[float, float]:
    """Mean ms over the still part and over the footage (first and last seconds left out)."""
    cut = round(STILL_S * FPS)
    still = costs[round(2 * FPS) : cut - round(FPS)]
    moving = costs[cut + round(FPS) : len(costs) - round(2 * FPS)]
    return statistics.fmean(still), statistics.fmean(moving)


def lowest(runs: list[list[float]]) -> list[float]:
    """Each frame's lowest time over the runs: the work is the same in each; what varies is
    what the rest of the machine does to caches and clock speed."""
    return [min(times) for times in zip(*runs, strict=True)]


def measure(
    name: str, size: tuple[int, int], bitrate: int, video: Path, cache: Path, runs: int
) -> dict[str, Any]:
    stream = stream_video(video, cache, size, FPS, bitrate, STILL_S, FOOTAGE_S)
    reads = [read_frames(stream.path, decode=False) for _ in range(runs)]
    packets, read_ms = reads[0][0], lowest([costs for _, costs in reads])
    reads = [read_frames(stream.path, decode=True) for _ in range(runs)]
    decoded, read_decode_ms = reads[0][0], lowest([costs for _, costs in reads])
    del reads
    with tempfile.TemporaryDirectory() as workdir:
        write_ms = lowest([write_costs(packets, Path(workdir)) for _ in range(runs)])
    # Detection maps masks and boxes to the camera's picture size: the main stream's.
    camera_size = (1280, 720) if size == (640, 360) else size
    watched = [watch_costs(decoded, camera_size) for _ in range(runs)]
    detect_ms = lowest([detect for detect, _ in watched])
    still_ms = lowest([stills for _, stills in watched])
    parts = {
        "read": split(read_ms),
        "decode": tuple(d - r for d, r in zip(split(read_decode_ms), split(read_ms), strict=True)),
        "detect": split(detect_ms),
        "stills": split(still_ms),
        "copy_write": split([0.0] * (len(packets) - len(write_ms)) + write_ms),
    }
    return {"stream": name, "frames": len(packets), "ms": {k: list(v) for k, v in parts.items()}}


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "## Where an IP camera's CPU goes (one thread, CPU time per frame x 15 fps = cores)",
        "",
        "| stream | part | still scene cores | moving scene cores | difference |",
        "|---|---|---|---|---|",
    ]
    labels = {
        "read": "reading packets (libavformat)",
        "decode": "decode for detection",
        "detect": "detection, everything on",
        "stills": "warn snapshot JPEGs (new peaks, while recording)",
        "copy_write": "copying packets into the clip (recording)",
    }
    for row in rows:
        for part, label in labels.items():
            still, moving = (ms * FPS / 1000 for ms in row["ms"][part])
            cells = f"{still:.4f} | {moving:.4f} | {moving - still:+.4f}"
            lines.append(f"| {row['stream']} | {label} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--runs", type=int, default=3, help="runs per part (lowest kept)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--media-dir", type=Path, default=MEDIA_DIR)
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    rows = [
        measure(name, size, rate, args.video, args.media_dir, args.runs)
        for name, (size, rate) in STREAMS.items()
    ]
    text = markdown(rows)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"bench-copy-cost-{stamp}.md").write_text(text)
    (args.out / f"bench-copy-cost-{stamp}.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
